/**
 * The checked parse of an incoming query: header, the one question, and the OPT record of
 * the additional section (RFC 6891), into a reusable `Query` record.
 *
 * `parseQuery` is the DNS counterpart of a packet view's `check`: it never throws, never
 * reads outside `msg[start, start + length)`, allocates nothing, and says why a message is
 * refused with a `QueryProblem` number that the responder maps to an action (drop,
 * FORMERR, NOTIMP, BADVERS) and a counter. What the question *means* (zone, record
 * request) is judged later, by request.ts and lookup.ts.
 */
import { CLASSIC_UDP_SIZE, DNS_HEADER_LEN, FLAG, HDR, MAX_LABEL_LEN, MAX_NAME_LEN, OPCODE, OPCODE_MASK, OPCODE_SHIFT, TYPE } from './constants.js';
import { NameReader, skipName } from './name.js';

export const QueryProblem = {
  Ok: 0,
  /** Shorter than a header: nothing to answer to. Dropped. */
  Short: 1,
  /** QR set: a response sent to a server. Dropped, as BIND, Unbound and CoreDNS do, so two servers cannot ping-pong. */
  Response: 2,
  /** An opcode other than QUERY. NOTIMP. */
  Opcode: 3,
  /** QDCOUNT other than 1 (RFC 9619). FORMERR. */
  QuestionCount: 4,
  /** The question name or fields run past the end. FORMERR. */
  Truncated: 5,
  /** A label of a reserved kind. FORMERR. */
  BadLabel: 6,
  /** A name over 255 bytes. FORMERR. */
  NameTooLong: 7,
  /** A compression pointer that is forward, self-pointing or into the header. FORMERR. */
  BadPointer: 8,
  /** A record after the question runs past the end. FORMERR. */
  BadRecord: 9,
  /** Two OPT records, an OPT not owned by the root, or malformed EDNS options. FORMERR. */
  BadOpt: 10,
  /** An EDNS version other than 0. BADVERS, with an OPT. */
  EdnsVersion: 11,
} as const;
export type QueryProblem = (typeof QueryProblem)[keyof typeof QueryProblem];

export const QUERY_PROBLEM_NAMES: readonly string[] = [
  'ok',
  'short',
  'response',
  'opcode',
  'question-count',
  'truncated',
  'bad-label',
  'name-too-long',
  'bad-pointer',
  'bad-record',
  'bad-opt',
  'edns-version',
];

/** An OPT record's fixed part after its root owner: type, class (size), TTL (rcode, version, flags), rdlength. */
const OPT_FIXED = 10;
const DO_BIT = 0x8000;

export class Query {
  /** Where the message starts in the buffer it was parsed from. */
  start = 0;
  id = 0;
  /** The flags word as received. */
  flags = 0;
  opcode = 0;
  /** The question name, lower-cased and uncompressed. */
  readonly name = new NameReader();
  /** Offset of the question name in the buffer (always start + 12 for a well-formed query). */
  nameOffset = 0;
  /** Offset just past the question (name, type, class). */
  questionEnd = 0;
  qtype = 0;
  qclass = 0;
  /** FNV-1a of the lower-cased name, type and class: the answer cache's hash. */
  hash = 0;
  edns = false;
  ednsVersion = 0;
  /** The client's UDP payload size as sent; see `udpLimit` for what is honoured. */
  udpSize = 0;
  dnssecOk = false;

  get rd(): boolean {
    return (this.flags & FLAG.RD) !== 0;
  }

  /** The largest UDP answer this client takes: 512 without EDNS0, else its size, never below 512 (RFC 6891 §6.2.5). */
  get udpLimit(): number {
    return this.edns && this.udpSize > CLASSIC_UDP_SIZE ? this.udpSize : CLASSIC_UDP_SIZE;
  }
}

/** Reads the query at `msg[start, start + length)` into `q`. Allocates nothing; never throws. */
export function parseQuery(msg: Uint8Array, start: number, length: number, q: Query): QueryProblem {
  const end = start + length;
  if (length < DNS_HEADER_LEN || end > msg.length || start < 0) return QueryProblem.Short;
  q.start = start;
  q.id = (msg[start + HDR.ID] << 8) | msg[start + HDR.ID + 1];
  q.flags = (msg[start + HDR.FLAGS] << 8) | msg[start + HDR.FLAGS + 1];
  q.opcode = (q.flags >>> OPCODE_SHIFT) & OPCODE_MASK;
  q.edns = false;
  q.ednsVersion = 0;
  q.udpSize = 0;
  q.dnssecOk = false;
  q.qtype = 0;
  q.qclass = 0;
  q.name.length = 0;
  if ((q.flags & FLAG.QR) !== 0) return QueryProblem.Response;
  if (q.opcode !== OPCODE.QUERY) return QueryProblem.Opcode;
  if (u16(msg, start + HDR.QDCOUNT) !== 1) return QueryProblem.QuestionCount;

  q.nameOffset = start + DNS_HEADER_LEN;
  const problem = readQuestionName(msg, end, q);
  if (problem !== QueryProblem.Ok) return problem;
  let pos = q.name.end;
  if (pos + 4 > end) return QueryProblem.Truncated;
  q.qtype = u16(msg, pos);
  q.qclass = u16(msg, pos + 2);
  pos += 4;
  q.questionEnd = pos;
  q.hash = finishHash(q.hash, q.qtype, q.qclass);

  // Answer and authority records have no business in a query, but are legal: skip them.
  const skipped = u16(msg, start + HDR.ANCOUNT) + u16(msg, start + HDR.NSCOUNT);
  for (let i = 0; i < skipped; i++) {
    pos = skipRecord(msg, start, end, pos);
    if (pos < 0) return QueryProblem.BadRecord;
  }
  const additional = u16(msg, start + HDR.ARCOUNT);
  let ednsVersion = 0;
  for (let i = 0; i < additional; i++) {
    const owner = pos;
    const fixed = skipName(msg, start, end, pos);
    if (fixed < 0 || fixed + OPT_FIXED > end) return QueryProblem.BadRecord;
    const rdlength = u16(msg, fixed + 8);
    const next = fixed + OPT_FIXED + rdlength;
    if (next > end) return QueryProblem.BadRecord;
    if (u16(msg, fixed) === TYPE.OPT) {
      // One OPT, owned by the root, with well-formed options (RFC 6891 §6.1.1).
      if (q.edns || msg[owner] !== 0 || !optionsWellFormed(msg, fixed + OPT_FIXED, next)) return QueryProblem.BadOpt;
      q.edns = true;
      q.udpSize = u16(msg, fixed + 2);
      ednsVersion = msg[fixed + 5];
      q.dnssecOk = (u16(msg, fixed + 6) & DO_BIT) !== 0;
    }
    pos = next;
  }
  // Trailing bytes after the last record are ignored, as most servers do.
  q.ednsVersion = ednsVersion;
  return ednsVersion !== 0 ? QueryProblem.EdnsVersion : QueryProblem.Ok;
}

/** ASCII lower case of every byte value: one load instead of two compares per byte. */
const LOWER = Uint8Array.from({ length: 256 }, (_, c) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c));

/**
 * The question name, the hot path's one walk over it: validated, copied lower-cased into
 * `q.name`, and hashed, in a single pass. A compression pointer is never valid here: it would
 * have to point before the question, into the header (NameReader refuses the same).
 */
function readQuestionName(msg: Uint8Array, end: number, q: Query): QueryProblem {
  const name = q.name;
  const out = name.bytes;
  let pos = q.nameOffset;
  let n = 0;
  let labels = 0;
  let h = FNV_OFFSET;
  for (;;) {
    if (pos >= end) return QueryProblem.Truncated;
    const len = msg[pos];
    if (len === 0) break;
    if (len > MAX_LABEL_LEN) return (len & 0xc0) === 0xc0 ? QueryProblem.BadPointer : QueryProblem.BadLabel;
    if (n + len + 2 > MAX_NAME_LEN) return QueryProblem.NameTooLong;
    if (pos + 1 + len > end) return QueryProblem.Truncated;
    out[n++] = len;
    h = Math.imul(h ^ len, FNV_PRIME);
    for (let i = pos + 1, last = pos + len; i <= last; i++) {
      const c = LOWER[msg[i]];
      out[n++] = c;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    labels++;
    pos += 1 + len;
  }
  out[n++] = 0;
  name.length = n;
  name.labels = labels;
  name.end = pos + 1;
  name.compressed = false;
  q.hash = Math.imul(h, FNV_PRIME); // the root byte, 0
  return QueryProblem.Ok;
}

/** Offset past the resource record at `pos`, or -1. */
export function skipRecord(msg: Uint8Array, start: number, end: number, pos: number): number {
  const fixed = skipName(msg, start, end, pos);
  if (fixed < 0 || fixed + 10 > end) return -1;
  const next = fixed + 10 + u16(msg, fixed + 8);
  return next > end ? -1 : next;
}

/** EDNS options are code, length, data; they must exactly fill the rdata. */
function optionsWellFormed(msg: Uint8Array, pos: number, end: number): boolean {
  while (pos < end) {
    if (pos + 4 > end) return false;
    pos += 4 + u16(msg, pos + 2);
  }
  return pos === end;
}

function u16(buf: Uint8Array, pos: number): number {
  return (buf[pos] << 8) | buf[pos + 1];
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over a wire name and the type and class: cheap, and good enough to spread cache slots. */
export function questionHash(name: Uint8Array, length: number, qtype: number, qclass: number): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < length; i++) h = Math.imul(h ^ name[i], FNV_PRIME);
  return finishHash(h, qtype, qclass);
}

function finishHash(h: number, qtype: number, qclass: number): number {
  h = Math.imul(h ^ (qtype >>> 8), FNV_PRIME);
  h = Math.imul(h ^ (qtype & 0xff), FNV_PRIME);
  h = Math.imul(h ^ (qclass >>> 8), FNV_PRIME);
  h = Math.imul(h ^ (qclass & 0xff), FNV_PRIME);
  return h >>> 0;
}
