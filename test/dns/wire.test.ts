/**
 * The wire layer: golden bytes, the name reader's refusals, the query parser on real dig
 * queries, compression, and the pure name-to-request parse.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { readCapture } from '../../src/pcap/reader.js';
import { NameError, NameReader, skipName, textToWire, wireToText } from '../../src/dns/name.js';
import { parseQuery, Query, QueryProblem } from '../../src/dns/query.js';
import { parseRequest, relativeLabels, type RecordRequest } from '../../src/dns/request.js';
import { parseDashedIpv4 } from '../../src/dns/lookup.js';
import { MessageWriter, Section } from '../../src/dns/writer.js';
import { hex, poisoned } from '../helpers/bytes.js';
import { capturedBytes, CAPTURED } from './corpus.js';
import { ask, ctx, testResponder } from './helpers.js';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { buildZone } from '../../src/dns/zone.js';
import { Responder } from '../../src/dns/responder.js';
import { clientPolicy } from '../../src/dns/policy.js';
import { cluster } from '../cluster/helpers.js';

// `web.default.svc.cluster.local A`, no EDNS, ID abcd, RD.
const WEB_QUERY = hex(`
  ab cd 01 00 00 01 00 00 00 00 00 00
  03 77 65 62 07 64 65 66 61 75 6c 74 03 73 76 63 07 63 6c 75 73 74 65 72 05 6c 6f 63 61 6c 00 | 00 01 | 00 01
`);

test('golden answer: every byte written into a poisoned buffer', (t) => {
  const out = poisoned(512);
  const r = testResponder({ answerCache: false }).respond(WEB_QUERY, 0, WEB_QUERY.length, ctx(), out);
  t.deepEqual(
    out.subarray(0, r.length),
    hex(`
      ab cd 85 00 00 01 00 01 00 00 00 00
      03 77 65 62 07 64 65 66 61 75 6c 74 03 73 76 63 07 63 6c 75 73 74 65 72 05 6c 6f 63 61 6c 00 00 01 00 01
      c0 0c | 00 01 | 00 01 | 00 00 00 1e | 00 04 | 0a 60 00 14
    `),
  );
  t.is(out[r.length], 0xa5, 'nothing written past the answer');
});

test('golden SRV answer: the target written whole (RFC 2782), its glue a pointer to that target', (t) => {
  const q = hex(`
    ab cd 01 00 00 01 00 00 00 00 00 00
    05 5f 68 74 74 70 04 5f 74 63 70 03 77 65 62 07 64 65 66 61 75 6c 74 03 73 76 63 07 63 6c 75 73 74 65 72 05 6c 6f 63 61 6c 00 00 21 00 01
  `);
  const out = poisoned(512);
  const r = testResponder().respond(q, 0, q.length, ctx(), out);
  t.deepEqual(
    out.subarray(0, r.length),
    hex(`
      ab cd 85 00 00 01 00 01 00 00 00 01
      05 5f 68 74 74 70 04 5f 74 63 70 03 77 65 62 07 64 65 66 61 75 6c 74 03 73 76 63 07 63 6c 75 73 74 65 72 05 6c 6f 63 61 6c 00 00 21 00 01
      c0 0c 00 21 00 01 00 00 00 1e 00 25 | 00 00 | 00 64 | 00 50 |
        03 77 65 62 07 64 65 66 61 75 6c 74 03 73 76 63 07 63 6c 75 73 74 65 72 05 6c 6f 63 61 6c 00
      c0 4c 00 01 00 01 00 00 00 1e 00 04 0a 60 00 14
    `),
  );
});

test('the query of test/fixtures/dns.pcap: dig with EDNS0 and a cookie', (t) => {
  const pcap = readCapture(readFileSync(new URL('../../../test/fixtures/dns.pcap', import.meta.url)));
  const frame = pcap.records[0].data;
  const q = new Query();
  t.is(parseQuery(frame, 42, frame.length - 42, q), QueryProblem.Ok);
  t.like(q, { id: 0x838f, flags: 0x0120, opcode: 0, qtype: 1, qclass: 1, edns: true, udpSize: 1232, dnssecOk: false, ednsVersion: 0 });
  t.is(q.udpLimit, 1232);
  t.is(q.name.text(), 'example.com.');
  t.is(q.nameOffset, 54);
  t.is(q.questionEnd, 42 + 12 + 13 + 4);
});

test('every dig query of the corpus parses', (t) => {
  const q = new Query();
  for (const m of CAPTURED.filter((x) => x.fromClient)) {
    const b = capturedBytes(m);
    // `dig +edns=1 +noednsneg` asks with EDNS version 1: BADVERS is its answer.
    const expected = m.info.includes('SOA example.org') ? QueryProblem.EdnsVersion : QueryProblem.Ok;
    t.is(parseQuery(b, 0, b.length, q), expected, m.info);
  }
  const mixed = CAPTURED.find((m) => m.info.includes('WeB.DeFaUlT'))!;
  const b = capturedBytes(mixed);
  parseQuery(b, 0, b.length, q);
  t.is(q.name.text(), 'web.default.svc.cluster.local.', 'lower-cased for lookups');
  t.is(b.subarray(q.nameOffset + 1, q.nameOffset + 4).toString(), 'WeB', 'the message keeps its case');
  const dnssec = capturedBytes(CAPTURED.find((m) => m.info.includes('SRV _http._tcp.example.org OPT') && m.fromClient)!);
  parseQuery(dnssec, 0, dnssec.length, q);
  t.true(q.dnssecOk);
});

test('the name reader follows compression in real answers and refuses bad names', (t) => {
  const reply = capturedBytes(CAPTURED.find((m) => !m.fromClient && m.info.includes('SRV 0 100 80'))!);
  const r = new NameReader();
  // The answer's owner is a pointer to the question.
  const answerOwner = 12 + 24 + 4;
  t.is(r.read(reply, 0, reply.length, answerOwner, false), 0);
  t.is(r.text(), '_http._tcp.example.org.');
  t.true(r.compressed);
  t.is(r.end, answerOwner + 2);
  const cases: Array<[string, Buffer, 0 | NameError]> = [
    ['root', hex('00'), 0],
    ['truncated label', hex('03 61 62'), NameError.Truncated],
    ['no root', hex('01 61'), NameError.Truncated],
    ['0x40 label', hex('41 61 00'), NameError.BadLabel],
    ['0x80 label', hex('81 61 00'), NameError.BadLabel],
    ['pointer cut short', hex('c0'), NameError.Truncated],
  ];
  for (const [name, bytes, expected] of cases) {
    const msg = Buffer.concat([Buffer.alloc(12), bytes]);
    t.is(r.read(msg, 0, msg.length, 12, false), expected, name);
    t.is(skipName(msg, 0, msg.length, 12), expected === 0 ? 13 : expected, `${name} (skip)`);
  }
  // Pointers: only strictly backwards into the body, counted from the message's own start.
  const body = hex('01 61 00 | 01 62 c0 0c | c0 0f | c0 15');
  const msg = Buffer.concat([Buffer.alloc(7, 0xee), Buffer.alloc(12), body]);
  t.is(r.read(msg, 7, msg.length, 7 + 15, false), 0);
  t.is(r.text(), 'b.a.');
  t.is(r.read(msg, 7, msg.length, 7 + 19, false), 0, 'a pointer to a pointer');
  t.is(r.text(), 'b.a.');
  t.is(r.read(msg, 7, msg.length, 7 + 21, false), NameError.BadPointer, 'self');
  // The same pointer read as part of a message starting at 0 lands elsewhere (on a root byte):
  // offsets count from the message, not from the buffer.
  t.is(r.read(msg, 0, msg.length, 7 + 15, false), 0);
  t.is(r.text(), 'b.');
  t.is(r.read(msg, 7, msg.length, 7 + 12 + 3, false), 0);
  const intoHeader = Buffer.concat([Buffer.alloc(12), hex('01 62 c0 0b')]);
  t.is(r.read(intoHeader, 0, intoHeader.length, 12, false), NameError.BadPointer, 'into the header');
  // 255 bytes is the most a name may have.
  const long = (labels: number[]) => Buffer.concat([Buffer.alloc(12), ...labels.map((n) => Buffer.from([n, ...Buffer.alloc(n, 0x61)])), Buffer.from([0])]);
  t.is(r.read(long([63, 63, 63, 61]), 0, 12 + 255, 12, false), 0);
  t.is(r.length, 255);
  t.is(r.read(long([63, 63, 63, 62]), 0, 12 + 256, 12, false), NameError.TooLong);
});

test('text and wire forms', (t) => {
  t.deepEqual(textToWire('web.default.svc.cluster.local.'), Uint8Array.from(hex('03 77 65 62 07 64 65 66 61 75 6c 74 03 73 76 63 07 63 6c 75 73 74 65 72 05 6c 6f 63 61 6c 00')));
  t.deepEqual(textToWire('.'), Uint8Array.of(0));
  t.is(textToWire('a..b'), undefined);
  t.is(textToWire(`${'a'.repeat(64)}.com`), undefined);
  t.is(wireToText(textToWire('a\\.b.c')!, 0), 'a\\.b.c.');
  t.is(wireToText(Uint8Array.of(2, 0x20, 0xff, 0), 0), '\\032\\255.');
});

test('compression: the longest suffix already written becomes a pointer, case-insensitively', (t) => {
  const w = new MessageWriter();
  const buf = poisoned(200);
  w.begin(buf, 0, 200);
  w.header(1, 0x8000, 0);
  w.textName('Web.Default.svc.cluster.local');
  const first = w.pos;
  w.textName('db.default.SVC.cluster.local');
  t.deepEqual(buf.subarray(first, w.pos), hex('02 64 62 c0 10'), 'db + pointer to default...');
  const second = w.pos;
  w.textName('web.default.svc.cluster.local');
  t.deepEqual(buf.subarray(second, w.pos), hex('c0 0c'));
  const third = w.pos;
  w.textName('example.com', false);
  t.is(w.pos - third, 13, 'kept whole when asked');
  const fourth = w.pos;
  w.textName('www.example.com');
  t.deepEqual(buf.subarray(fourth, w.pos), hex(`03 77 77 77 c0 ${third.toString(16)}`), 'but pointed at afterwards');
});

test('the writer stops at its limit, and fit cuts to the question with TC', (t) => {
  const w = new MessageWriter();
  const buf = poisoned(80);
  w.begin(buf, 0, 60);
  w.header(7, 0x8000, 1);
  w.question(WEB_QUERY, 12, 31, 1, 1);
  t.false(w.overflow);
  const questionEnd = w.pos;
  w.startSection(Section.Answer);
  w.pointer(12);
  const rd = w.beginRecord(1, 1, 30);
  w.u32(0x0a600014);
  w.endRecord(rd);
  t.true(w.overflow);
  t.true(w.pos <= 60);
  t.is(w.complete(false, false, 0), -1);
  const length = w.fit(60);
  t.is(length, questionEnd);
  t.true(w.truncated);
  t.is(buf[2] & 0x02, 0x02, 'TC');
  t.is(buf.readUInt16BE(6), 0, 'no answers counted');
});

const REQUESTS: Array<[string, Partial<RecordRequest> | 'invalid' | 'apex']> = [
  ['cluster.local', 'apex'],
  ['svc.cluster.local', { kind: 'svc', namespace: '' }],
  ['default.svc.cluster.local', { kind: 'svc', namespace: 'default', service: '' }],
  ['web.default.svc.cluster.local', { kind: 'svc', namespace: 'default', service: 'web', endpoint: '', port: '' }],
  ['db-0.db.default.svc.cluster.local', { kind: 'svc', namespace: 'default', service: 'db', endpoint: 'db-0' }],
  ['_http._tcp.web.default.svc.cluster.local', { kind: 'svc', service: 'web', port: 'http', protocol: 'tcp', endpoint: '' }],
  ['_tcp.web.default.svc.cluster.local', { kind: 'svc', service: 'web', endpoint: '_tcp' }],
  ['10-244-1-2.default.pod.cluster.local', { kind: 'pod', namespace: 'default', service: '10-244-1-2' }],
  // The underscores are optional, as CoreDNS strips them where it finds them.
  ['http.tcp.web.default.svc.cluster.local', { kind: 'svc', service: 'web', port: 'http', protocol: 'tcp', endpoint: '' }],
  ['_http.tcp.web.default.svc.cluster.local', { kind: 'svc', service: 'web', port: 'http', protocol: 'tcp', endpoint: '' }],
  ['_._tcp.web.default.svc.cluster.local', 'invalid'],
  ['a.b.c.web.default.svc.cluster.local', 'invalid'],
  ['web.default.cluster.local', 'invalid'],
  ['foo.cluster.local', 'invalid'],
];

test('name to request: a pure parse, as CoreDNS parseRequest', (t) => {
  for (const [name, expected] of REQUESTS) {
    const labels = relativeLabels(name, 'cluster.local.');
    if (labels === undefined) return t.fail(name);
    const req = parseRequest(labels);
    if (expected === 'invalid' || expected === 'apex') t.is(req.kind, expected, name);
    else t.like(req, expected, name);
  }
  t.is(relativeLabels('example.com', 'cluster.local'), undefined);
  t.is(relativeLabels('xcluster.local', 'cluster.local'), undefined);
  t.deepEqual(relativeLabels('WEB.Default.SVC.Cluster.Local.', 'cluster.local'), ['web', 'default', 'svc']);
});

test('dashed addresses', (t) => {
  t.is(parseDashedIpv4('10-244-1-2'), 0x0af40102);
  t.is(parseDashedIpv4('0-0-0-0'), 0);
  t.is(parseDashedIpv4('255-255-255-255'), 0xffffffff);
  for (const bad of ['10-244-1', '10-244-1-2-3', '10-244-01-2', '10-244-1-256', '10--1-2', 'a-b-c-d', '', '1000-1-1-1', '10-244-1-2-']) t.is(parseDashedIpv4(bad), -1, bad);
});

test('an SRV answer past 16 KiB over TCP: glue beyond a pointer\'s reach owns its name whole, every target in the zone as asked', (t) => {
  const addresses = Array.from({ length: 600 }, (_, i) => `{ip: 10.244.${1 + Math.floor(i / 200)}.${1 + (i % 200)}, hostname: member-${i}}`).join(', ');
  const yaml = `
apiVersion: v1
kind: Service
metadata: {name: big}
spec: {clusterIP: None, ports: [{name: p, protocol: TCP, port: 7}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: big}
subsets: [{addresses: [${addresses}], ports: [{name: p, protocol: TCP, port: 7}]}]
`;
  const c = cluster(yaml);
  const responder = new Responder({ zone: buildZone(c, computeEndpoints(c, new Map())), policy: clientPolicy([c.settings.podCIDR]) });
  const reply = ask(responder, '_p._tcp.big.default.svc.Cluster.Local', 'SRV', { ctx: { transport: 'tcp' } });
  t.true(reply.bytes.length > 0x4000, `${reply.bytes.length} bytes`);
  t.is(reply.answer.length, 600);
  t.is(reply.additional.length, 600);
  const targets = new Set(reply.answer.map((l) => l.split(' ').at(-1)));
  for (const line of reply.additional) t.true(targets.has(line.split(' ')[0]), line);
  t.true([...targets].every((name) => name?.endsWith('.big.default.svc.Cluster.Local.')));
});
