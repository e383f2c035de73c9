import test from 'ava';
import { formatIpv4 } from '../../src/packet/addr.js';
import { addressId, buildClusterMap } from '../../src/ui/map.js';
import { allReady, demoCluster } from './fixtures.js';

test('the demo map: two nodes holding their pods with bridge and VTEP, the Service with its three endpoints, one overlay link', (t) => {
  const cluster = demoCluster();
  const map = buildClusterMap('pwuitest', cluster, allReady(cluster));
  t.deepEqual(
    map.nodes.map((n) => [n.id, n.podCIDR, n.bridge.address, n.vtep.address, n.externalIP, n.machine, n.up, n.ready]),
    cluster.nodes.map((n) => [`node:${n.name}`, `10.244.${n.index}.0/24`, `10.244.${n.index}.1/24`, `${formatIpv4(n.underlay)}:4789`, formatIpv4(n.externalIP), 'this machine', true, true]),
  );
  t.deepEqual(map.nodes.map((n) => n.pods.length).reduce((a, b) => a + b), 4);
  t.deepEqual(map.nodes.flatMap((n) => n.pods.map((p) => p.id)).sort(), cluster.pods.map((p) => `pod:default/${p.name}`).sort());
  const [svc, dns] = map.services;
  t.is(map.services.length, 2);
  t.like(dns, { id: 'svc:kube-system/kube-dns', clusterIP: '10.96.0.10', builtin: true });
  t.deepEqual(dns.ports.map((p) => [p.name, p.protocol, p.port, p.endpoints.length]), [
    ['dns', 'UDP', 53, 0],
    ['dns-tcp', 'TCP', 53, 0],
  ]);
  t.like(svc, { id: 'svc:default/clusterip-service', type: 'ClusterIP', clusterIP: '10.100.100.100', headless: false });
  t.is(svc.ports[0].port, 80);
  const backends = cluster.pods.filter((p) => p.labels.app === 'webui');
  t.deepEqual(
    svc.ports[0].endpoints.map((e) => [e.pod, e.ip, e.port, e.ready]).sort(),
    backends.map((p) => [`pod:default/${p.name}`, formatIpv4(p.ip), 80, true]).sort(),
  );
  t.deepEqual(map.links, [{ from: 'node:node-1', to: 'node:node-2' }]);
  t.deepEqual(map.outside, { cidr: '192.0.2.0/24', loadBalancerCIDR: '192.0.2.192/26' });
  t.deepEqual(map.dns, { ip: '10.96.0.10', domain: 'cluster.local' });
});

test('a pod the nodes do not report ready is drawn NotReady and its endpoint not ready; a node that does not answer is down', (t) => {
  const cluster = demoCluster();
  const backend = cluster.pods.find((p) => p.labels.app === 'webui')!;
  const status = allReady(cluster, [backend.name]);
  const map = buildClusterMap('pwuitest', cluster, { ...status, nodes: [{ name: 'node-1', state: 'down', ready: false }, status.nodes[1]] });
  const pod = map.nodes.flatMap((n) => n.pods).find((p) => p.name === backend.name)!;
  t.false(pod.ready);
  t.false(map.services[0].ports[0].endpoints.find((e) => e.pod === `pod:default/${backend.name}`)!.ready);
  t.like(map.nodes[0], { up: false, ready: false });
  t.like(map.nodes[1], { up: true, ready: true });
});

test('a machine named by the status is shown; a pod absent from the status is not ready', (t) => {
  const cluster = demoCluster();
  const map = buildClusterMap('pwuitest', cluster, { nodes: [{ name: 'node-1', state: 'up', ready: true, machine: '10.99.0.1' }], pods: [] });
  t.is(map.nodes[0].machine, '10.99.0.1');
  t.true(map.nodes.flatMap((n) => n.pods).every((p) => !p.ready));
});

test('addresses name the map box that holds them', (t) => {
  const cluster = demoCluster();
  const client = cluster.pods.find((p) => p.name === 'client')!;
  t.is(addressId(cluster, client.ip), 'pod:default/client');
  t.is(addressId(cluster, cluster.services[0].clusterIP!), 'svc:default/clusterip-service');
  t.is(addressId(cluster, cluster.nodes[1].externalIP), 'node:node-2');
  t.is(addressId(cluster, cluster.nodes[0].gateway), 'node:node-1');
  t.is(addressId(cluster, 0xc0000264), 'ip:192.0.2.100');
});

test('a kube-dns the YAML declares is drawn as declared, not twice', (t) => {
  const cluster = demoCluster();
  const declared = { ...cluster.services[0], namespace: 'kube-system', name: 'kube-dns', clusterIP: cluster.settings.dnsIP };
  const map = buildClusterMap('pwuitest', { ...cluster, services: [...cluster.services, declared] }, allReady(cluster));
  const dns = map.services.filter((s) => s.id === 'svc:kube-system/kube-dns');
  t.is(dns.length, 1);
  t.is(dns[0].builtin, undefined);
});
