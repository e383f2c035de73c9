/**
 * Services end to end, kube-proxy's job: ClusterIP load balancing with kube-proxy's
 * distribution, ClientIP affinity, scaling with established flows kept, NodePort on every
 * node, LoadBalancer, externalTrafficPolicy Local, hairpin, a service without endpoints
 * rejecting, and a full connection table refusing new flows while old ones carry on.
 */
import anyTest, { type TestFn } from 'ava';
import { kernelSkipReason, TestCluster, type StatusJson } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2, conntrackMax: 48}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec: {nodeName: node-1, containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-2, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec: {selector: {app: web}, sessionAffinity: ClientIP, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, nodePort: 30080}]}
---
apiVersion: v1
kind: Service
metadata: {name: solo-local}
spec: {type: NodePort, externalTrafficPolicy: Local, selector: {app: solo}, ports: [{port: 80, nodePort: 30081}]}
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec: {selector: {app: solo}, ports: [{port: 8080, targetPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec: {type: LoadBalancer, loadBalancerIP: 192.0.2.200, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec: {selector: {app: nobody}, ports: [{port: 80}]}
`;

const cluster = new TestCluster(`svc${process.pid % 10000}`);

test.before(async () => {
  if (skip === undefined) await cluster.up(YAML, ['--seed', '5']);
});

test.after.always(async (t) => {
  if (skip === undefined) {
    await cluster.teardown();
    t.deepEqual(cluster.leftovers(), []);
  }
});

if (skip !== undefined) test(`services end-to-end skipped: ${skip}`, (t) => t.pass());

/** Which pod answered each of `n` requests, from one shell loop inside the client pod. */
async function backends(url: string, n: number): Promise<string[]> {
  const r = await cluster.exec('client', ['sh', '-c', `for i in $(seq ${n}); do curl -s -m 3 ${url} | grep 'pod name:' || echo FAILED; done`], 120_000);
  return r.stdout.trim().split('\n').map((l) => l.replace(/.*pod name:\s*/, '').trim());
}

async function waitFor(what: string, ok: (s: StatusJson) => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (ok(await cluster.status())) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const replicas = (s: StatusJson) => s.pods.filter((p) => p.name.startsWith('web-'));

serial('100 requests to a ClusterIP reach all 3 backends, uniformly (chi-square, p > 0.001)', async (t) => {
  const answers = await backends('http://web.default.svc.cluster.local/', 100);
  t.false(answers.includes('FAILED'));
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
  t.is(counts.size, 3, JSON.stringify([...counts]));
  // Two degrees of freedom: the statistic stays under 13.816 with probability 0.999.
  const chi = [...counts.values()].reduce((sum, o) => sum + (o - 100 / 3) ** 2 / (100 / 3), 0);
  t.true(chi < 13.816, `chi-square ${chi.toFixed(2)} for ${JSON.stringify([...counts.values()])}`);
});

serial('sessionAffinity ClientIP pins one backend', async (t) => {
  const answers = await backends('http://sticky/', 15);
  t.is(new Set(answers).size, 1, answers.join(','));
});

serial('an established connection keeps its backend while scaling changes the set', async (t) => {
  // One keep-alive connection: a request, the deployment scaled to 5, another request.
  const script = `
import http.client, subprocess, sys, time
c = http.client.HTTPConnection('web', 80, timeout=5)
def ask():
    c.request('GET', '/'); body = c.getresponse().read().decode()
    return [l.split(':',1)[1].strip() for l in body.splitlines() if 'pod name' in l][0]
first = ask()
sys.stdout.write(first + '\\n'); sys.stdout.flush()
sys.stdin.readline()
print(ask())
`;
  const { spawn } = await import('node:child_process');
  const { CLI } = await import('../helpers/cluster.js');
  const child = spawn(process.execPath, [CLI, 'exec', '--name', cluster.name, '--state-dir', cluster.stateRoot, 'client', '--', 'python3', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 50));
  const scaled = await cluster.podwire(['scale', 'deployment/web', '--replicas', '5']);
  t.is(scaled.code, 0, scaled.stderr);
  await waitFor('5 ready replicas', (s) => replicas(s).length === 5 && replicas(s).every((p) => p.ready));
  child.stdin.write('\n');
  await new Promise((r) => child.on('exit', r));
  const [first, second] = out.trim().split('\n');
  t.is(second, first, 'the same backend on the same connection');
  const spread = new Set(await backends('http://web/', 60));
  t.is(spread.size, 5, 'new connections reach the new set of 5');
  await cluster.podwire(['scale', 'deployment/web', '--replicas', '2']);
  await waitFor('2 replicas', (s) => replicas(s).length === 2);
  const after = new Set(await backends('http://web/', 20));
  t.is(after.size, 2, [...after].join(','));
  t.false(after.has('FAILED'));
});

serial('NodePort answers on every node, including a node without local endpoints; LoadBalancer too', async (t) => {
  const status = await cluster.status();
  const byNode = new Map(status.nodes.map((n) => [n.name, replicas(status).filter((p) => p.node === n.name).length]));
  t.true([...byNode.values()].some((n) => n > 0));
  for (const addr of ['192.0.2.11', '192.0.2.12', '192.0.2.200']) {
    const port = addr === '192.0.2.200' ? 80 : 30080;
    const r = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '3', `http://${addr}:${port}/`]);
    t.is(r.code, 0, `${addr}:${port} ${r.stderr}`);
    t.regex(r.stdout, /pod name:\tweb-/);
  }
});

serial('externalTrafficPolicy Local keeps the client address; a node without endpoints drops', async (t) => {
  const local = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '3', 'http://192.0.2.11:30081/']);
  t.is(local.code, 0, local.stderr);
  t.regex(local.stdout, /client_address=192\.0\.2\.1\n/, 'the outside client, not a node address');
  const remote = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '2', 'http://192.0.2.12:30081/']);
  t.not(remote.code, 0);
  const node2 = (await cluster.status()).nodes[1];
  t.true((node2.detail?.drops['no-local-endpoints'] ?? 0) > 0);
});

serial('hairpin: a pod reaches itself through its own service', async (t) => {
  // Not `solo` alone: the pod's /etc/hosts names the pod itself so (as the kubelet writes it),
  // which would bypass the Service as it does in a real cluster.
  const r = await cluster.exec('solo', ['curl', '-s', '-m', '3', 'http://solo.default:8080/']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /pod name:\tsolo/);
  t.regex(r.stdout, /client_address=10\.244\.1\.1\n/, 'masqueraded to the bridge address, so the reply comes back');
});

serial('a service without endpoints rejects (connection refused)', async (t) => {
  const r = await cluster.exec('client', ['curl', '-s', '-m', '3', 'http://empty/']);
  t.is(r.code, 7, 'curl: failed to connect (refused by ICMP port unreachable)');
});

serial('a full connection table refuses new flows, counts them, and established ones keep working', async (t) => {
  // Hold 60 connections open from the client; the table holds 48 (with room for nothing else).
  const script = `
import socket, sys, time
held = []
for i in range(60):
    try:
        s = socket.create_connection(('solo', 8080), timeout=1); held.append(s)
    except OSError:
        pass
print(len(held)); sys.stdout.flush()
first = held[0]
first.sendall(b'GET / HTTP/1.1\\r\\nHost: solo\\r\\n\\r\\n')
print('ok' if b'pod name' in first.recv(4096) else 'broken')
`;
  const r = await cluster.exec('client', ['python3', '-c', script], 120_000);
  const [held, first] = r.stdout.trim().split('\n');
  t.true(Number(held) < 60, `only ${held} of 60 connected`);
  t.is(first, 'ok', 'an established connection still works');
  const node2 = (await cluster.status()).nodes[1];
  t.true((node2.detail?.drops['conntrack-full'] ?? 0) > 0, JSON.stringify(node2.detail?.drops));
  t.is(node2.state, 'up', 'no crash');
});
