/**
 * The observer's DNS scan against messages dns-packet encodes: question, rcode, A
 * addresses, answer types and the smallest TTL; compressed names; bounds from the
 * message's own start; truncated and malformed messages refused or read as far as true.
 */
import test from 'ava';
import dnsPacket from 'dns-packet';
import { DnsScan, NO_ANSWER_TTL, scanDnsMessage } from '../../src/dns/scan.js';
import { wireToText } from '../../src/dns/name.js';

function at(offset: number, msg: Buffer): Buffer {
  const b = Buffer.alloc(offset + msg.length + 7, 0xee);
  msg.copy(b, offset);
  return b;
}

test('a query: its name as sent and its type', (t) => {
  const msg = dnsPacket.encode({ type: 'query', id: 42, questions: [{ type: 'AAAA', name: 'Web.Default.svc.cluster.local' }] });
  const s = new DnsScan();
  t.true(scanDnsMessage(at(5, msg), 5, msg.length, s));
  t.false(s.response);
  t.is(s.id, 42);
  t.is(s.qtype, 28);
  t.is(wireToText(s.name.bytes, 0), 'Web.Default.svc.cluster.local.');
});

test('a response: rcode, A addresses in order, every answer type, the smallest TTL', (t) => {
  const name = 'web.default.svc.cluster.local';
  const msg = dnsPacket.encode({
    type: 'response',
    id: 1,
    questions: [{ type: 'A', name }],
    answers: [
      { type: 'CNAME', name, ttl: 300, data: 'real.default.svc.cluster.local' },
      { type: 'A', name: 'real.default.svc.cluster.local', ttl: 30, data: '10.244.1.3' },
      { type: 'A', name: 'real.default.svc.cluster.local', ttl: 5, data: '10.244.2.4' },
    ],
  });
  const s = new DnsScan();
  t.true(scanDnsMessage(at(3, msg), 3, msg.length, s));
  t.true(s.response);
  t.is(s.rcode, 0);
  t.deepEqual([...s.addresses.subarray(0, s.addressCount)].map((a) => a >>> 0), [0x0af40103, 0x0af40204]);
  t.deepEqual([...s.answerTypes.subarray(0, s.answerTypeCount)], [5, 1, 1]);
  t.is(s.ttl, 5);
});

test('NXDOMAIN without answers; more answers than kept; truncated messages', (t) => {
  const s = new DnsScan();
  const nx = dnsPacket.encode({ type: 'response', id: 1, flags: 3, questions: [{ type: 'A', name: 'missing.svc' }] });
  t.true(scanDnsMessage(nx, 0, nx.length, s));
  t.is(s.rcode, 3);
  t.is(s.addressCount, 0);
  t.is(s.ttl, NO_ANSWER_TTL);
  const many = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'x' }], answers: Array.from({ length: 12 }, (_, i) => ({ type: 'A' as const, name: 'x', ttl: 60 - i, data: `10.0.0.${i}` })) });
  t.true(scanDnsMessage(many, 0, many.length, s));
  t.is(s.addressCount, 8);
  t.is(s.ttl, 49, 'the TTL of all twelve');
  t.false(scanDnsMessage(many, 0, 11, s), 'shorter than a header');
  t.false(scanDnsMessage(many, 0, 14, s), 'the question cut');
  t.true(scanDnsMessage(many, 0, many.length - 3, s), 'the last answer cut: the others stand');
  t.is(s.addressCount, 8);
  t.false(scanDnsMessage(many, 0, many.length + 1, s), 'past the buffer');
  const empty = Buffer.from(many);
  empty.writeUInt16BE(0, 4);
  t.false(scanDnsMessage(empty, 0, empty.length, s), 'no question');
});
