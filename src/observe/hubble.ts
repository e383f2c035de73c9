/**
 * Hubble's and Cilium's vocabulary, as their sources define it: event types and trace
 * observation points (cilium pkg/monitor/api/types.go), verdicts, drop reasons, flow types
 * and directions (api/v1/flow/flow.proto), drop reason texts (pkg/monitor/api/drop.go),
 * reserved identities (pkg/identity), and the gopacket strings Hubble's summaries are made
 * of (layers.DNSType, DNSResponseCode, ICMPv4TypeCode). And how podwire's own facts map
 * onto them: its drop reasons to Cilium's (DROP_OF), its stages and egresses to
 * observation points.
 */
import { Drop } from '../datapath/drops.js';
import { Egress, Ingress } from '../datapath/context.js';
import type { StageName } from '../datapath/recorder.js';

/** CiliumEventType.type: the monitor message types. */
export const EventType = {
  Drop: 1,
  Debug: 2,
  Capture: 3,
  Trace: 4,
  PolicyVerdict: 5,
  RecorderCapture: 6,
  TraceSock: 7,
  AccessLog: 129,
  Agent: 130,
} as const;

/** `--type` names (monitorAPI.MessageTypeNames). */
export const EVENT_TYPE_NAMES: Readonly<Record<string, number>> = {
  drop: EventType.Drop,
  debug: EventType.Debug,
  capture: EventType.Capture,
  trace: EventType.Trace,
  'policy-verdict': EventType.PolicyVerdict,
  recorder: EventType.RecorderCapture,
  'trace-sock': EventType.TraceSock,
  l7: EventType.AccessLog,
  agent: EventType.Agent,
};

/** Trace observation points as the monitor numbers them (the trace event's sub_type). */
export const TracePoint = {
  ToEndpoint: 0,
  ToProxy: 1,
  ToHost: 2,
  ToStack: 3,
  ToOverlay: 4,
  FromEndpoint: 5,
  FromProxy: 6,
  FromHost: 7,
  FromStack: 8,
  FromOverlay: 9,
  FromNetwork: 10,
  ToNetwork: 11,
} as const;
export type TracePoint = (typeof TracePoint)[keyof typeof TracePoint];

/** monitorAPI.TraceObservationPoints: how the compact and table outputs name them. */
export const TRACE_POINT_NAMES: readonly string[] = [
  'to-endpoint',
  'to-proxy',
  'to-host',
  'to-stack',
  'to-overlay',
  'from-endpoint',
  'from-proxy',
  'from-host',
  'from-stack',
  'from-overlay',
  'from-network',
  'to-network',
];

/** flow.TraceObservationPoint, the JSON name of each (the monitor's 0 is TO_ENDPOINT, 101 in the proto). */
export const TRACE_POINT_ENUM: readonly string[] = [
  'TO_ENDPOINT',
  'TO_PROXY',
  'TO_HOST',
  'TO_STACK',
  'TO_OVERLAY',
  'FROM_ENDPOINT',
  'FROM_PROXY',
  'FROM_HOST',
  'FROM_STACK',
  'FROM_OVERLAY',
  'FROM_NETWORK',
  'TO_NETWORK',
];

/** flow.Verdict, by number. */
export const VERDICT_NAMES: readonly string[] = ['VERDICT_UNKNOWN', 'FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'];
export type VerdictName = 'VERDICT_UNKNOWN' | 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED';

/** flow.SocketTranslationPoint: the trace-sock event's sub_type. */
export const XLATE_POST_DIRECTION_FWD = 2;
export const XLATE_POINT_ENUM: readonly string[] = [
  'SOCK_XLATE_POINT_UNKNOWN',
  'SOCK_XLATE_POINT_PRE_DIRECTION_FWD',
  'SOCK_XLATE_POINT_POST_DIRECTION_FWD',
  'SOCK_XLATE_POINT_PRE_DIRECTION_REV',
  'SOCK_XLATE_POINT_POST_DIRECTION_REV',
];
/** How the printer names them (GetFlowType). */
export const XLATE_POINT_NAMES: readonly string[] = ['SOCK_XLATE_POINT_UNKNOWN', 'pre-xlate-fwd', 'post-xlate-fwd', 'pre-xlate-rev', 'post-xlate-rev'];

/** Cilium's drop reasons podwire maps to: the number, the flow.DropReason name, the monitor's text. */
export interface CiliumDrop {
  readonly code: number;
  readonly name: string;
  readonly text: string;
}

const CILIUM_DROPS: readonly CiliumDrop[] = [
  { code: 131, name: 'INVALID_DESTINATION_MAC', text: 'Invalid destination mac' },
  { code: 132, name: 'INVALID_SOURCE_IP', text: 'Invalid source ip' },
  { code: 133, name: 'POLICY_DENIED', text: 'Policy denied' },
  { code: 134, name: 'INVALID_PACKET_DROPPED', text: 'Invalid packet' },
  { code: 139, name: 'UNSUPPORTED_L3_PROTOCOL', text: 'Unsupported L3 protocol' },
  { code: 141, name: 'ERROR_WRITING_TO_PACKET', text: 'Error writing to packet' },
  { code: 150, name: 'UNKNOWN_L3_TARGET_ADDRESS', text: 'Unknown L3 target address' },
  { code: 152, name: 'NO_MATCHING_LOCAL_CONTAINER_FOUND', text: 'No matching local container found' },
  { code: 155, name: 'CT_MAP_INSERTION_FAILED', text: 'CT: Map insertion failed' },
  { code: 157, name: 'IP_FRAGMENTATION_NOT_SUPPORTED', text: 'IP fragmentation not supported' },
  { code: 158, name: 'SERVICE_BACKEND_NOT_FOUND', text: 'Service backend not found' },
  { code: 163, name: 'UNKNOWN_CONNECTION_TRACKING_STATE', text: 'Unknown connection tracking state' },
  { code: 164, name: 'LOCAL_HOST_IS_UNREACHABLE', text: 'Local host is unreachable' },
  { code: 167, name: 'NO_MAPPING_FOR_NAT_MASQUERADE', text: 'No mapping for NAT masquerade' },
  { code: 169, name: 'FIB_LOOKUP_FAILED', text: 'FIB lookup failed' },
  { code: 172, name: 'UNKNOWN_SENDER', text: 'Unknown sender' },
  { code: 175, name: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', text: 'First logical datagram fragment not found' },
  { code: 183, name: 'INVALID_VNI', text: 'Incorrect VNI from VTEP' },
  { code: 196, name: 'TTL_EXCEEDED', text: 'TTL exceeded' },
  { code: 198, name: 'DROP_RATE_LIMITED', text: 'Rate limited' },
];

const BY_CODE = new Map(CILIUM_DROPS.map((d) => [d.code, d]));
const BY_NAME = new Map(CILIUM_DROPS.map((d) => [d.name, d]));

export function ciliumDropByCode(code: number): CiliumDrop | undefined {
  return BY_CODE.get(code);
}

export function ciliumDropByName(name: string): CiliumDrop | undefined {
  return BY_NAME.get(name);
}

/** Every name --drop-reason-desc takes. */
export function ciliumDropNames(): string[] {
  return CILIUM_DROPS.map((d) => d.name);
}

/**
 * Each podwire drop reason (drops.ts) as the Cilium drop reason that means the same or
 * the nearest thing. Where Cilium has no such drop the nearest is taken:
 * - bad-checksum is an invalid packet to Cilium, which does not check IPv4 header sums;
 * - spoofed, arp-spoofed and overlay-spoofed are all a source that is not the sender's;
 * - ipv6 and unknown-ethertype are an L3 protocol podwire does not forward;
 * - no-route is a failed FIB lookup, no-neighbour no local container at the address;
 * - too-big and needs-fragmentation are fragmentation podwire does not do;
 * - not-for-this-node is an L3 target the node does not know, same-port a destination
 *   MAC the bridge cannot send to;
 * - conntrack-full and conntrack-clash are a failed conntrack insertion;
 * - no-local-endpoints is a service without a backend (here);
 * - source-range-denied is Cilium's own load-balancer source range check;
 * - flood-limited is Cilium's rate limit, internal-error its "error writing to packet";
 * - the fragment reasons are invalid packets, but for the reassembly timeout (the rest of
 *   the datagram never came: its first logical fragment was not found);
 * - tx-queue-full has no equivalent: transmit counts it, it is never a flow event.
 */
export const DROP_OF: Readonly<Record<Drop, number>> = {
  [Drop.Malformed]: 134,
  [Drop.BadChecksum]: 134,
  [Drop.Spoofed]: 132,
  [Drop.Ipv6]: 139,
  [Drop.UnknownEthertype]: 139,
  [Drop.TtlExceeded]: 196,
  [Drop.NoRoute]: 169,
  [Drop.NoNeighbour]: 152,
  [Drop.TooBig]: 157,
  [Drop.NeedsFragmentation]: 157,
  [Drop.WrongVni]: 183,
  [Drop.UnknownPeer]: 172,
  [Drop.NotForThisNode]: 150,
  [Drop.SamePort]: 131,
  [Drop.TxQueueFull]: 0,
  [Drop.LocalUnhandled]: 164,
  [Drop.CtFull]: 155,
  [Drop.CtInvalid]: 163,
  [Drop.CtClash]: 155,
  [Drop.NatExhausted]: 167,
  [Drop.PolicyDenied]: 133,
  [Drop.NoEndpoints]: 158,
  [Drop.NoLocalEndpoints]: 158,
  [Drop.InternalError]: 141,
  [Drop.ArpSpoofed]: 132,
  [Drop.OverlaySpoofed]: 132,
  [Drop.FloodLimited]: 198,
  [Drop.FragmentOverlap]: 134,
  [Drop.FragmentTooMany]: 134,
  [Drop.FragmentTableFull]: 134,
  [Drop.FragmentTimeout]: 175,
  [Drop.FragmentInvalid]: 134,
  [Drop.SourceRangeDenied]: 177,
};

/**
 * The observation point of each stage, for the events a stage writes (a drop, a policy
 * verdict): the pod's veth side, the overlay's, the uplink's, or the node's stack (its
 * netfilter and routing), and the three ways out.
 */
export function stagePoint(stage: StageName, ingress: number): TracePoint {
  switch (stage) {
    case 'pod-ingress':
    case 'bridge':
      return TracePoint.FromEndpoint;
    case 'uplink-ingress':
      return TracePoint.FromNetwork;
    case 'decap':
      return TracePoint.FromOverlay;
    case 'arp':
      return ingress === Ingress.Uplink ? TracePoint.FromNetwork : TracePoint.FromEndpoint;
    case 'deliver':
      return TracePoint.ToEndpoint;
    case 'encap':
      return TracePoint.ToOverlay;
    case 'to-uplink':
      return TracePoint.ToNetwork;
    default:
      return TracePoint.ToStack;
  }
}

/** Where a packet was sent, as the point it was observed leaving by. */
export function egressPoint(egress: number): TracePoint {
  switch (egress) {
    case Egress.Peer:
      return TracePoint.ToOverlay;
    case Egress.Uplink:
    case Egress.UplinkAddressed:
      return TracePoint.ToNetwork;
    default:
      return TracePoint.ToEndpoint;
  }
}

/** Where a packet came in, as the point it was observed arriving by. */
export function ingressPoint(ingress: number): TracePoint {
  switch (ingress) {
    case Ingress.Overlay:
      return TracePoint.FromOverlay;
    case Ingress.Uplink:
      return TracePoint.FromNetwork;
    case Ingress.Local:
      return TracePoint.FromHost;
    default:
      return TracePoint.FromEndpoint;
  }
}

/** Reserved security identities (pkg/identity) and their names. */
export const Identity = {
  Unknown: 0,
  Host: 1,
  World: 2,
  Unmanaged: 3,
  Health: 4,
  Init: 5,
  RemoteNode: 6,
  KubeApiServer: 7,
  Ingress: 8,
} as const;

export const RESERVED_IDENTITY_NAMES: readonly string[] = ['unknown', 'host', 'world', 'unmanaged', 'health', 'init', 'remote-node', 'kube-apiserver', 'ingress'];

/** Cilium's first identity for labels: everything below is reserved. */
export const MINIMAL_NUMERIC_IDENTITY = 256;

/** monitorAPI.PolicyMatchType's strings. */
export const PolicyMatch = { None: 0, L3Only: 1, L3L4: 2, L4Only: 3, All: 4 } as const;
export const POLICY_MATCH_NAMES: readonly string[] = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all'];

/** Where Cilium's DNS flows come from (accesslog.DNSDataSource): its proxy, as podwire's embedded DNS. */
export const DNS_SOURCE_PROXY = 'proxy';

const DNS_TYPE_NAMES = new Map<number, string>([
  [1, 'A'],
  [2, 'NS'],
  [3, 'MD'],
  [4, 'MF'],
  [5, 'CNAME'],
  [6, 'SOA'],
  [7, 'MB'],
  [8, 'MG'],
  [9, 'MR'],
  [10, 'NULL'],
  [11, 'WKS'],
  [12, 'PTR'],
  [13, 'HINFO'],
  [14, 'MINFO'],
  [15, 'MX'],
  [16, 'TXT'],
  [28, 'AAAA'],
  [33, 'SRV'],
  [35, 'NAPTR'],
  [41, 'OPT'],
  [46, 'RRSIG'],
  [48, 'DNSKEY'],
  [64, 'SVCB'],
  [65, 'HTTPS'],
  [256, 'URI'],
]);

/** layers.DNSType.String(). */
export function dnsTypeName(type: number): string {
  return DNS_TYPE_NAMES.get(type) ?? 'Unknown';
}

const DNS_RCODE_TEXTS = new Map<number, string>([
  [0, 'No Error'],
  [1, 'Format Error'],
  [2, 'Server Failure'],
  [3, 'Non-Existent Domain'],
  [4, 'Not Implemented'],
  [5, 'Query Refused'],
  [6, 'Name Exists when it should not'],
  [7, 'RR Set Exists when it should not'],
  [8, 'RR Set that should exist does not'],
  [9, 'Server Not Authoritative for zone'],
  [10, 'Name not contained in zone'],
  [16, 'Bad OPT Version'],
  [17, 'Key not recognized'],
  [18, 'Signature out of time window'],
  [19, 'Bad TKEY Mode'],
  [20, 'Duplicate key name'],
  [21, 'Algorithm not supported'],
  [22, 'Bad Truncation'],
  [23, 'Bad Cookie'],
]);

/** layers.DNSResponseCode.String(). */
export function dnsRcodeText(rcode: number): string {
  return DNS_RCODE_TEXTS.get(rcode) ?? 'Unknown';
}

const NET_HOST = ['Net', 'Host'];
const ICMP4: ReadonlyMap<number, { readonly type: string; readonly codes?: readonly string[] }> = new Map([
  [0, { type: 'EchoReply' }],
  [
    3,
    {
      type: 'DestinationUnreachable',
      codes: [
        ...NET_HOST,
        'Protocol',
        'Port',
        'FragmentationNeeded',
        'SourceRoutingFailed',
        'NetUnknown',
        'HostUnknown',
        'SourceIsolated',
        'NetAdminProhibited',
        'HostAdminProhibited',
        'NetTOS',
        'HostTOS',
        'CommAdminProhibited',
        'HostPrecedence',
        'PrecedenceCutoff',
      ],
    },
  ],
  [4, { type: 'SourceQuench' }],
  [5, { type: 'Redirect', codes: [...NET_HOST, 'TOS+Net', 'TOS+Host'] }],
  [8, { type: 'EchoRequest' }],
  [9, { type: 'RouterAdvertisement' }],
  [10, { type: 'RouterSolicitation' }],
  [11, { type: 'TimeExceeded', codes: ['TTLExceeded', 'FragmentReassemblyTimeExceeded'] }],
  [12, { type: 'ParameterProblem', codes: ['PointerIndicatesError', 'MissingOption', 'BadLength'] }],
  [13, { type: 'TimestampRequest' }],
  [14, { type: 'TimestampReply' }],
  [15, { type: 'InfoRequest' }],
  [16, { type: 'InfoReply' }],
  [17, { type: 'AddressMaskRequest' }],
  [18, { type: 'AddressMaskReply' }],
]);

/** layers.ICMPv4TypeCode.String(). */
export function icmpv4TypeCode(type: number, code: number): string {
  const info = ICMP4.get(type);
  if (info === undefined) return `${type}(${code})`;
  if (info.codes === undefined) return code === 0 ? info.type : `${info.type}(Code: ${code})`;
  const name = info.codes[code];
  return name === undefined ? `${info.type}(Code: ${code})` : `${info.type}(${name})`;
}

/** TCP flag bits as Hubble's TCPFlags message holds them. */
export const TCP_FLAG_BITS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80, NS: 0x100 } as const;
export type TcpFlagName = keyof typeof TCP_FLAG_BITS;
/** The TCPFlags message's field order. */
export const TCP_FLAG_FIELDS: readonly TcpFlagName[] = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];
/** The order the summary lists them in (the L3/L4 parser's getTCPFlags). */
const TCP_SUMMARY_ORDER: readonly TcpFlagName[] = ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'];

/** "SYN, ACK": the flags set in `bits`, as a summary names them. */
export function tcpFlagsText(bits: number): string {
  return TCP_SUMMARY_ORDER.filter((f) => (bits & TCP_FLAG_BITS[f]) !== 0).join(', ');
}
