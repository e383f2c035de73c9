/**
 * Benchmark keys: pod-to-service 5-tuples in columns (as a packet path reads them from
 * headers), generated before timing from a seeded generator, so every run times the
 * same keys and runs compare.
 */
import { FlowTable, InsertResult } from '../src/netfilter/flow-table.js';

export interface Tuples {
  readonly length: number;
  readonly src: Int32Array;
  readonly dst: Int32Array;
  readonly sport: Uint16Array;
  readonly dport: Uint16Array;
  readonly proto: Uint8Array;
}

export function allocTuples(length: number): Tuples {
  return {
    length,
    src: new Int32Array(length),
    dst: new Int32Array(length),
    sport: new Uint16Array(length),
    dport: new Uint16Array(length),
    proto: new Uint8Array(length),
  };
}

/** A seeded xorshift32: the same keys on every run, so runs compare. */
export function prng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const DPORTS = [53, 80, 443, 5432, 6379, 8080, 9090, 3306];

/**
 * `count` distinct pod-to-service tuples: sources in 10.244.0.0/16, destinations in
 * 10.96.0.0/12 (so no reply tuple equals an original one), ephemeral source ports, a
 * handful of service ports, TCP and UDP. Distinctness is checked with a FlowTable, which
 * the tests hold to a Map.
 */
export function distinctTuples(count: number, rand: () => number, seed: number): Tuples {
  const out = allocTuples(count);
  const seen = new FlowTable(count, seed ^ 0x5a5a5a5a);
  let n = 0;
  while (n < count) {
    const src = 0x0af40000 | (rand() & 0xffff);
    const dst = 0x0a600000 | (rand() & 0xfffff);
    const sport = 32768 + (rand() % 28232);
    const dport = DPORTS[rand() & 7];
    const proto = rand() & 1 ? 6 : 17;
    if (seen.insert(src, dst, sport, dport, proto, n) !== InsertResult.Added) continue;
    out.src[n] = src;
    out.dst[n] = dst;
    out.sport[n] = sport;
    out.dport[n] = dport;
    out.proto[n] = proto;
    n++;
  }
  return out;
}

/** What a batch of lookups found, accumulated across a case's samples. */
export interface LookupTally {
  found: number;
  missing: number;
}

/** Throws unless every lookup a case timed came out `want`: a benchmark must time what it says. */
export function expectAll(name: string, tally: LookupTally, want: 'found' | 'missing'): void {
  const wrong = want === 'found' ? tally.missing : tally.found;
  if (wrong !== 0) throw new Error(`${name}: ${wrong} of ${tally.found + tally.missing} lookups were not ${want}`);
}
