import test from 'ava';
import fc from 'fast-check';
import { formatIpv4 } from '../../src/packet/addr.js';
import type { Cluster } from '../../src/cluster/model.js';
import { RecentLists, traverse } from '../../src/kube/interpreter.js';
import { kubeProxyRules, nodeLocalAddresses, type ServiceRuleInputs } from '../../src/kube/kube-proxy.js';
import {
  AffinityTable,
  FlowDecision,
  FlowVerdict,
  LiveServiceTable,
  NOT_FOUND,
  compileServiceTable,
  type ServiceTable,
  DEST_CLUSTER_IP,
  DEST_EXTERNAL,
  DEST_LOAD_BALANCER,
} from '../../src/kube/service-table.js';
import { drawFromUnit } from '../../src/kube/rules.js';
import { NODE, NODE_ADDRESS, SOURCE_POOL, goldenCluster, goldenInputs, inputsFor, ip, modelCluster, randomClusterArb, serviceTargets } from './service-fixtures.js';
import { cluster as loadYaml } from '../cluster/helpers.js';

const NODE_ADDRESS_TEXT = formatIpv4(NODE_ADDRESS);

test('lookup: servicePort << 2 | the kind of destination (cluster IP, external IP, load-balancer IP)', (t) => {
  const table = compileServiceTable(goldenInputs());
  const web = table.lookup(ip('10.96.0.20'), 6, 80);
  t.is(web & 3, DEST_CLUSTER_IP);
  t.is(table.plan(web >> 2).name, 'default/web:http');
  const edge = table.lookup(ip('192.0.2.100'), 6, 443);
  t.is(edge & 3, DEST_LOAD_BALANCER);
  t.is(table.plan(edge >> 2).name, 'default/edge:https');

  t.is(table.lookup(ip('10.96.0.20'), 17, 80), NOT_FOUND);
  t.is(table.lookup(ip('10.96.0.20'), 1, 80), NOT_FOUND, 'ICMP has no services');
  t.is(table.lookup(ip('10.96.0.21'), 6, 80), NOT_FOUND);
  t.is(table.plan(table.lookupNodePort(6, 30443)).name, 'default/edge:https');
  t.is(table.lookupNodePort(17, 30443), NOT_FOUND);
  t.is(table.servicePortCount, 5);
  t.false(table.hasConflicts);
  t.true(table.isLocalAddress(NODE_ADDRESS));
  t.true(table.isLocalAddress(ip('10.244.1.1')));
  t.false(table.isLocalAddress(ip('10.244.1.2')));
});

test('classify fills the decision and resets it for the next flow', (t) => {
  const table = compileServiceTable(goldenInputs());
  const d = new FlowDecision();
  t.is(table.classify(ip('10.244.1.3'), ip('10.96.0.20'), 6, 80, 0xe0000000 | 0, null, d), FlowVerdict.Dnat);
  t.is(formatIpv4(d.dnatAddress), '10.244.2.2');
  t.is(d.dnatPort, 8080);
  t.is(formatIpv4(table.endpointAddress(d.endpoint)), '10.244.2.2');
  t.is(table.endpointPort(d.endpoint), 8080);
  t.is(table.plan(d.servicePort).name, 'default/web:http');
  t.is(table.classify(ip('10.244.1.3'), ip('8.8.8.8'), 17, 53, 0, null, d), FlowVerdict.NoService);
  t.is(d.servicePort, -1);
  t.is(d.endpoint, -1);
  t.true(d.masquerade);
});

test('two services claiming one address keep kube-proxy\'s order: the first rule wins', (t) => {
  const c = goldenCluster();
  const twin = { ...c.services.find((s) => s.name === 'edge')!, name: 'twin', clusterIP: ip('10.96.0.41') };
  const endpoints = [...c.endpoints, { ...c.endpoints.find((e) => e.name === 'shop')!, name: 'twin' }];
  const cluster: Cluster = { ...c, services: [...c.services, { ...twin, ports: [{ ...twin.ports[0], nodePort: 30444 }] }], endpoints };
  const inputs = inputsFor(cluster);
  const table = compileServiceTable(inputs);
  t.true(table.hasConflicts);
  const d = new FlowDecision();
  table.classify(ip('192.0.2.7'), ip('192.0.2.100'), 6, 443, drawFromUnit(0.1), null, d);
  t.is(table.plan(d.servicePort).name, 'default/edge:https');
  const locals = nodeLocalAddresses(inputs);
  const walked = traverse(kubeProxyRules(inputs), { src: ip('192.0.2.7'), dst: ip('192.0.2.100'), proto: 6, sport: 1, dport: 443, mark: 0, ctstate: 'NEW' }, { random: () => 0.1, now: 0, recent: new RecentLists() }, { origin: 'arriving', isLocalAddress: (a) => locals.includes(a) });
  t.is(walked.dnat?.address, d.dnatAddress);
});

test('the affinity table is bounded: a full bucket forgets its least recently used key', (t) => {
  const table = new AffinityTable(1);
  t.is(table.capacity, 4);
  const key = (client: number) => [ip('10.96.0.20'), (1 << 16) | 80, client] as const;
  for (let client = 1; client <= 4; client++) {
    table.setTime(client * 10);
    table.pin(...key(client), 0, ip('10.244.1.2'), 8080);
  }
  table.setTime(100);
  table.pin(...key(1), 1, ip('10.244.2.2'), 8080); // client 1 is now the most recent
  table.setTime(110);
  table.pin(...key(5), 0, ip('10.244.1.2'), 8080); // evicts client 2, the least recent
  t.not(table.find(...key(1)), NOT_FOUND);
  t.is(table.find(...key(2)), NOT_FOUND);
  t.not(table.find(...key(5)), NOT_FOUND);
  const way = table.find(...key(1));
  t.true(table.pinIsFresh(way, 1, 10));
  table.setTime(110.01);
  t.false(table.pinIsFresh(way, 1, 10));
  t.is(table.time, 110.01);
  table.clear();
  t.is(table.find(...key(1)), NOT_FOUND);
  t.throws(() => new AffinityTable(0), { instanceOf: RangeError });
});

/** The decisions of a table for flows to every service target from every source, as text. */
function decisions(table: ServiceTable, cluster: Cluster): string[] {
  const out: string[] = [];
  const d = new FlowDecision();
  for (const [dst, port, proto] of serviceTargets(cluster)) {
    for (const src of SOURCE_POOL) {
      for (const random of [0.1, 0.5, 0.9]) {
        table.classify(src, dst, proto, port, drawFromUnit(random), new AffinityTable(4), d);
        const name = d.servicePort >= 0 ? table.plan(d.servicePort).name : '-';
        out.push(`${formatIpv4(src)}>${formatIpv4(dst)}:${port}/${proto}@${random} ${d.verdict} ${name} ${formatIpv4(d.dnatAddress)}:${d.dnatPort} ${d.masquerade}`);
      }
    }
  }
  return out;
}

/** Services ("namespace/name") whose Service or Endpoints differ between two clusters. */
function changedServices(a: Cluster, b: Cluster): string[] {
  const describe = (c: Cluster) => {
    const out = new Map<string, string>();
    for (const s of c.services) out.set(`${s.namespace}/${s.name}`, JSON.stringify([s, c.endpoints.find((e) => e.name === s.name)]));
    return out;
  };
  const before = describe(a);
  const after = describe(b);
  return [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));
}

test('a partial update decides exactly as a full build of the new inputs', (t) => {
  fc.assert(
    fc.property(randomClusterArb, randomClusterArb, (a, b) => {
      const live = new LiveServiceTable(inputsFor(a, NODE, NODE_ADDRESS));
      const next: ServiceRuleInputs = inputsFor(b, NODE, NODE_ADDRESS);
      const before = live.table;
      const result = live.update(next, changedServices(a, b));
      if (result.kind !== 'partial') throw new Error(`fell back: ${result.reason}`);
      if (live.table === before) throw new Error('the table was not swapped');
      const full = compileServiceTable(next);
      t.deepEqual(decisions(live.table, b), decisions(full, b));
    }),
    { numRuns: 150 },
  );
});

test('a partial update copes with services removed from the middle and listed in another order', (t) => {
  fc.assert(
    fc.property(randomClusterArb, fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), fc.boolean(), (a, keep, reverse) => {
      const services = a.services.filter((_, i) => keep[i]);
      const b: Cluster = { ...a, services: reverse ? [...services].reverse() : services, endpoints: a.endpoints.filter((e) => services.some((s) => s.name === e.name)) };
      const live = new LiveServiceTable(inputsFor(a, NODE, NODE_ADDRESS));
      const next = inputsFor(b, NODE, NODE_ADDRESS);
      const result = live.update(next, changedServices(a, b));
      if (result.kind !== 'partial') throw new Error(`fell back: ${result.reason}`);
      if (result.reselected !== 0) throw new Error(`${result.reselected} services chosen again, though none changed`);
      t.deepEqual(decisions(live.table, b), decisions(compileServiceTable(next), b));
    }),
    { numRuns: 100 },
  );
});

test('an update chooses endpoints again only for the services named changed', (t) => {
  const c = goldenCluster();
  const live = new LiveServiceTable(inputsFor(c));
  t.is(live.table.reselected, 5, 'a full build chooses for every proxied service');
  const endpoints = c.endpoints.map((e) => (e.name === 'shop' ? { ...e, subsets: [] } : e));
  const result = live.update(inputsFor({ ...c, endpoints }), ['default/shop']);
  t.deepEqual(result, { kind: 'partial', reselected: 1 });
  const d = new FlowDecision();
  t.is(live.table.classify(ip('10.244.1.3'), ip('10.96.0.30'), 6, 8080, 0, null, d), FlowVerdict.Reject);
  t.is(live.table.classify(ip('10.244.1.3'), ip('10.96.0.20'), 6, 80, 0, null, d), FlowVerdict.Dnat, 'web kept its endpoints');
  t.is(live.table.plan(d.servicePort).name, 'default/web:http');
  t.deepEqual(live.table.plans().map((p) => p.name), ['default/web:http', 'default/shop', 'default/edge:https', 'default/dns:dns', 'default/idle']);
});

test('colliding claims keep the first-claim order in a partial update; failures fall back to a full rebuild', (t) => {
  const c = goldenCluster();
  const live = new LiveServiceTable(inputsFor(c));
  const edge = c.services.find((s) => s.name === 'edge')!;
  const clash = { ...c, services: [...c.services, { ...edge, name: 'clash', clusterIP: ip('10.96.0.42'), ports: [{ ...edge.ports[0], nodePort: 30445 }] }] };
  const collided = live.update(inputsFor(clash), ['default/clash']);
  t.is(collided.kind, 'partial');
  t.true(live.table.hasConflicts);
  const d = new FlowDecision();
  live.table.classify(ip('192.0.2.7'), ip('192.0.2.100'), 6, 443, 0, null, d);
  t.is(live.table.plan(d.servicePort).name, 'default/edge:https', 'edge was declared first');

  // A source that fails once: the partial update trips on it, the full rebuild reads it.
  const list = [...inputsFor(c).endpoints];
  let failures = 1;
  const flaky = Object.assign(list, {
    [Symbol.iterator]() {
      if (failures-- > 0) throw new Error('flaky source');
      return Array.prototype.values.call(list);
    },
  });
  const failed = live.update({ ...inputsFor(c), endpoints: flaky }, ['default/web']);
  t.is(failed.kind, 'full');
  t.is(failed.reason, 'flaky source');
  t.is(live.table.servicePortCount, 5);
  t.false(live.table.hasConflicts);

  // Inputs nothing can build from: the update throws and the table in place stays.
  const before = live.table;
  t.throws(() => live.update({ ...inputsFor(c), endpoints: [null as never] }, ['default/web']), { instanceOf: TypeError });
  t.is(live.table, before);
});

test('services removed by an update leave nothing behind', (t) => {
  const live = new LiveServiceTable(goldenInputs());
  const empty = modelCluster([], []);
  t.is(live.update(inputsFor(empty), ['default/web', 'default/shop', 'default/edge', 'default/dns', 'default/idle']).kind, 'partial');
  t.is(live.table.servicePortCount, 0);
  t.is(live.table.lookup(ip('10.96.0.20'), 6, 80), NOT_FOUND);
});

test('lookup: an external IP names its service port as external traffic, as a load-balancer IP does', (t) => {
  const cluster = loadYaml(`
apiVersion: v1
kind: Service
metadata: {name: shop}
spec: {clusterIP: 10.96.0.30, externalIPs: [192.0.2.150, 192.0.2.151], ports: [{port: 8080}]}
`);
  const table = compileServiceTable(inputsFor(cluster));
  for (const address of ['192.0.2.150', '192.0.2.151']) {
    const value = table.lookup(ip(address), 6, 8080);
    t.is(value & 3, DEST_EXTERNAL, address);
    t.is(table.plan(value >> 2).name, 'default/shop');
  }
  t.is(table.lookup(ip('10.96.0.30'), 6, 8080) & 3, DEST_CLUSTER_IP);
  t.is(table.lookup(ip('192.0.2.150'), 6, 80), NOT_FOUND);
});

const FIREWALLED = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.50
  loadBalancerIP: 192.0.2.100
  loadBalancerSourceRanges: [192.0.2.0/30, 192.0.2.8/30, 203.0.113.7/32, 10.244.1.0/24]
  ports: [{port: 80, nodePort: 30080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: lb}
subsets: [{addresses: [{ip: 10.244.2.2, nodeName: node-2}], ports: [{port: 80}]}]
`;

test('loadBalancerSourceRanges: sources in a range reach the load-balancer IP, the rest are dropped, NodePorts are not filtered; as the rules say', (t) => {
  const inputs = inputsFor(loadYaml(FIREWALLED));
  const table = compileServiceTable(inputs);
  const rules = kubeProxyRules(inputs);
  const locals = nodeLocalAddresses(inputs);
  const d = new FlowDecision();
  const cases: [string, string, number, FlowVerdict][] = [
    ['192.0.2.2', '192.0.2.100', 80, FlowVerdict.Dnat],
    ['192.0.2.4', '192.0.2.100', 80, FlowVerdict.Firewall],
    ['192.0.2.9', '192.0.2.100', 80, FlowVerdict.Dnat],
    ['203.0.113.7', '192.0.2.100', 80, FlowVerdict.Dnat],
    ['203.0.113.6', '192.0.2.100', 80, FlowVerdict.Firewall],
    ['10.244.1.5', '192.0.2.100', 80, FlowVerdict.Dnat],
    ['10.244.2.5', '192.0.2.100', 80, FlowVerdict.Firewall],
    // The node's address (192.0.2.11) is in 192.0.2.8/30, so kube-proxy lets the LB address itself through.
    ['192.0.2.100', '192.0.2.100', 80, FlowVerdict.Dnat],
    ['192.0.2.4', NODE_ADDRESS_TEXT, 30080, FlowVerdict.Dnat],
    ['192.0.2.4', '10.96.0.50', 80, FlowVerdict.Dnat],
  ];
  for (const [src, dst, port, verdict] of cases) {
    t.is(table.classify(ip(src), ip(dst), 6, port, 0, null, d), verdict, `${src} -> ${dst}:${port}`);
    const walked = traverse(rules, { src: ip(src), dst: ip(dst), proto: 6, sport: 40000, dport: port, mark: 0, ctstate: 'NEW', inRole: 'uplink' }, { random: () => 0, now: 0, recent: new RecentLists() }, { origin: 'arriving', isLocalAddress: (a) => locals.includes(a >>> 0) });
    t.is(walked.verdict, verdict === FlowVerdict.Firewall ? 'DROP' : 'ACCEPT', `rules for ${src} -> ${dst}:${port}`);
    if (verdict === FlowVerdict.Dnat) t.is(walked.dnat?.address, d.dnatAddress);
  }
});

test('loadBalancerSourceRanges without the node in any range: the LB address itself is refused too; 0.0.0.0/0 lets everyone in', (t) => {
  const narrow = compileServiceTable(inputsFor(loadYaml(FIREWALLED.replace('192.0.2.8/30, ', ''))));
  const open = compileServiceTable(inputsFor(loadYaml(FIREWALLED.replace('192.0.2.8/30', '0.0.0.0/0'))));
  const d = new FlowDecision();
  t.is(narrow.classify(ip('192.0.2.100'), ip('192.0.2.100'), 6, 80, 0, null, d), FlowVerdict.Firewall);
  for (const src of ['192.0.2.100', '198.51.100.1', '10.244.2.5']) t.is(open.classify(ip(src), ip('192.0.2.100'), 6, 80, 0, null, d), FlowVerdict.Dnat, src);
});
