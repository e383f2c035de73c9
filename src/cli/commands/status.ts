import { COMMON_OPTIONS, noArguments, parseCommand } from '../args.js';
import { StoreUnreachable } from '../../store/connection.js';
import { etcdStatus, formatEtcdStatus } from '../etcd-status.js';
import { STORE_OPTIONS, storeConnection, withStore } from '../store-option.js';
import { readCluster, statePaths } from '../state.js';
import { clusterStatus, formatStatus } from '../status.js';
import { usage } from './usage.js';

export async function statusCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('status', argv, { ...COMMON_OPTIONS, ...STORE_OPTIONS, json: { type: 'boolean' } });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('status', parsed);
  const { name, paths } = statePaths(values);
  const connection = storeConnection('status', values);
  if (connection !== undefined) {
    try {
      const status = await withStore(connection, name, async (store) => etcdStatus(await store.read(), values.store ?? '', await store.kv.leader(store.keys.controller).catch(() => undefined), Date.now()));
      if (status === undefined) {
        process.stderr.write(`cluster ${name} is not in the store ${values.store}\n`);
        return 1;
      }
      process.stdout.write(values.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatEtcdStatus(status));
      return 0;
    } catch (err) {
      if (err instanceof StoreUnreachable) {
        process.stderr.write(`cluster ${name}: store unreachable: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  }
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
