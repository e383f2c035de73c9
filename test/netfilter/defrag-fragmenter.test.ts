import test from 'ava';
import { internetChecksum } from '../../src/packet/checksum.js';
import {
  fragmentIpv4,
  FragmentError,
  ipv4FragmentCount,
  IPV4_MIN_MTU,
  NEEDS_ICMP_FRAG_NEEDED,
  outputFragmentSize,
} from '../../src/packet/ipv4-fragment.js';
import { hex, poisoned } from '../helpers/bytes.js';
import { datagram, fragment, fragments } from './defrag-frames.js';

function flagsOf(f: Uint8Array): { df: boolean; mf: boolean; offset: number } {
  const word = (f[6] << 8) | f[7];
  return { df: (word & 0x4000) !== 0, mf: (word & 0x2000) !== 0, offset: (word & 0x1fff) * 8 };
}

// RFC 791 section 3.2's example, to the byte: a 120-byte datagram (20-byte header, 100 of
// payload) over a path that carries 60 bytes of IP is cut into 40 + 40 + 20 payload bytes
// at offsets 0, 5 and 10 units. The checksums were summed by python3 outside podwire (RFC 1071).
const ORIGINAL = datagram({ payloadLength: 100, id: 0xabcd, ttl: 64, protocol: 17 });
const GOLDEN = [
  hex(`45 00 00 3c ab cd 20 00 40 11 95 f8 0a f4 01 02 0a f4 02 02`),
  hex(`45 00 00 3c ab cd 20 05 40 11 95 f3 0a f4 01 02 0a f4 02 02`),
  hex(`45 00 00 28 ab cd 00 0a 40 11 b6 02 0a f4 01 02 0a f4 02 02`),
];

test('golden: a 120-byte datagram at 60 bytes makes three fragments with the headers RFC 791 gives', (t) => {
  const got = fragments(ORIGINAL, 60);
  t.is(got.length, 3);
  for (const [i, f] of got.entries()) t.deepEqual(f.subarray(0, 20), GOLDEN[i], `fragment ${i} header`);
  t.deepEqual(got[0].subarray(20), ORIGINAL.subarray(20, 60));
  t.deepEqual(got[1].subarray(20), ORIGINAL.subarray(60, 100));
  t.deepEqual(got[2].subarray(20), ORIGINAL.subarray(100, 120));
  t.is(ipv4FragmentCount(20, 100, 60), 3);
});

test('every fragment but the last carries a multiple of 8 payload bytes, whatever the size asked', (t) => {
  const packet = datagram({ payloadLength: 1000 });
  for (let size = IPV4_MIN_MTU; size < 1020; size += 13) {
    const got = fragments(packet, size);
    let expectOffset = 0;
    for (const [i, f] of got.entries()) {
      const { mf, offset } = flagsOf(f);
      const length = f.length - 20;
      t.true(f.length <= size);
      t.is(offset, expectOffset);
      t.is(mf, i < got.length - 1);
      if (mf) t.is(length % 8, 0);
      t.is(internetChecksum(f, 0, 20), 0);
      expectOffset += length;
    }
    t.is(expectOffset, 1000);
    t.is(got.length, ipv4FragmentCount(20, 1000, size));
  }
});

test('options: the first fragment carries all, later ones only those with the copy flag (others become NOOP)', (t) => {
  // Record route (7, not copied, 7 bytes), router alert (0x94, copied, 4 bytes), end of list.
  const padded = hex(`07 07 04 00 00 00 00 | 94 04 00 00 | 00`);
  const packet = datagram({ payloadLength: 200, options: padded });
  const got = fragments(packet, 32 + 80);
  t.is(got.length, 3);
  t.deepEqual(got[0].subarray(20, 32), padded);
  for (const f of got.slice(1)) {
    t.is(f[0] & 0x0f, 8, 'header length kept');
    t.deepEqual(f.subarray(20, 32), hex(`01 01 01 01 01 01 01 | 94 04 00 00 | 00`));
    t.is(internetChecksum(f, 0, 32), 0);
  }
});

test('options that do not parse are refused and nothing is emitted', (t) => {
  for (const bad of [hex('07 01 00 00'), hex('07 09 00 00'), hex('01 01 01 44')]) {
    const packet = datagram({ payloadLength: 200, options: bad });
    let emitted = 0;
    t.is(fragmentIpv4(packet, 0, 100, Buffer.alloc(200), 0, () => emitted++), FragmentError.BadOptions, bad.toString('hex'));
    t.is(emitted, 0);
  }
});

test('DF: refused without keepDf; with it every fragment keeps DF', (t) => {
  const packet = datagram({ payloadLength: 3000, df: true });
  t.is(fragmentIpv4(packet, 0, 1500, Buffer.alloc(1500), 0, () => t.fail()), FragmentError.DontFragment);
  const got = fragments(packet, 1500, true);
  t.is(got.length, 3);
  for (const f of got) t.true(flagsOf(f).df);
});

test('a fragment cut again: offsets start at its own and only its last piece keeps MF', (t) => {
  // The middle of something: 1480 bytes at offset 2960, MF set.
  const middle = fragment({ payloadLength: 1480, offsetBytes: 2960, mf: true });
  const got = fragments(middle, 576);
  t.deepEqual(
    got.map((f) => flagsOf(f)),
    [
      { df: false, mf: true, offset: 2960 },
      { df: false, mf: true, offset: 2960 + 552 },
      { df: false, mf: true, offset: 2960 + 1104 },
    ],
  );
  const last = fragment({ payloadLength: 1480, offsetBytes: 2960, mf: false });
  t.deepEqual(
    fragments(last, 576).map((f) => flagsOf(f).mf),
    [true, true, false],
  );
});

test('a packet that fits is emitted once, unchanged, after the caller\'s prefix', (t) => {
  const packet = datagram({ payloadLength: 100 });
  const out = poisoned(14 + 120);
  const seen: number[] = [];
  t.is(fragmentIpv4(packet, 0, 1500, out, 14, (_f, length) => seen.push(length)), FragmentError.Ok);
  t.deepEqual(seen, [134]);
  t.deepEqual(out.subarray(14), packet);
  t.deepEqual(out.subarray(0, 14), poisoned(14), 'the prefix is the caller\'s');
});

test('the header of every fragment is written in full (out pre-filled with 0xa5)', (t) => {
  const packet = datagram({ payloadLength: 300, dscpEcn: 0xb8 });
  const out = poisoned(200);
  const frames: Buffer[] = [];
  fragmentIpv4(packet, 0, 100, out, 14, (f, length) => frames.push(Buffer.from(f.subarray(14, length))));
  for (const f of frames) {
    t.is(f[0], 0x45);
    t.is(f[1], 0xb8);
    t.deepEqual(f.subarray(12, 20), packet.subarray(12, 20));
    t.is(internetChecksum(f, 0, 20), 0);
  }
});

test('impossible inputs: errors, never a throw, nothing emitted', (t) => {
  const packet = datagram({ payloadLength: 200 });
  const emit = () => t.fail('emitted');
  const out = Buffer.alloc(300);
  t.is(fragmentIpv4(packet.subarray(0, 19), 0, 100, out, 0, emit), FragmentError.Malformed, 'truncated');
  t.is(fragmentIpv4(packet.subarray(0, 100), 0, 100, out, 0, emit), FragmentError.Malformed, 'total length past the buffer');
  const v6 = Buffer.from(packet);
  v6[0] = 0x65;
  t.is(fragmentIpv4(v6, 0, 100, out, 0, emit), FragmentError.Malformed, 'version');
  const shortIhl = Buffer.from(packet);
  shortIhl[0] = 0x44;
  t.is(fragmentIpv4(shortIhl, 0, 100, out, 0, emit), FragmentError.Malformed, 'IHL 4');
  t.is(fragmentIpv4(packet, -1, 100, out, 0, emit), FragmentError.Malformed, 'negative offset');
  t.is(fragmentIpv4(packet, 0, 27, out, 0, emit), FragmentError.BadSize, 'no room for 8 payload bytes');
  t.is(fragmentIpv4(packet, 0, 70_000, out, 0, emit), FragmentError.BadSize, 'above 65535');
  t.is(fragmentIpv4(packet, 0, 100, Buffer.alloc(99), 0, emit), FragmentError.NoRoom, 'out too small');
  const nearEnd = fragment({ payloadLength: 1480, offsetBytes: 65_528 - 8, mf: true });
  t.is(fragmentIpv4(nearEnd, 0, 576, Buffer.alloc(600), 0, emit), FragmentError.OffsetOverflow);
  const sixty = datagram({ payloadLength: 200, options: Buffer.alloc(40, 1) });
  t.is(fragmentIpv4(sixty, 0, 67, out, 0, emit), FragmentError.BadSize, '60-byte header needs 68');
  t.is(fragmentIpv4(sixty, 0, 68, out, 0, () => {}), FragmentError.Ok, '68 is RFC 791\'s minimum');
});

test('outputFragmentSize: the kernel\'s output decision, whole, reassembled, with and without DF', (t) => {
  const ICMP = NEEDS_ICMP_FRAG_NEEDED;
  // [ipLength, DF, fragMaxSize, mtu, expected, why]
  const cases: [number, boolean, number, number, number, string][] = [
    [1400, false, 0, 1450, 0, 'fits: whole'],
    [1450, true, 0, 1450, 0, 'fits exactly, DF: whole'],
    [3000, false, 0, 1450, 1450, 'too big, no DF: cut to the MTU'],
    [3000, true, 0, 1450, ICMP, 'too big with DF: fragmentation needed'],
    [3000, false, 1500, 9000, 1500, 'reassembled: cut to the sender\'s size even where it would fit'],
    [3000, false, 1500, 1450, 1450, 'reassembled, smaller path: cut to the MTU'],
    [3000, true, 1400, 1450, 1400, 'reassembled DF fragments that fit: cut again, DF kept'],
    [3000, true, 1500, 1450, ICMP, 'reassembled DF fragments larger than the path: fragmentation needed'],
    [1000, false, 600, 1500, 600, 'reassembled small datagram: still its fragments'],
  ];
  for (const [length, df, fms, mtu, expected, why] of cases) t.is(outputFragmentSize(length, df, fms, mtu), expected, why);
});
