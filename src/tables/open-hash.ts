/**
 * Open addressing over typed arrays, for a table keyed by up to three words and a byte that
 * must cost the same at any size: the probing, the bound and the deletion, written and tested
 * once. Conntrack's flow table (src/netfilter/flow-table.ts) stands on it. The FDB, the
 * service table's maps, NetworkPolicy's address tables and ClientIP affinity were measured
 * on it and keep their own code, each saying why with the figures (narrow keys in small,
 * cache-resident tables pay for this core's four-word hash and metadata array; affinity
 * evicts where this core refuses).
 *
 * A table stands on the core by extending it and offering its own API over the protected
 * slot-level methods (find, claim, valueAt, remove, ...), which the core does not expose. Not
 * by holding one in a field: measured in the flow-table benchmark, the cache-resident lookup
 * took 12.6-13.6 ns of CPU with the flow table's own code, 20-23 ns with the core held in a
 * field, and 12.6-13.4 ns with the flow table extending it.
 *
 * Contract
 * - A key is three int32 words and one byte (`keyByte`, e.g. the IP protocol). Words are
 *   compared as int32: a uint32 and an int32 with the same bits are the same word, and only
 *   the low 8 bits of the byte count. A table with a narrower key passes 0 for the words it
 *   does not use.
 * - A value is one int32 per key, read with `valueAt(slot)` and written with `setValueAt`.
 *   A table that needs more per key keeps its own arrays and stores an index into them, as
 *   conntrack does. A newly claimed slot's value is whatever a dead row left: write it.
 * - Memory is allocated once, in the constructor: `capacity` slots (a power of two, at least
 *   `minCapacity`, with `maxEntries` at or under `maxLoad` of them). At most `maxEntries` keys
 *   are held; a claim of a new key beyond that returns `CLAIM_FULL` and changes nothing.
 * - `find`, `claim`, `remove` and `deleteSlot` allocate nothing and never throw; each costs
 *   one hash and a short linear probe whatever the number of keys (a delete also rehashes
 *   the entries after it in the probe chain).
 * - Deletion is backward shift (Knuth 6.4 Algorithm R): later entries of the probe chain
 *   move back into the hole, so there are no tombstones and a table after heavy churn probes
 *   as short as one built from its current keys. A caller that deletes while walking the
 *   slots must look at the same slot again: another entry may have moved into it.
 * - The hash is seeded by the caller, never by a random source inside: the same seed and
 *   the same operations give the same table. A table whose keys come from packets should
 *   be given a seed from a secure random source at start (see `openHash`).
 *
 * Layout. Each slot is a 16-byte row in one Int32Array (three key words, the value), four
 * rows to a 64-byte cache line, so a hit usually costs one line for the key and the value;
 * separate columns would cost one line per column. Occupancy and the key byte live in a
 * Uint16Array beside the rows, with 7 bits of the hash as a tag: a probe compares the
 * metadata first and reads a row only when the byte and tag agree, so a miss usually touches
 * no row at all (for conntrack's million flows the metadata is 4 MiB and mostly stays in
 * cache; the rows do not).
 *
 * Why the shape is fixed (three key words, one value, 16 bytes) and not an option per table:
 * measured side by side against conntrack's hand-written flow table, a key width read from
 * the table at run time cost inserts 5-7%, and a row width read from it (a multiply instead
 * of a shift) cost the cache-resident lookup 3-7%. With the shape fixed the core is the flow
 * table's code, and the narrower tables pay 4 to 8 bytes a slot for unused key words.
 */

/** What `find` returns for an absent key. */
export const NO_SLOT = -1;
/** What `claim` returns when the key is new and the table already holds `maxEntries` keys. */
export const CLAIM_FULL = -1;
/** Set in what `claim` returns when the key was already present (the slot is the rest). */
export const CLAIM_EXISTED = 0x40000000;
/** The slot in what `claim` returns. */
export const CLAIM_SLOT_MASK = CLAIM_EXISTED - 1;

/** Past three quarters full, linear probe chains lengthen fast. */
export const MAX_OPEN_HASH_LOAD = 0.75;
/** The most slots a table may have (2^26: 1.1 GiB of typed arrays). */
export const MAX_OPEN_HASH_SLOTS = 2 ** 26;

/** Bytes per slot: the 16-byte row and 2 bytes of metadata. */
export const OPEN_HASH_SLOT_BYTES = 18;

const ROW_SHIFT = 2;
const ROW_VALUE = 3;

/** Metadata: 0 is an empty slot; otherwise USED | tag << 8 | keyByte. */
const META_USED = 0x8000;
const TAG_SHIFT = 24;
const TAG_MASK = 0x7f;

/**
 * The hash: each key word, xored with the seed, times its own odd constant (four
 * independent multiplies the CPU runs side by side), summed, then murmur3's fmix32 so that
 * every input bit reaches the low bits that pick the slot. Measured at about half the cost
 * of murmur3_32 over the same four words. The products are rotated by different amounts
 * before the sum: without that, flipping the top bit of two words adds 2^31 twice and
 * collides under every seed. It is not a keyed PRF: the seed varies the layout between
 * nodes; it is no proof against someone who sets out to find collisions.
 *
 * Exported (an int32; the home slot is `openHash(...) & (capacity - 1)`) so that tables can
 * publish their own hash and tests can build keys that collide on purpose. Arguments must
 * already be int32 words and a byte.
 */
export function openHash(seed: number, k0: number, k1: number, k2: number, keyByte: number): number {
  const a = Math.imul(k0 ^ seed, 0x9e3779b1);
  const b = Math.imul(k1 ^ seed, 0x85ebca77);
  const c = Math.imul(k2 ^ seed, 0xc2b2ae3d);
  const d = Math.imul(keyByte ^ seed, 0x27d4eb2f);
  let h = (a + ((b << 11) | (b >>> 21)) + ((c << 22) | (c >>> 10)) + d) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function metaFor(hash: number, keyByte: number): number {
  return META_USED | (((hash >>> TAG_SHIFT) & TAG_MASK) << 8) | keyByte;
}

export interface OpenHashOptions {
  /** The bound on `size`: 0 or more. */
  readonly maxEntries: number;
  /** The largest share of slots that may be used, at most MAX_OPEN_HASH_LOAD. */
  readonly maxLoad: number;
  /** The fewest slots: a power of two. */
  readonly minCapacity: number;
  /** Any int32: the hash seed. */
  readonly seed: number;
}

export class OpenHash {
  /** Number of slots: a power of two, fixed at construction. */
  readonly capacity: number;
  /** The most keys the table accepts. */
  readonly maxEntries: number;
  private readonly rows: Int32Array;
  private readonly meta: Uint16Array;
  private readonly seed: number;
  private readonly mask: number;
  private count = 0;

  /** Throws RangeError on bad options: a configuration error, not a packet. */
  constructor(options: OpenHashOptions) {
    const { maxEntries, maxLoad, minCapacity } = options;
    if (!(maxLoad > 0 && maxLoad <= MAX_OPEN_HASH_LOAD)) throw new RangeError(`OpenHash maxLoad must be in (0, ${MAX_OPEN_HASH_LOAD}], got ${maxLoad}`);
    if (!Number.isInteger(minCapacity) || minCapacity < 2 || minCapacity > MAX_OPEN_HASH_SLOTS || (minCapacity & (minCapacity - 1)) !== 0) {
      throw new RangeError(`OpenHash minCapacity must be a power of two from 2 to ${MAX_OPEN_HASH_SLOTS}, got ${minCapacity}`);
    }
    const most = Math.floor(MAX_OPEN_HASH_SLOTS * maxLoad);
    if (!Number.isInteger(maxEntries) || maxEntries < 0 || maxEntries > most) {
      throw new RangeError(`OpenHash maxEntries must be an integer from 0 to ${most}, got ${maxEntries}`);
    }
    let capacity = minCapacity;
    while (capacity * maxLoad < maxEntries) capacity *= 2;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.maxEntries = maxEntries;
    this.seed = options.seed | 0;
    this.rows = new Int32Array(capacity << ROW_SHIFT);
    this.meta = new Uint16Array(capacity);
  }

  /** Number of keys held. */
  get size(): number {
    return this.count;
  }

  /** Bytes of typed arrays behind the table, all allocated up front. */
  get byteLength(): number {
    return this.rows.byteLength + this.meta.byteLength;
  }

  /** The slot holding the key, or NO_SLOT. */
  protected find(k0: number, k1: number, k2: number, keyByte: number): number {
    const w0 = k0 | 0;
    const w1 = k1 | 0;
    const w2 = k2 | 0;
    const kb = keyByte & 0xff;
    const hash = openHash(this.seed, w0, w1, w2, kb);
    const want = metaFor(hash, kb);
    const meta = this.meta;
    const mask = this.mask;
    let i = hash & mask;
    // Terminates: maxEntries < capacity (maxLoad < 1), so some slot is always empty.
    for (;;) {
      const m = meta[i];
      if (m === want) {
        if (this.rowHolds(i, w0, w1, w2)) return i;
      } else if (m === 0) {
        return NO_SLOT;
      }
      i = (i + 1) & mask;
    }
  }

  /**
   * The key's slot, claiming an empty one for a new key (whose value the caller then
   * writes): the slot for a new key, `CLAIM_EXISTED | slot` for a present one, CLAIM_FULL
   * for a new key when `size` is already `maxEntries`.
   */
  protected claim(k0: number, k1: number, k2: number, keyByte: number): number {
    const w0 = k0 | 0;
    const w1 = k1 | 0;
    const w2 = k2 | 0;
    const kb = keyByte & 0xff;
    const hash = openHash(this.seed, w0, w1, w2, kb);
    const want = metaFor(hash, kb);
    const meta = this.meta;
    const mask = this.mask;
    let i = hash & mask;
    for (;;) {
      const m = meta[i];
      if (m === 0) break;
      if (m === want && this.rowHolds(i, w0, w1, w2)) return CLAIM_EXISTED | i;
      i = (i + 1) & mask;
    }
    if (this.count >= this.maxEntries) return CLAIM_FULL;
    const rows = this.rows;
    const r = i << ROW_SHIFT;
    rows[r] = w0;
    rows[r + 1] = w1;
    rows[r + 2] = w2;
    meta[i] = want;
    this.count++;
    return i;
  }

  /** The value in `slot` (a slot `find` or `claim` gave, not since deleted). */
  protected valueAt(slot: number): number {
    return this.rows[(slot << ROW_SHIFT) + ROW_VALUE];
  }

  /** Stores an int32 value (a uint32 keeps its bits) in `slot`. */
  protected setValueAt(slot: number, value: number): void {
    this.rows[(slot << ROW_SHIFT) + ROW_VALUE] = value;
  }

  /** Removes the key; false when it was not there. */
  protected remove(k0: number, k1: number, k2: number, keyByte: number): boolean {
    const slot = this.find(k0, k1, k2, keyByte);
    if (slot === NO_SLOT) return false;
    this.deleteSlot(slot);
    return true;
  }

  /**
   * Removes the entry in `slot` (which must be in use) and walks the rest of its probe
   * chain, moving back every entry whose home is not cyclically between the hole and where
   * it sits: each stays reachable from its home without a gap, nothing marks the dead slot.
   */
  protected deleteSlot(slot: number): void {
    const { meta, rows, mask } = this;
    let hole = slot;
    let j = (hole + 1) & mask;
    while (meta[j] !== 0) {
      const distanceFromHome = (j - this.homeOf(j)) & mask;
      if (distanceFromHome >= ((j - hole) & mask)) {
        // Four word stores: cheaper than a copyWithin call for 16 bytes.
        const from = j << ROW_SHIFT;
        const to = hole << ROW_SHIFT;
        rows[to] = rows[from];
        rows[to + 1] = rows[from + 1];
        rows[to + 2] = rows[from + 2];
        rows[to + 3] = rows[from + 3];
        meta[hole] = meta[j];
        hole = j;
      }
      j = (j + 1) & mask;
    }
    meta[hole] = 0;
    this.count--;
  }

  /** Whether `slot` holds an entry: for walks over every slot (tools, sweeps), not packets. */
  protected inUse(slot: number): boolean {
    return this.meta[slot] !== 0;
  }

  /** Key word 0, 1 or 2 of the entry in `slot`, as the int32 it was stored as. */
  protected keyWordAt(slot: number, word: 0 | 1 | 2): number {
    return this.rows[(slot << ROW_SHIFT) + word];
  }

  /** The key byte of the entry in `slot`. */
  protected keyByteAt(slot: number): number {
    return this.meta[slot] & 0xff;
  }

  /** Forgets every key. Only the metadata is wiped: a row is dead once its slot is empty. */
  clear(): void {
    this.meta.fill(0);
    this.count = 0;
  }

  /**
   * Sum over all keys of how many slots each sits past its home slot: a hit probes
   * `totalProbeDistance / size + 1` slots on average. O(capacity): for reports and tests.
   */
  totalProbeDistance(): number {
    let total = 0;
    for (let i = 0; i < this.capacity; i++) {
      if (this.meta[i] !== 0) total += (i - this.homeOf(i)) & this.mask;
    }
    return total;
  }

  private rowHolds(slot: number, w0: number, w1: number, w2: number): boolean {
    const r = slot << ROW_SHIFT;
    const rows = this.rows;
    return rows[r] === w0 && rows[r + 1] === w1 && rows[r + 2] === w2;
  }

  /** The slot the entry in `slot` hashes to. Recomputed: storing the hash would cost 4 bytes a slot. */
  private homeOf(slot: number): number {
    const r = slot << ROW_SHIFT;
    const rows = this.rows;
    return openHash(this.seed, rows[r], rows[r + 1], rows[r + 2], this.meta[slot] & 0xff) & this.mask;
  }
}
