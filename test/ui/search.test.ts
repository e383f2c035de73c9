import test from 'ava';
import { podResolverConfig } from '../../src/cluster/resolv.js';
import { searchCandidates } from '../../src/ui/search.js';

const cluster = { dnsIP: 0x0a60000a, clusterDomain: 'cluster.local' };

test("a pod's resolver: fewer dots than ndots:5 go through the search list first, then the name itself", (t) => {
  const config = podResolverConfig({ namespace: 'web', dnsPolicy: 'ClusterFirst' }, cluster);
  t.deepEqual(searchCandidates('clusterip-service', config), ['clusterip-service.web.svc.cluster.local', 'clusterip-service.svc.cluster.local', 'clusterip-service.cluster.local', 'clusterip-service']);
  t.deepEqual(searchCandidates('kube-dns.kube-system', config).slice(0, 1), ['kube-dns.kube-system.web.svc.cluster.local']);
});

test('a name with ndots dots is tried as it is first; a name ending in a dot is only itself', (t) => {
  const config = podResolverConfig({ namespace: 'default', dnsPolicy: 'ClusterFirst', dnsConfig: { nameservers: [], searches: [], options: [{ name: 'ndots', value: '2' }] } }, cluster);
  t.deepEqual(searchCandidates('a.b.c', config), ['a.b.c', 'a.b.c.default.svc.cluster.local', 'a.b.c.svc.cluster.local', 'a.b.c.cluster.local']);
  t.deepEqual(searchCandidates('web.default.svc.cluster.local.', config), ['web.default.svc.cluster.local']);
});

test('without an ndots option the default is 1, and dnsConfig searches follow the cluster ones', (t) => {
  const config = podResolverConfig({ namespace: 'default', dnsPolicy: 'None', dnsConfig: { nameservers: ['1.1.1.1'], searches: ['corp.example'], options: [] } }, cluster);
  t.deepEqual(searchCandidates('intranet', config), ['intranet.corp.example', 'intranet']);
  t.deepEqual(searchCandidates('intranet.corp', config), ['intranet.corp', 'intranet.corp.corp.example']);
});
