/**
 * Classic libpcap capture files (draft-ietf-opsawg-pcap): a 24-byte file header, then one
 * 16-byte record header plus captured bytes per packet.
 *
 * Every encoder writes into a caller's Buffer at an offset, returns the number of bytes
 * written and first proves that all of them fit (counting from the offset), so a short
 * buffer is an Error naming the offset, never a silently dropped tail. Timestamps are
 * bigint nanoseconds since the Unix epoch, passed in: nothing here reads a clock.
 *
 * Files are written little-endian whatever the host. The magic number tells every reader
 * the byte order, and a fixed order keeps golden bytes and test fixtures identical on
 * every machine (little-endian is also what tcpdump writes on x86 and arm64 hosts).
 */

/** Seconds and microseconds in each record. */
export const PCAP_MAGIC_MICROS = 0xa1b2c3d4;
/** Seconds and nanoseconds in each record. */
export const PCAP_MAGIC_NANOS = 0xa1b23c4d;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const PCAP_GLOBAL_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

/** DLT_EN10MB: frames start with the Ethernet header, no FCS. */
export const LINKTYPE_ETHERNET = 1;
/** libpcap's limit for Ethernet captures; a larger snaplen is refused by tcpdump. */
export const MAX_SNAPLEN = 262144;

export type PcapResolution = 'us' | 'ns';

export interface PcapFileHeader {
  resolution: PcapResolution;
  /** Largest number of bytes stored per packet, 1 to MAX_SNAPLEN. */
  snaplen: number;
  /** Defaults to LINKTYPE_ETHERNET. */
  linkType?: number;
}

export interface PcapRecord {
  timestampNs: bigint;
  /** The frame as seen on the wire; bytes past the snaplen are not stored. */
  data: Uint8Array;
  /** Length on the wire when `data` was already cut upstream; defaults to data.length. */
  originalLength?: number;
}

// File header field offsets.
const MAGIC = 0;
const VERSION_MAJOR = 4;
const VERSION_MINOR = 6;
const THISZONE = 8;
const SIGFIGS = 12;
const SNAPLEN = 16;
const LINKTYPE = 20;

// Record header field offsets.
const TS_SEC = 0;
const TS_FRAC = 4;
const CAP_LEN = 8;
const ORIG_LEN = 12;

const NS_PER_SEC = 1_000_000_000n;
const MAX_U32 = 0xffffffffn;

export function pcapGlobalHeaderLen(): number {
  return PCAP_GLOBAL_HEADER_LEN;
}

/** Bytes a record takes for `capLen` stored bytes (see `capturedLength`). */
export function pcapRecordLen(capLen: number): number {
  return PCAP_RECORD_HEADER_LEN + capLen;
}

/** How many bytes of a `frameLength`-byte frame a file with this snaplen stores. */
export function capturedLength(frameLength: number, snaplen: number): number {
  return snaplen > 0 && frameLength > snaplen ? snaplen : frameLength;
}

export function encodePcapGlobalHeader(header: PcapFileHeader, buf: Buffer, offset: number): number {
  ensureRoom(buf, offset, PCAP_GLOBAL_HEADER_LEN, 'pcap file header');
  ensureField(header.snaplen, 0xffffffff, 'pcap snaplen');
  ensureField(header.linkType ?? LINKTYPE_ETHERNET, 0xffffffff, 'pcap link type');
  const magic = header.resolution === 'ns' ? PCAP_MAGIC_NANOS : PCAP_MAGIC_MICROS;
  buf.writeUInt32LE(magic, offset + MAGIC);
  buf.writeUInt16LE(PCAP_VERSION_MAJOR, offset + VERSION_MAJOR);
  buf.writeUInt16LE(PCAP_VERSION_MINOR, offset + VERSION_MINOR);
  // Both reserved fields are 0: timestamps are UTC and no writer ever filled sigfigs.
  buf.writeUInt32LE(0, offset + THISZONE);
  buf.writeUInt32LE(0, offset + SIGFIGS);
  buf.writeUInt32LE(header.snaplen, offset + SNAPLEN);
  buf.writeUInt32LE(header.linkType ?? LINKTYPE_ETHERNET, offset + LINKTYPE);
  return PCAP_GLOBAL_HEADER_LEN;
}

/**
 * Writes one record: the header, then the first min(data.length, snaplen) bytes. The
 * original length keeps the full size so readers show the frame as truncated, not short.
 */
export function encodePcapRecord(record: PcapRecord, header: PcapFileHeader, buf: Buffer, offset: number): number {
  const capLen = capturedLength(record.data.length, header.snaplen);
  const total = pcapRecordLen(capLen);
  ensureRoom(buf, offset, total, 'pcap record');
  const [seconds, fraction] = splitTimestamp(record.timestampNs, header.resolution);
  buf.writeUInt32LE(seconds, offset + TS_SEC);
  buf.writeUInt32LE(fraction, offset + TS_FRAC);
  buf.writeUInt32LE(capLen, offset + CAP_LEN);
  buf.writeUInt32LE(Math.max(record.originalLength ?? record.data.length, capLen), offset + ORIG_LEN);
  buf.set(record.data.subarray(0, capLen), offset + PCAP_RECORD_HEADER_LEN);
  return total;
}

/** Seconds and the sub-second part in the file's unit. The seconds field is 32 bits (to 2106). */
function splitTimestamp(timestampNs: bigint, resolution: PcapResolution): [number, number] {
  const seconds = timestampNs / NS_PER_SEC;
  if (timestampNs < 0n || seconds > MAX_U32) {
    throw new Error(`pcap: timestamp ${timestampNs} ns is outside the 32-bit seconds range of the format`);
  }
  const subNs = timestampNs % NS_PER_SEC;
  // Microsecond files truncate, as the kernel does when it reports a microsecond time.
  const fraction = resolution === 'ns' ? subNs : subNs / 1000n;
  return [Number(seconds), Number(fraction)];
}

/** Shared with pcapng.ts: an Error naming what did not fit and where, before a byte is written. */
export function ensureRoom(buf: Uint8Array, offset: number, length: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + length > buf.length) {
    throw new Error(`${what}: ${length} bytes do not fit at offset ${offset} of a ${buf.length}-byte buffer`);
  }
}

/** Refuses a value its field cannot hold, before anything is written. */
export function ensureField(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`${what} ${value} is not an integer from 0 to ${max}`);
}
