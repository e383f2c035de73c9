/**
 * Forwarding: the upstream query, matching the reply back to its client, retries and
 * timeouts, and the cache: TTL decay, negative caching (RFC 2308), the bound.
 */
import test from 'ava';
import dnsPacket, { type Answer, type Packet } from 'dns-packet';
import { seededRandom } from '../../src/cluster/random.js';
import { RCODE } from '../../src/dns/constants.js';
import { ForwardCache } from '../../src/dns/forward-cache.js';
import { readRecords } from '../../src/dns/records.js';
import type { Responder } from '../../src/dns/responder.js';
import type { DnsResult } from '../../src/dns/result.js';
import { capturedBytes, CAPTURED } from './corpus.js';
import { ctx, makeQuery, readReply, testResponder, type QueryOptions, type Reply } from './helpers.js';

const T0 = 1_000_000;
const SOA_EXAMPLE: Answer = {
  name: 'example.com',
  type: 'SOA',
  ttl: 3600,
  data: { mname: 'ns.example.com', rname: 'hostmaster.example.com', serial: 1, refresh: 7200, retry: 900, expire: 1209600, minimum: 60 },
};

function forwarding(upstreams = 1, cache = {}): Responder {
  return testResponder({ forwarder: { upstreams, random: seededRandom(42), timeoutMs: 2000, cache } });
}

interface Sent {
  readonly result: DnsResult;
  readonly packet: Packet & { flag_rd?: boolean };
  readonly bytes: Buffer;
}

/** A client query through `respond`: either an answer (from the cache) or the upstream query. */
function send(r: Responder, name: string, type: string, now = T0, o: QueryOptions & { port?: number } = {}): Sent | Reply {
  const q = makeQuery(name, type, o);
  const out = Buffer.alloc(4096);
  const result = r.respond(q, 0, q.length, ctx({ now, clientPort: o.port ?? 40000 }), out);
  if (result.action === 'answer') return readReply(result, out);
  const bytes = Buffer.from(out.subarray(0, result.length));
  return { result: { ...result } as DnsResult, packet: dnsPacket.decode(bytes) as Sent['packet'], bytes };
}

function isForward(s: Sent | Reply): s is Sent {
  return s.result.action === 'forward';
}

/** The upstream's answer to the query it got, as dns-packet encodes it. */
function upstreamReply(query: Sent, fill: Partial<Packet> & { rcode?: number }): Buffer {
  const rcode = fill.rcode ?? 0;
  return dnsPacket.encode({
    type: 'response',
    id: query.packet.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
    questions: query.packet.questions,
    answers: fill.answers ?? [],
    authorities: fill.authorities ?? [],
    additionals: fill.additionals ?? [],
  });
}

function deliver(r: Responder, reply: Buffer, now = T0 + 5, upstream = 0): Reply {
  const out = Buffer.alloc(4096);
  const result = r.upstreamReply(reply, 0, reply.length, upstream, now, out);
  return readReply(result, out);
}

test('a name outside the zone becomes an upstream query: new ID, RD, lower case, EDNS0', (t) => {
  const r = forwarding();
  const sent = send(r, 'WwW.ExAmPlE.CoM', 'A', T0, { id: 0x1111 });
  if (!isForward(sent)) return t.fail('expected a forward');
  t.is(sent.result.upstream, 0);
  t.is(sent.result.transport, 'udp');
  t.not(sent.packet.id, 0x1111);
  t.true(sent.packet.flag_rd);
  t.deepEqual(sent.packet.questions, [{ name: 'www.example.com', type: 'A', class: 'IN' }]);
  t.like(sent.packet.additionals?.[0], { type: 'OPT', udpPayloadSize: 1232 });
  t.is(r.nextDeadline(), T0 + 2000);
});

test('the upstream answer goes back to its client: its ID, its question, its case, its port', (t) => {
  const r = forwarding();
  const sent = send(r, 'WwW.ExAmPlE.CoM', 'A', T0, { id: 0x1111, port: 53000, edns: 1232 });
  if (!isForward(sent)) return t.fail();
  const reply = deliver(r, upstreamReply(sent, { answers: [{ name: 'www.example.com', type: 'A', ttl: 300, data: '192.0.2.10' }] }));
  t.is(reply.result.action, 'answer');
  t.is(reply.result.clientPort, 53000);
  t.is(reply.packet.id, 0x1111);
  t.deepEqual(reply.packet.questions, [{ name: 'WwW.ExAmPlE.CoM', type: 'A', class: 'IN' }]);
  // The owner is a pointer to the question: the client's own case, as 0x20 resolvers like it.
  t.deepEqual(reply.answer, ['WwW.ExAmPlE.CoM. 300 IN A 192.0.2.10']);
  t.true(reply.packet.flag_ra);
  t.false(reply.packet.flag_aa);
  t.like(reply.opt, { udpPayloadSize: 1232 });
  t.is(r.status().forward.inFlight, 0);
});

test('cache: a repeat is answered without upstream, TTLs lowered by the time spent, then it expires', (t) => {
  const r = forwarding();
  const sent = send(r, 'www.example.com', 'A');
  if (!isForward(sent)) return t.fail();
  deliver(
    r,
    upstreamReply(sent, {
      answers: [
        { name: 'www.example.com', type: 'CNAME', ttl: 900, data: 'web.example.com' },
        { name: 'web.example.com', type: 'A', ttl: 300, data: '192.0.2.10' },
      ],
    }),
    T0,
  );
  const later = send(r, 'www.example.com', 'A', T0 + 10_400, { id: 9 });
  t.is(later.result.action, 'answer');
  t.is(later.packet.id, 9);
  // Each record lowered by 10 s; none longer than the entry lives (300 s, its smallest TTL).
  t.deepEqual((later as Reply).answer, ['www.example.com. 290 IN CNAME web.example.com.', 'web.example.com. 290 IN A 192.0.2.10']);
  const last = send(r, 'www.example.com', 'A', T0 + 299_999);
  t.deepEqual((last as Reply).answer, ['www.example.com. 1 IN CNAME web.example.com.', 'web.example.com. 1 IN A 192.0.2.10']);
  t.true(isForward(send(r, 'www.example.com', 'A', T0 + 300_000)), 'expired: asked upstream again');
  t.like(r.status().forward, { cacheHits: 2 });
});

test('negative caching: NXDOMAIN and NODATA live min(SOA TTL, MINIMUM) and keep their SOA (RFC 2308)', (t) => {
  const r = forwarding();
  const nx = send(r, 'missing.example.com', 'A');
  if (!isForward(nx)) return t.fail();
  const first = deliver(r, upstreamReply(nx, { rcode: RCODE.NXDOMAIN, authorities: [SOA_EXAMPLE] }), T0);
  t.is(first.rcode, 'NXDOMAIN');
  t.deepEqual(first.authority, ['example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 60']);
  const cached = send(r, 'missing.example.com', 'A', T0 + 20_000) as Reply;
  t.is(cached.result.action, 'answer');
  t.is(cached.rcode, 'NXDOMAIN');
  t.deepEqual(cached.authority, ['example.com. 40 IN SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 60']);
  t.true(isForward(send(r, 'missing.example.com', 'A', T0 + 60_000)));

  const nodata = send(r, 'example.com', 'AAAA');
  if (!isForward(nodata)) return t.fail();
  deliver(r, upstreamReply(nodata, { authorities: [{ ...SOA_EXAMPLE, ttl: 30 }] }), T0);
  const again = send(r, 'example.com', 'AAAA', T0 + 29_000) as Reply;
  t.is(again.rcode, 'NOERROR');
  t.deepEqual(again.answer, []);
  t.deepEqual(again.authority, ['example.com. 1 IN SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 60']);
});

test('negative answers without an SOA, failures and TTL 0 are not cached', (t) => {
  const r = forwarding();
  const nx = send(r, 'nosoa.example.com', 'A');
  if (!isForward(nx)) return t.fail();
  t.is(deliver(r, upstreamReply(nx, { rcode: RCODE.NXDOMAIN })).rcode, 'NXDOMAIN');
  t.true(isForward(send(r, 'nosoa.example.com', 'A', T0 + 1000)));
  const zero = send(r, 'zero.example.com', 'A');
  if (!isForward(zero)) return t.fail();
  deliver(r, upstreamReply(zero, { answers: [{ name: 'zero.example.com', type: 'A', ttl: 0, data: '192.0.2.1' }] }));
  t.true(isForward(send(r, 'zero.example.com', 'A', T0 + 1000)));
  t.is(r.status().forward.cacheEntries, 0);
});

test('the cache is bounded: the least recently used entry goes first', (t) => {
  const r = forwarding(1, { maxEntries: 3 });
  const fill = (name: string, now: number) => {
    const s = send(r, name, 'A', now);
    if (!isForward(s)) throw new Error(`${name} was not forwarded`);
    deliver(r, upstreamReply(s, { answers: [{ name, type: 'A', ttl: 600, data: '192.0.2.1' }] }), now);
  };
  fill('a.example.com', T0);
  fill('b.example.com', T0 + 1);
  fill('c.example.com', T0 + 2);
  t.is(send(r, 'a.example.com', 'A', T0 + 3).result.action, 'answer'); // a is now the most recent
  fill('d.example.com', T0 + 4);
  t.like(r.status().forward, { cacheEntries: 3, cacheEvictions: 1 });
  t.true(isForward(send(r, 'b.example.com', 'A', T0 + 5)), 'b was evicted');
  t.is(send(r, 'a.example.com', 'A', T0 + 6).result.action, 'answer');
  t.is(send(r, 'd.example.com', 'A', T0 + 6).result.action, 'answer');
});

test('replies that do not match are dropped: wrong ID, wrong upstream, another question, not a response', (t) => {
  const r = forwarding(2);
  const sent = send(r, 'www.example.com', 'A');
  if (!isForward(sent)) return t.fail();
  const good = upstreamReply(sent, { answers: [{ name: 'www.example.com', type: 'A', ttl: 60, data: '192.0.2.10' }] });
  const wrongId = Buffer.from(good);
  wrongId.writeUInt16BE((sent.packet.id! + 1) & 0xffff, 0);
  t.is(deliver(r, wrongId).result.action, 'drop');
  t.is(deliver(r, good, T0 + 5, 1).result.action, 'drop', 'from the other upstream');
  const other = dnsPacket.encode({ type: 'response', id: sent.packet.id, flags: 0, questions: [{ name: 'evil.example.com', type: 'A', class: 'IN' }], answers: [] });
  t.is(deliver(r, other).result.action, 'drop');
  const query = Buffer.from(good);
  query[2] &= 0x7f; // QR clear
  t.is(deliver(r, query).result.action, 'drop');
  t.is(deliver(r, good.subarray(0, 11)).result.action, 'drop');
  t.like(r.status().forward, { mismatched: 4, malformed: 1 });
  // The genuine reply is still accepted after all that.
  t.deepEqual(deliver(r, good).answer, ['www.example.com. 60 IN A 192.0.2.10']);
});

test('SERVFAIL and REFUSED from one upstream: the next is tried, then the client gets SERVFAIL', (t) => {
  const r = forwarding(2);
  const sent = send(r, 'www.example.com', 'A');
  if (!isForward(sent)) return t.fail();
  t.is(sent.result.upstream, 0);
  const out = Buffer.alloc(4096);
  const fail = upstreamReply(sent, { rcode: RCODE.SERVFAIL });
  const retry = r.upstreamReply(fail, 0, fail.length, 0, T0 + 5, out);
  t.is(retry.action, 'forward');
  t.is(retry.upstream, 1);
  const second = { packet: dnsPacket.decode(Buffer.from(out.subarray(0, retry.length))) } as unknown as Sent;
  t.not(second.packet.id, sent.packet.id, 'a fresh ID for the retry');
  const refused = upstreamReply(second, { rcode: RCODE.REFUSED });
  const reply = deliver(r, refused, T0 + 10, 1);
  t.is(reply.rcode, 'SERVFAIL');
  t.is(reply.packet.id, 0x1234);
  t.like(r.status().forward, { failures: 2, retries: 1, cacheEntries: 0 });
});

test('timeouts: poll retries the next upstream, then answers SERVFAIL', (t) => {
  const r = forwarding(2);
  const sent = send(r, 'slow.example.com', 'A', T0, { port: 41000 });
  if (!isForward(sent)) return t.fail();
  const out = Buffer.alloc(4096);
  t.is(r.poll(T0 + 1999, out), undefined, 'not yet');
  const retry = r.poll(T0 + 2000, out);
  t.is(retry?.action, 'forward');
  t.is(retry?.upstream, 1);
  t.is(r.nextDeadline(), T0 + 4000);
  t.is(r.poll(T0 + 3000, out), undefined);
  const fail = r.poll(T0 + 4000, out);
  t.is(fail?.action, 'answer');
  t.is(fail?.clientPort, 41000);
  t.is(readReply(fail!, out).rcode, 'SERVFAIL');
  t.is(r.poll(T0 + 9000, out), undefined);
  t.is(r.nextDeadline(), undefined);
  t.like(r.status().forward, { timeouts: 2, inFlight: 0 });
  t.like(r.status().rcodes, { SERVFAIL: 1 });
});

test('a truncated upstream answer is asked again over TCP', (t) => {
  const r = forwarding();
  const sent = send(r, 'big.example.com', 'TXT');
  if (!isForward(sent)) return t.fail();
  const tc = upstreamReply(sent, {});
  tc[2] |= 0x02; // TC
  const out = Buffer.alloc(4096);
  const retry = r.upstreamReply(tc, 0, tc.length, 0, T0 + 5, out);
  t.is(retry.action, 'forward');
  t.is(retry.transport, 'tcp');
  t.is(retry.upstream, 0);
});

test('an ExternalName outside the zone: its CNAME, then the target resolved upstream', (t) => {
  const r = forwarding();
  const sent = send(r, 'Ext.Default.svc.cluster.local', 'A', T0, { id: 0x2222 });
  if (!isForward(sent)) return t.fail();
  t.deepEqual(sent.packet.questions, [{ name: 'example.com', type: 'A', class: 'IN' }]);
  const reply = deliver(r, upstreamReply(sent, { answers: [{ name: 'example.com', type: 'A', ttl: 120, data: '192.0.2.80' }] }), T0);
  t.is(reply.packet.id, 0x2222);
  t.deepEqual(reply.packet.questions, [{ name: 'Ext.Default.svc.cluster.local', type: 'A', class: 'IN' }]);
  t.deepEqual(reply.answer, ['Ext.Default.svc.cluster.local. 30 IN CNAME example.com.', 'example.com. 120 IN A 192.0.2.80']);
  // The kubernetes plugin's answer, not the forward plugin's: authoritative, no recursion.
  t.true(reply.packet.flag_aa);
  t.false(reply.packet.flag_ra);
  // The target is cached on its own; the next client gets the CNAME again from the zone.
  const cached = send(r, 'ext.default.svc.cluster.local', 'A', T0 + 1000) as Reply;
  t.deepEqual(cached.answer, ['ext.default.svc.cluster.local. 30 IN CNAME example.com.', 'example.com. 119 IN A 192.0.2.80']);
  t.true(cached.packet.flag_aa);
  t.false(cached.packet.flag_ra);
  const direct = send(r, 'example.com', 'A', T0 + 1000) as Reply;
  t.deepEqual(direct.answer, ['example.com. 119 IN A 192.0.2.80']);
  t.false(direct.packet.flag_aa);
  t.true(direct.packet.flag_ra);
});

test('an ExternalName whose target is NXDOMAIN upstream: the CNAME alone, NOERROR, no SOA, as the kubernetes plugin keeps only the Answer', (t) => {
  const r = forwarding();
  const sent = send(r, 'ext.default.svc.cluster.local', 'A');
  if (!isForward(sent)) return t.fail();
  const reply = deliver(r, upstreamReply(sent, { rcode: RCODE.NXDOMAIN, authorities: [SOA_EXAMPLE] }), T0);
  t.is(reply.rcode, 'NOERROR');
  t.deepEqual(reply.answer, ['ext.default.svc.cluster.local. 30 IN CNAME example.com.']);
  t.deepEqual(reply.authority, []);
  t.true(reply.packet.flag_aa);
  // The target itself, asked directly, is still the upstream's NXDOMAIN (from the cache).
  const direct = send(r, 'example.com', 'A', T0 + 1000) as Reply;
  t.is(direct.rcode, 'NXDOMAIN');
  t.is(direct.authority.length, 1);
});

test('an ExternalName whose target upstream never answers: the CNAME alone, NOERROR, as CoreDNS skips a failed lookup', (t) => {
  const r = forwarding();
  const sent = send(r, 'ext.default.svc.cluster.local', 'A', T0, { id: 0x3333 });
  if (!isForward(sent)) return t.fail();
  const out = Buffer.alloc(4096);
  let result = r.poll(T0 + 2001, out);
  if (result?.action === 'forward') result = r.poll(T0 + 4002, out);
  if (result === undefined) return t.fail('expected the client to be answered');
  const reply = readReply(result, out);
  t.is(reply.rcode, 'NOERROR');
  t.is(reply.packet.id, 0x3333);
  t.deepEqual(reply.answer, ['ext.default.svc.cluster.local. 30 IN CNAME example.com.']);
  t.true(reply.packet.flag_aa);
  t.false(reply.packet.flag_ra);
});

test('no upstream configured: REFUSED; too many in flight: SERVFAIL at once', (t) => {
  const none = testResponder();
  const refused = send(none, 'example.com', 'A') as Reply;
  t.is(refused.rcode, 'REFUSED');
  // The server's own errors, as CoreDNS writes them: RD echoed, no RA, no AA.
  t.true(refused.packet.flag_rd);
  t.false(refused.packet.flag_ra);
  t.false(refused.packet.flag_aa);
  const busy = testResponder({ forwarder: { upstreams: 1, random: seededRandom(1), maxPending: 2 } });
  t.true(isForward(send(busy, 'a.example.com', 'A')));
  t.true(isForward(send(busy, 'b.example.com', 'A')));
  t.is((send(busy, 'c.example.com', 'A') as Reply).rcode, 'SERVFAIL');
  t.like(busy.status().forward, { overloaded: 1, inFlight: 2 });
});

test('IDs come from the injected random source, never twice in flight', (t) => {
  const ids = (seed: number) => {
    const r = testResponder({ forwarder: { upstreams: 1, random: seededRandom(seed) } });
    return Array.from({ length: 50 }, (_, i) => (send(r, `n${i}.example.com`, 'A') as Sent).packet.id);
  };
  t.deepEqual(ids(3), ids(3));
  t.notDeepEqual(ids(3), ids(4));
  t.is(new Set(ids(3)).size, 50);
  // A source stuck on one value neither spins nor reuses an ID in flight.
  const stuck = testResponder({ forwarder: { upstreams: 1, random: () => 0.5 } });
  const seen = new Set(Array.from({ length: 20 }, (_, i) => (send(stuck, `s${i}.example.com`, 'A') as Sent).packet.id));
  t.is(seen.size, 20);
});

test('real compressed answers (dnsmasq) are taken apart, cached and put back together', (t) => {
  const r = forwarding();
  const sent = send(r, 'alias.example.net', 'A');
  if (!isForward(sent)) return t.fail();
  const captured = CAPTURED.find((m) => !m.fromClient && m.info.includes('A alias.example.net CNAME'));
  if (captured === undefined) return t.fail('fixture');
  const reply = Buffer.from(capturedBytes(captured));
  reply.writeUInt16BE(sent.packet.id!, 0);
  const got = deliver(r, reply, T0);
  t.deepEqual(got.answer, ['alias.example.net. 600 IN CNAME www.example.net.', 'www.example.net. 600 IN A 192.0.2.30']);
  // The owner is compressed against the question, so it carries the new client's case.
  t.deepEqual((send(r, 'ALIAS.example.net', 'A', T0 + 61_000) as Reply).answer, ['ALIAS.example.net. 539 IN CNAME www.example.net.', 'www.example.net. 539 IN A 192.0.2.30']);
});

test('readRecords refuses malformed sections and keeps the RFC 2308 figures', (t) => {
  const msg = dnsPacket.encode({
    type: 'response',
    id: 1,
    flags: 0,
    questions: [{ name: 'x.example.com', type: 'A', class: 'IN' }],
    answers: [{ name: 'x.example.com', type: 'A', ttl: 70, data: '192.0.2.1' }, { name: 'x.example.com', type: 'MX', ttl: 50, data: { preference: 5, exchange: 'mx.example.com' } }],
    authorities: [SOA_EXAMPLE],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, options: [] } as unknown as Answer],
  });
  const questionEnd = 12 + 15 + 4;
  const block = readRecords(msg, 0, msg.length, questionEnd, [2, 1, 1]);
  if (typeof block === 'number') return t.fail(`error ${block}`);
  t.deepEqual(block.counts, [2, 1, 0], 'the OPT is not kept');
  t.is(block.minAnswerTtl, 50);
  t.is(block.negativeTtl, 60);
  t.is(new ForwardCache().lifetime(RCODE.NOERROR, block), 50);
  t.is(new ForwardCache({ maxTtl: 30 }).lifetime(RCODE.NOERROR, block), 30);
  t.is(new ForwardCache().lifetime(RCODE.SERVFAIL, block), 0);
  for (let cut = questionEnd; cut < msg.length - 11; cut++) {
    t.is(typeof readRecords(msg, 0, cut, questionEnd, [2, 1, 1]), 'number', `cut at ${cut}`);
  }
});
