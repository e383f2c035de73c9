import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { writeU16 } from '../../src/packet/bytes.js';
import { internetChecksum } from '../../src/packet/checksum.js';
import { PacketOk } from '../../src/packet/errors.js';
import { Ipv4View } from '../../src/packet/ipv4.js';
import { IPV4_MIN_MTU } from '../../src/packet/ipv4-fragment.js';
import {
  Defrag,
  DEFAULT_MEMORY_LIMIT,
  DefragDrop,
  defragDropName,
  DefragResult,
  DEFRAG_DROP_COUNT,
  DEFRAG_DROP_NAMES,
  type DefragOptions,
} from '../../src/netfilter/defrag.js';
import { completed, datagram, fragment, fragments, TCP, UDP } from './defrag-frames.js';

const SECOND = 1e9;
const T0 = 1000 * SECOND;

function sum(a: Float64Array): number {
  return a.reduce((x, y) => x + y, 0);
}

/** Every fragment is accounted for once, and every datagram started is finished, discarded or held. */
function assertBooks(t: ExecutionContext, table: Defrag): void {
  const s = table.stats;
  t.is(s.fragments, s.held + s.reassembled + sum(s.dropped), 'fragments = held + reassembled + dropped');
  t.is(s.datagrams, s.reassembled + sum(s.discarded) + table.size, 'datagrams = reassembled + discarded + held');
  t.true(table.bytesHeld >= 0 && table.bytesHeld <= table.maxDatagrams * table.maxDatagramSize);
}

/** Inserts each fragment; returns the results and, for the first Complete, the datagram's bytes. */
function feed(table: Defrag, frags: readonly Uint8Array[], now = T0): { results: DefragResult[]; whole?: Buffer } {
  const results: DefragResult[] = [];
  let whole: Buffer | undefined;
  for (const f of frags) {
    const r = table.insert(f, 0, now);
    results.push(r);
    if (r === DefragResult.Complete && whole === undefined) whole = completed(table);
  }
  return { results, whole };
}

test('two fragments, in order: Held then Complete, and the datagram is the original to the byte', (t) => {
  const table = new Defrag();
  const original = datagram({ payloadLength: 2000, id: 7 });
  const frags = fragments(original, 1500);
  t.is(frags.length, 2);
  t.is(table.insert(frags[0], 0, T0), DefragResult.Held);
  t.is(table.size, 1);
  t.is(table.bytesHeld, 1480);
  t.is(table.insert(frags[1], 0, T0), DefragResult.Complete);
  t.deepEqual(completed(table), original);
  t.is(table.maxFragmentSize, 1500);
  t.is(table.size, 0);
  t.is(table.bytesHeld, 0);
  assertBooks(t, table);
});

test('a fragment inside a frame (after an Ethernet header, with padding after it) is read at its offset', (t) => {
  const table = new Defrag();
  const original = datagram({ payloadLength: 100 });
  const [a, b] = fragments(original, 68);
  const frame = Buffer.concat([Buffer.alloc(14, 0xee), b, Buffer.alloc(10, 0xee)]);
  t.is(table.insert(a, 0, T0), DefragResult.Held);
  t.is(table.insert(frame, 14, T0), DefragResult.Held);
  const rest = fragments(original, 68).slice(2);
  t.is(feed(table, rest).results.at(-1), DefragResult.Complete);
  t.deepEqual(completed(table), original);
});

test('property: any order of a datagram\'s fragments reassembles to the original', (t) => {
  const table = new Defrag({ maxFragments: 2048 });
  fc.assert(
    fc.property(fc.integer({ min: 9, max: 20_000 }), fc.integer({ min: IPV4_MIN_MTU, max: 4000 }), fc.gen(), (payloadLength, mtu, gen) => {
      const original = datagram({ payloadLength, id: payloadLength & 0xffff, fill: mtu });
      const frags = fragments(original, mtu);
      fc.pre(frags.length > 1);
      const order = gen(fc.shuffledSubarray, frags, { minLength: frags.length, maxLength: frags.length });
      const { results, whole } = feed(table, order);
      return (
        results.slice(0, -1).every((r) => r === DefragResult.Held) &&
        results.at(-1) === DefragResult.Complete &&
        whole !== undefined &&
        whole.equals(original) &&
        table.size === 0
      );
    }),
    { numRuns: 300 },
  );
  assertBooks(t, table);
});

/** A datagram with random options (copied and not), TOS, DF and size. */
const datagramArb = fc
  .record({
    payloadLength: fc.integer({ min: 1, max: 65_535 - 60 }),
    id: fc.integer({ min: 0, max: 0xffff }),
    dscpEcn: fc.integer({ min: 0, max: 255 }),
    df: fc.boolean(),
    ttl: fc.integer({ min: 1, max: 255 }),
    options: fc.array(fc.constantFrom('rr', 'ra', 'noop', 'ts'), { maxLength: 4 }),
  })
  .map(({ options, ...rest }) => {
    const bytes: number[] = [];
    for (const o of options) {
      if (o === 'rr') bytes.push(7, 7, 4, 0, 0, 0, 0); // record route: not copied
      if (o === 'ra') bytes.push(0x94, 4, 0, 0); // router alert: copied
      if (o === 'noop') bytes.push(1);
      if (o === 'ts') bytes.push(0x44, 8, 5, 0, 0, 0, 0, 0); // timestamp: not copied
    }
    while (bytes.length % 4 !== 0) bytes.push(0);
    return { ...rest, payloadLength: Math.min(rest.payloadLength, 65_535 - 20 - bytes.length), options: Uint8Array.from(bytes) };
  });

test('property: fragment then reassemble is the identity for any MTU >= 68 (options, DF and TOS too)', (t) => {
  const table = new Defrag({ maxFragments: 8192 });
  fc.assert(
    fc.property(datagramArb, fc.integer({ min: IPV4_MIN_MTU, max: 65_535 }), (spec, mtu) => {
      const original = datagram(spec);
      const frags = fragments(original, mtu, true);
      if (frags.length === 1) return frags[0].equals(original);
      const { results, whole } = feed(table, frags);
      return results.at(-1) === DefragResult.Complete && whole !== undefined && whole.equals(original) && table.maxFragmentSize === Math.max(...frags.map((f) => f.length));
    }),
    { numRuns: 200 },
  );
  assertBooks(t, table);
});

test('property: a copy of a held fragment is dropped as Duplicate and the datagram still completes whole', (t) => {
  const table = new Defrag();
  fc.assert(
    fc.property(fc.integer({ min: 1000, max: 30_000 }), fc.integer({ min: 576, max: 1500 }), fc.gen(), (payloadLength, mtu, gen) => {
      const original = datagram({ payloadLength, id: 99 });
      const all = fragments(original, mtu);
      fc.pre(all.length > 1);
      const frags = gen(fc.shuffledSubarray, all, { minLength: all.length, maxLength: all.length });
      // Before the last fragment arrives, resend one already held.
      const at = gen(fc.integer, { min: 1, max: frags.length - 1 });
      const copy = frags[gen(fc.integer, { min: 0, max: at - 1 })];
      const before = table.stats.dropped[DefragDrop.Duplicate];
      const { results, whole } = feed(table, [...frags.slice(0, at), copy, ...frags.slice(at)]);
      return (
        results[at] === DefragResult.Dropped &&
        table.lastDrop === DefragDrop.Duplicate &&
        table.stats.dropped[DefragDrop.Duplicate] === before + 1 &&
        results.at(-1) === DefragResult.Complete &&
        whole !== undefined &&
        whole.equals(original)
      );
    }),
    { numRuns: 200 },
  );
  assertBooks(t, table);
});

test('property: a forged fragment meeting held bytes is a Duplicate when all of it is held, otherwise an Overlap that discards the datagram', (t) => {
  const table = new Defrag();
  fc.assert(
    fc.property(fc.integer({ min: 2000, max: 20_000 }), fc.gen(), (payloadLength, gen) => {
      const original = datagram({ payloadLength, id: 5 });
      const all = fragments(original, 1500);
      const frags = gen(fc.shuffledSubarray, all, { minLength: all.length, maxLength: all.length });
      const k = gen(fc.integer, { min: 1, max: frags.length - 1 });
      // Which 8-byte units the first k fragments hold (the test's own model).
      const held = new Uint8Array(Math.ceil(payloadLength / 8));
      for (const f of frags.slice(0, k)) {
        const start = ((f[6] << 8) | f[7]) & 0x1fff;
        for (let u = start; u < start + Math.ceil((f.length - 20) / 8); u++) held[u] = 1;
      }
      const startUnit = gen(fc.integer, { min: 0, max: held.length - 2 });
      const units = gen(fc.integer, { min: 1, max: Math.min(200, held.length - 1 - startUnit) });
      const covered = held.subarray(startUnit, startUnit + units);
      fc.pre(covered.includes(1));
      const forged = fragment({ payloadLength: units * 8, offsetBytes: startUnit * 8, mf: true, id: 5, fill: 0x55 });
      const { results } = feed(table, frags.slice(0, k));
      const got = table.insert(forged, 0, T0);
      const rest = feed(table, frags.slice(k));
      // Clear the table for the next run, counted (as Timeout) so the books still balance.
      table.expire(T0 + 60 * SECOND, table.maxDatagrams);
      if (covered.every((u) => u === 1)) {
        return got === DefragResult.Dropped && table.lastDrop !== DefragDrop.Overlap && rest.whole !== undefined && rest.whole.equals(original);
      }
      return results.every((r) => r === DefragResult.Held) && got === DefragResult.Dropped && rest.whole === undefined;
    }),
    { numRuns: 300 },
  );
  t.true(table.stats.dropped[DefragDrop.Overlap] > 0);
  t.is(table.stats.dropped[DefragDrop.Overlap], table.stats.discarded[DefragDrop.Overlap]);
  t.true(table.stats.dropped[DefragDrop.Duplicate] > 0);
  assertBooks(t, table);
});

test('overlap, by hand: a fragment straddling two held ones discards the whole datagram', (t) => {
  const table = new Defrag();
  const a = fragment({ payloadLength: 16, offsetBytes: 0, mf: true });
  const b = fragment({ payloadLength: 16, offsetBytes: 16, mf: true });
  const straddle = fragment({ payloadLength: 16, offsetBytes: 8, mf: true, fill: 9 });
  const last = fragment({ payloadLength: 8, offsetBytes: 32, mf: false });
  t.is(table.insert(a, 0, T0), DefragResult.Held);
  t.is(table.insert(b, 0, T0), DefragResult.Held);
  t.is(table.insert(straddle, 0, T0), DefragResult.Dropped, 'lies inside the run [0, 32): a duplicate');
  t.is(table.lastDrop, DefragDrop.Duplicate);
  const across = fragment({ payloadLength: 16, offsetBytes: 24, mf: true });
  t.is(table.insert(across, 0, T0), DefragResult.Dropped);
  t.is(table.lastDrop, DefragDrop.Overlap);
  t.is(table.size, 0, 'the datagram went with it');
  t.is(table.stats.discarded[DefragDrop.Overlap], 1);
  t.is(table.stats.discardedFragments, 2);
  t.is(table.insert(last, 0, T0), DefragResult.Held, 'what comes after starts anew and never completes');
  assertBooks(t, table);
});

test('impossible lengths: each is dropped with its reason, never thrown', (t) => {
  const table = new Defrag();
  const expectDrop = (buf: Uint8Array, reason: DefragDrop, why: string, offset = 0) => {
    t.is(table.insert(buf, offset, T0), DefragResult.Dropped, why);
    t.is(table.lastDrop, reason, `${why}: ${defragDropName(table.lastDrop)}`);
  };
  const good = fragment({ payloadLength: 16, offsetBytes: 0, mf: true });
  expectDrop(good.subarray(0, 19), DefragDrop.Malformed, 'shorter than a header');
  expectDrop(good.subarray(0, 30), DefragDrop.Malformed, 'total length past the buffer');
  expectDrop(good, DefragDrop.Malformed, 'offset past the end', 40);
  expectDrop(good, DefragDrop.Malformed, 'negative offset', -1);
  expectDrop(good, DefragDrop.Malformed, 'fractional offset', 0.5);
  const ihl = Buffer.from(good);
  ihl[0] = 0x4f;
  expectDrop(ihl, DefragDrop.Malformed, 'IHL past total length');
  const v6 = Buffer.from(good);
  v6[0] = 0x65;
  expectDrop(v6, DefragDrop.Malformed, 'version 6');
  const shortTotal = Buffer.from(good);
  writeU16(shortTotal, 2, 19);
  expectDrop(shortTotal, DefragDrop.Malformed, 'total length below the header');
  expectDrop(datagram({ payloadLength: 100 }), DefragDrop.NotFragment, 'a whole packet');
  expectDrop(fragment({ payloadLength: 0, offsetBytes: 8, mf: true }), DefragDrop.BadLength, 'MF with no payload');
  expectDrop(fragment({ payloadLength: 0, offsetBytes: 8, mf: false }), DefragDrop.BadLength, 'last with no payload');
  expectDrop(fragment({ payloadLength: 12, offsetBytes: 0, mf: true }), DefragDrop.BadLength, 'non-last not a multiple of 8');
  expectDrop(fragment({ payloadLength: 16, offsetBytes: 65_528, mf: false }), DefragDrop.TooBig, 'ping of death: past 65535');
  t.is(table.size, 0, 'none of these took a slot');

  // Lengths that contradict a datagram held: the datagram goes.
  const contradictions: [string, Buffer[], Buffer][] = [
    ['two last fragments, different ends', [fragment({ payloadLength: 8, offsetBytes: 40, mf: false, id: 1 })], fragment({ payloadLength: 8, offsetBytes: 48, mf: false, id: 1 })],
    ['a last fragment ending before held data', [fragment({ payloadLength: 8, offsetBytes: 80, mf: true, id: 2 })], fragment({ payloadLength: 8, offsetBytes: 40, mf: false, id: 2 })],
    ['data past the known end', [fragment({ payloadLength: 8, offsetBytes: 40, mf: false, id: 3 })], fragment({ payloadLength: 8, offsetBytes: 48, mf: true, id: 3 })],
  ];
  for (const [why, held, bad] of contradictions) {
    t.deepEqual(feed(table, held).results, [DefragResult.Held], why);
    expectDrop(bad, DefragDrop.BadLength, why);
    t.is(table.size, 0, `${why}: discarded`);
  }
  t.is(table.stats.discarded[DefragDrop.BadLength], 3);

  // A 60-byte header on the first fragment pushes the whole past 65535.
  const big = new Defrag({ maxFragments: 4 });
  const options = Buffer.alloc(40, 1);
  t.is(big.insert(fragment({ payloadLength: 65_472, offsetBytes: 0, mf: true, options }), 0, T0), DefragResult.Held);
  t.is(big.insert(fragment({ payloadLength: 8, offsetBytes: 65_472, mf: false }), 0, T0), DefragResult.Dropped);
  t.is(big.lastDrop, DefragDrop.TooBig);
  t.is(big.size, 0);
  assertBooks(t, table);
  assertBooks(t, big);
});

test('a held datagram hit by a ping-of-death fragment is discarded with it', (t) => {
  const table = new Defrag();
  t.is(table.insert(fragment({ payloadLength: 1480, offsetBytes: 0, mf: true }), 0, T0), DefragResult.Held);
  t.is(table.insert(fragment({ payloadLength: 1480, offsetBytes: 64_800, mf: false }), 0, T0), DefragResult.Dropped);
  t.is(table.lastDrop, DefragDrop.TooBig);
  t.is(table.stats.discarded[DefragDrop.TooBig], 1);
  t.is(table.size, 0);
});

test('maxDatagramSize: a datagram longer than the bound set is TooBig', (t) => {
  const table = new Defrag({ maxDatagramSize: 1000 });
  const frags = fragments(datagram({ payloadLength: 1200 }), 576);
  t.is(table.insert(frags[0], 0, T0), DefragResult.Held);
  t.is(table.insert(frags[1], 0, T0), DefragResult.Dropped, 'its payload ends at 1104, past 1000 less a header');
  t.is(table.lastDrop, DefragDrop.TooBig);
  t.is(table.size, 0);
  const fits = fragments(datagram({ payloadLength: 980 }), 576);
  t.is(feed(table, fits).results.at(-1), DefragResult.Complete);
});

test('tiny fragments (RFC 1858): a first fragment without the whole TCP header is dropped', (t) => {
  const table = new Defrag();
  const tcp8 = fragment({ payloadLength: 8, offsetBytes: 0, mf: true, protocol: TCP });
  t.is(table.insert(tcp8, 0, T0), DefragResult.Dropped);
  t.is(table.lastDrop, DefragDrop.TinyFragment);
  // 24 bytes, but the TCP data offset says 15 words (60 bytes) of header.
  const options = fragment({ payloadLength: 24, offsetBytes: 0, mf: true, protocol: TCP });
  options[20 + 12] = 0xf0;
  t.is(table.insert(options, 0, T0), DefragResult.Dropped);
  t.is(table.lastDrop, DefragDrop.TinyFragment);
  const whole = fragment({ payloadLength: 24, offsetBytes: 0, mf: true, protocol: TCP });
  whole[20 + 12] = 0x50;
  t.is(table.insert(whole, 0, T0), DefragResult.Held, '20-byte header inside 24 bytes');
  t.is(table.insert(fragment({ payloadLength: 8, offsetBytes: 0, mf: true, protocol: UDP, id: 2 }), 0, T0), DefragResult.Held, 'UDP: 8 bytes hold its header');
  t.is(table.stats.dropped[DefragDrop.TinyFragment], 2);
});

test('too many fragments: the 65th of a datagram discards it', (t) => {
  const table = new Defrag();
  for (let i = 0; i < 64; i++) t.is(table.insert(fragment({ payloadLength: 8, offsetBytes: i * 8, mf: true }), 0, T0), DefragResult.Held);
  t.is(table.insert(fragment({ payloadLength: 8, offsetBytes: 64 * 8, mf: false }), 0, T0), DefragResult.Dropped);
  t.is(table.lastDrop, DefragDrop.TooManyFragments);
  t.is(table.size, 0);
  t.is(table.stats.discardedFragments, 64);
  // 64 fragments exactly is allowed: 45 of them make a 64 KiB datagram at 1500.
  const frags = fragments(datagram({ payloadLength: 65_515 }), 1500);
  t.is(frags.length, 45);
  t.is(feed(table, frags).results.at(-1), DefragResult.Complete);
  assertBooks(t, table);
});

test('ECN: CE on any fragment marks the datagram CE; ECT mixed with not-ECT is discarded', (t) => {
  const table = new Defrag();
  const ect0 = fragments(datagram({ payloadLength: 3000, dscpEcn: 0x02, id: 1 }), 1500);
  const ce = fragments(datagram({ payloadLength: 3000, dscpEcn: 0x03, id: 1 }), 1500);
  const { whole } = feed(table, [ect0[0], ce[1], ect0[2]]);
  t.truthy(whole);
  t.is(whole![1] & 3, 3);
  t.is(internetChecksum(whole!, 0, 20), 0);
  const notEct = fragments(datagram({ payloadLength: 3000, dscpEcn: 0x00, id: 2 }), 1500);
  const ect = fragments(datagram({ payloadLength: 3000, dscpEcn: 0x02, id: 2 }), 1500);
  const r = feed(table, [notEct[0], ect[1], notEct[2]]);
  t.is(r.results.at(-1), DefragResult.Dropped);
  t.is(table.lastDrop, DefragDrop.EcnMismatch);
  t.is(table.stats.discarded[DefragDrop.EcnMismatch], 1);
});

test('DF: set on the datagram only when the largest fragment carried it (the kernel\'s max_df_size)', (t) => {
  const table = new Defrag();
  const df = fragments(datagram({ payloadLength: 3000, df: true, id: 1 }), 1500, true);
  const { whole } = feed(table, df);
  t.is(whole![6] & 0x40, 0x40);
  // A small DF fragment with large ones without DF: no DF, or the datagram could not be forwarded as sent.
  const plain = fragments(datagram({ payloadLength: 3000, id: 2 }), 1500);
  const smallDf = fragments(datagram({ payloadLength: 3000, df: true, id: 2 }), 1500, true);
  const mixed = feed(table, [plain[0], plain[1], smallDf[2]]);
  t.is(mixed.whole![6], 0);
  t.is(mixed.whole![7], 0);
  t.is(table.maxFragmentSize, 1500);
});

test('timeout, driven clock: expire removes a datagram 30 s after its first fragment, not before', (t) => {
  const table = new Defrag();
  const frags = fragments(datagram({ payloadLength: 3000 }), 1500);
  t.is(table.insert(frags[0], 0, T0), DefragResult.Held);
  t.is(table.insert(frags[1], 0, T0 + 20 * SECOND), DefragResult.Held, 'a later fragment does not restart the timer');
  t.is(table.expire(T0 + 30 * SECOND - 1, 100), 0);
  t.is(table.size, 1);
  t.is(table.expire(T0 + 30 * SECOND, 100), 1);
  t.is(table.size, 0);
  t.is(table.stats.discarded[DefragDrop.Timeout], 1);
  t.is(table.insert(frags[2], 0, T0 + 31 * SECOND), DefragResult.Held, 'the late one starts a new datagram');
  assertBooks(t, table);
});

test('timeout, lazily: a fragment for a datagram past its time discards it and starts anew', (t) => {
  const table = new Defrag({ timeoutSeconds: 5 });
  const frags = fragments(datagram({ payloadLength: 3000 }), 1500);
  t.is(table.insert(frags[0], 0, T0), DefragResult.Held);
  t.is(table.insert(frags[1], 0, T0 + 5 * SECOND), DefragResult.Held);
  t.is(table.stats.discarded[DefragDrop.Timeout], 1);
  t.is(table.insert(frags[2], 0, T0 + 6 * SECOND), DefragResult.Held, 'the first fragment left with the old one');
  t.is(table.insert(frags[0], 0, T0 + 6 * SECOND), DefragResult.Complete);
});

test('expire works within its budget, oldest first', (t) => {
  const table = new Defrag();
  for (let i = 0; i < 10; i++) table.insert(fragment({ payloadLength: 8, offsetBytes: 0, mf: true, id: i }), 0, T0 + i);
  t.is(table.expire(T0 + 31 * SECOND, 3), 3);
  t.is(table.size, 7);
  t.is(table.expire(T0 + 30 * SECOND + 5, 100), 3, 'ids 3 to 5 are due, 6 to 9 not yet');
  t.is(table.expire(T0 + 31 * SECOND, 100), 4);
  t.is(table.expire(T0 + 31 * SECOND, 100), 0);
});

test('memory bound: 20,000 never-completed datagrams never grow the table past 4 MiB, and a real one still gets through', (t) => {
  const table = new Defrag({ seed: 0x9e3779b9 });
  const limit = DEFAULT_MEMORY_LIMIT;
  const before = table.byteLength;
  t.true(before <= limit, `${before} bytes`);
  t.true(table.maxDatagrams >= 60, `${table.maxDatagrams} slots`);
  for (let i = 0; i < 20_000; i++) {
    // Large first fragments from many sources: the most memory a fragment can claim.
    const f = fragment({ payloadLength: 1480, offsetBytes: 0, mf: true, id: i & 0xffff, src: 0x0af40000 + (i >>> 4) });
    t.not(table.insert(f, 0, T0 + i), DefragResult.Complete);
    if (table.size > table.maxDatagrams || table.bytesHeld > table.maxDatagrams * 1480) t.fail(`over the bound at ${i}`);
  }
  t.is(table.byteLength, before, 'nothing allocated after the constructor');
  t.is(table.size, table.maxDatagrams);
  t.is(
    table.stats.discarded[DefragDrop.Evicted] + table.stats.discarded[DefragDrop.SourceLimit],
    20_000 - table.maxDatagrams,
    'the oldest (of all, or of a source at its quota) made room each time',
  );
  const real = fragments(datagram({ payloadLength: 3000, id: 4242, src: 0x0af40909 }), 1500);
  t.is(feed(table, real, T0 + 20_001).results.at(-1), DefragResult.Complete);
  assertBooks(t, table);
});

test('a full table evicts an expired head as Timeout, a live one as Evicted', (t) => {
  const table = new Defrag({ maxDatagrams: 2, maxDatagramSize: 1500, maxDatagramsPerSource: 2 });
  const first = (id: number, src: number) => fragment({ payloadLength: 8, offsetBytes: 0, mf: true, id, src });
  table.insert(first(1, 0x0a000001), 0, T0);
  table.insert(first(2, 0x0a000002), 0, T0 + 10 * SECOND);
  table.insert(first(3, 0x0a000003), 0, T0 + 31 * SECOND);
  t.is(table.stats.discarded[DefragDrop.Timeout], 1, 'id 1 was past its time');
  table.insert(first(4, 0x0a000004), 0, T0 + 32 * SECOND);
  t.is(table.stats.discarded[DefragDrop.Evicted], 1, 'id 2 was live, and the oldest');
  t.is(table.size, 2);
  t.is(table.insert(fragment({ payloadLength: 8, offsetBytes: 8, mf: false, id: 3, src: 0x0a000003 }), 0, T0 + 33 * SECOND), DefragResult.Complete, 'id 3 stayed');
});

test('options that do not fit the memory limit are refused at construction', (t) => {
  const bad: DefragOptions[] = [
    { maxDatagrams: 100 },
    { maxDatagramSize: 575 },
    { maxDatagramSize: 65_536 },
    { maxFragments: 1 },
    { timeoutSeconds: 0 },
    { timeoutSeconds: Number.NaN },
    { memoryLimit: 1000 },
    { maxDatagrams: 0 },
  ];
  for (const options of bad) t.throws(() => new Defrag(options), { instanceOf: RangeError }, JSON.stringify(options));
  const small = new Defrag({ maxDatagramSize: 1500, memoryLimit: 64 * 1024 });
  t.true(small.byteLength <= 64 * 1024);
  t.true(small.maxDatagrams >= 25, `${small.maxDatagrams}`);
});

test('every reason has a name', (t) => {
  t.is(DEFRAG_DROP_NAMES.length, DEFRAG_DROP_COUNT);
  t.is(new Set(DEFRAG_DROP_NAMES).size, DEFRAG_DROP_COUNT);
  t.is(Object.keys(DefragDrop).length, DEFRAG_DROP_COUNT);
  t.is(defragDropName(99), 'unknown-99');
});

test('the reassembled header verifies and parses as a whole packet', (t) => {
  const table = new Defrag();
  const { whole } = feed(table, fragments(datagram({ payloadLength: 5000, df: true }), 1400, true));
  const view = new Ipv4View();
  t.is(view.check(whole!, 0), PacketOk);
  t.false(view.isFragment);
  t.true(view.verifyChecksum());
  t.is(view.totalLength, 5020);
});

test('headroom: the bytes before a completed datagram are free to write a frame header into, whatever the options', (t) => {
  for (const optionsLength of [0, 40]) {
    const table = new Defrag({ headroom: 14 });
    const original = datagram({ payloadLength: 3000, options: Buffer.alloc(optionsLength, 1) });
    const frags = fragments(original, 1500);
    feed(table, frags.slice(0, -1));
    // Another datagram held in the neighbouring slots must not be touched by the header written.
    const other = fragments(datagram({ payloadLength: 3000, id: 77 }), 1500);
    table.insert(other[0], 0, T0);
    t.is(table.insert(frags.at(-1)!, 0, T0), DefragResult.Complete);
    t.true(table.completeOffset >= 14);
    table.completeBuffer.fill(0xee, table.completeOffset - 14, table.completeOffset);
    t.deepEqual(completed(table), original);
    t.is(table.insert(other[2], 0, T0), DefragResult.Held);
    t.is(table.insert(other[1], 0, T0), DefragResult.Complete);
    t.deepEqual(completed(table), datagram({ payloadLength: 3000, id: 77 }));
  }
  t.throws(() => new Defrag({ headroom: -1 }), { instanceOf: RangeError });
  t.is(new Defrag().headroom, 64);
});

test('per-source quota: a source flooding first fragments only pushes out its own, never another pod\'s datagram in progress', (t) => {
  const table = new Defrag({ seed: 7 });
  const quota = table.maxDatagramsPerSource;
  t.is(quota, Math.floor(table.maxDatagrams / 4));
  const victim = fragments(datagram({ payloadLength: 3000, id: 1, src: 0x0af40105 }), 1500);
  t.is(table.insert(victim[0], 0, T0), DefragResult.Held);
  const flooder = 0x0af40106;
  for (let i = 0; i < 10_000; i++) table.insert(fragment({ payloadLength: 1480, offsetBytes: 0, mf: true, id: i & 0xffff, src: flooder }), 0, T0 + i);
  t.is(table.size, quota + 1, 'the flooder holds its quota, the victim its one');
  t.is(table.stats.discarded[DefragDrop.SourceLimit], 10_000 - quota);
  t.is(table.stats.discarded[DefragDrop.Evicted], 0);
  t.is(table.insert(victim[1], 0, T0 + 20_000), DefragResult.Held);
  t.is(table.insert(victim[2], 0, T0 + 20_000), DefragResult.Complete);
  t.deepEqual(completed(table), datagram({ payloadLength: 3000, id: 1, src: 0x0af40105 }));
  // The flooder's newest are the ones kept, and complete.
  const last = fragment({ payloadLength: 8, offsetBytes: 1480, mf: false, id: 9_999, src: flooder });
  t.is(table.insert(last, 0, T0 + 20_001), DefragResult.Complete);
  assertBooks(t, table);
  t.throws(() => new Defrag({ maxDatagramsPerSource: 0 }), { instanceOf: RangeError });
});

test('byteLength stays within memoryLimit for every shape of table', (t) => {
  for (const maxDatagramSize of [576, 1500, 2048, 9000, 65_535]) {
    for (const memoryLimit of [100_000, 1 << 20, 4 << 20, 10_000_000]) {
      for (const maxFragments of [2, 64, 1000]) {
        let table: Defrag;
        try {
          table = new Defrag({ maxDatagramSize, memoryLimit, maxFragments });
        } catch (err) {
          t.true(err instanceof RangeError && memoryLimit < 2 * (maxDatagramSize + 200 + maxFragments * 8), `${maxDatagramSize}/${memoryLimit}/${maxFragments}: ${String(err)}`);
          continue;
        }
        if (table.byteLength > memoryLimit) t.fail(`${maxDatagramSize}/${memoryLimit}/${maxFragments}: ${table.byteLength} bytes`);
        t.throws(() => new Defrag({ maxDatagramSize, memoryLimit, maxFragments, maxDatagrams: table.maxDatagrams + 1 }), { instanceOf: RangeError });
      }
    }
  }
  t.pass();
});

test('addresses above 2^31 (192.0.2.7, 255.255.255.255) key, complete and leave the indexes as any other', (t) => {
  const table = new Defrag({ maxDatagrams: 4, maxDatagramSize: 4000 });
  for (const src of [0xc0000207, 0xffffffff]) {
    for (let round = 0; round < 3; round++) {
      const original = datagram({ payloadLength: 3000, id: 1, src, dst: 0xc0000208 });
      const frags = fragments(original, 1500);
      t.is(feed(table, [frags[2], frags[0]]).results.join(), `${DefragResult.Held},${DefragResult.Held}`);
      t.is(table.insert(frags[1], 0, T0), DefragResult.Complete);
      t.deepEqual(completed(table), original);
      t.is(table.size, 0);
    }
  }
  assertBooks(t, table);
});
