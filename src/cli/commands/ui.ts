/**
 * `podwire ui [--name NAME] [--port PORT] [--address IP] [--store URL]`: the web view of a
 * running cluster (src/ui/server.ts), on 127.0.0.1 unless --address says otherwise, until
 * Ctrl-C. With --store, the cluster in etcd, and the nodes this machine runs.
 */
import { COMMON_OPTIONS, noArguments, parseCommand, UsageError } from '../args.js';
import { readCluster, statePaths } from '../state.js';
import { serveUi } from '../../ui/server.js';
import { STORE_OPTIONS, storeConnection } from '../store-option.js';
import { etcdSource, stateDirSource } from '../ui-source.js';
import { parseUiOptions, UI_OPTIONS } from '../ui-port.js';
import { usage } from './usage.js';

export async function uiCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('ui', argv, { ...COMMON_OPTIONS, ...UI_OPTIONS, ...STORE_OPTIONS });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('ui', parsed);
  const { port, address } = parseUiOptions('ui', values);
  const { name, paths } = statePaths(values);
  const connection = storeConnection('ui', values);
  if (connection === undefined && readCluster(paths) === undefined) throw new UsageError(`podwire ui: cluster ${name} is not running (no ${paths.clusterFile}); start it with podwire up, or name its store with --store`);
  const etcd = connection === undefined ? undefined : await etcdSource(name, paths, connection, values.store ?? '');
  const source = etcd ?? stateDirSource(name, paths);
  const server = await serveUi(source, { port, address, log: (line) => process.stderr.write(`${line}\n`) }).catch(async (err: Error) => {
    await etcd?.close();
    throw err;
  });
  process.stdout.write(`podwire ui: cluster ${name} at ${server.url} (Ctrl-C stops the page, not the cluster)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    process.once('SIGHUP', resolve);
  });
  await server.close();
  await etcd?.close();
  return 0;
}
