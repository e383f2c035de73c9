/**
 * The per-frame context every stage of the forwarding path reads and updates, and the
 * verdict each stage returns: netfilter's hook verdicts and smoltcp's "what to send" in
 * one small vocabulary.
 *
 * One context is allocated per path and reused for every frame, so the hot path allocates
 * nothing: the views are re-pointed, the tuples rewritten, the numbers overwritten. A
 * frame's bytes are validated once, by the ingress stage that points the views
 * (`parseIpv4`); stages after it read the views without checking again.
 */
import { ArpView } from '../packet/arp.js';
import { ETHERNET_HEADER_LEN, EthernetView } from '../packet/ethernet.js';
import { PacketOk } from '../packet/errors.js';
import { IcmpView } from '../packet/icmp.js';
import { IPPROTO, IPV4_HEADER_LEN, Ipv4View } from '../packet/ipv4.js';
import { TcpView } from '../packet/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../packet/udp.js';
import { VxlanView } from '../packet/vxlan.js';
import { FlowTuple } from '../netfilter/conntrack-tuple.js';
import { FlowDecision } from '../kube/service-table.js';
import type { Peer } from '../overlay/peers.js';
import type { TxOffload } from '../port/port.js';
import { VNET_HDR_GSO_NONE } from '../port/port.js';
import { Drop } from './drops.js';
import type { FlowRecorder } from './flow-recorder.js';
import type { PathRecorder } from './recorder.js';
import type { FrameTap } from './transmit.js';

/** What a stage decided about the frame. */
export const Verdict = {
  /** On to the next stage. */
  Continue: 0,
  /** Dropped; `ctx.drop` says why. A reply (an ICMP error) may still be queued in `ctx.tx*`. */
  Drop: 1,
  /** Consumed here (ARP, echo, DNS answered by the node; a fragment held): any reply is in `ctx.tx*`. */
  Stolen: 2,
  /** Leaves by `ctx.egress`: the frame in `ctx.tx*` is ready to transmit. */
  Egress: 3,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** Where the frame came in. */
export const Ingress = {
  /** A local pod's eth0 (its TAP); `ctx.inSlot` names the port. */
  Pod: 0,
  /** A VXLAN datagram from another node; `ctx.fromPeer` names it. */
  Overlay: 1,
  /** The node's NIC on the outside network. */
  Uplink: 2,
  /** Made by the node itself (a DNS answer for a pod, delivered later). */
  Local: 3,
} as const;
export type Ingress = (typeof Ingress)[keyof typeof Ingress];

/** Where the frame leaves. */
export const Egress = {
  None: 0,
  /** A local pod's port, `ctx.egressSlot`. */
  Pod: 1,
  /** Another node over the overlay, `ctx.egressPeer`. */
  Peer: 2,
  /** The uplink, towards `ctx.nextHop` (its MAC from the neighbour table). */
  Uplink: 3,
  /** The uplink, the frame's MACs already final (a reply to a frame that came in there). */
  UplinkAddressed: 4,
  /** Every pod port but the one it came in on (broadcast, unknown unicast). */
  Flood: 5,
} as const;
export type Egress = (typeof Egress)[keyof typeof Egress];

/** The counters a context adds to: the path's own, or a throwaway set for a dry run (trace). */
export interface PathCounters {
  forwarded: number;
  flooded: number;
  encapsulated: number;
  decapsulated: number;
  arpReplies: number;
  icmpSent: number;
  serviceFlows: number;
  dnsQueries: number;
  fragmentsHeld: number;
  reassembled: number;
}

export function newCounters(): PathCounters {
  return { forwarded: 0, flooded: 0, encapsulated: 0, decapsulated: 0, arpReplies: 0, icmpSent: 0, serviceFlows: 0, dnsQueries: 0, fragmentsHeld: 0, reassembled: 0 };
}

/** `parseIpv4` found nothing wrong. */
export const PARSED = -1;

/** How far a frame's headers have been checked (`ctx.parsed`): what its views can be trusted for. */
export const Parsed = {
  None: 0,
  /** The Ethernet view is the frame's. */
  Ethernet: 1,
  /** The IPv4 view is too (and the transport view, when `l4` is set). */
  Ipv4: 2,
} as const;
export type Parsed = (typeof Parsed)[keyof typeof Parsed];
const NO_SLOT = -1;
const SCRATCH_LEN = 2048;
/** Ethernet, IPv4 and UDP headers in front of a DNS message of up to 64 KiB. */
const DNS_FRAME_LEN = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + 0xffff;

export class FrameContext {
  // ---- the frame -------------------------------------------------------------------
  buf: Buffer = EMPTY;
  offset = 0;
  length = 0;
  ingress: Ingress = Ingress.Pod;
  /** The pod port it came in on, or -1. */
  inSlot = NO_SLOT;
  /** The peer it came from over the overlay, or undefined. */
  fromPeer: Peer | undefined = undefined;
  /** A datagram's underlay source (overlay ingress): the peer must be exactly there. */
  srcAddr = 0;
  srcPort = 0;
  /** Offload metadata handed from the receiving port to the egress (virtio_net_hdr). */
  readonly offload: TxOffload = { flags: 0, gsoType: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  /** The batch's clock (ns): every frame of a batch arrived together. */
  nowNs = 0;

  // ---- views, pointed once by the ingress stage --------------------------------------
  /** The frame's Ethernet header; after decap, the inner one. */
  readonly eth = new EthernetView();
  readonly arp = new ArpView();
  readonly vxlan = new VxlanView();
  readonly ip = new Ipv4View();
  readonly tcp = new TcpView();
  readonly udp = new UdpView();
  readonly icmp = new IcmpView();
  /** The transport view for `ip.protocol` when its header is present (checked), else undefined. */
  l4: TcpView | UdpView | IcmpView | undefined = undefined;
  /** TCP flags of a TCP segment, 0 otherwise (conntrack's input). */
  tcpFlags = 0;
  /** Which views hold this frame's headers: the previous frame's stay in them until re-pointed. */
  parsed: Parsed = Parsed.None;

  // ---- connection tracking ---------------------------------------------------------
  readonly orig = new FlowTuple();
  readonly reply = new FlowTuple();
  /** A first packet: the new-flow stages (service NAT, policy, source NAT) decide it. */
  isNew = false;
  /** A protocol conntrack does not follow: judged by policy on every packet, never translated. */
  untracked = false;
  /** Decap saw an inner source outside the sending peer's subnet: only a tracked reply may pass. */
  foreignSource = false;
  /** Where a new flow goes after PREROUTING (DNAT applied or not), the route's key. */
  dstAddr = 0;
  dstPort = 0;
  masquerade = false;
  /** The service table's answer for a new flow. */
  readonly decision = new FlowDecision();

  // ---- routing and egress -------------------------------------------------------------
  egress: Egress = Egress.None;
  egressSlot = NO_SLOT;
  egressPeer: Peer | undefined = undefined;
  nextHop = 0;
  /** Switched by the bridge between two pods of this node (no routing, no TTL change). */
  bridged = false;
  /** A reassembled datagram: leaves in fragments of at most this IP size (0: whole). */
  fragmentSize = 0;
  /** Why it was dropped (meaningful with Verdict.Drop). */
  drop: Drop = Drop.Malformed;

  // ---- what transmit sends: the frame itself, or a reply a stage built -------------------
  txBuf: Uint8Array = EMPTY;
  txOffset = 0;
  txLength = 0;

  /** A frame the neighbour table released (it waited for this ARP): transmit sends it too. */
  releasedBuf: Buffer | undefined = undefined;
  releasedLength = 0;
  releasedMac = 0;

  // ---- buffers for what the node builds itself ---------------------------------------
  /** ICMP errors are built here. */
  readonly scratch = Buffer.alloc(SCRATCH_LEN);
  /** DNS answers for pods: headers in front, the message behind (up to 64 KiB). */
  readonly dnsFrame = Buffer.alloc(DNS_FRAME_LEN);

  // ---- run mode ----------------------------------------------------------------------
  /** Sees received overlay frames (captures); undefined in a dry run. */
  tap: FrameTap | undefined = undefined;
  /** Notes each stage's decision in words (trace); undefined on the plain forwarding path. */
  recorder: PathRecorder | undefined = undefined;
  /** Writes the node's flow events (observe): the live path's, never a dry run's. */
  flows: FlowRecorder | undefined = undefined;
  /** A dry run (trace): decide everything, change no table, send nothing. */
  dry = false;
  /** Uniform in [0, 1): endpoint choice and SNAT ports. */
  random: () => number = Math.random;
  counters: PathCounters = newCounters();
  drops: Float64Array = new Float64Array(0);
  /** Drops by reason and transport (PathTables.dropTransports), or a throwaway set for a dry run. */
  dropTransports: Float64Array = new Float64Array(0);

  /** Starts a frame: everything a previous frame decided is forgotten. */
  begin(ingress: Ingress, buf: Buffer, offset: number, length: number): void {
    this.ingress = ingress;
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    this.inSlot = NO_SLOT;
    this.fromPeer = undefined;
    this.l4 = undefined;
    this.tcpFlags = 0;
    this.parsed = Parsed.None;
    this.isNew = false;
    this.untracked = false;
    this.foreignSource = false;
    this.masquerade = false;
    this.egress = Egress.None;
    this.egressSlot = NO_SLOT;
    this.egressPeer = undefined;
    this.nextHop = 0;
    this.bridged = false;
    this.fragmentSize = 0;
    this.releasedBuf = undefined;
    this.txBuf = buf;
    this.txOffset = offset;
    this.txLength = length;
  }

  /** Frames made here (replies, ICMP errors) carry no offload. */
  clearOffload(): void {
    this.offload.flags = 0;
    this.offload.gsoType = VNET_HDR_GSO_NONE;
  }

  /** Queues a frame the neighbour table held for `mac` (now resolved) for transmit. */
  release(frame: Buffer, length: number, mac: number): void {
    this.releasedBuf = frame;
    this.releasedLength = length;
    this.releasedMac = mac;
  }

  /** Notes `reason` and returns the Drop verdict, for `return ctx.dropped(...)` in stages: nothing leaves. */
  dropped(reason: Drop): Verdict {
    this.drop = reason;
    this.egress = Egress.None;
    return Verdict.Drop;
  }

  /** Consumed here with nothing to send (a fragment held, a query forwarded): the Stolen verdict. */
  stolen(): Verdict {
    this.egress = Egress.None;
    return Verdict.Stolen;
  }

  /** Transmit sends the IPv4 packet in `ip`, framed by the Ethernet header in front of it. */
  sendPacket(): void {
    this.txBuf = this.ip.buf;
    this.txOffset = this.ip.offset - this.eth.headerLength;
    this.txLength = this.eth.headerLength + this.ip.totalLength;
  }

  /**
   * The one checked parse of an IPv4 packet: the IP view over `available` bytes at `at`,
   * then its meaning (version, header checksum), then the transport header conntrack and
   * NAT read (a fragment other than the first has none). Returns the drop reason, or PARSED.
   * A GSO super-frame's header checksum is valid as sent; only offloaded L4 sums are partial.
   */
  parseIpv4(buf: Uint8Array, at: number, available: number): Drop | typeof PARSED {
    const ip = this.ip;
    if (ip.check(buf, at, available) !== PacketOk || ip.version !== 4) return Drop.Malformed;
    if (!ip.verifyChecksum()) return Drop.BadChecksum;
    this.parsed = Parsed.Ipv4;
    this.l4 = undefined;
    this.tcpFlags = 0;
    // A fragment's transport header is judged once its datagram is whole (reassembly).
    if (ip.isFragment) return PARSED;
    return this.parseTransport();
  }

  /** Points the transport view of the whole packet in `ip`. */
  parseTransport(): Drop | typeof PARSED {
    const ip = this.ip;
    const at = ip.payloadOffset;
    const length = ip.payloadLength;
    switch (ip.protocol) {
      case IPPROTO.TCP:
        if (this.tcp.check(ip.buf, at, length) !== PacketOk) return Drop.Malformed;
        this.l4 = this.tcp;
        this.tcpFlags = this.tcp.flags;
        return PARSED;
      case IPPROTO.UDP:
        if (this.udp.check(ip.buf, at, length) !== PacketOk) return Drop.Malformed;
        this.l4 = this.udp;
        return PARSED;
      case IPPROTO.ICMP:
        if (this.icmp.check(ip.buf, at, length) !== PacketOk) return Drop.Malformed;
        this.l4 = this.icmp;
        return PARSED;
      default:
        return PARSED;
    }
  }
}

const EMPTY = Buffer.alloc(0);
