/**
 * `podwire observe` end to end, as a user runs it against the demo cluster (three nginx
 * replicas behind 10.100.100.100, a client) with a locked namespace beside it: following
 * the Deployment's pods while curl hits the ClusterIP shows the DNAT to each backend; a
 * default-deny policy shows DROPPED and is named; dig of a missing name shows NXDOMAIN as
 * L7; JSON lines parse with Hubble's fields; both nodes' flows merge in time order; and a
 * flood of policy drops leaves the connection events in a small ring.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { DEMO_YAML } from '../../src/cluster/demo.js';
import { CLI, kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

// The demo, with its client pinned (so the flood below stays on one node), a small ring,
// and a namespace whose pod a default-deny policy isolates.
const YAML = `${DEMO_YAML.replace('spec:\n  nodes: 2', 'spec:\n  nodes: 2\n  flowBufferCapacity: 1024').replace('  name: client\nspec:\n', '  name: client\nspec:\n  nodeName: node-1\n')}
---
apiVersion: v1
kind: Namespace
metadata: {name: locked}
---
apiVersion: v1
kind: Pod
metadata: {name: vault, namespace: locked, labels: {app: vault}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: locked}
spec: {podSelector: {}, policyTypes: [Ingress]}
`;

const cluster = new TestCluster(`obs${process.pid % 10000}`);
const ips: Record<string, string> = {};
const followers: ChildProcess[] = [];

test.before(async () => {
  if (skip !== undefined) return;
  await cluster.up(YAML, ['--seed', '5']);
  for (const p of (await cluster.status()).pods) ips[`${p.namespace}/${p.name}`] = p.ip;
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  for (const f of followers) f.kill('SIGKILL');
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`observe end-to-end skipped: ${skip}`, (t) => t.pass());

const observe = (...args: string[]) => cluster.podwire(['observe', ...args]);
const curl = (url: string) => cluster.exec('client', ['curl', '-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url]);

/** `podwire observe ARGS` running in the background, its output collected. */
function follow(...args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [CLI, 'observe', '--name', cluster.name, '--state-dir', cluster.stateRoot, '--follow', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  followers.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const replicas = () => Object.keys(ips).filter((k) => k.startsWith('default/deploy-nginx-'));

serial('observe --follow --to-pod default/deploy-nginx while curling the ClusterIP shows the DNAT to each of the three backends', async (t) => {
  const f = follow('--to-pod', 'default/deploy-nginx');
  await new Promise((r) => setTimeout(r, 1500)); // both nodes' streams open
  const backends = new Set<string>();
  for (let i = 0; i < 40 && backends.size < 3; i++) {
    t.is((await curl('http://10.100.100.100/')).stdout, '200');
    for (const m of f.output().matchAll(/DNAT 10\.100\.100\.100:80 -> ([\d.]+):80/g)) backends.add(m[1]);
  }
  await until('the last curl\'s flows', () => f.output().split('\n').filter((l) => l.includes('TRANSLATED')).length >= 3);
  f.child.kill('SIGINT');
  const lines = f.output().trimEnd().split('\n');
  t.deepEqual([...backends].sort(), replicas().map((k) => ips[k]).sort(), f.output());
  for (const pod of replicas()) {
    t.true(lines.some((l) => new RegExp(`: default/client:\\d+ \\(ID:\\d+\\) -> ${pod}:80 \\(ID:\\d+\\) post-xlate-fwd TRANSLATED \\(TCP Flags: SYN; DNAT 10\\.100\\.100\\.100:80 -> `).test(l)), pod);
    t.true(lines.some((l) => new RegExp(`-> ${pod}:80 \\(ID:\\d+\\) to-(endpoint|overlay) FORWARDED \\(TCP Flags: SYN\\)$`).test(l)), pod);
  }
  t.true(
    lines.every((l) => /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: /.test(l) && /(->|<-|<>) default\/deploy-nginx-|<- default\/client/.test(l)),
    'every line is Hubble\'s compact line, and to a replica',
  );
});

serial('a default-deny NetworkPolicy: the connection is DROPPED, and the policy is named', async (t) => {
  t.not((await curl(`http://${ips['locked/vault']}/`)).code, 0);
  const dropped = await observe('--last', '5', '--to-pod', 'locked/vault', '--verdict', 'DROPPED');
  t.is(dropped.code, 0, dropped.stderr);
  t.regex(dropped.stdout, /: default\/client:\d+ \(ID:\d+\) <> locked\/vault:80 \(ID:\d+\) Policy denied DROPPED \(TCP Flags: SYN\)\n/);
  const verdicts = await observe('--last', '1', '--type', 'policy-verdict', '--print-policy-names');
  t.regex(verdicts.stdout, /<> locked\/vault:80 \(ID:\d+\) policy-verdict:none INGRESS DENIED BY default-deny \(NetworkPolicy\) \(TCP Flags: SYN\)\n$/);
  const json = await observe('--last', '1', '--type', 'drop', '--to-pod', 'locked/vault', '-o', 'json');
  const flow = JSON.parse(json.stdout) as { verdict: string; drop_reason_desc: string; ingress_denied_by: unknown };
  t.like(flow, { verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED' });
  t.deepEqual(flow.ingress_denied_by, [{ name: 'default-deny', namespace: 'locked', kind: 'NetworkPolicy' }]);
});

serial('dig of a missing name shows the query and its NXDOMAIN as L7 flows', async (t) => {
  const dig = await cluster.exec('client', ['dig', '+tries=1', '+time=3', 'no-such-service.default.svc.cluster.local']);
  t.regex(dig.stdout, /status: NXDOMAIN/);
  const r = await observe('--last', '1', '--protocol', 'dns', '--from-pod', 'default/client');
  t.regex(r.stdout, /: default\/client:\d+ \(ID:\d+\) -> kube-system\/kube-dns:53 \(host\) dns-request proxy FORWARDED \(DNS Query no-such-service\.default\.svc\.cluster\.local\. A\)\n$/);
  const answers = await observe('--last', '1', '--protocol', 'dns', '--to-pod', 'default/client');
  t.regex(answers.stdout, /default\/client:\d+ \(ID:\d+\) <- kube-system\/kube-dns:53 \(host\) dns-response proxy FORWARDED \(DNS Answer RCode: Non-Existent Domain TTL: 4294967295 \(Proxy no-such-service\.default\.svc\.cluster\.local\. A\)\)\n$/);
});

serial('-o json: one flow per line, each with Hubble\'s fields; both nodes merged in time order', async (t) => {
  const r = await observe('--last', '2048', '-o', 'json');
  t.is(r.code, 0, r.stderr);
  const flows = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(flows.length > 20, `${flows.length} flows`);
  for (const f of flows) {
    for (const field of ['time', 'uuid', 'verdict', 'Type', 'node_name', 'event_type', 'Summary']) t.true(field in f, `${field} in ${JSON.stringify(f)}`);
  }
  const l3 = flows.filter((f) => f.Type === 'L3_L4' && f.IP !== undefined);
  t.true(l3.every((f) => (f.IP as { ipVersion: string }).ipVersion === 'IPv4' && 'source' in f && 'destination' in f));
  // A transport Hubble decodes has its l4; others (IGMP, say) have none, and say so in the summary.
  const noL4 = l3.filter((f) => !('l4' in f));
  t.true(noL4.every((f) => f.Summary === 'IPv4'), JSON.stringify(noL4[0]));
  t.true(l3.filter((f) => /^(TCP|UDP|ICMPv4)/.test(f.Summary as string)).every((f) => 'l4' in f));
  const withPod = l3.find((f) => (f.source as { pod_name?: string }).pod_name === 'client')!;
  t.true(((withPod.source as { labels: string[] }).labels).includes('k8s:io.kubernetes.pod.namespace=default'));
  t.deepEqual([...new Set(flows.map((f) => f.node_name as string))].sort(), ['node-1', 'node-2']);
  const times = flows.map((f) => Date.parse(f.time as string));
  t.deepEqual(times, [...times].sort((a, b) => a - b), 'merged in time order');
  const table = await observe('--last', '3', '-o', 'table');
  t.regex(table.stdout, /^TIMESTAMP {2,}SOURCE {2,}DESTINATION {2,}TYPE {2,}VERDICT {2,}SUMMARY\n/);
  t.is(table.stdout.trimEnd().split('\n').length, 4);
});

serial('following both nodes, -o json, the merged stream is in time order', async (t) => {
  const f = follow('-o', 'json', '--print-node-name');
  await new Promise((r) => setTimeout(r, 1500));
  for (let i = 0; i < 6; i++) await curl('http://10.100.100.100/');
  await until('flows of both nodes', () => new Set([...f.output().matchAll(/"node_name":"(node-\d)"/g)].map((m) => m[1])).size === 2);
  await new Promise((r) => setTimeout(r, 1000));
  f.child.kill('SIGINT');
  const times = f.output().trimEnd().split('\n').map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
  t.true(times.length >= 12, `${times.length} flows`);
  t.deepEqual(times, [...times].sort((a, b) => a - b));
});

serial('a flood of policy drops is rate-limited: the connection events stay in the ring, what was held back is counted', async (t) => {
  const before = await observe('--node', 'node-1', '--last', '1024', '--type', 'trace', '--from-pod', 'default/client', '-o', 'json');
  const connections = before.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { uuid: string }).uuid);
  t.true(connections.length >= 6, `${connections.length} connection events`);
  const flood = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5000):
    s.sendto(b'x', ('${ips['locked/vault']}', 9))
`;
  const r = await cluster.exec('client', ['python3', '-c', flood], 60_000);
  t.is(r.code, 0, r.stderr);
  const after = await observe('--node', 'node-1', '--last', '1024', '-o', 'json');
  const flows = after.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { uuid: string; verdict: string });
  const drops = flows.filter((f) => f.verdict === 'DROPPED').length;
  t.true(drops < 1024 - connections.length, `${drops} drop events of 10,000 written, not the ring's worth`);
  const kept = new Set(flows.map((f) => f.uuid));
  t.true(connections.every((u) => kept.has(u)), 'every connection event is still there');
  const status = await cluster.status();
  const suppressed = (status.nodes.find((n) => n.name === 'node-1')?.detail as { flows?: { suppressed: Record<string, number> } } | undefined)?.flows?.suppressed;
  t.true((suppressed?.['policy-denied'] ?? 0) > 8000, JSON.stringify(suppressed));
});
