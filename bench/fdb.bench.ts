/**
 * The bridge's forwarding database: the lookup every frame makes for its destination MAC
 * (hits on known stations and misses, the unknown unicast that gets flooded), the learn
 * every frame makes for its source (a refresh of a known station), and flushing a port's
 * stations as when a pod goes away. At 64 stations (a node's pods) and at 4096 (the
 * default bound, full).
 */
import { Fdb } from '../src/l2/fdb.js';
import { runMicroSuite, sink, type BenchModule, type Figure } from './harness.js';
import { prng } from './tuples.js';

const BATCH = 4096;
const PORTS = 32;
/** Never aged out during a run: aging is exercised by the tests, not timed here. */
const AGING_NS = 1e15;
const SIZES = [64, 4096] as const;

const NAMES = {
  hit: (n: number) => `fdb: lookup hit, ${n} stations`,
  miss: (n: number) => `fdb: lookup miss (unknown unicast), ${n} stations`,
  refresh: (n: number) => `fdb: learn, refreshing a known station, ${n} stations`,
  flush: (n: number) => `fdb: flushPort + relearn its stations, per station of ${n}`,
} as const;

/** 2n distinct locally administered MACs of one prefix (0a:58, as kubenet's), the first n learned. */
function stations(n: number, rand: () => number): Float64Array {
  const macs = new Float64Array(2 * n);
  const seen = new Set<number>();
  for (let i = 0; i < macs.length; ) {
    const mac = 0x0a5800000000 + (rand() % 0x100000000);
    if (seen.has(mac)) continue;
    seen.add(mac);
    macs[i++] = mac;
  }
  return macs;
}

function filled(n: number, macs: Float64Array): Fdb {
  const fdb = new Fdb(n, AGING_NS);
  for (let i = 0; i < n; i++) fdb.learn(macs[i], i % PORTS, 0);
  if (fdb.size !== n || fdb.learnFailures !== 0) throw new Error(`fdb bench: ${n} stations did not all fit`);
  return fdb;
}

/** BATCH lookups of macs[from + (k mod n)] in a scattered order; counts the wrong answers. */
function lookups(fdb: Fdb, macs: Float64Array, from: number, n: number, wantFound: boolean, wrong: { n: number }): () => void {
  let cursor = 0;
  return () => {
    let acc = 0;
    let bad = 0;
    let c = cursor;
    for (let k = 0; k < BATCH; k++) {
      const port = fdb.lookup(macs[from + c], 1);
      if (port < 0 === wantFound) bad++;
      acc = (acc + port) | 0;
      c += 7;
      if (c >= n) c -= n;
    }
    cursor = c;
    wrong.n += bad;
    sink.value ^= acc;
  };
}

function refreshes(fdb: Fdb, macs: Float64Array, n: number): () => void {
  let cursor = 0;
  let now = 0;
  return () => {
    let c = cursor;
    for (let k = 0; k < BATCH; k++) {
      fdb.learn(macs[c], c % PORTS, ++now);
      c += 7;
      if (c >= n) c -= n;
    }
    cursor = c;
    sink.value ^= fdb.size;
  };
}

/** Flushes one port and learns its stations back: one call per station of the table. */
function flushes(fdb: Fdb, macs: Float64Array, n: number): () => void {
  let port = 0;
  return () => {
    fdb.flushPort(port);
    for (let i = port; i < n; i += PORTS) fdb.learn(macs[i], port, 0);
    port = (port + 1) % PORTS;
    sink.value ^= fdb.size;
  };
}

const bench: BenchModule = {
  name: 'fdb',
  async run(ctx) {
    const rand = prng(0x0a58);
    const figures: Figure[] = [];
    for (const n of SIZES) {
      const macs = stations(n, rand);
      const wrong = { n: 0 };
      figures.push(
        ...(await runMicroSuite(ctx, {
          name: `fdb-${n}`,
          opsPerCall: BATCH,
          cases: [
            { name: NAMES.hit(n), run: lookups(filled(n, macs), macs, 0, n, true, wrong) },
            { name: NAMES.miss(n), run: lookups(filled(n, macs), macs, n, n, false, wrong) },
            { name: NAMES.refresh(n), run: refreshes(filled(n, macs), macs, n) },
          ],
        })),
        ...(await runMicroSuite(ctx, { name: `fdb-flush-${n}`, opsPerCall: n, cases: [{ name: NAMES.flush(n), run: flushes(filled(n, macs), macs, n) }] })),
      );
      if (wrong.n !== 0) throw new Error(`fdb bench, ${n} stations: ${wrong.n} lookups came out wrong`);
    }
    return figures;
  },
};

export default bench;
