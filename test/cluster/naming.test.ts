import test from 'ava';
import fc from 'fast-check';
import { canonicalJson, fnv32a, generateName, podTemplateHash, SAFE_ALPHABET, safeEncodeString } from '../../src/cluster/naming.js';
import { randomInt, randomUuid, seededRandom } from '../../src/cluster/random.js';

test('FNV-1a 32-bit test vectors', (t) => {
  t.is(fnv32a(''), 0x811c9dc5);
  t.is(fnv32a('a'), 0xe40c292c);
  t.is(fnv32a('foobar'), 0xbf9cf968);
});

test('safeEncodeString maps char codes modulo 27 onto the vowel-free alphabet', (t) => {
  t.is(safeEncodeString('0123456789'), '456789bcdf');
  t.is(safeEncodeString(''), '');
  t.is(SAFE_ALPHABET.length, 27);
});

test('the pod-template-hash is the safe-encoded decimal FNV-32a of the canonical template', (t) => {
  const template = { spec: { containers: [{ name: 'c' }] }, labels: { app: 'a' } };
  t.is(podTemplateHash(template), safeEncodeString(String(fnv32a(canonicalJson(template)))));
  t.is(podTemplateHash(template), podTemplateHash({ labels: { app: 'a' }, spec: { containers: [{ name: 'c' }] } }));
  t.not(podTemplateHash(template), podTemplateHash({ ...template, labels: { app: 'b' } }));
});

test('canonicalJson sorts keys at every level and drops undefined', (t) => {
  t.is(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: undefined } }), '{"a":{"d":[1,{"e":3,"f":2}]},"b":1}');
});

test('generateName: base plus five safe characters, reproducible with a seed', (t) => {
  const a = generateName('web-abc-', seededRandom(3));
  t.regex(a, /^web-abc-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  t.is(a, generateName('web-abc-', seededRandom(3)));
  t.not(a, generateName('web-abc-', seededRandom(4)));
});

test('generateName cuts a long base so the name stays a 63-character label', (t) => {
  const name = generateName(`${'x'.repeat(70)}-`, seededRandom(1));
  t.is(name.length, 63);
  t.true(name.startsWith('x'.repeat(58)));
});

test('seededRandom is in [0, 1) and repeatable; randomInt stays in range even for a source returning 1', (t) => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const a = seededRandom(seed);
      const b = seededRandom(seed);
      for (let i = 0; i < 20; i++) {
        const x = a();
        if (x !== b() || x < 0 || x >= 1) return false;
      }
      return true;
    }),
  );
  t.is(randomInt(() => 1, 27), 26);
});

test('randomUuid is a version-4 UUID', (t) => {
  t.regex(randomUuid(seededRandom(9)), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.regex(randomUuid(() => 0.999999), /^ffffffff-ffff-4fff-bfff-ffffffffffff$/);
});
