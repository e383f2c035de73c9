/**
 * Frames for fuzzing the packet views: random ones, and mutations of the real captures in
 * test/fixtures, each walked through every parser by `Dissector` (./dissect.ts).
 *
 * Every case is a pure function of (seed, case number): its generator is seeded from both,
 * so any one case can be regenerated alone (`generateFrame`) and a failure reported as a
 * seed and a case number replays without running the cases before it. Nothing here reads
 * Math.random or the clock.
 *
 * Shared by test/fuzz/packets.test.ts (100k cases) and scripts/fuzz-packets.ts (1M+).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCapture } from '../../src/pcap/reader.js';
import { dissect, Dissector, LAYERS, Reach, type Layer } from './dissect.js';

export { dissect, Dissector, LAYERS, Reach, type Layer };

// ---- a seeded generator ----

/** Murmur3's 32-bit finaliser: spreads a seed's bits over the whole word. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** sfc32 (Chris Doty-Humphrey's Small Fast Counting generator), seeded from (seed, stream). */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number, stream = 0) {
    this.a = mix32(seed ^ 0x9e3779b9);
    this.b = mix32(stream ^ this.a);
    this.c = mix32(this.a + this.b + 0x6a09e667);
    // The first outputs still show the seed's structure; sfc32's authors discard a few.
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A uint32. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.next() / 0x100000000) * n);
  }

  chance(p: number): boolean {
    return this.next() < p * 0x100000000;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

// ---- the seed corpus ----

/** A length or type field of a seed frame, found by dissecting it, for the smashing mutator. */
export interface FieldSite {
  field: 'ethertype' | 'ipv4Ihl' | 'ipv4TotalLength' | 'ipv4Protocol' | 'udpLength' | 'udpDstPort' | 'tcpDataOffset' | 'ipv6PayloadLength';
  /** Offset of the field in the frame. */
  at: number;
  /** Offset of the header it belongs to: where "the rest of the packet" is counted from. */
  header: number;
}

export interface Seed {
  frame: Uint8Array;
  sites: FieldSite[];
  /** Where it came from, for reports: `http.pcap#3`. */
  name: string;
}

/** test/fixtures, from dist/test/fuzz when compiled, or from test/fuzz when run from source. */
function fixturesDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '../../../test/fixtures'), resolve(here, '../fixtures')];
  const found = candidates.find((dir) => existsSync(dir));
  if (found === undefined) throw new Error(`no test/fixtures beside ${here}`);
  return found;
}

const LINKTYPE_ETHERNET = 1;

/** Every Ethernet frame of every capture in test/fixtures, with its fields located. */
export function loadCorpus(dir = fixturesDir()): Seed[] {
  const seeds: Seed[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.pcap')).sort()) {
    const capture = readCapture(readFileSync(join(dir, file)));
    capture.records.forEach((record, i) => {
      if (capture.interfaces[record.interfaceId]?.linkType !== LINKTYPE_ETHERNET) return;
      const frame = new Uint8Array(record.data);
      seeds.push({ frame, sites: locateFields(frame), name: `${file}#${i + 1}` });
    });
  }
  if (seeds.length === 0) throw new Error(`no Ethernet frames in ${dir}`);
  return seeds;
}

/** Dissects a copy of `frame` (the exercisers rewrite header fields) and notes where its fields are. */
function locateFields(frame: Uint8Array): FieldSite[] {
  const sites: FieldSite[] = [];
  const site = (field: FieldSite['field'], header: number, at: number): void => {
    sites.push({ field, at: header + at, header });
  };
  const locator = new Dissector((layer, offset) => {
    if (layer === 'ethernet' || layer === 'inner') site('ethertype', offset, 12);
    if (layer === 'ipv4' || layer === 'icmpQuote') {
      site('ipv4Ihl', offset, 0);
      site('ipv4TotalLength', offset, 2);
      site('ipv4Protocol', offset, 9);
    }
    if (layer === 'udp') {
      site('udpLength', offset, 4);
      site('udpDstPort', offset, 2);
    }
    if (layer === 'tcp') site('tcpDataOffset', offset, 12);
    if (layer === 'ipv6') site('ipv6PayloadLength', offset, 4);
  });
  try {
    locator.dissect(frame.slice(), false);
  } catch {
    // A view that breaks on a captured frame is for the test to report, with the frame's
    // name, not for the corpus loader to crash on: keep the sites found before it.
  }
  return sites;
}

// ---- mutators ----

interface Mutant {
  frame: Uint8Array;
  /** The seed's field sites, moved with any bytes inserted before them. */
  sites: FieldSite[];
}

type Mutator = (m: Mutant, rng: Prng, corpus: readonly Seed[]) => Mutant;

const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80] as const;

function flipBits(m: Mutant, rng: Prng): Mutant {
  if (m.frame.length === 0) return m;
  for (let n = 1 + rng.below(4); n > 0; n--) m.frame[rng.below(m.frame.length)] ^= 1 << rng.below(8);
  return m;
}

function setInterestingBytes(m: Mutant, rng: Prng): Mutant {
  if (m.frame.length === 0) return m;
  for (let n = 1 + rng.below(2); n > 0; n--) m.frame[rng.below(m.frame.length)] = rng.pick(INTERESTING_BYTES);
  return m;
}

/** Cuts the frame anywhere, from nothing to all of it. A copy: the buffer must end where the frame does. */
function truncate(m: Mutant, rng: Prng): Mutant {
  return { ...m, frame: m.frame.slice(0, rng.below(m.frame.length + 1)) };
}

/** Appends random bytes: Ethernet padding, or a packet longer than its length fields say. */
function extend(m: Mutant, rng: Prng): Mutant {
  const longer = new Uint8Array(m.frame.length + 1 + rng.below(64));
  longer.set(m.frame);
  longer.set(rng.bytes(longer.length - m.frame.length), m.frame.length);
  return { ...m, frame: longer };
}

/**
 * The head of this frame and the tail of another. Half the time both are cut at the same
 * offset, which swaps payloads under a header; otherwise anywhere.
 */
function splice(m: Mutant, rng: Prng, corpus: readonly Seed[]): Mutant {
  const other = rng.pick(corpus).frame;
  const head = rng.below(m.frame.length + 1);
  const tail = rng.chance(0.5) ? Math.min(head, other.length) : rng.below(other.length + 1);
  const spliced = new Uint8Array(head + other.length - tail);
  spliced.set(m.frame.subarray(0, head));
  spliced.set(other.subarray(tail), head);
  // Sites in the head still name their fields; those in the tail belonged to the other frame.
  return { frame: spliced, sites: m.sites.filter((s) => s.at + 2 <= head) };
}

/** Sets a located length or type field to a value at or just past an edge its check must catch. */
function smashField(m: Mutant, rng: Prng): Mutant {
  const sites = m.sites.filter((s) => s.at + 2 <= m.frame.length);
  if (sites.length === 0) return flipBits(m, rng);
  const site = rng.pick(sites);
  const f = m.frame;
  const rest = f.length - site.header;
  const u16 = (f[site.at] << 8) | f[site.at + 1];
  const nibble = (): number => rng.below(16);
  const set16 = (value: number): void => {
    f[site.at] = (value >>> 8) & 0xff;
    f[site.at + 1] = value & 0xff;
  };
  switch (site.field) {
    case 'ipv4Ihl':
      f[site.at] = (f[site.at] & 0xf0) | nibble();
      break;
    case 'tcpDataOffset':
      f[site.at] = (nibble() << 4) | (f[site.at] & 0x0f);
      break;
    case 'ipv4TotalLength': {
      const header = (f[site.header] & 0x0f) * 4;
      const edges = [0, 1, header - 1, header, header + 1, rest - 1, rest, rest + 1, u16 - 1, u16 + 1];
      set16(rng.pick([...edges, 0x7fff, 0x8000, 0xffff, rng.next()]));
      break;
    }
    case 'udpLength':
      set16(rng.pick([0, 7, 8, 9, rest - 1, rest, rest + 1, u16 - 1, u16 + 1, 0xffff, rng.next()]));
      break;
    case 'ipv6PayloadLength':
      set16(rng.pick([0, rest - 41, rest - 40, rest - 39, u16 - 1, u16 + 1, 0xffff, rng.next()]));
      break;
    case 'ethertype':
      // Feeds one protocol's bytes to another's parser, and makes tagged frames.
      set16(rng.pick([0x0800, 0x0806, 0x86dd, 0x8100, 0x88a8, rng.next()]));
      break;
    case 'ipv4Protocol':
      f[site.at] = rng.pick([1, 6, 17, rng.next() & 0xff]);
      break;
    case 'udpDstPort':
      // Makes any datagram VXLAN, so the inner-frame path sees more than the VXLAN seeds.
      set16(rng.pick([4789, 4789, 53, rng.next()]));
      break;
  }
  return m;
}

/**
 * Inserts an 802.1Q tag, or an 802.1ad S-tag and a C-tag (QinQ), after the MACs. The
 * captures have none: pods send untagged frames.
 */
function addTags(m: Mutant, rng: Prng): Mutant {
  if (m.frame.length < 12) return m;
  const tpids = rng.chance(0.3) ? [0x88a8, 0x8100] : [0x8100];
  const tags = new Uint8Array(4 * tpids.length);
  tpids.forEach((tpid, i) => {
    const tci = rng.next() & 0xffff;
    tags.set([tpid >>> 8, tpid & 0xff, tci >>> 8, tci & 0xff], 4 * i);
  });
  const frame = new Uint8Array(m.frame.length + tags.length);
  frame.set(m.frame.subarray(0, 12));
  frame.set(tags, 12);
  frame.set(m.frame.subarray(12), 12 + tags.length);
  const moved = (at: number): number => (at >= 12 ? at + tags.length : at);
  return { frame, sites: m.sites.map((s) => ({ ...s, at: moved(s.at), header: moved(s.header) })) };
}

/** Weighted: field smashing and bit flips find the length bugs; the rest change the shape. */
const MUTATORS: ReadonlyArray<readonly [number, Mutator]> = [
  [30, smashField],
  [22, flipBits],
  [14, setInterestingBytes],
  [10, truncate],
  [10, extend],
  [8, splice],
  [6, addTags],
];
const TOTAL_WEIGHT = MUTATORS.reduce((sum, [weight]) => sum + weight, 0);

function pickMutator(rng: Prng): Mutator {
  let roll = rng.below(TOTAL_WEIGHT);
  for (const [weight, mutator] of MUTATORS) {
    if (roll < weight) return mutator;
    roll -= weight;
  }
  return MUTATORS[0][1];
}

// ---- cases ----

/** Random bytes, half the time under a known EtherType so that they reach a parser. */
function randomFrame(rng: Prng): Uint8Array {
  const frame = rng.bytes(rng.below(129));
  if (frame.length >= 14 && rng.chance(0.5)) {
    const type = rng.pick([0x0800, 0x0806, 0x86dd, 0x8100]);
    frame[12] = type >>> 8;
    frame[13] = type & 0xff;
  }
  return frame;
}

/**
 * Case `caseNumber` under `seed`: 4% random frames, 4% unmodified seeds (so that the
 * deepest layers are reached on every seed), the rest a seed with one to four mutations.
 */
export function generateFrame(corpus: readonly Seed[], seed: number, caseNumber: number): Uint8Array {
  const rng = new Prng(seed, caseNumber);
  const roll = rng.below(100);
  if (roll < 4) return randomFrame(rng);
  const origin = rng.pick(corpus);
  let mutant: Mutant = { frame: origin.frame.slice(), sites: origin.sites };
  if (roll < 8) return mutant.frame;
  for (let n = rng.chance(0.6) ? 1 : 2 + rng.below(3); n > 0; n--) mutant = pickMutator(rng)(mutant, rng, corpus);
  return mutant.frame;
}

// ---- running ----

export interface FuzzFailure {
  seed: number;
  caseNumber: number;
  /** Whether the failing run was the fenced one. */
  fenced: boolean;
  /** The frame as generated, before the walk rewrote any of it. */
  hex: string;
  error: unknown;
}

export interface FuzzOptions {
  seed: number;
  /** The first case number (default 0). */
  from?: number;
  cases: number;
  /** Fence one case in this many (1: every case). The Proxy costs a trap per byte. */
  fenceEvery: number;
  /** Called every `progressEvery` cases with how many are done. */
  progress?: (done: number, reach: Reach) => void;
  progressEvery?: number;
}

export interface FuzzResult {
  reach: Reach;
  /** Cases run, the failing one included. */
  cases: number;
  fencedCases: number;
  failure?: FuzzFailure;
}

export function toHex(frame: Uint8Array): string {
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('hex');
}

/** Runs the cases in order and stops at the first that throws. */
export function runCases(corpus: readonly Seed[], options: FuzzOptions): FuzzResult {
  const { seed, cases, fenceEvery, progress, progressEvery = 100_000 } = options;
  const from = options.from ?? 0;
  const dissector = new Dissector();
  let fencedCases = 0;
  for (let i = from; i < from + cases; i++) {
    const fence = i % fenceEvery === 0;
    if (fence) fencedCases++;
    try {
      dissector.dissect(generateFrame(corpus, seed, i), fence);
    } catch (error) {
      // The walk rewrote header fields: regenerate the frame as it was generated.
      const hex = toHex(generateFrame(corpus, seed, i));
      return { reach: dissector.reach, cases: i - from + 1, fencedCases, failure: { seed, caseNumber: i, fenced: fence, hex, error } };
    }
    if (progress !== undefined && (i - from + 1) % progressEvery === 0) progress(i - from + 1, dissector.reach);
  }
  return { reach: dissector.reach, cases, fencedCases };
}

/** Walks one frame fenced and then plain (throwing on the first failure); returns what it reached. */
export function replayFrame(hex: string): Reach {
  const frame = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
  // Each walk gets its own copy: the exercisers rewrite header fields as they go.
  const reach = dissect(new Uint8Array(frame), true);
  dissect(new Uint8Array(frame), false);
  return reach;
}

/** A table of per-layer reach, for logs: layer, checked, parsed, and checked as a share of `cases`. */
export function formatReach(reach: Reach, cases: number): string {
  const rows = LAYERS.map((layer) => {
    const checked = reach.checked[layer];
    const share = ((100 * checked) / cases).toFixed(1).padStart(5);
    return `  ${layer.padEnd(11)} ${String(checked).padStart(9)} checked (${share}%) ${String(reach.parsed[layer]).padStart(9)} parsed`;
  });
  return rows.join('\n');
}

export function describeFailure(f: FuzzFailure): string {
  const error = f.error instanceof Error ? (f.error.stack ?? f.error.message) : String(f.error);
  return [
    `case ${f.caseNumber} of seed ${f.seed} failed (${f.fenced ? 'fenced' : 'plain'} buffer):`,
    error,
    `frame (${f.hex.length / 2} bytes): ${f.hex}`,
    `replay: npm run fuzz -- --replay ${f.hex}`,
    `    or: npm run fuzz -- --seed ${f.seed} --case ${f.caseNumber}`,
  ].join('\n');
}
