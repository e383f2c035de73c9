/**
 * A neighbour table (the ARP cache of the node's uplink), as the kernel's neighbour
 * subsystem keeps it for an Ethernet interface: IPv4 address -> MAC, learned from ARP
 * requests and replies, forgotten after `reachableNs` without confirmation, and one frame
 * held per address while its ARP request is outstanding (the kernel holds a few; holding
 * one keeps memory bounded and loses nothing a retransmitting sender would not resend).
 *
 * Bounded: at most `maxEntries` addresses and `maxPending` held frames; beyond that new
 * addresses are not learned and frames are not held (counted). Time is passed in.
 */
import { writeMac } from '../packet/addr.js';

function withNumber(mac: number): Uint8Array {
  const bytes = new Uint8Array(6);
  writeMac(bytes, 0, mac);
  return bytes;
}

export interface NeighbourStats {
  learned: number;
  /** Frames held waiting for resolution, then released or dropped. */
  held: number;
  released: number;
  /** A second frame for a pending address, or no room to hold it. */
  holdDropped: number;
  /** An address not learned because the table was full. */
  tableFull: number;
}

interface Held {
  frame: Buffer;
  length: number;
  since: number;
}

export class NeighbourTable {
  /**
   * Keyed by the address as an int32 (`addr | 0`): a uint32 above 2^31 as a Map key is a
   * heap number per lookup. The MAC is kept as 6 bytes too, for the forwarding path.
   */
  private readonly macs = new Map<number, { mac: number; bytes: Uint8Array; confirmed: number }>();
  private readonly pending = new Map<number, Held>();
  readonly stats: NeighbourStats = { learned: 0, held: 0, released: 0, holdDropped: 0, tableFull: 0 };

  constructor(
    readonly maxEntries = 1024,
    readonly maxPending = 64,
    /** How long an entry stays usable without being confirmed (the kernel's base_reachable_time is 30 s). */
    readonly reachableNs = 30_000_000_000,
    /** How long a held frame waits for its ARP reply. */
    readonly holdNs = 3_000_000_000,
    /** Where the owner writes the time (ns) once per batch; `lookupBytes` reads it when not given `nowNs`. */
    private readonly clock = new Float64Array(1),
  ) {}

  /** The MAC for `addr`, or -1 when unknown or stale. */
  lookup(addr: number, nowNs: number): number {
    const key = addr | 0;
    return this.lookupBytes(key, nowNs) === undefined ? -1 : this.macs.get(key)!.mac;
  }

  /**
   * The forwarding path's lookup: `addr` as an int32, the MAC as the entry's 6 bytes (no
   * number is made), undefined when unknown or stale.
   */
  lookupBytes(addrInt32: number, nowNs: number = this.clock[0]): Uint8Array | undefined {
    const entry = this.macs.get(addrInt32);
    if (entry === undefined) return undefined;
    if (nowNs - entry.confirmed > this.reachableNs) {
      this.macs.delete(addrInt32);
      return undefined;
    }
    return entry.bytes;
  }

  /**
   * Records `addr` at `mac` (from an ARP request or reply naming it as sender) and returns
   * the frame held for it, if any, for the caller to send now.
   */
  learn(addr: number, mac: number, nowNs: number): Held | undefined {
    const key = addr | 0;
    const entry = this.macs.get(key);
    if (entry !== undefined) {
      entry.mac = mac;
      writeMac(entry.bytes, 0, mac);
      entry.confirmed = nowNs;
    } else if (this.macs.size < this.maxEntries) {
      this.macs.set(key, { mac, bytes: withNumber(mac), confirmed: nowNs });
      this.stats.learned++;
    } else {
      this.stats.tableFull++;
      return undefined;
    }
    const held = this.pending.get(key);
    if (held === undefined) return undefined;
    this.pending.delete(key);
    if (nowNs - held.since > this.holdNs) {
      this.stats.holdDropped++;
      return undefined;
    }
    this.stats.released++;
    return held;
  }

  /**
   * Holds a copy of the frame until `addr` resolves. Returns true when the caller should
   * send an ARP request (the first frame for the address, or the previous one expired).
   */
  hold(addr: number, frame: Uint8Array, offset: number, length: number, nowNs: number): boolean {
    const key = addr | 0;
    const held = this.pending.get(key);
    if (held !== undefined && nowNs - held.since <= this.holdNs) {
      this.stats.holdDropped++;
      return false;
    }
    if (held === undefined && this.pending.size >= this.maxPending) {
      this.stats.holdDropped++;
      return false;
    }
    const copy = held !== undefined && held.frame.length >= length ? held.frame : Buffer.alloc(Math.max(length, 128));
    copy.set(frame.subarray(offset, offset + length), 0);
    this.pending.set(key, { frame: copy, length, since: nowNs });
    this.stats.held++;
    return true;
  }

  entries(): { addr: number; mac: number; confirmedNs: number }[] {
    return [...this.macs].map(([addr, e]) => ({ addr: addr >>> 0, mac: e.mac, confirmedNs: e.confirmed }));
  }
}
