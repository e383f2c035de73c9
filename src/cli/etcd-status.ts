/**
 * A cluster in etcd as `podwire status` and `podwire get` see it from any machine: read
 * once from the store, judged as the controller judged it (nodestatus records).
 */
import { formatCidr, formatIpv4 } from '../packet/addr.js';
import { joinEndpoints } from '../store/records.js';
import type { ClusterView } from '../store/view.js';
import type { ClusterFacts } from './get-inputs.js';
import { metricsUrl } from '../node/metrics-server.js';
import { table } from './table.js';

export function etcdFacts(view: ClusterView, now: number): ClusterFacts | undefined {
  const cluster = view.cluster();
  if (cluster === undefined) return undefined;
  const readyNodes = view.readyNodes();
  const podReady = view.podReadiness(readyNodes);
  const createdAt = new Map<string, number>();
  for (const m of view.manifests()) {
    const stamp = Date.parse(String((JSON.parse(m.text) as { metadata?: { creationTimestamp?: string } }).metadata?.creationTimestamp ?? ''));
    if (Number.isFinite(stamp)) createdAt.set(`${m.kind.toLowerCase()}/${m.namespace}/${m.name}`, stamp);
  }
  for (const [pod, stamp] of view.podCreatedAt) createdAt.set(`pod/${pod}`, stamp);
  for (const reg of view.registrations.values()) createdAt.set(`node/${reg.name}`, reg.registeredAt);
  return { cluster, endpoints: joinEndpoints(cluster.services, view.endpointRecords), podReady, podContainers: view.podContainers(), readyNodes, createdAt, fallbackTime: now };
}

export interface EtcdStatus {
  readonly name: string;
  readonly store: string;
  readonly revision: number;
  readonly controller?: string;
  readonly nodes: {
    name: string;
    machine: string;
    underlay: string;
    subnet: string;
    lease: 'held' | 'expired';
    heartbeatAgeSeconds?: number;
    /** Where the node serves /metrics, on its machine: http://127.0.0.1:PORT/metrics. */
    metrics?: string;
    ready: boolean;
    reason?: string;
  }[];
  readonly pods: { namespace: string; name: string; ip: string; node: string; ready: boolean }[];
}

export function etcdStatus(view: ClusterView, store: string, controller: string | undefined, now: number): EtcdStatus | undefined {
  const facts = etcdFacts(view, now);
  if (facts === undefined) return undefined;
  const subnetHolders = new Set([...view.subnets.values()].map((s) => s.node));
  return {
    name: view.keys.cluster,
    store,
    revision: view.revision,
    ...(controller !== undefined ? { controller } : {}),
    nodes: [...view.registrations.values()].map((reg) => {
      const heartbeat = view.heartbeats.get(reg.name);
      const condition = view.nodeConditions.get(reg.name);
      return {
        name: reg.name,
        machine: reg.machine,
        underlay: `${formatIpv4(reg.underlay)}:${reg.underlayPort}`,
        subnet: formatCidr(reg.subnet),
        lease: subnetHolders.has(reg.name) ? 'held' : 'expired',
        ...(heartbeat !== undefined ? { heartbeatAgeSeconds: Math.max(0, Math.round((now - heartbeat.renewTime) / 100) / 10) } : {}),
        ...(heartbeat?.metricsPort !== undefined ? { metrics: metricsUrl(heartbeat.metricsPort) } : {}),
        ready: condition?.ready === true,
        ...(condition !== undefined ? { reason: condition.reason } : {}),
      };
    }),
    pods: facts.cluster.pods.map((p) => ({ namespace: p.namespace, name: p.name, ip: formatIpv4(p.ip), node: p.node, ready: facts.podReady.get(`${p.namespace}/${p.name}`) === true })),
  };
}

export function formatEtcdStatus(status: EtcdStatus): string {
  const nodes = table(
    ['NODE', 'READY', 'MACHINE', 'UNDERLAY', 'SUBNET', 'LEASE', 'HEARTBEAT', 'PODS', 'METRICS (ON ITS MACHINE)'],
    status.nodes.map((n) => [
      n.name,
      n.ready ? 'Ready' : 'NotReady',
      n.machine,
      n.underlay,
      n.subnet,
      n.lease,
      n.heartbeatAgeSeconds !== undefined ? `${n.heartbeatAgeSeconds.toFixed(1)}s ago` : '-',
      String(status.pods.filter((p) => p.node === n.name).length),
      n.metrics !== undefined ? new URL(n.metrics).host : '-',
    ]),
  );
  const pods = table(
    ['NAMESPACE/NAME', 'IP', 'NODE', 'READY'],
    status.pods.map((p) => [`${p.namespace}/${p.name}`, p.ip, p.node, p.ready ? 'Ready' : 'NotReady']),
  );
  return `cluster ${status.name} (store ${status.store}, revision ${status.revision}${status.controller !== undefined ? `, controller on ${status.controller}` : ''})\n\n${nodes}\n\n${pods}\n`;
}
