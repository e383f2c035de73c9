import test from 'ava';
import fc from 'fast-check';
import { CLAIM_EXISTED, CLAIM_FULL, CLAIM_SLOT_MASK, MAX_OPEN_HASH_LOAD, MAX_OPEN_HASH_SLOTS, NO_SLOT, OpenHash as OpenHashCore, openHash } from '../../src/tables/open-hash.js';

type Key = readonly [k0: number, k1: number, k2: number, keyByte: number];

/** The core with its slot-level methods public, as a table that extends it sees them. */
class OpenHash extends OpenHashCore {
  override find(k0: number, k1: number, k2: number, keyByte: number): number {
    return super.find(k0, k1, k2, keyByte);
  }
  override claim(k0: number, k1: number, k2: number, keyByte: number): number {
    return super.claim(k0, k1, k2, keyByte);
  }
  override valueAt(slot: number): number {
    return super.valueAt(slot);
  }
  override setValueAt(slot: number, value: number): void {
    super.setValueAt(slot, value);
  }
  override remove(k0: number, k1: number, k2: number, keyByte: number): boolean {
    return super.remove(k0, k1, k2, keyByte);
  }
  override deleteSlot(slot: number): void {
    super.deleteSlot(slot);
  }
  override inUse(slot: number): boolean {
    return super.inUse(slot);
  }
  override keyWordAt(slot: number, word: 0 | 1 | 2): number {
    return super.keyWordAt(slot, word);
  }
  override keyByteAt(slot: number): number {
    return super.keyByteAt(slot);
  }
}

/** The model's key: the words as int32 and the byte as the table counts them. */
function keyOf([k0, k1, k2, kb]: Key): string {
  return `${k0 | 0},${k1 | 0},${k2 | 0},${kb & 0xff}`;
}

function find(table: OpenHash, k: Key): number {
  return table.find(k[0], k[1], k[2], k[3]);
}

function claim(table: OpenHash, k: Key): number {
  return table.claim(k[0], k[1], k[2], k[3]);
}

/** The value stored for the key, or undefined: what a Map.get would say. */
function get(table: OpenHash, k: Key): number | undefined {
  const slot = find(table, k);
  return slot === NO_SLOT ? undefined : table.valueAt(slot);
}

function homeOf(seed: number, capacity: number, [k0, k1, k2, kb]: Key): number {
  return openHash(seed | 0, k0 | 0, k1 | 0, k2 | 0, kb & 0xff) & (capacity - 1);
}

interface Shape {
  readonly maxEntries: number;
  readonly maxLoad: number;
  readonly minCapacity: number;
  readonly seed: number;
}

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  maxEntries: fc.integer({ min: 0, max: 12 }),
  maxLoad: fc.constantFrom(0.25, 0.5, MAX_OPEN_HASH_LOAD),
  minCapacity: fc.constantFrom(2, 4, 8, 16),
  seed: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
});

/**
 * Keys from small domains, so that a pool holds near-twins that differ in one word or in
 * the byte, and the same key spelt two ways (0x80000000 and its int32, 0x106 and 6).
 */
const twinKeyArb: fc.Arbitrary<Key> = fc.tuple(
  fc.constantFrom(0, 1, -1, 0xffffffff, 0x80000000, -0x80000000),
  fc.constantFrom(0, 7, 0x0a600001),
  fc.constantFrom(0, 0xffff, 80),
  fc.constantFrom(0, 6, 17, 255, 0x106),
);

const wideKeyArb: fc.Arbitrary<Key> = fc.tuple(
  fc.integer({ min: -0x80000000, max: 0xffffffff }),
  fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  fc.nat({ max: 0xffffffff }),
  fc.nat({ max: 0xff }),
);

type Op =
  | { kind: 'claim'; key: number; value: number }
  | { kind: 'find'; key: number }
  | { kind: 'delete'; key: number }
  | { kind: 'sweep'; mod: number }
  | { kind: 'clear' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('claim' as const), key: fc.nat(), value: fc.integer({ min: -0x80000000, max: 0x7fffffff }) }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant('find' as const), key: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('sweep' as const), mod: fc.integer({ min: 2, max: 4 }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'clear' as const }), weight: 1 },
);

/**
 * Deletes every entry whose value is divisible by `mod` by walking the slots with
 * `deleteSlot`, looking at a slot again after a delete (as the contract says): how the FDB
 * sweeps. Returns how many it removed.
 */
function sweep(table: OpenHash, mod: number): number {
  let removed = 0;
  for (let slot = 0; slot < table.capacity; ) {
    if (table.inUse(slot) && table.valueAt(slot) % mod === 0) {
      table.deleteSlot(slot);
      removed++;
    } else {
      slot++;
    }
  }
  return removed;
}

/** Runs `ops` against the table and a Map; a message at the first disagreement, else undefined. */
function disagreement(table: OpenHash, pool: readonly Key[], ops: readonly Op[]): string | undefined {
  const model = new Map<string, number>();
  for (const [n, op] of ops.entries()) {
    const k = pool[(op.kind === 'claim' || op.kind === 'find' || op.kind === 'delete' ? op.key : 0) % pool.length];
    const name = keyOf(k);
    if (op.kind === 'claim') {
      const got = claim(table, k);
      if (model.has(name)) {
        if ((got & CLAIM_EXISTED) === 0 || got === CLAIM_FULL) return `op ${n}: claim of a present key gave ${got}`;
      } else if (model.size >= table.maxEntries) {
        if (got !== CLAIM_FULL) return `op ${n}: claim into a full table gave ${got}`;
        continue;
      } else if (got < 0 || (got & CLAIM_EXISTED) !== 0) {
        return `op ${n}: claim of a new key gave ${got}`;
      }
      table.setValueAt(got & CLAIM_SLOT_MASK, op.value);
      model.set(name, op.value);
    } else if (op.kind === 'find') {
      if (get(table, k) !== model.get(name)) return `op ${n}: find gave ${get(table, k)}, model ${model.get(name)}`;
    } else if (op.kind === 'delete') {
      if (table.remove(k[0], k[1], k[2], k[3]) !== model.delete(name)) return `op ${n}: delete disagreed`;
    } else if (op.kind === 'sweep') {
      let expected = 0;
      for (const [key, value] of model) {
        if (value % op.mod === 0) {
          model.delete(key);
          expected++;
        }
      }
      const removed = sweep(table, op.mod);
      if (removed !== expected) return `op ${n}: sweep removed ${removed}, model ${expected}`;
    } else {
      table.clear();
      model.clear();
    }
    if (table.size !== model.size) return `op ${n}: size ${table.size}, model ${model.size}`;
  }
  for (const k of pool) {
    if (get(table, k) !== model.get(keyOf(k))) return `at the end: ${keyOf(k)} gives ${get(table, k)}, model ${model.get(keyOf(k))}`;
  }
  return undefined;
}

function check(shape: Shape, pool: readonly Key[], ops: readonly Op[]): boolean {
  const problem = disagreement(new OpenHash(shape), pool, ops);
  if (problem !== undefined) throw new Error(problem);
  return true;
}

test('property: agrees with a Map over claim, find, delete, sweep and clear; near-twin keys, crowded small tables', (t) => {
  fc.assert(
    fc.property(shapeArb, fc.array(twinKeyArb, { minLength: 1, maxLength: 24 }), fc.array(opArb, { maxLength: 300 }), check),
    { numRuns: 600 },
  );
  t.pass();
});

test('property: agrees with a Map over full-range keys', (t) => {
  fc.assert(
    fc.property(
      fc.record({ maxEntries: fc.integer({ min: 1, max: 300 }), maxLoad: fc.constantFrom(0.5, MAX_OPEN_HASH_LOAD), minCapacity: fc.constant(8), seed: fc.integer() }),
      fc.array(wideKeyArb, { minLength: 1, maxLength: 400 }),
      fc.array(opArb, { maxLength: 800 }),
      check,
    ),
    { numRuns: 150 },
  );
  t.pass();
});

/**
 * Keys whose home slots are the last few slots and the first few of a `capacity`-slot table,
 * so that probe chains run off the end and continue at slot 0, and deletes shift entries
 * back across the wrap.
 */
function wrappingPool(seed: number, capacity: number): Key[] {
  const want = new Map<number, number>([[capacity - 1, 5], [capacity - 2, 3], [0, 3], [1, 2]]);
  const pool: Key[] = [];
  for (let k2 = 0; pool.length < 13; k2++) {
    const key: Key = [0x0af40102, 0x0a600001, k2, 6];
    const home = homeOf(seed, capacity, key);
    const left = want.get(home) ?? 0;
    if (left > 0) {
      want.set(home, left - 1);
      pool.push(key);
    }
  }
  return pool;
}

test('property: probe chains that wrap from the last slot to the first, up to a full table', (t) => {
  fc.assert(
    fc.property(fc.integer(), fc.array(opArb, { maxLength: 400 }), (seed, ops) => {
      // 16 slots at three quarters: 12 keys, 13 in the pool, so claims also meet a full table.
      const shape = { maxEntries: 12, maxLoad: MAX_OPEN_HASH_LOAD, minCapacity: 16, seed };
      const table = new OpenHash(shape);
      if (table.capacity !== 16) throw new Error(`capacity ${table.capacity}`);
      return check(shape, wrappingPool(seed, 16), ops);
    }),
    { numRuns: 600 },
  );
  t.pass();
});

test('a full table refuses a new key and changes nothing, but still finds and replaces the old', (t) => {
  const table = new OpenHash({ maxEntries: 3, maxLoad: MAX_OPEN_HASH_LOAD, minCapacity: 2, seed: 1 });
  t.is(table.capacity, 4);
  const keys: Key[] = [[1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0], [4, 0, 0, 0]];
  keys.slice(0, 3).forEach((k, i) => table.setValueAt(claim(table, k), 10 + i));
  t.is(claim(table, keys[3]), CLAIM_FULL);
  t.is(table.size, 3);
  t.is(find(table, keys[3]), NO_SLOT);
  const again = claim(table, keys[1]);
  t.true((again & CLAIM_EXISTED) !== 0);
  t.is(table.valueAt(again & CLAIM_SLOT_MASK), 11);
  t.true(table.remove(...keys[0]));
  t.is(claim(table, keys[3]) & CLAIM_EXISTED, 0, 'room again after a delete');
});

test('a wrapped chain closes up across the end: deleting the entry in the last slot pulls the one in slot 0 back', (t) => {
  const seed = 7;
  const table = new OpenHash({ maxEntries: 6, maxLoad: MAX_OPEN_HASH_LOAD, minCapacity: 8, seed });
  const last: Key[] = [];
  for (let k2 = 0; last.length < 2; k2++) if (homeOf(seed, 8, [5, 5, k2, 17]) === 7) last.push([5, 5, k2, 17]);
  last.forEach((k, i) => table.setValueAt(claim(table, k), i));
  t.is(find(table, last[0]), 7);
  t.is(find(table, last[1]), 0, 'the second key with home 7 wrapped to slot 0');
  t.is(table.totalProbeDistance(), 1);
  table.deleteSlot(7);
  t.is(find(table, last[1]), 7, 'shifted back across the wrap');
  t.false(table.inUse(0));
  t.is(table.totalProbeDistance(), 0);
  t.is(table.size, 1);
});

test('the same words spelt as uint32 or int32, and the byte beyond 8 bits, are one key', (t) => {
  const table = new OpenHash({ maxEntries: 4, maxLoad: 0.5, minCapacity: 8, seed: 0 });
  table.setValueAt(claim(table, [0xffffffff, 0x80000000, 0, 6]), 42);
  t.is(get(table, [-1, -0x80000000, 0, 0x106]), 42);
  t.is(table.keyWordAt(find(table, [-1, -0x80000000, 0, 6]), 0), -1);
  t.is(table.keyByteAt(find(table, [-1, -0x80000000, 0, 6])), 6);
  t.is(get(table, [-1, -0x80000000, 0, 17]), undefined, 'another byte is another key');
});

test('sizing: the fewest power-of-two slots from minCapacity that keep maxEntries within maxLoad', (t) => {
  for (const [maxEntries, maxLoad, minCapacity, capacity] of [
    [0, 0.5, 8, 8],
    [4, 0.5, 8, 8],
    [5, 0.5, 8, 16],
    [6, 0.75, 8, 8],
    [7, 0.75, 8, 16],
    [1, 0.75, 2, 2],
    [4096, 0.5, 16, 8192],
  ] as const) {
    const table = new OpenHash({ maxEntries, maxLoad, minCapacity, seed: 0 });
    t.is(table.capacity, capacity, `${maxEntries} at ${maxLoad} from ${minCapacity}`);
    t.is(table.byteLength, capacity * 18);
  }
});

test('bad options are refused with a RangeError', (t) => {
  const good = { maxEntries: 4, maxLoad: 0.5, minCapacity: 8, seed: 0 };
  for (const bad of [
    { maxEntries: -1 },
    { maxEntries: 1.5 },
    { maxEntries: MAX_OPEN_HASH_SLOTS },
    { maxLoad: 0 },
    { maxLoad: 1 },
    { maxLoad: Number.NaN },
    { minCapacity: 1 },
    { minCapacity: 12 },
    { minCapacity: 2 * MAX_OPEN_HASH_SLOTS },
  ]) {
    t.throws(() => new OpenHash({ ...good, ...bad }), { instanceOf: RangeError }, JSON.stringify(bad));
  }
});

test('the same seed and operations give the same layout; another seed another', (t) => {
  const build = (seed: number): number[] => {
    const table = new OpenHash({ maxEntries: 16, maxLoad: 0.5, minCapacity: 32, seed });
    for (let i = 0; i < 16; i++) table.setValueAt(claim(table, [i, 0, 0, 0]), i);
    return Array.from({ length: 16 }, (_, i) => find(table, [i, 0, 0, 0]));
  };
  t.deepEqual(build(1), build(1));
  t.notDeepEqual(build(1), build(2));
});
