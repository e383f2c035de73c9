import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import fc from 'fast-check';
import { parseIpv4 } from '../../src/packet/addr.js';
import { PacketError, PacketOk } from '../../src/packet/errors.js';
import {
  emitTcp,
  parseTcp,
  tcpBufferLen,
  tcpChecksum,
  tcpHeaderLen,
  TcpOptionsCursor,
  TcpView,
  TCP_ACK,
  TCP_HEADER_LEN,
  TCP_OPT_MSS,
  TCP_OPT_NOP,
  TCP_OPT_SACK_PERM,
  TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE,
  TCP_PSH,
  TCP_SYN,
  type TcpOptions,
  type TcpRepr,
} from '../../src/packet/tcp.js';
import { exerciseTcp, fence, fenced, randomWindow, walkTcpOptions } from '../helpers/bounds.js';
import { hex, poisoned } from '../helpers/bytes.js';

const CLIENT = parseIpv4('10.244.1.2')!;
const SERVER = parseIpv4('10.244.2.2')!;
const UP = { src: CLIENT, dst: SERVER };
const DOWN = { src: SERVER, dst: CLIENT };

// `curl http://10.244.2.2/` as the kernel sent it (test/fixtures/http.pcap, frame 1, from
// byte 34): the SYN, with Linux's options [mss 1460,sackOK,TS val 3589049629 ecr 0,nop,wscale 10].
const SYN = hex(`
  c7 84 00 50 32 e9 61 61 00 00 00 00 a0 02 fa f0
  74 f7 00 00 02 04 05 b4 04 02 08 0a d5 ec 8d 1d
  00 00 00 00 01 03 03 0a
`);
const SYN_REPR: TcpRepr = {
  srcPort: 51076,
  dstPort: 80,
  seq: 854155617,
  ack: 0,
  flags: TCP_SYN,
  window: 64240,
  urgent: 0,
  options: { mss: 1460, sackPermitted: true, timestamps: { tsval: 3589049629, tsecr: 0 }, windowScale: 10 },
};

// The server's SYN-ACK (http.pcap, frame 2, from byte 34): [mss 1240,sackOK,TS val 1309813192
// ecr 3589049629,nop,wscale 10].
const SYN_ACK = hex(`
  00 50 c7 84 23 db 35 38 32 e9 61 62 a0 12 fe 3c
  a1 88 00 00 02 04 04 d8 04 02 08 0a 4e 12 29 c8
  d5 ec 8d 1d 01 03 03 0a
`);

// The request (http.pcap, frame 4, from byte 34): Flags [P.], seq 1:75, ack 1, win 63,
// options [nop,nop,TS val 3589049630 ecr 1309813192], then 74 bytes of "GET / HTTP/1.1...".
const DATA = hex(`
  c7 84 00 50 32 e9 61 62 23 db 35 39 80 18 00 3f
  c3 21 00 00 01 01 08 0a d5 ec 8d 1e 4e 12 29 c8
  47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a
  48 6f 73 74 3a 20 31 30 2e 32 34 34 2e 32 2e 32
  0d 0a 55 73 65 72 2d 41 67 65 6e 74 3a 20 63 75
  72 6c 2f 37 2e 38 38 2e 31 0d 0a 41 63 63 65 70
  74 3a 20 2a 2f 2a 0d 0a 0d 0a
`);
const DATA_REPR: TcpRepr = {
  srcPort: 51076,
  dstPort: 80,
  seq: 854155618,
  ack: 601568569,
  flags: TCP_PSH | TCP_ACK,
  window: 63,
  urgent: 0,
  options: { sackPermitted: false, timestamps: { tsval: 3589049630, tsecr: 1309813192 } },
};

function view(buf: Uint8Array, offset = 0, available = buf.length - offset): TcpView {
  const v = TcpView.checked(buf, offset, available);
  if (typeof v === 'number') throw new Error(`checked: ${v}`);
  return v;
}

test('golden SYN: fields and checksum', (t) => {
  const v = view(SYN);
  t.is(v.srcPort, 51076);
  t.is(v.dstPort, 80);
  t.is(v.seqNumber, 854155617);
  t.is(v.ackNumber, 0);
  t.is(v.dataOffset, 10);
  t.is(v.headerLength, 40);
  t.is(v.flags, TCP_SYN);
  t.deepEqual([v.fin, v.syn, v.rst, v.psh, v.ack, v.urg, v.ece, v.cwr], [false, true, false, false, false, false, false, false]);
  t.is(v.window, 64240);
  t.is(v.checksum, 0x74f7);
  t.is(v.urgentPointer, 0);
  t.is(v.optionsOffset, 20);
  t.is(v.optionsLength, 20);
  t.is(v.payloadOffset, 40);
  t.is(v.payloadLength, 0);
  t.true(v.verifyChecksum(CLIENT, SERVER));
  t.false(v.verifyChecksum(SERVER, CLIENT + 1));
  t.deepEqual(parseTcp(v, UP), SYN_REPR);
});

test('golden SYN: the options cursor walks mss, sackOK, TS, wscale and skips the NOP', (t) => {
  const cursor = new TcpOptionsCursor();
  cursor.reset(view(SYN));
  const seen: number[][] = [];
  while (cursor.next()) seen.push([cursor.kind, cursor.length, cursor.valueOffset]);
  t.is(cursor.error, PacketOk);
  t.deepEqual(seen, [
    [TCP_OPT_MSS, 4, 22],
    [TCP_OPT_SACK_PERM, 2, 26],
    [TCP_OPT_TIMESTAMP, 10, 28],
    [TCP_OPT_WSCALE, 3, 39],
  ]);
  t.false(cursor.next()); // stays finished
});

test('golden SYN: emit reproduces the kernel bytes, options and checksum included', (t) => {
  t.is(tcpHeaderLen(SYN_REPR), 40);
  const buf = poisoned(SYN.length);
  t.is(emitTcp(SYN_REPR, buf, 0, 0, UP), 40);
  t.deepEqual(buf, SYN);
});

test('golden SYN-ACK: fields, parse and emit', (t) => {
  const v = view(SYN_ACK);
  t.is(v.flags, TCP_SYN | TCP_ACK);
  t.true(v.syn && v.ack);
  t.is(v.seqNumber, 601568568);
  t.is(v.ackNumber, 854155618);
  t.is(v.window, 65084);
  t.is(v.checksum, 0xa188);
  const repr = parseTcp(v, DOWN);
  t.deepEqual(repr, {
    srcPort: 80,
    dstPort: 51076,
    seq: 601568568,
    ack: 854155618,
    flags: TCP_SYN | TCP_ACK,
    window: 65084,
    urgent: 0,
    options: { mss: 1240, sackPermitted: true, timestamps: { tsval: 1309813192, tsecr: 3589049629 }, windowScale: 10 },
  });
  const buf = poisoned(SYN_ACK.length);
  emitTcp(repr as TcpRepr, buf, 0, 0, DOWN);
  t.deepEqual(buf, SYN_ACK);
});

test('golden data segment: fields, payload and emit', (t) => {
  const v = view(DATA);
  t.is(v.headerLength, 32);
  t.is(v.flags, TCP_PSH | TCP_ACK);
  t.true(v.psh && v.ack && !v.syn);
  t.is(v.seqNumber, 854155618);
  t.is(v.ackNumber, 601568569);
  t.is(v.window, 63);
  t.is(v.checksum, 0xc321);
  t.is(v.payloadOffset, 32);
  t.is(v.payloadLength, 74);
  t.true(Buffer.from(v.payload()).toString('latin1').startsWith('GET / HTTP/1.1\r\nHost: 10.244.2.2\r\n'));
  t.true(v.verifyChecksum(CLIENT, SERVER));
  t.deepEqual(parseTcp(v, UP), DATA_REPR);

  const buf = poisoned(DATA.length);
  DATA.copy(buf, 32, 32);
  t.is(emitTcp(DATA_REPR, buf, 0, 74, UP), 32);
  t.deepEqual(buf, DATA);
});

test('the view honours the IP payload length, not the buffer end', (t) => {
  // A frame padded to the Ethernet minimum: trailing bytes are not segment data.
  const padded = Buffer.concat([DATA, Buffer.alloc(6, 0xee)]);
  const v = view(padded, 0, DATA.length);
  t.is(v.payloadLength, 74);
  t.true(v.verifyChecksum(CLIENT, SERVER));
});

test('a flipped bit fails the checksum', (t) => {
  const copy = Buffer.from(DATA);
  copy[40] ^= 0x01;
  t.is(parseTcp(view(copy), UP), PacketError.BadChecksum);
  t.not(typeof parseTcp(view(copy)), 'number'); // without addresses the checksum is not judged
});

test('port 0 is refused by parse', (t) => {
  for (const at of [0, 2]) {
    const copy = Buffer.from(SYN);
    copy.writeUInt16BE(0, at);
    t.is(parseTcp(view(copy)), PacketError.BadField);
  }
});

test('impossible lengths are refused by the checked constructor', (t) => {
  t.is(TcpView.checked(SYN.subarray(0, 19)), PacketError.Truncated);
  t.is(new TcpView().check(SYN, 30, 20), PacketError.Truncated); // past the end of the buffer
  t.is(new TcpView().check(SYN, 0, 41), PacketError.Truncated);
  const low = Buffer.from(DATA);
  low[12] = 0x40; // data offset 4: below the fixed header
  t.is(TcpView.checked(low), PacketError.BadHeaderLength);
  low[12] = 0x00;
  t.is(TcpView.checked(low), PacketError.BadHeaderLength);
  const high = Buffer.from(SYN);
  high[12] = 0xb0; // data offset 11 = 44 bytes, in a 40-byte segment
  t.is(TcpView.checked(high), PacketError.BadHeaderLength);
  // The caller's bound counts, not the buffer's: 40 header bytes in 39 available.
  t.is(new TcpView().check(SYN, 0, 39), PacketError.BadHeaderLength);
  t.is(new TcpView().check(SYN, 0, 40), PacketOk);
});

function optionsError(bytes: Buffer): number {
  const cursor = new TcpOptionsCursor();
  cursor.reset(view(bytes));
  while (cursor.next());
  return cursor.error;
}

test('impossible options are refused by the cursor and by parse', (t) => {
  const cases: Array<[string, number, number[]]> = [
    ['MSS length 0', 21, [0]],
    ['MSS length 1', 21, [1]],
    ['wscale runs past the header', 38, [4]],
    ['TS length past the header', 27, [0xff]],
    ['a kind with no room for its length byte', 36, [1, 1, 1, 2]],
  ];
  for (const [name, at, bytes] of cases) {
    const copy = Buffer.from(SYN);
    copy.set(bytes, at);
    t.is(optionsError(copy), PacketError.BadOption, name);
    t.is(parseTcp(view(copy)), PacketError.BadOption, name);
  }
});

test('EOL ends the options: what follows is padding and not read', (t) => {
  const copy = Buffer.from(SYN);
  copy.set([0, 0xff, 0xff, 0xff], 36); // EOL then garbage instead of NOP wscale
  t.is(optionsError(copy), PacketOk);
  const repr = parseTcp(view(copy)) as TcpRepr;
  t.is(repr.options.windowScale, undefined);
  t.is(repr.options.mss, 1460);
});

test('a known kind with the wrong length is ignored, as Linux does', (t) => {
  const copy = Buffer.from(SYN);
  copy.set([TCP_OPT_MSS, 3, 0x05, TCP_OPT_NOP], 20); // MSS with length 3, then a NOP
  const repr = parseTcp(view(copy)) as TcpRepr;
  t.is(repr.options.mss, undefined);
  t.true(repr.options.sackPermitted);
});

test('SACK blocks are parsed and emitted the Linux way (NOP NOP SACK)', (t) => {
  const repr: TcpRepr = {
    ...DATA_REPR,
    options: { sackPermitted: false, timestamps: { tsval: 1, tsecr: 2 }, sackBlocks: [{ left: 100, right: 200 }, { left: 300, right: 400 }] },
  };
  const buf = poisoned(tcpBufferLen(repr));
  t.is(emitTcp(repr, buf, 0, 0), 20 + 12 + 4 + 16);
  t.deepEqual(buf.subarray(32, 36), hex('01 01 05 12'));
  t.deepEqual(parseTcp(view(buf)), repr);
});

test('NAT: incremental port and address rewrites keep the golden checksum valid', (t) => {
  const copy = Buffer.from(DATA);
  const v = view(copy);
  const natted = parseIpv4('192.0.2.7')!;
  v.setSrcPortIncremental(40000);
  v.setDstPortIncremental(8080);
  v.adjustChecksumForAddress(CLIENT, natted);
  t.is(v.srcPort, 40000);
  t.is(v.dstPort, 8080);
  t.true(v.verifyChecksum(natted, SERVER));
  const incremental = v.checksum;
  v.fillChecksum(natted, SERVER);
  t.is(v.checksum, incremental);
});

test('a view works at a non-zero offset', (t) => {
  const framed = Buffer.concat([Buffer.alloc(34, 0xee), SYN]);
  const v = new TcpView();
  t.is(v.check(framed, 34), PacketOk);
  t.is(v.payloadOffset, 74);
  t.true(v.verifyChecksum(CLIENT, SERVER));
  t.deepEqual(parseTcp(v, UP), SYN_REPR);
});

// ---- properties ----

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 1, max: 0xffff });

const options = fc.record<TcpOptions>(
  {
    mss: u16,
    windowScale: fc.integer({ min: 0, max: 255 }),
    sackPermitted: fc.boolean(),
    timestamps: fc.record({ tsval: u32, tsecr: u32 }, { noNullPrototype: true }),
    sackBlocks: fc.array(fc.record({ left: u32, right: u32 }, { noNullPrototype: true }), { minLength: 1, maxLength: 4 }),
  },
  { requiredKeys: ['sackPermitted'], noNullPrototype: true },
);

const repr = fc.record<TcpRepr>({
  srcPort: port,
  dstPort: port,
  seq: u32,
  ack: u32,
  flags: fc.integer({ min: 0, max: 255 }),
  window: u16,
  urgent: u16,
  options,
}, { noNullPrototype: true });

/** The repr parse should give back: SACK blocks cut to what fits in 40 bytes, as Linux does. */
function expected(r: TcpRepr): TcpRepr {
  const o = r.options;
  if (o.sackBlocks === undefined) return r;
  const fixed = (o.mss !== undefined ? 4 : 0) + (o.timestamps !== undefined ? 12 : o.sackPermitted ? 4 : 0) + (o.windowScale !== undefined ? 4 : 0);
  const fit = Math.min(o.sackBlocks.length, Math.floor((40 - fixed - 4) / 8));
  const { sackBlocks, ...rest } = o;
  return { ...r, options: fit > 0 ? { ...rest, sackBlocks: sackBlocks.slice(0, fit) } : rest };
}

test('property: emit then parse gives back the repr, into a poisoned buffer, at any offset', (t) => {
  fc.assert(
    fc.property(repr, fc.uint8Array({ maxLength: 64, size: 'max' }), fc.integer({ min: 1, max: 40 }), u32, u32, (r, payload, offset, src, dst) => {
      const headerLength = tcpHeaderLen(r);
      const buf = poisoned(offset + tcpBufferLen(r, payload.length) + 3);
      buf.set(payload, offset + headerLength);
      const addrs = { src, dst };
      const written = emitTcp(r, buf, offset, payload.length, addrs);
      const v = new TcpView();
      return (
        written === headerLength &&
        headerLength % 4 === 0 &&
        headerLength <= 60 &&
        v.check(buf, offset, headerLength + payload.length) === PacketOk &&
        v.payloadLength === payload.length &&
        isDeepStrictEqual(parseTcp(v, addrs), expected(r))
      );
    }),
  );
  t.pass();
});

test('property: incremental port and address rewrites equal a full recompute', (t) => {
  fc.assert(
    fc.property(repr, fc.uint8Array({ maxLength: 64, size: 'max' }), u32, u32, port, port, u32, u32, (r, payload, src, dst, newSrcPort, newDstPort, newSrc, newDst) => {
      const headerLength = tcpHeaderLen(r);
      const buf = poisoned(headerLength + payload.length);
      buf.set(payload, headerLength);
      emitTcp(r, buf, 0, payload.length, { src, dst });
      const v = new TcpView();
      if (v.check(buf) !== PacketOk) return false;
      v.setSrcPortIncremental(newSrcPort);
      v.setDstPortIncremental(newDstPort);
      v.adjustChecksumForAddress(src, newSrc);
      v.adjustChecksumForAddress(dst, newDst);
      const incremental = v.checksum;
      const verifies = v.verifyChecksum(newSrc, newDst);
      v.checksum = 0;
      return verifies && incremental === tcpChecksum(buf, 0, buf.length, newSrc, newDst);
    }),
  );
  t.pass();
});

test('property: check never throws, and after PacketOk every accessor and option stays inside the window', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(randomWindow(80, plausibleDataOffset), u32, u32, (w, src, dst) => {
      const v = new TcpView();
      const result = v.check(fence(w), w.offset, w.available);
      if (result !== PacketOk) return result === PacketError.Truncated || result === PacketError.BadHeaderLength;
      accepted++;
      exerciseTcp(v, w.available, { src, dst });
      return true;
    }),
    { numRuns: 1000 },
  );
  // Short windows and data offsets past the end are refused: make sure the accepted path was walked often.
  t.true(accepted > 300, `only ${accepted} of 1000 accepted`);
});

/** A data offset of 5 to 15 words, when the body is long enough to hold that header. */
function plausibleDataOffset(body: Uint8Array): void {
  const words = 5 + ((body[0] ?? 0) % 11);
  if (body.length >= words * 4) body[12] = (words << 4) | (body[12] & 0x0f);
}

test('property: check refuses a window that is not inside the buffer, and reads nothing outside it', (t) => {
  const edge = fc.integer({ min: -2, max: 90 });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80, size: 'max' }), edge, edge, (bytes, offset, available) => {
      const result = new TcpView().check(fenced(bytes, 0, bytes.length), offset, available);
      const inside = offset >= 0 && available >= TCP_HEADER_LEN && offset + available <= bytes.length;
      return inside || result !== PacketOk;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('property: mutations of the golden SYN keep every accessor and option inside the window (fuzz seeded with a real capture)', (t) => {
  let withOptions = 0;
  const edit = fc.tuple(fc.integer({ min: 0, max: SYN.length - 1 }), fc.integer({ min: 0, max: 255 }));
  const mutation = fc.array(edit, { minLength: 1, maxLength: 6 });
  // Mostly the whole segment; sometimes a bound that cuts into the header.
  const bound = fc.oneof(
    { arbitrary: fc.constant(SYN.length), weight: 3 },
    { arbitrary: fc.integer({ min: 20, max: SYN.length }), weight: 1 },
  );
  fc.assert(
    fc.property(mutation, bound, (edits, available) => {
      const copy = Buffer.from(SYN);
      for (const [at, value] of edits) copy[at] = value;
      const v = new TcpView();
      if (v.check(fenced(copy, 0, available), 0, available) !== PacketOk) return true;
      if (walkTcpOptions(v).options > 0) withOptions++;
      exerciseTcp(v, available, UP);
      return true;
    }),
    { numRuns: 2000 },
  );
  // Most mutants keep a data offset that fits, so the options cursor must have had work.
  t.true(withOptions > 500, `only ${withOptions} of 2000 had options`);
});
