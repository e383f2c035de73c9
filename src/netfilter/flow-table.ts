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
 *   that pile onto one probe chain on one node do not on the next (see `openHash`).
 *
 * Layout: the table extends `OpenHash` (src/tables/open-hash.ts), keyed by (src, dst,
 * sport<<16|dport) with the protocol as the key byte: 16-byte rows four to a cache line, the
 * protocol and a tag of the hash in metadata beside them, so a hit usually costs one line
 * and a miss usually touches no row at all; backward-shift deletion, so no tombstones.
 */
import { CLAIM_EXISTED, CLAIM_FULL, CLAIM_SLOT_MASK, MAX_OPEN_HASH_LOAD, NO_SLOT, OpenHash, openHash } from '../tables/open-hash.js';

// Local consts of the core's results, which V8 folds into lookup and insert (an imported
// binding it loads on every call; see IPPROTO in src/packet/ipv4.ts).
const ABSENT = NO_SLOT;
const FULL = CLAIM_FULL;
const EXISTED = CLAIM_EXISTED;
const SLOT_MASK = CLAIM_SLOT_MASK;

export const FLOW_NOT_FOUND = -1;

/** The largest share of slots that may be occupied: beyond it linear probes lengthen fast. */
export const MAX_LOAD_FACTOR = MAX_OPEN_HASH_LOAD;

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

/**
 * The table's hash of a tuple under `seed`, as an int32; a key's home slot is
 * `flowHash(...) & (capacity - 1)`. Exported so that tests can build tuples that
 * collide on purpose.
 */
export function flowHash(seed: number, srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number): number {
  return openHash(seed | 0, srcAddr | 0, dstAddr | 0, packPorts(srcPort, dstPort), proto & 0xff);
}

function packPorts(srcPort: number, dstPort: number): number {
  return ((srcPort & 0xffff) << 16) | (dstPort & 0xffff);
}

/** Size, capacity, clear and totalProbeDistance are the core's (OpenHash). */
export class FlowTable extends OpenHash {
  /**
   * @param maxEntries the bound on `size`, 1 to MAX_FLOW_ENTRIES.
   * @param seed any uint32: the hash seed (see the module comment).
   * Throws RangeError on a bad `maxEntries`: a configuration error, not a packet.
   */
  constructor(maxEntries: number, seed: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_FLOW_ENTRIES) {
      throw new RangeError(`FlowTable maxEntries must be an integer from 1 to ${MAX_FLOW_ENTRIES}, got ${maxEntries}`);
    }
    super({ maxEntries, maxLoad: MAX_LOAD_FACTOR, minCapacity: 8, seed });
  }

  /** `byteLength / maxEntries`: what each flow the table can hold costs, full or not. */
  get bytesPerEntry(): number {
    return this.byteLength / this.maxEntries;
  }

  /** The value stored for the tuple, or FLOW_NOT_FOUND. */
  lookup(srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number): number {
    const slot = this.find(srcAddr, dstAddr, packPorts(srcPort, dstPort), proto);
    return slot === ABSENT ? FLOW_NOT_FOUND : this.valueAt(slot) >>> 0;
  }

  /** Stores `value` (a uint32) for the tuple: Added, Replaced or Full (see InsertResult). */
  insert(srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number, value: number): InsertResult {
    const claimed = this.claim(srcAddr, dstAddr, packPorts(srcPort, dstPort), proto);
    if (claimed === FULL) return InsertResult.Full;
    this.setValueAt(claimed & SLOT_MASK, value);
    return (claimed & EXISTED) !== 0 ? InsertResult.Replaced : InsertResult.Added;
  }

  /** Removes the tuple; false when it was not there. */
  delete(srcAddr: number, dstAddr: number, srcPort: number, dstPort: number, proto: number): boolean {
    return this.remove(srcAddr, dstAddr, packPorts(srcPort, dstPort), proto);
  }
}
