import test from 'ava';
import fc from 'fast-check';
import { parseIpv4 } from '../../src/packet/addr.js';
import { FLOW_NOT_FOUND, FlowTable, flowHash, InsertResult, MAX_FLOW_ENTRIES, MAX_LOAD_FACTOR } from '../../src/netfilter/flow-table.js';

type Tuple = readonly [src: number, dst: number, sport: number, dport: number, proto: number];

const SEED = 0x5eed1234;
const POD = parseIpv4('10.244.1.2')!;
const SVC = parseIpv4('10.96.0.10')!;
const EXT = parseIpv4('192.0.2.7')!; // above 2^31: not an int32 as a uint32

/** The model's key: a string, the very thing the table exists to avoid. */
function keyOf([src, dst, sport, dport, proto]: Tuple): string {
  return `${src >>> 0}|${dst >>> 0}|${sport}|${dport}|${proto}`;
}

function lookup(table: FlowTable, t: Tuple): number {
  return table.lookup(t[0], t[1], t[2], t[3], t[4]);
}

function insert(table: FlowTable, t: Tuple, value: number): InsertResult {
  return table.insert(t[0], t[1], t[2], t[3], t[4], value);
}

function remove(table: FlowTable, t: Tuple): boolean {
  return table.delete(t[0], t[1], t[2], t[3], t[4]);
}

/** A tuple whose home slot is `home`, found by walking source ports from `sportFrom`. */
function tupleWithHome(seed: number, capacity: number, home: number, sportFrom = 1000): Tuple {
  for (let sport = sportFrom; sport < 0x10000; sport++) {
    if ((flowHash(seed, POD, SVC, sport, 80, 6) & (capacity - 1)) === home) return [POD, SVC, sport, 80, 6];
  }
  throw new Error(`no tuple with home ${home}`);
}

// Small domains so that a pool of a dozen keys holds near-twins differing in one field.
const tupleArb: fc.Arbitrary<Tuple> = fc.tuple(
  fc.constantFrom(0, 1, POD, EXT, 0xffffffff),
  fc.constantFrom(SVC, EXT, 0x80000000),
  fc.constantFrom(0, 1, 41000, 0xffff),
  fc.constantFrom(53, 80),
  fc.constantFrom(0, 6, 17, 255),
);

const wideTupleArb: fc.Arbitrary<Tuple> = fc.tuple(
  fc.nat({ max: 0xffffffff }),
  fc.nat({ max: 0xffffffff }),
  fc.nat({ max: 0xffff }),
  fc.nat({ max: 0xffff }),
  fc.nat({ max: 0xff }),
);

type Op =
  | { kind: 'insert'; key: number; value: number }
  | { kind: 'lookup'; key: number }
  | { kind: 'delete'; key: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), key: fc.nat(), value: fc.nat({ max: 0xffffffff }) }),
  fc.record({ kind: fc.constant('lookup' as const), key: fc.nat() }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.nat() }),
);

/** Runs `ops` against the table and a Map; false at the first disagreement. */
function agreesWithModel(table: FlowTable, pool: readonly Tuple[], ops: readonly Op[]): boolean {
  const model = new Map<string, number>();
  for (const op of ops) {
    const t = pool[op.key % pool.length];
    const k = keyOf(t);
    if (op.kind === 'insert') {
      const expected = model.has(k) ? InsertResult.Replaced : model.size >= table.maxEntries ? InsertResult.Full : InsertResult.Added;
      if (insert(table, t, op.value) !== expected) return false;
      if (expected !== InsertResult.Full) model.set(k, op.value);
    } else if (op.kind === 'lookup') {
      if (lookup(table, t) !== (model.get(k) ?? FLOW_NOT_FOUND)) return false;
    } else if (remove(table, t) !== model.delete(k)) {
      return false;
    }
    if (table.size !== model.size) return false;
  }
  return pool.every((t) => lookup(table, t) === (model.get(keyOf(t)) ?? FLOW_NOT_FOUND));
}

test('property: agrees with a Map over random insert/lookup/delete, small crowded tables', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.nat({ max: 0xffffffff }),
      fc.array(tupleArb, { minLength: 1, maxLength: 24 }),
      fc.array(opArb, { maxLength: 300 }),
      (maxEntries, seed, pool, ops) => agreesWithModel(new FlowTable(maxEntries, seed), pool, ops),
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: agrees with a Map over full-range tuples', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.nat({ max: 0xffffffff }),
      fc.array(wideTupleArb, { minLength: 1, maxLength: 300 }),
      fc.array(opArb, { maxLength: 600 }),
      (maxEntries, seed, pool, ops) => agreesWithModel(new FlowTable(maxEntries, seed), pool, ops),
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('property: after deletes, the table probes exactly like one built from the keys left', (t) => {
  // Backward shift leaves the table as if the deleted keys had never been inserted. In linear
  // probing the total displacement of a key set does not depend on insertion order, so it
  // must equal that of a fresh table; a tombstone or a missed shift would show up here.
  fc.assert(
    fc.property(
      fc.nat({ max: 0xffffffff }),
      fc.uniqueArray(wideTupleArb, { minLength: 1, maxLength: 24, selector: keyOf }),
      fc.array(fc.boolean(), { minLength: 24, maxLength: 24 }),
      (seed, keys, deleteMask) => {
        const table = new FlowTable(24, seed); // 32 slots
        keys.forEach((k, i) => insert(table, k, i));
        const kept = keys.filter((_, i) => !deleteMask[i]);
        keys.forEach((k, i) => deleteMask[i] && remove(table, k));
        const fresh = new FlowTable(24, seed);
        [...kept].reverse().forEach((k) => insert(fresh, k, 0));
        return (
          table.size === kept.length &&
          table.totalProbeDistance() === fresh.totalProbeDistance() &&
          keys.every((k, i) => lookup(table, k) === (deleteMask[i] ? FLOW_NOT_FOUND : i))
        );
      },
    ),
    { numRuns: 1000 },
  );
  t.pass();
});

test('deleting from a chain that wraps past the last slot keeps every other key reachable', (t) => {
  const table = new FlowTable(12, SEED);
  const last = table.capacity - 1;
  // Three keys at home `last` (the chain wraps to slots 0 and 1), then one whose home is 0
  // and which therefore sits at slot 2, behind the wrapped ones.
  const a = tupleWithHome(SEED, table.capacity, last, 1000);
  const b = tupleWithHome(SEED, table.capacity, last, a[2] + 1);
  const c = tupleWithHome(SEED, table.capacity, last, b[2] + 1);
  const d = tupleWithHome(SEED, table.capacity, 0, 1000);
  [a, b, c, d].forEach((k, i) => t.is(insert(table, k, i), InsertResult.Added));
  t.is(table.totalProbeDistance(), 0 + 1 + 2 + 2);

  t.true(remove(table, a)); // b, c and d each move back one slot
  t.is(lookup(table, b), 1);
  t.is(lookup(table, c), 2);
  t.is(lookup(table, d), 3);
  t.is(table.totalProbeDistance(), 0 + 1 + 1);

  t.true(remove(table, c)); // d returns home
  t.is(lookup(table, b), 1);
  t.is(lookup(table, d), 3);
  t.is(table.totalProbeDistance(), 0);
  t.false(remove(table, c));
  t.is(table.size, 2);
});

test('a full table refuses new keys, still replaces values, and takes keys again after a delete', (t) => {
  const table = new FlowTable(100, SEED);
  t.is(table.capacity, 256);
  const tuple = (i: number): Tuple => [POD + i, SVC, 40000 + i, 53, 17];
  for (let i = 0; i < 100; i++) t.is(insert(table, tuple(i), i), InsertResult.Added);
  t.is(table.size, 100);
  t.is(insert(table, tuple(100), 100), InsertResult.Full);
  t.is(lookup(table, tuple(100)), FLOW_NOT_FOUND);
  t.is(table.size, 100);
  t.is(insert(table, tuple(7), 7007), InsertResult.Replaced);
  t.is(lookup(table, tuple(7)), 7007);
  t.true(remove(table, tuple(0)));
  t.is(insert(table, tuple(100), 100), InsertResult.Added);
  for (let i = 1; i <= 100; i++) t.is(lookup(table, tuple(i)), i === 7 ? 7007 : i);
});

test('values cover the whole uint32 range and -1 means absent', (t) => {
  const table = new FlowTable(4, SEED);
  insert(table, [POD, SVC, 1, 2, 6], 0);
  insert(table, [POD, SVC, 1, 2, 17], 0xffffffff);
  t.is(lookup(table, [POD, SVC, 1, 2, 6]), 0);
  t.is(lookup(table, [POD, SVC, 1, 2, 17]), 0xffffffff);
  t.is(lookup(table, [POD, SVC, 1, 2, 1]), FLOW_NOT_FOUND);
});

test('an address is the same key as a uint32 or as an int32 with the same bits', (t) => {
  const table = new FlowTable(4, SEED);
  t.is(table.insert(EXT, 0xffffffff, 1, 2, 6, 9), InsertResult.Added);
  t.is(table.lookup(EXT | 0, -1, 1, 2, 6), 9);
  t.is(table.insert(EXT | 0, -1, 1, 2, 6, 10), InsertResult.Replaced);
  t.is(table.size, 1);
});

test('clear empties the table and it fills again', (t) => {
  const table = new FlowTable(10, SEED);
  for (let i = 0; i < 10; i++) insert(table, [POD, SVC, i, 80, 6], i);
  table.clear();
  t.is(table.size, 0);
  t.is(lookup(table, [POD, SVC, 3, 80, 6]), FLOW_NOT_FOUND);
  for (let i = 0; i < 10; i++) t.is(insert(table, [POD, SVC, i, 443, 6], i), InsertResult.Added);
});

test('the same seed and operations give the same table; the seed moves keys', (t) => {
  const build = (seed: number): FlowTable => {
    const table = new FlowTable(1000, seed);
    for (let i = 0; i < 1000; i++) insert(table, [POD + (i >> 4), SVC, 30000 + i, 80, 6], i);
    return table;
  };
  t.is(build(1).totalProbeDistance(), build(1).totalProbeDistance());
  const homes = (seed: number): number[] => [1, 2, 3, 4, 5, 6, 7, 8].map((i) => flowHash(seed, POD, SVC, i, 80, 6) & 1023);
  t.notDeepEqual(homes(1), homes(2));
});

test('sizing: a power of two at most MAX_LOAD_FACTOR full; bad sizes are refused', (t) => {
  for (const max of [1, 6, 7, 100, 1000, 12345]) {
    const table = new FlowTable(max, 0);
    t.is(table.capacity & (table.capacity - 1), 0);
    t.true(max <= table.capacity * MAX_LOAD_FACTOR);
    t.true(max > (table.capacity / 2) * MAX_LOAD_FACTOR || table.capacity === 8);
    t.is(table.bytesPerEntry, (table.capacity * 18) / max);
  }
  for (const bad of [0, -1, 1.5, Number.NaN, MAX_FLOW_ENTRIES + 1]) {
    t.throws(() => new FlowTable(bad, 0), { instanceOf: RangeError });
  }
});

test('1M flows fit and every one is found', (t) => {
  const n = 1_000_000;
  const table = new FlowTable(n, SEED);
  // Distinct by construction: the low 16 bits of i pick the source, the rest the destination.
  const src = (i: number): number => (POD & 0xffff0000) | (i & 0xffff);
  const dst = (i: number): number => SVC + (i >>> 16);
  const sport = (i: number): number => 32768 + ((i * 7919) & 0x7fff);
  for (let i = 0; i < n; i++) {
    if (table.insert(src(i), dst(i), sport(i), 443, 6, i) !== InsertResult.Added) return t.fail(`insert ${i}`);
  }
  t.is(table.size, n);
  for (let i = 0; i < n; i++) {
    if (table.lookup(src(i), dst(i), sport(i), 443, 6) !== i) return t.fail(`lookup ${i}`);
  }
  t.is(table.lookup(src(5), dst(5), sport(5), 443, 17), FLOW_NOT_FOUND);
  t.is(table.insert(src(5), dst(5), sport(5), 443, 17, 0), InsertResult.Full);
  t.true(table.bytesPerEntry < 40, `bytesPerEntry ${table.bytesPerEntry}`);
  t.true(table.totalProbeDistance() / n < 1, `mean probe distance ${table.totalProbeDistance() / n}`);
});
