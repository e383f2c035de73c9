/**
 * The tuple conntrack keys on, and how a packet's headers become one.
 *
 * A tuple is (src, dst, sport, dport, proto), laid out as FlowTable keys are: addresses are
 * uint32, ports 16 bits. What fills the two port slots depends on the protocol, as in the
 * kernel's `nf_conntrack_tuple`:
 * - TCP and UDP: the ports.
 * - ICMP queries (echo, timestamp, information, address mask): the identifier stands in the
 *   source-port slot in both directions, and the destination-port slot holds
 *   `type << 8 | code`. A request and its reply therefore have different keys (type 8
 *   one way, type 0 the other), and an echo reply nobody asked for finds nothing.
 * - Any other protocol: 0 in both slots, so the flow is the pair of addresses.
 *
 * Nothing here allocates: `FlowTuple` is a mutable scratch record that a pipeline keeps one
 * or two of and refills per packet.
 */
import { readU16 } from '../packet/bytes.js';
import { IPPROTO, IPV4_FRAGMENT_OFFSET_MASK, IPV4_HEADER_LEN, IPV4_OFFSET, type Ipv4View } from '../packet/ipv4.js';

/** The protocol numbers as conntrack's users have imported them from here; they are src/packet's. */
export { IPPROTO_ICMP } from '../packet/icmp.js';
export { IPPROTO_TCP } from '../packet/tcp.js';
export { IPPROTO_UDP } from '../packet/udp.js';

// Local consts of src/packet's constants, which V8 folds into per-packet code (see IPPROTO in ipv4.ts).
const IP_FLAGS_FRAGMENT = IPV4_OFFSET.FLAGS_FRAGMENT;
const IP_PROTOCOL = IPV4_OFFSET.PROTOCOL;
const IP_SRC = IPV4_OFFSET.SRC_ADDR;
const IP_DST = IPV4_OFFSET.DST_ADDR;
const FRAGMENT_OFFSET_MASK = IPV4_FRAGMENT_OFFSET_MASK;
const IPV4_MIN_HEADER = IPV4_HEADER_LEN;
const ICMP = IPPROTO.ICMP;
const TCP = IPPROTO.TCP;
const UDP = IPPROTO.UDP;

/** ICMP types that open a flow, and the reply each expects (RFC 792, RFC 950). */
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const ICMP_TIMESTAMP = 13;
const ICMP_TIMESTAMP_REPLY = 14;
const ICMP_INFO_REQUEST = 15;
const ICMP_INFO_REPLY = 16;
const ICMP_ADDRESS_MASK = 17;
const ICMP_ADDRESS_MASK_REPLY = 18;

/** ICMP errors: each quotes a datagram of some flow and travels as RELATED to it. */
const ICMP_DEST_UNREACHABLE = 3;
const ICMP_SOURCE_QUENCH = 4;
const ICMP_REDIRECT = 5;
const ICMP_TIME_EXCEEDED = 11;
const ICMP_PARAMETER_PROBLEM = 12;

/** True for the ICMP types that may start a tracked flow (the kernel's `valid_new`). */
export function isIcmpQuery(type: number): boolean {
  return type === ICMP_ECHO_REQUEST || type === ICMP_TIMESTAMP || type === ICMP_INFO_REQUEST || type === ICMP_ADDRESS_MASK;
}

/** True for the ICMP types that quote another datagram (the kernel's `icmp_is_err`). */
export function isIcmpError(type: number): boolean {
  return (
    type === ICMP_DEST_UNREACHABLE ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_REDIRECT ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAMETER_PROBLEM
  );
}

/** The other half of a query/reply pair (8 <-> 0, 13 <-> 14, ...), or -1 for any other type. */
export function icmpCounterpartType(type: number): number {
  switch (type) {
    case ICMP_ECHO_REQUEST:
      return ICMP_ECHO_REPLY;
    case ICMP_ECHO_REPLY:
      return ICMP_ECHO_REQUEST;
    case ICMP_TIMESTAMP:
      return ICMP_TIMESTAMP_REPLY;
    case ICMP_TIMESTAMP_REPLY:
      return ICMP_TIMESTAMP;
    case ICMP_INFO_REQUEST:
      return ICMP_INFO_REPLY;
    case ICMP_INFO_REPLY:
      return ICMP_INFO_REQUEST;
    case ICMP_ADDRESS_MASK:
      return ICMP_ADDRESS_MASK_REPLY;
    case ICMP_ADDRESS_MASK_REPLY:
      return ICMP_ADDRESS_MASK;
    default:
      return -1;
  }
}

/** True when the protocol carries ports in the tuple's port slots. */
export function hasPorts(proto: number): boolean {
  return proto === TCP || proto === UDP;
}

/**
 * Addresses are held as int32, the same bits as the uint32 the packet views return (a
 * FlowTable takes either): an int32 stays a small integer in V8, where a uint32 above 2^31
 * (192.168.x.x, 192.0.2.x) becomes a heap number each time it crosses a call. `>>> 0`
 * gives the uint32 back, for display.
 */
export class FlowTuple {
  /** Source address, as int32. */
  src = 0;
  /** Destination address, as int32. */
  dst = 0;
  /** Source port; for ICMP the identifier. */
  sport = 0;
  /** Destination port; for ICMP `type << 8 | code`. */
  dport = 0;
  proto = 0;

  set(src: number, dst: number, sport: number, dport: number, proto: number): this {
    this.src = src | 0;
    this.dst = dst | 0;
    this.sport = sport & 0xffff;
    this.dport = dport & 0xffff;
    this.proto = proto & 0xff;
    return this;
  }

  copyFrom(t: FlowTuple): this {
    return this.set(t.src, t.dst, t.sport, t.dport, t.proto);
  }

  equals(t: FlowTuple): boolean {
    return this.src === t.src && this.dst === t.dst && this.sport === t.sport && this.dport === t.dport && this.proto === t.proto;
  }

  /**
   * Makes this the tuple a reply to `t` carries, before any NAT: addresses swapped, and
   * ports swapped (ICMP: the same identifier, the counterpart type). False, leaving this
   * unchanged, when `t` is an ICMP message that has no counterpart.
   */
  setReplyOf(t: FlowTuple): boolean {
    if (t.proto === ICMP) {
      const type = icmpCounterpartType(t.dport >>> 8);
      if (type < 0) return false;
      this.set(t.dst, t.src, t.sport, (type << 8) | (t.dport & 0xff), t.proto);
      return true;
    }
    this.set(t.dst, t.src, t.dport, t.sport, t.proto);
    return true;
  }

  /** ICMP only: the type in the destination-port slot. */
  get icmpType(): number {
    return this.dport >>> 8;
  }
  /** ICMP only: the code in the destination-port slot. */
  get icmpCode(): number {
    return this.dport & 0xff;
  }
}

/** What `readPacketTuple` made of a packet. */
export const TupleKind = {
  /** Nothing to track: a fragment, a truncated header, an ICMP error quoting nothing usable. */
  Untracked: 0,
  /** A packet of a flow: the tuple is the packet's own, to look up (and create from when new). */
  Flow: 1,
  /**
   * An ICMP error: the tuple is that of a reply to the datagram it quotes. Looking it up
   * finds the connection the error is RELATED to, and the direction found is the one the
   * error travels in (an error about an original-direction packet comes back as a reply).
   */
  IcmpError: 2,
} as const;
export type TupleKind = (typeof TupleKind)[keyof typeof TupleKind];

/** RFC 792: an error quotes the IP header and at least the first 8 bytes of its payload. */
const QUOTED_L4_BYTES = 8;

/**
 * Fills `out` from a checked IPv4 view. TCP and UDP need their 4 bytes of ports, ICMP its
 * 8-byte header. A fragment has no ports to key on and is returned Untracked: the
 * forwarding path reassembles before conntrack (its reassemble stage, as nf_defrag_ipv4),
 * so only a caller outside it meets one. Reads bytes
 * only, so the caller need not have checked a transport view first. Allocates nothing.
 */
export function readPacketTuple(ip: Ipv4View, out: FlowTuple): TupleKind {
  if (ip.isFragment) return TupleKind.Untracked;
  const buf = ip.buf;
  // Addresses read as int32 straight from the header (see FlowTuple).
  const src = readI32(buf, ip.offset + IP_SRC);
  const dst = readI32(buf, ip.offset + IP_DST);
  const at = ip.payloadOffset;
  const length = ip.payloadLength;
  const proto = ip.protocol;
  if (hasPorts(proto)) {
    if (length < 4) return TupleKind.Untracked;
    out.set(src, dst, readU16(buf, at), readU16(buf, at + 2), proto);
    return TupleKind.Flow;
  }
  if (proto === ICMP) {
    if (length < 8) return TupleKind.Untracked;
    const type = buf[at];
    if (isIcmpError(type)) {
      return readQuotedReplyTuple(buf, at + 8, length - 8, out) ? TupleKind.IcmpError : TupleKind.Untracked;
    }
    out.set(src, dst, readU16(buf, at + 4), (type << 8) | buf[at + 1], proto);
    return TupleKind.Flow;
  }
  out.set(src, dst, 0, 0, proto);
  return TupleKind.Flow;
}

/**
 * Big-endian 32 bits as an int32: never a heap number. The views' address getters return
 * uint32s, and one that V8 does not inline returns an address above 2^31 boxed: an
 * allocation per packet. The packet path reads addresses through this instead.
 */
export function readI32(buf: Uint8Array, at: number): number {
  return (buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3];
}

/**
 * Length of the IPv4 header of a datagram quoted at `buf[at, at + available)`, or -1 when
 * the quote cannot be used: shorter than its header plus 8 bytes, not version 4, or a
 * fragment other than the first (which has no transport header). A quote is truncated by
 * nature, so its total-length field is not checked against what is there: an `Ipv4View`
 * would refuse it, which is why quotes are read through these offsets instead.
 */
export function quotedHeaderLength(buf: Uint8Array, at: number, available: number): number {
  if (available < IPV4_MIN_HEADER || at + available > buf.length) return -1;
  const versionIhl = buf[at];
  const headerLength = (versionIhl & 0x0f) * 4;
  if (versionIhl >>> 4 !== 4 || headerLength < IPV4_MIN_HEADER) return -1;
  if (headerLength + QUOTED_L4_BYTES > available) return -1;
  if ((readU16(buf, at + IP_FLAGS_FRAGMENT) & FRAGMENT_OFFSET_MASK) !== 0) return -1;
  return headerLength;
}

/**
 * Reads the tuple of the datagram quoted at `at` and stores in `out` the tuple of a reply
 * to it: the key under which conntrack holds the direction opposite to the quoted packet's.
 * False when the quote is unusable or quotes an ICMP message without a counterpart (an
 * error about an error is never related to anything).
 */
export function readQuotedReplyTuple(buf: Uint8Array, at: number, available: number, out: FlowTuple): boolean {
  const headerLength = quotedHeaderLength(buf, at, available);
  if (headerLength < 0) return false;
  const proto = buf[at + IP_PROTOCOL];
  const src = readI32(buf, at + IP_SRC);
  const dst = readI32(buf, at + IP_DST);
  const l4 = at + headerLength;
  if (hasPorts(proto)) {
    out.set(dst, src, readU16(buf, l4 + 2), readU16(buf, l4), proto);
    return true;
  }
  if (proto === ICMP) {
    const type = icmpCounterpartType(buf[l4]);
    if (type < 0) return false;
    out.set(dst, src, readU16(buf, l4 + 4), (type << 8) | buf[l4 + 1], proto);
    return true;
  }
  out.set(dst, src, 0, 0, proto);
  return true;
}
