/**
 * `podwire trace`: the life of one packet through a node, told by the forwarding path
 * itself. A first packet of a connection is made up (from a pod of this node, from the
 * outside network, or from another node over the overlay) and walked through the node's
 * real stages as a dry run: the same conntrack lookup, service table, routing, policy and
 * source NAT, with a recorder noting each decision and a transmit that keeps what would be
 * sent. The recorder adds what a person wants beside the verdict: kube-proxy's rules as
 * iptables-save prints them (walked by the rule interpreter with the same random draw, and
 * checked against the compiled table) and the NetworkPolicy that decided.
 *
 * Cold path: it allocates freely.
 */
import { cidrContains, formatIpv4, formatMac } from '../packet/addr.js';
import { emitEthernet, ETHERNET_HEADER_LEN, ETHERTYPE } from '../packet/ethernet.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN, Ipv4View } from '../packet/ipv4.js';
import { emitTcp, TCP_SYN, TcpView } from '../packet/tcp.js';
import { emitUdp, UDP_HEADER_LEN, UdpView } from '../packet/udp.js';
import { emitVxlan, VXLAN_HEADER_LEN } from '../packet/vxlan.js';
import { PacketOk } from '../packet/errors.js';
import type { Cluster, Node, Pod } from '../cluster/model.js';
import { saveRuleArgs } from '../kube/iptables-save.js';
import { RecentLists, traverse, type Traversal } from '../kube/interpreter.js';
import { kubeProxyRules, type ServiceRuleInputs } from '../kube/kube-proxy.js';
import { formatExplanation, type PolicyTables } from '../kube/policy.js';
import type { InterfaceRole } from '../kube/rules.js';
import { FlowVerdict } from '../kube/service-table.js';
import { Egress, Ingress, Verdict, type FrameContext } from '../datapath/context.js';
import { Drop, DROP_REASONS } from '../datapath/drops.js';
import type { Pipeline } from '../datapath/pipeline.js';
import type { PathRecorder, StageName } from '../datapath/recorder.js';
import type { PathTables } from '../datapath/tables.js';
import type { Transmit } from '../datapath/transmit.js';

/** Where the traced packet enters the node. */
export type TraceSource =
  | { kind: 'pod'; pod: Pod }
  | { kind: 'outside'; addr: number }
  | { kind: 'node'; node: Node; addr: number };

export interface TraceRequest {
  from: TraceSource;
  dst: number;
  dport: number;
  sport: number;
  proto: 'tcp' | 'udp';
}

export interface TraceStage {
  stage: string;
  detail: string[];
}

export interface TracePacket {
  src: number;
  dst: number;
  sport: number;
  dport: number;
}

export interface TraceResult {
  stages: TraceStage[];
  verdict: 'delivered' | 'dropped' | 'rejected' | 'answered';
  /** Where it ends up: a pod, a node over the overlay, the outside; or the drop reason. */
  outcome: string;
  /** One of the fixed drop reasons (drops.ts) when dropped. */
  dropReason?: string;
  /** The packet as it leaves, NAT applied (undefined when nothing leaves). */
  packet?: TracePacket;
  /** Where it leaves: `pod NS/NAME`, `node NAME`, `uplink`, `flood`. */
  egress?: string;
}

export interface TraceContext {
  cluster: Cluster;
  node: Node;
  inputs: ServiceRuleInputs;
  pipeline: Pipeline;
}

/** The same draw for the interpreter and the compiled table, so both pick the same endpoint. */
export const TRACE_DRAW = 0.5;
const TTL = 64;

function podAt(cluster: Cluster, ip: number): Pod | undefined {
  return cluster.pods.find((p) => p.ip === ip);
}

function describe(cluster: Cluster, ip: number): string {
  const pod = podAt(cluster, ip);
  if (pod !== undefined) return `${formatIpv4(ip)} (pod ${pod.namespace}/${pod.name} on ${pod.node})`;
  const service = cluster.services.find((s) => s.clusterIP === ip || s.loadBalancerIngress === ip || s.externalIPs?.includes(ip) === true);
  if (service !== undefined) return `${formatIpv4(ip)} (service ${service.namespace}/${service.name})`;
  const node = cluster.nodes.find((n) => n.externalIP === ip || n.gateway === ip);
  if (node !== undefined) return `${formatIpv4(ip)} (node ${node.name})`;
  return formatIpv4(ip);
}

/** Collects what the stages say, in the order they say it, with the rules and policies spelled out. */
class TraceRecorder implements PathRecorder {
  readonly stages: TraceStage[] = [];
  endStage: StageName = 'pod-ingress';
  endVerdict: Verdict = Verdict.Drop;
  dropReason: Drop | undefined;
  /** The new flow's rewrite, from its tuples (a dry run rewrites no bytes for a new flow). */
  rewrite: TracePacket | undefined;

  constructor(
    private readonly ctx: TraceContext,
    private readonly inRole: InterfaceRole,
  ) {}

  note(stage: StageName, line: string): void {
    this.add(stage, line);
  }

  service(frame: FrameContext, verdict: FlowVerdict): void {
    const { cluster, node, inputs } = this.ctx;
    const ip = frame.ip;
    const locals = new Set<number>([node.gateway, node.externalIP, node.podCIDR.base]);
    const traversal: Traversal = traverse(
      kubeProxyRules(inputs),
      { src: ip.srcAddr, dst: frame.dstAddr, proto: ip.protocol, sport: frame.orig.sport, dport: frame.dstPort, mark: 0, ctstate: 'NEW', inRole: this.inRole },
      { random: () => TRACE_DRAW, now: frame.nowNs / 1e9, recent: new RecentLists() },
      { origin: 'arriving', isLocalAddress: (a) => locals.has(a >>> 0) },
    );
    for (const step of traversal.steps) {
      const hits = step.result.hits.map((h) => `-A ${h.chain} ${saveRuleArgs(h.rule)}  [${h.table} ${h.chain} #${h.position}]`);
      this.stages.push({ stage: `${step.hook} (kube-proxy rules)`, detail: hits.length > 0 ? hits : ['no rule matched: policy ACCEPT'] });
    }
    const decision = frame.decision;
    const agree = traversal.dnat === undefined ? verdict !== FlowVerdict.Dnat : verdict === FlowVerdict.Dnat && (traversal.dnat.address >>> 0) === decision.dnatAddress;
    this.add('service-nat', `compiled service table: ${['no service', 'DNAT', 'REJECT', 'DROP'][verdict]}${agree ? ' (agrees with the rules)' : ' (DISAGREES with the rules: please report)'}`);
    if (verdict === FlowVerdict.Dnat) this.add('service-nat', `DNAT to ${describe(cluster, decision.dnatAddress)}:${decision.dnatPort}`);
    if (verdict === FlowVerdict.Reject) this.add('service-nat', 'no ready endpoint: REJECT with ICMP port unreachable');
    if (verdict === FlowVerdict.Drop) this.add('service-nat', 'external traffic to a Local service with no endpoint on this node: DROP');
    if (verdict === FlowVerdict.Firewall) this.add('service-nat', "a source outside the load balancer's loadBalancerSourceRanges: DROP (KUBE-PROXY-FIREWALL)");
  }

  policy(direction: 'egress' | 'ingress', subject: number, peer: number, protocol: number, port: number, allowed: boolean): void {
    const tables: PolicyTables | undefined = this.ctx.pipeline.policy;
    if (tables === undefined) return;
    const lines = formatExplanation(tables.explain(direction, subject, peer, protocol, port));
    for (const line of lines) this.add('policy', line);
    if (!allowed) this.add('policy', `${direction} of ${describe(this.ctx.cluster, subject)} denied`);
  }

  end(stage: StageName, verdict: Verdict, frame: FrameContext): void {
    this.endStage = stage;
    this.endVerdict = verdict;
    if (verdict === Verdict.Drop) this.dropReason = frame.drop;
    if (frame.isNew && verdict === Verdict.Egress) {
      const r = frame.reply;
      this.rewrite = { src: r.dst, dst: r.src, sport: r.dport, dport: r.sport };
    }
  }

  private add(stage: string, line: string): void {
    const last = this.stages[this.stages.length - 1];
    if (last !== undefined && last.stage === stage) last.detail.push(line);
    else this.stages.push({ stage, detail: [line] });
  }
}

/** Keeps what the walk would send instead of sending it. */
class RecordingTransmit implements Transmit {
  egress: string | undefined;
  frame: Buffer | undefined;
  outcome = '';

  constructor(private readonly cluster: Cluster) {}

  send(ctx: FrameContext, t: PathTables): void {
    if (ctx.egress === Egress.None) return;
    this.frame = Buffer.from(ctx.txBuf.subarray(ctx.txOffset, ctx.txOffset + ctx.txLength));
    switch (ctx.egress) {
      case Egress.Pod: {
        const pod = t.slots[ctx.egressSlot];
        this.egress = `pod ${pod?.name ?? ctx.egressSlot}`;
        this.outcome = `to pod ${pod?.name ?? '?'} on this node (${ctx.bridged ? 'switched by the bridge' : 'routed through the bridge'})`;
        break;
      }
      case Egress.Peer: {
        const peer = ctx.egressPeer!;
        this.egress = `node ${peer.node}`;
        this.outcome = `encapsulated to ${peer.node} (VXLAN VNI ${t.node.vni} to ${formatIpv4(peer.underlayAddr)}:${peer.underlayPort}, inner ${formatMac(t.node.vtepMac)} -> ${formatMac(peer.vtepMac)})`;
        break;
      }
      case Egress.Uplink:
      case Egress.UplinkAddressed: {
        this.egress = 'uplink';
        const mac = t.neighbours.lookup(ctx.nextHop, ctx.nowNs);
        this.outcome = `sent out of the uplink to the outside network${ctx.egress === Egress.Uplink ? ` via ${describe(this.cluster, ctx.nextHop)}${mac < 0 ? ' (its MAC unknown: ARP first)' : ` at ${formatMac(mac)}`}` : ''}`;
        break;
      }
      case Egress.Flood:
        this.egress = 'flood';
        this.outcome = 'flooded to every pod port of the bridge';
        break;
    }
  }
}

/** Makes the first packet of the traced connection, as it would arrive where it enters. */
function synthesise(ctx: TraceContext, req: TraceRequest): { frame: Buffer; ingress: Ingress; slot?: number; srcAddr?: number; srcPort?: number; src: number; role: InterfaceRole } {
  const { cluster, node, pipeline } = ctx;
  const proto = req.proto === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP;
  const l4Length = proto === IPPROTO.TCP ? 20 : UDP_HEADER_LEN;
  const from = req.from;
  let src: number;
  let srcMac: number;
  let dstMac: number;
  let lead = 0;
  if (from.kind === 'pod') {
    src = from.pod.ip;
    srcMac = from.pod.mac;
    // A pod reaches its own subnet on-link (the CNI's route), everything else through the gateway.
    const neighbour = cidrContains(node.podCIDR, req.dst) ? podAt(cluster, req.dst) : undefined;
    dstMac = neighbour !== undefined && neighbour.node === node.name && neighbour !== from.pod ? neighbour.mac : node.gatewayMac;
  } else if (from.kind === 'outside') {
    src = from.addr;
    srcMac = 0x02_00_c0_00_02_00 + (from.addr & 0xff);
    dstMac = node.externalMac;
  } else {
    src = from.addr;
    srcMac = from.node.vtepMac;
    dstMac = node.vtepMac;
    lead = VXLAN_HEADER_LEN;
  }
  const frame = Buffer.alloc(lead + ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + l4Length);
  if (lead > 0) emitVxlan({ vni: cluster.settings.vni }, frame, 0);
  const ethAt = lead;
  const ipAt = ethAt + ETHERNET_HEADER_LEN;
  const l4At = ipAt + IPV4_HEADER_LEN;
  emitEthernet({ dstMac, srcMac, ethertype: ETHERTYPE.IPV4 }, frame, ethAt);
  emitIpv4(
    { src, dst: req.dst, protocol: proto, ttl: TTL, payloadLength: l4Length, dscp: 0, ecn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 },
    frame,
    ipAt,
  );
  const pseudo = { src, dst: req.dst };
  if (proto === IPPROTO.TCP) {
    emitTcp({ srcPort: req.sport, dstPort: req.dport, seq: 1, ack: 0, flags: TCP_SYN, window: 64240, urgent: 0, options: { sackPermitted: false } }, frame, l4At, 0, pseudo);
  } else {
    emitUdp({ srcPort: req.sport, dstPort: req.dport }, frame, l4At, 0, pseudo);
  }
  if (from.kind === 'pod') {
    const slot = pipeline.pods().find((p) => p.ip === from.pod.ip)?.slot;
    if (slot === undefined) throw new Error(`pod ${from.pod.namespace}/${from.pod.name} has no port on ${node.name} yet`);
    return { frame, ingress: Ingress.Pod, slot, src, role: 'pod' };
  }
  if (from.kind === 'outside') return { frame, ingress: Ingress.Uplink, src, role: 'uplink' };
  const peer = pipeline.peers.all().find((p) => p.node === from.node.name);
  if (peer === undefined) throw new Error(`node ${from.node.name} is not a peer of ${node.name}`);
  return { frame, ingress: Ingress.Overlay, srcAddr: peer.underlayAddr, srcPort: peer.underlayPort, src, role: 'overlay' };
}

function sourceLine(ctx: TraceContext, req: TraceRequest, src: number): string {
  const { cluster, node } = ctx;
  const from = req.from;
  const head = `${req.proto.toUpperCase()} ${formatIpv4(src)}:${req.sport} -> ${describe(cluster, req.dst)}:${req.dport}`;
  if (from.kind === 'pod') {
    const neighbour = cidrContains(node.podCIDR, req.dst) && req.dst !== from.pod.ip;
    return `${head}, from pod ${from.pod.namespace}/${from.pod.name}, port eth0 on ${node.name}, ${neighbour ? 'to its neighbour on the bridge' : `to the gateway ${formatIpv4(node.gateway)}`}`;
  }
  if (from.kind === 'outside') return `${head}, from the outside network to ${node.name}'s uplink (${formatIpv4(node.externalIP)})`;
  return `${head}, over the overlay from ${from.node.name} (${formatIpv4(from.node.underlay)}) to ${node.name}'s VTEP`;
}

export function tracePacket(ctx: TraceContext, req: TraceRequest): TraceResult {
  const made = synthesise(ctx, req);
  const recorder = new TraceRecorder(ctx, made.role);
  recorder.note(made.ingress === Ingress.Pod ? 'pod-ingress' : made.ingress === Ingress.Uplink ? 'uplink-ingress' : 'decap', sourceLine(ctx, req, made.src));
  const transmit = new RecordingTransmit(ctx.cluster);
  ctx.pipeline.dryRun({ ingress: made.ingress, frame: made.frame, slot: made.slot, srcAddr: made.srcAddr, srcPort: made.srcPort, recorder, transmit, draw: TRACE_DRAW });
  const stages = recorder.stages;
  const reason = recorder.dropReason;
  if (recorder.endVerdict === Verdict.Drop && reason !== undefined) {
    const name = DROP_REASONS[reason].name;
    const rejected = reason === Drop.NoEndpoints;
    return {
      stages,
      verdict: rejected ? 'rejected' : 'dropped',
      outcome: `${rejected ? 'rejected' : 'dropped'} at ${recorder.endStage}: ${DROP_REASONS[reason].description}`,
      dropReason: name,
    };
  }
  if (recorder.endVerdict === Verdict.Stolen) {
    return { stages, verdict: 'answered', outcome: `answered by ${ctx.node.name} itself (${recorder.endStage})` };
  }
  const packet = recorder.rewrite ?? readPacket(transmit.frame);
  return { stages, verdict: 'delivered', outcome: transmit.outcome, packet, egress: transmit.egress };
}

/** The addresses and ports of the IPv4 packet in an Ethernet frame. */
function readPacket(frame: Buffer | undefined): TracePacket | undefined {
  if (frame === undefined) return undefined;
  const ip = new Ipv4View();
  if (ip.check(frame, ETHERNET_HEADER_LEN) !== PacketOk) return undefined;
  let sport = 0;
  let dport = 0;
  if (ip.protocol === IPPROTO.TCP) {
    const tcp = new TcpView();
    if (tcp.check(frame, ip.payloadOffset, ip.payloadLength) === PacketOk) ({ srcPort: sport, dstPort: dport } = tcp);
  } else if (ip.protocol === IPPROTO.UDP) {
    const udp = new UdpView();
    if (udp.check(frame, ip.payloadOffset, ip.payloadLength) === PacketOk) ({ srcPort: sport, dstPort: dport } = udp);
  }
  return { src: ip.srcAddr, dst: ip.dstAddr, sport, dport };
}

export function formatTrace(result: TraceResult): string {
  const lines: string[] = [];
  for (const s of result.stages) {
    lines.push(`${s.stage}:`);
    for (const d of s.detail) lines.push(`    ${d}`);
  }
  if (result.packet !== undefined) {
    const p = result.packet;
    lines.push(`leaves as: ${formatIpv4(p.src)}:${p.sport} -> ${formatIpv4(p.dst)}:${p.dport}`);
  }
  lines.push(`verdict: ${result.verdict}: ${result.outcome}${result.dropReason !== undefined ? ` [drop reason: ${result.dropReason}]` : ''}`);
  return `${lines.join('\n')}\n`;
}
