/**
 * The conntrack index: 5-tuple lookups in a FlowTable holding 1M flows, hits on random
 * existing flows and misses, beside the same lookups through a Map keyed by a string
 * built from the tuple (the obvious JavaScript way, kept as a reference, not tuned).
 * Also insert rate, churn at 1M (delete the oldest flow, insert a new one), and memory.
 */
import { FLOW_NOT_FOUND, FlowTable, InsertResult } from '../src/netfilter/flow-table.js';
import { atMost, runMicroSuite, sink, type BenchContext, type BenchModule, type Figure } from './harness.js';
import { allocTuples, distinctTuples, expectAll, type LookupTally, prng, type Tuples } from './tuples.js';

const FLOWS = 1_000_000;
/** A table small enough to stay in cache: what a lookup costs without a DRAM miss. */
const CACHED_FLOWS = 10_000;
const BATCH = 4096;
const CHURN_BATCH = 4096;
const SEED = 0x9e3779b9;

const NAMES = {
  hit: 'flow-table: lookup hit, 1M flows',
  miss: 'flow-table: lookup miss, 1M flows',
  cachedHit: 'flow-table: lookup hit, 10K flows (cache-resident)',
  mapHit: 'reference: Map<string> lookup hit, 1M flows',
  mapMiss: 'reference: Map<string> lookup miss, 1M flows',
  ratio: 'flow-table: Map<string> / FlowTable, lookup hit',
  insert: 'flow-table: insert, filling 1M flows',
  churn: 'flow-table: churn at 1M flows (delete oldest + insert new)',
  bytes: 'flow-table: memory per flow, 1M flows',
  probe: 'flow-table: mean probe distance at 1M flows',
} as const;


/** Rows [from, from + length) of `t`, in the order `order` gives (or as they are). */
function pick(t: Tuples, from: number, length: number, order?: Int32Array): Tuples {
  const out = allocTuples(length);
  for (let i = 0; i < length; i++) {
    const k = from + (order === undefined ? i : order[i]);
    out.src[i] = t.src[k];
    out.dst[i] = t.dst[k];
    out.sport[i] = t.sport[k];
    out.dport[i] = t.dport[k];
    out.proto[i] = t.proto[k];
  }
  return out;
}

/** A random permutation of 0..n-1 (Fisher-Yates). */
function permutation(n: number, rand: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rand() % (i + 1);
    const x = p[i];
    p[i] = p[j];
    p[j] = x;
  }
  return p;
}

/** Inserts rows [0, count) with value = row index; throws unless every one is new. */
function fill(table: FlowTable, t: Tuples, count: number): number {
  let refused = 0;
  for (let i = 0; i < count; i++) {
    if (table.insert(t.src[i], t.dst[i], t.sport[i], t.dport[i], t.proto[i], i) !== InsertResult.Added) refused++;
  }
  return refused;
}

/**
 * A batch of BATCH lookups walking `q` cyclically. Results are summed into a local
 * and published once per batch (see harness: keeping work live); hits and misses are
 * counted so the caller can check afterwards that hits hit and misses missed.
 */
function tableLookups(table: FlowTable, q: Tuples, tally: LookupTally): () => void {
  let cursor = 0;
  return () => {
    let acc = 0;
    let missing = 0;
    let i = cursor;
    for (let k = 0; k < BATCH; k++) {
      const v = table.lookup(q.src[i], q.dst[i], q.sport[i], q.dport[i], q.proto[i]);
      acc = (acc + v) | 0;
      if (v === FLOW_NOT_FOUND) missing++;
      if (++i === q.length) i = 0;
    }
    cursor = i;
    sink.value ^= acc;
    tally.missing += missing;
    tally.found += BATCH - missing;
  };
}

function tupleKey(src: number, dst: number, sport: number, dport: number, proto: number): string {
  return `${src}|${dst}|${sport}|${dport}|${proto}`;
}

/** The reference: the same walk through a Map, building the string key per lookup. */
function mapLookups(map: Map<string, number>, q: Tuples, tally: LookupTally): () => void {
  let cursor = 0;
  return () => {
    let acc = 0;
    let missing = 0;
    let i = cursor;
    for (let k = 0; k < BATCH; k++) {
      const v = map.get(tupleKey(q.src[i], q.dst[i], q.sport[i], q.dport[i], q.proto[i])) ?? FLOW_NOT_FOUND;
      acc = (acc + v) | 0;
      if (v === FLOW_NOT_FOUND) missing++;
      if (++i === q.length) i = 0;
    }
    cursor = i;
    sink.value ^= acc;
    tally.missing += missing;
    tally.found += BATCH - missing;
  };
}

interface Fixture {
  /** 2 * FLOWS distinct tuples: rows [0, FLOWS) are in `table`, the rest are not. */
  readonly keys: Tuples;
  readonly table: FlowTable;
  readonly rand: () => number;
}

function buildFixture(): Fixture {
  const rand = prng(SEED);
  const keys = distinctTuples(2 * FLOWS, rand, SEED);
  const table = new FlowTable(FLOWS, SEED);
  if (fill(table, keys, FLOWS) !== 0) throw new Error('fixture: an insert into the 1M table was refused');
  return { keys, table, rand };
}

async function lookupFigures(ctx: BenchContext, fx: Fixture): Promise<Figure[]> {
  const hits = pick(fx.keys, 0, FLOWS, permutation(FLOWS, fx.rand));
  const misses = pick(fx.keys, FLOWS, FLOWS);
  const cached = new FlowTable(CACHED_FLOWS, SEED);
  fill(cached, fx.keys, CACHED_FLOWS);
  const cachedHits = pick(fx.keys, 0, CACHED_FLOWS, permutation(CACHED_FLOWS, fx.rand));
  const wantMap = ctx.selects(NAMES.mapHit) || ctx.selects(NAMES.mapMiss) || ctx.selects(NAMES.ratio);
  const map = wantMap ? buildMap(fx.keys) : new Map<string, number>();
  const tallies = { hit: tally(), miss: tally(), cachedHit: tally(), mapHit: tally(), mapMiss: tally() };

  const figures = await runMicroSuite(ctx, {
    name: 'flow-table-lookup',
    opsPerCall: BATCH,
    cases: [
      { name: NAMES.hit, target: atMost(40), run: tableLookups(fx.table, hits, tallies.hit) },
      { name: NAMES.miss, target: atMost(40), run: tableLookups(fx.table, misses, tallies.miss) },
      { name: NAMES.cachedHit, run: tableLookups(cached, cachedHits, tallies.cachedHit) },
      { name: NAMES.mapHit, run: mapLookups(map, hits, tallies.mapHit) },
      { name: NAMES.mapMiss, run: mapLookups(map, misses, tallies.mapMiss) },
    ],
  });
  for (const [name, want] of [['hit', 'found'], ['miss', 'missing'], ['cachedHit', 'found'], ['mapHit', 'found'], ['mapMiss', 'missing']] as const) {
    expectAll(NAMES[name], tallies[name], want);
  }
  return [...figures, ...ratioFigure(ctx, figures)];
}

function tally(): LookupTally {
  return { found: 0, missing: 0 };
}

function buildMap(keys: Tuples): Map<string, number> {
  const map = new Map<string, number>();
  for (let i = 0; i < FLOWS; i++) map.set(tupleKey(keys.src[i], keys.dst[i], keys.sport[i], keys.dport[i], keys.proto[i]), i);
  return map;
}

function ratioFigure(ctx: BenchContext, figures: readonly Figure[]): Figure[] {
  const table = figures.find((f) => f.name === NAMES.hit);
  const map = figures.find((f) => f.name === NAMES.mapHit);
  if (table === undefined || map === undefined || !ctx.selects(NAMES.ratio)) return [];
  return [{ name: NAMES.ratio, value: map.value / table.value, unit: '×' }];
}

/**
 * Insert rate: each call empties a table and fills it with the 1M flows. The clear is
 * timed too; it wipes 4 MiB of metadata, well under 1% of the call.
 */
async function insertFigures(ctx: BenchContext, fx: Fixture): Promise<Figure[]> {
  const table = new FlowTable(FLOWS, SEED);
  let refused = 0;
  const figures = await runMicroSuite(ctx, {
    name: 'flow-table-insert',
    opsPerCall: FLOWS,
    cases: [
      {
        name: NAMES.insert,
        run: () => {
          table.clear();
          refused += fill(table, fx.keys, FLOWS);
        },
      },
    ],
  });
  if (refused !== 0) throw new Error(`${NAMES.insert}: ${refused} inserts refused`);
  return figures;
}

/**
 * Churn as conntrack sees it at capacity: the table holds a sliding window of FLOWS
 * keys over the 2M; each step deletes the oldest and inserts the next new one, so
 * every delete does a backward shift and every insert finds a fresh slot.
 */
async function churnFigures(ctx: BenchContext, fx: Fixture): Promise<Figure[]> {
  const table = new FlowTable(FLOWS, SEED);
  fill(table, fx.keys, FLOWS);
  const { keys } = fx;
  const ring = keys.length;
  let oldest = 0;
  let failures = 0;
  const figures = await runMicroSuite(ctx, {
    name: 'flow-table-churn',
    opsPerCall: CHURN_BATCH,
    cases: [
      {
        name: NAMES.churn,
        run: () => {
          let o = oldest;
          for (let k = 0; k < CHURN_BATCH; k++) {
            let n = o + FLOWS;
            if (n >= ring) n -= ring;
            if (!table.delete(keys.src[o], keys.dst[o], keys.sport[o], keys.dport[o], keys.proto[o])) failures++;
            if (table.insert(keys.src[n], keys.dst[n], keys.sport[n], keys.dport[n], keys.proto[n], n) !== InsertResult.Added) failures++;
            if (++o === ring) o = 0;
          }
          oldest = o;
        },
      },
    ],
  });
  if (failures !== 0 || table.size !== FLOWS) throw new Error(`${NAMES.churn}: ${failures} failed operations, size ${table.size}`);
  return figures;
}

function memoryFigures(ctx: BenchContext, table: FlowTable): Figure[] {
  const figures: Figure[] = [];
  if (ctx.selects(NAMES.bytes)) figures.push({ name: NAMES.bytes, value: table.bytesPerEntry, unit: 'B/flow' });
  if (ctx.selects(NAMES.probe)) figures.push({ name: NAMES.probe, value: table.totalProbeDistance() / table.size, unit: 'slots' });
  return figures;
}

const flowTable: BenchModule = {
  name: 'flow-table',
  async run(ctx) {
    if (!Object.values(NAMES).some((name) => ctx.selects(name))) return [];
    const fx = buildFixture();
    return [
      ...(await lookupFigures(ctx, fx)),
      ...(await insertFigures(ctx, fx)),
      ...(await churnFigures(ctx, fx)),
      ...memoryFigures(ctx, fx.table),
    ];
  },
};

export default flowTable;
