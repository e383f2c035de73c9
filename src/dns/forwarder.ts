/**
 * The forwarder: names outside the cluster go to upstream resolvers, as CoreDNS's `forward`
 * plugin sends them, with a cache in front (forward-cache.ts). This is the pure part, a
 * state machine; the node process does the socket I/O and calls back:
 *
 *     start(...)        → answer from the cache, or a query to send to upstream `i`
 *     reply(...)        → the upstream's answer, matched to its client and written for it
 *                          (or a retry: the next upstream, or the same one over TCP)
 *     poll(now)         → per expired query: a retry, or SERVFAIL for its client
 *     nextDeadline()    → when to call poll next
 *
 * Spoofing defences of RFC 5452: every upstream query gets a fresh random ID (from the
 * injected random source), and a reply is accepted only from the upstream the query went to,
 * with that ID, and with the same question. The upstream question is asked in lower case;
 * the client gets its own question back, case and all.
 */
import { CLASSIC_UDP_SIZE, DNS_HEADER_LEN, FLAG, HDR, OPCODE, OPCODE_MASK, OPCODE_SHIFT, RCODE, RCODE_MASK } from './constants.js';
import { ForwardCache, questionKey, type ForwardCacheOptions } from './forward-cache.js';
import { NameReader, wireNamesEqual } from './name.js';
import type { Query } from './query.js';
import { readRecords, RecordScratch, writeRecords, type RecordBlock } from './records.js';
import type { DnsResult, QueryContext, Transport } from './result.js';
import { MessageWriter, Section } from './writer.js';

export interface ForwarderOptions {
  /** How many upstream resolvers the caller has; queries name them by index. 0: nothing is forwarded. */
  readonly upstreams: number;
  /** A uniform [0, 1) source for query IDs: `Math.random` in the node, a seeded one in tests. */
  readonly random: () => number;
  /** Per attempt; 2000 ms by default. */
  readonly timeoutMs?: number;
  /** Attempts per client query across upstreams; at least 2 and one per upstream by default. */
  readonly attempts?: number;
  /** Queries in flight at most; beyond, clients get SERVFAIL at once. 1024 by default. */
  readonly maxPending?: number;
  /** Retry a truncated UDP answer over TCP to the same upstream (the caller must support it). True by default. */
  readonly upstreamTcp?: boolean;
  readonly cache?: ForwardCacheOptions;
}

/** What the forwarder remembers of a client while its query is upstream. */
class Client {
  addr = 0;
  port = 0;
  transport: Transport = 'udp';
  token = 0;
  id = 0;
  /** The client's RD and CD bits, echoed. */
  flags = 0;
  /** The question name as the client wrote it (its case), at `questionOffset`. */
  question: Uint8Array = EMPTY;
  questionOffset = 0;
  nameLength = 0;
  qtype = 0;
  qclass = 0;
  edns = false;
  dnssecOk = false;
  udpLimit = CLASSIC_UDP_SIZE;
  /**
   * Answer records to put before the upstream's (the CNAMEs of an ExternalName), already in
   * wire form. Such an answer is the kubernetes plugin's, not the forward plugin's: AA set, RA
   * not, NOERROR with the target's answer records alone (an upstream NXDOMAIN or NODATA leaves
   * the CNAMEs alone), and when the upstream fails the CNAMEs alone too (CoreDNS skips a
   * failed lookup of the target, plugin/backend_lookup.go).
   */
  prefix: Uint8Array | undefined = undefined;
  prefixCount = 0;
  /** When the client's query arrived (its context's `now`). */
  startedAt = 0;

  /**
   * Fills this record from the query. With `copy`, the question is copied out of the caller's
   * buffer (a forwarded query outlives it); without, it is referred to (answered right away).
   */
  fill(msg: Uint8Array, q: Query, ctx: QueryContext, chase: Chase | undefined, copy: boolean): this {
    this.addr = ctx.clientAddr;
    this.port = ctx.clientPort ?? 0;
    this.transport = ctx.transport;
    this.token = ctx.token ?? 0;
    this.id = q.id;
    this.flags = q.flags & (FLAG.RD | FLAG.CD);
    this.question = copy ? new Uint8Array(msg.subarray(q.nameOffset, q.nameOffset + q.name.length)) : msg;
    this.questionOffset = copy ? 0 : q.nameOffset;
    this.nameLength = q.name.length;
    this.qtype = q.qtype;
    this.qclass = q.qclass;
    this.edns = q.edns;
    this.dnssecOk = q.dnssecOk;
    this.udpLimit = q.udpLimit;
    this.prefix = chase?.prefix;
    this.prefixCount = chase?.prefixCount ?? 0;
    this.startedAt = ctx.now;
    return this;
  }
}

const EMPTY = new Uint8Array(0);

interface Pending {
  id: number;
  upstream: number;
  transport: Transport;
  attempts: number;
  deadline: number;
  readonly key: string;
  /** The upstream question name, lower case, uncompressed. */
  readonly qname: Uint8Array;
  readonly client: Client;
}

/** The name to resolve upstream when it is not the question's own (an ExternalName's target). */
export interface Chase {
  /** Lower-case uncompressed wire name. */
  readonly name: Uint8Array;
  /** The answer records already written after the question (pointers into the question stay valid). */
  readonly prefix: Uint8Array;
  readonly prefixCount: number;
}

export class ForwarderStats {
  forwarded = 0;
  retries = 0;
  timeouts = 0;
  tcpRetries = 0;
  /** Replies that matched no query in flight, came from the wrong upstream, or asked another question. */
  mismatched = 0;
  malformed = 0;
  failures = 0;
  overloaded = 0;
  /** Forward-cache hits whose answer is NXDOMAIN (CoreDNS's cache `denial` hits). */
  cacheDenialHits = 0;
}

export class Forwarder {
  readonly cache: ForwardCache;
  readonly stats = new ForwarderStats();
  /** Queries written for each upstream, retries included (coredns_forward_requests_total{to}). */
  readonly sentTo: Float64Array;
  /** How many upstream resolvers there are (0: nothing is forwarded). */
  readonly upstreams: number;
  private readonly random: () => number;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly maxPending: number;
  private readonly upstreamTcp: boolean;
  /** In flight, by upstream ID, in deadline order (every (re)send re-inserts with a new ID). */
  private readonly pending = new Map<number, Pending>();
  private readonly reader = new NameReader();
  private readonly scratch = new RecordScratch();
  private readonly w = new MessageWriter();
  /** The client of a query answered at once (cache hit, failure): filled, used, forgotten. */
  private readonly oneShot = new Client();
  /** Where the question of the reply being read ends (set by `sameQuestion`). */
  private questionEnd = 0;

  constructor(options: ForwarderOptions) {
    this.upstreams = options.upstreams;
    this.random = options.random;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.attempts = options.attempts ?? Math.max(2, options.upstreams);
    // At most half the ID space in flight: a fresh random ID is then found in a draw or two.
    this.maxPending = Math.min(options.maxPending ?? 1024, 0x8000);
    this.upstreamTcp = options.upstreamTcp ?? true;
    this.cache = new ForwardCache(options.cache);
    this.sentTo = new Float64Array(Math.max(0, options.upstreams));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** When `poll` has work next, on the caller's clock; undefined when nothing is in flight. */
  nextDeadline(): number | undefined {
    for (const p of this.pending.values()) return p.deadline;
    return undefined;
  }

  /**
   * A client's query (parsed `q` of `msg`) for a name outside the zone, or an ExternalName's
   * target (`chase`). Answers from the cache, or writes the upstream query.
   */
  start(msg: Uint8Array, q: Query, ctx: QueryContext, chase: Chase | undefined, out: Uint8Array, offset: number, result: DnsResult): DnsResult {
    const qname = chase?.name ?? q.name.bytes;
    const qnameLength = chase?.name.length ?? q.name.length;
    const key = questionKey(qname, qnameLength, q.qtype, q.qclass);
    const cached = this.cache.get(key, ctx.now);
    if (cached !== undefined) {
      if (cached.rcode === RCODE.NXDOMAIN) this.stats.cacheDenialHits++;
      const client = this.oneShot.fill(msg, q, ctx, chase, false);
      this.writeAnswer(client, cached.rcode, cached.block, ForwardCache.age(cached, ctx.now), ForwardCache.remaining(cached, ctx.now), false, out, offset, result);
      return result;
    }
    if (this.upstreams === 0) return this.fail(this.oneShot.fill(msg, q, ctx, chase, false), RCODE.REFUSED, out, offset, result);
    if (this.pending.size >= this.maxPending) {
      this.stats.overloaded++;
      return this.fail(this.oneShot.fill(msg, q, ctx, chase, false), RCODE.SERVFAIL, out, offset, result);
    }
    const client = new Client().fill(msg, q, ctx, chase, true);
    const p: Pending = { id: 0, upstream: 0, transport: 'udp', attempts: 0, deadline: 0, key, qname: qname.slice(0, qnameLength), client };
    this.stats.forwarded++;
    return this.send(p, 0, 'udp', ctx.now, out, offset, result);
  }

  /**
   * A datagram (or TCP message) from upstream `upstream`. Writes the client's answer, a retry,
   * or sets `drop` when the reply is refused (counted in `stats`).
   */
  reply(msg: Uint8Array, start: number, length: number, upstream: number, now: number, out: Uint8Array, offset: number, result: DnsResult): DnsResult {
    result.reset();
    const end = start + length;
    if (length < DNS_HEADER_LEN || end > msg.length) {
      this.stats.malformed++;
      return result;
    }
    const id = u16(msg, start + HDR.ID);
    const flags = u16(msg, start + HDR.FLAGS);
    const p = this.pending.get(id);
    if (p === undefined || p.upstream !== upstream || (flags & FLAG.QR) === 0 || ((flags >>> OPCODE_SHIFT) & OPCODE_MASK) !== OPCODE.QUERY || !this.sameQuestion(msg, start, end, p)) {
      this.stats.mismatched++;
      return result;
    }
    if ((flags & FLAG.TC) !== 0 && p.transport === 'udp' && this.upstreamTcp) {
      this.stats.tcpRetries++;
      this.pending.delete(p.id);
      return this.send(p, p.upstream, 'tcp', now, out, offset, result);
    }
    const counts: [number, number, number] = [u16(msg, start + HDR.ANCOUNT), u16(msg, start + HDR.NSCOUNT), u16(msg, start + HDR.ARCOUNT)];
    const block = readRecords(msg, start, end, this.questionEnd, counts, this.scratch);
    if (typeof block === 'number') {
      this.stats.malformed++;
      return this.retryOrFail(p, now, out, offset, result);
    }
    const rcode = (block.extendedRcode << 4) | (flags & RCODE_MASK);
    if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) {
      // The upstream failed (SERVFAIL, REFUSED, FORMERR, NOTIMP, BADCOOKIE...): another may not.
      this.stats.failures++;
      return this.retryOrFail(p, now, out, offset, result);
    }
    this.pending.delete(p.id);
    const truncated = (flags & FLAG.TC) !== 0;
    const lifetime = truncated ? 0 : this.cache.lifetime(rcode, block);
    if (lifetime > 0) this.cache.put(p.key, rcode, block, now);
    // What is kept is served no longer than it is kept; what is not kept goes as it came.
    this.writeAnswer(p.client, rcode, block, 0, lifetime > 0 ? lifetime : 0xffffffff, truncated, out, offset, result);
    return result;
  }

  /**
   * Handles the oldest query in flight if its deadline has passed: a retry to the next
   * upstream, or SERVFAIL for its client once the attempts are spent. Returns undefined when
   * nothing is due; call again until it does.
   */
  poll(now: number, out: Uint8Array, offset: number, result: DnsResult): DnsResult | undefined {
    let first: Pending | undefined;
    for (const p of this.pending.values()) {
      first = p;
      break;
    }
    if (first === undefined || first.deadline > now) return undefined;
    this.stats.timeouts++;
    return this.retryOrFail(first, now, out, offset, result);
  }

  private retryOrFail(p: Pending, now: number, out: Uint8Array, offset: number, result: DnsResult): DnsResult {
    this.pending.delete(p.id);
    if (p.attempts < this.attempts) {
      this.stats.retries++;
      return this.send(p, (p.upstream + 1) % this.upstreams, 'udp', now, out, offset, result);
    }
    return this.fail(p.client, RCODE.SERVFAIL, out, offset, result);
  }

  /** Writes the upstream query for `p` with a fresh ID and puts it in flight. */
  private send(p: Pending, upstream: number, transport: Transport, now: number, out: Uint8Array, offset: number, result: DnsResult): DnsResult {
    // Random IDs (RFC 5452); after a few collisions, the next free one, so that a poor random
    // source (a constant, in a test) cannot spin here. maxPending keeps free IDs plentiful.
    let id = Math.floor(this.random() * 0x10000) & 0xffff;
    for (let tries = 0; this.pending.has(id); tries++) id = tries < 8 ? Math.floor(this.random() * 0x10000) & 0xffff : (id + 1) & 0xffff;
    p.id = id;
    p.upstream = upstream;
    p.transport = transport;
    p.attempts++;
    p.deadline = now + this.timeoutMs;
    this.pending.set(id, p);
    this.sentTo[upstream]++;
    const w = this.w;
    w.begin(out, offset, out.length - offset);
    w.header(id, FLAG.RD, 1);
    w.question(p.qname, 0, p.qname.length, p.client.qtype, p.client.qclass);
    // EDNS0 so that answers up to 1232 bytes come over UDP; no DO: podwire does not validate.
    w.complete(true, false, 0);
    result.reset();
    result.action = 'forward';
    result.length = w.length;
    result.upstream = upstream;
    result.transport = transport;
    return result;
  }

  /** Whether the reply asks exactly the question sent (RFC 5452 §9.1); leaves `questionEnd` past it. */
  private sameQuestion(msg: Uint8Array, start: number, end: number, p: Pending): boolean {
    if (u16(msg, start + HDR.QDCOUNT) !== 1) return false;
    const r = this.reader;
    if (r.read(msg, start, end, start + DNS_HEADER_LEN, true) !== 0) return false;
    const pos = r.end;
    if (pos + 4 > end || r.length !== p.qname.length || !wireNamesEqual(r.bytes, 0, p.qname, 0, r.length)) return false;
    if (u16(msg, pos) !== p.client.qtype || u16(msg, pos + 2) !== p.client.qclass) return false;
    this.questionEnd = pos + 4;
    return true;
  }

  private writeAnswer(c: Client, rcode: number, block: RecordBlock, age: number, cap: number, truncated: boolean, out: Uint8Array, offset: number, result: DnsResult): void {
    const w = this.w;
    const room = out.length - offset;
    w.begin(out, offset, room);
    // A chase keeps the target's answer records and nothing else, under the plugin's NOERROR
    // (backend_lookup.go appends the lookup's Answer alone), whatever the upstream said.
    const chase = c.prefix !== undefined;
    if (chase) rcode = RCODE.NOERROR;
    w.header(c.id, FLAG.QR | answerFlags(c) | c.flags | (truncated ? FLAG.TC : 0) | (rcode & RCODE_MASK), 1);
    w.question(c.question, c.questionOffset, c.nameLength, c.qtype, c.qclass);
    w.startSection(Section.Answer);
    if (c.prefix !== undefined) writeChasePrefix(w, c.prefix, c.prefixCount);
    writeRecords(w, block, age, cap, chase ? 1 : 3);
    w.startSection(Section.Additional);
    w.complete(c.edns, c.dnssecOk, 0);
    this.finish(c, rcode, room, result);
  }

  private fail(c: Client, rcode: number, out: Uint8Array, offset: number, result: DnsResult): DnsResult {
    const w = this.w;
    const room = out.length - offset;
    w.begin(out, offset, room);
    // A chase's CNAMEs are the plugin's answer (AA); a failure is the server's own error,
    // written as CoreDNS writes it (SetRcode: no RA).
    const chase = c.prefix !== undefined;
    if (chase) rcode = RCODE.NOERROR;
    w.header(c.id, FLAG.QR | (chase ? FLAG.AA : 0) | c.flags | rcode, 1);
    w.question(c.question, c.questionOffset, c.nameLength, c.qtype, c.qclass);
    if (c.prefix !== undefined) {
      w.startSection(Section.Answer);
      writeChasePrefix(w, c.prefix, c.prefixCount);
      w.startSection(Section.Additional);
    }
    w.complete(c.edns, c.dnssecOk, 0);
    this.finish(c, rcode, room, result);
    return result;
  }

  private finish(c: Client, rcode: number, room: number, result: DnsResult): void {
    const w = this.w;
    result.reset();
    result.length = w.fit(c.transport === 'udp' ? Math.min(room, c.udpLimit) : room);
    if (result.length === 0) return; // an out buffer too small for a header: drop
    result.action = 'answer';
    result.rcode = rcode;
    result.truncated = w.truncated;
    result.transport = c.transport;
    result.clientAddr = c.addr;
    result.clientPort = c.port;
    result.token = c.token;
    result.qtype = c.qtype;
    result.startedAt = c.startedAt;
  }
}

/** The forward plugin passes on an upstream's RA; the kubernetes plugin's chase answers are authoritative, without RA. */
/** The CNAMEs the zone answered before the chase went upstream, as the answer's first records. */
function writeChasePrefix(w: MessageWriter, prefix: Uint8Array, count: number): void {
  w.bytes(prefix, 0, prefix.length);
  w.counts[Section.Answer] += count;
}

function answerFlags(c: Client): number {
  return c.prefix !== undefined ? FLAG.AA : FLAG.RA;
}

function u16(buf: Uint8Array, pos: number): number {
  return (buf[pos] << 8) | buf[pos + 1];
}
