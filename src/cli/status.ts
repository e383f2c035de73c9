/**
 * `podwire status`: nodes (process up or down; Ready or NotReady by their lease, as the
 * node agents judge it) and pods (namespace/name, IP, node, ready).
 */
import { formatCidr, formatIpv4 } from '../packet/addr.js';
import type { Cluster } from '../cluster/model.js';
import { leaseAgeSeconds, readyNodes } from '../cluster/node-lifecycle.js';
import { FileStore } from '../cluster/store.js';
import type { NodeStatus } from '../node/agent.js';
import { callControl } from '../node/control.js';
import type { StatePaths } from '../node/names.js';
import { containersSummary } from '../node/pod-runtime.js';
import { nodePid } from './state.js';
import { table } from './table.js';

export interface ClusterStatus {
  name: string;
  stateDir: string;
  nodes: {
    name: string;
    state: 'up' | 'down';
    pid?: number;
    underlay: string;
    podCIDR: string;
    /** Its lease was renewed within the grace period: its pods can serve. */
    ready: boolean;
    /** Seconds since its lease was last renewed; absent when it has none. */
    leaseAgeSeconds?: number;
    detail?: NodeStatus;
  }[];
  pods: {
    namespace: string;
    name: string;
    ip: string;
    node: string;
    ready: boolean;
    /** Restarts of all its containers, as kubectl's RESTARTS column counts them. */
    restarts: number;
    /** Why a container is not running (CrashLoopBackOff, CreateContainerConfigError, Error, ...), as kubectl's STATUS shows it. */
    reason?: string;
  }[];
}

export async function clusterStatus(name: string, paths: StatePaths, cluster: Cluster, now = Date.now()): Promise<ClusterStatus> {
  const nodes: ClusterStatus['nodes'] = [];
  const live = new Map<string, NodeStatus>();
  const { leases } = new FileStore(paths.dir).readLeases();
  const ready = readyNodes(leases, now, cluster.settings.nodeGracePeriodSeconds);
  for (const node of cluster.nodes) {
    const pid = nodePid(paths, node.name);
    let detail: NodeStatus | undefined;
    if (pid !== undefined) {
      detail = await callControl(paths.nodeSocket(node.name), 'status', {}, 2000).catch(() => undefined);
    }
    if (detail !== undefined) live.set(node.name, detail);
    const lease = leases.find((l) => l.node === node.name);
    nodes.push({
      name: node.name,
      state: detail !== undefined ? 'up' : 'down',
      ...(pid !== undefined ? { pid } : {}),
      underlay: formatIpv4(node.underlay),
      podCIDR: formatCidr(node.podCIDR),
      ready: ready.has(node.name),
      ...(lease !== undefined ? { leaseAgeSeconds: Math.round(leaseAgeSeconds(lease, now) * 10) / 10 } : {}),
      ...(detail !== undefined ? { detail } : {}),
    });
  }
  const pods = cluster.pods.map((pod) => {
    const seen = live.get(pod.node)?.pods.find((p) => p.namespace === pod.namespace && p.name === pod.name);
    const podReady = ready.has(pod.node) && seen?.ready === true;
    return { namespace: pod.namespace, name: pod.name, ip: formatIpv4(pod.ip), node: pod.node, ready: podReady, ...containersSummary(seen?.containers ?? []) };
  });
  return { name, stateDir: paths.dir, nodes, pods };
}

/** The I/O backends a node runs on, as the status table shows them: "tap=addon udp=addon+gso". */
export function describeBackends(detail: { tapBackend: string; overlay: { backend: string; udpOffload?: boolean } }): string {
  return `tap=${detail.tapBackend} udp=${detail.overlay.backend}${detail.overlay.udpOffload === true ? '+gso' : ''}`;
}

export function formatStatus(status: ClusterStatus): string {
  const nodes = table(
    ['NODE', 'STATUS', 'READY', 'LEASE', 'PID', 'UNDERLAY', 'POD CIDR', 'PODS', 'BACKEND', 'METRICS'],
    status.nodes.map((n) => [
      n.name,
      n.state === 'up' ? 'Up' : 'Down',
      n.ready ? 'Ready' : 'NotReady',
      n.leaseAgeSeconds !== undefined ? `${n.leaseAgeSeconds.toFixed(1)}s ago` : '-',
      n.pid !== undefined ? String(n.pid) : '-',
      `${n.underlay}:4789`,
      n.podCIDR,
      String(status.pods.filter((p) => p.node === n.name).length),
      n.detail !== undefined ? describeBackends(n.detail) : '-',
      n.detail?.metrics !== undefined ? `127.0.0.1:${n.detail.metrics.port}` : '-',
    ]),
  );
  const pods = table(
    ['NAMESPACE/NAME', 'IP', 'NODE', 'READY'],
    status.pods.map((p) => [`${p.namespace}/${p.name}`, p.ip, p.node, p.ready ? 'Ready' : 'NotReady']),
  );
  return `cluster ${status.name}\n\n${nodes}\n\n${pods}\n`;
}
