/**
 * The protocol around the records: truncation and TCP, EDNS0, the error rcodes for bad
 * queries, drops, the client policy, and the counters.
 */
import test from 'ava';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { parseIpv4 } from '../../src/packet/addr.js';
import { clientPolicy, allowed } from '../../src/dns/policy.js';
import { Responder } from '../../src/dns/responder.js';
import type { DnsAction } from '../../src/dns/result.js';
import { buildZone } from '../../src/dns/zone.js';
import { cluster } from '../cluster/helpers.js';
import { hex } from '../helpers/bytes.js';
import { ask, ctx, makeQuery, readReply, testResponder } from './helpers.js';

/** 60 ready replicas behind one headless service: an A answer of ~1 KB, an SRV answer of ~4 KB. */
function bigResponder(): Responder {
  const c = cluster(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: big}
spec:
  replicas: 60
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec: {containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: big}
spec: {clusterIP: None, selector: {app: big}, ports: [{name: http, port: 80, targetPort: http}]}
`);
  const ready = new Map(c.pods.map((p) => [`${p.namespace}/${p.name}`, true]));
  return new Responder({ zone: buildZone(c, computeEndpoints(c, ready)), policy: clientPolicy([c.settings.podCIDR]) });
}

const BIG = 'big.default.svc.cluster.local';

test('an answer over 512 bytes without EDNS0 is truncated to its question with TC', (t) => {
  const reply = ask(bigResponder(), BIG, 'A');
  t.true(reply.packet.flag_tc);
  t.true(reply.result.truncated);
  t.is(reply.rcode, 'NOERROR');
  t.deepEqual(reply.packet.questions, [{ name: BIG, type: 'A', class: 'IN' }]);
  t.deepEqual(reply.answer, []);
  t.true(reply.bytes.length <= 512);
  t.is(reply.opt, undefined);
});

test('the same question over TCP gets the full answer', (t) => {
  const reply = ask(bigResponder(), BIG, 'A', { ctx: { transport: 'tcp' } });
  t.false(reply.packet.flag_tc);
  t.is(reply.answer.length, 60);
  t.true(reply.bytes.length > 512);
  t.regex(reply.answer[0], /^big\.default\.svc\.cluster\.local\. 30 IN A 10\.244\.\d+\.\d+$/);
});

test('EDNS0: the client buffer size is honoured and an OPT echoed', (t) => {
  const responder = bigResponder();
  const fits = ask(responder, BIG, 'A', { edns: 1232 });
  t.false(fits.packet.flag_tc);
  t.is(fits.answer.length, 60);
  t.true(fits.bytes.length <= 1232);
  t.like(fits.opt, { udpPayloadSize: 1232, ednsVersion: 0, extendedRcode: 0 });
  const small = ask(responder, BIG, 'A', { edns: 600 });
  t.true(small.packet.flag_tc);
  t.deepEqual(small.answer, []);
  t.like(small.opt, { udpPayloadSize: 1232 }, 'the truncated answer keeps its OPT');
  // A size under 512 means 512 (RFC 6891 §6.2.5).
  const tiny = ask(testResponder(), 'web.default.svc.cluster.local', 'A', { edns: 100 });
  t.false(tiny.packet.flag_tc);
  t.is(tiny.answer.length, 1);
  // The DO bit is echoed; no OPT without one in the query.
  t.is((ask(testResponder(), 'web.default.svc.cluster.local', 'A', { edns: 1232, dnssecOk: true }).opt?.flags ?? 0) & 0x8000, 0x8000);
  t.is(ask(testResponder(), 'web.default.svc.cluster.local', 'A').opt, undefined);
});

test('the additional section is dropped, without TC, when the answer fits without it (RFC 2181 §9)', (t) => {
  const responder = bigResponder();
  const full = ask(responder, `_http._tcp.${BIG}`, 'SRV', { ctx: { transport: 'tcp' } });
  t.is(full.answer.length, 60);
  t.is(full.additional.length, 60);
  const over = full.bytes.length;
  // Room for the SRV records, not for their addresses.
  const answerOnly = ask(responder, `_http._tcp.${BIG}`, 'SRV', { edns: over - 100 });
  t.false(answerOnly.packet.flag_tc);
  t.is(answerOnly.answer.length, 60);
  t.deepEqual(answerOnly.additional, []);
  t.truthy(answerOnly.opt);
  const none = ask(responder, `_http._tcp.${BIG}`, 'SRV', { edns: 1232 });
  t.true(none.packet.flag_tc);
});

test('the out buffer bounds the answer too: a short buffer over TCP gives TC rather than an overrun', (t) => {
  const reply = ask(bigResponder(), BIG, 'A', { ctx: { transport: 'tcp' }, out: 600 });
  t.true(reply.packet.flag_tc);
  t.true(reply.bytes.length <= 600);
});

test('EDNS version other than 0: BADVERS with an OPT and the question', (t) => {
  const reply = ask(testResponder(), 'web.default.svc.cluster.local', 'A', { edns: 1232, ednsVersion: 1 });
  t.is(reply.rcode, 'BADVERS');
  t.is(reply.result.rcode, 16);
  t.like(reply.opt, { extendedRcode: 1, ednsVersion: 0 });
  t.deepEqual(reply.answer, []);
  t.deepEqual(reply.packet.questions, [{ name: 'web.default.svc.cluster.local', type: 'A', class: 'IN' }]);
});

test('the ID, the question, RD and CD are echoed; AA is set and RA never is (the kubernetes plugin does not recurse)', (t) => {
  const reply = ask(testResponder(), 'web.default.svc.cluster.local', 'A', { id: 0xbeef, rd: false, cd: true });
  t.is(reply.packet.id, 0xbeef);
  t.false(reply.packet.flag_rd);
  t.true(reply.packet.flag_cd);
  t.true(reply.packet.flag_aa);
  t.false(reply.packet.flag_ra);
  const rd = ask(testResponder(), 'web.default.svc.cluster.local', 'A', { id: 7 });
  t.true(rd.packet.flag_rd);
  t.false(rd.packet.flag_ra, 'recursion requested but not available');
  t.false(rd.packet.flag_cd);
});

/** Responds to raw bytes; returns the result and the response header fields. */
function raw(bytes: Buffer, responder = testResponder()) {
  const out = Buffer.alloc(1500, 0xa5);
  const result = responder.respond(bytes, 0, bytes.length, ctx(), out);
  const header = result.length >= 12 ? { id: out.readUInt16BE(0), flags: out.readUInt16BE(2), qd: out.readUInt16BE(4), an: out.readUInt16BE(6) } : undefined;
  return { action: result.action, rcode: result.rcode, length: result.length, header };
}

// `dig web.default.svc.cluster.local` without EDNS: header, question.
const WEB = hex(`
  ab cd 01 00 00 01 00 00 00 00 00 00
  03 77 65 62 07 64 65 66 61 75 6c 74 03 73 76 63 07 63 6c 75 73 74 65 72 05 6c 6f 63 61 6c 00 00 01 00 01
`);

test('bad queries: FORMERR, NOTIMP or a drop, never a throw', (t) => {
  const cases: Array<[string, Buffer, DnsAction, number]> = [];
  const mutate = (name: string, f: (b: Buffer) => Buffer, action: DnsAction, rcode: number) => cases.push([name, f(Buffer.from(WEB)), action, rcode]);
  mutate('the query itself', (b) => b, 'answer', 0);
  mutate('shorter than a header', (b) => b.subarray(0, 11), 'drop', -1);
  mutate('empty', (b) => b.subarray(0, 0), 'drop', -1);
  mutate('QR set: a response', (b) => (b.writeUInt16BE(0x8100, 2), b), 'drop', -1);
  mutate('opcode IQUERY', (b) => (b.writeUInt16BE(0x0900, 2), b), 'answer', 4);
  mutate('opcode NOTIFY', (b) => (b.writeUInt16BE(0x2100, 2), b), 'answer', 4);
  mutate('opcode UPDATE', (b) => (b.writeUInt16BE(0x2900, 2), b), 'answer', 4);
  mutate('no question', (b) => (b.writeUInt16BE(0, 4), b), 'answer', 1);
  mutate('two questions', (b) => (b.writeUInt16BE(2, 4), b), 'answer', 1);
  mutate('truncated in the name', (b) => b.subarray(0, 20), 'answer', 1);
  mutate('truncated in type and class', (b) => b.subarray(0, b.length - 2), 'answer', 1);
  mutate('a label running past the end', (b) => ((b[12] = 60), b), 'answer', 1);
  mutate('a label length of the reserved 0x40 kind', (b) => ((b[12] = 0x41), b), 'answer', 1);
  mutate('a label length of the reserved 0x80 kind', (b) => ((b[12] = 0x81), b), 'answer', 1);
  mutate('a self-pointing compression pointer', (b) => Buffer.concat([b.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), 'answer', 1);
  mutate('a forward pointer', (b) => Buffer.concat([b.subarray(0, 12), Buffer.from([0xc0, 18, 0, 1, 0, 1, 3, 0x61, 0x62, 0x63, 0])]), 'answer', 1);
  mutate('a pointer into the header', (b) => Buffer.concat([b.subarray(0, 12), Buffer.from([0xc0, 2, 0, 1, 0, 1])]), 'answer', 1);
  mutate('a pointer loop', (b) => Buffer.concat([b.subarray(0, 12), Buffer.from([1, 0x61, 0xc0, 12, 0, 1, 0, 1])]), 'answer', 1);
  mutate('a label over 63 bytes', () => Buffer.concat([WEB.subarray(0, 12), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]), 'answer', 1);
  mutate('a name over 255 bytes', () => Buffer.concat([WEB.subarray(0, 12), ...Array.from({ length: 5 }, () => Buffer.from([63, ...Buffer.alloc(63, 0x61)])), Buffer.from([0, 0, 1, 0, 1])]), 'answer', 1);
  mutate('an additional record running past the end', (b) => (b.writeUInt16BE(1, 10), Buffer.concat([b, Buffer.from([0, 0, 41, 4, 0xd0])])), 'answer', 1);
  mutate('an OPT with a bad option length', (b) => (b.writeUInt16BE(1, 10), Buffer.concat([b, hex('00 0029 04d0 00000000 0004 000a 0008')])), 'answer', 1);
  mutate('two OPT records', (b) => (b.writeUInt16BE(2, 10), Buffer.concat([b, hex('00 0029 04d0 00000000 0000'), hex('00 0029 04d0 00000000 0000')])), 'answer', 1);
  mutate('an OPT not owned by the root', (b) => (b.writeUInt16BE(1, 10), Buffer.concat([b, hex('01 61 00 0029 04d0 00000000 0000')])), 'answer', 1);
  mutate('an answer record in the query, well formed', (b) => (b.writeUInt16BE(1, 6), Buffer.concat([b, hex('c00c 0001 0001 0000001e 0004 0a600014')])), 'answer', 0);
  mutate('trailing garbage after the question', (b) => Buffer.concat([b, Buffer.from([1, 2, 3])]), 'answer', 0);
  mutate('class CH', (b) => (b.writeUInt16BE(3, b.length - 2), b), 'answer', 5);
  mutate('class ANY', (b) => (b.writeUInt16BE(255, b.length - 2), b), 'answer', 5);
  mutate('AXFR', (b) => (b.writeUInt16BE(252, b.length - 4), b), 'answer', 5);
  mutate('type OPT in the question', (b) => (b.writeUInt16BE(41, b.length - 4), b), 'answer', 1);
  for (const [name, bytes, action, rcode] of cases) {
    let r: ReturnType<typeof raw> | undefined;
    t.notThrows(() => (r = raw(bytes)), name);
    t.is(r?.action, action, name);
    t.is(r?.rcode, rcode, name);
    if (action !== 'answer' || r?.header === undefined) continue;
    t.is(r.header.id, 0xabcd, `${name}: ID echoed`);
    t.true((r.header.flags & 0x8000) !== 0, `${name}: QR`);
    t.is(r.header.flags & 0xf, rcode & 0xf, `${name}: rcode`);
    // The zone's answers and the server's own errors alike: never RA, as CoreDNS writes them.
    t.is(r.header.flags & 0x0080, 0, `${name}: no RA`);
  }
});

test('FORMERR and NOTIMP answers are a bare header echoing ID, opcode and RD', (t) => {
  const bytes = Buffer.from(WEB);
  bytes.writeUInt16BE(0x2900, 2); // UPDATE, RD
  const r = raw(bytes);
  t.is(r.length, 12);
  t.deepEqual(r.header, { id: 0xabcd, flags: 0x8000 | 0x2800 | 0x0100 | 4, qd: 0, an: 0 });
});

test('only pods and loopback get answers: podwire is never an open resolver', (t) => {
  const podCIDR = { base: parseIpv4('10.244.0.0')!, prefix: 16 };
  t.true(allowed(parseIpv4('10.244.1.2')!, podCIDR));
  t.true(allowed(parseIpv4('10.244.255.254')!, podCIDR));
  t.true(allowed(parseIpv4('127.0.0.1')!, podCIDR));
  t.true(allowed(parseIpv4('127.77.3.1')!, podCIDR));
  t.false(allowed(parseIpv4('10.245.0.1')!, podCIDR));
  t.false(allowed(parseIpv4('192.0.2.10')!, podCIDR));
  t.false(allowed(parseIpv4('10.96.0.10')!, podCIDR), 'a service address is nobody');
  t.true(allowed(parseIpv4('192.0.2.10')!, podCIDR, [{ base: parseIpv4('192.0.2.0')!, prefix: 24 }]));

  const responder = testResponder();
  const outsider = ask(testResponder(), 'web.default.svc.cluster.local', 'A', { ctx: { clientAddr: parseIpv4('192.0.2.10')! } });
  t.is(outsider.result.action, 'drop');
  t.is(outsider.result.length, 0);
  t.is(ask(responder, 'web.default.svc.cluster.local', 'A', { ctx: { clientAddr: parseIpv4('127.0.0.1')! } }).result.action, 'answer');
  const q = makeQuery('example.com', 'A');
  responder.respond(q, 0, q.length, ctx({ clientAddr: parseIpv4('203.0.113.9')! }), Buffer.alloc(512));
  t.is(responder.status().dropped['not-allowed'], 1);
});

test('counters per rcode, per query type and per problem, as plain numbers', (t) => {
  const responder = testResponder();
  ask(responder, 'web.default.svc.cluster.local', 'A');
  ask(responder, 'web.default.svc.cluster.local', 'A');
  ask(responder, 'web.default.svc.cluster.local', 'AAAA');
  ask(responder, 'nope.default.svc.cluster.local', 'A');
  ask(responder, '_http._tcp.web.default.svc.cluster.local', 'SRV');
  ask(responder, 'web.default.svc.cluster.local', 'TYPE65280');
  raw(Buffer.from(WEB).subarray(0, 5), responder);
  const notimp = Buffer.from(WEB);
  notimp.writeUInt16BE(0x2100, 2);
  raw(notimp, responder);
  const s = responder.status();
  t.is(s.queries, 8);
  t.like(s.rcodes, { NOERROR: 5, NXDOMAIN: 1, NOTIMP: 1, FORMERR: 0 });
  t.like(s.qtypes, { A: 3, AAAA: 1, SRV: 1, other: 1 });
  t.like(s.malformed, { opcode: 1 });
  t.like(s.dropped, { short: 1, 'not-allowed': 0 });
  t.like(s.answerCache, { hits: 1, misses: 5 });
  // Plain JSON, every key a number.
  const json = JSON.parse(JSON.stringify(s)) as Record<string, unknown>;
  const numbers = (o: unknown): boolean => (typeof o === 'number' ? true : typeof o === 'object' && o !== null && Object.values(o).every(numbers));
  t.true(numbers(json));
});

test('the answer is written at the given offset of the out buffer, leaving room for the headers before it', (t) => {
  const responder = testResponder();
  const q = makeQuery('web.default.svc.cluster.local', 'A');
  const out = Buffer.alloc(1500, 0xee);
  for (let i = 0; i < 2; i++) {
    const r = responder.respond(q, 0, q.length, ctx(), out, 42);
    t.true(out.subarray(0, 42).every((b) => b === 0xee));
    t.deepEqual(readReply(r, out, 42).answer, ['web.default.svc.cluster.local. 30 IN A 10.96.0.20']);
  }
});

test('the query may sit at any offset of a larger frame', (t) => {
  const responder = testResponder();
  const q = makeQuery('web.default.svc.cluster.local', 'A', { edns: 1232 });
  const frame = Buffer.concat([Buffer.alloc(42, 0x11), q, Buffer.alloc(16, 0x22)]);
  const out = Buffer.alloc(1500);
  const r = responder.respond(frame, 42, q.length, ctx(), out);
  t.deepEqual(readReply(r, out).answer, ['web.default.svc.cluster.local. 30 IN A 10.96.0.20']);
});
