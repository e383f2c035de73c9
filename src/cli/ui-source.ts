/**
 * The web view's cluster sources: one for a cluster run from this machine's state
 * directory (the cluster.json and node answers `podwire status` reads), one for a cluster
 * in etcd (the view `podwire status --store` reads, with each node's machine). Either way
 * the nodes' control sockets are the ones in this machine's state directory: a node on
 * another machine is drawn from the store, and its flows and traces are that machine's.
 */
import { existsSync, watch } from 'node:fs';
import type { StatePaths } from '../node/names.js';
import type { EtcdConnection } from '../store/connection.js';
import type { ClusterSource } from '../ui/source.js';
import { etcdStatus } from './etcd-status.js';
import { readCluster } from './state.js';
import { clusterStatus } from './status.js';

function localSocket(paths: StatePaths): (node: string) => string | undefined {
  return (node) => (existsSync(paths.nodeSocket(node)) ? paths.nodeSocket(node) : undefined);
}

export function stateDirSource(name: string, paths: StatePaths): ClusterSource {
  return {
    name,
    snapshot: async () => {
      const cluster = readCluster(paths);
      if (cluster === undefined) return undefined;
      return { cluster, status: await clusterStatus(name, paths, cluster) };
    },
    nodeSocket: localSocket(paths),
    // scale and delete write cluster.json anew: the page hears of it at once, not at the next poll.
    watch: (changed) => {
      const watcher = watch(paths.dir, (_event, file) => {
        if (file === 'cluster.json' || file === null) changed();
      });
      watcher.on('error', () => watcher.close());
      return () => watcher.close();
    },
  };
}

/** A cluster in etcd, read afresh at each snapshot; `close` ends the store's connection. */
export async function etcdSource(name: string, paths: StatePaths, connection: EtcdConnection, storeUrl: string): Promise<ClusterSource & { close(): Promise<void> }> {
  // Loaded here, not at start: only a page of a cluster in etcd pays for its client.
  const { EtcdClusterStore } = await import('../store/cluster-store.js');
  const store = EtcdClusterStore.open(connection, name);
  return {
    name,
    snapshot: async () => {
      const view = await store.read();
      const cluster = view.cluster();
      const status = etcdStatus(view, storeUrl, undefined, Date.now());
      if (cluster === undefined || status === undefined) return undefined;
      const ports = new Map([...view.registrations.values()].map((r) => [r.name, r.underlayPort]));
      return {
        cluster,
        status: {
          // A node whose subnet lease is held is running (its agent renews it); its machine is where.
          nodes: status.nodes.map((n) => ({ name: n.name, state: n.lease === 'held' ? ('up' as const) : ('down' as const), ready: n.ready, machine: `${n.machine} (${n.underlay.split(':')[0]})`, ...(ports.has(n.name) ? { underlayPort: ports.get(n.name)! } : {}) })),
          pods: status.pods.map((p) => ({ ...p, restarts: 0 })),
        },
      };
    },
    nodeSocket: localSocket(paths),
    close: () => store.close(),
  };
}
