/**
 * The structures under the NetworkPolicy tables: the address hash table, the ipBlock union,
 * peer sets and port sets, each held to a plain reference.
 */
import test from 'ava';
import fc from 'fast-check';
import type { IpBlock, NetworkPolicyPort, Pod } from '../../src/cluster/model.js';
import { cidrContains, parseCidr, parseIpv4, prefixMask, type Cidr } from '../../src/packet/addr.js';
import { CidrSet } from '../../src/kube/policy-cidrs.js';
import { IP_ABSENT, IpTable } from '../../src/kube/policy-ip-table.js';
import { PeerSet, unionOfPeerSets } from '../../src/kube/policy-peers.js';
import { egressPortSpec, ingressPortSpec, NamedPortIndex, PortSet, portSpecKey } from '../../src/kube/policy-ports.js';

const ip = (s: string): number => parseIpv4(s)!;
const cidr = (s: string): Cidr => parseCidr(s)!;
const block = (c: string, ...except: string[]): IpBlock => ({ cidr: cidr(c), except: except.map(cidr) });

test('IpTable: values by address, IP_ABSENT for the rest, uint32 and int32 alike', (t) => {
  const table = IpTable.from(
    new Map([
      [ip('10.244.1.2'), 0],
      [ip('192.0.2.200'), 7],
      [0, 3],
      [0xffffffff, 4],
    ]),
  );
  t.is(table.size, 4);
  t.is(table.get(ip('10.244.1.2')), 0);
  t.is(table.get(ip('192.0.2.200')), 7);
  t.is(table.get(ip('192.0.2.200') | 0), 7);
  t.is(table.get(0), 3);
  t.is(table.get(-1), 4);
  t.is(table.get(ip('10.244.1.3')), IP_ABSENT);
  t.false(IpTable.EMPTY.has(0));
  t.throws(() => IpTable.from(new Map([[1, -2]])), { instanceOf: RangeError });
});

test('IpTable property: agrees with a Map, including on dense runs of pod addresses', (t) => {
  const dense = fc.integer({ min: 0, max: 2000 }).map((n) => (0x0af40100 + n) >>> 0);
  const addr = fc.oneof(fc.nat().map((n) => n >>> 0), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => n >>> 0), dense);
  fc.assert(
    fc.property(fc.array(fc.tuple(addr, fc.nat()), { maxLength: 300 }), fc.array(addr, { maxLength: 50 }), (entries, probes) => {
      const map = new Map(entries);
      const table = IpTable.from(map);
      return [...map.keys(), ...probes].every((a) => table.get(a) === (map.get(a) ?? IP_ABSENT) && table.get(a | 0) === table.get(a));
    }),
  );
  t.pass();
});

test('CidrSet: one block with except, as the Kubernetes docs example reads', (t) => {
  const set = CidrSet.of([block('172.17.0.0/16', '172.17.1.0/24')]);
  t.true(set.contains(ip('172.17.0.255')));
  t.false(set.contains(ip('172.17.1.0')));
  t.false(set.contains(ip('172.17.1.255')));
  t.true(set.contains(ip('172.17.2.0')));
  t.true(set.contains(ip('172.17.255.255')));
  t.false(set.contains(ip('172.18.0.0')));
  t.false(CidrSet.EMPTY.contains(0));
});

test('CidrSet: an except of one block does not remove what another block includes', (t) => {
  const set = CidrSet.of([block('10.0.0.0/8', '10.1.0.0/16'), block('10.0.0.0/8')]);
  t.true(set.contains(ip('10.1.0.1')));
  // The second block makes the first's except (and the first itself) redundant: one probe.
  t.is(set.probeCount, 1);
  const nested = CidrSet.of([block('10.0.0.0/8', '10.1.0.0/16'), block('10.1.2.0/24')]);
  t.true(nested.contains(ip('10.1.2.3')));
  t.false(nested.contains(ip('10.1.3.3')));
  t.true(nested.contains(ip('10.2.0.0')));
});

test('CidrSet: 0.0.0.0/0 and /32 edges', (t) => {
  const set = CidrSet.of([block('0.0.0.0/0', '255.255.255.255/32', '0.0.0.0/32')]);
  t.true(set.contains(ip('8.8.8.8')));
  t.false(set.contains(0xffffffff));
  t.false(set.contains(0));
  t.true(set.contains(1));
});

const arbCidr = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 32 })).map(([a, p]): Cidr => ({ base: (a & prefixMask(p)) >>> 0, prefix: p }));
/** A block with excepts inside it, as the decoder guarantees (each a strict subset). */
const arbBlock = fc
  .tuple(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 28 })), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 4 })), { maxLength: 3 }))
  .map(([[a, p], excepts]): IpBlock => {
    const base = (a & prefixMask(p)) >>> 0;
    return {
      cidr: { base, prefix: p },
      except: excepts.map(([offset, extra]) => {
        const prefix = Math.min(32, p + extra);
        return { base: ((base + (offset % 2 ** (32 - p))) & prefixMask(prefix)) >>> 0, prefix };
      }),
    };
  });

test('CidrSet property: agrees with "some block has it and none of that block\'s excepts"', (t) => {
  fc.assert(
    fc.property(fc.array(arbBlock, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 40 }), (blocks, probes) => {
      const set = CidrSet.of(blocks);
      // Probe the edges of every prefix too: first and last address, and just outside.
      const edges = blocks.flatMap((b) => [b.cidr, ...b.except]).flatMap((c) => [c.base, c.base + 2 ** (32 - c.prefix) - 1, c.base - 1, c.base + 2 ** (32 - c.prefix)]);
      return [...probes, ...edges]
        .map((a) => a >>> 0)
        .every((a) => set.contains(a) === blocks.some((b) => cidrContains(b.cidr, a) && !b.except.some((e) => cidrContains(e, a))));
    }),
  );
  t.pass();
});

test('arbitrary CIDRs as blocks without except: a plain union', (t) => {
  fc.assert(
    fc.property(fc.array(arbCidr, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (cidrs, probes) => {
      const set = CidrSet.of(cidrs.map((c) => ({ cidr: c, except: [] })));
      return [...probes, ...cidrs.map((c) => c.base)].every((a) => set.contains(a >>> 0) === cidrs.some((c) => cidrContains(c, a >>> 0)));
    }),
  );
  t.pass();
});

function pod(ip: number, ports: { name?: string; containerPort: number; protocol: 'TCP' | 'UDP' | 'SCTP' }[]): Pod {
  return { ip, containers: [{ name: 'c', image: 'i', command: [], args: [], env: [], ports }] } as unknown as Pod;
}

/** Pod numbers are positions in the pod list given to NamedPortIndex. */
const WEB = pod(ip('10.244.1.2'), [
  { name: 'http', containerPort: 8080, protocol: 'TCP' },
  { name: 'dns', containerPort: 53, protocol: 'UDP' },
]);
const API = pod(ip('10.244.2.2'), [{ name: 'http', containerPort: 80, protocol: 'TCP' }]);
const [WEB_NUMBER, API_NUMBER, NOT_A_POD] = [0, 1, -1];

test('ingress port spec: ranges sorted and merged, names resolved against the receiver with their protocol', (t) => {
  const ports: NetworkPolicyPort[] = [
    { protocol: 'TCP', port: 90, endPort: 100 },
    { protocol: 'TCP', port: 80, endPort: 89 },
    { protocol: 'UDP', port: 'dns' },
    { protocol: 'TCP', port: 'dns' },
    { protocol: 'TCP', port: 'http' },
    { protocol: 'SCTP' },
  ];
  const spec = ingressPortSpec(ports, WEB);
  t.deepEqual(spec.ranges, [
    [6, 80, 100],
    [6, 8080, 8080],
    [17, 53, 53],
    [132, 0, 65535],
  ]);
  t.is(portSpecKey(spec), '6:80:100,6:8080:8080,17:53:53,132:0:65535');
  const set = new PortSet(spec, new NamedPortIndex([WEB]));
  t.true(set.matches(WEB_NUMBER, 6, 85));
  t.true(set.matches(WEB_NUMBER, 132, 7));
  t.false(set.matches(WEB_NUMBER, 6, 53));
  t.is(set.describe(), 'TCP 80-100, TCP 8080, UDP 53, SCTP any port');
  t.is(new PortSet(ingressPortSpec([{ protocol: 'TCP', port: 'nope' }], WEB), new NamedPortIndex([])).describe(), 'no port (named ports not declared by the pod)');
});

test('egress port set: a name resolves per destination pod, never for other addresses', (t) => {
  const index = new NamedPortIndex([WEB, API]);
  const set = new PortSet(egressPortSpec([{ protocol: 'TCP', port: 'http' }, { protocol: 'UDP', port: 5000, endPort: 5010 }]), index);
  t.true(set.matches(WEB_NUMBER, 6, 8080));
  t.true(set.matches(API_NUMBER, 6, 80));
  t.false(set.matches(API_NUMBER, 6, 8080));
  t.false(set.matches(WEB_NUMBER, 17, 8080));
  t.false(set.matches(NOT_A_POD, 6, 80));
  t.true(set.matches(NOT_A_POD, 17, 5005));
  t.is(set.describe(), 'UDP 5000-5010, TCP http');
});

test('peer sets: pod bits by number, blocks by address, unions of both', (t) => {
  const bits = (...numbers: number[]): Int32Array => {
    const b = new Int32Array(2); // 64 pods
    for (const n of numbers) b[n >>> 5] |= 1 << (n & 31);
    return b;
  };
  const blocks = [block('192.0.2.0/24', '192.0.2.128/25')];
  const a = new PeerSet(bits(0, 31, 32), CidrSet.EMPTY, []);
  const b = new PeerSet(bits(63), CidrSet.of(blocks), blocks);
  t.true(a.matches(31, ip('10.244.1.9')));
  t.true(a.matches(32, 0));
  t.false(a.matches(33, 0));
  t.false(a.matches(NOT_A_POD, ip('192.0.2.1')));
  t.true(b.matches(NOT_A_POD, ip('192.0.2.1')));
  t.false(b.matches(NOT_A_POD, ip('192.0.2.129')));
  const union = unionOfPeerSets([a, b]);
  t.is(union.podCount, 4);
  t.is(union.bytes, 8);
  for (const n of [0, 31, 32, 63]) t.true(union.matches(n, 0));
  t.false(union.matches(1, 0));
  t.true(union.matches(NOT_A_POD, ip('192.0.2.1')));
  t.false(union.matches(NOT_A_POD, ip('192.0.2.200')));
});
