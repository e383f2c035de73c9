/**
 * The web view's cluster source for a cluster run from this machine's state directory: the
 * cluster.json `podwire status` reads, the nodes' answers to `status`, and their control
 * sockets. A node whose process is gone has no socket to reach.
 */
import { existsSync } from 'node:fs';
import type { StatePaths } from '../node/names.js';
import type { ClusterSource } from '../ui/source.js';
import { readCluster } from './state.js';
import { clusterStatus } from './status.js';

export function stateDirSource(name: string, paths: StatePaths): ClusterSource {
  return {
    name,
    snapshot: async () => {
      const cluster = readCluster(paths);
      if (cluster === undefined) return undefined;
      return { cluster, status: await clusterStatus(name, paths, cluster) };
    },
    nodeSocket: (node) => (existsSync(paths.nodeSocket(node)) ? paths.nodeSocket(node) : undefined),
  };
}
