/**
 * Fragment soup: random, mangled and real fragments of a few datagrams sharing a small
 * key space, at random offsets in junk-filled frames, with the clock jumping and the
 * reaper called now and then. The table must never throw, never touch a byte of the input
 * outside the window it was given (a fenced buffer throws on one), hand out only whole,
 * valid datagrams, and keep its books: every fragment counted once, every datagram
 * started either finished, discarded or still held.
 */
import test from 'ava';
import fc from 'fast-check';
import { writeU16, writeU32 } from '../../src/packet/bytes.js';
import { internetChecksum } from '../../src/packet/checksum.js';
import { PacketOk } from '../../src/packet/errors.js';
import { Ipv4View } from '../../src/packet/ipv4.js';
import { Defrag, DefragResult } from '../../src/netfilter/defrag.js';
import { BoundsError, fenced } from '../helpers/bounds.js';
import { datagram, fragments } from './defrag-frames.js';

const SECOND = 1e9;

/** A fragment header and payload from raw choices; the checksum is right unless `breakChecksum`. */
const rawFragment = fc
  .record({
    ihl: fc.oneof(fc.constant(5), fc.integer({ min: 0, max: 15 })),
    version: fc.constantFrom(4, 4, 4, 6),
    payloadLength: fc.integer({ min: 0, max: 1600 }),
    totalDelta: fc.constantFrom(0, 0, 0, -1, 1, -30, 500),
    offsetUnits: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 0x1fff })),
    flags: fc.integer({ min: 0, max: 7 }),
    ecn: fc.integer({ min: 0, max: 3 }),
    protocol: fc.constantFrom(1, 6, 17, 47),
    src: fc.constantFrom(0x0af40102, 0x0af40103),
    id: fc.integer({ min: 0, max: 3 }),
    l4: fc.integer({ min: 0, max: 255 }),
  })
  .map((f) => {
    const headerLength = Math.max(f.ihl, 5) * 4;
    const buf = Buffer.alloc(headerLength + f.payloadLength, f.l4);
    buf[0] = (f.version << 4) | f.ihl;
    buf[1] = f.ecn;
    writeU16(buf, 2, Math.max(0, Math.min(0xffff, buf.length + f.totalDelta)));
    writeU16(buf, 4, f.id);
    writeU16(buf, 6, (f.flags << 13) | f.offsetUnits);
    buf[8] = 64;
    buf[9] = f.protocol;
    writeU32(buf, 12, f.src);
    writeU32(buf, 16, 0x0af40202);
    buf.fill(1, 20, headerLength);
    writeU16(buf, 10, internetChecksum(buf, 0, Math.min(headerLength, buf.length)));
    return buf;
  });

/** The fragments of a real datagram of one of the soup's keys, some with a byte flipped. */
const realFragments = fc
  .record({
    payloadLength: fc.integer({ min: 100, max: 6000 }),
    mtu: fc.integer({ min: 68, max: 1500 }),
    id: fc.integer({ min: 0, max: 3 }),
    flips: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 19 }), fc.integer({ min: 1, max: 255 })), { maxLength: 2 }),
  })
  .map(({ payloadLength, mtu, id, flips }) => {
    const frags = fragments(datagram({ payloadLength, id, src: 0x0af40102 }), mtu).slice(0, 80);
    for (const [which, at, xor] of flips) frags[which % frags.length][at] ^= xor;
    return frags;
  });

const soup = fc.array(fc.oneof(rawFragment.map((f) => [f]), realFragments), { minLength: 1, maxLength: 30 }).map((groups) => groups.flat());

const step = fc.record({
  prefix: fc.integer({ min: 0, max: 20 }),
  suffix: fc.integer({ min: 0, max: 20 }),
  junk: fc.integer({ min: 0, max: 255 }),
  clock: fc.oneof({ arbitrary: fc.constantFrom(0, 1000, SECOND), weight: 30 }, { arbitrary: fc.constant(31 * SECOND), weight: 1 }),
  reap: fc.option(fc.integer({ min: 0, max: 5 })),
  badOffset: fc.constantFrom(false, false, false, false, false, false, false, false, false, true),
  fence: fc.boolean(),
});

function checkWhole(table: Defrag, view: Ipv4View): string | undefined {
  const { completeBuffer: buf, completeOffset: at, completeLength: length } = table;
  if (at < 0 || at + length > buf.length) return `datagram at ${at}+${length} outside its buffer`;
  if (view.check(buf, at, length) !== PacketOk) return 'datagram fails Ipv4View.check';
  if (view.totalLength !== length || view.isFragment || !view.verifyChecksum() || length > table.maxDatagramSize) return 'bad datagram header';
  return undefined;
}

for (const options of [{ maxDatagrams: 3, maxDatagramSize: 9000 }, { maxFragments: 8 }, {}]) {
  test(`fuzz: fragment soup never throws, never reads outside its window, and the books add up (${JSON.stringify(options)})`, (t) => {
    const table = new Defrag(options);
    const view = new Ipv4View();
    let now = 5 * SECOND;
    let completes = 0;
    fc.assert(
      fc.property(soup, fc.array(step, { minLength: 30, maxLength: 30 }), (frags, steps) => {
        for (const [i, f] of frags.entries()) {
          const s = steps[i % steps.length];
          now += s.clock;
          const frame = Buffer.alloc(s.prefix + f.length + s.suffix, s.junk);
          frame.set(f, s.prefix);
          let result: DefragResult;
          try {
            if (s.badOffset) result = table.insert(frame, frame.length + s.prefix - 10, now);
            else if (s.fence) result = table.insert(fenced(frame, s.prefix, s.prefix + f.length), s.prefix, now, f.length);
            else result = table.insert(frame, s.prefix, now, f.length);
          } catch (err) {
            if (err instanceof BoundsError) t.fail(`read outside the fragment: ${err.message}`);
            throw err;
          }
          if (result === DefragResult.Complete) {
            completes++;
            const bad = checkWhole(table, view);
            if (bad !== undefined) t.fail(bad);
          }
          if (s.reap !== null) table.expire(now, s.reap);
          const st = table.stats;
          const dropped = st.dropped.reduce((a, b) => a + b, 0);
          const discarded = st.discarded.reduce((a, b) => a + b, 0);
          if (st.fragments !== st.held + st.reassembled + dropped) return false;
          if (st.datagrams !== st.reassembled + discarded + table.size) return false;
          if (table.size > table.maxDatagrams || table.bytesHeld < 0 || table.bytesHeld > table.maxDatagrams * table.maxDatagramSize) return false;
        }
        return true;
      }),
      { numRuns: 400 },
    );
    t.log(completes, Array.from(table.stats.dropped).join(","), Array.from(table.stats.discarded).join(","));
    t.true(completes > 0, 'the soup holds real datagrams that complete');
    t.true(table.stats.discarded.some((n) => n > 0));
  });
}
