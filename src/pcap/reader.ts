/**
 * Reads classic pcap (either magic, either byte order) and pcapng (SHB, IDB and EPB; any
 * other block is skipped by its length) into records and interfaces.
 *
 * Every length is checked against the bytes that are really there, counting from the
 * offset being read, before anything is read through it: a truncated or corrupt file is
 * a `CaptureFormatError` whose message names the offset, never a RangeError from deep
 * inside Buffer. Record data are subarrays of the input, not copies.
 */
import {
  BLOCK_EPB,
  BLOCK_IDB,
  BLOCK_SHB,
  BYTE_ORDER_MAGIC,
  IF_DESCRIPTION,
  IF_NAME,
  IF_TSOFFSET,
  IF_TSRESOL,
  OPT_COMMENT,
  OPT_ENDOFOPT,
  pad4,
} from './pcapng.js';
import { PCAP_GLOBAL_HEADER_LEN, PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAP_RECORD_HEADER_LEN } from './pcap.js';

export type CaptureFormat = 'pcap' | 'pcapng';

export interface CaptureFileInterface {
  linkType: number;
  /** 0 means no limit (pcapng only). */
  snaplen: number;
  /**
   * Timestamp resolution as pcapng's if_tsresol byte: high bit clear, 10^-n seconds;
   * high bit set, 2^-n. Classic files give 6 or 9; pcapng without the option gives 6.
   */
  tsresol: number;
  name?: string;
  description?: string;
}

export interface CaptureFileRecord {
  /** Index into `CaptureFile.interfaces` (with several pcapng sections, counted across them). */
  interfaceId: number;
  /** Nanoseconds since the Unix epoch, if_tsresol and if_tsoffset applied. */
  timestampNs: bigint;
  /** The stored bytes: a subarray of the input. */
  data: Buffer;
  originalLength: number;
  /** The first opt_comment, if any. */
  comment?: string;
}

export interface CaptureFile {
  format: CaptureFormat;
  interfaces: CaptureFileInterface[];
  records: CaptureFileRecord[];
}

export class CaptureFormatError extends Error {
  constructor(
    /** Byte offset in the input of the header, block or field that is wrong. */
    readonly offset: number,
    message: string,
  ) {
    super(message);
    this.name = 'CaptureFormatError';
  }
}

export function readCapture(input: Uint8Array): CaptureFile {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length < 4) throw new CaptureFormatError(0, `capture file is ${buf.length} bytes at offset 0: too short for a magic number`);
  // The SHB type is a palindrome, so it reads the same in either byte order.
  return buf.readUInt32LE(0) === BLOCK_SHB ? readPcapng(buf) : readPcap(buf);
}

/** Byte-order-aware reads over a buffer whose bounds the caller has already checked. */
interface Reader {
  u16(offset: number): number;
  u32(offset: number): number;
  i64(offset: number): bigint;
}

function reader(buf: Buffer, littleEndian: boolean): Reader {
  return littleEndian
    ? { u16: (o) => buf.readUInt16LE(o), u32: (o) => buf.readUInt32LE(o), i64: (o) => buf.readBigInt64LE(o) }
    : { u16: (o) => buf.readUInt16BE(o), u32: (o) => buf.readUInt32BE(o), i64: (o) => buf.readBigInt64BE(o) };
}

/** Throws unless `length` bytes are present at `offset`. */
function need(buf: Buffer, offset: number, length: number, what: string): void {
  const left = buf.length - offset;
  if (length > left) {
    throw new CaptureFormatError(offset, `truncated ${what} at offset ${offset}: ${length} bytes needed, ${Math.max(left, 0)} left`);
  }
}

// ---- classic pcap ----

const NS_PER_SEC = 1_000_000_000n;
/** libpcap's LT_LINKTYPE: the upper bits of the field carry FCS information. */
const LINKTYPE_MASK = 0x03ffffff;

function readPcap(buf: Buffer): CaptureFile {
  // The magic first: a file that is not pcap at all should say so, not "truncated".
  const { littleEndian, nanos } = pcapMagic(buf);
  need(buf, 0, PCAP_GLOBAL_HEADER_LEN, 'pcap file header');
  const r = reader(buf, littleEndian);
  const major = r.u16(4);
  if (major !== 2) throw new CaptureFormatError(4, `pcap file header at offset 0: version ${major}.${r.u16(6)}, only 2.x is known`);
  const iface: CaptureFileInterface = { linkType: r.u32(20) & LINKTYPE_MASK, snaplen: r.u32(16), tsresol: nanos ? 9 : 6 };
  const fractionNs = nanos ? 1n : 1000n;
  const records: CaptureFileRecord[] = [];
  let offset = PCAP_GLOBAL_HEADER_LEN;
  while (offset < buf.length) {
    need(buf, offset, PCAP_RECORD_HEADER_LEN, 'pcap record header');
    const capLen = r.u32(offset + 8);
    const dataStart = offset + PCAP_RECORD_HEADER_LEN;
    need(buf, dataStart, capLen, `pcap record data (record at offset ${offset}, captured length ${capLen})`);
    records.push({
      interfaceId: 0,
      timestampNs: BigInt(r.u32(offset)) * NS_PER_SEC + BigInt(r.u32(offset + 4)) * fractionNs,
      data: buf.subarray(dataStart, dataStart + capLen),
      originalLength: r.u32(offset + 12),
    });
    offset = dataStart + capLen;
  }
  return { format: 'pcap', interfaces: [iface], records };
}

function pcapMagic(buf: Buffer): { littleEndian: boolean; nanos: boolean } {
  for (const littleEndian of [true, false]) {
    const magic = littleEndian ? buf.readUInt32LE(0) : buf.readUInt32BE(0);
    if (magic === PCAP_MAGIC_MICROS || magic === PCAP_MAGIC_NANOS) return { littleEndian, nanos: magic === PCAP_MAGIC_NANOS };
  }
  const hex = buf.readUInt32BE(0).toString(16).padStart(8, '0');
  throw new CaptureFormatError(0, `unknown magic 0x${hex} at offset 0: neither pcap nor pcapng`);
}

// ---- pcapng ----

const BLOCK_HEADER_LEN = 8;
const MIN_BLOCK_LEN = 12;
const SHB_MIN_LEN = 28;
const IDB_MIN_LEN = 20;
const EPB_MIN_LEN = 32;

/** What a section's EPBs need to know about each of its interfaces. */
interface TimeBase {
  tsresol: number;
  offsetNs: bigint;
}

interface Section {
  r: Reader;
  /** Index in the flat interface list of this section's interface 0. */
  base: number;
  times: TimeBase[];
}

interface Block {
  type: number;
  offset: number;
  total: number;
  /** Offset of the first byte after the trailing length. */
  end: number;
}

function readPcapng(buf: Buffer): CaptureFile {
  const file: CaptureFile = { format: 'pcapng', interfaces: [], records: [] };
  let section: Section | undefined;
  let offset = 0;
  while (offset < buf.length) {
    // A new SHB starts a new section, possibly in the other byte order.
    const isShb = section === undefined || (buf.length - offset >= 4 && buf.readUInt32LE(offset) === BLOCK_SHB);
    if (isShb) section = startSection(buf, offset, file);
    const current = section as Section;
    const block = blockFrame(buf, offset, current.r);
    if (block.type === BLOCK_IDB) readIdb(buf, block, current, file);
    else if (block.type === BLOCK_EPB) readEpb(buf, block, current, file);
    // Anything else (statistics, name resolution, custom, simple packet blocks) is skipped.
    offset = block.end;
  }
  return file;
}

function startSection(buf: Buffer, offset: number, file: CaptureFile): Section {
  need(buf, offset, MIN_BLOCK_LEN, 'pcapng Section Header Block');
  let littleEndian: boolean;
  if (buf.readUInt32LE(offset + 8) === BYTE_ORDER_MAGIC) littleEndian = true;
  else if (buf.readUInt32BE(offset + 8) === BYTE_ORDER_MAGIC) littleEndian = false;
  else throw new CaptureFormatError(offset + 8, `pcapng Section Header Block at offset ${offset}: bad byte-order magic`);
  const r = reader(buf, littleEndian);
  minLength(blockFrame(buf, offset, r), SHB_MIN_LEN, 'Section Header Block');
  const major = r.u16(offset + 12);
  if (major !== 1) {
    throw new CaptureFormatError(offset + 12, `pcapng Section Header Block at offset ${offset}: version ${major}, only 1 is known`);
  }
  return { r, base: file.interfaces.length, times: [] };
}

/** Validates the generic block frame: both length fields, alignment, and that it fits. */
function blockFrame(buf: Buffer, offset: number, r: Reader): Block {
  need(buf, offset, BLOCK_HEADER_LEN, 'pcapng block header');
  const type = r.u32(offset);
  const total = r.u32(offset + 4);
  const name = `pcapng block (type 0x${type.toString(16)}) at offset ${offset}`;
  if (total < MIN_BLOCK_LEN || total % 4 !== 0) throw new CaptureFormatError(offset + 4, `${name}: bad total length ${total}`);
  if (total > buf.length - offset) {
    throw new CaptureFormatError(offset, `truncated ${name}: total length ${total}, ${buf.length - offset} bytes left`);
  }
  const trailer = r.u32(offset + total - 4);
  if (trailer !== total) {
    throw new CaptureFormatError(offset + total - 4, `${name}: trailing length ${trailer} differs from leading length ${total}`);
  }
  return { type, offset, total, end: offset + total };
}

function minLength(block: Block, min: number, what: string): void {
  if (block.total < min) {
    const message = `pcapng ${what} at offset ${block.offset}: total length ${block.total} is below the minimum ${min}`;
    throw new CaptureFormatError(block.offset + 4, message);
  }
}

function readIdb(buf: Buffer, block: Block, section: Section, file: CaptureFile): void {
  minLength(block, IDB_MIN_LEN, 'Interface Description Block');
  const r = section.r;
  const offset = block.offset;
  const iface: CaptureFileInterface = { linkType: r.u16(offset + 8), snaplen: r.u32(offset + 12), tsresol: 6 };
  let tsoffsetSeconds = 0n;
  forEachOption(r, offset + 16, block, 'Interface Description Block', (code, start, len) => {
    if (code === IF_NAME) iface.name ??= optionString(buf, start, len);
    else if (code === IF_DESCRIPTION) iface.description ??= optionString(buf, start, len);
    else if (code === IF_TSRESOL) iface.tsresol = fixedOption(start, len, 1, 'if_tsresol', () => buf[start]);
    else if (code === IF_TSOFFSET) tsoffsetSeconds = fixedOption(start, len, 8, 'if_tsoffset', () => r.i64(start));
  });
  section.times.push({ tsresol: iface.tsresol, offsetNs: tsoffsetSeconds * NS_PER_SEC });
  file.interfaces.push(iface);
}

function readEpb(buf: Buffer, block: Block, section: Section, file: CaptureFile): void {
  minLength(block, EPB_MIN_LEN, 'Enhanced Packet Block');
  const r = section.r;
  const offset = block.offset;
  const localId = r.u32(offset + 8);
  const time = section.times[localId];
  if (time === undefined) {
    const message = `interface ${localId} has no Interface Description Block (section has ${section.times.length})`;
    throw new CaptureFormatError(offset + 8, `pcapng Enhanced Packet Block at offset ${offset}: ${message}`);
  }
  const capLen = r.u32(offset + 20);
  const dataStart = offset + 28;
  // The block total is a multiple of 4, so fitting capLen means fitting its padding too.
  if (capLen > block.end - 4 - dataStart) {
    const message = `captured length ${capLen} runs past the block (total length ${block.total})`;
    throw new CaptureFormatError(offset + 20, `pcapng Enhanced Packet Block at offset ${offset}: ${message}`);
  }
  const units = (BigInt(r.u32(offset + 12)) << 32n) | BigInt(r.u32(offset + 16));
  const record: CaptureFileRecord = {
    interfaceId: section.base + localId,
    timestampNs: unitsToNs(units, time.tsresol) + time.offsetNs,
    data: buf.subarray(dataStart, dataStart + capLen),
    originalLength: r.u32(offset + 24),
  };
  forEachOption(r, dataStart + pad4(capLen), block, 'Enhanced Packet Block', (code, start, len) => {
    if (code === OPT_COMMENT) record.comment ??= optionString(buf, start, len);
  });
  file.records.push(record);
}

/**
 * Calls `visit` for each option in [start, end of body); stops at opt_endofopt or at the
 * body's end (the draft lets writers omit opt_endofopt). An option whose value runs past
 * the body is an error.
 */
function forEachOption(
  r: Reader,
  start: number,
  block: Block,
  what: string,
  visit: (code: number, valueStart: number, valueLen: number) => void,
): void {
  const bodyEnd = block.end - 4;
  let at = start;
  while (bodyEnd - at >= 4) {
    const code = r.u16(at);
    const len = r.u16(at + 2);
    if (code === OPT_ENDOFOPT) return;
    if (len > bodyEnd - at - 4) {
      const message = `option ${code} at offset ${at} has length ${len}, past the end of the block`;
      throw new CaptureFormatError(at, `pcapng ${what} at offset ${block.offset}: ${message}`);
    }
    visit(code, at + 4, len);
    at += 4 + pad4(len);
  }
}

/** UTF-8 up to the first NUL, which the draft says ends a string whatever its length. */
function optionString(buf: Buffer, start: number, len: number): string {
  const nul = buf.indexOf(0, start);
  const end = nul >= 0 && nul < start + len ? nul : start + len;
  return buf.toString('utf8', start, end);
}

/** Reads a fixed-length option; a wrong length is an error (the draft lets readers refuse it). */
function fixedOption<T>(start: number, len: number, expected: number, name: string, read: () => T): T {
  if (len !== expected) {
    throw new CaptureFormatError(start - 4, `pcapng option ${name} at offset ${start - 4}: length ${len}, expected ${expected}`);
  }
  return read();
}

/** Converts a count of if_tsresol units to nanoseconds (rounding down below 1 ns). */
export function unitsToNs(units: bigint, tsresol: number): bigint {
  const exponent = BigInt(tsresol & 0x7f);
  if ((tsresol & 0x80) !== 0) return (units * NS_PER_SEC) >> exponent;
  return exponent <= 9n ? units * 10n ** (9n - exponent) : units / 10n ** (exponent - 9n);
}
