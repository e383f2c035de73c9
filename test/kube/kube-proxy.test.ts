import test from 'ava';
import fc from 'fast-check';
import { formatIpv4 } from '../../src/packet/addr.js';
import {
  LARGE_CLUSTER_ENDPOINTS,
  compareEndpoints,
  endpointText,
  PODWIRE_POSTRTG,
  kubeProxyRules,
  nodeLocalAddresses,
  planServicePorts,
  portProtoHash,
  serviceExternalChain,
  serviceFirewallChain,
  servicePortEndpointChain,
  servicePortName,
  servicePortPolicyClusterChain,
  servicePortPolicyLocalChain,
} from '../../src/kube/kube-proxy.js';
import { renderKubeProxyRestore } from '../../src/kube/iptables-save.js';
import type { Service } from '../../src/cluster/model.js';
import { GATEWAY, NODE_ADDRESS, goldenCluster, goldenInputs, inputsFor, ip, modelCluster } from './service-fixtures.js';

test('chain names are kube-proxy\'s, as its own tests expect them', (t) => {
  // pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRules.
  t.is(servicePortPolicyClusterChain('ns1/svc1:p80', 'tcp'), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  t.is(servicePortPolicyClusterChain('ns2/svc2:p80', 'tcp'), 'KUBE-SVC-GNZBNJ2PO5MGZ6GT');
  t.is(serviceExternalChain('ns2/svc2:p80', 'tcp'), 'KUBE-EXT-GNZBNJ2PO5MGZ6GT');
  t.is(servicePortPolicyClusterChain('ns3/svc3:p80', 'tcp'), 'KUBE-SVC-X27LE4BHSL4DOUIK');
  t.is(servicePortPolicyClusterChain('ns4/svc4:p80', 'tcp'), 'KUBE-SVC-4SW47YFZTEDKD3PK');
  t.is(serviceFirewallChain('ns5/svc5:p80', 'tcp'), 'KUBE-FW-NUKIZ6OKUXPJNT4C');
  t.is(servicePortPolicyLocalChain('ns5/svc5:p80', 'tcp'), 'KUBE-SVL-NUKIZ6OKUXPJNT4C');
  t.is(servicePortEndpointChain('ns1/svc1:p80', 'tcp', '10.180.0.1:80'), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
  t.is(servicePortEndpointChain('ns4/svc4:p80', 'tcp', '10.180.0.5:80'), 'KUBE-SEP-C6EBXVWJJZMIWKLZ');
  t.is(servicePortEndpointChain('ns4/svc4:p80', 'tcp', '10.180.0.4:80'), 'KUBE-SEP-UKSFD7AGPMPPLUHC');
  t.is(servicePortEndpointChain('ns5/svc5:p80', 'tcp', '10.180.0.3:80'), 'KUBE-SEP-I77PXRDZVX7PMWMN');
  t.is(servicePortEndpointChain('ns2/svc2:p80', 'tcp', '10.180.0.2:80'), 'KUBE-SEP-RS4RBKLTHTF2IUXJ');
  // The well-known ones on every kubeadm cluster.
  t.is(servicePortPolicyClusterChain('default/kubernetes:https', 'tcp'), 'KUBE-SVC-NPX46M4PTMTKRN6Y');
  t.is(servicePortPolicyClusterChain('kube-system/kube-dns:dns', 'udp'), 'KUBE-SVC-TCOU7JCQXEZGVUNU');
  t.is(servicePortPolicyClusterChain('kube-system/kube-dns:dns-tcp', 'tcp'), 'KUBE-SVC-ERIFXISQEP7F7OF4');
  t.is(portProtoHash('kube-system/kube-dns:metrics', 'tcp'), 'JD5MR3NA4I4DYORP');
});

test('a service port is named "ns/name", with ":port" only when the port has a name', (t) => {
  t.is(servicePortName('default', 'web', 'http'), 'default/web:http');
  t.is(servicePortName('default', 'web', undefined), 'default/web');
  t.is(servicePortName('default', 'web', ''), 'default/web');
});

test('the plan: ready endpoints, deduplicated, sorted as strings, local ones marked', (t) => {
  const plans = planServicePorts(goldenInputs());
  t.deepEqual(plans.map((p) => p.name), ['default/web:http', 'default/shop', 'default/edge:https', 'default/dns:dns', 'default/idle']);
  const web = plans[0];
  t.deepEqual(web.endpoints.map((e) => `${endpointText(e.ip, e.port)}${e.local ? ' local' : ''}`), ['10.244.1.10:8080 local', '10.244.1.2:8080 local', '10.244.2.2:8080']);
  const edge = plans[2];
  t.is(edge.externalPolicyLocal, true);
  t.is(edge.affinitySeconds, 600);
  t.deepEqual(edge.loadBalancerIPs.map(formatIpv4), ['192.0.2.100']);
  t.is(edge.nodePort, 30443);
  t.deepEqual(edge.localEndpoints.map((e) => endpointText(e.ip, e.port)), ['10.244.1.4:8443']);
  t.is(edge.endpointCount, 3, 'the not-ready endpoint counts toward large-cluster mode');
  t.deepEqual(nodeLocalAddresses(goldenInputs()), [NODE_ADDRESS, GATEWAY]);
});

test('endpoints are ordered as kube-proxy orders their "ip:port" strings, without building them', (t) => {
  const endpointArb = fc.record({
    ip: fc.oneof(fc.nat({ max: 0xffffffff }), fc.constantFrom(0x0af40102, 0x0af4010a, 0x0af40164, 0x0af401ff, 0x01020304, 0x0a000001)),
    port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(1, 8, 80, 800, 8080, 9, 90, 65535, 10000)),
  });
  fc.assert(
    fc.property(endpointArb, endpointArb, (a, b) => {
      const ta = endpointText(a.ip, a.port);
      const tb = endpointText(b.ip, b.port);
      return Math.sign(compareEndpoints(a, b)) === (ta < tb ? -1 : ta > tb ? 1 : 0);
    }),
    { numRuns: 20000 },
  );
  t.pass();
});

test('duplicate addresses collapse to one endpoint, a local copy winning', (t) => {
  const c = goldenCluster();
  const service = c.services.find((s) => s.name === 'shop')!;
  const inputs = {
    ...inputsFor(c),
    endpoints: [{ service, servicePort: service.ports[0], protocol: 'TCP' as const, endpoints: [
      { ip: ip('10.244.1.7'), port: 8080, ready: true, node: 'node-2' },
      { ip: ip('10.244.1.7'), port: 8080, ready: true, node: 'node-1' },
      { ip: ip('10.244.1.7'), port: 9090, ready: true },
      { ip: ip('10.244.1.8'), port: 0, ready: true },
    ] }],
  };
  const [plan] = planServicePorts(inputs);
  t.deepEqual(plan.endpoints.map((e) => `${endpointText(e.ip, e.port)}${e.local ? ' local' : ''}`), ['10.244.1.7:8080 local', '10.244.1.7:9090']);
});

test('headless and ExternalName services get no rules at all', (t) => {
  const text = renderKubeProxyRestore(kubeProxyRules(goldenInputs()), { includeBuiltinChains: true });
  t.false(text.includes('default/db'));
  t.false(text.includes('default/upstream'));
});

test('a Local service with no endpoint on this node drops external traffic in the filter table', (t) => {
  const text = renderKubeProxyRestore(kubeProxyRules(inputsFor(goldenCluster(), 'node-3', ip('192.0.2.13'))));
  t.true(text.includes('-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/edge:https has no local endpoints" -m tcp -p tcp -d 192.0.2.100 --dport 443 -j DROP\n'));
  t.true(text.includes('-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/edge:https has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30443 -j DROP\n'));
  t.false(text.includes('KUBE-SVL-'), 'no KUBE-SVL chain without local endpoints');
  t.false(/-A KUBE-EXT-QCFLP2V2YBSUHVTW -j /.test(text), 'the EXT chain ends without jumping to a policy chain');
});

test('the egress masquerade can be left out', (t) => {
  const without = kubeProxyRules(goldenInputs(), { egressMasquerade: false });
  t.false(without.nat.chains.includes(PODWIRE_POSTRTG));
  t.false(without.nat.rules.some((r) => r.target.kind === 'jump' && r.target.chain === PODWIRE_POSTRTG));
});

function bigService(i: number, endpoints: number): { service: Service; addresses: number[] } {
  return {
    service: {
      namespace: 'default', name: `s${i}`, labels: {}, type: 'ClusterIP', clusterIP: ip('10.96.0.0') + 100 + i, headless: false,
      ports: [{ protocol: 'TCP', port: 80, targetPort: 8080 }], sessionAffinity: 'None', origin: { file: 'x', document: 1, line: 1 },
    },
    addresses: Array.from({ length: endpoints }, (_, j) => ip('10.244.2.0') + 2 + ((i * endpoints + j) % 250)),
  };
}

test('above 1000 endpoints kube-proxy drops the per-endpoint comments, as a node would show', (t) => {
  const build = (count: number) => {
    const made = Array.from({ length: count }, (_, i) => bigService(i, 3));
    const cluster = modelCluster(made.map((m) => m.service), made.map((m) => ({
      namespace: 'default', name: m.service.name, labels: {}, origin: m.service.origin,
      subsets: [{ addresses: m.addresses.map((a) => ({ ip: a })), notReadyAddresses: [], ports: [{ port: 8080, protocol: 'TCP' as const }] }],
    })));
    return renderKubeProxyRestore(kubeProxyRules(inputsFor(cluster)));
  };
  const small = build(Math.floor(LARGE_CLUSTER_ENDPOINTS / 3));
  const large = build(Math.floor(LARGE_CLUSTER_ENDPOINTS / 3) + 1);
  t.regex(small, /-A KUBE-SVC-\w+ -m comment --comment "default\/s0 -> [\d.:]+" -m statistic/);
  t.regex(small, /-A KUBE-SEP-\w+ -m comment --comment default\/s0 -s /);
  t.regex(large, /-A KUBE-SVC-\w+ -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-/);
  t.regex(large, /-A KUBE-SEP-\w+ -s [\d.]+ -j KUBE-MARK-MASQ/);
  t.regex(large, /-A KUBE-SERVICES -m comment --comment "default\/s0 cluster IP"/, 'service-level comments stay');
});
