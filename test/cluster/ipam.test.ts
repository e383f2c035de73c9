import test from 'ava';
import fc from 'fast-check';
import { cidrContains, cidrSize, formatCidr, formatIpv4, formatMac, parseCidr, parseIpv4, type Cidr } from '../../src/packet/addr.js';
import {
  allocateClusterIps,
  allocatePodIps,
  clusterIndex,
  DNS_SERVICE,
  dnsServiceIP,
  gatewayAddress,
  KUBERNETES_SERVICE,
  kubernetesServiceIP,
  nodeCapacity,
  nodePodCidr,
  PODS_PER_NODE,
  podMac,
  underlayAddress,
  vtepMac,
  type ClusterIpClaim,
} from '../../src/cluster/ipam.js';
import { allocateNodePorts, NODE_PORT_MAX, NODE_PORT_MIN, type NodePortClaim } from '../../src/cluster/nodeports.js';
import { cluster, yaml } from './helpers.js';

const POD_CIDR = parseCidr('10.244.0.0/16')!;
const SERVICE_CIDR = parseCidr('10.96.0.0/12')!;

test('node N gets the N-th /24 of the pod CIDR, gateway .1', (t) => {
  t.is(formatCidr(nodePodCidr(POD_CIDR, 1)), '10.244.1.0/24');
  t.is(formatCidr(nodePodCidr(POD_CIDR, 2)), '10.244.2.0/24');
  t.is(formatCidr(nodePodCidr(POD_CIDR, 255)), '10.244.255.0/24');
  t.is(formatCidr(nodePodCidr(parseCidr('10.0.0.0/8')!, 300)), '10.1.44.0/24');
  t.is(formatIpv4(gatewayAddress(nodePodCidr(POD_CIDR, 2))), '10.244.2.1');
  t.is(nodeCapacity(POD_CIDR), 255);
  t.is(nodeCapacity(parseCidr('10.244.0.0/23')!), 1);
  t.is(nodeCapacity(parseCidr('10.244.0.0/24')!), 0);
  t.is(nodeCapacity(parseCidr('10.244.0.0/25')!), 0);
});

test('MACs: 0a:58 + IP for pods and gateways, 0e:77 + underlay for VTEPs', (t) => {
  t.is(formatMac(podMac(parseIpv4('10.244.1.2')!)), '0a:58:0a:f4:01:02');
  t.is(formatIpv4(underlayAddress(25, 1)), '127.77.25.1');
  t.is(formatMac(vtepMac(underlayAddress(25, 2))), '0e:77:7f:4d:19:02');
});

test('the cluster index is a stable hash of the name in 1..254, and tells clusters apart', (t) => {
  t.is(clusterIndex('demo'), clusterIndex('demo'));
  t.not(clusterIndex('demo'), clusterIndex('podwire'));
  fc.assert(
    fc.property(fc.string(), (name) => {
      const i = clusterIndex(name);
      return Number.isInteger(i) && i >= 1 && i <= 254;
    }),
  );
});

test('two clusters on one machine use disjoint underlay addresses', (t) => {
  const a = cluster('apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nmetadata: {name: alpha}\n');
  const b = cluster('apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nmetadata: {name: beta}\n');
  t.not(a.settings.clusterIndex, b.settings.clusterIndex);
  const underlays = [...a.nodes, ...b.nodes].map((n) => n.underlay);
  t.is(new Set(underlays).size, 4);
  t.true(underlays.every((u) => u >>> 24 === 127));
});

test('pod addresses: .2 upward per node in order, undefined once a /24 is full', (t) => {
  const blocks = [nodePodCidr(POD_CIDR, 1), nodePodCidr(POD_CIDR, 2)];
  t.deepEqual(
    allocatePodIps(blocks, [0, 1, 0, 0, 1]).map((ip) => formatIpv4(ip!)),
    ['10.244.1.2', '10.244.2.2', '10.244.1.3', '10.244.1.4', '10.244.2.3'],
  );
  const full = allocatePodIps(blocks, new Array(PODS_PER_NODE + 1).fill(0));
  t.is(formatIpv4(full[PODS_PER_NODE - 1]!), '10.244.1.253', '.254 is the node DNS relay, .255 the broadcast address');
  t.is(full[PODS_PER_NODE], undefined);
});

const nodesAndPlacement = fc.integer({ min: 1, max: 6 }).chain((nodes) =>
  fc.tuple(fc.constant(nodes), fc.array(fc.integer({ min: 0, max: nodes - 1 }), { maxLength: 800 })),
);

test('property: pod addresses are unique, inside their node /24, never network, gateway or broadcast', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 8, max: 16 }), nodesAndPlacement, (prefix, [count, placement]) => {
      const podCIDR: Cidr = { base: parseIpv4('10.0.0.0')! & ~(2 ** (32 - prefix) - 1) >>> 0, prefix };
      const blocks = Array.from({ length: count }, (_, i) => nodePodCidr(podCIDR, i + 1));
      const ips = allocatePodIps(blocks, placement);
      const seen = new Set<number>();
      const perNode = new Array<number>(count).fill(0);
      return ips.every((ip, i) => {
        const block = blocks[placement[i]];
        perNode[placement[i]]++;
        if (ip === undefined) return perNode[placement[i]] > PODS_PER_NODE;
        const ok =
          !seen.has(ip) &&
          cidrContains(block, ip) &&
          cidrContains(podCIDR, ip) &&
          ip !== block.base &&
          ip !== gatewayAddress(block) &&
          ip !== block.base + cidrSize(block) - 1;
        seen.add(ip);
        return ok;
      });
    }),
  );
  t.pass();
});

test('property: pods loaded from YAML never share an address and sit in their node /24', (t) => {
  const pod = (i: number, node: number | undefined) =>
    yaml`
      apiVersion: v1
      kind: Pod
      metadata: {name: p${i}}
      spec: {${node === undefined ? '' : `nodeName: node-${node}, `}containers: [{name: c, image: i}]}
    `;
  const deployment = (i: number, replicas: number) =>
    yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: d${i}}
      spec:
        replicas: ${replicas}
        selector: {matchLabels: {app: d${i}}}
        template: {metadata: {labels: {app: d${i}}}, spec: {containers: [{name: c, image: i}]}}
    `;
  const doc = fc.oneof(
    fc.record({ kind: fc.constant('pod' as const), node: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }) }),
    fc.record({ kind: fc.constant('deployment' as const), replicas: fc.integer({ min: 0, max: 20 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 4, max: 6 }), fc.array(doc, { maxLength: 25 }), fc.integer(), (nodes, docs, seed) => {
      const text = [
        `apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nspec: {nodes: ${nodes}}\n`,
        ...docs.map((d, i) => (d.kind === 'pod' ? pod(i, d.node) : deployment(i, d.replicas))),
      ].join('---\n');
      const c = cluster(text, seed);
      const nodeByName = new Map(c.nodes.map((n) => [n.name, n]));
      const ips = c.pods.map((p) => p.ip);
      return (
        new Set(ips).size === ips.length &&
        c.pods.every((p) => {
          const node = nodeByName.get(p.node)!;
          return cidrContains(node.podCIDR, p.ip) && p.ip !== node.gateway && p.ip !== node.podCIDR.base && p.mac === podMac(p.ip);
        }) &&
        new Set(c.pods.map((p) => `${p.namespace}/${p.name}`)).size === c.pods.length
      );
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test('service addresses: reserved .1 and .10, lowest free otherwise, explicit first', (t) => {
  const claims: ClusterIpClaim[] = [
    { owner: 'default/a', request: 'auto' },
    { owner: DNS_SERVICE, request: 'auto' },
    { owner: 'default/b', request: parseIpv4('10.96.0.2')! },
    { owner: KUBERNETES_SERVICE, request: 'auto' },
    { owner: 'default/c', request: 'auto' },
  ];
  t.deepEqual(
    allocateClusterIps(SERVICE_CIDR, claims).map((a) => (a.ok ? formatIpv4(a.value) : a.reason)),
    ['10.96.0.3', '10.96.0.10', '10.96.0.2', '10.96.0.1', '10.96.0.4'],
  );
  t.is(formatIpv4(kubernetesServiceIP(SERVICE_CIDR)), '10.96.0.1');
  t.is(formatIpv4(dnsServiceIP(SERVICE_CIDR)), '10.96.0.10');
});

test('the well-known services may ask for their reserved address explicitly', (t) => {
  const r = allocateClusterIps(SERVICE_CIDR, [{ owner: DNS_SERVICE, request: parseIpv4('10.96.0.10')! }]);
  t.deepEqual(r, [{ ok: true, value: parseIpv4('10.96.0.10')! }]);
});

test('a small service CIDR runs out with a clear reason', (t) => {
  const small = parseCidr('10.96.0.0/28')!;
  const r = allocateClusterIps(
    small,
    Array.from({ length: 13 }, (_, i) => ({ owner: `default/s${i}`, request: 'auto' as const })),
  );
  // 16 addresses: network, broadcast, .1 and .10 reserved: 12 left.
  t.is(r.filter((a) => a.ok).length, 12);
  t.deepEqual(r[12], { ok: false, reason: 'no free address left in the service CIDR 10.96.0.0/28' });
});

test('property: service addresses are unique, in range, never network, broadcast or someone else\'s reserved one', (t) => {
  const cidr = parseCidr('10.96.0.0/26')!;
  const claim = fc.record<ClusterIpClaim>({
    owner: fc.constantFrom('default/a', 'default/b', 'ns/c', KUBERNETES_SERVICE, DNS_SERVICE, 'default/d', 'default/e'),
    request: fc.oneof(fc.constant('auto' as const), fc.integer({ min: cidr.base - 2, max: cidr.base + 66 })),
  });
  fc.assert(
    fc.property(fc.array(claim, { maxLength: 80 }), (claims) => {
      const results = allocateClusterIps(cidr, claims);
      const seen = new Set<number>();
      return results.every((a, i) => {
        if (!a.ok) return true;
        const fine =
          !seen.has(a.value) &&
          cidrContains(cidr, a.value) &&
          a.value !== cidr.base &&
          a.value !== cidr.base + 63 &&
          (claims[i].request === 'auto' || claims[i].request === a.value) &&
          (a.value !== kubernetesServiceIP(cidr) || claims[i].owner === KUBERNETES_SERVICE) &&
          (a.value !== dnsServiceIP(cidr) || claims[i].owner === DNS_SERVICE);
        seen.add(a.value);
        return fine;
      });
    }),
  );
  t.pass();
});

test('property: node ports are in range and belong to one service each', (t) => {
  const claim = fc.record<NodePortClaim>({
    owner: fc.constantFrom('default/a', 'default/b', 'default/c'),
    servicePort: fc.constantFrom(53, 80, 443),
    protocol: fc.constantFrom('TCP' as const, 'UDP' as const),
    request: fc.oneof(fc.constant('auto' as const), fc.integer({ min: NODE_PORT_MIN, max: NODE_PORT_MIN + 5 })),
  });
  fc.assert(
    fc.property(fc.array(claim, { maxLength: 40 }), (claims) => {
      const results = allocateNodePorts(claims);
      const owner = new Map<number, string>();
      const uses = new Set<string>();
      return results.every((a, i) => {
        if (!a.ok) return true;
        const use = `${claims[i].owner} ${claims[i].protocol} ${a.value}`;
        const fine =
          a.value >= NODE_PORT_MIN &&
          a.value <= NODE_PORT_MAX &&
          (owner.get(a.value) ?? claims[i].owner) === claims[i].owner &&
          !uses.has(use) &&
          (claims[i].request === 'auto' || claims[i].request === a.value);
        owner.set(a.value, claims[i].owner);
        uses.add(use);
        return fine;
      });
    }),
  );
  t.pass();
});
