import test from 'ava';
import { capturedLength } from '../../src/pcap/pcap.js';
import {
  encodeEpb,
  encodeIdb,
  encodeShb,
  epbLen,
  idbLen,
  MAX_OPTION_VALUE_LEN,
  optionStringLen,
  shbLen,
  SplitClock,
  writeEpb,
  type EnhancedPacket,
} from '../../src/pcap/pcapng.js';
import fc from 'fast-check';
import { readCapture } from '../../src/pcap/reader.js';
import { hex, poisoned } from '../helpers/bytes.js';

// 1700000000.123456789 s as one 64-bit count of nanoseconds: 0x17979cfe_3d85cd15.
const TS = 1_700_000_000_123_456_789n;
const DATA = hex('de ad be ef 01');

// Section Header Block, draft-ietf-opsawg-pcapng section 4.1, little-endian.
const GOLDEN_SHB = hex(`
  0a 0d 0d 0a | 1c 00 00 00 | 4d 3c 2b 1a | 01 00 | 00 00 | ff ff ff ff ff ff ff ff
  1c 00 00 00
`);
const GOLDEN_SHB_USERAPPL = hex(`
  0a 0d 0d 0a | 2c 00 00 00 | 4d 3c 2b 1a | 01 00 | 00 00 | ff ff ff ff ff ff ff ff
  04 00 07 00 | 70 6f 64 77 69 72 65 00
  00 00 00 00
  2c 00 00 00
`);
// Interface Description Block, section 4.2: linktype 1, reserved, snaplen 262144, then
// if_name "eth0", if_description "pod a" (padded), if_tsresol 9 (padded), opt_endofopt.
const GOLDEN_IDB = hex(`
  01 00 00 00 | 34 00 00 00 | 01 00 | 00 00 | 00 00 04 00
  02 00 04 00 | 65 74 68 30
  03 00 05 00 | 70 6f 64 20 61 00 00 00
  09 00 01 00 | 09 00 00 00
  00 00 00 00
  34 00 00 00
`);
const GOLDEN_IDB_BARE = hex(`
  01 00 00 00 | 20 00 00 00 | 01 00 | 00 00 | ff ff 00 00
  09 00 01 00 | 09 00 00 00
  00 00 00 00
  20 00 00 00
`);
// Enhanced Packet Block, section 4.3: interface 1, timestamp high then low, captured and
// original length 5, data padded to 8, no options.
const GOLDEN_EPB = hex(`
  06 00 00 00 | 28 00 00 00 | 01 00 00 00 | fe 9c 97 17 | 15 cd 85 3d | 05 00 00 00 | 05 00 00 00
  de ad be ef 01 00 00 00
  28 00 00 00
`);
// The same with opt_comment "drop: policy-denied" (19 bytes, padded to 20).
const GOLDEN_EPB_COMMENT = hex(`
  06 00 00 00 | 44 00 00 00 | 01 00 00 00 | fe 9c 97 17 | 15 cd 85 3d | 05 00 00 00 | 05 00 00 00
  de ad be ef 01 00 00 00
  01 00 13 00 | 64 72 6f 70 3a 20 70 6f 6c 69 63 79 2d 64 65 6e 69 65 64 00
  00 00 00 00
  44 00 00 00
`);

const PACKET: EnhancedPacket = { interfaceId: 1, timestampNs: TS, data: DATA };
const FULL_SHB = { hardware: 'x86_64', os: 'Linux 6.1', userAppl: 'podwire 0.1.0' };

test('golden Section Header Blocks', (t) => {
  let buf = poisoned(GOLDEN_SHB.length);
  t.is(encodeShb({}, buf, 0), 28);
  t.deepEqual(buf, GOLDEN_SHB);
  buf = poisoned(GOLDEN_SHB_USERAPPL.length);
  t.is(encodeShb({ userAppl: 'podwire' }, buf, 0), 44);
  t.deepEqual(buf, GOLDEN_SHB_USERAPPL);
});

test('golden Interface Description Blocks', (t) => {
  let buf = poisoned(GOLDEN_IDB.length);
  t.is(encodeIdb({ snaplen: 262144, name: 'eth0', description: 'pod a' }, buf, 0), 52);
  t.deepEqual(buf, GOLDEN_IDB);
  buf = poisoned(GOLDEN_IDB_BARE.length);
  t.is(encodeIdb({ snaplen: 65535 }, buf, 0), 32);
  t.deepEqual(buf, GOLDEN_IDB_BARE);
});

test('golden Enhanced Packet Blocks, with and without a comment', (t) => {
  let buf = poisoned(GOLDEN_EPB.length);
  t.is(encodeEpb(PACKET, buf, 0), 40);
  t.deepEqual(buf, GOLDEN_EPB);
  buf = poisoned(GOLDEN_EPB_COMMENT.length);
  t.is(encodeEpb({ ...PACKET, comment: 'drop: policy-denied' }, buf, 0), 68);
  t.deepEqual(buf, GOLDEN_EPB_COMMENT);
});

test('an empty comment writes no options at all', (t) => {
  const buf = poisoned(GOLDEN_EPB.length);
  t.is(encodeEpb({ ...PACKET, comment: '' }, buf, 0), 40);
  t.deepEqual(buf, GOLDEN_EPB);
});

test('length functions equal the bytes written, at a non-zero offset, for every block', (t) => {
  const offset = 13;
  const cases: [number, (buf: Buffer, at: number) => number][] = [
    [shbLen({}), (b, at) => encodeShb({}, b, at)],
    [shbLen(FULL_SHB), (b, at) => encodeShb(FULL_SHB, b, at)],
    [idbLen({ snaplen: 0, name: 'pw-n1-a' }), (b, at) => encodeIdb({ snaplen: 0, name: 'pw-n1-a' }, b, at)],
    [idbLen({ snaplen: 100, description: 'über' }), (b, at) => encodeIdb({ snaplen: 100, description: 'über' }, b, at)],
  ];
  for (let n = 0; n <= 9; n++) {
    const data = Buffer.alloc(n, 0x11);
    for (const comment of [undefined, 'x', 'ab', 'abc', 'abcd', 'naïve']) {
      cases.push([epbLen(n, comment), (b, at) => encodeEpb({ interfaceId: 0, timestampNs: TS, data, comment }, b, at)]);
    }
  }
  for (const [len, encode] of cases) {
    const buf = poisoned(offset + len + 8);
    t.is(encode(buf, offset), len);
    t.is(len % 4, 0);
    t.deepEqual(buf.subarray(0, offset), poisoned(offset), 'nothing before the offset');
    t.deepEqual(buf.subarray(offset + len), poisoned(8), 'nothing after the block');
    t.is(buf.readUInt32LE(offset + 4), len, 'leading total length');
    t.is(buf.readUInt32LE(offset + len - 4), len, 'trailing total length');
  }
});

test('snaplen cuts the data, pads what is kept, and keeps the original length', (t) => {
  const data = Buffer.alloc(100, 0x42);
  const capLen = capturedLength(data.length, 10);
  const buf = poisoned(epbLen(capLen));
  t.is(encodeEpb({ interfaceId: 0, timestampNs: TS, data, snaplen: 10 }, buf, 0), 32 + 12);
  t.is(buf.readUInt32LE(20), 10);
  t.is(buf.readUInt32LE(24), 100);
  t.deepEqual(buf.subarray(28, 40), Buffer.concat([Buffer.alloc(10, 0x42), Buffer.alloc(2)]));
});

test('a comment stops at a NUL, as every reader would stop there', (t) => {
  t.is(optionStringLen('drop\0hidden'), 4);
  const buf = poisoned(epbLen(5, 'drop\0hidden'));
  encodeEpb({ ...PACKET, comment: 'drop\0hidden' }, buf, 0);
  t.is(readSingle(buf).comment, 'drop');
});

test('a comment longer than an option can hold is cut on a character boundary', (t) => {
  const comment = 'é'.repeat(40000); // 80000 bytes of UTF-8, 2 per character
  t.is(optionStringLen(comment), MAX_OPTION_VALUE_LEN - 1);
  const buf = poisoned(epbLen(5, comment));
  t.is(encodeEpb({ ...PACKET, comment }, buf, 0), buf.length);
  t.is(readSingle(buf).comment, 'é'.repeat((MAX_OPTION_VALUE_LEN - 1) / 2));
});

test('values the fields cannot hold are refused before anything is written', (t) => {
  const buf = poisoned(64);
  t.throws(() => encodeEpb({ ...PACKET, timestampNs: -1n }, buf, 0), { message: /timestamp/ });
  t.throws(() => encodeEpb({ ...PACKET, timestampNs: 2n ** 64n }, buf, 0), { message: /timestamp/ });
  t.throws(() => encodeEpb({ ...PACKET, interfaceId: -1 }, buf, 0), { message: /interface id -1 is not an integer/ });
  t.throws(() => encodeIdb({ snaplen: 2 ** 32 }, buf, 0), { message: /snaplen 4294967296/ });
  t.throws(() => encodeIdb({ snaplen: 0, linkType: 0x10000 }, buf, 0), { message: /link type 65536/ });
  t.throws(() => encodeEpb(PACKET, buf, 30), { message: /40 bytes do not fit at offset 30 of a 64-byte buffer/ });
  t.deepEqual(buf, poisoned(64));
});

/** Wraps one EPB in an SHB and a bare IDB and reads it back. */
function readSingle(epb: Buffer) {
  const head = Buffer.alloc(shbLen({}) + idbLen({ snaplen: 0 }) * 2);
  const at = encodeShb({}, head, 0);
  encodeIdb({ snaplen: 0 }, head, at + encodeIdb({ snaplen: 0 }, head, at));
  const file = readCapture(Buffer.concat([head, epb]));
  return file.records[0];
}

test('writeEpb writes the bytes encodeEpb writes, for any frame, snaplen, offset and timestamp', (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 700 }),
      fc.nat(40),
      fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 800 })),
      fc.nat(0xffff_ffff),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n - (1n << 40n) }),
      fc.nat(1 << 30),
      (frame, lead, snaplen, interfaceId, epochNs, elapsedNs) => {
        const source = new Uint8Array(lead + frame.length);
        source.set(frame, lead);
        const clock = new SplitClock(epochNs, () => elapsedNs);
        clock.read();
        const expected = poisoned(epbLen(capturedLength(frame.length, snaplen)) + 3);
        const written = encodeEpb({ interfaceId, timestampNs: epochNs + BigInt(elapsedNs), data: frame, snaplen }, expected, 3);
        const actual = poisoned(written + 3);
        t.is(writeEpb(actual, 3, interfaceId, clock, source, lead, frame.length, snaplen), written);
        t.deepEqual(actual, expected);
      },
    ),
    { numRuns: 300 },
  );
});

test('SplitClock carries the low half into the high one, and never reads before its zero', (t) => {
  let now = 0;
  const clock = new SplitClock(0xffff_fff0n, () => now);
  now = 32; // past 2^32
  clock.read();
  t.deepEqual([clock.high, clock.low], [1, 0x10]);
  now = 3 * 2 ** 32 + 0.4; // whole nanoseconds, several carries
  clock.read();
  t.deepEqual([clock.high, clock.low], [3, 0xffff_fff0]);
  now = -5;
  clock.read();
  t.deepEqual([clock.high, clock.low], [0, 0xffff_fff0]);
  // By default: the wall clock now, moving on.
  const wall = new SplitClock();
  wall.read();
  const ns = BigInt(wall.high) * 2n ** 32n + BigInt(wall.low);
  t.true(ns >= (BigInt(Date.now()) - 1000n) * 1_000_000n && ns <= (BigInt(Date.now()) + 1000n) * 1_000_000n);
});
