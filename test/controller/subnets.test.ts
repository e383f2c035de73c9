/**
 * flannel's subnet allocation: a node gets back what it held, else the lowest free /24 from
 * index 1; the key form round-trips and refuses anything that is not a /24 network.
 */
import test from 'ava';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { cidrContains, formatCidr, parseCidr, prefixMask, type Cidr } from '../../src/packet/addr.js';
import { nodePodCidr } from '../../src/cluster/ipam.js';
import { chooseSubnet, parseSubnetKey, subnetKey } from '../../src/controller/subnets.js';

const cidr = (text: string): Cidr => parseCidr(text)!;
const POD_CIDR = cidr('10.244.0.0/16');
const show = (c: Cidr | undefined): string => (c === undefined ? 'full' : formatCidr(c));
const lease = (subnet: string, node: string) => ({ subnet: cidr(subnet), node });

test('a first node gets 10.244.1.0/24: the first /24 of the pod CIDR is never handed out', (t) => {
  t.is(show(chooseSubnet(POD_CIDR, 'a', [])), '10.244.1.0/24');
  t.is(show(chooseSubnet(cidr('172.16.0.0/12'), 'a', [])), '172.16.1.0/24');
});

test('the lowest free /24 is taken, gaps first', (t) => {
  const held = [lease('10.244.1.0/24', 'a'), lease('10.244.3.0/24', 'c')];
  t.is(show(chooseSubnet(POD_CIDR, 'd', held)), '10.244.2.0/24');
  t.is(show(chooseSubnet(POD_CIDR, 'd', [...held, lease('10.244.2.0/24', 'b')])), '10.244.4.0/24');
});

test('a remembered subnet comes back when it is free or already the node\'s own', (t) => {
  const held = [lease('10.244.1.0/24', 'a')];
  t.is(show(chooseSubnet(POD_CIDR, 'b', held, cidr('10.244.7.0/24'))), '10.244.7.0/24', 'free');
  t.is(show(chooseSubnet(POD_CIDR, 'b', [...held, lease('10.244.7.0/24', 'b')], cidr('10.244.7.0/24'))), '10.244.7.0/24', 'held by itself');
  t.is(show(chooseSubnet(POD_CIDR, 'b', held, cidr('10.244.1.0/24'))), '10.244.2.0/24', 'taken by another: the lowest free instead');
});

test('a remembered subnet that is not a node block of this pod CIDR is not reused', (t) => {
  t.is(show(chooseSubnet(POD_CIDR, 'b', [], cidr('10.245.7.0/24'))), '10.244.1.0/24', 'outside the pod CIDR');
  t.is(show(chooseSubnet(POD_CIDR, 'b', [], cidr('10.244.0.0/24'))), '10.244.1.0/24', 'the unused first /24');
  t.is(show(chooseSubnet(POD_CIDR, 'b', [], cidr('10.244.8.0/25'))), '10.244.1.0/24', 'not a /24');
});

test('a node that holds a lease now and remembers nothing keeps its lease rather than leaking it', (t) => {
  const held = [lease('10.244.1.0/24', 'a'), lease('10.244.5.0/24', 'b')];
  t.is(show(chooseSubnet(POD_CIDR, 'b', held)), '10.244.5.0/24');
});

test('a held subnet of another size blocks every /24 it overlaps', (t) => {
  t.is(show(chooseSubnet(POD_CIDR, 'x', [lease('10.244.0.0/22', 'odd')])), '10.244.4.0/24');
  t.is(show(chooseSubnet(POD_CIDR, 'x', [lease('10.244.1.128/25', 'odd')])), '10.244.2.0/24');
});

test('a full pod CIDR gives undefined; a /24 pod CIDR has no node blocks at all', (t) => {
  const small = cidr('10.9.0.0/22'); // /24s 1, 2 and 3 are the node blocks.
  const held = [1, 2, 3].map((i) => ({ subnet: nodePodCidr(small, i), node: `n${i}` }));
  t.is(chooseSubnet(small, 'n4', held), undefined);
  t.is(show(chooseSubnet(small, 'n2', held)), '10.9.2.0/24', 'a holder still gets its own');
  t.is(chooseSubnet(cidr('10.9.0.0/24'), 'a', []), undefined);
});

test('property: every node of a sequence of joins and leaves gets a distinct /24 of the pod CIDR, never the first, until it is full', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 16, max: 24 }), fc.array(fc.option(fc.nat(), { freq: 3 }), { maxLength: 60 }), (prefix, steps) => {
      const pod: Cidr = { base: (0x0af40000 & prefixMask(prefix)) >>> 0, prefix };
      const capacity = 2 ** (24 - prefix) - 1;
      let held: { subnet: Cidr; node: string }[] = [];
      steps.forEach((leave, i) => {
        // A number: one of the holders leaves first, freeing its subnet.
        if (leave !== null && held.length > 0) held = held.filter((_, k) => k !== leave % held.length);
        const got = chooseSubnet(pod, `n${i}`, held);
        if (held.length >= capacity) return assert.equal(got, undefined);
        if (got === undefined) return assert.fail(`${held.length}/${capacity} held, none given`);
        assert.equal(got.prefix, 24);
        assert.ok(cidrContains(pod, got.base) && got.base !== pod.base, formatCidr(got));
        assert.ok(!held.some((h) => h.subnet.base === got.base), `${formatCidr(got)} handed out twice`);
        // The lowest free: every /24 below it is held.
        for (let b = pod.base + 256; b < got.base; b += 256) assert.ok(held.some((h) => h.subnet.base === b), `${formatCidr(got)} skipped a free /24`);
        held.push({ subnet: got, node: `n${i}` });
      });
    }),
  );
  t.pass();
});

test('subnetKey is flannel\'s key form and parseSubnetKey its inverse', (t) => {
  t.is(subnetKey(cidr('10.244.1.0/24')), '10.244.1.0-24');
  t.is(subnetKey(cidr('10.0.0.0/16')), '10.0.0.0-16');
  t.deepEqual(parseSubnetKey('10.244.1.0-24'), cidr('10.244.1.0/24'));
  t.deepEqual(parseSubnetKey('255.255.255.0-24'), { base: 0xffffff00, prefix: 24 });
});

test('parseSubnetKey refuses host bits, other prefixes and malformed text', (t) => {
  for (const bad of ['10.244.1.1-24', '10.244.0.0-16', '10.244.1.0-25', '10.244.1.0/24', '10.244.1.0', '10.244.1.0-024', '10.244.01.0-24', '10.244.1.0-24 ', ' 10.244.1.0-24', '10.244.1-24', '256.1.1.0-24', '-24', '']) {
    t.is(parseSubnetKey(bad), undefined, bad);
  }
});

test('property: every /24 round-trips through its key', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffff }), (n) => {
      const subnet: Cidr = { base: (n << 8) >>> 0, prefix: 24 };
      assert.deepEqual(parseSubnetKey(subnetKey(subnet)), subnet);
    }),
  );
  t.pass();
});
