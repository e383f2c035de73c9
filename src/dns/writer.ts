/**
 * Writes a DNS message into a caller's buffer: header, question, records, with name
 * compression (RFC 1035 §4.1.4) and a hard limit.
 *
 * - Bounded: every write checks the limit first; once one does not fit, `overflow` is set and
 *   every later write is skipped, so a builder never checks after each record and the
 *   caller decides once (drop the additional section, or truncate with TC).
 * - Compression happens in place: a name is written whole, then its longest suffix already
 *   present in the message (compared case-insensitively, as names compare) is replaced by a
 *   pointer. Anchors are the label starts of every name written so far, the question
 *   included, so an answer's owner becomes the 2-byte pointer to the question and carries
 *   the client's letter case (the 0x20 echo) for free.
 * - `cut` rewinds to a section boundary. Pointers only ever point backwards, so the bytes
 *   kept never refer to the bytes dropped.
 * - A name that must stay whole yet end in the zone as the client spelled it (an SRV target,
 *   `textNameInQuestionCase`) copies that suffix from the question and is listed in `echoes`,
 *   so that the answer cache can patch those bytes too when it replays the answer.
 *
 * One writer serves every message (re-pointed by `begin`); it allocates nothing.
 */
import { ADVERTISED_UDP_SIZE, DNS_HEADER_LEN, FLAG, HDR, TYPE } from './constants.js';

export const Section = { Answer: 0, Authority: 1, Additional: 2 } as const;
export type Section = (typeof Section)[keyof typeof Section];

/** Names later in a big answer simply stay uncompressed once this many label starts are known. */
const MAX_ANCHORS = 512;
/** Compression pointers hold 14 bits of offset. */
const MAX_POINTER = 0x3fff;
/** An answer that copies the question's case into more names than this is not cached: its copies could not all be patched. */
const MAX_ECHOES = 256;

export class MessageWriter {
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the message in `buf`. */
  start = 0;
  /** Next byte to write. */
  pos = 0;
  /** One past the last byte that may be written. */
  limit = 0;
  overflow = false;
  section: Section = Section.Answer;
  readonly counts = new Uint16Array(3);
  /** Where the question ends: a truncated answer keeps exactly this much. */
  questionEnd = -1;
  /** Where the additional section began, when everything before it was written; -1 otherwise. */
  additionalStart = -1;
  /** Set by `fit` when it had to cut to the question and set TC. */
  truncated = false;
  private savedAnswers = 0;
  private savedAuthorities = 0;
  private edns = false;
  private ednsDo = false;
  private ednsRcode = 0;
  private readonly anchors = new Int32Array(MAX_ANCHORS);
  private anchorCount = 0;
  /**
   * Offsets (from the message's start) of the copies of the question's suffix
   * `[echoFrom, echoFrom + echoLength)` made by `textNameInQuestionCase`; `echoOverflow` when
   * more were wanted than fit, so the copies are incomplete and the answer must not be replayed.
   */
  readonly echoes = new Uint16Array(MAX_ECHOES);
  echoCount = 0;
  echoFrom = 0;
  echoLength = 0;
  echoOverflow = false;

  /** Points the writer at `buf[start, start + room)` for a new message. */
  begin(buf: Uint8Array, start: number, room: number): void {
    this.buf = buf;
    this.start = start;
    this.pos = start;
    this.limit = Math.min(buf.length, start + room);
    this.overflow = false;
    this.section = Section.Answer;
    this.counts[0] = this.counts[1] = this.counts[2] = 0;
    this.anchorCount = 0;
    this.questionEnd = -1;
    this.additionalStart = -1;
    this.truncated = false;
    this.edns = false;
    this.echoCount = 0;
    this.echoOverflow = false;
  }

  /** Records go into `section` from now on; sections are written in order. */
  startSection(section: Section): void {
    const entering = section === Section.Additional && this.section !== Section.Additional;
    this.section = section;
    if (entering && !this.overflow) {
      this.additionalStart = this.pos;
      this.savedAnswers = this.counts[Section.Answer];
      this.savedAuthorities = this.counts[Section.Authority];
    }
  }

  /**
   * Ends the message with its OPT record when the client sent one (the extended rcode's upper
   * bits go there) and fills in the counts. Returns the length, or -1 when it did not fit the
   * buffer (`fit` still makes a valid message of it).
   */
  complete(edns: boolean, dnssecOk: boolean, extendedRcode: number): number {
    this.edns = edns;
    this.ednsDo = dnssecOk;
    this.ednsRcode = extendedRcode;
    if (edns) this.opt(ADVERTISED_UDP_SIZE, extendedRcode, dnssecOk);
    return this.overflow ? -1 : this.finish();
  }

  /**
   * Makes the completed message fit `limit` bytes (the client's UDP size, or the buffer for
   * TCP): first by dropping the additional section, which RFC 2181 §9 allows without TC;
   * else by keeping only the question and setting TC, so that the client retries over TCP
   * (RFC 7766). The OPT record is kept either way. Returns the final length.
   */
  fit(limit: number): number {
    if (!this.overflow && this.pos - this.start <= limit) return this.finish();
    const opt = this.edns ? 11 : 0;
    if (this.additionalStart >= 0 && this.additionalStart - this.start + opt <= limit) {
      this.cut(this.additionalStart, this.savedAnswers, this.savedAuthorities, 0);
    } else {
      this.cut(this.questionEnd >= 0 ? this.questionEnd : this.start + DNS_HEADER_LEN, 0, 0, 0);
      this.setFlags(FLAG.TC);
      this.truncated = true;
    }
    if (this.edns) this.opt(ADVERTISED_UDP_SIZE, this.ednsRcode, this.ednsDo);
    return this.finish();
  }

  get length(): number {
    return this.pos - this.start;
  }

  /** Writes the 12-byte header; the section counts are filled in by `finish`. */
  header(id: number, flags: number, qdcount: number): void {
    if (!this.room(DNS_HEADER_LEN)) return;
    const b = this.buf;
    const p = this.pos;
    b[p] = id >>> 8;
    b[p + 1] = id & 0xff;
    b[p + 2] = flags >>> 8;
    b[p + 3] = flags & 0xff;
    b[p + 4] = qdcount >>> 8;
    b[p + 5] = qdcount & 0xff;
    for (let i = 6; i < DNS_HEADER_LEN; i++) b[p + i] = 0;
    this.pos = p + DNS_HEADER_LEN;
  }

  /**
   * Copies a question (an uncompressed name, as the first name of a message always is,
   * then type and class) from `src`, keeping the client's letter case.
   */
  question(src: Uint8Array, nameOffset: number, nameLength: number, qtype: number, qclass: number): void {
    if (!this.room(nameLength + 4)) return;
    const p = this.pos;
    this.buf.set(src.subarray(nameOffset, nameOffset + nameLength), p);
    this.addAnchors(p, p + nameLength - 1);
    this.pos = p + nameLength;
    this.u16(qtype);
    this.u16(qclass);
    if (!this.overflow) this.questionEnd = this.pos;
  }

  /** Owner name, type, class and TTL of a record; returns where its rdata starts (pass it to `endRecord`). */
  beginRecord(type: number, klass: number, ttl: number): number {
    if (!this.room(10)) return -1;
    this.u16(type);
    this.u16(klass);
    this.u32(ttl);
    this.u16(0); // rdlength, patched by endRecord
    return this.pos;
  }

  endRecord(rdataStart: number): void {
    if (this.overflow) return;
    const length = this.pos - rdataStart;
    this.buf[rdataStart - 2] = length >>> 8;
    this.buf[rdataStart - 1] = length & 0xff;
    this.counts[this.section]++;
  }

  /** A pointer to a name already in the message, at `offset` from the message's start. */
  pointer(offset: number): void {
    this.u16(0xc000 | offset);
  }

  /**
   * A name in presentation form without escapes or trailing dot (`web.default.svc.cluster.local`,
   * '' for the root): the zone's names, validated as DNS-1123 when the zone was built.
   */
  textName(text: string, compress = true): void {
    const s = this.pos;
    if (!this.room(text.length + 2)) return;
    const b = this.buf;
    let p = s;
    let labelStart = 0;
    for (let i = 0; i <= text.length; i++) {
      if (i === text.length || text.charCodeAt(i) === 0x2e) {
        const len = i - labelStart;
        if (len === 0) break; // the root ('' or a trailing dot)
        b[p] = len;
        for (let j = 0; j < len; j++) b[p + 1 + j] = text.charCodeAt(labelStart + j);
        p += len + 1;
        labelStart = i + 1;
      }
    }
    b[p] = 0;
    if (compress) this.compressInPlace(s, p);
    else this.keepWhole(s, p);
  }

  /**
   * `text[0, textEnd)` as labels, then the question's own bytes at `[questionAt, questionAt +
   * suffixLength)` from the message's start: a zone name whose apex keeps the letter case the
   * client asked with, as CoreDNS keeps it. Written whole (an SRV target, RFC 2782); later names
   * may point into it, and so carry the same case.
   */
  textNameInQuestionCase(text: string, textEnd: number, questionAt: number, suffixLength: number): void {
    const s = this.pos;
    if (!this.room(textEnd + 1 + suffixLength)) return;
    const b = this.buf;
    let p = s;
    let labelStart = 0;
    for (let i = 0; i <= textEnd; i++) {
      if (i === textEnd || text.charCodeAt(i) === 0x2e) {
        const len = i - labelStart;
        if (len > 0) {
          b[p] = len;
          for (let j = 0; j < len; j++) b[p + 1 + j] = text.charCodeAt(labelStart + j);
          p += len + 1;
        }
        labelStart = i + 1;
      }
    }
    const from = this.start + questionAt;
    for (let i = 0; i < suffixLength; i++) b[p + i] = b[from + i];
    if (this.echoCount === MAX_ECHOES || (this.echoCount > 0 && (this.echoFrom !== questionAt || this.echoLength !== suffixLength))) {
      this.echoOverflow = true;
    } else {
      this.echoFrom = questionAt;
      this.echoLength = suffixLength;
      this.echoes[this.echoCount++] = p - this.start;
    }
    this.keepWhole(s, p + suffixLength - 1);
  }

  /** An uncompressed wire name from `src` (a decompressed upstream name, say). */
  wireName(src: Uint8Array, at: number, length: number, compress = true): void {
    const s = this.pos;
    if (!this.room(length)) return;
    this.buf.set(src.subarray(at, at + length), s);
    if (compress) this.compressInPlace(s, s + length - 1);
    else this.keepWhole(s, s + length - 1);
  }

  /** A name that must stay whole (an SRV target, RFC 2782) may still be pointed at by later names. */
  private keepWhole(s: number, rootAt: number): void {
    this.addAnchors(s, rootAt);
    this.pos = rootAt + 1;
  }

  u8(value: number): void {
    if (!this.room(1)) return;
    this.buf[this.pos++] = value;
  }

  u16(value: number): void {
    if (!this.room(2)) return;
    const p = this.pos;
    this.buf[p] = (value >>> 8) & 0xff;
    this.buf[p + 1] = value & 0xff;
    this.pos = p + 2;
  }

  u32(value: number): void {
    if (!this.room(4)) return;
    const p = this.pos;
    this.buf[p] = value >>> 24;
    this.buf[p + 1] = (value >>> 16) & 0xff;
    this.buf[p + 2] = (value >>> 8) & 0xff;
    this.buf[p + 3] = value & 0xff;
    this.pos = p + 4;
  }

  bytes(src: Uint8Array, from: number, to: number): void {
    if (!this.room(to - from)) return;
    this.buf.set(src.subarray(from, to), this.pos);
    this.pos += to - from;
  }

  /** The OPT pseudo-record (RFC 6891 §6.1.2): our UDP size, the upper rcode bits, version 0, DO echoed. */
  opt(udpSize: number, extendedRcode: number, dnssecOk: boolean): void {
    if (!this.room(11)) return;
    this.u8(0);
    this.u16(TYPE.OPT);
    this.u16(udpSize);
    this.u8(extendedRcode);
    this.u8(0);
    this.u16(dnssecOk ? 0x8000 : 0);
    this.u16(0);
    this.counts[Section.Additional]++;
  }

  /** Rewinds to `pos` with the given counts: drops what was written after a section boundary. */
  cut(pos: number, answers: number, authorities: number, additionals: number): void {
    this.pos = pos;
    this.overflow = false;
    this.counts[0] = answers;
    this.counts[1] = authorities;
    this.counts[2] = additionals;
    let kept = 0;
    for (let i = 0; i < this.anchorCount; i++) if (this.anchors[i] < pos) this.anchors[kept++] = this.anchors[i];
    this.anchorCount = kept;
    kept = 0;
    for (let i = 0; i < this.echoCount; i++) if (this.start + this.echoes[i] < pos) this.echoes[kept++] = this.echoes[i];
    this.echoCount = kept;
  }

  /** Fills in the section counts and returns the message length (0 when not even the header fitted). */
  finish(): number {
    if (this.pos - this.start < DNS_HEADER_LEN) return 0;
    const b = this.buf;
    const h = this.start;
    b[h + HDR.ANCOUNT] = this.counts[0] >>> 8;
    b[h + HDR.ANCOUNT + 1] = this.counts[0] & 0xff;
    b[h + HDR.NSCOUNT] = this.counts[1] >>> 8;
    b[h + HDR.NSCOUNT + 1] = this.counts[1] & 0xff;
    b[h + HDR.ARCOUNT] = this.counts[2] >>> 8;
    b[h + HDR.ARCOUNT + 1] = this.counts[2] & 0xff;
    return this.pos - this.start;
  }

  /** Sets flag bits in the header already written. */
  setFlags(mask: number): void {
    this.buf[this.start + HDR.FLAGS] |= mask >>> 8;
    this.buf[this.start + HDR.FLAGS + 1] |= mask & 0xff;
  }

  private room(n: number): boolean {
    if (this.overflow) return false;
    if (this.pos + n > this.limit) {
      this.overflow = true;
      return false;
    }
    return true;
  }

  /**
   * The uncompressed name at [s, rootAt] (rootAt is its terminating zero) is shortened to its
   * longest suffix already in the message plus a pointer; its remaining label starts become
   * anchors for later names.
   */
  private compressInPlace(s: number, rootAt: number): void {
    const b = this.buf;
    for (let p = s; p < rootAt; p += b[p] + 1) {
      for (let i = 0; i < this.anchorCount; i++) {
        const a = this.anchors[i];
        if (b[a] !== b[p] || !this.sameName(p, a)) continue;
        const rel = a - this.start;
        b[p] = 0xc0 | (rel >>> 8);
        b[p + 1] = rel & 0xff;
        this.addAnchors(s, p);
        this.pos = p + 2;
        return;
      }
    }
    this.addAnchors(s, rootAt);
    this.pos = rootAt + 1;
  }

  /** Whether the uncompressed name at `p` equals the (possibly compressed) name at `a`, ignoring ASCII case. */
  private sameName(p: number, a: number): boolean {
    const b = this.buf;
    for (;;) {
      while ((b[a] & 0xc0) === 0xc0) a = this.start + (((b[a] & 0x3f) << 8) | b[a + 1]);
      const len = b[p];
      if (len !== b[a]) return false;
      if (len === 0) return true;
      for (let i = 1; i <= len; i++) {
        let x = b[p + i];
        let y = b[a + i];
        if (x >= 0x41 && x <= 0x5a) x |= 0x20;
        if (y >= 0x41 && y <= 0x5a) y |= 0x20;
        if (x !== y) return false;
      }
      p += len + 1;
      a += len + 1;
    }
  }

  /** Label starts in [from, to) as anchors (those a 14-bit pointer can reach). */
  private addAnchors(from: number, to: number): void {
    const b = this.buf;
    for (let p = from; p < to; p += b[p] + 1) {
      if (this.anchorCount === MAX_ANCHORS || p - this.start > MAX_POINTER) return;
      this.anchors[this.anchorCount++] = p;
    }
  }
}
