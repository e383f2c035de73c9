/**
 * Builds whole capture files in memory with the encoders, for reader tests and
 * properties. Not a test file: ava only runs `*.test.js`.
 */
import {
  capturedLength,
  encodePcapGlobalHeader,
  encodePcapRecord,
  pcapGlobalHeaderLen,
  pcapRecordLen,
  type PcapResolution,
} from '../../src/pcap/pcap.js';
import { encodeEpb, encodeIdb, encodeShb, epbLen, idbLen, shbLen } from '../../src/pcap/pcapng.js';

export interface Frame {
  interfaceId: number;
  timestampNs: bigint;
  data: Uint8Array;
  comment?: string;
}

export interface BuiltFile {
  /** The whole file, a subarray of a larger poisoned buffer when built at an offset. */
  bytes: Buffer;
  /** Offsets (in `bytes`) where a file may end: after each header block and each record. */
  boundaries: number[];
  /** How many of the boundaries close header blocks (SHB, IDBs, or the pcap file header). */
  headerBlocks: number;
}

export interface PcapngLayout {
  interfaces: { name?: string; description?: string }[];
  snaplen: number;
}

/** Lays the file out at `offset` in a buffer poisoned with 0xa5, then returns its bytes. */
export function buildPcapng(layout: PcapngLayout, frames: readonly Frame[], offset = 0): BuiltFile {
  const idbs = layout.interfaces.map((i) => ({ snaplen: layout.snaplen, ...i }));
  let total = shbLen({ userAppl: 'podwire test' });
  for (const idb of idbs) total += idbLen(idb);
  for (const f of frames) total += epbLen(capturedLength(f.data.length, layout.snaplen), f.comment);
  const buf = Buffer.alloc(offset + total + 4, 0xa5);
  let at = offset + encodeShb({ userAppl: 'podwire test' }, buf, offset);
  // A section with no interfaces yet, or only some of them, is still a whole file.
  const boundaries = [at - offset];
  for (const idb of idbs) {
    at += encodeIdb(idb, buf, at);
    boundaries.push(at - offset);
  }
  for (const f of frames) {
    at += encodeEpb({ ...f, snaplen: layout.snaplen }, buf, at);
    boundaries.push(at - offset);
  }
  if (at - offset !== total) throw new Error(`built ${at - offset} bytes, expected ${total}`);
  return { bytes: buf.subarray(offset, at), boundaries, headerBlocks: 1 + idbs.length };
}

export function buildPcap(resolution: PcapResolution, snaplen: number, frames: readonly Frame[], offset = 0): BuiltFile {
  const header = { resolution, snaplen };
  let total = pcapGlobalHeaderLen();
  for (const f of frames) total += pcapRecordLen(capturedLength(f.data.length, snaplen));
  const buf = Buffer.alloc(offset + total + 4, 0xa5);
  let at = offset + encodePcapGlobalHeader(header, buf, offset);
  const boundaries = [at - offset];
  for (const f of frames) {
    at += encodePcapRecord(f, header, buf, at);
    boundaries.push(at - offset);
  }
  if (at - offset !== total) throw new Error(`built ${at - offset} bytes, expected ${total}`);
  return { bytes: buf.subarray(offset, at), boundaries, headerBlocks: 1 };
}

/** What a reader must give back for a comment: cut at a NUL, and none when empty. */
export function expectedComment(comment: string | undefined): string | undefined {
  if (comment === undefined) return undefined;
  const nul = comment.indexOf('\0');
  const text = nul < 0 ? comment : comment.slice(0, nul);
  return text.length === 0 ? undefined : Buffer.from(text, 'utf8').toString('utf8');
}
