import { COMMON_OPTIONS, noArguments, parseCommand } from '../args.js';
import { STORE_OPTIONS, storeConnection, withStore } from '../store-option.js';
import { downCluster } from '../down.js';
import { statePaths } from '../state.js';
import { usage } from './usage.js';

export async function downCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('down', argv, { ...COMMON_OPTIONS, ...STORE_OPTIONS });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('down', parsed);
  const { name, paths } = statePaths(values);
  const connection = storeConnection('down', values);
  if (connection !== undefined) {
    // Every agent sees the cluster's document go, tears its pods down and exits.
    const removed = await withStore(connection, name, (store) => store.remove());
    process.stdout.write(removed === 0 ? `cluster ${name} is not in the store\n` : `cluster ${name} removed from the store (${removed} keys); its node agents tear down\n`);
    return 0;
  }
  const report = await downCluster(name, paths);
  const removed = report.processes + report.namespaces + report.links;
  if (removed === 0 && !report.stateDir) process.stdout.write(`cluster ${name} was not running\n`);
  else process.stdout.write(`cluster ${name} removed (${report.processes} node processes, ${report.namespaces} namespaces${report.links > 0 ? `, ${report.links} links` : ''})\n`);
  return 0;
}
