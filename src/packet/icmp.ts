/**
 * ICMP for IPv4 (RFC 792), with the fragmentation-needed MTU of RFC 1191.
 *
 * ICMP has no length field: the message ends where the IP payload ends, so
 * `IcmpView.check` takes `available` = the IP payload length from the caller and proves
 * the 8-byte header fits; the checksum covers exactly those bytes. After `PacketOk` no
 * accessor reads out of bounds.
 *
 * Errors (destination unreachable, time exceeded) quote the offending datagram's IPv4
 * header and at least its first 8 bytes at `embeddedOffset`. This module treats them as
 * bytes: the caller checks them with an IPv4 view (conntrack needs them to find the flow).
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { checksumAdjust16, internetChecksum } from './checksum.js';
import { PacketError, PacketOk } from './errors.js';

export const ICMP_HEADER_LEN = 8;
export const IPPROTO_ICMP = 1;

/** Types: an open set, any other number is carried through as `other`. */
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;

/** Destination-unreachable codes (RFC 792, RFC 1122, RFC 1812). */
export const ICMP_NET_UNREACHABLE = 0;
export const ICMP_HOST_UNREACHABLE = 1;
export const ICMP_PROTOCOL_UNREACHABLE = 2;
export const ICMP_PORT_UNREACHABLE = 3;
export const ICMP_FRAG_NEEDED = 4;
export const ICMP_SOURCE_ROUTE_FAILED = 5;
export const ICMP_NET_UNKNOWN = 6;
export const ICMP_HOST_UNKNOWN = 7;
export const ICMP_NET_PROHIBITED = 9;
export const ICMP_HOST_PROHIBITED = 10;
/** What a REJECT by policy sends (`--reject-with icmp-admin-prohibited`). */
export const ICMP_ADMIN_PROHIBITED = 13;

/** Time-exceeded codes. */
export const ICMP_TTL_EXCEEDED = 0;
export const ICMP_FRAG_REASSEMBLY_EXCEEDED = 1;

/** Field offsets from the start of the header, for code that holds no view (an ICMP header quoted in an ICMP error). */
export const ICMP_OFFSET = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  /** Echo and other queries: the identifier (bytes 4-5) and sequence number (6-7). */
  IDENTIFIER: 4,
  SEQUENCE: 6,
} as const;

const TYPE = ICMP_OFFSET.TYPE;
const CODE = ICMP_OFFSET.CODE;
const CHECKSUM = ICMP_OFFSET.CHECKSUM;
/** Bytes 4-7, "rest of header": identifier and sequence for echo, MTU for frag-needed. */
const REST = 4;
const IDENTIFIER = ICMP_OFFSET.IDENTIFIER;
const SEQUENCE = ICMP_OFFSET.SEQUENCE;
const NEXT_HOP_MTU = 6;

export class IcmpView {
  buf: Uint8Array = EMPTY;
  /** Offset of the ICMP header in `buf`. */
  offset = 0;
  /** The whole message, header included: the `available` that `check` was given. */
  length = 0;

  /**
   * Points this view at a message of exactly `available` bytes at `offset` (pass the IP
   * payload length; the default, the rest of the buffer, is only right when the buffer
   * ends where the message does). Returns `PacketOk` or why not; allocates nothing.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < ICMP_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    this.buf = buf;
    this.offset = offset;
    this.length = available;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): IcmpView | PacketError {
    const view = new IcmpView();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  // Plain setters write the field and nothing else; `fillChecksum` or the `*Incremental`
  // method keeps the checksum right.
  get type(): number {
    return this.buf[this.offset + TYPE];
  }
  set type(value: number) {
    this.buf[this.offset + TYPE] = value & 0xff;
  }
  get code(): number {
    return this.buf[this.offset + CODE];
  }
  set code(value: number) {
    this.buf[this.offset + CODE] = value & 0xff;
  }
  get checksum(): number {
    return readU16(this.buf, this.offset + CHECKSUM);
  }
  set checksum(value: number) {
    writeU16(this.buf, this.offset + CHECKSUM, value);
  }
  /** Bytes 4-7 as one uint32, whatever the type makes of them. */
  get restOfHeader(): number {
    return readU32(this.buf, this.offset + REST);
  }
  set restOfHeader(value: number) {
    writeU32(this.buf, this.offset + REST, value);
  }
  /** Echo request/reply identifier (the "port" that NAT rewrites). Bytes 4-5. */
  get identifier(): number {
    return readU16(this.buf, this.offset + IDENTIFIER);
  }
  set identifier(value: number) {
    writeU16(this.buf, this.offset + IDENTIFIER, value);
  }
  /** Echo request/reply sequence number. Bytes 6-7. */
  get sequence(): number {
    return readU16(this.buf, this.offset + SEQUENCE);
  }
  set sequence(value: number) {
    writeU16(this.buf, this.offset + SEQUENCE, value);
  }
  /** Fragmentation needed (3/4): the next-hop MTU, bytes 6-7 (RFC 1191; 0 from old routers). */
  get nextHopMtu(): number {
    return readU16(this.buf, this.offset + NEXT_HOP_MTU);
  }
  set nextHopMtu(value: number) {
    writeU16(this.buf, this.offset + NEXT_HOP_MTU, value);
  }
  /** Where echo data, or an error's quoted IPv4 header, begins. */
  get payloadOffset(): number {
    return this.offset + ICMP_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.length - ICMP_HEADER_LEN;
  }
  /** For errors (3, 11): the quoted IPv4 header + 8 bytes, for the caller's IPv4 view. */
  get embeddedOffset(): number {
    return this.payloadOffset;
  }
  get embeddedLength(): number {
    return this.payloadLength;
  }
  get isError(): boolean {
    return this.type === ICMP_DEST_UNREACHABLE || this.type === ICMP_TIME_EXCEEDED;
  }
  /** The payload as a subarray (allocates a view object: not for the hot path). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.length);
  }

  /** True when the checksum over the whole message (no pseudo-header in ICMPv4) verifies. */
  verifyChecksum(): boolean {
    return internetChecksum(this.buf, this.offset, this.length) === 0;
  }

  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.offset, this.length);
  }

  /**
   * NAT for echo: the identifier plays the part of a port. RFC 1624 update, so the
   * payload is not summed again. (No address helper: ICMPv4 has no pseudo-header.)
   */
  setIdentifierIncremental(id: number): void {
    this.checksum = checksumAdjust16(this.checksum, this.identifier, id);
    this.identifier = id;
  }
}

const EMPTY = new Uint8Array(0);

export interface IcmpEchoRepr {
  kind: 'echoRequest' | 'echoReply';
  id: number;
  seq: number;
}

export interface IcmpDestUnreachableRepr {
  kind: 'destUnreachable';
  code: number;
  /** Present for code 4 (fragmentation needed) only. */
  mtu?: number;
}

export interface IcmpTimeExceededRepr {
  kind: 'timeExceeded';
  code: number;
}

/** Any other type, or echo with a non-zero code: carried through, never refused. */
export interface IcmpOtherRepr {
  kind: 'other';
  type: number;
  code: number;
  /** Bytes 4-7 as a uint32. */
  rest: number;
}

export type IcmpRepr = IcmpEchoRepr | IcmpDestUnreachableRepr | IcmpTimeExceededRepr | IcmpOtherRepr;

/**
 * Judges the checksum (unless `verifyChecksum` is false) and names the message. Unused
 * bytes 4-7 of errors are ignored on receive, as RFC 792 asks.
 */
export function parseIcmp(view: IcmpView, verifyChecksum = true): IcmpRepr | PacketError {
  if (verifyChecksum && !view.verifyChecksum()) return PacketError.BadChecksum;
  const type = view.type;
  const code = view.code;
  if ((type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY) && code === 0) {
    return { kind: type === ICMP_ECHO_REQUEST ? 'echoRequest' : 'echoReply', id: view.identifier, seq: view.sequence };
  }
  if (type === ICMP_DEST_UNREACHABLE) {
    return code === ICMP_FRAG_NEEDED ? { kind: 'destUnreachable', code, mtu: view.nextHopMtu } : { kind: 'destUnreachable', code };
  }
  if (type === ICMP_TIME_EXCEEDED) return { kind: 'timeExceeded', code };
  return { kind: 'other', type, code, rest: view.restOfHeader };
}

export function icmpBufferLen(dataLength: number): number {
  return ICMP_HEADER_LEN + dataLength;
}

/**
 * Writes the 8-byte header at `offset` and the checksum over it and the `dataLength` bytes
 * after it, which the caller must already have placed there (echo data, or for errors the
 * quoted IPv4 header + 8 bytes). Returns the number of header bytes written.
 */
export function emitIcmp(repr: IcmpRepr, buf: Uint8Array, offset: number, dataLength: number): number {
  let type: number;
  let code: number;
  let rest: number;
  switch (repr.kind) {
    case 'echoRequest':
    case 'echoReply':
      type = repr.kind === 'echoRequest' ? ICMP_ECHO_REQUEST : ICMP_ECHO_REPLY;
      code = 0;
      rest = ((repr.id & 0xffff) * 0x10000 + (repr.seq & 0xffff)) >>> 0;
      break;
    case 'destUnreachable':
      type = ICMP_DEST_UNREACHABLE;
      code = repr.code;
      rest = repr.code === ICMP_FRAG_NEEDED ? (repr.mtu ?? 0) & 0xffff : 0;
      break;
    case 'timeExceeded':
      type = ICMP_TIME_EXCEEDED;
      code = repr.code;
      rest = 0;
      break;
    case 'other':
      type = repr.type;
      code = repr.code;
      rest = repr.rest;
      break;
  }
  buf[offset + TYPE] = type & 0xff;
  buf[offset + CODE] = code & 0xff;
  writeU16(buf, offset + CHECKSUM, 0);
  writeU32(buf, offset + REST, rest);
  writeU16(buf, offset + CHECKSUM, internetChecksum(buf, offset, ICMP_HEADER_LEN + dataLength));
  return ICMP_HEADER_LEN;
}
