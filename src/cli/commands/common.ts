/** What several podwire commands share: asking a node, opening the store. */
import { UsageError } from '../args.js';
import { readCluster, statePaths } from '../state.js';
import type { Cluster } from '../../cluster/model.js';
import { FileStore } from '../../cluster/store.js';
import { callControl } from '../../node/control.js';

/** One request to a node's control socket, with the node named on the command line. */
export async function askNode(values: { name?: string | undefined; 'state-dir'?: string | undefined }, node: string, op: string, args: Record<string, unknown> = {}): Promise<unknown> {
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  if (!cluster.nodes.some((n) => n.name === node)) throw new UsageError(`node ${node} is not in cluster ${name} (nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`);
  return callControl(paths.nodeSocket(node), op, args, 10_000);
}

export function openStore(values: { name?: string | undefined; 'state-dir'?: string | undefined }): { store: FileStore; cluster: Cluster } {
  const { name, paths } = statePaths(values);
  const store = new FileStore(paths.dir);
  const cluster = store.readDesired();
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  return { store, cluster };
}

