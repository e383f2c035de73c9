/**
 * The responder: one query frame in, one action out. The chain, in the order CoreDNS's
 * default Corefile runs its plugins, each with a clear rule about who writes the reply:
 *
 * 1. policy   — clients outside the pod CIDR and loopback: dropped, nothing written.
 * 2. parse    — shorter than a header, or a response: dropped. Opcode other than QUERY:
 *               NOTIMP. Malformed (question count, labels, pointers, lengths, OPT): FORMERR.
 *               EDNS version other than 0: BADVERS. Class other than IN, zone transfers:
 *               REFUSED. The responder writes these itself.
 * 3. cache    — a precompiled answer for this exact question (answer-cache.ts): copied and
 *               patched; the plain path is skipped.
 * 4. zone     — names of the cluster domain and of the cluster's reverse space (answer.ts):
 *               written by the zone responder, then completed here (OPT, size, TC) and kept
 *               in the cache.
 * 5. forward  — everything else, and ExternalName targets outside the zone: the forwarder
 *               answers from its cache or writes the upstream query (forwarder.ts).
 *
 * Allocation: on a precompiled hit, none. The plain path builds a few label strings and
 * small arrays per query; a miss that ends in the cache copies the answer once.
 */
import { CLASS, FLAG, MAX_MESSAGE_LEN, OPCODE_MASK, OPCODE_SHIFT, RCODE, TYPE } from './constants.js';
import { AnswerCache, ednsShape, type AnswerCacheOptions } from './answer-cache.js';
import { ZoneOutcome, ZoneResponder } from './answer.js';
import { Forwarder, type ForwarderOptions } from './forwarder.js';
import { textToWire } from './name.js';
import type { ClientPolicy } from './policy.js';
import { parseQuery, Query, QueryProblem } from './query.js';
import { DnsResult, type QueryContext } from './result.js';
import { countersSnapshot, DnsCounters, DropReason, Writer, type DnsStatus } from './stats.js';
import { MessageWriter, Section } from './writer.js';
import type { Zone } from './zone.js';

export interface ResponderOptions {
  readonly zone: Zone;
  /** Who may ask (policy.ts `clientPolicy`). */
  readonly policy: ClientPolicy;
  /** Upstream forwarding; without it, names outside the zone get REFUSED. */
  readonly forwarder?: ForwarderOptions;
  /** The precompiled answer cache; `false` turns it off (the plain path then serves every query). */
  readonly answerCache?: AnswerCacheOptions | false;
}

/** Responses are never built past this many bytes, whatever the buffer (TCP's 16-bit length). */
const MAX_ROOM = MAX_MESSAGE_LEN;

export class Responder {
  readonly counters = new DnsCounters();
  readonly forwarder: Forwarder;
  private readonly zoneResponder: ZoneResponder;
  private readonly cache: AnswerCache | undefined;
  private readonly policy: ClientPolicy;
  private readonly q = new Query();
  private readonly w = new MessageWriter();
  private readonly result = new DnsResult();

  constructor(options: ResponderOptions) {
    this.zoneResponder = new ZoneResponder(options.zone);
    this.policy = options.policy;
    this.cache = options.answerCache === false ? undefined : new AnswerCache(options.answerCache);
    this.forwarder = new Forwarder(options.forwarder ?? { upstreams: 0, random: () => 0 });
  }

  get zone(): Zone {
    return this.zoneResponder.currentZone;
  }

  /** Serves `zone` from now on; precompiled answers of the old zone are forgotten. */
  setZone(zone: Zone): void {
    this.zoneResponder.setZone(zone);
    this.cache?.clear();
  }

  /**
   * Answers the DNS message `query[offset, offset + length)` from a client into
   * `out[outOffset...]` (512 bytes at least; up to 65535 are used, for TCP). The result is
   * this responder's one mutable `DnsResult`: read it before the next call.
   */
  respond(query: Uint8Array, offset: number, length: number, ctx: QueryContext, out: Uint8Array, outOffset = 0): DnsResult {
    const r = this.result.reset();
    const c = this.counters;
    c.queries++;
    r.transport = ctx.transport;
    r.clientAddr = ctx.clientAddr;
    r.clientPort = ctx.clientPort ?? 0;
    r.token = ctx.token ?? 0;
    r.startedAt = ctx.now;
    if (!this.policy.allowed(ctx.clientAddr)) {
      c.drops[DropReason.NotAllowed]++;
      return r;
    }
    const q = this.q;
    const problem = parseQuery(query, offset, length, q);
    if (problem !== QueryProblem.Ok) return this.refuse(problem, query, out, outOffset);
    c.countType(q.qtype, ctx.transport === 'tcp');
    r.qtype = q.qtype;
    if (q.qclass !== CLASS.IN || q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) return this.error(RCODE.REFUSED, query, out, outOffset);
    if (q.qtype === TYPE.OPT) return this.error(RCODE.FORMERR, query, out, outOffset);

    const room = Math.min(out.length - outOffset, MAX_ROOM);
    const limit = ctx.transport === 'udp' ? Math.min(q.udpLimit, room) : room;
    const shape = ednsShape(q);
    const cache = this.cache;
    if (cache !== undefined) {
      const slot = cache.find(q, shape);
      if (slot >= 0 && cache.answerLength(slot) <= limit) {
        c.answerCacheHits++;
        const rcode = cache.rcode(slot);
        if (rcode === RCODE.NXDOMAIN) c.answerCacheDenials++;
        return this.answered(rcode, cache.write(slot, query, q, out, outOffset), false, Writer.Cache);
      }
      c.answerCacheMisses++;
    }

    const w = this.w;
    w.begin(out, outOffset, room);
    const outcome = this.zoneResponder.answer(query, q, w);
    if (outcome === ZoneOutcome.NotOurs) return this.forwarded(this.forwarder.start(query, q, ctx, undefined, out, outOffset, r));
    if (outcome === ZoneOutcome.Chase && this.forwarder.upstreams > 0) {
      // The CNAMEs written so far become the prefix of the forwarded answer; their pointers
      // lead into the question, which the answer will hold at the same place.
      const prefix = new Uint8Array(out.subarray(w.questionEnd, w.pos));
      const name = textToWire(this.zoneResponder.chaseTarget) ?? Uint8Array.of(0);
      const chase = { name, prefix, prefixCount: w.counts[Section.Answer] };
      return this.forwarded(this.forwarder.start(query, q, ctx, chase, out, outOffset, r));
    }
    // Answered, or a Chase nobody upstream can finish: the CNAMEs alone, as an authoritative server gives them.
    if (outcome === ZoneOutcome.Chase) w.startSection(Section.Additional);
    const rcode = this.zoneResponder.rcode;
    const full = w.complete(q.edns, q.dnssecOk, 0);
    if (full > 0 && cache !== undefined) cache.store(q, shape, out, outOffset, full, rcode, w);
    return this.answered(rcode, w.fit(limit), w.truncated, Writer.Kubernetes);
  }

  /**
   * A reply from upstream resolver `upstream` (the index the forward result named). Returns
   * the client's answer, a retry (`forward`), or `drop`.
   */
  upstreamReply(reply: Uint8Array, offset: number, length: number, upstream: number, now: number, out: Uint8Array, outOffset = 0): DnsResult {
    return this.forwarded(this.forwarder.reply(reply, offset, length, upstream, now, out, outOffset, this.result));
  }

  /**
   * Deals with the oldest forwarded query if its time is up: a retry, or SERVFAIL for its
   * client. Returns undefined when nothing is due; call until it does.
   */
  poll(now: number, out: Uint8Array, outOffset = 0): DnsResult | undefined {
    const r = this.forwarder.poll(now, out, outOffset, this.result);
    return r === undefined ? undefined : this.forwarded(r);
  }

  /** When `poll` is due next (caller's clock), or undefined. */
  nextDeadline(): number | undefined {
    return this.forwarder.nextDeadline();
  }

  /** Counters as plain numbers, for `podwire status --json`. */
  status(): DnsStatus {
    const f = this.forwarder;
    const s = f.stats;
    return countersSnapshot(this.counters, this.cache?.size ?? 0, {
      forwarded: s.forwarded,
      inFlight: f.inFlight,
      retries: s.retries,
      timeouts: s.timeouts,
      tcpRetries: s.tcpRetries,
      mismatched: s.mismatched,
      malformed: s.malformed,
      failures: s.failures,
      overloaded: s.overloaded,
      cacheHits: f.cache.hits,
      cacheMisses: f.cache.misses,
      cacheEntries: f.cache.size,
      cacheEvictions: f.cache.evictions,
    });
  }

  private answered(rcode: number, length: number, truncated: boolean, writer: Writer): DnsResult {
    const r = this.result;
    // An out buffer too small for even a header: nothing can be sent.
    if (length === 0) return r;
    r.action = 'answer';
    r.length = length;
    r.rcode = rcode;
    r.truncated = truncated;
    this.counters.authoritative++;
    this.counters.countRcode(rcode, writer);
    if (truncated) this.counters.truncated++;
    return r;
  }

  /** Counts what the forwarder produced: answers by rcode; queries for upstreams are not answers. */
  private forwarded(r: DnsResult): DnsResult {
    if (r.action === 'answer') {
      this.counters.countRcode(r.rcode, Writer.Forward);
      if (r.truncated) this.counters.truncated++;
    }
    return r;
  }

  /** Queries parseQuery refused: dropped, or answered with a header (and the question, for BADVERS). */
  private refuse(problem: QueryProblem, query: Uint8Array, out: Uint8Array, outOffset: number): DnsResult {
    const c = this.counters;
    if (problem === QueryProblem.Short || problem === QueryProblem.Response) {
      c.drops[problem === QueryProblem.Short ? DropReason.Short : DropReason.Response]++;
      return this.result;
    }
    c.problems[problem]++;
    if (problem === QueryProblem.EdnsVersion) return this.error(RCODE.BADVERS, query, out, outOffset);
    const q = this.q;
    const w = this.w;
    w.begin(out, outOffset, out.length - outOffset);
    // The question is not echoed: it may be what is wrong. The opcode and RD are (RFC 1035 §4.1.1).
    const rcode = problem === QueryProblem.Opcode ? RCODE.NOTIMP : RCODE.FORMERR;
    w.header(q.id, FLAG.QR | (q.flags & ((OPCODE_MASK << OPCODE_SHIFT) | FLAG.RD)) | rcode, 0);
    return this.answered(rcode, w.finish(), false, Writer.Server);
  }

  /**
   * An error answer that echoes the question, with an OPT when the client sent one (BADVERS's
   * upper bits go there). No RA: CoreDNS's server writes its own errors with `SetRcode`, which
   * copies RD and CD and sets nothing else.
   */
  private error(rcode: number, query: Uint8Array, out: Uint8Array, outOffset: number): DnsResult {
    const q = this.q;
    const w = this.w;
    const room = Math.min(out.length - outOffset, MAX_ROOM);
    w.begin(out, outOffset, room);
    w.header(q.id, FLAG.QR | (q.flags & (FLAG.RD | FLAG.CD)) | (rcode & 0xf), 1);
    w.question(query, q.nameOffset, q.name.length, q.qtype, q.qclass);
    w.complete(q.edns, q.dnssecOk, rcode >>> 4);
    return this.answered(rcode, w.fit(room), w.truncated, Writer.Server);
  }
}
