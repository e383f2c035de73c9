/**
 * Counters: per response code, per query type, per reason a query was refused or dropped.
 * Typed arrays and plain fields on the query path; `snapshot` turns them into the plain
 * object `podwire status --json` prints (every key always present, so the schema is stable).
 */
import { BucketCounts, COREDNS_TIME_BUCKETS } from '../metrics/histogram.js';
import { COUNTED_TYPES, rcodeName, typeName } from './constants.js';
import { QUERY_PROBLEM_NAMES, QueryProblem } from './query.js';

/** Rcodes 0-23 counted one by one (RFC 6895 registry's assigned range); anything else as `other`. */
export const RCODE_SLOTS = 24;
const OTHER_TYPE = COUNTED_TYPES.length;
const TYPE_INDEX = new Uint8Array(65536).fill(OTHER_TYPE);
COUNTED_TYPES.forEach((t, i) => (TYPE_INDEX[t] = i));

export const DropReason = {
  /** The client is not a pod or loopback (policy.ts). */
  NotAllowed: 0,
  /** Shorter than a DNS header. */
  Short: 1,
  /** QR set: a response where a query belongs. */
  Response: 2,
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];
const DROP_NAMES = ['not-allowed', 'short', 'response'];

/**
 * Who wrote a response, as CoreDNS's `plugin` label of coredns_dns_responses_total names
 * it: the server itself (errors before the chain), the cache, the zone (the kubernetes
 * plugin) or the forwarder.
 */
export const Writer = {
  Server: 0,
  Cache: 1,
  Kubernetes: 2,
  Forward: 3,
} as const;
export type Writer = (typeof Writer)[keyof typeof Writer];
export const WRITER_NAMES: readonly string[] = ['', 'cache', 'kubernetes', 'forward'];

/** Query type slots: COUNTED_TYPES in order, then `other`. */
export const TYPE_SLOTS = COUNTED_TYPES.length + 1;
/** The transports a query came by, as CoreDNS's `proto` label: slot 0 udp, slot 1 tcp. */
export const PROTO_NAMES: readonly string[] = ['udp', 'tcp'];

/** Which slot of the per-type counters `qtype` is counted in. */
export function typeSlot(qtype: number): number {
  return TYPE_INDEX[qtype & 0xffff];
}

/** The type label of a slot: the type's mnemonic, or `other`. */
export function typeSlotName(slot: number): string {
  return slot < COUNTED_TYPES.length ? typeName(COUNTED_TYPES[slot]) : 'other';
}

export class DnsCounters {
  queries = 0;
  /** Answers from the zone (and errors), not counting forwarded ones. */
  authoritative = 0;
  truncated = 0;
  answerCacheHits = 0;
  answerCacheMisses = 0;
  /** Answer-cache hits whose answer is NXDOMAIN: CoreDNS's cache counts them as `denial`. */
  answerCacheDenials = 0;
  readonly rcodes = new Float64Array(RCODE_SLOTS + 1);
  readonly qtypes = new Float64Array(COUNTED_TYPES.length + 1);
  /** Queries by transport and type: requests[proto * TYPE_SLOTS + typeSlot]. */
  readonly requests = new Float64Array(PROTO_NAMES.length * TYPE_SLOTS);
  /** Responses by writer and rcode: responses[writer * (RCODE_SLOTS + 1) + rcode slot]. */
  readonly responses = new Float64Array(WRITER_NAMES.length * (RCODE_SLOTS + 1));
  /** Time from a query's arrival to its answer being sent, per type slot (seconds, CoreDNS's buckets). */
  readonly durations: readonly BucketCounts[] = Array.from({ length: TYPE_SLOTS }, () => new BucketCounts(COREDNS_TIME_BUCKETS));
  /** FORMERR, NOTIMP and BADVERS by cause (query.ts `QueryProblem`). */
  readonly problems = new Float64Array(QUERY_PROBLEM_NAMES.length);
  readonly drops = new Float64Array(DROP_NAMES.length);

  countType(qtype: number, tcp: boolean): void {
    const slot = TYPE_INDEX[qtype & 0xffff];
    this.qtypes[slot]++;
    this.requests[(tcp ? TYPE_SLOTS : 0) + slot]++;
  }

  countRcode(rcode: number, writer: Writer): void {
    const slot = rcode >= 0 && rcode < RCODE_SLOTS ? rcode : RCODE_SLOTS;
    this.rcodes[slot]++;
    this.responses[writer * (RCODE_SLOTS + 1) + slot]++;
  }

  /** A query of type `qtype` was answered `seconds` after it arrived. */
  observeDuration(qtype: number, seconds: number): void {
    this.durations[TYPE_INDEX[qtype & 0xffff]].observe(seconds);
  }

  reset(): void {
    this.queries = this.authoritative = this.truncated = this.answerCacheHits = this.answerCacheMisses = this.answerCacheDenials = 0;
    this.rcodes.fill(0);
    this.qtypes.fill(0);
    this.requests.fill(0);
    this.responses.fill(0);
    for (const d of this.durations) {
      d.counts.fill(0);
      d.sum = d.count = 0;
    }
    this.problems.fill(0);
    this.drops.fill(0);
  }
}

/** The counters as `podwire status --json` shows them. */
export interface DnsStatus {
  readonly queries: number;
  readonly authoritative: number;
  readonly truncated: number;
  /** Responses sent, by rcode name (`NOERROR`, `NXDOMAIN`, ..., `RCODE9`, `other`). */
  readonly rcodes: Readonly<Record<string, number>>;
  /** Queries by type name (`A`, `AAAA`, `SRV`, ..., `other`). */
  readonly qtypes: Readonly<Record<string, number>>;
  /** Queries answered FORMERR, NOTIMP or BADVERS, by cause. */
  readonly malformed: Readonly<Record<string, number>>;
  readonly dropped: Readonly<Record<string, number>>;
  readonly answerCache: { readonly hits: number; readonly misses: number; readonly entries: number };
  readonly forward: Readonly<Record<string, number>>;
}

export function countersSnapshot(c: DnsCounters, answerCacheEntries: number, forward: Readonly<Record<string, number>>): DnsStatus {
  const rcodes: Record<string, number> = {};
  for (let i = 0; i < RCODE_SLOTS; i++) rcodes[rcodeName(i)] = c.rcodes[i];
  rcodes.other = c.rcodes[RCODE_SLOTS];
  const qtypes: Record<string, number> = {};
  COUNTED_TYPES.forEach((t, i) => (qtypes[typeName(t)] = c.qtypes[i]));
  qtypes.other = c.qtypes[OTHER_TYPE];
  const malformed: Record<string, number> = {};
  // Short and Response are drops, not answers; Ok is no problem.
  for (let i = QueryProblem.Opcode; i < QUERY_PROBLEM_NAMES.length; i++) malformed[QUERY_PROBLEM_NAMES[i]] = c.problems[i];
  const dropped: Record<string, number> = {};
  DROP_NAMES.forEach((name, i) => (dropped[name] = c.drops[i]));
  return {
    queries: c.queries,
    authoritative: c.authoritative,
    truncated: c.truncated,
    rcodes,
    qtypes,
    malformed,
    dropped,
    answerCache: { hits: c.answerCacheHits, misses: c.answerCacheMisses, entries: answerCacheEntries },
    forward,
  };
}
