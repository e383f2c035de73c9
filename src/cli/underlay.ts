/**
 * Which underlay addresses (127.77.<index>.<node>) `podwire up` gives a cluster: the first
 * index from its name's hash onward that no other cluster holds. An index is held when
 * another cluster in the same state root records it in its cluster.json (its nodes may be
 * down for a moment, and restart-node must find the addresses free again), or when binding
 * one of the cluster's VXLAN addresses fails (a cluster of another state root, or any other
 * program on the port).
 */
import { createSocket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatIpv4 } from '../packet/addr.js';
import { VXLAN_PORT } from '../packet/vxlan.js';
import { clusterIndexCandidates, underlayAddress, withClusterIndex } from '../cluster/ipam.js';
import type { Cluster } from '../cluster/model.js';
import { StatePaths } from '../node/names.js';
import { readCluster } from './state.js';

export interface IndexChoice {
  cluster: Cluster;
  /** Indexes passed over, with who holds them, to say why the addresses moved. */
  passed: { index: number; holder: string }[];
}

export async function chooseClusterIndex(cluster: Cluster, paths: StatePaths): Promise<IndexChoice> {
  const recorded = indexesRecorded(dirname(paths.dir), cluster.settings.name);
  const passed: IndexChoice['passed'] = [];
  for (const index of clusterIndexCandidates(cluster.settings.name)) {
    const holder = recorded.get(index) ?? (await boundBySomeone(index, cluster.nodes.map((n) => n.index)));
    if (holder === undefined) return { cluster: withClusterIndex(cluster, index), passed };
    passed.push({ index, holder });
  }
  throw new Error(`no free underlay: every 127.77.<1-254>.0/24 is held (${passed.slice(0, 5).map((p) => p.holder).join(', ')}, ...)`);
}

/** The other clusters of the state root, by the index their cluster.json records. */
function indexesRecorded(root: string, self: string): Map<number, string> {
  const held = new Map<number, string>();
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return held;
  }
  for (const entry of entries) {
    if (entry === self) continue;
    const other = readCluster(StatePaths.of(root, entry));
    const index = other?.settings?.clusterIndex;
    if (typeof index === 'number') held.set(index, `cluster ${other!.settings.name}`);
  }
  return held;
}

async function boundBySomeone(index: number, nodes: readonly number[]): Promise<string | undefined> {
  for (const node of nodes) {
    const addr = formatIpv4(underlayAddress(index, node));
    if (!(await canBind(addr, VXLAN_PORT))) return `a socket bound to ${addr}:${VXLAN_PORT}`;
  }
  return undefined;
}

function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(new Error(`probing ${address}:${port}: ${err.message}`));
    });
    socket.bind({ address, port, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}
