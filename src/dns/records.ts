/**
 * Resource records taken out of a message and put back into another: what the forwarder
 * needs to keep an upstream's answer and hand it to clients.
 *
 * `readRecords` validates a response's answer, authority and additional sections and copies
 * them into a *block*: the same records in uncompressed wire form (owner names and the names
 * inside RFC 1035 rdata decompressed), without the OPT record, which belongs to the hop and
 * not to the answer. A block refers to nothing outside itself, so it can be cached and
 * written into any message. `writeRecords` writes a block back, compressing owner names and
 * the RFC 1035 rdata names (RFC 3597 §4 allows no others), with every TTL lowered by the time
 * the block has spent in the cache.
 *
 * Names inside the rdata of other types are copied as they are: RFC 3597 forbids compressing
 * them, so they hold no pointers into the message they came from.
 */
import { CLASS, TYPE } from './constants.js';
import { NameReader } from './name.js';
import { Section, type MessageWriter } from './writer.js';

/** How the names in a type's rdata are laid out: fixed bytes before, names, fixed bytes after. */
interface RdataLayout {
  readonly before: number;
  readonly names: number;
  readonly after: number;
  /** Whether the names may be compressed on the way out (the RFC 1035 types only). */
  readonly compress: boolean;
}

const ONE_NAME: RdataLayout = { before: 0, names: 1, after: 0, compress: true };
const LAYOUTS = new Map<number, RdataLayout>([
  [TYPE.NS, ONE_NAME],
  [3, ONE_NAME], // MD
  [4, ONE_NAME], // MF
  [TYPE.CNAME, ONE_NAME],
  [TYPE.SOA, { before: 0, names: 2, after: 20, compress: true }],
  [7, ONE_NAME], // MB
  [8, ONE_NAME], // MG
  [9, ONE_NAME], // MR
  [TYPE.PTR, ONE_NAME],
  [14, { before: 0, names: 2, after: 0, compress: true }], // MINFO
  [TYPE.MX, { before: 2, names: 1, after: 0, compress: true }],
  // Decompressed on the way in (RFC 3597 §4), never compressed on the way out.
  [17, { before: 0, names: 2, after: 0, compress: false }], // RP
  [18, { before: 2, names: 1, after: 0, compress: false }], // AFSDB
  [21, { before: 2, names: 1, after: 0, compress: false }], // RT
  [TYPE.SRV, { before: 6, names: 1, after: 0, compress: false }],
]);

export const RecordsError = {
  /** A record or name runs past the end, or an rdata does not have the length its type needs. */
  Malformed: -1,
  /** More than one OPT record. */
  BadOpt: -2,
} as const;

export interface RecordBlock {
  /** Uncompressed records, answer then authority then additional. */
  readonly bytes: Uint8Array;
  /** Records per section: answer, authority, additional (OPT excluded). */
  readonly counts: readonly [number, number, number];
  /** Offset in `bytes` of each record's TTL field. */
  readonly ttlOffsets: Uint32Array;
  /** Smallest TTL in the answer section; -1 when it is empty. */
  readonly minAnswerTtl: number;
  /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of the first SOA in the authority section; -1 when none. */
  readonly negativeTtl: number;
  /** The OPT record's extended rcode byte, 0 when there is none. */
  readonly extendedRcode: number;
}

/**
 * Where `readRecords` assembles a block before copying it out: reusable, owned by the caller
 * (the forwarder keeps one), so reading allocates only the block itself. A block larger than
 * the scratch (names decompress to more than the message held) is refused as malformed.
 */
export class RecordScratch {
  readonly bytes: Uint8Array;
  readonly ttlOffsets: Uint32Array;
  readonly reader = new NameReader();

  constructor(size = 256 * 1024) {
    this.bytes = new Uint8Array(size);
    // Every record takes at least 11 bytes in the block.
    this.ttlOffsets = new Uint32Array(Math.ceil(size / 11));
  }
}

/**
 * Reads the `counts` records that start at `pos` of the message in `msg[start, end)`. Returns
 * the block or a `RecordsError`. Allocates the block (a cold path: one per upstream answer).
 */
export function readRecords(msg: Uint8Array, start: number, end: number, pos: number, counts: readonly [number, number, number], scratch = new RecordScratch(16 * 1024)): RecordBlock | number {
  const out = scratch.bytes;
  const cap = out.length;
  const ttls = scratch.ttlOffsets;
  const reader = scratch.reader;
  let o = 0;
  let records = 0;
  const kept: [number, number, number] = [0, 0, 0];
  let minAnswerTtl = -1;
  let negativeTtl = -1;
  let extendedRcode = 0;
  let sawOpt = false;
  for (let section = 0; section < 3; section++) {
    for (let i = 0; i < counts[section]; i++) {
      if (reader.read(msg, start, end, pos, false) !== 0) return RecordsError.Malformed;
      pos = reader.end;
      if (pos + 10 > end) return RecordsError.Malformed;
      const type = u16(msg, pos);
      const ttl = u32(msg, pos + 4);
      const rdStart = pos + 10;
      const rdEnd = rdStart + u16(msg, pos + 8);
      if (rdEnd > end) return RecordsError.Malformed;
      pos = rdEnd;
      if (type === TYPE.OPT) {
        if (sawOpt || section !== Section.Additional) return RecordsError.BadOpt;
        sawOpt = true;
        extendedRcode = (ttl >>> 24) & 0xff;
        continue;
      }
      const layout = LAYOUTS.get(type);
      // The owner, type, class, TTL and rdlength, then rdata of at most rdlength bytes once
      // its names are decompressed... or of at most 255 per name more: check as we go.
      if (o + reader.length + 10 + (rdEnd - rdStart) > cap) return RecordsError.Malformed;
      out.set(reader.bytes.subarray(0, reader.length), o);
      o += reader.length;
      for (let k = 0; k < 8; k++) out[o + k] = msg[rdStart - 10 + k];
      ttls[records++] = o + 4;
      o += 8;
      const lengthAt = o;
      o += 2;
      if (layout === undefined) {
        out.set(msg.subarray(rdStart, rdEnd), o);
        o += rdEnd - rdStart;
      } else {
        let p = rdStart;
        if (p + layout.before > rdEnd) return RecordsError.Malformed;
        for (let k = 0; k < layout.before; k++) out[o++] = msg[p++];
        for (let n = 0; n < layout.names; n++) {
          // A name in rdata may point anywhere earlier in the message, but not past its rdata.
          if (reader.read(msg, start, rdEnd, p, false) !== 0) return RecordsError.Malformed;
          if (o + reader.length + layout.after > cap) return RecordsError.Malformed;
          out.set(reader.bytes.subarray(0, reader.length), o);
          o += reader.length;
          p = reader.end;
        }
        if (p + layout.after !== rdEnd) return RecordsError.Malformed;
        for (let k = 0; k < layout.after; k++) out[o++] = msg[p++];
      }
      const written = o - lengthAt - 2;
      out[lengthAt] = written >>> 8;
      out[lengthAt + 1] = written & 0xff;
      kept[section]++;
      if (section === Section.Answer) minAnswerTtl = minAnswerTtl < 0 ? ttl : Math.min(minAnswerTtl, ttl);
      if (section === Section.Authority && type === TYPE.SOA && negativeTtl < 0 && u16(msg, rdStart - 8) === CLASS.IN) {
        negativeTtl = Math.min(ttl, u32(msg, rdEnd - 4));
      }
    }
  }
  return { bytes: out.slice(0, o), counts: kept, ttlOffsets: ttls.slice(0, records), minAnswerTtl, negativeTtl, extendedRcode };
}

/**
 * Writes `block` into `w`, after the records already there, each TTL lowered by `age`
 * seconds (never below 0) and held to `cap`, the seconds the block has left in the cache:
 * no client may keep a record longer than the cache itself would (a capped TTL, the SOA of a
 * negative answer). Sections follow the block's counts; `w` must be in the answer section.
 * `sections` 1 writes the answer records alone.
 */
export function writeRecords(w: MessageWriter, block: RecordBlock, age: number, cap = 0xffffffff, sections = 3): void {
  const b = block.bytes;
  let pos = 0;
  let record = 0;
  for (let section = 0; section < sections; section++) {
    if (section > 0) w.startSection(section as Section);
    for (let i = 0; i < block.counts[section]; i++, record++) {
      const ownerLength = nameLength(b, pos);
      w.wireName(b, pos, ownerLength);
      pos += ownerLength;
      const type = u16(b, pos);
      const klass = u16(b, pos + 2);
      const ttl = u32(b, block.ttlOffsets[record]);
      const rdlength = u16(b, pos + 8);
      const rdStart = pos + 10;
      const rdEnd = rdStart + rdlength;
      const rd = w.beginRecord(type, klass, Math.min(ttl > age ? ttl - age : 0, cap));
      const layout = LAYOUTS.get(type);
      if (layout === undefined) {
        w.bytes(b, rdStart, rdEnd);
      } else {
        let p = rdStart;
        w.bytes(b, p, p + layout.before);
        p += layout.before;
        for (let n = 0; n < layout.names; n++) {
          const len = nameLength(b, p);
          w.wireName(b, p, len, layout.compress);
          p += len;
        }
        w.bytes(b, p, rdEnd);
      }
      w.endRecord(rd);
      pos = rdEnd;
    }
  }
}

function nameLength(wire: Uint8Array, pos: number): number {
  let p = pos;
  while (wire[p] !== 0) p += wire[p] + 1;
  return p + 1 - pos;
}

function u16(buf: Uint8Array, pos: number): number {
  return (buf[pos] << 8) | buf[pos + 1];
}

function u32(buf: Uint8Array, pos: number): number {
  return ((buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]) >>> 0;
}
