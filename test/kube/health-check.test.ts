import test from 'ava';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { healthCheckResponse, healthChecks } from '../../src/kube/health-check.js';
import { kubeProxyRules } from '../../src/kube/kube-proxy.js';
import { renderKubeProxyRestore } from '../../src/kube/iptables-save.js';
import { cluster as loadYaml } from '../cluster/helpers.js';
import { inputsFor } from './service-fixtures.js';

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Service
metadata: {name: asked}
spec: {type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 31000, clusterIP: 10.96.0.50, ports: [{name: a, port: 80}, {name: b, port: 81}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: asked}
subsets: [{addresses: [{ip: 10.244.1.2, nodeName: node-1}, {ip: 10.244.1.3, nodeName: node-1}, {ip: 10.244.2.2, nodeName: node-2}], ports: [{name: a, port: 80}, {name: b, port: 81}]}]
---
apiVersion: v1
kind: Service
metadata: {name: given}
spec: {type: LoadBalancer, externalTrafficPolicy: Local, clusterIP: 10.96.0.51, ports: [{port: 80, nodePort: 30000}]}
---
apiVersion: v1
kind: Service
metadata: {name: cluster-policy}
spec: {type: LoadBalancer, clusterIP: 10.96.0.52, ports: [{port: 80}]}
`;

test('the API server allocates a health check node port to each LoadBalancer with Local policy, from the node port range, and to no other', (t) => {
  const c = loadYaml(YAML);
  const port = (name: string) => c.services.find((s) => s.name === name)!.healthCheckNodePort;
  t.is(port('asked'), 31000);
  t.is(port('given'), 30004, 'the lowest free port once every service port has its own (30000 to 30003)');
  t.is(port('cluster-policy'), undefined);
});

test("health checks count this node's ready endpoints, once per service", (t) => {
  const c = loadYaml(YAML);
  const endpoints = computeEndpoints(c, new Map());
  t.deepEqual(healthChecks(endpoints, 'node-1'), [
    { port: 31000, namespace: 'default', name: 'asked', localEndpoints: 2 },
    { port: 30004, namespace: 'default', name: 'given', localEndpoints: 0 },
  ]);
  t.is(healthChecks(endpoints, 'node-2')[0].localEndpoints, 1);
});

test("kube-proxy's answer: 200 with endpoints, 503 without, its JSON byte for byte", (t) => {
  const ok = healthCheckResponse({ namespace: 'ns2', name: 'svc2', localEndpoints: 2 });
  t.is(ok.status, 200);
  t.is(ok.body, '{\n\t"service": {\n\t\t"namespace": "ns2",\n\t\t"name": "svc2"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}');
  t.deepEqual(ok.headers, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'X-Load-Balancing-Endpoint-Weight': '2' });
  t.is(healthCheckResponse({ namespace: 'a', name: 'b', localEndpoints: 0 }).status, 503);
  t.is(healthCheckResponse({ namespace: 'a', name: 'b', localEndpoints: 3 }, false).status, 503, 'an unhealthy proxy fails every check');
});

test('the filter table accepts the health check node port, per service port, with or without endpoints', (t) => {
  const text = renderKubeProxyRestore(kubeProxyRules(inputsFor(loadYaml(YAML))));
  const lines = text.split('\n').filter((l) => l.includes('health check node port'));
  t.deepEqual(lines, [
    '-A KUBE-NODEPORTS -m comment --comment "default/asked:a health check node port" -m tcp -p tcp --dport 31000 -j ACCEPT',
    '-A KUBE-NODEPORTS -m comment --comment "default/asked:b health check node port" -m tcp -p tcp --dport 31000 -j ACCEPT',
    '-A KUBE-NODEPORTS -m comment --comment "default/given health check node port" -m tcp -p tcp --dport 30004 -j ACCEPT',
  ]);
});
