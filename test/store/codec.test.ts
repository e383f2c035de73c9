/**
 * Store values: the model's numbers come back from their readable form exactly, the text is
 * what a person expects from `etcdctl get`, and a bad field is named rather than half read.
 */
import test from 'ava';
import fc from 'fast-check';
import { demoFiles } from '../../src/cluster/demo.js';
import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { loadCluster } from '../../src/cluster/load.js';
import type { Cluster } from '../../src/cluster/model.js';
import { seededRandom } from '../../src/cluster/random.js';
import { prefixMask } from '../../src/packet/addr.js';
import { decodeRecord, encodeRecord, expectObject, missingFields } from '../../src/store/codec.js';
import { checkPod, checkRegistration, type NodeRegistration } from '../../src/store/records.js';

function demo(): Cluster {
  const r = loadCluster(demoFiles(), { random: seededRandom(7) });
  if (!r.ok) throw new Error(r.errors.map(formatDiagnostic).join('\n'));
  return r.cluster;
}

/** What a value is after a trip through JSON, the form the reader compares against. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

function roundTrip(value: unknown): unknown {
  const decoded = decodeRecord(encodeRecord(value));
  if (!decoded.ok) throw new Error(decoded.reason);
  return decoded.value;
}

test('a resolved Pod, Node and Service come back as they went in', (t) => {
  const c = demo();
  for (const value of [c.pods[0], c.pods[3], c.nodes[0], c.nodes[1], c.settings, ...c.services]) t.deepEqual(roundTrip(value), plain(value));
});

test('the stored text is readable: addresses dotted, MACs in colons, CIDRs as text', (t) => {
  const c = demo();
  const pod = encodeRecord(c.pods[0]);
  t.true(pod.includes('"ip":"10.244.1.2"'), pod);
  t.true(pod.includes('"mac":"0a:58:0a:f4:01:02"'), pod);
  const node = encodeRecord(c.nodes[0]);
  t.true(node.includes('"podCIDR":"10.244.1.0/24"'), node);
  t.true(node.includes('"gateway":"10.244.1.1"'), node);
  t.true(node.includes('"gatewayMac":"0a:58:0a:f4:01:01"'), node);
  const settings = encodeRecord(c.settings);
  t.true(settings.includes('"serviceCIDR":"10.96.0.0/12"'), settings);
  t.true(settings.includes('"dnsIP":"10.96.0.10"'), settings);
  t.false(/"(ip|mac|gateway|underlay)":\d/.test(pod + node), 'no address left as a number');
});

test('golden encoding of a node registration', (t) => {
  const reg: NodeRegistration = {
    name: 'node-1',
    labels: { zone: 'a' },
    underlay: 0xc0a80a05,
    underlayPort: 8472,
    machine: 'm1',
    subnet: { base: 0x0af40100, prefix: 24 },
    vtepMac: 0x0e777f4d0101,
    registeredAt: 1700000000000,
  };
  const text = encodeRecord(reg);
  t.is(text, '{"name":"node-1","labels":{"zone":"a"},"underlay":"192.168.10.5","underlayPort":8472,"machine":"m1","subnet":"10.244.1.0/24","vtepMac":"0e:77:7f:4d:01:01","registeredAt":1700000000000}');
  const back = decodeRecord(text);
  t.true(back.ok);
  if (back.ok) t.deepEqual(checkRegistration(back.value, 'node-1'), reg);
});

test('property: any uint32 address and 48-bit MAC survive, in a pod and in a nested list', (t) => {
  const pod = demo().pods[0];
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 2 ** 48 - 1 }), fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (ip, mac, addr, prefix) => {
      // The model's CIDRs are canonical (no host bits), as parseCidr requires.
      const base = (addr & prefixMask(prefix)) >>> 0;
      const value = { ...pod, ip, mac, nested: [{ clusterIP: ip, cidr: { base, prefix } }], except: [{ base, prefix }] };
      const text = encodeRecord(value);
      if (!text.includes(`"ip":"${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}"`)) return false;
      return JSON.stringify(roundTrip(value)) === JSON.stringify(plain(value));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('a field that does not parse is named and the record refused', (t) => {
  const text = encodeRecord(demo().pods[0]);
  const bad = decodeRecord(text.replace('"ip":"10.244.1.2"', '"ip":"10.0.0.999"'));
  t.false(bad.ok);
  if (!bad.ok) t.is(bad.reason, 'ip: "10.0.0.999" is not an IPv4 address');
  const badMac = decodeRecord(text.replace('"mac":"0a:58:0a:f4:01:02"', '"mac":"0a:58:zz:f4:01:02"'));
  t.false(badMac.ok);
  if (!badMac.ok) t.is(badMac.reason, 'mac: "0a:58:zz:f4:01:02" is not a MAC address');
  const two = decodeRecord('{"subnet":"10.244.1.0/33","except":["10.0.0.0/8","nope"]}');
  t.false(two.ok);
  if (!two.ok) t.is(two.reason, 'subnet: "10.244.1.0/33" is not a CIDR; except: "nope" is not a CIDR');
  const notJson = decodeRecord('{"ip":');
  t.false(notJson.ok);
  if (!notJson.ok) t.regex(notJson.reason, /^not JSON: /);
});

test('shape checks say what is missing or mistyped', (t) => {
  t.is(expectObject([1]), 'not an object');
  t.is(expectObject(null), 'not an object');
  t.is(missingFields({ a: 'x', b: null }, { a: 'string', b: 'object', c: 'number' }), 'missing or mistyped: b (object), c (number)');
  const pod = demo().pods[0];
  const decoded = decodeRecord(encodeRecord(pod));
  t.true(decoded.ok);
  if (decoded.ok) {
    t.is(typeof checkPod(decoded.value, `${pod.namespace}/${pod.name}`), 'object');
    t.is(checkPod(decoded.value, 'default/other'), `names ${pod.namespace}/${pod.name}, not default/other`);
  }
});
