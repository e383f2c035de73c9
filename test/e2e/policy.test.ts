/**
 * NetworkPolicy and egress end to end, with the kernel's own TCP in every pod: default
 * deny blocks, allow rules admit, replies of allowed connections pass, a namespaceSelector
 * admits only the right namespace, the same on one node and across nodes; pods reaching
 * the outside world are masqueraded to their node's address.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const pod = (ns: string, name: string, node: number, labels: string, image = 'nginx') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {${labels}}}
spec: {nodeName: node-${node}, containers: [{name: c, image: ${image}}]}
---`;

const YAML = `
apiVersion: v1
kind: Namespace
metadata: {name: locked}
---
apiVersion: v1
kind: Namespace
metadata: {name: blue, labels: {team: blue}}
---
apiVersion: v1
kind: Namespace
metadata: {name: red, labels: {team: red}}
---
${pod('default', 'web-open', 2, 'app: web')}
${pod('locked', 'web-locked', 1, 'app: web')}
${pod('blue', 'trusted', 1, 'role: trusted', 'busybox')}
${pod('blue', 'trusted-far', 2, 'role: trusted', 'busybox')}
${pod('blue', 'untrusted', 2, 'role: other', 'busybox')}
${pod('red', 'trusted-red', 1, 'role: trusted', 'busybox')}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: locked}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-trusted-blue, namespace: locked}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: blue}}
      podSelector: {matchLabels: {role: trusted}}
    ports: [{protocol: TCP, port: 80}]
`;

const cluster = new TestCluster(`pol${process.pid % 10000}`);
const ips: Record<string, string> = {};
let server: ChildProcess | undefined;
let serverLog = '';

test.before(async () => {
  if (skip !== undefined) return;
  await cluster.up(YAML, ['--seed', '3']);
  const status = await cluster.status();
  for (const p of status.pods) ips[p.name] = p.ip;
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  if (server?.pid !== undefined) server.kill('SIGTERM');
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`NetworkPolicy end-to-end skipped: ${skip}`, (t) => t.pass());

const curl = (from: string, ns: string, url: string) => cluster.podwire(['exec', '-n', ns, from, '--', 'curl', '-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url]);

serial('an allow rule admits a trusted pod of the right namespace, on the same node and across nodes', async (t) => {
  for (const from of ['trusted', 'trusted-far']) {
    const r = await curl(from, 'blue', `http://${ips['web-locked']}/`);
    t.is(r.stdout, '200', `${from}: ${r.stderr}`);
  }
});

serial('default deny blocks the rest: another label, another namespace', async (t) => {
  const other = await curl('untrusted', 'blue', `http://${ips['web-locked']}/`);
  t.not(other.code, 0, 'role=other is not admitted');
  const red = await curl('trusted-red', 'red', `http://${ips['web-locked']}/`);
  t.not(red.code, 0, 'namespace red is not admitted');
  const drops = (await cluster.status()).nodes.map((n) => n.detail?.drops['policy-denied'] ?? 0);
  t.true(drops[0] > 0, 'counted as policy-denied on the destination node');
});

serial('egress default deny stops the locked pod from opening connections', async (t) => {
  const r = await curl('web-locked', 'locked', `http://${ips['web-open']}/`);
  t.not(r.code, 0);
  const open = await curl('trusted', 'blue', `http://${ips['web-open']}/`);
  t.is(open.stdout, '200', 'an unpoliced namespace is untouched');
});

serial("pod traffic to the outside world leaves with its node's address (masquerade)", async (t) => {
  server = spawn('ip', ['netns', 'exec', `pw-${cluster.name}-ext`, 'python3', '-m', 'http.server', '8080', '--bind', '192.0.2.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  await new Promise((r) => setTimeout(r, 800));
  const near = await curl('trusted', 'blue', 'http://192.0.2.1:8080/');
  const far = await curl('trusted-far', 'blue', 'http://192.0.2.1:8080/');
  t.is(near.stdout, '200', near.stderr);
  t.is(far.stdout, '200', far.stderr);
  await new Promise((r) => setTimeout(r, 200));
  const sources = serverLog.split('\n').filter((l) => l.includes('GET /')).map((l) => l.split(' ')[0]);
  t.deepEqual(sources, ['192.0.2.11', '192.0.2.12'], 'node-1 then node-2 addresses, never a pod address');
});
