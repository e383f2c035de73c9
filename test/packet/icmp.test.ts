import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import fc from 'fast-check';
import { parseIpv4 } from '../../src/packet/addr.js';
import { readU16, readU32 } from '../../src/packet/bytes.js';
import { internetChecksum } from '../../src/packet/checksum.js';
import { PacketError, PacketOk } from '../../src/packet/errors.js';
import {
  emitIcmp,
  icmpBufferLen,
  IcmpView,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_FRAG_NEEDED,
  ICMP_HEADER_LEN,
  ICMP_PORT_UNREACHABLE,
  ICMP_TIME_EXCEEDED,
  ICMP_TTL_EXCEEDED,
  parseIcmp,
  type IcmpRepr,
} from '../../src/packet/icmp.js';
import { exerciseIcmp, fence, fenced, randomWindow } from '../helpers/bounds.js';
import { hex, poisoned } from '../helpers/bytes.js';

const POD_A = parseIpv4('10.244.1.2')!;
const POD_B = parseIpv4('10.244.2.2')!;

// A ping from 10.244.1.2 to 10.244.2.2 (test/fixtures/arp-ping.pcap, frame 3, from byte 34):
// echo request, id 4991, seq 1, 56 bytes of data (a timestamp, then 0x10, 0x11, ...).
const ECHO_REQUEST = hex(`
  08 00 c9 f5 13 7f 00 01 a9 e8 01 6b 00 00 00 00
  ab 63 05 00 00 00 00 00 10 11 12 13 14 15 16 17
  18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25 26 27
  28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37
`);

// Its reply (arp-ping.pcap, frame 4, from byte 34): echo reply, id 4991, seq 1.
const ECHO_REPLY = hex(`
  00 00 d1 f5 13 7f 00 01 a9 e8 01 6b 00 00 00 00
  ab 63 05 00 00 00 00 00 10 11 12 13 14 15 16 17
  18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25 26 27
  28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37
`);

// An echo request sent with TTL 1 (test/fixtures/ttl-exceeded.pcap, frame 2, from byte 34): time
// exceeded in transit from the gateway 10.244.1.1, quoting the whole 84-byte echo request (ttl 1,
// id 57560, 10.244.1.2 > 10.244.2.2, ICMP echo id 5024 seq 1).
const TTL_EXCEEDED = hex(`
  0b 00 f4 ff 00 00 00 00 45 00 00 54 e0 d8 40 00
  01 01 7f e5 0a f4 01 02 0a f4 02 02 08 00 ee b1
  13 a0 00 01 ad e8 01 6b 00 00 00 00 7f 86 08 00
  00 00 00 00 10 11 12 13 14 15 16 17 18 19 1a 1b
  1c 1d 1e 1f 20 21 22 23 24 25 26 27 28 29 2a 2b
  2c 2d 2e 2f 30 31 32 33 34 35 36 37
`);

// A 1428-byte echo request with DF set (test/fixtures/frag-needed.pcap, frame 2, from byte 34):
// "unreachable - need to frag (mtu 1280)" from 10.244.1.1, quoting the request (id 5031
// seq 1) cut so that the whole reply is 576 bytes.
const FRAG_NEEDED = hex(`
  03 04 0e c9 00 00 05 00 45 00 05 94 00 00 40 00
  40 01 1c 7e 0a f4 01 02 0a f4 02 02 08 00 73 ce
  13 a7 00 01 ae e8 01 6b 00 00 00 00 4c 19 09 00
  00 00 00 00 10 11 12 13 14 15 16 17 18 19 1a 1b
  1c 1d 1e 1f 20 21 22 23 24 25 26 27 28 29 2a 2b
  2c 2d 2e 2f 30 31 32 33 34 35 36 37 38 39 3a 3b
  3c 3d 3e 3f 40 41 42 43 44 45 46 47 48 49 4a 4b
  4c 4d 4e 4f 50 51 52 53 54 55 56 57 58 59 5a 5b
  5c 5d 5e 5f 60 61 62 63 64 65 66 67 68 69 6a 6b
  6c 6d 6e 6f 70 71 72 73 74 75 76 77 78 79 7a 7b
  7c 7d 7e 7f 80 81 82 83 84 85 86 87 88 89 8a 8b
  8c 8d 8e 8f 90 91 92 93 94 95 96 97 98 99 9a 9b
  9c 9d 9e 9f a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab
  ac ad ae af b0 b1 b2 b3 b4 b5 b6 b7 b8 b9 ba bb
  bc bd be bf c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 ca cb
  cc cd ce cf d0 d1 d2 d3 d4 d5 d6 d7 d8 d9 da db
  dc dd de df e0 e1 e2 e3 e4 e5 e6 e7 e8 e9 ea eb
  ec ed ee ef f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb
  fc fd fe ff 00 01 02 03 04 05 06 07 08 09 0a 0b
  0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b
  1c 1d 1e 1f 20 21 22 23 24 25 26 27 28 29 2a 2b
  2c 2d 2e 2f 30 31 32 33 34 35 36 37 38 39 3a 3b
  3c 3d 3e 3f 40 41 42 43 44 45 46 47 48 49 4a 4b
  4c 4d 4e 4f 50 51 52 53 54 55 56 57 58 59 5a 5b
  5c 5d 5e 5f 60 61 62 63 64 65 66 67 68 69 6a 6b
  6c 6d 6e 6f 70 71 72 73 74 75 76 77 78 79 7a 7b
  7c 7d 7e 7f 80 81 82 83 84 85 86 87 88 89 8a 8b
  8c 8d 8e 8f 90 91 92 93 94 95 96 97 98 99 9a 9b
  9c 9d 9e 9f a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab
  ac ad ae af b0 b1 b2 b3 b4 b5 b6 b7 b8 b9 ba bb
  bc bd be bf c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 ca cb
  cc cd ce cf d0 d1 d2 d3 d4 d5 d6 d7 d8 d9 da db
  dc dd de df e0 e1 e2 e3 e4 e5 e6 e7 e8 e9 ea eb
  ec ed ee ef f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb
  fc fd fe ff 00 01 02 03 04 05 06 07
`);

// A DNS query to 10.244.2.2:5353 where nothing listens (test/fixtures/udp-unreachable.pcap,
// frame 2, from byte 34): "udp port 5353 unreachable", quoting the 80-byte query from 44820.
const PORT_UNREACHABLE = hex(`
  03 03 16 36 00 00 00 00 45 00 00 50 4b 2f 00 00
  3f 11 17 83 0a f4 01 02 0a f4 02 02 af 14 14 e9
  00 3c 83 c1 cd 51 01 20 00 01 00 00 00 00 00 01
  07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00
  01 00 00 29 04 d0 00 00 00 00 00 0c 00 0a 00 08
  b0 b2 55 b9 57 84 9e e3
`);

function view(buf: Uint8Array, offset = 0, available = buf.length - offset): IcmpView {
  const v = IcmpView.checked(buf, offset, available);
  if (typeof v === 'number') throw new Error(`checked: ${v}`);
  return v;
}

/** Emits `repr` into a poisoned buffer after copying the golden data after the header. */
function reemit(repr: IcmpRepr, golden: Buffer): Buffer {
  const buf = poisoned(golden.length);
  golden.copy(buf, ICMP_HEADER_LEN, ICMP_HEADER_LEN);
  emitIcmp(repr, buf, 0, golden.length - ICMP_HEADER_LEN);
  return buf;
}

test('golden echo request and reply: fields, checksum, parse and emit', (t) => {
  const request = view(ECHO_REQUEST);
  t.is(request.type, ICMP_ECHO_REQUEST);
  t.is(request.code, 0);
  t.is(request.checksum, 0xc9f5);
  t.is(request.identifier, 4991);
  t.is(request.sequence, 1);
  t.is(request.length, 64);
  t.is(request.payloadLength, 56);
  t.false(request.isError);
  t.true(request.verifyChecksum());
  const requestRepr = parseIcmp(request);
  t.deepEqual(requestRepr, { kind: 'echoRequest', id: 4991, seq: 1 });
  t.deepEqual(reemit(requestRepr as IcmpRepr, ECHO_REQUEST), ECHO_REQUEST);

  const reply = view(ECHO_REPLY);
  t.is(reply.type, ICMP_ECHO_REPLY);
  t.is(reply.checksum, 0xd1f5);
  t.is(reply.identifier, 4991);
  t.is(reply.sequence, 1);
  t.true(reply.verifyChecksum());
  const replyRepr = parseIcmp(reply);
  t.deepEqual(replyRepr, { kind: 'echoReply', id: 4991, seq: 1 });
  t.deepEqual(reemit(replyRepr as IcmpRepr, ECHO_REPLY), ECHO_REPLY);
});

test('golden time exceeded: fields, the quoted datagram, parse and emit', (t) => {
  const v = view(TTL_EXCEEDED);
  t.is(v.type, ICMP_TIME_EXCEEDED);
  t.is(v.code, ICMP_TTL_EXCEEDED);
  t.is(v.checksum, 0xf4ff);
  t.is(v.restOfHeader, 0);
  t.true(v.isError);
  t.true(v.verifyChecksum());
  // The quoted IPv4 header, read as plain bytes: version 4, IHL 5, total length 84, ttl 1,
  // protocol ICMP, 10.244.1.2 > 10.244.2.2; then the quoted echo id 5024 seq 1.
  const e = v.embeddedOffset;
  t.is(e, 8);
  t.is(v.embeddedLength, 84);
  t.is(TTL_EXCEEDED[e], 0x45);
  t.is(readU16(TTL_EXCEEDED, e + 2), 84);
  t.is(readU16(TTL_EXCEEDED, e + 4), 57560);
  t.is(TTL_EXCEEDED[e + 8], 1);
  t.is(TTL_EXCEEDED[e + 9], 1);
  t.is(readU32(TTL_EXCEEDED, e + 12), POD_A);
  t.is(readU32(TTL_EXCEEDED, e + 16), POD_B);
  t.is(TTL_EXCEEDED[e + 20], ICMP_ECHO_REQUEST);
  t.is(readU16(TTL_EXCEEDED, e + 24), 5024);
  t.is(readU16(TTL_EXCEEDED, e + 26), 1);
  const repr = parseIcmp(v);
  t.deepEqual(repr, { kind: 'timeExceeded', code: 0 });
  t.deepEqual(reemit(repr as IcmpRepr, TTL_EXCEEDED), TTL_EXCEEDED);
});

test('golden fragmentation needed: the next-hop MTU, parse and emit', (t) => {
  const v = view(FRAG_NEEDED);
  t.is(v.type, ICMP_DEST_UNREACHABLE);
  t.is(v.code, ICMP_FRAG_NEEDED);
  t.is(v.checksum, 0x0ec9);
  t.is(v.nextHopMtu, 1280);
  t.is(v.length, 556);
  t.true(v.verifyChecksum());
  const e = v.embeddedOffset;
  t.is(FRAG_NEEDED[e], 0x45);
  t.is(readU16(FRAG_NEEDED, e + 2), 1428); // the original total length, beyond what is quoted
  t.is(readU16(FRAG_NEEDED, e + 6), 0x4000); // DF
  t.is(readU32(FRAG_NEEDED, e + 12), POD_A);
  t.is(readU32(FRAG_NEEDED, e + 16), POD_B);
  t.is(readU16(FRAG_NEEDED, e + 24), 5031);
  const repr = parseIcmp(v);
  t.deepEqual(repr, { kind: 'destUnreachable', code: ICMP_FRAG_NEEDED, mtu: 1280 });
  t.deepEqual(reemit(repr as IcmpRepr, FRAG_NEEDED), FRAG_NEEDED);
});

test('golden port unreachable: the quoted UDP ports, parse and emit', (t) => {
  const v = view(PORT_UNREACHABLE);
  t.is(v.type, ICMP_DEST_UNREACHABLE);
  t.is(v.code, ICMP_PORT_UNREACHABLE);
  t.is(v.checksum, 0x1636);
  t.true(v.verifyChecksum());
  const e = v.embeddedOffset;
  t.is(PORT_UNREACHABLE[e + 9], 17); // UDP
  t.is(readU32(PORT_UNREACHABLE, e + 12), POD_A);
  t.is(readU32(PORT_UNREACHABLE, e + 16), POD_B);
  t.is(readU16(PORT_UNREACHABLE, e + 20), 44820);
  t.is(readU16(PORT_UNREACHABLE, e + 22), 5353);
  const repr = parseIcmp(v);
  t.deepEqual(repr, { kind: 'destUnreachable', code: ICMP_PORT_UNREACHABLE });
  t.deepEqual(reemit(repr as IcmpRepr, PORT_UNREACHABLE), PORT_UNREACHABLE);
});

test('a flipped bit fails the checksum, unless parse is told not to judge it', (t) => {
  const copy = Buffer.from(ECHO_REQUEST);
  copy[40] ^= 0x01;
  t.is(parseIcmp(view(copy)), PacketError.BadChecksum);
  t.deepEqual(parseIcmp(view(copy), false), { kind: 'echoRequest', id: 4991, seq: 1 });
});

test('impossible lengths are refused by the checked constructor', (t) => {
  t.is(IcmpView.checked(ECHO_REQUEST.subarray(0, 7)), PacketError.Truncated);
  t.is(new IcmpView().check(ECHO_REQUEST, 0, 7), PacketError.Truncated);
  t.is(new IcmpView().check(ECHO_REQUEST, 60, 8), PacketError.Truncated); // past the end
  t.is(new IcmpView().check(ECHO_REQUEST, 0, 65), PacketError.Truncated);
  t.is(new IcmpView().check(ECHO_REQUEST, 56, 8), PacketOk);
  t.is(IcmpView.checked(ECHO_REQUEST.subarray(0, 8)) instanceof IcmpView, true);
});

test('unknown types and echo with a non-zero code are carried through as other', (t) => {
  const redirect = Buffer.from(TTL_EXCEEDED);
  redirect[0] = 5; // redirect: bytes 4-7 are the gateway address
  redirect.set([10, 244, 1, 254], 4);
  const v = view(redirect);
  v.fillChecksum();
  t.deepEqual(parseIcmp(v), { kind: 'other', type: 5, code: 0, rest: parseIpv4('10.244.1.254')! });
  const odd = Buffer.from(ECHO_REQUEST);
  odd[1] = 1;
  t.deepEqual(parseIcmp(view(odd), false), { kind: 'other', type: ICMP_ECHO_REQUEST, code: 1, rest: 0x137f0001 });
});

test('NAT: an incremental identifier rewrite keeps the golden checksum valid', (t) => {
  const copy = Buffer.from(ECHO_REQUEST);
  const v = view(copy);
  v.setIdentifierIncremental(0xbeef);
  t.is(v.identifier, 0xbeef);
  t.is(v.sequence, 1);
  t.true(v.verifyChecksum());
  const incremental = v.checksum;
  v.fillChecksum();
  t.is(v.checksum, incremental);
});

test('a view works at a non-zero offset, bounded by the IP payload length', (t) => {
  const framed = Buffer.concat([Buffer.alloc(34, 0xee), ECHO_REPLY, Buffer.alloc(6, 0xee)]);
  const v = new IcmpView();
  t.is(v.check(framed, 34, ECHO_REPLY.length), PacketOk);
  t.is(v.payloadOffset, 42);
  t.true(v.verifyChecksum());
  t.deepEqual(parseIcmp(v), { kind: 'echoReply', id: 4991, seq: 1 });
});

// ---- properties ----

const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const noProto = { noNullPrototype: true };

const repr: fc.Arbitrary<IcmpRepr> = fc.oneof(
  fc.record({ kind: fc.constantFrom('echoRequest' as const, 'echoReply' as const), id: u16, seq: u16 }, noProto),
  u8.chain((code) =>
    code === ICMP_FRAG_NEEDED
      ? fc.record({ kind: fc.constant('destUnreachable' as const), code: fc.constant(code), mtu: u16 }, noProto)
      : fc.constant({ kind: 'destUnreachable' as const, code }),
  ),
  fc.record({ kind: fc.constant('timeExceeded' as const), code: u8 }, noProto),
  fc.record(
    {
      kind: fc.constant('other' as const),
      type: u8.filter((type) => ![ICMP_ECHO_REPLY, ICMP_DEST_UNREACHABLE, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED].includes(type)),
      code: u8,
      rest: fc.integer({ min: 0, max: 0xffffffff }),
    },
    noProto,
  ),
);

test('property: emit then parse gives back the repr, into a poisoned buffer, at any offset', (t) => {
  fc.assert(
    fc.property(repr, fc.uint8Array({ maxLength: 64, size: 'max' }), fc.integer({ min: 1, max: 40 }), (r, data, offset) => {
      const buf = poisoned(offset + icmpBufferLen(data.length) + 3);
      buf.set(data, offset + ICMP_HEADER_LEN);
      const written = emitIcmp(r, buf, offset, data.length);
      const v = new IcmpView();
      return (
        written === ICMP_HEADER_LEN &&
        v.check(buf, offset, icmpBufferLen(data.length)) === PacketOk &&
        v.payloadLength === data.length &&
        isDeepStrictEqual(parseIcmp(v), r)
      );
    }),
  );
  t.pass();
});

test('property: an incremental identifier rewrite equals a full recompute', (t) => {
  fc.assert(
    fc.property(u16, u16, fc.uint8Array({ maxLength: 64, size: 'max' }), u16, (id, seq, data, newId) => {
      const buf = poisoned(icmpBufferLen(data.length));
      buf.set(data, ICMP_HEADER_LEN);
      emitIcmp({ kind: 'echoRequest', id, seq }, buf, 0, data.length);
      const v = view(buf);
      v.setIdentifierIncremental(newId);
      const incremental = v.checksum;
      const verifies = v.verifyChecksum();
      v.checksum = 0;
      return verifies && incremental === internetChecksum(buf, 0, buf.length);
    }),
  );
  t.pass();
});

test('property: check never throws, and after PacketOk every accessor stays inside the window', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(randomWindow(40), (w) => {
      const v = new IcmpView();
      const result = v.check(fence(w), w.offset, w.available);
      if (result !== PacketOk) return result === PacketError.Truncated && w.available < ICMP_HEADER_LEN;
      accepted++;
      exerciseIcmp(v, w.available);
      return true;
    }),
    { numRuns: 1000 },
  );
  // Only windows under 8 bytes are refused: most runs must reach the accessors.
  t.true(accepted > 600, `only ${accepted} of 1000 accepted`);
});

test('property: check refuses a window that is not inside the buffer, and reads nothing outside it', (t) => {
  const edge = fc.integer({ min: -2, max: 50 });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40, size: 'max' }), edge, edge, (bytes, offset, available) => {
      const result = new IcmpView().check(fenced(bytes, 0, bytes.length), offset, available);
      const inside = offset >= 0 && available >= ICMP_HEADER_LEN && offset + available <= bytes.length;
      return inside || result !== PacketOk;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
