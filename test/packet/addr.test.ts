/**
 * Address arithmetic the forwarding path leans on: CIDR membership in int32 arithmetic
 * agrees with the plain uint32 definition for every prefix length.
 */
import test from 'ava';
import fc from 'fast-check';
import { cidrContains, parseCidr, prefixMask } from '../../src/packet/addr.js';

test('property: cidrContains is (addr & mask) === base, for every prefix and every address', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (addr, other, prefix) => {
      const base = (other & prefixMask(prefix)) >>> 0;
      const inside = ((addr & prefixMask(prefix)) >>> 0) === base;
      return cidrContains({ base, prefix }, addr) === inside && cidrContains({ base, prefix }, base) && cidrContains({ base, prefix }, addr | 0) === inside;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('cidrContains at the edges: /0 holds everything, /32 one address, high addresses too', (t) => {
  const all = parseCidr('0.0.0.0/0')!;
  t.true(cidrContains(all, 0xffffffff));
  const one = parseCidr('192.0.2.200/32')!;
  t.true(cidrContains(one, 0xc00002c8));
  t.false(cidrContains(one, 0xc00002c9));
  const high = parseCidr('240.0.0.0/4')!;
  t.true(cidrContains(high, 0xffffffff));
  t.false(cidrContains(high, 0x0a000001));
});
