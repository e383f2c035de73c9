/**
 * IPv4 (RFC 791).
 *
 * `Ipv4View.check` proves that the fixed header, the options named by IHL and the whole
 * packet named by the total-length field lie inside the buffer; after it returns
 * `PacketOk` no accessor reads out of bounds. The packet ends at total length, not at the
 * buffer's end: a short packet in an Ethernet frame is followed by padding, which is not
 * payload. Meaning (version 4, header checksum) is judged by `parseIpv4Packet`.
 *
 * The forwarding path rewrites TTL and addresses in place with `decrementTtl` and
 * `set*AddrIncremental`, which patch the header checksum by RFC 1624 instead of summing
 * the header again. They do not touch a TCP or UDP checksum, whose pseudo-header also
 * covers the addresses: that is the transport module's job.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { checksumAdjust16, checksumAdjust32, internetChecksum } from './checksum.js';
import { PacketError, PacketOk } from './errors.js';
import { IPPROTO_ICMP } from './icmp.js';
import { IPPROTO_TCP } from './tcp.js';
import { IPPROTO_UDP } from './udp.js';

/** Length of a header without options (IHL 5), the only kind `emitIpv4` writes. */
export const IPV4_HEADER_LEN = 20;
/** IHL is four bits of 32-bit words: 60 bytes at most. */
export const IPV4_MAX_HEADER_LEN = 60;

/**
 * IANA protocol numbers podwire deals in (shared by IPv4's protocol and IPv6's next
 * header). An open set: other values are carried as numbers. An object rather than
 * `IPPROTO_*` constants so that it cannot clash with those the transport modules export.
 *
 * Per-packet code in other modules copies what it compares against into consts of its own
 * (`const TCP = IPPROTO.TCP`), as it does with IPV4_OFFSET and the other offsets objects: V8
 * folds a module's own const into the code, but loads an imported object's property, or an
 * imported binding, on every call. Measured side by side, comparing against IPPROTO.TCP and
 * its kin per call cost the service table's NodePort lookup 10%; local consts cost nothing.
 */
export const IPPROTO = {
  ICMP: IPPROTO_ICMP,
  TCP: IPPROTO_TCP,
  UDP: IPPROTO_UDP,
  ICMPV6: 58,
  SCTP: 132,
} as const;


/**
 * Field offsets from the start of the header, for code that reads a header it holds no view
 * of (an IPv4 header quoted inside an ICMP error, a segment being cut out of a super-frame)
 * or rewrites a field the view has no setter for. Code with a checked view uses the view.
 */
export const IPV4_OFFSET = {
  VERSION_IHL: 0,
  DSCP_ECN: 1,
  TOTAL_LENGTH: 2,
  IDENTIFICATION: 4,
  FLAGS_FRAGMENT: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC_ADDR: 12,
  DST_ADDR: 16,
} as const;

const VERSION_IHL = IPV4_OFFSET.VERSION_IHL;
const DSCP_ECN = IPV4_OFFSET.DSCP_ECN;
const TOTAL_LENGTH = IPV4_OFFSET.TOTAL_LENGTH;
const IDENTIFICATION = IPV4_OFFSET.IDENTIFICATION;
const FLAGS_FRAGMENT = IPV4_OFFSET.FLAGS_FRAGMENT;
const TTL = IPV4_OFFSET.TTL;
const PROTOCOL = IPV4_OFFSET.PROTOCOL;
const CHECKSUM = IPV4_OFFSET.CHECKSUM;
const SRC_ADDR = IPV4_OFFSET.SRC_ADDR;
const DST_ADDR = IPV4_OFFSET.DST_ADDR;

// Bits of the 16-bit flags/fragment-offset word.
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
/** The fragment offset's bits of the flags/fragment word (in 8-byte units): nonzero for every fragment but the first. */
export const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;
const FRAGMENT_UNITS = IPV4_FRAGMENT_OFFSET_MASK;

export class Ipv4View {
  buf: Uint8Array = EMPTY;
  /** Offset of the IPv4 header in `buf`. */
  offset = 0;

  /**
   * Points this view at a packet of at most `available` bytes at `offset` (the rest of an
   * Ethernet frame, padding included). Returns `PacketOk` or why not; allocates nothing,
   * so one view can serve every packet.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < IPV4_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    const headerLength = (buf[offset + VERSION_IHL] & 0x0f) * 4;
    if (headerLength < IPV4_HEADER_LEN || headerLength > available) return PacketError.BadHeaderLength;
    const totalLength = readU16(buf, offset + TOTAL_LENGTH);
    if (totalLength < headerLength || totalLength > available) return PacketError.BadLength;
    this.buf = buf;
    this.offset = offset;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): Ipv4View | PacketError {
    const view = new Ipv4View();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  /** The version nibble as found; `parseIpv4Packet` insists on 4. */
  get version(): number {
    return this.buf[this.offset + VERSION_IHL] >>> 4;
  }
  /** Header length in 32-bit words, 5 to 15. */
  get ihl(): number {
    return this.buf[this.offset + VERSION_IHL] & 0x0f;
  }
  /** Header length in bytes, options included: 20 to 60. */
  get headerLength(): number {
    return this.ihl * 4;
  }
  get dscp(): number {
    return this.buf[this.offset + DSCP_ECN] >>> 2;
  }
  get ecn(): number {
    return this.buf[this.offset + DSCP_ECN] & 0x03;
  }
  /** Header plus payload, as the length field says (already checked against the buffer). */
  get totalLength(): number {
    return readU16(this.buf, this.offset + TOTAL_LENGTH);
  }
  get identification(): number {
    return readU16(this.buf, this.offset + IDENTIFICATION);
  }
  /** The three flag bits (reserved, DF, MF) as a number 0 to 7. */
  get flags(): number {
    return this.buf[this.offset + FLAGS_FRAGMENT] >>> 5;
  }
  get dontFragment(): boolean {
    return (readU16(this.buf, this.offset + FLAGS_FRAGMENT) & FLAG_DF) !== 0;
  }
  get moreFragments(): boolean {
    return (readU16(this.buf, this.offset + FLAGS_FRAGMENT) & FLAG_MF) !== 0;
  }
  /** Where this fragment's payload sits in the original, in bytes (the wire field × 8). */
  get fragmentOffsetBytes(): number {
    return (readU16(this.buf, this.offset + FLAGS_FRAGMENT) & FRAGMENT_UNITS) * 8;
  }
  /** True for every fragment, first included: MF set or a non-zero offset. */
  get isFragment(): boolean {
    return (readU16(this.buf, this.offset + FLAGS_FRAGMENT) & (FLAG_MF | FRAGMENT_UNITS)) !== 0;
  }
  /** Plain write: the header checksum goes stale (see `decrementTtl`). */
  get ttl(): number {
    return this.buf[this.offset + TTL];
  }
  set ttl(ttl: number) {
    this.buf[this.offset + TTL] = ttl;
  }
  get protocol(): number {
    return this.buf[this.offset + PROTOCOL];
  }
  get checksum(): number {
    return readU16(this.buf, this.offset + CHECKSUM);
  }
  set checksum(value: number) {
    writeU16(this.buf, this.offset + CHECKSUM, value);
  }
  /** Plain write: the header checksum goes stale (see `setSrcAddrIncremental`). */
  get srcAddr(): number {
    return readU32(this.buf, this.offset + SRC_ADDR);
  }
  set srcAddr(addr: number) {
    writeU32(this.buf, this.offset + SRC_ADDR, addr);
  }
  /** Plain write: the header checksum goes stale (see `setDstAddrIncremental`). */
  get dstAddr(): number {
    return readU32(this.buf, this.offset + DST_ADDR);
  }
  set dstAddr(addr: number) {
    writeU32(this.buf, this.offset + DST_ADDR, addr);
  }
  /** Bytes of options between the fixed header and the payload, 0 to 40. */
  get optionsLength(): number {
    return this.headerLength - IPV4_HEADER_LEN;
  }
  /** After the options, whatever IHL says. */
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
  /** Total length less the header: Ethernet padding after the packet is not counted. */
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }
  /** The payload as a subarray (allocates a view object: not for the hot path). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.totalLength);
  }
  /** The options as a subarray, unparsed (allocates; for tools). */
  options(): Uint8Array {
    return this.buf.subarray(this.offset + IPV4_HEADER_LEN, this.payloadOffset);
  }

  /** True when the header checksum (over the options too) verifies. */
  verifyChecksum(): boolean {
    return internetChecksum(this.buf, this.offset, this.headerLength) === 0;
  }

  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.offset, this.headerLength);
  }

  /**
   * TTL minus one, checksum patched to match (RFC 1624). The caller decides first what a
   * TTL of 1 or 0 means (ICMP time exceeded); at 0 this does nothing rather than wrap to
   * 255 and give the packet a new life.
   */
  decrementTtl(): void {
    const at = this.offset + TTL;
    const ttl = this.buf[at];
    if (ttl === 0) return;
    // TTL is the high byte of the 16-bit word it shares with the protocol.
    const oldWord = (ttl << 8) | this.buf[at + 1];
    this.buf[at] = ttl - 1;
    this.checksum = checksumAdjust16(this.checksum, oldWord, oldWord - 0x100);
  }

  /** SNAT: new source address, checksum patched to match (RFC 1624). */
  setSrcAddrIncremental(addr: number): void {
    this.checksum = checksumAdjust32(this.checksum, this.srcAddr, addr);
    this.srcAddr = addr;
  }

  /** DNAT: new destination address, checksum patched to match (RFC 1624). */
  setDstAddrIncremental(addr: number): void {
    this.checksum = checksumAdjust32(this.checksum, this.dstAddr, addr);
    this.dstAddr = addr;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Everything `emitIpv4` writes. `src` and `dst` are named so that a repr doubles as the
 * `PseudoAddrs` that UDP and TCP checksums take. Options are not carried: a parsed packet
 * with options emits without them.
 */
export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  payloadLength: number;
  dscp: number;
  ecn: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In bytes; a multiple of 8 (the wire field counts 8-byte units), at most 65528. */
  fragmentOffsetBytes: number;
}

/** Refuses a version other than 4 (BadVersion) and a header checksum that fails (BadChecksum). */
export function parseIpv4Packet(view: Ipv4View): Ipv4Repr | PacketError {
  if (view.version !== 4) return PacketError.BadVersion;
  if (!view.verifyChecksum()) return PacketError.BadChecksum;
  return {
    src: view.srcAddr,
    dst: view.dstAddr,
    protocol: view.protocol,
    ttl: view.ttl,
    payloadLength: view.payloadLength,
    dscp: view.dscp,
    ecn: view.ecn,
    identification: view.identification,
    dontFragment: view.dontFragment,
    moreFragments: view.moreFragments,
    fragmentOffsetBytes: view.fragmentOffsetBytes,
  };
}

/** Header plus payload: the total length `emitIpv4` writes. */
export function ipv4BufferLen(repr: Ipv4Repr): number {
  return IPV4_HEADER_LEN + repr.payloadLength;
}

/**
 * Writes a 20-byte header (no options) with its checksum at `offset`, for a payload of
 * `repr.payloadLength` bytes that the caller places right after it. The header checksum
 * does not cover the payload, so the payload may come before or after. Returns 20.
 */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array, offset: number): number {
  buf[offset + VERSION_IHL] = 0x40 | (IPV4_HEADER_LEN / 4);
  buf[offset + DSCP_ECN] = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 0x03);
  writeU16(buf, offset + TOTAL_LENGTH, IPV4_HEADER_LEN + repr.payloadLength);
  writeU16(buf, offset + IDENTIFICATION, repr.identification);
  writeU16(
    buf,
    offset + FLAGS_FRAGMENT,
    (repr.dontFragment ? FLAG_DF : 0) | (repr.moreFragments ? FLAG_MF : 0) | ((repr.fragmentOffsetBytes >>> 3) & FRAGMENT_UNITS),
  );
  buf[offset + TTL] = repr.ttl;
  buf[offset + PROTOCOL] = repr.protocol;
  writeU16(buf, offset + CHECKSUM, 0);
  writeU32(buf, offset + SRC_ADDR, repr.src);
  writeU32(buf, offset + DST_ADDR, repr.dst);
  writeU16(buf, offset + CHECKSUM, internetChecksum(buf, offset, IPV4_HEADER_LEN));
  return IPV4_HEADER_LEN;
}
