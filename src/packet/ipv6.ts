/**
 * IPv6 (RFC 8200): the fixed header, enough to recognise, count and pass on IPv6.
 *
 * `Ipv6View.check` proves that the 40-byte fixed header and the payload named by the
 * payload-length field lie inside the buffer; after it returns `PacketOk` no accessor
 * reads out of bounds. The version is judged by `parseIpv6Packet`. Extension headers are
 * not walked: `nextHeader` names the first one (or the transport), and the payload starts
 * right after the fixed header. Jumbograms (payload length 0 with a hop-by-hop jumbo
 * option) are not supported: length 0 means an empty payload.
 *
 * Addresses are 16 bytes, too wide for one number. The hot path reads them as four
 * uint32 words with `srcAddrWord(i)` / `dstAddrWord(i)`; `srcAddr()` / `dstAddr()` return
 * subarrays, which allocate and are for tools and cold paths.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { PacketError, PacketOk } from './errors.js';

export const IPV6_HEADER_LEN = 40;
export const IPV6_ADDR_LEN = 16;

/** Version (4 bits), traffic class (8), flow label (20), as one 32-bit word. */
const VERSION_CLASS_FLOW = 0;
const PAYLOAD_LENGTH = 4;
const NEXT_HEADER = 6;
const HOP_LIMIT = 7;
const SRC_ADDR = 8;
const DST_ADDR = 24;

export class Ipv6View {
  buf: Uint8Array = EMPTY;
  /** Offset of the IPv6 header in `buf`. */
  offset = 0;

  /**
   * Points this view at a packet of at most `available` bytes at `offset` (the rest of an
   * Ethernet frame). Returns `PacketOk` or why not; allocates nothing, so one view can
   * serve every packet.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < IPV6_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    if (readU16(buf, offset + PAYLOAD_LENGTH) > available - IPV6_HEADER_LEN) return PacketError.BadLength;
    this.buf = buf;
    this.offset = offset;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): Ipv6View | PacketError {
    const view = new Ipv6View();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  /** The version nibble as found; `parseIpv6Packet` insists on 6. */
  get version(): number {
    return this.buf[this.offset + VERSION_CLASS_FLOW] >>> 4;
  }
  /** DSCP (high six bits) and ECN (low two), as IPv4's second byte. */
  get trafficClass(): number {
    return (readU16(this.buf, this.offset + VERSION_CLASS_FLOW) >>> 4) & 0xff;
  }
  get flowLabel(): number {
    return readU32(this.buf, this.offset + VERSION_CLASS_FLOW) & 0xfffff;
  }
  /** Bytes after the fixed header, extension headers included (checked against the buffer). */
  get payloadLength(): number {
    return readU16(this.buf, this.offset + PAYLOAD_LENGTH);
  }
  /** The first extension header's type or the transport protocol (IPPROTO numbers). */
  get nextHeader(): number {
    return this.buf[this.offset + NEXT_HEADER];
  }
  /** Plain write: IPv6 has no header checksum to patch. */
  get hopLimit(): number {
    return this.buf[this.offset + HOP_LIMIT];
  }
  set hopLimit(hops: number) {
    this.buf[this.offset + HOP_LIMIT] = hops;
  }
  /** Word `i` (0 to 3, most significant first) of the source address as a uint32. */
  srcAddrWord(i: number): number {
    // `& 3` keeps any argument inside the address, so the bounds promise holds for all.
    return readU32(this.buf, this.offset + SRC_ADDR + (i & 3) * 4);
  }
  /** Word `i` (0 to 3, most significant first) of the destination address as a uint32. */
  dstAddrWord(i: number): number {
    return readU32(this.buf, this.offset + DST_ADDR + (i & 3) * 4);
  }
  /** The source address as a subarray of the frame (allocates: cold path). */
  srcAddr(): Uint8Array {
    return this.buf.subarray(this.offset + SRC_ADDR, this.offset + SRC_ADDR + IPV6_ADDR_LEN);
  }
  /** The destination address as a subarray of the frame (allocates: cold path). */
  dstAddr(): Uint8Array {
    return this.buf.subarray(this.offset + DST_ADDR, this.offset + DST_ADDR + IPV6_ADDR_LEN);
  }
  get payloadOffset(): number {
    return this.offset + IPV6_HEADER_LEN;
  }
  /** The payload as a subarray (allocates a view object: not for the hot path). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.payloadOffset + this.payloadLength);
  }

  /**
   * Sum of the IPv6 pseudo-header (RFC 8200 section 8.1) for an upper-layer packet of
   * `upperLength` bytes, to pass as `initial` to `onesComplementSum` when checking an
   * ICMPv6, TCP or UDP checksum. Unfolded, like `pseudoHeaderSum` for IPv4.
   */
  pseudoHeaderSum(upperLength: number, nextHeader = this.nextHeader): number {
    let sum = 0;
    for (let i = this.offset + SRC_ADDR; i < this.offset + DST_ADDR + IPV6_ADDR_LEN; i += 2) sum += readU16(this.buf, i);
    return sum + (upperLength >>> 16) + (upperLength & 0xffff) + nextHeader;
  }
}

const EMPTY = new Uint8Array(0);

export interface Ipv6Repr {
  /** 16 bytes. A copy when parsed: a repr outlives the frame buffer it came from. */
  src: Uint8Array;
  /** 16 bytes. A copy when parsed. */
  dst: Uint8Array;
  nextHeader: number;
  hopLimit: number;
  payloadLength: number;
  trafficClass: number;
  flowLabel: number;
}

/** Refuses a version other than 6 (BadVersion). */
export function parseIpv6Packet(view: Ipv6View): Ipv6Repr | PacketError {
  if (view.version !== 6) return PacketError.BadVersion;
  return {
    src: new Uint8Array(view.srcAddr()),
    dst: new Uint8Array(view.dstAddr()),
    nextHeader: view.nextHeader,
    hopLimit: view.hopLimit,
    payloadLength: view.payloadLength,
    trafficClass: view.trafficClass,
    flowLabel: view.flowLabel,
  };
}

/** Fixed header plus payload. */
export function ipv6BufferLen(repr: Ipv6Repr): number {
  return IPV6_HEADER_LEN + repr.payloadLength;
}

/**
 * Writes the 40-byte fixed header at `offset` for a payload of `repr.payloadLength` bytes
 * placed right after it. Exactly 16 bytes are written per address whatever the arrays
 * hold (missing bytes become 0). Returns 40.
 */
export function emitIpv6(repr: Ipv6Repr, buf: Uint8Array, offset: number): number {
  writeU32(buf, offset + VERSION_CLASS_FLOW, ((6 << 28) | ((repr.trafficClass & 0xff) << 20) | (repr.flowLabel & 0xfffff)) >>> 0);
  writeU16(buf, offset + PAYLOAD_LENGTH, repr.payloadLength);
  buf[offset + NEXT_HEADER] = repr.nextHeader;
  buf[offset + HOP_LIMIT] = repr.hopLimit;
  for (let i = 0; i < IPV6_ADDR_LEN; i++) {
    buf[offset + SRC_ADDR + i] = repr.src[i] ?? 0;
    buf[offset + DST_ADDR + i] = repr.dst[i] ?? 0;
  }
  return IPV6_HEADER_LEN;
}

/**
 * RFC 5952 text for the 16 bytes at `offset` of `addr`: lower case, no leading zeros, the
 * longest run of two or more zero groups (the first, on a tie) as `::`, and IPv4-mapped
 * addresses as `::ffff:a.b.c.d`. For tools and logs: allocates strings.
 */
export function formatIpv6(addr: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(readU16(addr, offset + i * 2));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${addr[offset + 12]}.${addr[offset + 13]}.${addr[offset + 14]}.${addr[offset + 15]}`;
  }
  let bestStart = -1;
  let bestLength = 1; // a single zero group is written as 0, not ::
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const text = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return text(0, 8);
  return `${text(0, bestStart)}::${text(bestStart + bestLength, 8)}`;
}
