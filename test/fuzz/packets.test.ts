import test from 'ava';
import { readU16 } from '../../src/packet/bytes.js';
import { BoundsError, fenced } from '../helpers/bounds.js';
import { describeFailure, Dissector, formatReach, generateFrame, LAYERS, loadCorpus, runCases, toHex, type Layer } from './frames.js';

// Fixed, so that a failure here is the same failure on every machine; scripts/fuzz-packets.ts
// explores other seeds.
const SEED = 0x5eed;
const CASES = 100_000;

// Each layer must be reached in at least this share of the cases, or the fuzz has drifted into
// testing only the first headers (a fixture lost, a mutator that breaks every frame).
const MIN_SHARE: Record<Layer, number> = {
  ethernet: 0.9,
  vlan: 0.05,
  arp: 0.03,
  ipv4: 0.4,
  icmp: 0.05,
  icmpQuote: 0.01,
  udp: 0.12,
  tcp: 0.12,
  tcpOptions: 0.1,
  vxlan: 0.08,
  inner: 0.08,
  ipv6: 0.025,
};

const corpus = loadCorpus();

test('the corpus holds every capture in test/fixtures, and each seed dissects cleanly under the fence', (t) => {
  const files = new Set(corpus.map((s) => s.name.split('#')[0]));
  t.true(files.size >= 8, `only ${[...files].join(', ')}`);
  const dissector = new Dissector();
  for (const seed of corpus) t.notThrows(() => dissector.dissect(seed.frame.slice(), true), seed.name);
  // Between them the captures reach every layer but the tags, which the mutators add.
  for (const layer of LAYERS) if (layer !== 'vlan') t.true(dissector.reach.checked[layer] > 0, layer);
});

test('a case is a function of seed and case number alone', (t) => {
  for (const caseNumber of [0, 1, 77, 99_999]) {
    t.is(toHex(generateFrame(corpus, SEED, caseNumber)), toHex(generateFrame(corpus, SEED, caseNumber)));
  }
  t.not(toHex(generateFrame(corpus, SEED, 5)), toHex(generateFrame(corpus, SEED + 1, 5)));
});

test('the fence catches a read one byte past the window, which an integer check would pass', (t) => {
  const bytes = new Uint8Array([1, 2, 3, 4]);
  // The unfenced read gives (3 << 8) | undefined = 768: an integer, though byte 3 is outside [0, 3).
  t.true(Number.isInteger(readU16(bytes.subarray(0, 3), 2)));
  t.throws(() => readU16(fenced(bytes, 0, 3), 2), { instanceOf: BoundsError });
  t.throws(() => fenced(bytes, 1, 3)[0], { instanceOf: BoundsError });
  t.throws(() => fenced(bytes, 0, 3).subarray(1, 4), { instanceOf: BoundsError });
  t.is(readU16(fenced(bytes, 1, 3), 1), 0x0203);
});

test(`${CASES / 1000}k random and mutated frames through every parser: no throw, no read outside a checked window`, (t) => {
  const started = performance.now();
  const result = runCases(corpus, { seed: SEED, cases: CASES, fenceEvery: 10 });
  const seconds = (performance.now() - started) / 1000;
  if (result.failure !== undefined) return t.fail(describeFailure(result.failure));
  const rate = Math.round(CASES / seconds);
  t.log(`${CASES} cases (${result.fencedCases} fenced) in ${seconds.toFixed(1)} s, ${rate} cases/s\n${formatReach(result.reach, CASES)}`);
  for (const layer of LAYERS) {
    const min = Math.ceil(MIN_SHARE[layer] * CASES);
    t.true(result.reach.checked[layer] >= min, `${layer} reached ${result.reach.checked[layer]} times, under ${min}`);
  }
});
