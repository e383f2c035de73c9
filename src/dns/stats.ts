/**
 * Counters: per response code, per query type, per reason a query was refused or dropped.
 * Typed arrays and plain fields on the query path; `snapshot` turns them into the plain
 * object `podwire status --json` prints (every key always present, so the schema is stable).
 */
import { COUNTED_TYPES, rcodeName, typeName } from './constants.js';
import { QUERY_PROBLEM_NAMES, QueryProblem } from './query.js';

/** Rcodes 0-23 counted one by one (RFC 6895 registry's assigned range); anything else as `other`. */
const RCODE_SLOTS = 24;
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

export class DnsCounters {
  queries = 0;
  /** Answers from the zone (and errors), not counting forwarded ones. */
  authoritative = 0;
  truncated = 0;
  answerCacheHits = 0;
  answerCacheMisses = 0;
  readonly rcodes = new Float64Array(RCODE_SLOTS + 1);
  readonly qtypes = new Float64Array(COUNTED_TYPES.length + 1);
  /** FORMERR, NOTIMP and BADVERS by cause (query.ts `QueryProblem`). */
  readonly problems = new Float64Array(QUERY_PROBLEM_NAMES.length);
  readonly drops = new Float64Array(DROP_NAMES.length);

  countType(qtype: number): void {
    this.qtypes[TYPE_INDEX[qtype & 0xffff]]++;
  }

  countRcode(rcode: number): void {
    this.rcodes[rcode >= 0 && rcode < RCODE_SLOTS ? rcode : RCODE_SLOTS]++;
  }

  reset(): void {
    this.queries = this.authoritative = this.truncated = this.answerCacheHits = this.answerCacheMisses = 0;
    this.rcodes.fill(0);
    this.qtypes.fill(0);
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
