/**
 * Cluster DNS: CoreDNS's kubernetes plugin and its forward and cache plugins, rebuilt as pure
 * functions and tables (no I/O, no clock: time is passed in).
 *
 * The contract, which every module here keeps, in the manner of src/packet:
 *
 * 1. Bad bytes never throw. `parseQuery` and the name reader return problem numbers; the
 *    responder turns them into FORMERR, NOTIMP, BADVERS or a drop, and counts them.
 * 2. Every read of a message is bounded by the message's own window `[start, start + length)`,
 *    counted from its start (compression pointers too), never by the buffer's end.
 * 3. Every write goes through `MessageWriter`, which checks its limit before writing; an answer
 *    that does not fit the client's UDP size loses its additional section, else is cut to its
 *    question with TC set.
 * 4. The query path allocates nothing on a precompiled answer; the plain path allocates a few
 *    label strings; forwarding allocates per upstream query (it waits on a round trip anyway).
 * 5. Results are plain numbers and one reusable `DnsResult`; counters are numbers too.
 *
 * The node's part: build a zone with `buildZone(cluster, computeEndpoints(...), opts)` and a
 * `Responder`; call `respond()` per query frame, `upstreamReply()` per upstream datagram,
 * `poll(now)` when `nextDeadline()` passes, `setZone()` when the cluster or readiness changes.
 *
 * The codec is podwire's own (name.ts, query.ts, writer.ts, records.ts), not a library. The
 * design card's node-dns is a 0.1.0 left long ago; dns-packet is well kept, and the tests use
 * it as the independent decoder of every answer. But on the hot path it loses on each job
 * (bench/dns.bench.ts, median on a shared 2-core machine): reading a query 231 ns here against
 * 1,939 ns, writing an A answer 481 ns against 3,984 ns (objects and strings in, a fresh
 * result out), reading an upstream answer 2.3 µs against 5.4 µs; and it does not compress
 * names when encoding (its answers are 1.4 times the size, which means earlier TC and TCP
 * retries), keeps module-level mutable state (`encode.bytes`) and throws on bad input. A view
 * parse that allocates nothing and a bounded writer with compression are what the responder
 * needs, and they are small.
 */
export * from './constants.js';
export { NameError, NameReader, skipName, textToWire, wireToText, wireNamesEqual } from './name.js';
export { parseQuery, Query, QueryProblem, QUERY_PROBLEM_NAMES, questionHash } from './query.js';
export { MessageWriter, Section } from './writer.js';
export { parseRequest, relativeLabels, type RecordRequest, type RequestKind } from './request.js';
export {
  buildZone,
  dashedIpv4,
  hasReverse,
  reverseNames,
  DNS_SCHEMA_VERSION,
  DNS_SCHEMA_VERSION_TTL,
  DNS_SERVICE_NAME,
  DNS_SERVICE_NAMESPACE,
  reverseName,
  soaFor,
  srvWeight,
  zoneLines,
  type ServiceKind,
  type Soa,
  type Zone,
  type ZoneOptions,
  type ZoneRecord,
  ZoneService,
} from './zone.js';
export { lookup, parseDashedIpv4, type LookupResult } from './lookup.js';
export { QNAME, writeA, writeCname, writeNs, writePtr, writeSoa, writeSrvInQuestionCase, writeTxt, type Owner } from './builders.js';
export { resolveLabels, ZoneOutcome, ZoneResponder } from './answer.js';
export { AnswerCache, EdnsShape, ednsShape, type AnswerCacheOptions } from './answer-cache.js';
export { readRecords, RecordScratch, RecordsError, writeRecords, type RecordBlock } from './records.js';
export { ForwardCache, questionKey, type CachedAnswer, type ForwardCacheOptions } from './forward-cache.js';
export { Forwarder, ForwarderStats, type Chase, type ForwarderOptions } from './forwarder.js';
export { allowed, clientPolicy, type ClientPolicy } from './policy.js';
export { countersSnapshot, DnsCounters, DropReason, type DnsStatus } from './stats.js';
export { DnsResult, type DnsAction, type QueryContext, type Transport } from './result.js';
export { Responder, type ResponderOptions } from './responder.js';
