/** The demo cluster as `up` loads it (seeded), and flows of it, for the web view's tests. */
import { demoFiles } from '../../src/cluster/demo.js';
import { loadCluster } from '../../src/cluster/load.js';
import type { Cluster } from '../../src/cluster/model.js';
import { seededRandom } from '../../src/cluster/random.js';
import type { MapStatus } from '../../src/ui/map.js';

export function demoCluster(): Cluster {
  const r = loadCluster(demoFiles(), { random: seededRandom(1), name: 'pwuitest' });
  if (!r.ok) throw new Error('the demo does not load');
  return r.cluster;
}

/** Every node up and Ready, every pod Ready but the ones named. */
export function allReady(cluster: Cluster, notReady: readonly string[] = []): MapStatus {
  return {
    nodes: cluster.nodes.map((n) => ({ name: n.name, state: 'up' as const, ready: true })),
    pods: cluster.pods.map((p) => ({ namespace: p.namespace, name: p.name, ready: !notReady.includes(p.name), restarts: 0 })),
  };
}
