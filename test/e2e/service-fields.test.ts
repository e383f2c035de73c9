/**
 * The Service fields kube-proxy honours beyond the basics, end to end from the outside
 * network and from a pod: loadBalancerSourceRanges (an allowed and a refused source, pods
 * included, the NodePort left open as kube-proxy leaves it) and externalIPs (served at an
 * address only the service holds, which its node answers ARP for, and at a node's own
 * address), and healthCheckNodePort (every node answers, 200 where the service has
 * endpoints and 503 where it has none).
 */
import anyTest, { type TestFn } from 'ava';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-2, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: ranged}
spec:
  type: LoadBalancer
  loadBalancerIP: 192.0.2.201
  loadBalancerSourceRanges: [192.0.2.0/30]
  selector: {app: web}
  ports: [{port: 80, nodePort: 30090}]
---
apiVersion: v1
kind: Service
metadata: {name: elsewhere}
spec:
  type: LoadBalancer
  loadBalancerIP: 192.0.2.202
  loadBalancerSourceRanges: [203.0.113.0/24]
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec: {nodeName: node-1, containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: solo-lb}
spec:
  type: LoadBalancer
  loadBalancerIP: 192.0.2.203
  externalTrafficPolicy: Local
  healthCheckNodePort: 30100
  selector: {app: solo}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: outside-ip}
spec:
  externalIPs: [192.0.2.210, 192.0.2.12]
  selector: {app: web}
  ports: [{port: 8081, targetPort: 80}]
`;

const cluster = new TestCluster(`sf${process.pid % 10000}`);

test.before(async () => {
  if (skip === undefined) await cluster.up(YAML, ['--seed', '3']);
});

test.after.always(async (t) => {
  if (skip === undefined) {
    await cluster.teardown();
    t.deepEqual(cluster.leftovers(), []);
  }
});

if (skip !== undefined) test(`service fields end-to-end skipped: ${skip}`, (t) => t.pass());

function fromOutside(url: string, seconds = 3) {
  return cluster.podwire(['outside', '--', 'curl', '-s', '-m', String(seconds), url]);
}

async function deniedCount(): Promise<number> {
  const status = await cluster.status();
  return status.nodes.reduce((sum, n) => sum + (n.detail?.drops['source-range-denied'] ?? 0), 0);
}

serial('loadBalancerSourceRanges: a source inside a range is served, one outside is dropped and counted', async (t) => {
  const allowed = await fromOutside('http://192.0.2.201/');
  t.is(allowed.code, 0, `192.0.2.1 is in 192.0.2.0/30: ${allowed.stderr}`);
  t.regex(allowed.stdout, /pod name:\tweb-/);

  const before = await deniedCount();
  const refused = await fromOutside('http://192.0.2.202/', 2);
  t.is(refused.code, 28, 'curl times out: the SYN is dropped, not rejected');
  t.true((await deniedCount()) > before, 'counted as source-range-denied');
});

serial('loadBalancerSourceRanges hold for pods too, and leave the NodePort open as kube-proxy does', async (t) => {
  const fromPod = await cluster.exec('client', ['curl', '-s', '-m', '2', 'http://192.0.2.201/']);
  t.is(fromPod.code, 28, "a pod's address is outside 192.0.2.0/30");
  const viaClusterIP = await cluster.exec('client', ['curl', '-s', '-m', '3', 'http://ranged/']);
  t.is(viaClusterIP.code, 0, viaClusterIP.stderr);
  const nodePort = await fromOutside('http://192.0.2.12:30090/');
  t.is(nodePort.code, 0, nodePort.stderr);
  t.regex(nodePort.stdout, /pod name:\tweb-/);
});

serial('externalIPs: served at an address only the service holds (its node answers ARP) and at a node address', async (t) => {
  for (const address of ['192.0.2.210', '192.0.2.12']) {
    const r = await fromOutside(`http://${address}:8081/`);
    t.is(r.code, 0, `${address}: ${r.stderr}`);
    t.regex(r.stdout, /pod name:\tweb-/);
  }
  const neighbours = await cluster.podwire(['outside', '--', 'ip', 'neigh', 'show', '192.0.2.210']);
  t.regex(neighbours.stdout, /lladdr/, 'the outside network resolved the external IP to a node');
  const fromPod = await cluster.exec('client', ['curl', '-s', '-m', '3', 'http://192.0.2.210:8081/']);
  t.is(fromPod.code, 0, 'pods reach an external IP too, caught before it leaves the node');
  const wrongPort = await fromOutside('http://192.0.2.210:80/', 2);
  t.not(wrongPort.code, 0, 'only the service port is served at the external IP');
});

serial('healthCheckNodePort: every node answers on its own address, 200 with the local endpoint count where the pods are, 503 elsewhere', async (t) => {
  const withPod = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '3', '-i', 'http://192.0.2.11:30100/healthz']);
  t.is(withPod.code, 0, withPod.stderr);
  t.regex(withPod.stdout, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(withPod.stdout, /X-Load-Balancing-Endpoint-Weight: 1\r\n/i);
  t.true(withPod.stdout.endsWith('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "solo-lb"\n\t},\n\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}'), withPod.stdout);
  const without = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', 'http://192.0.2.12:30100/']);
  t.is(without.stdout, '503', without.stderr);
  const body = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '3', 'http://192.0.2.12:30100/']);
  t.regex(body.stdout, /"localEndpoints": 0,/);
  const rules = await cluster.podwire(['rules', 'node-2']);
  t.regex(rules.stdout, /-A KUBE-NODEPORTS -p tcp -m comment --comment "default\/solo-lb health check node port" -m tcp --dport 30100 -j ACCEPT/);
});
