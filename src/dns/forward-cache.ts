/**
 * The forwarder's cache of upstream answers: bounded, TTL-respecting, with negative caching.
 *
 * - An entry lives for the smallest TTL of its answer section, capped at `maxTtl` (CoreDNS's
 *   cache plugin caps at 3600 s; kubeadm's Corefile says `cache 30`, which is
 *   `{ maxTtl: 30, maxNegativeTtl: 30 }` here).
 * - Negative answers (NXDOMAIN, and NOERROR without answers: NODATA) live for
 *   min(SOA TTL, SOA MINIMUM) of the SOA in their authority section (RFC 2308 §5), capped at
 *   `maxNegativeTtl`; without an SOA they are not kept (RFC 2308 §5: SHOULD NOT).
 * - Served TTLs decay: each record's TTL is lowered by the whole seconds the entry has spent
 *   here, so a client never holds a record longer than the upstream allowed.
 * - SERVFAIL, REFUSED and other failures, truncated answers and TTL 0 are never kept.
 * - At most `maxEntries` entries; the least recently used goes first (a Map keeps insertion
 *   order; a hit re-inserts). Expired entries go when met.
 *
 * The clock is the caller's `now` in milliseconds: nothing here reads one.
 */
import { RCODE } from './constants.js';
import type { RecordBlock } from './records.js';

export interface ForwardCacheOptions {
  readonly maxEntries?: number;
  /** Seconds; 3600 by default. */
  readonly maxTtl?: number;
  /** Seconds; 1800 by default. */
  readonly maxNegativeTtl?: number;
}

export interface CachedAnswer {
  readonly rcode: number;
  readonly block: RecordBlock;
  /** Milliseconds, the caller's clock. */
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly negative: boolean;
}

export class ForwardCache {
  readonly maxEntries: number;
  readonly maxTtl: number;
  readonly maxNegativeTtl: number;
  hits = 0;
  misses = 0;
  evictions = 0;
  private readonly entries = new Map<string, CachedAnswer>();

  constructor(options: ForwardCacheOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
    this.maxTtl = options.maxTtl ?? 3600;
    this.maxNegativeTtl = options.maxNegativeTtl ?? 1800;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string, now: number): CachedAnswer | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    if (now >= entry.expiresAt || now < entry.storedAt) {
      // Expired, or the caller's clock went backwards: either way the TTL cannot be trusted.
      this.misses++;
      return undefined;
    }
    this.entries.set(key, entry);
    this.hits++;
    return entry;
  }

  /**
   * How long (seconds) an answer may be kept under RFC 2308 and the caps; 0 when it must not be.
   */
  lifetime(rcode: number, block: RecordBlock): number {
    const negative = rcode === RCODE.NXDOMAIN || (rcode === RCODE.NOERROR && block.counts[0] === 0);
    if (negative) return block.negativeTtl < 0 ? 0 : Math.min(block.negativeTtl, this.maxNegativeTtl);
    if (rcode !== RCODE.NOERROR) return 0;
    // An answer that ends in NODATA after a CNAME also carries an SOA: the shorter one rules.
    let ttl = block.minAnswerTtl;
    if (block.negativeTtl >= 0) ttl = Math.min(ttl, block.negativeTtl);
    return Math.min(ttl, this.maxTtl);
  }

  /** Keeps the answer if it may be kept; returns whether it was. */
  put(key: string, rcode: number, block: RecordBlock, now: number): boolean {
    const seconds = this.lifetime(rcode, block);
    if (seconds <= 0) return false;
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.evictions++;
    }
    const negative = rcode === RCODE.NXDOMAIN || block.counts[0] === 0;
    this.entries.set(key, { rcode, block, storedAt: now, expiresAt: now + seconds * 1000, negative });
    return true;
  }

  /** Whole seconds `entry` has been kept at `now`: what its TTLs are lowered by. */
  static age(entry: CachedAnswer, now: number): number {
    return Math.floor((now - entry.storedAt) / 1000);
  }

  /** Whole seconds `entry` has left at `now` (rounded up: a live entry never serves TTL 0). */
  static remaining(entry: CachedAnswer, now: number): number {
    return Math.ceil((entry.expiresAt - now) / 1000);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The cache key of a question: its lower-cased wire name, type and class. */
export function questionKey(name: Uint8Array, nameLength: number, qtype: number, qclass: number): string {
  let key = '';
  for (let i = 0; i < nameLength; i++) key += String.fromCharCode(name[i]);
  return `${key}/${qtype}/${qclass}`;
}
