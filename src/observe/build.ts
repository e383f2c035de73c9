/**
 * A node's recorded flow event made into a Hubble flow, when a reader asks: the numbers
 * the path stored (flow-ring.ts) named through the node's directory (pods, nodes,
 * services) and its NetworkPolicy (which policy allowed or denied), in Hubble's fields.
 *
 * What each event becomes:
 * - a new connection: a `trace` event at the point it left (to-endpoint, to-overlay,
 *   to-network), FORWARDED, its destination the backend a service's DNAT chose, with
 *   destination_service naming the service;
 * - its NAT: a `trace-sock` post-xlate-fwd event, TRANSLATED, the summary saying what was
 *   rewritten (DNAT from the service address, SNAT to the node's);
 * - a drop: a `drop` event, DROPPED, Cilium's nearest drop reason (hubble.ts DROP_OF), the
 *   stage's observation point, and for a policy drop the policies that denied;
 * - a policy verdict: a `policy-verdict` event, ALLOWED (with the rule's policy and its
 *   match type) or DENIED (with the policies isolating the pod, a default deny included);
 * - a connection's end: the FIN or RST as a `trace` event where it came in, FORWARDED; a
 *   connection conntrack removed (expired, evicted, destroyed) as a `trace` event at
 *   to-stack, TRACED, the summary saying how it ended;
 * - DNS: L7 `dns-request` and `dns-response` events (name, types, rcode, addresses, TTL),
 *   observed by the node's embedded DNS in the place of Cilium's DNS proxy.
 *
 * Names are those of the node's current view: a pod gone, or a policy changed, since the
 * event was recorded is named as the view has it now.
 */
import { formatIpv4, formatMac } from '../packet/addr.js';
import { IPPROTO } from '../packet/ipv4.js';
import { wireToText } from '../dns/name.js';
import type { PolicyTables } from '../kube/policy.js';
import type { PolicyDirection } from '../kube/policy-layout.js';
import { Drop } from '../datapath/drops.js';
import { Ingress } from '../datapath/context.js';
import { DNS_ANSWERS, DNS_NAME_BYTES, EndCause, FlowFlag, FlowKind, NO_STAGE, type FlowRing } from '../datapath/flow-ring.js';
import { STAGE_NAMES } from '../datapath/recorder.js';
import type { FlowDirectory } from './directory.js';
import { formatTimestamp, type Flow, type Layer4, type Policy, type Service, type TcpFlags, type Timestamp } from './flow.js';
import {
  ciliumDropByCode,
  DNS_SOURCE_PROXY,
  dnsRcodeText,
  dnsTypeName,
  DROP_OF,
  egressPoint,
  EventType,
  icmpv4TypeCode,
  ingressPoint,
  PolicyMatch,
  stagePoint,
  TCP_FLAG_BITS,
  TCP_FLAG_FIELDS,
  tcpFlagsText,
  TRACE_POINT_ENUM,
  TracePoint,
  XLATE_POINT_ENUM,
  XLATE_POST_DIRECTION_FWD,
  type VerdictName,
} from './hubble.js';

export interface BuildContext {
  readonly nodeName: string;
  readonly directory: FlowDirectory;
  /** The node's NetworkPolicy now, to name the policies behind verdicts. */
  readonly policy: PolicyTables | undefined;
  /** The path's clock (ns) as a point in time. */
  time(clockNs: number): Timestamp;
  /** A flow's stable UUID, from its sequence number. */
  uuid(seq: number): string;
}

const POLICY_KIND = 'NetworkPolicy';

/**
 * A flow's UUID: the node's 48 random bits, then the event's sequence number, laid out as
 * an RFC 9562 version 8 (custom) UUID, so that the same event read twice, or by two
 * readers, has the same one.
 */
export function flowUuid(node48: string, seq: number): string {
  const n = node48.padStart(12, '0').slice(-12);
  const s = seq.toString(16).padStart(16, '0');
  return `${n.slice(0, 8)}-${n.slice(8, 12)}-8000-8${s.slice(1, 4)}-${s.slice(4)}`;
}

/** The event `seq` of `ring` as a flow; undefined when the ring no longer holds it. */
export function buildFlow(ring: FlowRing, seq: number, ctx: BuildContext): Flow | undefined {
  if (seq < ring.oldest || seq >= ring.written) return undefined;
  const e = new EventView(ring, ring.slotOf(seq));
  const base = { time: formatTimestamp(ctx.time(ring.time[e.i])), uuid: ctx.uuid(seq) };
  switch (e.kind) {
    case FlowKind.Connection:
      return connection(e, base, ctx);
    case FlowKind.Translation:
      return translation(e, base, ctx);
    case FlowKind.Drop:
      return drop(e, base, ctx);
    case FlowKind.PolicyVerdict:
      return policyVerdict(e, base, ctx);
    case FlowKind.ConnectionEnd:
      return connectionEnd(e, base, ctx);
    case FlowKind.DnsRequest:
    case FlowKind.DnsResponse:
      return dns(e, base, ctx);
    default:
      return undefined;
  }
}

/** One slot's fields, read as the numbers they are. */
class EventView {
  constructor(
    readonly r: FlowRing,
    readonly i: number,
  ) {}
  get kind(): number {
    return this.r.kind[this.i];
  }
  has(flag: number): boolean {
    return (this.r.flags[this.i] & flag) !== 0;
  }
  get proto(): number {
    return this.r.proto[this.i];
  }
  get src(): number {
    return this.r.src[this.i] >>> 0;
  }
  get dst(): number {
    return this.r.dst[this.i] >>> 0;
  }
  get sport(): number {
    return this.r.sport[this.i];
  }
  get dport(): number {
    return this.r.dport[this.i];
  }
  get origDst(): number {
    return this.r.origDst[this.i] >>> 0;
  }
  get origDport(): number {
    return this.r.origDport[this.i];
  }
  get ingress(): number {
    return this.r.ingress[this.i];
  }
  get stageName(): (typeof STAGE_NAMES)[number] | undefined {
    const s = this.r.stage[this.i];
    return s === NO_STAGE ? undefined : STAGE_NAMES[s];
  }
}

type Base = { readonly time: string; readonly uuid: string };

/** Addresses, transport, endpoints, services: what every L3/L4 event carries. */
function addressing(e: EventView, ctx: BuildContext, reversed = false): Pick<Flow, 'ethernet' | 'IP' | 'l4' | 'source' | 'destination' | 'destination_service' | 'source_service'> {
  const r = e.r;
  if (!e.has(FlowFlag.Ip)) {
    const src = r.ethSrc[e.i];
    const dst = r.ethDst[e.i];
    const sender = e.ingress === Ingress.Pod ? ctx.directory.endpointAtSlot(r.slot[e.i]) : undefined;
    return {
      ...(src === 0 && dst === 0 ? {} : { ethernet: { source: formatMac(src), destination: formatMac(dst) } }),
      ...(sender === undefined ? {} : { source: sender }),
    };
  }
  let src = e.src;
  let dst = e.dst;
  let sport = e.sport;
  let dport = e.dport;
  if (reversed) [src, dst, sport, dport] = [dst, src, dport, sport];
  const service = e.has(FlowFlag.Dnat) ? ctx.directory.service(e.origDst, e.proto, e.origDport) : undefined;
  return {
    IP: { source: formatIpv4(src), destination: formatIpv4(dst), ipVersion: 'IPv4' },
    ...layer4(e.proto, sport, dport, r.tcpFlags[e.i]),
    source: ctx.directory.endpoint(src),
    destination: ctx.directory.endpoint(dst),
    ...(service === undefined ? {} : reversed ? { source_service: service } : { destination_service: service }),
  };
}

function tcpFlags(bits: number): TcpFlags | undefined {
  const out: TcpFlags = {};
  for (const name of TCP_FLAG_FIELDS) if ((bits & TCP_FLAG_BITS[name]) !== 0) out[name] = true;
  return Object.keys(out).length === 0 ? undefined : out;
}

function layer4(proto: number, sport: number, dport: number, flags: number): { l4?: Layer4 } {
  switch (proto) {
    case IPPROTO.TCP: {
      const f = tcpFlags(flags);
      return { l4: { TCP: { source_port: sport, destination_port: dport, ...(f === undefined ? {} : { flags: f }) } } };
    }
    case IPPROTO.UDP:
      return { l4: { UDP: { source_port: sport, destination_port: dport } } };
    case IPPROTO.ICMP:
      return { l4: { ICMPv4: { type: dport >>> 8, code: dport & 0xff } } };
    default:
      return {};
  }
}

/** The L3/L4 parser's summary: the TCP flags, UDP, the ICMP type, or the last layer decoded. */
function packetSummary(e: EventView): string {
  if (!e.has(FlowFlag.Ip)) return 'Ethernet';
  switch (e.proto) {
    case IPPROTO.TCP:
      return `TCP Flags: ${tcpFlagsText(e.r.tcpFlags[e.i])}`;
    case IPPROTO.UDP:
      return 'UDP';
    case IPPROTO.ICMP:
      return `ICMPv4 ${icmpv4TypeCode(e.dport >>> 8, e.dport & 0xff)}`;
    default:
      return 'IPv4';
  }
}

/** Egress when the source is a pod the node sent from, ingress when the traffic came to one. */
function direction(e: EventView): 'INGRESS' | 'EGRESS' {
  if (e.has(FlowFlag.Egress)) return 'EGRESS';
  if (e.has(FlowFlag.Ingress)) return 'INGRESS';
  return e.ingress === Ingress.Pod ? 'EGRESS' : 'INGRESS';
}

function trace(point: TracePoint): Pick<Flow, 'event_type' | 'trace_observation_point'> {
  return { event_type: { type: EventType.Trace, sub_type: point }, trace_observation_point: TRACE_POINT_ENUM[point] };
}

function l3l4(base: Base, verdict: VerdictName, ctx: BuildContext): Base & Pick<Flow, 'verdict' | 'Type' | 'node_name'> {
  return { ...base, verdict, Type: 'L3_L4', node_name: ctx.nodeName };
}

function connection(e: EventView, base: Base, ctx: BuildContext): Flow {
  return {
    ...l3l4(base, 'FORWARDED', ctx),
    ...addressing(e, ctx),
    ...trace(egressPoint(e.r.egress[e.i])),
    traffic_direction: direction(e),
    is_reply: false,
    Summary: packetSummary(e),
  };
}

function endpointText(addr: number, port: number, proto: number): string {
  return proto === IPPROTO.TCP || proto === IPPROTO.UDP ? `${formatIpv4(addr)}:${port}` : formatIpv4(addr);
}

function translation(e: EventView, base: Base, ctx: BuildContext): Flow {
  const r = e.r;
  const parts = [packetSummary(e)];
  if (e.has(FlowFlag.Dnat)) parts.push(`DNAT ${endpointText(e.origDst, e.origDport, e.proto)} -> ${endpointText(e.dst, e.dport, e.proto)}`);
  if (e.has(FlowFlag.Snat)) parts.push(`SNAT ${endpointText(e.src, e.sport, e.proto)} -> ${endpointText(r.snatSrc[e.i] >>> 0, r.snatSport[e.i], e.proto)}`);
  return {
    ...l3l4(base, 'TRANSLATED', ctx),
    ...addressing(e, ctx),
    event_type: { type: EventType.TraceSock, sub_type: XLATE_POST_DIRECTION_FWD },
    traffic_direction: direction(e),
    is_reply: false,
    sock_xlate_point: XLATE_POINT_ENUM[XLATE_POST_DIRECTION_FWD],
    Summary: parts.join('; '),
  };
}

function drop(e: EventView, base: Base, ctx: BuildContext): Flow {
  const reason = e.r.reason[e.i] as Drop;
  const code = DROP_OF[reason] ?? 0;
  const stage = e.stageName;
  const point = stage === undefined ? TracePoint.ToStack : stagePoint(stage, e.ingress);
  return {
    ...l3l4(base, 'DROPPED', ctx),
    ...(code === 0 ? {} : { drop_reason: code }),
    ...addressing(e, ctx),
    event_type: { type: EventType.Drop, sub_type: code },
    traffic_direction: direction(e),
    trace_observation_point: TRACE_POINT_ENUM[point],
    ...(code === 0 ? {} : { drop_reason_desc: ciliumDropByCode(code)?.name }),
    Summary: packetSummary(e),
    ...(reason === Drop.PolicyDenied ? deniedBy(e, ctx) : {}),
  };
}

/** What explains the policy verdict on event `e`, from the node's policy now. */
function explanation(e: EventView, ctx: BuildContext) {
  const tables = ctx.policy;
  if (tables === undefined || !e.has(FlowFlag.Ip)) return undefined;
  const egress = direction(e) === 'EGRESS';
  const way: PolicyDirection = egress ? 'egress' : 'ingress';
  const port = e.proto === IPPROTO.TCP || e.proto === IPPROTO.UDP ? e.dport : 0;
  return { way, explained: tables.explain(way, egress ? e.src : e.dst, egress ? e.dst : e.src, e.proto, port) };
}

function policyRef(qualified: string): Policy {
  const slash = qualified.indexOf('/');
  return { name: qualified.slice(slash + 1), namespace: qualified.slice(0, slash), kind: POLICY_KIND };
}

/** The policies that isolate the pod and allowed nothing of this: a default deny names itself. */
function deniedBy(e: EventView, ctx: BuildContext): Pick<Flow, 'egress_denied_by' | 'ingress_denied_by'> {
  const x = explanation(e, ctx);
  if (x === undefined || x.explained.applying.length === 0) return {};
  const policies = x.explained.applying.map(policyRef);
  return x.way === 'egress' ? { egress_denied_by: policies } : { ingress_denied_by: policies };
}

function policyVerdict(e: EventView, base: Base, ctx: BuildContext): Flow {
  const allowed = e.has(FlowFlag.Allowed);
  const x = explanation(e, ctx);
  let names: Pick<Flow, 'egress_allowed_by' | 'ingress_allowed_by' | 'egress_denied_by' | 'ingress_denied_by'> = {};
  let match: number = PolicyMatch.None;
  if (x !== undefined && allowed && x.explained.allowedBy !== undefined) {
    const by = x.explained.allowedBy;
    const policy = policyRef(by.policy);
    names = x.way === 'egress' ? { egress_allowed_by: [policy] } : { ingress_allowed_by: [policy] };
    match = matchType(ctx, by.policy, x.way, by.rule);
  } else if (!allowed) {
    names = deniedBy(e, ctx);
  }
  return {
    ...l3l4(base, allowed ? 'FORWARDED' : 'DROPPED', ctx),
    ...(allowed ? {} : { drop_reason: 133 }),
    ...addressing(e, ctx),
    event_type: { type: EventType.PolicyVerdict },
    traffic_direction: direction(e),
    ...(match === PolicyMatch.None ? {} : { policy_match_type: match }),
    ...(allowed ? {} : { drop_reason_desc: 'POLICY_DENIED' }),
    ...(allowed ? { is_reply: false } : {}),
    Summary: packetSummary(e),
    ...names,
  };
}

/** Which parts of the allowing rule matched: peers, ports, both, or neither (it allows all). */
function matchType(ctx: BuildContext, qualified: string, way: PolicyDirection, rule: number): number {
  const p = ctx.policy?.layout.policies.find((x) => `${x.namespace}/${x.name}` === qualified);
  const r = p === undefined ? undefined : way === 'ingress' ? { peers: p.ingress[rule]?.from, ports: p.ingress[rule]?.ports } : { peers: p.egress[rule]?.to, ports: p.egress[rule]?.ports };
  if (r === undefined || r.peers === undefined || r.ports === undefined) return PolicyMatch.None;
  const peers = r.peers.length > 0;
  const ports = r.ports.length > 0;
  return peers && ports ? PolicyMatch.L3L4 : peers ? PolicyMatch.L3Only : ports ? PolicyMatch.L4Only : PolicyMatch.All;
}

const END_TEXT: Readonly<Record<number, string>> = {
  [EndCause.Expired]: 'expired',
  [EndCause.Evicted]: 'evicted to make room',
  [EndCause.Destroyed]: 'destroyed',
};

function protocolName(proto: number): string {
  return proto === IPPROTO.TCP ? 'TCP' : proto === IPPROTO.UDP ? 'UDP' : proto === IPPROTO.ICMP ? 'ICMPv4' : `protocol ${proto}`;
}

function connectionEnd(e: EventView, base: Base, ctx: BuildContext): Flow {
  const cause = e.r.reason[e.i];
  const reply = e.has(FlowFlag.Reply);
  if (cause === EndCause.Closed) {
    return {
      ...l3l4(base, 'FORWARDED', ctx),
      ...addressing(e, ctx, reply),
      ...trace(ingressPoint(e.ingress)),
      traffic_direction: direction(e),
      is_reply: reply,
      Summary: packetSummary(e),
    };
  }
  return {
    ...l3l4(base, 'TRACED', ctx),
    ...addressing(e, ctx),
    ...trace(TracePoint.ToStack),
    is_reply: false,
    Summary: `${protocolName(e.proto)} connection ${END_TEXT[cause] ?? 'ended'}`,
  };
}

function dnsName(e: EventView): string {
  const length = e.r.dnsNameLength[e.i];
  if (length === 0) return '';
  const at = e.i * DNS_NAME_BYTES;
  return wireToText(e.r.dnsName.subarray(at, at + length), 0);
}

function dns(e: EventView, base: Base, ctx: BuildContext): Flow {
  const r = e.r;
  const response = e.kind === FlowKind.DnsResponse;
  const query = dnsName(e);
  const qtype = dnsTypeName(r.dnsQtype[e.i]);
  const at = e.i * DNS_ANSWERS;
  const ips = Array.from(r.dnsAddresses.subarray(at, at + r.dnsAddressCount[e.i]), (a) => formatIpv4(a >>> 0));
  const rrtypes = Array.from(r.dnsAnswerTypes.subarray(at, at + r.dnsAnswerTypeCount[e.i]), dnsTypeName);
  const rcode = r.dnsRcode[e.i];
  const ttl = r.dnsTtl[e.i];
  let summary = `DNS Query ${query} ${qtype}`;
  if (response) {
    const answer = rcode !== 0 ? `RCode: ${dnsRcodeText(rcode)}` : ips.length > 0 ? `"${ips.join(',')}"` : '';
    summary = `DNS Answer ${answer} TTL: ${ttl} (Proxy ${query} ${qtype})`;
  }
  return {
    ...base,
    verdict: 'FORWARDED',
    ...addressing(e, ctx),
    Type: 'L7',
    node_name: ctx.nodeName,
    l7: response
      ? { type: 'RESPONSE', dns: { query, ips, ttl, observation_source: DNS_SOURCE_PROXY, rcode, qtypes: [qtype], rrtypes } }
      : { type: 'REQUEST', dns: { query, observation_source: DNS_SOURCE_PROXY, qtypes: [qtype] } },
    ...(response ? { reply: true } : {}),
    event_type: { type: EventType.AccessLog },
    ...dnsService(e, ctx, response),
    traffic_direction: 'EGRESS',
    is_reply: response,
    Summary: summary,
  };
}

/** The cluster DNS service: the destination of a query, the source of its answer. */
function dnsService(e: EventView, ctx: BuildContext, response: boolean): Pick<Flow, 'source_service' | 'destination_service'> {
  const service: Service | undefined = response ? ctx.directory.service(e.src, e.proto, e.sport) : ctx.directory.service(e.dst, e.proto, e.dport);
  if (service === undefined) return {};
  return response ? { source_service: service } : { destination_service: service };
}
