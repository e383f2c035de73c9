import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { Conntrack, CT_NOT_FOUND, CtDir, NatKind, refDir, refId } from '../../src/netfilter/conntrack.js';
import { FlowTuple, TupleKind } from '../../src/netfilter/conntrack-tuple.js';
import { natIcmpError } from '../../src/netfilter/nat-icmp.js';
import {
  chooseSnatPort,
  defaultSnatRange,
  setReplyDestination,
  setReplySource,
  SNAT_EPHEMERAL_PORTS,
} from '../../src/netfilter/nat-port.js';
import { NatManip, natPacket } from '../../src/netfilter/nat.js';
import { internetChecksum } from '../../src/packet/checksum.js';
import { tcpChecksum, TCP_ACK, TCP_PSH, TCP_SYN } from '../../src/packet/tcp.js';
import { udpChecksum } from '../../src/packet/udp.js';
import { readU16, readU32 } from '../../src/packet/bytes.js';
import { readCapture } from '../../src/pcap/reader.js';
import { seededRandom } from '../../src/cluster/random.js';
import {
  addr,
  icmpChecksumResidue,
  icmpErrorPacket,
  icmpPacket,
  TCP,
  tcpPacket,
  UDP,
  udpPacket,
  views,
  type Views,
} from './conntrack-frames.js';

const T0 = 5_000 * 1_000_000_000;

const CLIENT = addr('10.244.1.3');
const CLIENT2 = addr('10.244.1.4');
const VIP = addr('10.96.0.10');
const SERVER = addr('10.244.2.2');
const NODE = addr('192.168.50.1');
const EXTERNAL = addr('192.0.2.7');
const ROUTER = addr('192.0.2.254');

function replyOf(t: FlowTuple): FlowTuple {
  const r = new FlowTuple();
  if (!r.setReplyOf(t)) throw new Error('no reply');
  return r;
}

/** The packet's addresses and ports (ICMP: identifier and type/code) as a tuple. */
function tupleOf(v: Views): FlowTuple {
  return new FlowTuple().copyFrom(v.tuple);
}

function l4Of(v: Views): Views['tcp'] | Views['udp'] | Views['icmp'] {
  return v.ip.protocol === TCP ? v.tcp : v.ip.protocol === UDP ? v.udp : v.icmp;
}

/** Every checksum in the packet equals one summed from scratch (UDP's 0 aside). */
function assertChecksums(t: ExecutionContext, v: Views, label = ''): void {
  const { ip } = v;
  const header = Buffer.from(v.buf.subarray(ip.offset, ip.offset + ip.headerLength));
  header.writeUInt16BE(0, 10);
  t.is(ip.checksum, internetChecksum(header, 0, header.length), `${label} IPv4 header checksum`);
  const at = ip.payloadOffset;
  const length = ip.payloadLength;
  const copy = Buffer.from(v.buf.subarray(at, at + length));
  if (ip.protocol === TCP) {
    copy.writeUInt16BE(0, 16);
    t.is(v.tcp.checksum, tcpChecksum(copy, 0, length, ip.srcAddr, ip.dstAddr), `${label} TCP checksum`);
  } else if (ip.protocol === UDP) {
    if (v.udp.checksum === 0) return;
    copy.writeUInt16BE(0, 6);
    const sum = udpChecksum(copy, 0, length, ip.srcAddr, ip.dstAddr);
    t.is(v.udp.checksum, sum === 0 ? 0xffff : sum, `${label} UDP checksum`);
  } else {
    copy.writeUInt16BE(0, 2);
    t.is(v.icmp.checksum, internetChecksum(copy, 0, length), `${label} ICMP checksum`);
  }
}

/** The packet after NAT through the conntrack, looked up as the pipeline would. */
function translate(ct: Conntrack, v: Views, now = T0, manip: NatManip = NatManip.Both): number {
  const ref = ct.lookupTuple(v.tuple, now);
  if (ref === CT_NOT_FOUND) throw new Error('no connection');
  natPacket(ct, ref, v.ip, l4Of(v), manip);
  return ref;
}

function sameTuple(t: ExecutionContext, actual: FlowTuple, expected: FlowTuple, label: string): void {
  t.deepEqual({ ...actual }, { ...expected }, label);
}

test('DNAT: the client talks to the VIP, the server sees the client, the reply comes back from the VIP', (t) => {
  const ct = new Conntrack({ maxEntries: 16 });
  const syn = views(tcpPacket(CLIENT, VIP, 40000, 80, TCP_SYN));
  const orig = tupleOf(syn);
  const reply = replyOf(orig);
  setReplySource(reply, SERVER, 8080);
  const ref = ct.create(orig, reply, TCP_SYN, syn.ip.totalLength, T0);
  t.true(natPacket(ct, ref, syn.ip, syn.tcp));
  sameTuple(t, views(syn.buf).tuple, new FlowTuple().set(CLIENT, SERVER, 40000, 8080, TCP), 'delivered to the endpoint');
  assertChecksums(t, views(syn.buf), 'SYN');

  const synAck = views(tcpPacket(SERVER, CLIENT, 8080, 40000, TCP_SYN | TCP_ACK, Buffer.from('x'), 14), 14);
  const back = translate(ct, synAck);
  t.is(refDir(back), CtDir.Reply);
  sameTuple(t, views(synAck.buf, 14).tuple, replyOf(orig), 'the reply looks like it came from the VIP');
  assertChecksums(t, views(synAck.buf, 14), 'SYN/ACK');
  // A packet of a connection without NAT is left alone.
  const plain = views(tcpPacket(CLIENT, SERVER, 40001, 8080, TCP_SYN));
  const plainRef = ct.create(plain.tuple, replyOf(plain.tuple), TCP_SYN, 40, T0);
  const before = Buffer.from(plain.buf);
  t.false(natPacket(ct, plainRef, plain.ip, plain.tcp));
  t.deepEqual(plain.buf, before);
});

test('SNAT: two pods with the same source port to the same server get different node ports; both replies find their pod', (t) => {
  const ct = new Conntrack({ maxEntries: 16 });
  const random = seededRandom(1);
  const sent: Views[] = [];
  const ports: number[] = [];
  for (const pod of [CLIENT, CLIENT2]) {
    const v = views(udpPacket(pod, EXTERNAL, 33333, 53, Buffer.from('query')));
    const orig = tupleOf(v);
    const reply = replyOf(orig);
    t.true(chooseSnatPort(ct, reply, NODE, defaultSnatRange(UDP, orig.sport), random, T0));
    ports.push(reply.dport);
    const ref = ct.create(orig, reply, 0, v.ip.totalLength, T0);
    t.true(ref >= 0);
    natPacket(ct, ref, v.ip, v.udp);
    sent.push(views(v.buf));
  }
  t.is(ports[0], 33333, 'the first keeps its port');
  t.not(ports[1], 33333, 'the second collides and moves');
  t.true(ports[1] >= 1024 && ports[1] <= 65535);
  t.deepEqual(
    sent.map((v) => [v.ip.srcAddr, v.udp.srcPort]),
    [
      [NODE, 33333],
      [NODE, ports[1]],
    ],
  );
  sent.forEach((v, i) => assertChecksums(t, v, `query ${i}`));

  for (const [i, pod] of [CLIENT, CLIENT2].entries()) {
    const answer = views(udpPacket(EXTERNAL, NODE, 53, ports[i], Buffer.from('answer')));
    translate(ct, answer);
    const delivered = views(answer.buf);
    sameTuple(t, delivered.tuple, new FlowTuple().set(EXTERNAL, pod, 53, 33333, UDP), `answer ${i} reaches its pod`);
    assertChecksums(t, delivered, `answer ${i}`);
  }
});

test('SNAT: ICMP echo identifiers collide and move like ports', (t) => {
  const ct = new Conntrack({ maxEntries: 16 });
  const random = seededRandom(2);
  const ids: number[] = [];
  for (const pod of [CLIENT, CLIENT2]) {
    const v = views(icmpPacket(pod, EXTERNAL, { kind: 'echoRequest', id: 0x77, seq: 1 }, Buffer.from('ping data')));
    const reply = replyOf(v.tuple);
    t.true(chooseSnatPort(ct, reply, NODE, defaultSnatRange(1, v.tuple.sport), random, T0));
    ids.push(reply.sport);
    const ref = ct.create(v.tuple, reply, 0, v.ip.totalLength, T0);
    // Destination first (nothing to do going out), then Source, as the hooks would.
    natPacket(ct, ref, v.ip, v.icmp, NatManip.Destination);
    natPacket(ct, ref, v.ip, v.icmp, NatManip.Source);
    const out = views(v.buf);
    t.deepEqual([out.ip.srcAddr, out.icmp.identifier], [NODE, reply.sport]);
    assertChecksums(t, out, 'echo request');
  }
  t.is(ids[0], 0x77);
  t.not(ids[1], 0x77);
  for (const [i, pod] of [CLIENT, CLIENT2].entries()) {
    const echoReply = views(icmpPacket(EXTERNAL, NODE, { kind: 'echoReply', id: ids[i], seq: 1 }, Buffer.from('ping data')));
    const ref = ct.lookupTuple(echoReply.tuple, T0);
    t.is(refDir(ref), CtDir.Reply);
    natPacket(ct, ref, echoReply.ip, echoReply.icmp, NatManip.Destination);
    const back = views(echoReply.buf);
    t.deepEqual([back.ip.dstAddr, back.icmp.identifier], [pod, 0x77]);
    assertChecksums(t, back, 'echo reply');
  }
});

test('chooseSnatPort: free original port kept, --random-fully moves it, an exhausted range fails', (t) => {
  const ct = new Conntrack({ maxEntries: 16 });
  const random = seededRandom(3);
  const orig = new FlowTuple().set(CLIENT, EXTERNAL, 40000, 443, TCP);
  const reply = replyOf(orig);
  t.true(chooseSnatPort(ct, reply, NODE, SNAT_EPHEMERAL_PORTS, random, T0));
  t.is(reply.dport, 40000);
  t.true(chooseSnatPort(ct, reply, NODE, SNAT_EPHEMERAL_PORTS, random, T0, true));
  t.not(reply.dport, 40000);
  // A range of three ports, all taken by other pods' connections.
  const range = { min: 50000, max: 50002 };
  for (let p = range.min; p <= range.max; p++) {
    const other = new FlowTuple().set(CLIENT2 + p, EXTERNAL, 1234, 443, TCP);
    const otherReply = replyOf(other);
    setReplyDestination(otherReply, NODE, p);
    t.true(ct.create(other, otherReply, TCP_SYN, 60, T0) >= 0);
  }
  const crowded = replyOf(orig);
  t.false(chooseSnatPort(ct, crowded, NODE, range, random, T0));
  t.is(crowded.dport, 40000, 'the original port is left on failure');
  // Once one of them has expired (SYN_SENT: 120 s) its port is free again.
  t.true(chooseSnatPort(ct, crowded, NODE, range, random, T0 + 121 * 1_000_000_000));
  t.true(crowded.dport >= range.min && crowded.dport <= range.max);
});

test('UDP without a checksum keeps none through NAT', (t) => {
  const ct = new Conntrack({ maxEntries: 4 });
  const v = views(udpPacket(CLIENT, VIP, 41000, 53, Buffer.from('q'), false));
  t.is(v.udp.checksum, 0);
  const reply = replyOf(v.tuple);
  setReplySource(reply, SERVER, 5353);
  setReplyDestination(reply, NODE, 41000);
  natPacket(ct, ct.create(v.tuple, reply, 0, 29, T0), v.ip, v.udp);
  const out = views(v.buf);
  sameTuple(t, out.tuple, new FlowTuple().set(NODE, SERVER, 41000, 5353, UDP), 'translated');
  t.is(out.udp.checksum, 0);
  assertChecksums(t, out);
});

test('a UDP checksum that comes out 0 after NAT is sent as 0xffff, as a computed one would be', (t) => {
  // Find the payload word for which the translated datagram's checksum computes to 0.
  let word = -1;
  for (let w = 0; w < 0x10000 && word < 0; w++) {
    if (views(udpPacket(CLIENT, SERVER, 41000, 5353, Buffer.from([w >>> 8, w & 0xff]))).udp.checksum === 0xffff) word = w;
  }
  t.true(word >= 0);
  const ct = new Conntrack({ maxEntries: 4 });
  const v = views(udpPacket(CLIENT, VIP, 41000, 53, Buffer.from([word >>> 8, word & 0xff])));
  t.not(v.udp.checksum, 0xffff);
  const reply = replyOf(v.tuple);
  setReplySource(reply, SERVER, 5353);
  natPacket(ct, ct.create(v.tuple, reply, 0, v.ip.totalLength, T0), v.ip, v.udp);
  t.is(views(v.buf).udp.checksum, 0xffff);
  assertChecksums(t, views(v.buf));
});

test('destination and source halves applied at two hooks equal both at once', (t) => {
  const build = (): { ct: Conntrack; v: Views; ref: number } => {
    const ct = new Conntrack({ maxEntries: 4 });
    const v = views(tcpPacket(CLIENT, VIP, 40000, 80, TCP_PSH | TCP_ACK, Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    const reply = replyOf(v.tuple);
    setReplySource(reply, EXTERNAL, 8443);
    setReplyDestination(reply, NODE, 61000);
    return { ct, v, ref: ct.create(v.tuple, reply, TCP_ACK, v.ip.totalLength, T0) };
  };
  const a = build();
  natPacket(a.ct, a.ref, a.v.ip, a.v.tcp, NatManip.Destination);
  t.deepEqual([a.v.ip.srcAddr, a.v.ip.dstAddr, a.v.tcp.srcPort, a.v.tcp.dstPort], [CLIENT, EXTERNAL, 40000, 8443], 'after PREROUTING');
  natPacket(a.ct, a.ref, a.v.ip, a.v.tcp, NatManip.Source);
  const b = build();
  natPacket(b.ct, b.ref, b.v.ip, b.v.tcp);
  t.deepEqual(a.v.buf, b.v.buf);
  assertChecksums(t, views(a.v.buf));
});

// ---- ICMP errors ------------------------------------------------------------------------

/** The ICMP error's quoted datagram as a tuple (as sent), and its checksums' state. */
function quoted(v: Views): { tuple: FlowTuple; ipHeaderOk: boolean } {
  const at = v.icmp.payloadOffset;
  const headerLength = (v.buf[at] & 0x0f) * 4;
  const proto = v.buf[at + 9];
  const l4 = at + headerLength;
  const tuple = new FlowTuple().set(
    readU32(v.buf, at + 12),
    readU32(v.buf, at + 16),
    readU16(v.buf, l4 + (proto === 1 ? 4 : 0)),
    proto === 1 ? (v.buf[l4] << 8) | v.buf[l4 + 1] : readU16(v.buf, l4 + 2),
    proto,
  );
  return { tuple, ipHeaderOk: internetChecksum(v.buf, at, headerLength) === 0 };
}

test('ICMP error: a port unreachable for a DNATed UDP flow reaches the client from the VIP, quoting the VIP', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  const query = views(udpPacket(CLIENT, VIP, 41000, 53, Buffer.from('dns query')));
  const original = tupleOf(query);
  const reply = replyOf(original);
  setReplySource(reply, SERVER, 5353);
  const ref = ct.create(original, reply, 0, query.ip.totalLength, T0);
  natPacket(ct, ref, query.ip, query.udp);
  // The server has nothing on 5353 and says so, quoting the whole datagram it received.
  const error = views(icmpErrorPacket(SERVER, CLIENT, Buffer.from(query.buf), 64));
  t.is(error.kind, TupleKind.IcmpError);
  const related = ct.lookupTuple(error.tuple, T0);
  t.is(refId(related), refId(ref));
  t.is(refDir(related), CtDir.Reply);
  t.true(natIcmpError(ct, related, error.ip, error.icmp));
  const out = views(error.buf);
  t.deepEqual([out.ip.srcAddr, out.ip.dstAddr], [VIP, CLIENT]);
  const q = quoted(out);
  sameTuple(t, q.tuple, original, 'the quote shows the packet the client sent');
  t.true(q.ipHeaderOk, 'quoted IP header checksum');
  t.is(icmpChecksumResidue(out), 0, 'ICMP checksum');
  assertChecksums(t, out, 'outer');
  // The whole datagram was quoted, so its UDP checksum can be checked too.
  const inner = out.icmp.payloadOffset + 20;
  t.is(udpChecksum(out.buf, inner, out.icmp.payloadLength - 20, CLIENT, VIP), 0, 'quoted UDP checksum');
});

test('ICMP error, golden: the kernel\'s own port unreachable (test/fixtures/udp-unreachable.pcap) comes back quoting the VIP', (t) => {
  // The capture: 10.244.1.2:44820 sent a DNS query straight to 10.244.2.2:5353, which
  // answered port unreachable, quoting all 80 bytes. Replayed here as if the client had
  // asked the service 10.96.0.10:53 and podwire had DNATed it to that pod.
  const here = dirname(fileURLToPath(import.meta.url));
  const capture = readCapture(readFileSync(resolve(here, '../../../test/fixtures/udp-unreachable.pcap')));
  const query = views(Buffer.from(capture.records[0].data), 14);
  const error = views(Buffer.from(capture.records[1].data), 14);
  const client = addr('10.244.1.2');
  const pod = addr('10.244.2.2');
  t.deepEqual([query.ip.srcAddr, query.ip.dstAddr, query.udp.srcPort, query.udp.dstPort], [client, pod, 44820, 5353]);
  const original = new FlowTuple().set(client, VIP, 44820, 53, UDP);
  const reply = replyOf(original);
  setReplySource(reply, pod, 5353);
  const ct = new Conntrack({ maxEntries: 4 });
  const ref = ct.create(original, reply, 0, query.ip.totalLength, T0);
  t.is(error.kind, TupleKind.IcmpError);
  const related = ct.lookupTuple(error.tuple, T0);
  t.is(related, ref + 1, 'the reply direction of the query\'s connection');
  t.true(natIcmpError(ct, related, error.ip, error.icmp));
  const out = views(error.buf, 14);
  t.deepEqual([out.ip.srcAddr, out.ip.dstAddr], [VIP, client]);
  const q = quoted(out);
  sameTuple(t, q.tuple, original, 'the quote shows 10.96.0.10:53');
  t.true(q.ipHeaderOk);
  t.is(icmpChecksumResidue(out), 0);
  assertChecksums(t, out);
  t.is(udpChecksum(out.buf, out.icmp.payloadOffset + 20, 60, client, VIP), 0, 'the quoted query\'s UDP checksum');
});

test('ICMP error: fragmentation needed from a router on the way out of a masqueraded TCP flow', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  const data = views(tcpPacket(CLIENT, EXTERNAL, 40000, 443, TCP_PSH | TCP_ACK, Buffer.alloc(1400, 7)));
  const original = tupleOf(data);
  const reply = replyOf(original);
  setReplyDestination(reply, NODE, 61000);
  const ref = ct.create(original, reply, TCP_ACK, data.ip.totalLength, T0);
  natPacket(ct, ref, data.ip, data.tcp);
  // The router quotes the header and 20 bytes: the TCP checksum is in the quote.
  const error = views(icmpErrorPacket(ROUTER, NODE, Buffer.from(data.buf), 20, 4));
  const related = ct.lookupTuple(error.tuple, T0);
  t.is(refDir(related), CtDir.Reply);
  t.true(natIcmpError(ct, related, error.ip, error.icmp));
  const out = views(error.buf);
  t.deepEqual([out.ip.srcAddr, out.ip.dstAddr], [ROUTER, CLIENT], 'the router stays the source');
  const q = quoted(out);
  sameTuple(t, q.tuple, original, 'the quote is the client\'s own segment');
  t.true(q.ipHeaderOk);
  t.is(icmpChecksumResidue(out), 0);
  // The quoted TCP checksum was patched as if the whole segment were there.
  const segment = views(tcpPacket(CLIENT, EXTERNAL, 40000, 443, TCP_PSH | TCP_ACK, Buffer.alloc(1400, 7)));
  t.is(readU16(out.buf, out.icmp.payloadOffset + 20 + 16), segment.tcp.checksum);
});

test('ICMP error in the original direction: the client refuses a late reply, the server sees its own packet quoted', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  const query = views(udpPacket(CLIENT, VIP, 41000, 53, Buffer.from('q')));
  const reply = replyOf(query.tuple);
  setReplySource(reply, SERVER, 5353);
  const ref = ct.create(query.tuple, reply, 0, 29, T0);
  // The answer, as the server sent it and as the client received it.
  const answer = views(udpPacket(SERVER, CLIENT, 5353, 41000, Buffer.from('a')));
  const serverSent = Buffer.from(answer.buf);
  natPacket(ct, ref + 1, answer.ip, answer.udp);
  const error = views(icmpErrorPacket(CLIENT, VIP, Buffer.from(answer.buf)));
  const related = ct.lookupTuple(error.tuple, T0);
  t.is(related, ref, 'original direction');
  natIcmpError(ct, related, error.ip, error.icmp);
  const out = views(error.buf);
  t.deepEqual([out.ip.srcAddr, out.ip.dstAddr], [CLIENT, SERVER]);
  sameTuple(t, quoted(out).tuple, views(serverSent).tuple, 'the server\'s own answer');
  t.is(icmpChecksumResidue(out), 0);
});

test('ICMP error about a masqueraded ping: the quoted identifier comes back too', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  const ping = views(icmpPacket(CLIENT, EXTERNAL, { kind: 'echoRequest', id: 9, seq: 3 }, Buffer.from('abcdefgh')));
  const original = tupleOf(ping);
  const reply = replyOf(original);
  setReplyDestination(reply, NODE, 4242);
  const ref = ct.create(original, reply, 0, ping.ip.totalLength, T0);
  natPacket(ct, ref, ping.ip, ping.icmp);
  t.is(views(ping.buf).icmp.identifier, 4242);
  const error = views(icmpErrorPacket(ROUTER, NODE, Buffer.from(ping.buf), 16, 0));
  const related = ct.lookupTuple(error.tuple, T0);
  t.is(refDir(related), CtDir.Reply);
  natIcmpError(ct, related, error.ip, error.icmp);
  const out = views(error.buf);
  t.is(out.ip.dstAddr, CLIENT);
  sameTuple(t, quoted(out).tuple, original, 'identifier 9 again');
  t.is(icmpChecksumResidue(out), 0);
  // The quoted echo's own checksum (its 16 bytes are all there) verifies.
  t.is(internetChecksum(out.buf, out.icmp.payloadOffset + 20, 16), 0);
});

// ---- properties --------------------------------------------------------------------------

const address = fc.nat({ max: 0xffffffff });
const port = fc.integer({ min: 1, max: 0xffff });

interface RandomFlow {
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  payload: Uint8Array;
  udpChecksum: boolean;
  offset: number;
  dnat: { addr: number; port: number } | null;
  snat: { addr: number; port: number } | null;
  tcpFlags: number;
}

const flowArb: fc.Arbitrary<RandomFlow> = fc.record({
  proto: fc.constantFrom(TCP, UDP, 1),
  src: address,
  dst: address,
  sport: port,
  dport: port,
  payload: fc.uint8Array({ maxLength: 64 }),
  udpChecksum: fc.boolean(),
  offset: fc.nat(15),
  dnat: fc.option(fc.record({ addr: address, port }), { nil: null }),
  snat: fc.option(fc.record({ addr: address, port }), { nil: null }),
  tcpFlags: fc.constantFrom(TCP_SYN, TCP_ACK, TCP_PSH | TCP_ACK),
});

function buildPacket(f: RandomFlow, src: number, dst: number, sport: number, dport: number, request: boolean): Buffer {
  if (f.proto === TCP) return tcpPacket(src, dst, sport, dport, f.tcpFlags, f.payload, f.offset);
  if (f.proto === UDP) return udpPacket(src, dst, sport, dport, f.payload, f.udpChecksum, f.offset);
  return icmpPacket(src, dst, { kind: request ? 'echoRequest' : 'echoReply', id: sport, seq: 1 }, f.payload, f.offset);
}

/** Conntrack with the flow's connection, the original packet after NAT, and the expected tuples. */
function natFlow(f: RandomFlow): { ct: Conntrack; ref: number; orig: FlowTuple; reply: FlowTuple; sent: Views } | undefined {
  const ct = new Conntrack({ maxEntries: 4 });
  const v = views(buildPacket(f, f.src, f.dst, f.sport, f.dport, true), f.offset);
  const orig = tupleOf(v);
  const reply = replyOf(orig);
  if (f.dnat !== null) setReplySource(reply, f.dnat.addr, f.dnat.port);
  if (f.snat !== null) setReplyDestination(reply, f.snat.addr, f.snat.port);
  // A flow whose reply tuple is its own (a host talking to itself on one port) has one
  // key and no reply direction to tell apart: not a NAT case.
  if (reply.equals(orig)) return undefined;
  const ref = ct.create(orig, reply, f.tcpFlags, v.ip.totalLength, T0);
  if (ref < 0) throw new Error(`create failed: ${ref}`);
  natPacket(ct, ref, v.ip, l4Of(v));
  return { ct, ref, orig, reply, sent: views(v.buf, f.offset) };
}

test('property: NAT rewrites to the reply tuple\'s inverse, checksums equal a full recompute, and replies round-trip', (t) => {
  fc.assert(
    fc.property(flowArb, (f) => {
      const flow = natFlow(f);
      if (flow === undefined) return true;
      const { ct, orig, reply, sent } = flow;
      // Going out: the inverse of the reply tuple.
      const out = new FlowTuple();
      if (!out.setReplyOf(reply)) return false;
      if (!sent.tuple.equals(out)) return false;
      if (!checksumsMatch(sent)) return false;
      if (f.proto === UDP && !f.udpChecksum && sent.udp.checksum !== 0) return false;
      // Coming back: a packet with the reply tuple is found as the reply and becomes the original's inverse.
      const back = views(buildPacket(f, reply.src, reply.dst, reply.sport, f.proto === 1 ? reply.sport : reply.dport, false), f.offset);
      const ref = ct.lookupTuple(back.tuple, T0);
      if (ref === CT_NOT_FOUND || refDir(ref) !== CtDir.Reply) return false;
      natPacket(ct, ref, back.ip, l4Of(back));
      const delivered = views(back.buf, f.offset);
      const expected = new FlowTuple();
      expected.setReplyOf(orig);
      return delivered.tuple.equals(expected) && checksumsMatch(delivered);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('property: an ICMP error about either direction is translated back, all checksums equal a recompute', (t) => {
  fc.assert(
    fc.property(flowArb, fc.boolean(), fc.constantFrom(8, 20, 64, 200), fc.boolean(), (f, aboutReply, quoteL4, fromRouter) => {
      const flow = natFlow(f);
      if (flow === undefined) return true;
      const { ct, orig, reply, sent } = flow;
      // The offending packet, as it was when it failed, beyond the NAT: the original one as it
      // left, or a reply as it was delivered to the client.
      let offending = sent;
      if (aboutReply) {
        const back = views(buildPacket(f, reply.src, reply.dst, reply.sport, f.proto === 1 ? reply.sport : reply.dport, false), f.offset);
        natPacket(ct, ct.lookupTuple(back.tuple, T0), back.ip, l4Of(back));
        offending = views(back.buf, f.offset);
      }
      const packet = Buffer.from(offending.buf.subarray(f.offset));
      const offender = offending.ip;
      // The error comes from the packet's addressee, or from a router on its way.
      const errorSrc = fromRouter ? ROUTER : offender.dstAddr;
      const error = views(icmpErrorPacket(errorSrc, offender.srcAddr, packet, quoteL4, 3, f.offset), f.offset);
      if (error.kind !== TupleKind.IcmpError) return false;
      const related = ct.lookupTuple(error.tuple, T0);
      if (related === CT_NOT_FOUND || refDir(related) !== (aboutReply ? CtDir.Original : CtDir.Reply)) return false;
      natIcmpError(ct, related, error.ip, error.icmp);
      const out = views(error.buf, f.offset);
      // The quote shows the packet as its sender sent it (before NAT).
      const senderTuple = aboutReply ? reply : orig;
      const q = quoted(out);
      if (!q.tuple.equals(senderTuple) || !q.ipHeaderOk) return false;
      if (icmpChecksumResidue(out) !== 0 || !checksumsMatch(out)) return false;
      // Addressed to that sender; from the address it wrote to, unless a router (not NATed) sent it.
      if ((out.ip.dstAddr | 0) !== senderTuple.src) return false;
      // The source is rewritten only by the half that undoes the NAT the connection has:
      // SNAT for an error travelling in the original direction, DNAT for one in the reply.
      const sourceNat = aboutReply ? NatKind.Snat : NatKind.Dnat;
      const translated = (ct.natKind(refId(related)) & sourceNat) !== 0;
      if ((out.ip.srcAddr | 0) !== ((fromRouter && !translated ? ROUTER : senderTuple.dst) | 0)) return false;
      // With the whole datagram quoted, its transport checksum verifies against the quoted addresses.
      const quotedTotal = readU16(packet, 2);
      const at = out.icmp.payloadOffset;
      if (out.icmp.payloadLength >= quotedTotal && f.proto === 1) {
        if (internetChecksum(out.buf, at + 20, quotedTotal - 20) !== 0) return false;
      } else if (out.icmp.payloadLength >= quotedTotal) {
        const sum = f.proto === TCP ? tcpChecksum : udpChecksum;
        const l4Sum = readU16(out.buf, at + 20 + (f.proto === TCP ? 16 : 6));
        if (!(f.proto === UDP && l4Sum === 0) && sum(out.buf, at + 20, quotedTotal - 20, q.tuple.src, q.tuple.dst) !== 0) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

/** Every checksum in the packet equals a from-scratch one (property form of assertChecksums). */
function checksumsMatch(v: Views): boolean {
  const { ip } = v;
  if (internetChecksum(v.buf, ip.offset, ip.headerLength) !== 0) return false;
  const at = ip.payloadOffset;
  const length = ip.payloadLength;
  if (ip.protocol === TCP) return tcpChecksum(v.buf, at, length, ip.srcAddr, ip.dstAddr) === 0;
  if (ip.protocol === UDP) {
    if (v.udp.checksum === 0) return true;
    const copy = Buffer.from(v.buf.subarray(at, at + length));
    copy.writeUInt16BE(0, 6);
    const sum = udpChecksum(copy, 0, length, ip.srcAddr, ip.dstAddr);
    return v.udp.checksum === (sum === 0 ? 0xffff : sum);
  }
  return internetChecksum(v.buf, at, length) === 0;
}
