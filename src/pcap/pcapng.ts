/**
 * pcapng capture files (draft-ietf-opsawg-pcapng): a Section Header Block, one Interface
 * Description Block per interface, then Enhanced Packet Blocks.
 *
 * Every block is `type, total length, body, total length` and 32-bit aligned; options are
 * 16-bit code, 16-bit length, value zero-padded to 32 bits, ending with opt_endofopt. As
 * in pcap.ts, each encoder writes into a caller's Buffer at an offset, checks that the
 * whole block fits before writing a byte, and returns the bytes written; each `...Len`
 * function returns exactly that number. Files are little-endian (the byte-order magic in
 * the SHB tells readers). Timestamps are passed in as bigint nanoseconds.
 *
 * Every interface is written with if_tsresol = 9, so an EPB timestamp is simply the
 * nanosecond count split into its high and low 32 bits.
 */
import { capturedLength, ensureField, ensureRoom, LINKTYPE_ETHERNET } from './pcap.js';

export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 0x00000001;
export const BLOCK_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
export const SHB_HARDWARE = 2;
export const SHB_OS = 3;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_DESCRIPTION = 3;
export const IF_TSRESOL = 9;
export const IF_TSOFFSET = 14;

/** if_tsresol value written by podwire: 10^-9 s units. */
export const TSRESOL_NANOS = 9;
/** The longest option value the 16-bit length field can carry. */
export const MAX_OPTION_VALUE_LEN = 0xffff;

const OPTION_HEADER_LEN = 4;
const SHB_FIXED_LEN = 28;
const IDB_FIXED_LEN = 20;
const EPB_FIXED_LEN = 32;

export interface SectionHeader {
  hardware?: string;
  os?: string;
  /** The writing application, e.g. "podwire 0.1.0". */
  userAppl?: string;
}

export interface InterfaceDescription {
  /** Defaults to LINKTYPE_ETHERNET. */
  linkType?: number;
  /** Largest number of bytes stored per packet; 0 means no limit. */
  snaplen: number;
  name?: string;
  description?: string;
}

export interface EnhancedPacket {
  interfaceId: number;
  timestampNs: bigint;
  /** The frame as seen on the wire; bytes past `snaplen` are not stored. */
  data: Uint8Array;
  /** The interface's snaplen; 0 or absent means no limit. */
  snaplen?: number;
  /** Length on the wire when `data` was already cut upstream; defaults to data.length. */
  originalLength?: number;
  /** opt_comment, e.g. a verdict such as "drop: policy-denied". */
  comment?: string;
}

/** Rounds up to the 32-bit boundary every pcapng field is aligned to. */
export function pad4(length: number): number {
  return (length + 3) & ~3;
}

// ---- Section Header Block ----

export function shbLen(shb: SectionHeader = {}): number {
  return SHB_FIXED_LEN + optionsLen([shb.hardware, shb.os, shb.userAppl]);
}

export function encodeShb(shb: SectionHeader, buf: Buffer, offset: number): number {
  const total = shbLen(shb);
  ensureRoom(buf, offset, total, 'pcapng Section Header Block');
  let at = writeBlockStart(buf, offset, BLOCK_SHB, total);
  buf.writeUInt32LE(BYTE_ORDER_MAGIC, at);
  buf.writeUInt16LE(1, at + 4); // major version 1: readers refuse any other
  buf.writeUInt16LE(0, at + 6); // minor version 0 (the draft forbids writing 2)
  // Section length -1: unknown, because the file is written as a stream.
  buf.writeUInt32LE(0xffffffff, at + 8);
  buf.writeUInt32LE(0xffffffff, at + 12);
  at += 16;
  const opts = new OptionWriter(buf, offset, at);
  opts.string(SHB_HARDWARE, shb.hardware);
  opts.string(SHB_OS, shb.os);
  opts.string(SHB_USERAPPL, shb.userAppl);
  at = opts.end();
  return writeBlockEnd(buf, offset, at, total);
}

// ---- Interface Description Block ----

export function idbLen(idb: InterfaceDescription): number {
  // if_tsresol (one byte of value) is always present, so the list is never empty.
  return IDB_FIXED_LEN + optionsLen([idb.name, idb.description], 1);
}

export function encodeIdb(idb: InterfaceDescription, buf: Buffer, offset: number): number {
  const total = idbLen(idb);
  ensureRoom(buf, offset, total, 'pcapng Interface Description Block');
  ensureField(idb.linkType ?? LINKTYPE_ETHERNET, 0xffff, 'pcapng link type');
  ensureField(idb.snaplen, 0xffffffff, 'pcapng snaplen');
  let at = writeBlockStart(buf, offset, BLOCK_IDB, total);
  buf.writeUInt16LE(idb.linkType ?? LINKTYPE_ETHERNET, at);
  buf.writeUInt16LE(0, at + 2); // reserved
  buf.writeUInt32LE(idb.snaplen, at + 4);
  at += 8;
  const opts = new OptionWriter(buf, offset, at);
  opts.string(IF_NAME, idb.name);
  opts.string(IF_DESCRIPTION, idb.description);
  opts.byte(IF_TSRESOL, TSRESOL_NANOS);
  at = opts.end();
  return writeBlockEnd(buf, offset, at, total);
}

// ---- Enhanced Packet Block ----

/** Bytes an EPB takes for `capLen` stored bytes (see `capturedLength`) and this comment. */
export function epbLen(capLen: number, comment?: string): number {
  const commentLen = optionStringLen(comment);
  // Written out rather than through optionsLen: this runs per packet and allocates nothing.
  const options = commentLen === 0 ? 0 : OPTION_HEADER_LEN + pad4(commentLen) + OPTION_HEADER_LEN;
  return EPB_FIXED_LEN + pad4(capLen) + options;
}

export function encodeEpb(packet: EnhancedPacket, buf: Buffer, offset: number): number {
  const capLen = capturedLength(packet.data.length, packet.snaplen ?? 0);
  const total = epbLen(capLen, packet.comment);
  ensureRoom(buf, offset, total, 'pcapng Enhanced Packet Block');
  checkEpbFields(packet);
  let at = writeBlockStart(buf, offset, BLOCK_EPB, total);
  buf.writeUInt32LE(packet.interfaceId, at);
  buf.writeUInt32LE(Number(packet.timestampNs >> 32n), at + 4);
  buf.writeUInt32LE(Number(packet.timestampNs & 0xffffffffn), at + 8);
  buf.writeUInt32LE(capLen, at + 12);
  buf.writeUInt32LE(Math.max(packet.originalLength ?? packet.data.length, capLen), at + 16);
  at += 20;
  buf.set(packet.data.subarray(0, capLen), at);
  at = zeroPad(buf, at + capLen, offset);
  const opts = new OptionWriter(buf, offset, at);
  opts.string(OPT_COMMENT, packet.comment);
  at = opts.end();
  return writeBlockEnd(buf, offset, at, total);
}

const TWO_POW_32 = 0x1_0000_0000;

/**
 * The Enhanced Packet Block encodeEpb writes for a packet without a comment, for capture
 * paths that write one per frame: the timestamp comes in halves (`SplitClock`), the
 * fields are stored a byte at a time (Buffer's writeUInt32LE checks each value and costs
 * more than the frame's copy), and the one object made is the plain view the bytes are
 * copied through (a byte loop costs twice the view at a 106-byte frame, and a Buffer's
 * subarray twice again). The caller has made room for
 * epbLen(capturedLength(length, snaplen)) bytes at `at` and passes a 32-bit interface id;
 * the frame's bytes are read from `frame[offset, offset + length)`.
 */
export function writeEpb(buf: Buffer, at: number, interfaceId: number, clock: SplitClock, frame: Uint8Array, offset: number, length: number, snaplen: number): number {
  const capLen = capturedLength(length, snaplen);
  const total = EPB_FIXED_LEN + pad4(capLen);
  storeU32(buf, at, BLOCK_EPB);
  storeU32(buf, at + 4, total);
  storeU32(buf, at + 8, interfaceId);
  storeU32(buf, at + 12, clock.high);
  storeU32(buf, at + 16, clock.low);
  storeU32(buf, at + 20, capLen);
  storeU32(buf, at + 24, length);
  const data = at + 28;
  buf.set(new Uint8Array(frame.buffer, frame.byteOffset + offset, capLen), data);
  for (let i = data + capLen; i < at + total - 4; i++) buf[i] = 0;
  storeU32(buf, at + total - 4, total);
  return total;
}

/** A little-endian uint32 (the caller's value fits). */
function storeU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value;
  buf[at + 1] = value >>> 8;
  buf[at + 2] = value >>> 16;
  buf[at + 3] = value >>> 24;
}

/**
 * Nanoseconds since the epoch as the two 32-bit halves an EPB stores, read once per
 * packet without a bigint: a monotonic clock in nanoseconds (`nowNs`) counted from an
 * instant whose place on the wall clock is known (`zeroEpochNs`). By default the zero is
 * now and the clock is performance.now(); a node passes its forwarding path's batch clock,
 * which costs a memory read where performance.now() costs a third of a record.
 */
export class SplitClock {
  high = 0;
  low = 0;
  private readonly baseHigh: number;
  private readonly baseLow: number;
  private readonly nowNs: () => number;

  constructor(zeroEpochNs?: bigint, nowNs?: () => number) {
    const zero = zeroEpochNs ?? BigInt(Date.now()) * 1_000_000n;
    if (nowNs === undefined) {
      const start = performance.now();
      nowNs = () => (performance.now() - start) * 1e6;
    }
    this.nowNs = nowNs;
    this.baseHigh = Number(zero >> 32n);
    this.baseLow = Number(zero & 0xffffffffn);
    this.low = this.baseLow;
    this.high = this.baseHigh;
  }

  /** Sets `high` and `low` to now. */
  read(): void {
    // Below 2^53 for 104 days of running: the sum stays exact.
    const low = this.baseLow + Math.max(0, Math.round(this.nowNs()));
    const carry = Math.floor(low / TWO_POW_32);
    this.high = this.baseHigh + carry;
    this.low = low - carry * TWO_POW_32;
  }
}

/** Refuses values the fields cannot hold before any byte is written. */
function checkEpbFields(packet: EnhancedPacket): void {
  if (packet.timestampNs < 0n || packet.timestampNs > 0xffffffffffffffffn) {
    throw new Error(`pcapng: timestamp ${packet.timestampNs} ns does not fit the 64-bit timestamp field`);
  }
  ensureField(packet.interfaceId, 0xffffffff, 'pcapng interface id');
}

// ---- blocks and options ----

function writeBlockStart(buf: Buffer, offset: number, type: number, total: number): number {
  buf.writeUInt32LE(type, offset);
  buf.writeUInt32LE(total, offset + 4);
  return offset + 8;
}

/**
 * Writes the trailing total length right after the body and checks the body ended where
 * the length function said it would: a mismatch is a bug here, not in the caller.
 */
function writeBlockEnd(buf: Buffer, offset: number, at: number, total: number): number {
  if (at + 4 !== offset + total) throw new Error(`pcapng: block at offset ${offset} is ${at + 4 - offset} bytes, expected ${total}`);
  buf.writeUInt32LE(total, at);
  return total;
}

/**
 * Zero-fills up to the next 32-bit boundary counted from the block's start: the caller's
 * offset need not be aligned in its buffer, only within the file.
 */
function zeroPad(buf: Buffer, at: number, blockStart: number): number {
  while (((at - blockStart) & 3) !== 0) buf[at++] = 0;
  return at;
}

/**
 * Length of an option list made of these strings (absent and empty ones are skipped) and
 * of options with fixed value lengths, including opt_endofopt; 0 when there is nothing to
 * write, as a block without options may end straight after its fixed fields.
 */
function optionsLen(strings: readonly (string | undefined)[], ...fixedValueLens: number[]): number {
  let total = 0;
  for (const value of strings) {
    const len = optionStringLen(value);
    if (len > 0) total += OPTION_HEADER_LEN + pad4(len);
  }
  for (const len of fixedValueLens) total += OPTION_HEADER_LEN + pad4(len);
  return total === 0 ? 0 : total + OPTION_HEADER_LEN;
}

const UTF8 = new TextEncoder();

/**
 * Bytes of `value` stored in a string option. The draft has readers stop a string at a
 * NUL, so the text is cut there (the file then says what every reader will show), and
 * at MAX_OPTION_VALUE_LEN on a character boundary, so the UTF-8 stays valid.
 */
export function optionStringLen(value: string | undefined): number {
  if (value === undefined || value.length === 0) return 0;
  const text = beforeNul(value);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= MAX_OPTION_VALUE_LEN) return bytes;
  return UTF8.encodeInto(text, new Uint8Array(MAX_OPTION_VALUE_LEN)).written;
}

function beforeNul(value: string): string {
  const nul = value.indexOf('\0');
  return nul < 0 ? value : value.slice(0, nul);
}

/** Appends options at a cursor; the caller has already checked the block fits. */
class OptionWriter {
  private count = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly blockStart: number,
    private at: number,
  ) {}

  string(code: number, value: string | undefined): void {
    const len = optionStringLen(value);
    if (len === 0) return;
    this.header(code, len);
    const written = UTF8.encodeInto(beforeNul(value as string), this.buf.subarray(this.at, this.at + len)).written;
    if (written !== len) throw new Error(`pcapng: option ${code} wrote ${written} of ${len} bytes`);
    this.at = zeroPad(this.buf, this.at + len, this.blockStart);
  }

  byte(code: number, value: number): void {
    this.header(code, 1);
    this.buf[this.at] = value;
    this.at = zeroPad(this.buf, this.at + 1, this.blockStart);
  }

  /** Writes opt_endofopt after a non-empty list; returns the cursor. */
  end(): number {
    if (this.count > 0) this.header(OPT_ENDOFOPT, 0);
    return this.at;
  }

  private header(code: number, len: number): void {
    this.buf.writeUInt16LE(code, this.at);
    this.buf.writeUInt16LE(len, this.at + 2);
    this.at += OPTION_HEADER_LEN;
    this.count++;
  }
}
