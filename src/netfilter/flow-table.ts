/**
 * A fixed-size hash table from an IPv4 5-tuple to a uint32 value: the index that
 * conntrack (and anything else keyed by a flow) stands on.
 *
 * Contract
 * - A key is (srcAddr, dstAddr, srcPort, dstPort, protocol). Addresses are uint32 as
 *   `readU32` returns them (int32 with the same bits is the same key); only the low 16
 *   bits of a port and the low 8 bits of the protocol count. Every protocol number,
 *   0 and 255 included, is a key like any other.
 * - A value is any uint32 the caller owns (typically an index into its own entry
 *   arrays). `lookup` returns it, or `FLOW_NOT_FOUND` (-1), which no uint32 equals.
 *   Values below 2^31 come back as V8 small integers; larger ones work, but a caller
 *   that V8 does not inline `lookup` into may receive them boxed (an allocation).
 * - Memory is allocated once, in the constructor. The table holds at most `maxEntries`
 *   keys in `capacity` slots (a power of two, so that the load stays at or under
 *   `MAX_LOAD_FACTOR`); an insert of a new key into a table already holding
 *   `maxEntries` returns `InsertResult.Full` and changes nothing. It never grows.
 * - `lookup`, `insert` and `delete` allocate nothing and never throw; their cost is
 *   one hash plus a short linear probe whatever the number of entries (a delete also
 *   rehashes the entries after it in the probe chain).
 * - The hash is seeded by the caller and never by a random source inside: the same
 *   seed and the same operations give the same table, so tests and simulations repeat.
 *   A node should pick its seed from a secure random source at start, so that tuples
 *   that pile onto one probe chain on one node do not on the next (see `hashKey`).
 *
 * Layout. Each slot is a 16-byte row in one Int32Array (src, dst, sport<<16|dport,
 * value), four rows to a 64-byte cache line, so a hit usually costs one line for the
 * key and value together; separate columns would cost one line per column. The
 * protocol and occupancy live in a Uint16Array of metadata beside the rows, with 7 bits
 * of the hash as a tag: a probe compares the metadata first and reads a row only when
 * the protocol and tag agree, so a miss usually touches no row at all. The metadata for
 * a million flows is 4 MiB and mostly stays in cache.
 *
 * Deletion is backward shift (Knuth 6.4 Algorithm R): later entries of the probe chain
 * move back into the hole, so there are no tombstones and a table after heavy churn
 * probes exactly as short as one built from its current keys.
 */

export const FLOW_NOT_FOUND = -1;

/** The largest share of slots that may be occupied: beyond it linear probes lengthen fast. */
export const MAX_LOAD_FACTOR = 0.75;

/** The most entries a table may be built for (2^26 slots: 1.1 GiB of typed arrays). */
export const MAX_FLOW_ENTRIES = 2 ** 25;

export const InsertResult = {
  /** The key was new and is now stored. */
  Added: 0,
  /** The key was present; its value has been replaced. */
  Replaced: 1,
  /** The key was new and the table already holds `maxEntries` keys: nothing changed. */
  Full: 2,
} as const;
export type InsertResult = (typeof InsertResult)[keyof typeof InsertResult];

const ROW_WORDS = 4;
const ROW_SRC = 0;
const ROW_DST = 1;
const ROW_PORTS = 2;
const ROW_VALUE = 3;

/** Metadata: 0 is an empty slot; otherwise USED | tag << 8 | protocol. */
const META_USED = 0x8000;
const TAG_SHIFT = 24;
const TAG_MASK = 0x7f;

/**
 * The hash: each key word, xored with the seed, times its own odd constant (four
 * independent multiplies the CPU runs side by side), summed, then murmur3's fmix32 so
 * that every input bit reaches the low bits that pick the slot. Measured at about half
 * the cost of murmur3_32 over the same four words, and the hash is most of a lookup's
 * arithmetic. The products are rotated by different amounts before the sum: without
 * that, flipping the top bit of two words adds 2^31 twice and collides under every
 * seed. It is still not a keyed PRF: the seed varies the layout between nodes; it is
 * not a proof against someone who sets out to find collisions.
 */
function hashKey(seed: number, src: number, dst: number, ports: number, proto: number): number {
  const a = Math.imul(src ^ seed, 0x9e3779b1);
  const b = Math.imul(dst ^ seed, 0x85ebca77);
  const c = Math.imul(ports ^ seed, 0xc2b2ae3d);
  const d = Math.imul(proto ^ seed, 0x27d4eb2f);
  let h = (a + ((b << 11) | (b >>> 21)) + ((c << 22) | (c >>> 10)) + d) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * The table's hash of a tuple under `seed`, as an int32; a key's home slot is
 * `flowHash(...) & (capacity - 1)`. Exported so that tests can build tuples that
 * collide on purpose.
 */
export function flowHash(seed: number, srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number): number {
  return hashKey(seed | 0, srcAddr | 0, dstAddr | 0, packPorts(srcPort, dstPort), proto & 0xff);
}

function packPorts(srcPort: number, dstPort: number): number {
  return ((srcPort & 0xffff) << 16) | (dstPort & 0xffff);
}

function metaFor(hash: number, proto: number): number {
  return META_USED | (((hash >>> TAG_SHIFT) & TAG_MASK) << 8) | proto;
}

/** Slots for `maxEntries` keys at no more than MAX_LOAD_FACTOR; at least 8. */
function slotsFor(maxEntries: number): number {
  let slots = 8;
  while (slots * MAX_LOAD_FACTOR < maxEntries) slots *= 2;
  return slots;
}

export class FlowTable {
  /** Number of slots: a power of two, fixed at construction. */
  readonly capacity: number;
  /** The most keys the table accepts; `insert` of a new key beyond it returns Full. */
  readonly maxEntries: number;
  private readonly seed: number;
  private readonly mask: number;
  private readonly rows: Int32Array;
  private readonly meta: Uint16Array;
  private count = 0;

  /**
   * @param maxEntries the bound on `size`, 1 to MAX_FLOW_ENTRIES.
   * @param seed any uint32: the hash seed (see the module comment).
   * Throws RangeError on a bad `maxEntries`: a configuration error, not a packet.
   */
  constructor(maxEntries: number, seed: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_FLOW_ENTRIES) {
      throw new RangeError(`FlowTable maxEntries must be an integer from 1 to ${MAX_FLOW_ENTRIES}, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
    this.capacity = slotsFor(maxEntries);
    this.mask = this.capacity - 1;
    this.seed = seed | 0;
    this.rows = new Int32Array(this.capacity * ROW_WORDS);
    this.meta = new Uint16Array(this.capacity);
  }

  /** Number of keys held. */
  get size(): number {
    return this.count;
  }

  /** Bytes of typed arrays behind the table, all allocated up front. */
  get byteLength(): number {
    return this.rows.byteLength + this.meta.byteLength;
  }

  /** `byteLength / maxEntries`: what each flow the table can hold costs, full or not. */
  get bytesPerEntry(): number {
    return this.byteLength / this.maxEntries;
  }

  /** The value stored for the tuple, or FLOW_NOT_FOUND. */
  lookup(srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number): number {
    const slot = this.find(srcAddr | 0, dstAddr | 0, packPorts(srcPort, dstPort), proto & 0xff);
    return slot < 0 ? FLOW_NOT_FOUND : this.rows[slot * ROW_WORDS + ROW_VALUE] >>> 0;
  }

  /** Stores `value` (a uint32) for the tuple: Added, Replaced or Full (see InsertResult). */
  insert(srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number, value: number): InsertResult {
    const src = srcAddr | 0;
    const dst = dstAddr | 0;
    const ports = packPorts(srcPort, dstPort);
    const p = proto & 0xff;
    const hash = hashKey(this.seed, src, dst, ports, p);
    const want = metaFor(hash, p);
    const { meta, rows, mask } = this;
    let i = hash & mask;
    for (;;) {
      const m = meta[i];
      if (m === 0) break;
      if (m === want && this.rowMatches(i, src, dst, ports)) {
        rows[i * ROW_WORDS + ROW_VALUE] = value;
        return InsertResult.Replaced;
      }
      i = (i + 1) & mask;
    }
    if (this.count >= this.maxEntries) return InsertResult.Full;
    this.writeRow(i, src, dst, ports, value);
    meta[i] = want;
    this.count++;
    return InsertResult.Added;
  }

  /** Removes the tuple; false when it was not there. */
  delete(srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number): boolean {
    const slot = this.find(srcAddr | 0, dstAddr | 0, packPorts(srcPort, dstPort), proto & 0xff);
    if (slot < 0) return false;
    this.closeHole(slot);
    this.count--;
    return true;
  }

  /** Forgets every key. Only the metadata is wiped: a row is dead once its slot is empty. */
  clear(): void {
    this.meta.fill(0);
    this.count = 0;
  }

  /**
   * Sum over all keys of how many slots each sits past its home slot. A lookup hit
   * probes `totalProbeDistance / size + 1` slots on average. O(capacity): for reports
   * and tests, not for the packet path.
   */
  totalProbeDistance(): number {
    let total = 0;
    for (let i = 0; i < this.capacity; i++) {
      if (this.meta[i] !== 0) total += (i - this.homeOf(i)) & this.mask;
    }
    return total;
  }

  /** Slot of the key, or -1. Arguments are already normalised (int32, packed, u8). */
  private find(src: number, dst: number, ports: number, proto: number): number {
    const hash = hashKey(this.seed, src, dst, ports, proto);
    const want = metaFor(hash, proto);
    const { meta, mask } = this;
    let i = hash & mask;
    // Terminates: maxEntries < capacity, so some slot is always empty.
    for (;;) {
      const m = meta[i];
      if (m === want) {
        if (this.rowMatches(i, src, dst, ports)) return i;
      } else if (m === 0) {
        return -1;
      }
      i = (i + 1) & mask;
    }
  }

  private rowMatches(slot: number, src: number, dst: number, ports: number): boolean {
    const r = slot * ROW_WORDS;
    const rows = this.rows;
    return rows[r + ROW_SRC] === src && rows[r + ROW_DST] === dst && rows[r + ROW_PORTS] === ports;
  }

  private writeRow(slot: number, src: number, dst: number, ports: number, value: number): void {
    const r = slot * ROW_WORDS;
    const rows = this.rows;
    rows[r + ROW_SRC] = src;
    rows[r + ROW_DST] = dst;
    rows[r + ROW_PORTS] = ports;
    rows[r + ROW_VALUE] = value;
  }

  /** The slot the key in `slot` hashes to. The hash is recomputed: storing it would cost 4 bytes a slot. */
  private homeOf(slot: number): number {
    const r = slot * ROW_WORDS;
    const rows = this.rows;
    return hashKey(this.seed, rows[r + ROW_SRC], rows[r + ROW_DST], rows[r + ROW_PORTS], this.meta[slot] & 0xff) & this.mask;
  }

  /**
   * Empties `hole` and walks the rest of its probe chain, moving back every entry whose
   * home is not between the hole and where it sits (cyclically): each entry stays
   * reachable from its home without a gap, and nothing marks the dead slot.
   */
  private closeHole(hole: number): void {
    const { meta, rows, mask } = this;
    let j = (hole + 1) & mask;
    while (meta[j] !== 0) {
      const distanceFromHome = (j - this.homeOf(j)) & mask;
      if (distanceFromHome >= ((j - hole) & mask)) {
        // Four word stores: cheaper than a copyWithin call for 16 bytes.
        const from = j * ROW_WORDS;
        const to = hole * ROW_WORDS;
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
  }
}
