/**
 * Cluster DNS end to end, through each pod's own glibc resolver and dig: short names
 * through the search path, full names, pod records, headless services, SRV, PTR,
 * ExternalName, NXDOMAIN, a forwarded name answered by a dnsmasq upstream on loopback,
 * and a headless answer too large for UDP fetched over TCP.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const reason = kernelSkipReason() ?? (existsSync('/usr/sbin/dnsmasq') ? undefined : 'needs dnsmasq (scripts/setup.sh installs dnsmasq-base)');
const test = anyTest as TestFn;
const serial = reason === undefined ? test.serial : test.serial.skip;

// The upstream: a dnsmasq the test starts on its own loopback address.
const UPSTREAM = `127.0.${53 + (process.pid % 100)}.${1 + (process.pid % 200)}`;
const MANY = 40;

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2, dnsUpstreams: [${UPSTREAM}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 80}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: many}
spec:
  replicas: ${MANY}
  selector: {matchLabels: {app: many}}
  template:
    metadata: {labels: {app: many}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec: {hostname: db-0, subdomain: db, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.100.100.100, selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{name: pg, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: many}
spec: {clusterIP: None, selector: {app: many}, ports: [{port: 7}]}
---
apiVersion: v1
kind: Service
metadata: {name: docs}
spec: {type: ExternalName, externalName: docs.example.test}
`;

const cluster = new TestCluster(`dns${process.pid % 10000}`);
let dnsmasq: ChildProcess | undefined;

test.before(async () => {
  if (reason !== undefined) return;
  dnsmasq = spawn('dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${UPSTREAM}`, '--port=53', '--address=/outside.example.test/192.0.2.99', '--address=/docs.example.test/192.0.2.98'], { stdio: 'ignore' });
  await cluster.up(YAML, ['--seed', '9']);
});

test.after.always(async (t) => {
  if (reason !== undefined) return;
  if (dnsmasq?.pid !== undefined) dnsmasq.kill('SIGTERM');
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (reason !== undefined) test(`cluster DNS end-to-end skipped: ${reason}`, (t) => t.pass());

const inPod = (argv: string[]) => cluster.exec('client', argv);

/**
 * The client's node learns the other node's pods' readiness through the store, as a real
 * node learns endpoints through the API server: a moment after `up` saw them ready. Waits
 * (at most 15 s) until `dig +short NAME` gives `lines` lines, then the test asks as before.
 */
async function untilAnswered(name: string, lines: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const r = await inPod(['dig', '+tcp', '+short', name]);
    if (r.stdout.trim().split('\n').filter(Boolean).length === lines) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

serial('the short name resolves through the search path, the full name directly', async (t) => {
  const short = await inPod(['getent', 'hosts', 'web']);
  t.is(short.stdout.trim(), '10.100.100.100  web.default.svc.cluster.local');
  const full = await inPod(['getent', 'hosts', 'web.default.svc.cluster.local']);
  t.regex(full.stdout, /^10\.100\.100\.100\s/);
});

serial('pod records, headless services and hostname.subdomain', async (t) => {
  const status = await cluster.status();
  const db = status.pods.find((p) => p.name === 'db-0')!.ip;
  const dashed = db.replace(/\./g, '-');
  await untilAnswered('db.default.svc.cluster.local', 1);
  t.is((await inPod(['dig', '+short', `${dashed}.default.pod.cluster.local`])).stdout.trim(), db);
  t.is((await inPod(['dig', '+short', 'db.default.svc.cluster.local'])).stdout.trim(), db, 'one A per ready endpoint');
  t.is((await inPod(['dig', '+short', 'db-0.db.default.svc.cluster.local'])).stdout.trim(), db);
  const web = status.pods.filter((p) => p.name.startsWith('web-')).map((p) => p.ip).sort();
  t.deepEqual((await inPod(['dig', '+short', '_http._tcp.web.default.svc.cluster.local', 'SRV'])).stdout.trim().split('\n'), ['0 100 80 web.default.svc.cluster.local.']);
  const srv = (await inPod(['dig', '+short', '_pg._tcp.db.default.svc.cluster.local', 'SRV'])).stdout.trim();
  t.is(srv, '0 100 5432 db-0.db.default.svc.cluster.local.', 'headless: one SRV per endpoint');
  t.is(web.length, 2);
});

serial('PTR for a service address; ExternalName as CNAME; NXDOMAIN with the SOA; AAAA NODATA', async (t) => {
  t.is((await inPod(['dig', '+short', '-x', '10.100.100.100'])).stdout.trim(), 'web.default.svc.cluster.local.');
  const cname = (await inPod(['dig', '+short', 'docs.default.svc.cluster.local'])).stdout.trim().split('\n');
  t.deepEqual(cname, ['docs.example.test.', '192.0.2.98'], 'the CNAME, then its target resolved upstream');
  const nx = await inPod(['dig', 'nothing.default.svc.cluster.local']);
  t.regex(nx.stdout, /status: NXDOMAIN/);
  t.regex(nx.stdout, /cluster\.local\.\s+\d+\s+IN\s+SOA\s+ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\./);
  const aaaa = await inPod(['dig', 'web.default.svc.cluster.local', 'AAAA']);
  t.regex(aaaa.stdout, /status: NOERROR/);
  t.regex(aaaa.stdout, /ANSWER: 0/);
});

serial('names outside the cluster go to the upstream (a dnsmasq on loopback)', async (t) => {
  const r = await inPod(['getent', 'hosts', 'outside.example.test']);
  t.regex(r.stdout, /^192\.0\.2\.99\s/);
});

serial('a headless answer too large for UDP comes whole over TCP: dig +tcp, and the retry after TC', async (t) => {
  await untilAnswered('many.default.svc.cluster.local', MANY);
  const udp = await inPod(['dig', '+notcp', '+ignore', '+bufsize=512', 'many.default.svc.cluster.local']);
  t.regex(udp.stdout, /flags: qr aa tc rd/, 'truncated over UDP');
  const tcp = await inPod(['dig', '+tcp', '+short', 'many.default.svc.cluster.local']);
  t.is(tcp.stdout.trim().split('\n').length, MANY);
  const retried = await inPod(['dig', '+short', '+bufsize=512', 'many.default.svc.cluster.local']);
  t.is(retried.stdout.trim().split('\n').length, MANY, 'dig retries over TCP after TC');
});

serial('podwire dns and the loopback port answer; counters show in status --json', async (t) => {
  const r = await cluster.podwire(['dns', 'web.default.svc.cluster.local']);
  t.regex(r.stdout, /web\.default\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+10\.100\.100\.100/);
  const srv = await cluster.podwire(['dns', '_http._tcp.web.default.svc.cluster.local', 'SRV']);
  t.regex(srv.stdout, /IN\s+SRV\s+0 100 80 web\.default\.svc\.cluster\.local\./);
  const status = await cluster.status();
  const dns = (status.nodes[0].detail as unknown as { dns: { port: number; rcodes?: unknown } }).dns;
  t.true(dns.port > 0);
  t.truthy(JSON.stringify(dns).match(/NXDOMAIN|nxdomain/), 'counters per rcode');
});
