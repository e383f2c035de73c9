import test from 'ava';
import fc from 'fast-check';
import { cidrContains, parseCidr, parseIpv4, prefixMask, type Cidr } from '../../src/packet/addr.js';
import { LpmTable } from '../../src/overlay/lpm.js';

const ip = (s: string) => parseIpv4(s)!;
const cidr = (s: string) => parseCidr(s)!;

test('routes like a flannel node: longest prefix wins, default catches the rest', (t) => {
  const table = new LpmTable<string>();
  table.set(cidr('0.0.0.0/0'), 'uplink');
  table.set(cidr('10.244.0.0/16'), 'blackhole');
  table.set(cidr('10.244.1.0/24'), 'local bridge');
  table.set(cidr('10.244.2.0/24'), 'vxlan to node-2');
  t.is(table.lookup(ip('10.244.1.7')), 'local bridge');
  t.is(table.lookup(ip('10.244.2.200')), 'vxlan to node-2');
  t.is(table.lookup(ip('10.244.9.1')), 'blackhole');
  t.is(table.lookup(ip('192.0.2.1')), 'uplink');
  t.true(table.delete(cidr('10.244.2.0/24')));
  t.false(table.delete(cidr('10.244.2.0/24')));
  t.is(table.lookup(ip('10.244.2.200')), 'blackhole');
  t.is(table.size, 3);
});

test('/32 and /0 edges', (t) => {
  const table = new LpmTable<number>();
  table.set(cidr('255.255.255.255/32'), 1);
  t.is(table.lookup(0xffffffff), 1);
  t.is(table.lookup(0xfffffffe), undefined);
});

test('property: agrees with a linear scan for the longest containing prefix', (t) => {
  const arbCidr = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 32 })).map(([a, p]): Cidr => ({ base: (a & prefixMask(p)) >>> 0, prefix: p }));
  fc.assert(
    fc.property(fc.array(arbCidr, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 }), (cidrs, probes) => {
      const table = new LpmTable<number>();
      cidrs.forEach((c, i) => table.set(c, i));
      // Probe addresses inside the prefixes too, not only random ones.
      const addrs = [...probes.map((p) => p >>> 0), ...cidrs.map((c) => (c.base | 1) >>> 0)];
      return addrs.every((addr) => {
        let best: number | undefined;
        let bestLen = -1;
        cidrs.forEach((c, i) => {
          if (cidrContains(c, addr) && c.prefix >= bestLen) {
            // A later set() of the same prefix overwrites the earlier value.
            best = i;
            bestLen = c.prefix;
          }
        });
        return table.lookup(addr) === best;
      });
    }),
  );
  t.pass();
});
