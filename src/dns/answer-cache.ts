/**
 * Precompiled answers: the hot path for repeat questions about the zone (a pod asking for
 * its service every few seconds, and the ndots:5 search-path misses that come with it).
 *
 * The key is the question as parseQuery leaves it: the lower-cased wire name, type, class,
 * plus the EDNS shape (none, EDNS, EDNS with DO), since the OPT record is part of the bytes.
 * The value is the complete response as the plain path built it. A hit copies it and patches
 * the three things that differ between clients asking the same question:
 *
 * - the ID;
 * - the RD and CD bits, echoed from the query;
 * - the question name's letter case (the 0x20 echo). The question has the same length whatever
 *   its case, and every answer owner and every name compressed against it is a pointer into
 *   it, so the patched bytes carry the new case everywhere the plain path would have put it;
 * - the names that copied the zone's case from the question instead of pointing at it (SRV
 *   targets, which stay whole): the writer listed where (`MessageWriter.echoes`), and those
 *   bytes are copied again from the patched question.
 *
 * Bounded: a fixed number of slots, direct-mapped by the question hash, a newcomer replaces
 * whatever held its slot; answers above `maxAnswer` bytes are not kept. The owner clears it
 * whenever the zone changes. A lookup allocates nothing.
 */
import { DNS_HEADER_LEN, FLAG, HDR } from './constants.js';
import type { Query } from './query.js';
import type { MessageWriter } from './writer.js';

export const EdnsShape = { None: 0, Edns: 1, EdnsDo: 2 } as const;
export type EdnsShape = (typeof EdnsShape)[keyof typeof EdnsShape];

export function ednsShape(q: Query): EdnsShape {
  return !q.edns ? EdnsShape.None : q.dnssecOk ? EdnsShape.EdnsDo : EdnsShape.Edns;
}

export interface AnswerCacheOptions {
  /** Rounded up to a power of two; 4096 by default. */
  readonly slots?: number;
  /** Largest answer kept, in bytes; 4096 by default. */
  readonly maxAnswer?: number;
}

/** Key bytes after the name: type (2), class (2), EDNS shape (1). */
const KEY_TAIL = 5;

export class AnswerCache {
  private readonly mask: number;
  private readonly maxAnswer: number;
  private readonly hashes: Uint32Array;
  private readonly keys: (Uint8Array | undefined)[];
  private readonly answers: (Uint8Array | undefined)[];
  private readonly rcodes: Uint8Array;
  /** Per slot: where the answer copies the question's suffix (see the module comment), and which suffix. */
  private readonly echoes: (Uint16Array | undefined)[];
  private readonly echoFrom: Uint16Array;
  private readonly echoLength: Uint16Array;
  private count = 0;

  constructor(options: AnswerCacheOptions = {}) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(1, options.slots ?? 4096)));
    this.mask = slots - 1;
    this.maxAnswer = options.maxAnswer ?? 4096;
    this.hashes = new Uint32Array(slots);
    this.keys = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.answers = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.rcodes = new Uint8Array(slots);
    this.echoes = new Array<Uint16Array | undefined>(slots).fill(undefined);
    this.echoFrom = new Uint16Array(slots);
    this.echoLength = new Uint16Array(slots);
  }

  get size(): number {
    return this.count;
  }

  /** The slot holding the answer to `q` with this EDNS shape, or -1. */
  find(q: Query, shape: EdnsShape): number {
    const h = slotHash(q.hash, shape);
    const slot = h & this.mask;
    const key = this.keys[slot];
    if (key === undefined || this.hashes[slot] !== h || !keyMatches(key, q, shape)) return -1;
    return slot;
  }

  /** Length of the answer in `slot`. */
  answerLength(slot: number): number {
    return (this.answers[slot] as Uint8Array).length;
  }

  rcode(slot: number): number {
    return this.rcodes[slot];
  }

  /**
   * Writes the answer in `slot` for query `q` (read from `msg`) into `out` at `offset`, which
   * must hold `answerLength(slot)` bytes. Returns the length.
   */
  write(slot: number, msg: Uint8Array, q: Query, out: Uint8Array, offset: number): number {
    const answer = this.answers[slot] as Uint8Array;
    out.set(answer, offset);
    out[offset + HDR.ID] = q.id >>> 8;
    out[offset + HDR.ID + 1] = q.id & 0xff;
    const echoed = q.flags & (FLAG.RD | FLAG.CD);
    out[offset + HDR.FLAGS] = (out[offset + HDR.FLAGS] & ~(FLAG.RD >>> 8)) | (echoed >>> 8);
    out[offset + HDR.FLAGS + 1] = (out[offset + HDR.FLAGS + 1] & ~FLAG.CD) | (echoed & 0xff);
    // The client's letter case, byte by byte: a subarray would allocate on every hit.
    const from = q.nameOffset;
    const to = offset + DNS_HEADER_LEN;
    for (let i = 0, n = q.name.length; i < n; i++) out[to + i] = msg[from + i];
    const echoes = this.echoes[slot];
    if (echoes !== undefined) {
      const source = offset + this.echoFrom[slot];
      const n = this.echoLength[slot];
      for (let e = 0; e < echoes.length; e++) {
        const at = offset + echoes[e];
        for (let i = 0; i < n; i++) out[at + i] = out[source + i];
      }
    }
    return answer.length;
  }

  /**
   * Keeps `response[start, start + length)` as the answer to `q`, with the echoes `w` wrote
   * into it (allocates: a miss is the cold path).
   */
  store(q: Query, shape: EdnsShape, response: Uint8Array, start: number, length: number, rcode: number, w?: Pick<MessageWriter, 'echoes' | 'echoCount' | 'echoFrom' | 'echoLength' | 'echoOverflow'>): void {
    if (length > this.maxAnswer || w?.echoOverflow === true) return;
    const h = slotHash(q.hash, shape);
    const slot = h & this.mask;
    if (this.keys[slot] === undefined) this.count++;
    const key = new Uint8Array(q.name.length + KEY_TAIL);
    key.set(q.name.bytes.subarray(0, q.name.length));
    const t = q.name.length;
    key[t] = q.qtype >>> 8;
    key[t + 1] = q.qtype & 0xff;
    key[t + 2] = q.qclass >>> 8;
    key[t + 3] = q.qclass & 0xff;
    key[t + 4] = shape;
    this.keys[slot] = key;
    this.hashes[slot] = h;
    // A copy: `Buffer#slice` would be a view of the caller's buffer.
    this.answers[slot] = new Uint8Array(response.subarray(start, start + length));
    this.rcodes[slot] = rcode;
    const echoes = w === undefined || w.echoCount === 0 ? undefined : w.echoes.slice(0, w.echoCount);
    this.echoes[slot] = echoes;
    if (echoes !== undefined) {
      this.echoFrom[slot] = w!.echoFrom;
      this.echoLength[slot] = w!.echoLength;
    }
  }

  clear(): void {
    this.keys.fill(undefined);
    this.answers.fill(undefined);
    this.echoes.fill(undefined);
    this.count = 0;
  }
}

function slotHash(questionHash: number, shape: EdnsShape): number {
  return Math.imul(questionHash ^ shape, 0x01000193) >>> 0;
}

function keyMatches(key: Uint8Array, q: Query, shape: EdnsShape): boolean {
  const n = q.name.length;
  if (key.length !== n + KEY_TAIL) return false;
  const name = q.name.bytes;
  for (let i = 0; i < n; i++) if (key[i] !== name[i]) return false;
  return key[n] === q.qtype >>> 8 && key[n + 1] === (q.qtype & 0xff) && key[n + 2] === q.qclass >>> 8 && key[n + 3] === (q.qclass & 0xff) && key[n + 4] === shape;
}
