/**
 * UDP (RFC 768).
 *
 * `UdpView.check` proves that the 8-byte header and the whole datagram named by the
 * length field lie inside the buffer; after it returns `PacketOk` no accessor reads out of
 * bounds. Meaning (checksum, port 0) is judged by `parseUdp`, not by the view.
 */
import { readU16, writeU16 } from './bytes.js';
import { finishChecksum, onesComplementSum, pseudoHeaderSum } from './checksum.js';
import { PacketError, PacketOk } from './errors.js';

export const UDP_HEADER_LEN = 8;
export const IPPROTO_UDP = 17;

/** Field offsets from the start of the header, for code that holds no view (a header quoted in an ICMP error). */
export const UDP_OFFSET = {
  SRC_PORT: 0,
  DST_PORT: 2,
  LENGTH: 4,
  CHECKSUM: 6,
} as const;

const SRC_PORT = UDP_OFFSET.SRC_PORT;
const DST_PORT = UDP_OFFSET.DST_PORT;
const LENGTH = UDP_OFFSET.LENGTH;
const CHECKSUM = UDP_OFFSET.CHECKSUM;

export class UdpView {
  buf: Uint8Array = EMPTY;
  /** Offset of the UDP header in `buf`. */
  offset = 0;

  /**
   * Points this view at a datagram of at most `available` bytes at `offset`. Returns
   * `PacketOk` or why not; allocates nothing, so one view can serve every packet.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < UDP_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    const length = readU16(buf, offset + LENGTH);
    if (length < UDP_HEADER_LEN || length > available) return PacketError.BadLength;
    this.buf = buf;
    this.offset = offset;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): UdpView | PacketError {
    const view = new UdpView();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  get srcPort(): number {
    return readU16(this.buf, this.offset + SRC_PORT);
  }
  set srcPort(port: number) {
    writeU16(this.buf, this.offset + SRC_PORT, port);
  }
  get dstPort(): number {
    return readU16(this.buf, this.offset + DST_PORT);
  }
  set dstPort(port: number) {
    writeU16(this.buf, this.offset + DST_PORT, port);
  }
  /** Header plus payload, as the length field says (already checked against the buffer). */
  get length(): number {
    return readU16(this.buf, this.offset + LENGTH);
  }
  get checksum(): number {
    return readU16(this.buf, this.offset + CHECKSUM);
  }
  set checksum(value: number) {
    writeU16(this.buf, this.offset + CHECKSUM, value);
  }
  get payloadOffset(): number {
    return this.offset + UDP_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.length - UDP_HEADER_LEN;
  }
  /** The payload as a subarray (allocates a view object: not for the hot path). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.length);
  }

  /** True when the checksum is absent (0) or verifies against the IPv4 pseudo-header. */
  verifyChecksum(srcAddr: number, dstAddr: number): boolean {
    if (this.checksum === 0) return true;
    return udpChecksum(this.buf, this.offset, this.length, srcAddr, dstAddr) === 0;
  }

  fillChecksum(srcAddr: number, dstAddr: number): void {
    this.checksum = 0;
    const sum = udpChecksum(this.buf, this.offset, this.length, srcAddr, dstAddr);
    // A computed 0 is sent as all ones: 0 on the wire means "no checksum".
    this.checksum = sum === 0 ? 0xffff : sum;
  }
}

const EMPTY = new Uint8Array(0);

/** Checksum over pseudo-header, header and payload; 0 when an in-place checksum verifies. */
export function udpChecksum(buf: Uint8Array, offset: number, length: number, srcAddr: number, dstAddr: number): number {
  return finishChecksum(onesComplementSum(buf, offset, length, pseudoHeaderSum(srcAddr, dstAddr, IPPROTO_UDP, length)));
}

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
}

/** Addresses for the pseudo-header; pass `undefined` to skip checksum work. */
export interface PseudoAddrs {
  src: number;
  dst: number;
}

export function parseUdp(view: UdpView, addrs?: PseudoAddrs): UdpRepr | PacketError {
  if (view.dstPort === 0) return PacketError.BadField;
  if (addrs !== undefined && !view.verifyChecksum(addrs.src, addrs.dst)) return PacketError.BadChecksum;
  return { srcPort: view.srcPort, dstPort: view.dstPort };
}

export function udpBufferLen(payloadLength: number): number {
  return UDP_HEADER_LEN + payloadLength;
}

/**
 * Writes the header at `offset` for a payload of `payloadLength` bytes that the caller has
 * placed (or will place) right after it. With `addrs` the checksum is computed, so the
 * payload must already be there; without, the checksum field is 0 (none). Returns the
 * number of header bytes written.
 */
export function emitUdp(repr: UdpRepr, buf: Uint8Array, offset: number, payloadLength: number, addrs?: PseudoAddrs): number {
  writeU16(buf, offset + SRC_PORT, repr.srcPort);
  writeU16(buf, offset + DST_PORT, repr.dstPort);
  writeU16(buf, offset + LENGTH, UDP_HEADER_LEN + payloadLength);
  writeU16(buf, offset + CHECKSUM, 0);
  if (addrs !== undefined) {
    const sum = udpChecksum(buf, offset, UDP_HEADER_LEN + payloadLength, addrs.src, addrs.dst);
    writeU16(buf, offset + CHECKSUM, sum === 0 ? 0xffff : sum);
  }
  return UDP_HEADER_LEN;
}
