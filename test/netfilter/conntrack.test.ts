import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import {
  Conntrack,
  CreateError,
  CT_NOT_FOUND,
  CtDir,
  NatKind,
  refDir,
  refId,
  TrackVerdict,
  type ConntrackEntry,
} from '../../src/netfilter/conntrack.js';
import { formatConntrack } from '../../src/netfilter/conntrack-format.js';
import { TcpState, TCP_STATE_NAMES } from '../../src/netfilter/conntrack-tcp.js';
import { FlowTuple, TupleKind } from '../../src/netfilter/conntrack-tuple.js';
import { setReplyDestination, setReplySource } from '../../src/netfilter/nat-port.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../../src/packet/tcp.js';
import { addr, icmpErrorPacket, icmpPacket, TCP, UDP, udpPacket, views } from './conntrack-frames.js';

const MS = 1_000_000; // the clock is in nanoseconds
const SECOND = 1000 * MS;
const T0 = 1_000 * SECOND;

const CLIENT = addr('10.244.1.3');
const VIP = addr('10.96.0.10');
const SERVER = addr('10.244.2.2');
const NODE = addr('192.168.50.1');
const EXTERNAL = addr('192.0.2.7');

const SYN = TCP_SYN;
const SYN_ACK = TCP_SYN | TCP_ACK;
const ACK = TCP_ACK;
const PSH_ACK = TCP_PSH | TCP_ACK;
const FIN_ACK = TCP_FIN | TCP_ACK;
const RST = TCP_RST;

function tuple(src: number, dst: number, sport: number, dport: number, proto: number): FlowTuple {
  return new FlowTuple().set(src, dst, sport, dport, proto);
}

function replyOf(t: FlowTuple): FlowTuple {
  const r = new FlowTuple();
  if (!r.setReplyOf(t)) throw new Error('no reply');
  return r;
}

/** A connection under test: its two tuples and a clock. */
class Conn {
  now = T0;
  ref = CT_NOT_FOUND;

  constructor(
    readonly ct: Conntrack,
    readonly orig: FlowTuple,
    readonly reply: FlowTuple = replyOf(orig),
  ) {}

  get id(): number {
    return refId(this.ref);
  }

  /** Creates the entry from a first packet with `flags`; returns create's result. */
  open(flags = SYN, length = 60): number {
    this.ref = this.ct.create(this.orig, this.reply, flags, length, this.now);
    return this.ref;
  }

  /** A packet in `dir` (looked up by its own tuple, as a pipeline would). */
  send(dir: CtDir, flags: number, length = 52): TrackVerdict | 'miss' {
    const t = dir === CtDir.Original ? this.orig : this.reply;
    const ref = this.ct.lookupTuple(t, this.now);
    if (ref === CT_NOT_FOUND) return 'miss';
    if (refDir(ref) !== dir || refId(ref) !== this.id) throw new Error('found the wrong entry');
    return this.ct.update(ref, flags, length, this.now);
  }

  after(seconds: number): this {
    this.now += seconds * SECOND;
    return this;
  }

  get state(): string {
    return TCP_STATE_NAMES[this.ct.tcpState(this.id)];
  }

  /** Whole seconds left, as conntrack -L shows them. */
  get timeout(): number {
    return Math.floor(this.ct.remainingMs(this.id, this.now) / 1000);
  }
}

function expectState(t: ExecutionContext, c: Conn, state: string, timeout: number, assured: boolean): void {
  t.is(c.state, state);
  t.is(c.timeout, timeout, `timeout in ${state}`);
  t.is(c.ct.isAssured(c.id), assured, `assured in ${state}`);
}

function tcpConn(ct = new Conntrack({ maxEntries: 64, accounting: true })): Conn {
  return new Conn(ct, tuple(CLIENT, SERVER, 40000, 80, TCP));
}

test('TCP: handshake, data, FIN from the client, with the kernel timeouts at each step', (t) => {
  const c = tcpConn();
  t.is(c.open(SYN), 0);
  expectState(t, c, 'SYN_SENT', 120, false);
  t.false(c.ct.seenReply(c.id));
  t.is(c.send(CtDir.Reply, SYN_ACK), TrackVerdict.Accept);
  expectState(t, c, 'SYN_RECV', 60, false);
  t.true(c.ct.seenReply(c.id));
  t.is(c.send(CtDir.Original, ACK), TrackVerdict.Accept);
  expectState(t, c, 'ESTABLISHED', 432000, true);
  c.after(100);
  t.is(c.send(CtDir.Original, PSH_ACK, 552), TrackVerdict.Accept);
  t.is(c.send(CtDir.Reply, PSH_ACK, 1052), TrackVerdict.Accept);
  expectState(t, c, 'ESTABLISHED', 432000, true);
  t.is(c.send(CtDir.Original, FIN_ACK), TrackVerdict.Accept);
  expectState(t, c, 'FIN_WAIT', 120, true);
  t.is(c.send(CtDir.Reply, ACK), TrackVerdict.Accept);
  expectState(t, c, 'CLOSE_WAIT', 60, true);
  t.is(c.send(CtDir.Reply, FIN_ACK), TrackVerdict.Accept);
  expectState(t, c, 'LAST_ACK', 30, true);
  t.is(c.send(CtDir.Original, ACK), TrackVerdict.Accept);
  expectState(t, c, 'TIME_WAIT', 120, true);
  t.is(c.ct.packets(c.id, CtDir.Original), 5);
  t.is(c.ct.packets(c.id, CtDir.Reply), 4);
  t.is(c.ct.bytes(c.id, CtDir.Original), 60 + 52 + 552 + 52 + 52);
  t.is(c.ct.bytes(c.id, CtDir.Reply), 52 + 1052 + 52 + 52);
  // TIME_WAIT runs out after two minutes.
  c.after(119);
  t.not(c.send(CtDir.Original, ACK), 'miss');
  c.after(120);
  t.is(c.send(CtDir.Original, ACK), 'miss');
  t.is(c.ct.size, 0);
  t.is(c.ct.stats.expired, 1);
});

test('TCP: FIN from the server first', (t) => {
  const c = tcpConn();
  c.open(SYN);
  c.send(CtDir.Reply, SYN_ACK);
  c.send(CtDir.Original, ACK);
  t.is(c.send(CtDir.Reply, FIN_ACK), TrackVerdict.Accept);
  expectState(t, c, 'FIN_WAIT', 120, true);
  t.is(c.send(CtDir.Original, ACK), TrackVerdict.Accept);
  expectState(t, c, 'CLOSE_WAIT', 60, true);
  t.is(c.send(CtDir.Original, FIN_ACK), TrackVerdict.Accept);
  expectState(t, c, 'LAST_ACK', 30, true);
  t.is(c.send(CtDir.Reply, ACK), TrackVerdict.Accept);
  expectState(t, c, 'TIME_WAIT', 120, true);
});

test('TCP: simultaneous close goes FIN_WAIT, LAST_ACK, TIME_WAIT', (t) => {
  const c = tcpConn();
  c.open(SYN);
  c.send(CtDir.Reply, SYN_ACK);
  c.send(CtDir.Original, ACK);
  c.send(CtDir.Original, FIN_ACK);
  t.is(c.send(CtDir.Reply, FIN_ACK), TrackVerdict.Accept);
  expectState(t, c, 'LAST_ACK', 30, true);
  c.send(CtDir.Original, ACK);
  expectState(t, c, 'TIME_WAIT', 120, true);
  c.send(CtDir.Reply, ACK);
  expectState(t, c, 'TIME_WAIT', 120, true);
});

test('TCP: RST closes an established connection for 10 s', (t) => {
  const c = tcpConn();
  c.open(SYN);
  c.send(CtDir.Reply, SYN_ACK);
  c.send(CtDir.Original, ACK);
  t.is(c.send(CtDir.Reply, RST | TCP_ACK), TrackVerdict.Accept);
  expectState(t, c, 'CLOSE', 10, true);
  c.after(10);
  t.is(c.send(CtDir.Original, ACK), 'miss');
});

test('TCP: a RST answering the SYN (connection refused) kills the entry at once', (t) => {
  const c = tcpConn();
  c.open(SYN);
  t.is(c.send(CtDir.Reply, RST | TCP_ACK), TrackVerdict.Accept);
  // The RST itself was translated by the entry; nothing after it finds it.
  t.is(c.send(CtDir.Original, SYN), 'miss');
  t.is(c.ct.size, 0);
});

test('TCP: simultaneous open through SYN_SENT2', (t) => {
  const c = tcpConn();
  c.open(SYN);
  t.is(c.send(CtDir.Reply, SYN), TrackVerdict.Accept);
  t.is(c.state, 'SYN_SENT2');
  t.is(c.send(CtDir.Original, SYN_ACK), TrackVerdict.Accept);
  t.is(c.state, 'SYN_RECV');
  t.is(c.send(CtDir.Reply, SYN_ACK), TrackVerdict.Ignored);
  t.is(c.send(CtDir.Reply, ACK), TrackVerdict.Accept);
  expectState(t, c, 'ESTABLISHED', 432000, true);
});

test('TCP: impossible flags and out-of-state segments are INVALID and change nothing', (t) => {
  const c = tcpConn();
  t.is(c.open(TCP_FIN | TCP_ACK), CreateError.Invalid);
  t.is(c.open(SYN | TCP_FIN), CreateError.Invalid);
  t.is(c.ct.size, 0);
  c.open(SYN);
  t.is(c.send(CtDir.Original, ACK), TrackVerdict.Invalid, 'an ACK before any SYN/ACK');
  t.is(c.send(CtDir.Original, TCP_FIN), TrackVerdict.Invalid, 'a FIN without ACK');
  t.is(c.send(CtDir.Original, 0), TrackVerdict.Invalid, 'no flags');
  expectState(t, c, 'SYN_SENT', 120, false);
  t.is(c.ct.stats.invalid, 5);
  t.is(c.ct.packets(c.id, CtDir.Original), 1, 'invalid packets are not counted');
});

test('TCP: a retransmitted SYN does not extend SYN_SENT', (t) => {
  const c = tcpConn();
  c.open(SYN);
  c.after(100);
  t.is(c.send(CtDir.Original, SYN), TrackVerdict.Accept);
  t.is(c.timeout, 20);
  c.after(20);
  t.is(c.send(CtDir.Original, SYN), 'miss');
});

test('TCP: a connection picked up mid-stream waits for a reply before the long timeout', (t) => {
  const c = tcpConn();
  t.is(c.open(PSH_ACK), 0);
  expectState(t, c, 'ESTABLISHED', 300, false);
  c.send(CtDir.Reply, ACK);
  expectState(t, c, 'ESTABLISHED', 300, false);
  c.send(CtDir.Original, ACK);
  expectState(t, c, 'ESTABLISHED', 432000, true);
});

test('TCP: a SYN in TIME_WAIT reopens: the old entry goes, a new one can be made', (t) => {
  const c = tcpConn();
  c.open(SYN);
  c.send(CtDir.Reply, SYN_ACK);
  c.send(CtDir.Original, ACK);
  c.send(CtDir.Original, FIN_ACK);
  c.send(CtDir.Reply, FIN_ACK);
  c.send(CtDir.Original, ACK);
  t.is(c.state, 'TIME_WAIT');
  t.is(c.send(CtDir.Original, SYN), TrackVerdict.Reopen);
  t.is(c.ct.size, 0);
  t.true(c.open(SYN) >= 0);
  expectState(t, c, 'SYN_SENT', 120, false);
});

test("UDP as kernel 6.x: 30 s unreplied and after the reply; 120 s and ASSURED only for traffic past the flow's first 2 s", (t) => {
  const c = new Conn(new Conntrack({ maxEntries: 8 }), tuple(CLIENT, VIP, 53000, 53, UDP));
  t.is(c.open(0, 60), 0);
  expectState(t, c, 'NONE', 30, false);
  t.false(c.ct.seenReply(c.id));
  c.after(1);
  t.is(c.send(CtDir.Reply, 0, 120), TrackVerdict.Accept);
  // A query and its answer: seen both ways, still short-lived and evictable (like DNS in the kernel).
  t.true(c.ct.seenReply(c.id));
  expectState(t, c, 'NONE', 30, false);
  // More traffic both ways within the first two seconds (a retried query, a second answer): no stream yet.
  c.after(0.5);
  c.send(CtDir.Original, 0);
  c.send(CtDir.Reply, 0);
  expectState(t, c, 'NONE', 30, false);
  c.after(0.5); // exactly 2 s old: the kernel's time_after is strict
  c.send(CtDir.Original, 0);
  expectState(t, c, 'NONE', 30, false);
  c.after(0.001);
  c.send(CtDir.Original, 0);
  expectState(t, c, 'NONE', 120, true);
  c.after(119);
  t.is(c.send(CtDir.Reply, 0), TrackVerdict.Accept);
  c.after(120);
  t.is(c.send(CtDir.Reply, 0), 'miss');
});

test('ICMP: echo requests and replies pair by identifier; other identifiers and lone replies find nothing', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  const request = views(icmpPacket(CLIENT, EXTERNAL, { kind: 'echoRequest', id: 0x1234, seq: 1 }));
  t.is(request.kind, TupleKind.Flow);
  t.is(request.tuple.dport, 8 << 8);
  const ref = ct.create(request.tuple, replyOf(request.tuple), 0, request.ip.totalLength, T0);
  t.is(ref, 0);
  t.is(Math.floor(ct.remainingMs(0, T0) / 1000), 30);

  const reply = views(icmpPacket(EXTERNAL, CLIENT, { kind: 'echoReply', id: 0x1234, seq: 1 }));
  t.is(ct.lookupTuple(reply.tuple, T0), 1, 'the reply direction of entry 0');
  const stranger = views(icmpPacket(EXTERNAL, CLIENT, { kind: 'echoReply', id: 0x4321, seq: 1 }));
  t.is(ct.lookupTuple(stranger.tuple, T0), CT_NOT_FOUND);
  t.is(ct.create(stranger.tuple, replyOf(stranger.tuple), 0, 28, T0), CreateError.Invalid, 'a reply cannot open a flow');
  const reverse = views(icmpPacket(EXTERNAL, CLIENT, { kind: 'echoRequest', id: 0x1234, seq: 1 }));
  t.is(ct.lookupTuple(reverse.tuple, T0), CT_NOT_FOUND, 'a request the other way is another flow');
  t.is(ct.update(1, 0, 84, T0 + 10 * SECOND), TrackVerdict.Accept);
  t.true(ct.seenReply(0));
  t.false(ct.isAssured(0));
});

test('an ICMP error finds the connection it is related to, in the direction it travels', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  // A DNS query to the service VIP, DNATed to a pod that has nothing listening.
  const query = views(udpPacket(CLIENT, VIP, 41000, 53, Buffer.from('q')));
  const reply = replyOf(query.tuple);
  setReplySource(reply, SERVER, 5353);
  const ref = ct.create(query.tuple, reply, 0, 29, T0);
  t.is(ct.natKind(refId(ref)), NatKind.Dnat);
  // What the server received, and the port unreachable it sends back.
  const delivered = udpPacket(CLIENT, SERVER, 41000, 5353, Buffer.from('q'));
  const error = views(icmpErrorPacket(SERVER, CLIENT, delivered));
  t.is(error.kind, TupleKind.IcmpError);
  const related = ct.lookupTuple(error.tuple, T0);
  t.is(refId(related), refId(ref));
  t.is(refDir(related), CtDir.Reply);
  t.is(ct.lookupRelated(error.buf, error.icmp.payloadOffset, error.icmp.payloadLength, T0), related);
  // An error quoting an unknown flow, or quoting too little, relates to nothing.
  const unknown = views(icmpErrorPacket(SERVER, CLIENT, udpPacket(CLIENT, SERVER, 41001, 5353)));
  t.is(ct.lookupTuple(unknown.tuple, T0), CT_NOT_FOUND);
  t.is(views(icmpErrorPacket(SERVER, CLIENT, delivered, 4)).kind, TupleKind.Untracked);
});

test('fragments and truncated transport headers are not tracked', (t) => {
  const fragment = udpPacket(CLIENT, VIP, 41000, 53, Buffer.from('q'));
  fragment[6] |= 0x20; // more fragments
  t.is(views(fragment).kind, TupleKind.Untracked);
  const later = udpPacket(CLIENT, VIP, 41000, 53, Buffer.from('q'));
  later.writeUInt16BE(0x0010, 6); // offset 128, no DF
  t.is(views(later).kind, TupleKind.Untracked);
  const ping = icmpPacket(CLIENT, EXTERNAL, { kind: 'echoRequest', id: 1, seq: 1 });
  t.is(views(ping).kind, TupleKind.Flow);
  t.is(views(ping).tuple.icmpType, 8);
});

test('expiry: lazy on lookup, and a reaper that walks a bounded number of entries per call', (t) => {
  const ct = new Conntrack({ maxEntries: 100 });
  for (let i = 0; i < 100; i++) {
    const orig = tuple(CLIENT, VIP, 10000 + i, 53, UDP);
    t.true(ct.create(orig, replyOf(orig), 0, 60, T0 + i * SECOND) >= 0);
  }
  t.is(ct.size, 100);
  // At T0 + 45 s, flows 0..15 (created up to T0 + 15 s) have reached their 30 s.
  const now = T0 + 45 * SECOND;
  t.is(ct.expire(now, 10), 10, 'the budget bounds the walk');
  t.is(ct.expire(now, 10), 6);
  t.is(ct.expire(now, 80), 0);
  t.is(ct.size, 84);
  // Flow 16 expires exactly at 46 s; a lookup then removes it by itself.
  const sixteen = tuple(CLIENT, VIP, 10016, 53, UDP);
  t.not(ct.lookupTuple(sixteen, now + 999 * MS), CT_NOT_FOUND);
  t.is(ct.lookupTuple(sixteen, now + SECOND), CT_NOT_FOUND);
  t.is(ct.size, 83);
  t.is(ct.stats.expired, 17);
  // A long idle stretch: every entry goes, whatever the budget's starting point.
  t.is(ct.expire(now + 3600 * SECOND, 1000), 83);
  t.is(ct.size, 0);
});

test('expiry survives the millisecond counter wrapping and catches entries left stale past it', (t) => {
  const ct = new Conntrack({ maxEntries: 4 });
  // 2^31 ms is 24.8 days: start just before the int32 wrap.
  const start = (2 ** 31 - 5_000) * MS;
  const orig = tuple(CLIENT, VIP, 1, 53, UDP);
  ct.create(orig, replyOf(orig), 0, 60, start);
  t.not(ct.lookupTuple(orig, start + 29 * SECOND), CT_NOT_FOUND);
  t.is(ct.lookupTuple(orig, start + 30 * SECOND), CT_NOT_FOUND);
  // An entry nobody looked at for 30 days (beyond the wrap) is still seen as expired.
  ct.create(orig, replyOf(orig), 0, 60, start);
  t.is(ct.lookupTuple(orig, start + 30 * 86400 * SECOND), CT_NOT_FOUND);
});

test('full table of established connections: new flows are refused and counted, the old ones keep working', (t) => {
  const ct = new Conntrack({ maxEntries: 16, evictionCandidates: 16 });
  const conns: Conn[] = [];
  for (let i = 0; i < 16; i++) {
    const c = new Conn(ct, tuple(CLIENT, SERVER, 30000 + i, 443, TCP));
    c.open(SYN);
    c.send(CtDir.Reply, SYN_ACK);
    c.send(CtDir.Original, ACK);
    conns.push(c);
  }
  t.is(ct.size, 16);
  for (let i = 0; i < 5; i++) {
    const orig = tuple(CLIENT, SERVER, 50000 + i, 443, TCP);
    t.is(ct.create(orig, replyOf(orig), SYN, 60, T0), CreateError.Full);
  }
  t.is(ct.stats.refusedFull, 5);
  t.is(ct.stats.evicted, 0);
  for (const c of conns) t.is(c.send(CtDir.Reply, PSH_ACK), TrackVerdict.Accept);
  // One closes: a closing connection may be dropped for a new one, as in the kernel.
  conns[3].send(CtDir.Original, FIN_ACK);
  const orig = tuple(CLIENT, SERVER, 60000, 443, TCP);
  const fresh = new Conn(ct, orig);
  t.true(fresh.open(SYN) >= 0);
  t.is(ct.stats.evicted, 1);
  t.is(conns[3].send(CtDir.Original, ACK), 'miss');
});

test('full table: the oldest unassured entry is evicted; assured ones are not', (t) => {
  const ct = new Conntrack({ maxEntries: 6, evictionCandidates: 6 });
  const flows: Conn[] = [];
  for (let i = 0; i < 6; i++) {
    const c = new Conn(ct, tuple(CLIENT, EXTERNAL, 20000 + i, 53, UDP));
    c.now = T0 + i * SECOND;
    c.open(0);
    flows.push(c);
  }
  // Flows 0 and 1, the oldest, become streams (ASSURED); 2 is now the oldest unassured.
  for (const c of flows.slice(0, 2)) {
    c.after(10);
    c.send(CtDir.Reply, 0);
    c.send(CtDir.Original, 0);
    t.true(ct.isAssured(c.id));
  }
  const newcomer = new Conn(ct, tuple(CLIENT, EXTERNAL, 29999, 53, UDP));
  newcomer.now = T0 + 12 * SECOND;
  t.true(newcomer.open(0) >= 0);
  t.is(ct.stats.evicted, 1);
  const alive = flows.map((c) => {
    c.now = newcomer.now;
    return c.send(CtDir.Original, 0) !== 'miss';
  });
  t.deepEqual(alive, [true, true, false, true, true, true]);
});

test('create refuses a tuple that a live connection already holds', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  const a = tuple(CLIENT, VIP, 40000, 80, TCP);
  const replyA = replyOf(a);
  setReplySource(replyA, SERVER, 8080);
  t.is(ct.create(a, replyA, SYN, 60, T0), 0);
  t.is(ct.create(a, replyOf(a), SYN, 60, T0), CreateError.Clash);
  // Another client's connection whose reply would be indistinguishable from a's.
  const b = tuple(CLIENT, SERVER, 40000, 8080, TCP);
  t.is(ct.create(b, replyOf(b), SYN, 60, T0), CreateError.Clash);
  t.is(ct.stats.clashed, 2);
  t.is(ct.size, 1);
});

test('mark, NAT kind, destroy and flush', (t) => {
  const ct = new Conntrack({ maxEntries: 8 });
  const orig = tuple(CLIENT, VIP, 40000, 80, TCP);
  const reply = replyOf(orig);
  setReplySource(reply, SERVER, 8080);
  setReplyDestination(reply, NODE, 61000);
  const ref = ct.create(orig, reply, SYN, 60, T0);
  t.is(ct.natKind(refId(ref)), NatKind.Both);
  ct.setMark(refId(ref), 0x4000);
  t.is(ct.mark(refId(ref)), 0x4000);
  t.is(ct.lookupTuple(reply, T0), ref + 1);
  ct.destroy(ref + 1);
  t.is(ct.lookupTuple(orig, T0), CT_NOT_FOUND);
  t.is(ct.lookupTuple(reply, T0), CT_NOT_FOUND);
  t.is(ct.stats.destroyed, 1);
  ct.create(orig, reply, SYN, 60, T0);
  ct.flush();
  t.is(ct.size, 0);
  t.is(ct.lookupTuple(orig, T0), CT_NOT_FOUND);
  t.is(ct.create(orig, reply, SYN, 60, T0), 0, 'ids start again after a flush');
});

test('byte counters carry past 2^32 in each direction without touching the other (a long bulk transfer)', (t) => {
  const c = new Conn(new Conntrack({ maxEntries: 2, accounting: true }), tuple(CLIENT, SERVER, 5201, 5201, UDP));
  c.open(0, 65535);
  for (let i = 1; i < 140_000; i++) c.send(CtDir.Original, 0, 65535);
  for (let i = 0; i < 70_000; i++) c.send(CtDir.Reply, 0, 65000);
  t.is(c.ct.packets(c.id, CtDir.Original), 140_000);
  t.is(c.ct.bytes(c.id, CtDir.Original), 140_000 * 65535);
  t.true(c.ct.bytes(c.id, CtDir.Original) > 2 * 2 ** 32);
  t.is(c.ct.packets(c.id, CtDir.Reply), 70_000);
  t.is(c.ct.bytes(c.id, CtDir.Reply), 70_000 * 65000);
});

test('bad options are refused', (t) => {
  t.throws(() => new Conntrack({ maxEntries: 0 }), { instanceOf: RangeError });
  t.throws(() => new Conntrack({ maxEntries: 1.5 }), { instanceOf: RangeError });
  t.throws(() => new Conntrack({ timeouts: { udp: 0 } }), { instanceOf: RangeError });
  t.throws(() => new Conntrack({ timeouts: { tcpEstablished: 30 * 86400 } }), { instanceOf: RangeError });
  t.throws(() => new Conntrack({ evictionCandidates: -1 }), { instanceOf: RangeError });
});

test('memory: bytes per connection, index included, at the default size', (t) => {
  const withCounters = new Conntrack({ accounting: true });
  const without = new Conntrack();
  t.false(without.accounting, 'off by default, as nf_conntrack_acct');
  t.is(withCounters.maxEntries, 262_144);
  // 2^19 keys need 2^20 slots of 18 bytes: 72 bytes per connection for the index.
  t.is(withCounters.indexBytesPerEntry, 72);
  t.is(without.bytesPerEntry, 72 + 40);
  t.is(withCounters.bytesPerEntry, 72 + 60);
});

// ---- conntrack -L ----------------------------------------------------------------------

function established(accounting: boolean): { ct: Conntrack; c: Conn } {
  const ct = new Conntrack({ maxEntries: 8, accounting });
  const orig = tuple(CLIENT, VIP, 40000, 80, TCP);
  const reply = replyOf(orig);
  setReplySource(reply, SERVER, 8080);
  const c = new Conn(ct, orig, reply);
  c.open(SYN, 60);
  c.send(CtDir.Reply, SYN_ACK, 60);
  c.send(CtDir.Original, ACK, 52);
  c.now += MS;
  return { ct, c };
}

function listed(ct: Conntrack, now: number): string[] {
  return ct.list(now).map((e: ConntrackEntry) => formatConntrack(e));
}

test('conntrack -L: an assured TCP connection through a service', (t) => {
  const { ct, c } = established(false);
  t.deepEqual(listed(ct, c.now), [
    'tcp      6 431999 ESTABLISHED src=10.244.1.3 dst=10.96.0.10 sport=40000 dport=80 src=10.244.2.2 dst=10.244.1.3 sport=8080 dport=40000 [ASSURED] mark=0 use=1',
  ]);
});

test('conntrack -L: counters after each tuple with accounting on', (t) => {
  const { ct, c } = established(true);
  t.deepEqual(listed(ct, c.now), [
    'tcp      6 431999 ESTABLISHED src=10.244.1.3 dst=10.96.0.10 sport=40000 dport=80 packets=2 bytes=112 src=10.244.2.2 dst=10.244.1.3 sport=8080 dport=40000 packets=1 bytes=60 [ASSURED] mark=0 use=1',
  ]);
});

test('conntrack -L: unreplied UDP, ICMP echo, and a protocol tracked by address', (t) => {
  const ct = new Conntrack({ maxEntries: 8, accounting: false });
  const dns = tuple(CLIENT, VIP, 53000, 53, UDP);
  const dnsReply = replyOf(dns);
  setReplySource(dnsReply, SERVER, 5353);
  ct.create(dns, dnsReply, 0, 60, T0);
  const ping = views(icmpPacket(CLIENT, EXTERNAL, { kind: 'echoRequest', id: 7, seq: 1 })).tuple;
  const pingReply = replyOf(ping);
  setReplyDestination(pingReply, NODE, 7);
  ct.create(ping, pingReply, 0, 84, T0);
  ct.update(1 * 2 + 1, 0, 84, T0);
  const gre = tuple(CLIENT, EXTERNAL, 0, 0, 47);
  ct.create(gre, replyOf(gre), 0, 100, T0);
  t.deepEqual(listed(ct, T0 + 500 * MS), [
    'udp      17 29 src=10.244.1.3 dst=10.96.0.10 sport=53000 dport=53 [UNREPLIED] src=10.244.2.2 dst=10.244.1.3 sport=5353 dport=53000 mark=0 use=1',
    'icmp     1 29 src=10.244.1.3 dst=192.0.2.7 type=8 code=0 id=7 src=192.0.2.7 dst=192.168.50.1 type=0 code=0 id=7 mark=0 use=1',
    'unknown  47 599 src=10.244.1.3 dst=192.0.2.7 [UNREPLIED] src=192.0.2.7 dst=10.244.1.3 mark=0 use=1',
  ]);
});

// ---- model test --------------------------------------------------------------------------

/** The reference: a Map keyed by strings, with the same rules written the obvious way. */
interface ModelEntry {
  origKey: string;
  replyKey: string;
  proto: number;
  state: number;
  seenReply: boolean;
  assured: boolean;
  expires: number;
  packets: [number, number];
  /** When the flow's first packet was. */
  created: number;
}

const key = (t: FlowTuple): string => `${t.src}|${t.dst}|${t.sport}|${t.dport}|${t.proto}`;

const TIMEOUT_S: Record<string, number> = { udp: 30, stream: 120 };
const TCP_TIMEOUT_S = [120, 120, 60, 432000, 120, 60, 30, 120, 10, 120];

type Op =
  | { kind: 'packet'; flow: number; reply: boolean; flags: number }
  | { kind: 'advance'; seconds: number }
  | { kind: 'reap'; budget: number };

const FLAG_CHOICES = [SYN, SYN_ACK, ACK, PSH_ACK, FIN_ACK, RST, RST | TCP_ACK, SYN | TCP_FIN];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('packet' as const), flow: fc.nat(11), reply: fc.boolean(), flags: fc.constantFrom(...FLAG_CHOICES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), seconds: fc.constantFrom(0.5, 1, 5, 29, 31, 61, 130, 400) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reap' as const), budget: fc.integer({ min: 1, max: 20 }) }) },
);

test('property: lookups, states, timeouts and counters agree with a Map-based model', (t) => {
  // Twelve flows, half TCP and half UDP, some DNATed; a table large enough never to evict.
  const flows: { orig: FlowTuple; reply: FlowTuple }[] = [];
  for (let i = 0; i < 12; i++) {
    const proto = i % 2 === 0 ? TCP : UDP;
    const orig = tuple(CLIENT + (i % 3), VIP, 40000 + i, 80, proto);
    const reply = replyOf(orig);
    if (i % 4 < 2) setReplySource(reply, SERVER + i, 8080);
    flows.push({ orig, reply });
  }
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
      const ct = new Conntrack({ maxEntries: 16, seed: 7, accounting: true });
      const model = new Map<string, ModelEntry>();
      let now = T0;
      const live = (e: ModelEntry | undefined): ModelEntry | undefined => (e !== undefined && e.expires > now ? e : undefined);
      const find = (k: string): { e: ModelEntry; dir: number } | undefined => {
        for (const e of model.values()) {
          if (live(e) === undefined) continue;
          if (e.origKey === k) return { e, dir: 0 };
          if (e.replyKey === k) return { e, dir: 1 };
        }
        return undefined;
      };
      for (const op of ops) {
        if (op.kind === 'advance') {
          now += op.seconds * SECOND;
          continue;
        }
        if (op.kind === 'reap') {
          ct.expire(now, op.budget);
          continue;
        }
        const flow = flows[op.flow];
        const sent = op.reply ? flow.reply : flow.orig;
        const ref = ct.lookupTuple(sent, now);
        const found = find(key(sent));
        if ((ref === CT_NOT_FOUND) !== (found === undefined)) return false;
        if (found === undefined) {
          if (op.reply) continue; // a reply with no connection: nothing to create
          const result = ct.create(flow.orig, flow.reply, op.flags, 60, now);
          const valid = flow.orig.proto !== TCP || op.flags === SYN || op.flags === ACK || op.flags === PSH_ACK;
          if (!valid) {
            if (result !== CreateError.Invalid) return false;
            continue;
          }
          if (result < 0) return false;
          for (const [k, e] of model) if (live(e) === undefined) model.delete(k);
          const state = flow.orig.proto === TCP ? (op.flags === SYN ? TcpState.SynSent : TcpState.Established) : 0;
          const timeout = flow.orig.proto === TCP ? (state === TcpState.Established ? 300 : 120) : TIMEOUT_S.udp;
          model.set(key(flow.orig), {
            origKey: key(flow.orig),
            replyKey: key(flow.reply),
            proto: flow.orig.proto,
            state,
            seenReply: false,
            assured: false,
            expires: now + timeout * SECOND,
            packets: [1, 0],
            created: now,
          });
          continue;
        }
        const { e, dir } = found;
        if (refDir(ref) !== dir) return false;
        const verdict = ct.update(ref, op.flags, 60, now);
        if (verdict === TrackVerdict.Reopen) {
          if (ct.lookupTuple(sent, now) !== CT_NOT_FOUND) return false;
          model.delete(e.origKey);
          continue;
        }
        if (e.proto === UDP) {
          const stream = e.seenReply && now > e.created + 2 * SECOND;
          e.expires = now + (stream ? TIMEOUT_S.stream : TIMEOUT_S.udp) * SECOND;
          if (stream) e.assured = true;
          if (dir === 1) e.seenReply = true;
          e.packets[dir]++;
        } else if (verdict === TrackVerdict.Accept) {
          // The TCP state itself comes from the table under test (the walks above check
          // it); the model checks that timeouts, flags and counters follow from it.
          const old = e.state;
          e.state = ct.tcpState(refId(ref));
          const rst = (op.flags & TCP_RST) !== 0;
          if (!e.seenReply && rst) {
            e.expires = now;
          } else if (!(!e.seenReply && (op.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN && old === TcpState.SynSent)) {
            let timeout = TCP_TIMEOUT_S[e.state];
            if (!e.seenReply && e.state === TcpState.Established) timeout = Math.min(timeout, 300);
            if (e.seenReply && (old === TcpState.SynRecv || old === TcpState.Established) && e.state === TcpState.Established) e.assured = true;
            e.expires = now + timeout * SECOND;
          }
          if (dir === 1) e.seenReply = true;
          e.packets[dir]++;
        }
        const id = refId(ref);
        if (ct.isAssured(id) !== e.assured || ct.seenReply(id) !== e.seenReply) return false;
        if (live(e) !== undefined) {
          if (ct.remainingMs(id, now) !== (e.expires - now) / MS) return false;
          if (ct.packets(id, 0) !== e.packets[0] || ct.packets(id, 1) !== e.packets[1]) return false;
        }
      }
      // After a full reap the table holds exactly the model's live entries.
      ct.expire(now, 1000);
      const alive = [...model.values()].filter((e) => live(e) !== undefined);
      return ct.size === alive.length && ct.list(now).length === alive.length;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('natted() is set at create exactly when the entry translates, and packets never clear it', (t) => {
  const ICMP = 1;
  fc.assert(
    fc.property(
      fc.constantFrom(TCP, UDP, ICMP),
      fc.integer({ min: 1024, max: 65535 }),
      fc.integer({ min: 1, max: 65535 }),
      fc.boolean(),
      fc.boolean(),
      fc.array(fc.boolean(), { maxLength: 6 }),
      (proto, sport, dport, dnat, snat, directions) => {
        const ct = new Conntrack({ maxEntries: 4 });
        // ICMP: an echo request with identifier `sport`; SNAT changes the identifier.
        const orig = proto === ICMP ? tuple(CLIENT, VIP, sport, 8 << 8, ICMP) : tuple(CLIENT, VIP, sport, dport, proto);
        const reply = replyOf(orig);
        if (dnat) setReplySource(reply, SERVER, proto === ICMP ? reply.sport : 8080);
        if (snat) setReplyDestination(reply, NODE, proto === ICMP ? (sport ^ 0x5a5a) || 1 : 61000);
        const ref = ct.create(orig, reply, SYN, 60, T0);
        if (ref < 0) return false;
        const id = refId(ref);
        const expected = ct.natKind(id) !== NatKind.None;
        if (ct.natted(id) !== expected) return false;
        let now = T0;
        for (const reverse of directions) {
          now += SECOND;
          ct.update(reverse ? ref + 1 : ref, reverse ? SYN_ACK : ACK, 60, now);
          if (ct.natted(id) !== expected) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  // The plain pod-to-pod connection, and the service one, spelled out.
  const ct = new Conntrack({ maxEntries: 4 });
  const plain = tuple(CLIENT, SERVER, 40000, 80, TCP);
  t.false(ct.natted(refId(ct.create(plain, replyOf(plain), SYN, 60, T0))));
  const viaVip = tuple(CLIENT, VIP, 40001, 80, TCP);
  const reply = replyOf(viaVip);
  setReplySource(reply, SERVER, 8080);
  t.true(ct.natted(refId(ct.create(viaVip, reply, SYN, 60, T0))));
});
