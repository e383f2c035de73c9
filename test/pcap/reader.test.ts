import test from 'ava';
import fc from 'fast-check';
import { CaptureFormatError, readCapture, unitsToNs } from '../../src/pcap/reader.js';
import { hex } from '../helpers/bytes.js';
import { buildPcap, buildPcapng, expectedComment, type Frame } from './build.js';

const FRAMES: Frame[] = [
  { interfaceId: 0, timestampNs: 1_700_000_000_000_000_001n, data: Buffer.alloc(60, 1), comment: 'first' },
  { interfaceId: 1, timestampNs: 1_700_000_000_500_000_000n, data: Buffer.alloc(3, 2) },
  { interfaceId: 0, timestampNs: 1_700_000_001_000_000_000n, data: Buffer.alloc(0), comment: 'drop: policy-denied' },
  { interfaceId: 1, timestampNs: 1_700_000_002_000_000_007n, data: Buffer.alloc(1514, 4) },
];
const LAYOUT = { interfaces: [{ name: 'pw-n1-a', description: 'pod a' }, { name: 'vxlan0' }], snaplen: 262144 };

test('a big-endian microsecond pcap file', (t) => {
  const file = readCapture(
    hex(`
      a1 b2 c3 d4 | 00 02 | 00 04 | 00 00 00 00 | 00 00 00 00 | 00 00 ff ff | 00 00 00 01
      65 53 f1 00 | 00 01 e2 40 | 00 00 00 03 | 00 00 00 09 | aa bb cc
    `),
  );
  t.is(file.format, 'pcap');
  t.deepEqual(file.interfaces, [{ linkType: 1, snaplen: 65535, tsresol: 6 }]);
  t.is(file.records.length, 1);
  t.like(file.records[0], { interfaceId: 0, timestampNs: 1_700_000_000_123_456_000n, originalLength: 9 });
  t.deepEqual(file.records[0].data, hex('aa bb cc'));
});

test('a big-endian pcapng section: no if_tsresol means microseconds', (t) => {
  const file = readCapture(
    hex(`
      0a 0d 0d 0a | 00 00 00 1c | 1a 2b 3c 4d | 00 01 | 00 00 | ff ff ff ff ff ff ff ff | 00 00 00 1c
      00 00 00 01 | 00 00 00 20 | 00 01 | 00 00 | 00 00 00 00 | 00 02 00 03 62 65 30 00 | 00 00 00 00 | 00 00 00 20
      00 00 00 06 | 00 00 00 24 | 00 00 00 00 | 00 06 0a 24 | 18 20 22 40 | 00 00 00 03 | 00 00 00 03 | aa bb cc 00 | 00 00 00 24
    `),
  );
  t.is(file.format, 'pcapng');
  t.deepEqual(file.interfaces, [{ linkType: 1, snaplen: 0, tsresol: 6, name: 'be0' }]);
  t.like(file.records[0], { interfaceId: 0, timestampNs: 1_700_000_000_123_456_000n, originalLength: 3 });
  t.deepEqual(file.records[0].data, hex('aa bb cc'));
});

// An SHB, then an IDB with binary resolution 2^-10, an IDB with nanoseconds and if_tsoffset
// 1700000000 s, an Interface Statistics Block and a custom block (both to be skipped), and
// one EPB per interface.
const TIMES = hex(`
  0a 0d 0d 0a | 1c 00 00 00 | 4d 3c 2b 1a | 01 00 | 00 00 | ff ff ff ff ff ff ff ff | 1c 00 00 00
  01 00 00 00 | 20 00 00 00 | 01 00 | 00 00 | 00 00 00 00 | 09 00 01 00 8a 00 00 00 | 00 00 00 00 | 20 00 00 00
  01 00 00 00 | 2c 00 00 00 | 01 00 | 00 00 | 00 00 00 00 | 09 00 01 00 09 00 00 00 | 0e 00 08 00 00 f1 53 65 00 00 00 00 | 00 00 00 00 | 2c 00 00 00
  05 00 00 00 | 0c 00 00 00 | 0c 00 00 00
  ad 0b 00 40 | 10 00 00 00 | de ad be ef | 10 00 00 00
  06 00 00 00 | 24 00 00 00 | 00 00 00 00 | 95 01 00 00 | 00 02 c4 4f | 01 00 00 00 | 01 00 00 00 | aa 00 00 00 | 24 00 00 00
  06 00 00 00 | 24 00 00 00 | 01 00 00 00 | 00 00 00 00 | 15 cd 5b 07 | 01 00 00 00 | 01 00 00 00 | bb 00 00 00 | 24 00 00 00
`);

test('if_tsresol in powers of two and if_tsoffset are honoured; unknown blocks are skipped', (t) => {
  const file = readCapture(TIMES);
  t.deepEqual(
    file.interfaces.map((i) => i.tsresol),
    [0x8a, 9],
  );
  t.deepEqual(
    file.records.map((r) => r.timestampNs),
    [1_700_000_000_500_000_000n, 1_700_000_000_123_456_789n],
  );
  t.deepEqual(
    file.records.map((r) => r.data[0]),
    [0xaa, 0xbb],
  );
});

test('unitsToNs for decimal and binary resolutions', (t) => {
  t.is(unitsToNs(5n, 9), 5n);
  t.is(unitsToNs(5n, 6), 5000n);
  t.is(unitsToNs(5n, 0), 5_000_000_000n);
  t.is(unitsToNs(123_456_789_012n, 12), 123_456_789n);
  t.is(unitsToNs(1024n, 0x8a), 1_000_000_000n);
  t.is(unitsToNs(1n, 0x80 | 30), 0n);
});

test('several sections: interface ids are counted across them', (t) => {
  const a = buildPcapng(LAYOUT, FRAMES.slice(0, 2)).bytes;
  const b = buildPcapng({ interfaces: [{ name: 'second' }], snaplen: 0 }, [{ interfaceId: 0, timestampNs: 5n, data: Buffer.alloc(2) }]).bytes;
  const file = readCapture(Buffer.concat([a, b]));
  t.deepEqual(
    file.interfaces.map((i) => i.name),
    ['pw-n1-a', 'vxlan0', 'second'],
  );
  t.deepEqual(
    file.records.map((r) => r.interfaceId),
    [0, 1, 2],
  );
});

test('records are subarrays of the input, not copies', (t) => {
  const { bytes } = buildPcapng(LAYOUT, FRAMES);
  const file = readCapture(bytes);
  t.is(file.records[0].data.buffer, bytes.buffer);
});

for (const [name, built] of [
  ['pcapng', buildPcapng(LAYOUT, FRAMES)],
  ['pcap', buildPcap('ns', 262144, FRAMES)],
] as const) {
  test(`${name}: every prefix either ends on a record boundary and reads, or is refused with the offset`, (t) => {
    for (let cut = 0; cut < built.bytes.length; cut++) {
      const prefix = built.bytes.subarray(0, cut);
      if (built.boundaries.includes(cut)) {
        const records = Math.max(0, built.boundaries.filter((b) => b <= cut).length - built.headerBlocks);
        t.is(readCapture(prefix).records.length, records, `cut at ${cut}`);
        continue;
      }
      const err = t.throws(() => readCapture(prefix), { instanceOf: CaptureFormatError }, `cut at ${cut}`);
      t.regex(err?.message ?? '', /at offset \d+/);
    }
  });
}

test('clear errors for each kind of damage', (t) => {
  const png = buildPcapng(LAYOUT, FRAMES);
  const firstEpb = png.boundaries[png.headerBlocks - 1];
  const damaged = (edit: (b: Buffer) => void): Buffer => {
    const copy = Buffer.from(png.bytes);
    edit(copy);
    return copy;
  };
  const refuses = (bytes: Buffer, message: RegExp): void => {
    t.throws(() => readCapture(bytes), { instanceOf: CaptureFormatError, message });
  };
  refuses(Buffer.alloc(0), /too short for a magic number/);
  refuses(hex('00 11 22 33 44'), /unknown magic 0x00112233 at offset 0/);
  refuses(damaged((b) => b.writeUInt32LE(0x11223344, 8)), /bad byte-order magic/);
  refuses(damaged((b) => b.writeUInt16LE(2, 12)), /version 2, only 1 is known/);
  refuses(damaged((b) => b.writeUInt32LE(41, firstEpb + 4)), new RegExp(`at offset ${firstEpb}: bad total length 41`));
  refuses(damaged((b) => b.writeUInt32LE(0x7ffffff0, firstEpb + 4)), new RegExp(`truncated pcapng block \\(type 0x6\\) at offset ${firstEpb}`));
  refuses(damaged((b) => b.writeUInt32LE(44, firstEpb + 4)), /trailing length \d+ differs from leading length 44/);
  refuses(
    damaged((b) => b.writeUInt32LE(7, firstEpb + 8)),
    new RegExp(`Enhanced Packet Block at offset ${firstEpb}: interface 7 has no Interface Description Block`),
  );
  // 108-byte block: at most 108 - 32 = 76 bytes of data fit.
  refuses(damaged((b) => b.writeUInt32LE(77, firstEpb + 20)), /captured length 77 runs past the block \(total length 108\)/);
  // The comment option of the first EPB claims more bytes than its block holds.
  refuses(damaged((b) => b.writeUInt16LE(200, firstEpb + 28 + 60 + 2)), /option 1 at offset \d+ has length 200, past the end of the block/);
  refuses(damaged((b) => b.writeUInt32LE(16, firstEpb + 4)), /total length 16 is below the minimum 32|trailing length/);

  const classic = buildPcap('us', 65535, FRAMES).bytes;
  const cl = Buffer.from(classic);
  cl.writeUInt32LE(1_000_000, 24 + 8);
  t.throws(() => readCapture(cl), {
    instanceOf: CaptureFormatError,
    message: /truncated pcap record data \(record at offset 24, captured length 1000000\) at offset 40/,
  });
  const v = Buffer.from(classic);
  v.writeUInt16LE(3, 4);
  t.throws(() => readCapture(v), { message: /version 3\.4, only 2\.x is known/ });
});

test('property: random damage is refused with a CaptureFormatError or read, never anything else', (t) => {
  const files = [buildPcapng(LAYOUT, FRAMES).bytes, buildPcap('us', 262144, FRAMES).bytes, buildPcap('ns', 100, FRAMES).bytes];
  fc.assert(
    fc.property(
      fc.nat({ max: files.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
      (which, edits, cut) => {
        const bytes = Buffer.from(files[which]);
        for (const [pos, value] of edits) bytes[pos % bytes.length] = value;
        const input = cut === undefined ? bytes : bytes.subarray(0, cut % bytes.length);
        try {
          readCapture(input);
        } catch (err) {
          if (!(err instanceof CaptureFormatError)) throw err;
          if (!/offset \d+/.test(err.message)) throw new Error(`no offset in: ${err.message}`);
        }
      },
    ),
    { numRuns: 2000 },
  );
  t.pass();
});

const frameArb = (interfaces: number): fc.Arbitrary<Frame> =>
  fc.record({
    interfaceId: fc.nat({ max: interfaces - 1 }),
    // Classic pcap seconds are 32 bits: stay below 2^32 s so both formats can carry it.
    timestampNs: fc.bigInt({ min: 0n, max: 2n ** 32n * 1_000_000_000n - 1n }),
    data: fc.uint8Array({ maxLength: 2000 }),
    comment: fc.option(fc.string({ unit: 'binary', maxLength: 40 }), { nil: undefined }),
  });

test('property: random frames round-trip through both encoders and the reader, at any offset', (t) => {
  fc.assert(
    fc.property(fc.array(frameArb(2), { maxLength: 12 }), fc.integer({ min: 1, max: 3000 }), fc.nat({ max: 9 }), (frames, snaplen, offset) => {
      const png = readCapture(buildPcapng({ interfaces: [{ name: 'a' }, { name: 'b' }], snaplen }, frames, offset).bytes);
      const us = readCapture(buildPcap('us', snaplen, frames, offset).bytes);
      const ns = readCapture(buildPcap('ns', snaplen, frames, offset).bytes);
      const stored = (f: Frame): Buffer => Buffer.from(f.data.subarray(0, snaplen));
      const same = (got: { data: Buffer; originalLength: number }, f: Frame): boolean =>
        got.data.equals(stored(f)) && got.originalLength === f.data.length;
      return (
        png.records.length === frames.length &&
        us.records.length === frames.length &&
        ns.records.length === frames.length &&
        frames.every(
          (f, i) =>
            same(png.records[i], f) &&
            png.records[i].interfaceId === f.interfaceId &&
            png.records[i].timestampNs === f.timestampNs &&
            png.records[i].comment === expectedComment(f.comment) &&
            same(us.records[i], f) &&
            us.records[i].timestampNs === f.timestampNs - (f.timestampNs % 1000n) &&
            same(ns.records[i], f) &&
            ns.records[i].timestampNs === f.timestampNs &&
            ns.records[i].comment === undefined,
        )
      );
    }),
    { numRuns: 200 },
  );
  t.pass();
});
