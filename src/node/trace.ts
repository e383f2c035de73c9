/**
 * `podwire trace`: the life of one packet through a node's live tables, without sending it.
 *
 * A first packet of a connection from a pod to IP:PORT is pushed through what the pipeline
 * would consult, stage by stage: the connection table, kube-proxy's rules as the chain
 * interpreter walks them (every rule hit, as iptables-save prints it), the compiled
 * service table's decision (which must agree), the route, NetworkPolicy for egress and
 * ingress, and the source NAT. Cold path: it allocates freely and reads no packet.
 */
import { cidrContains, formatIpv4 } from '../packet/addr.js';
import type { Cluster, Node, Pod } from '../cluster/model.js';
import { saveRuleArgs } from '../netfilter/iptables-save.js';
import { RecentLists, traverse, type Traversal } from '../netfilter/interpreter.js';
import { kubeProxyRules, type ServiceRuleInputs } from '../netfilter/kube-proxy.js';
import { formatExplanation, type PolicyTables } from '../netfilter/policy.js';
import { FlowDecision, FlowVerdict, type ServiceTable } from '../netfilter/service-table.js';
import type { Conntrack } from '../netfilter/conntrack.js';
import { drawFromUnit } from '../netfilter/rules.js';
import type { OverlayPeers } from '../overlay/peers.js';
import { DROP_REASONS, Drop } from './drops.js';

export interface TraceRequest {
  pod: Pod;
  dst: number;
  dport: number;
  proto: 'tcp' | 'udp';
}

export interface TraceStage {
  stage: string;
  detail: string[];
}

export interface TraceResult {
  stages: TraceStage[];
  verdict: 'delivered' | 'dropped' | 'rejected';
  /** Where it ends up: a pod, a node over the overlay, the outside; or the drop reason. */
  outcome: string;
  /** One of the fixed drop reasons (drops.ts) when dropped. */
  dropReason?: string;
}

export interface TraceContext {
  cluster: Cluster;
  node: Node;
  inputs: ServiceRuleInputs;
  services: ServiceTable | undefined;
  policy: PolicyTables | undefined;
  conntrack: Conntrack;
  peers: OverlayPeers;
  now: number;
}

const PROTO_NUMBER = { tcp: 6, udp: 17 } as const;
/** The same draw for the interpreter and the compiled table, so both pick the same endpoint. */
const TRACE_DRAW = 0.5;

function podAt(cluster: Cluster, ip: number): Pod | undefined {
  return cluster.pods.find((p) => p.ip === ip);
}

function describe(cluster: Cluster, ip: number): string {
  const pod = podAt(cluster, ip);
  if (pod !== undefined) return `${formatIpv4(ip)} (pod ${pod.namespace}/${pod.name} on ${pod.node})`;
  const service = cluster.services.find((s) => s.clusterIP === ip || s.loadBalancerIngress === ip);
  if (service !== undefined) return `${formatIpv4(ip)} (service ${service.namespace}/${service.name})`;
  return formatIpv4(ip);
}

export function tracePacket(ctx: TraceContext, req: TraceRequest): TraceResult {
  const { cluster, node, pod } = { ...ctx, pod: req.pod };
  const proto = PROTO_NUMBER[req.proto];
  const sport = 40000;
  const stages: TraceStage[] = [];
  const dropped = (reason: number, outcome: string): TraceResult => ({
    stages,
    verdict: reason === Drop.NoEndpoints ? 'rejected' : 'dropped',
    outcome,
    dropReason: DROP_REASONS[reason].name,
  });

  stages.push({
    stage: 'ingress',
    detail: [`${req.proto.toUpperCase()} ${formatIpv4(pod.ip)}:${sport} -> ${describe(cluster, req.dst)}:${req.dport}`, `from pod ${pod.namespace}/${pod.name}, port eth0 on ${node.name}, to the gateway ${formatIpv4(node.gateway)}`],
  });
  const existing = ctx.conntrack.lookup(pod.ip, req.dst, sport, req.dport, proto, ctx.now);
  stages.push({ stage: 'conntrack', detail: [existing < 0 ? 'no entry: a NEW connection' : 'an entry exists: ESTABLISHED, its NAT applies'] });

  // kube-proxy's rules, walked as iptables would.
  const rules = kubeProxyRules(ctx.inputs);
  const locals = new Set<number>([node.gateway, node.externalIP, node.podCIDR.base]);
  const traversal: Traversal = traverse(
    rules,
    { src: pod.ip, dst: req.dst, proto, sport, dport: req.dport, mark: 0, ctstate: 'NEW', inRole: 'pod' },
    { random: () => TRACE_DRAW, now: ctx.now / 1e9, recent: new RecentLists() },
    { origin: 'arriving', isLocalAddress: (a) => locals.has(a >>> 0) },
  );
  for (const step of traversal.steps) {
    const hits = step.result.hits.map((h) => `-A ${h.chain} ${saveRuleArgs(h.rule)}  [${h.table} ${h.chain} #${h.position}]`);
    stages.push({ stage: `${step.hook} (rules)`, detail: hits.length > 0 ? hits : ['no rule matched: policy ACCEPT'] });
  }

  // The compiled table, which the dataplane actually consults.
  let dst = req.dst;
  let dport = req.dport;
  let masquerade = false;
  if (ctx.services !== undefined) {
    const decision = new FlowDecision();
    const verdict = ctx.services.classify(pod.ip, req.dst, proto, req.dport, drawFromUnit(TRACE_DRAW), null, decision);
    const agree = traversal.dnat === undefined ? verdict !== FlowVerdict.Dnat : verdict === FlowVerdict.Dnat && (traversal.dnat.address >>> 0) === decision.dnatAddress;
    const lines = [`compiled service table: ${['no service', 'DNAT', 'REJECT', 'DROP'][verdict]}${agree ? ' (agrees with the rules)' : ' (DISAGREES with the rules: please report)'}`];
    if (verdict === FlowVerdict.Reject) {
      stages.push({ stage: 'service', detail: [...lines, 'no ready endpoint: REJECT with ICMP port unreachable'] });
      return dropped(Drop.NoEndpoints, 'rejected: the service has no ready endpoint');
    }
    if (verdict === FlowVerdict.Drop) {
      stages.push({ stage: 'service', detail: lines });
      return dropped(Drop.NoLocalEndpoints, 'dropped: no local endpoint for a Local service');
    }
    if (verdict === FlowVerdict.Dnat) {
      dst = decision.dnatAddress;
      dport = decision.dnatPort;
      lines.push(`DNAT to ${describe(cluster, dst)}:${dport}`);
    }
    masquerade = decision.masquerade;
    stages.push({ stage: 'service', detail: lines });
  }

  // The route on the translated destination.
  let outcome: string;
  let egressAddress: number;
  if (cidrContains(node.podCIDR, dst)) {
    const target = podAt(cluster, dst);
    if (target === undefined || target.node !== node.name) {
      stages.push({ stage: 'route', detail: [`${formatIpv4(dst)} is in ${node.name}'s pod CIDR but no pod holds it`] });
      return dropped(Drop.NoNeighbour, 'dropped: host unreachable');
    }
    outcome = `delivered to pod ${target.namespace}/${target.name} on this node (bridge)`;
    egressAddress = node.gateway;
    stages.push({ stage: 'route', detail: [`local: ${formatIpv4(node.podCIDR.base)}/${node.podCIDR.prefix} dev cni0 (the bridge)`] });
  } else if (cidrContains(cluster.settings.podCIDR, dst)) {
    const peer = ctx.peers.peerFor(dst);
    if (peer === undefined) {
      stages.push({ stage: 'route', detail: [`no node holds ${formatIpv4(dst)}`] });
      return dropped(Drop.NoRoute, 'dropped: no route');
    }
    outcome = `encapsulated to ${peer.node} (VXLAN VNI ${cluster.settings.vni} to ${formatIpv4(peer.underlayAddr)}:${peer.underlayPort})`;
    egressAddress = node.podCIDR.base;
    stages.push({ stage: 'route', detail: [`${formatIpv4(peer.subnet.base)}/${peer.subnet.prefix} via ${formatIpv4(peer.subnet.base)} dev flannel.1 onlink`] });
  } else if (cidrContains(cluster.settings.serviceCIDR, dst)) {
    stages.push({ stage: 'route', detail: [`${formatIpv4(dst)} is in the service CIDR but no service port matches`] });
    return dropped(Drop.NoRoute, 'dropped: no route');
  } else {
    outcome = `sent out of the uplink to the outside world (${formatIpv4(cluster.settings.externalCIDR.base)}/${cluster.settings.externalCIDR.prefix})`;
    egressAddress = node.externalIP;
    masquerade = true;
    stages.push({ stage: 'route', detail: [`default via ${formatIpv4(cluster.settings.externalGateway)} dev uplink`] });
  }

  // NetworkPolicy on the translated destination.
  if (ctx.policy !== undefined) {
    const egress = ctx.policy.explain('egress', pod.ip, dst, proto, dport);
    const lines = formatExplanation(egress);
    let allowed = egress.allowed;
    if (cidrContains(node.podCIDR, dst)) {
      const ingress = ctx.policy.explain('ingress', dst, pod.ip, proto, dport);
      lines.push(...formatExplanation(ingress));
      allowed = allowed && ingress.allowed;
    } else if (cidrContains(cluster.settings.podCIDR, dst)) {
      lines.push('ingress is judged on the destination node');
    }
    stages.push({ stage: 'FORWARD (NetworkPolicy)', detail: lines });
    if (!allowed) return dropped(Drop.PolicyDenied, 'dropped: NetworkPolicy');
  }
  stages.push({ stage: 'POSTROUTING (NAT)', detail: [masquerade ? `MASQUERADE to ${formatIpv4(egressAddress)} (--random-fully)` : 'no source NAT'] });
  return { stages, verdict: 'delivered', outcome };
}

export function formatTrace(result: TraceResult): string {
  const lines: string[] = [];
  for (const s of result.stages) {
    lines.push(`${s.stage}:`);
    for (const d of s.detail) lines.push(`    ${d}`);
  }
  lines.push(`verdict: ${result.verdict}: ${result.outcome}${result.dropReason !== undefined ? ` [drop reason: ${result.dropReason}]` : ''}`);
  return `${lines.join('\n')}\n`;
}
