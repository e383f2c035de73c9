import { COMMON_OPTIONS, noArguments, parseCommand } from '../args.js';
import { readCluster, statePaths } from '../state.js';
import { clusterStatus, formatStatus } from '../status.js';
import { usage } from './usage.js';

export async function statusCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('status', argv, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('status', parsed);
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) {
    if (values.json === true) process.stdout.write(`${JSON.stringify({ name, running: false })}\n`);
    else process.stderr.write(`cluster ${name} is not running (no ${paths.clusterFile})\n`);
    return 1;
  }
  const status = await clusterStatus(name, paths, cluster);
  process.stdout.write(values.json === true ? `${JSON.stringify({ ...status, running: true }, null, 2)}\n` : formatStatus(status));
  return 0;
}
