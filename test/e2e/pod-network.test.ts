/**
 * The pod network end to end: real namespaces, the kernel's own stack in every pod, real
 * ping and curl, captures read by tshark.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';
import { POD_TX_QUEUE_LENGTH } from '../../src/node/netns.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

// Two nodes: web-a and client-a on node-1, web-b on node-2 (placement by nodeName).
const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  vni: 77
---
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client-a}
spec:
  nodeName: node-1
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web}}
spec:
  nodeName: node-2
  containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
`;

const cluster = new TestCluster(`net${process.pid % 10000}`);
let ips: Record<string, string> = {};

test.before(async () => {
  if (skip !== undefined) return;
  await cluster.up(YAML, ['--pcap', cluster.pcapDir, '--seed', '1']);
  for (const pod of ['web-a', 'client-a', 'web-b']) ips[pod] = await cluster.podIp(pod);
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), [], 'podwire down leaves nothing behind');
});

if (skip !== undefined) test(`pod network end-to-end skipped: ${skip}`, (t) => t.pass());

serial('ping and curl between pods on the same node, through the bridge', async (t) => {
  const ping = await cluster.exec('client-a', ['ping', '-c', '2', '-W', '2', ips['web-a']]);
  t.is(ping.code, 0, ping.stdout + ping.stderr);
  t.regex(ping.stdout, /2 received/);
  const curl = await cluster.exec('client-a', ['curl', '-s', '-m', '5', `http://${ips['web-a']}/`]);
  t.is(curl.code, 0, curl.stderr);
  t.regex(curl.stdout, /pod name:\tweb-a/);
  t.regex(curl.stdout, new RegExp(`client_address=${ips['client-a'].replace(/\./g, '\\.')}`));
});

serial('ping and curl across nodes, through the VXLAN overlay', async (t) => {
  const ping = await cluster.exec('client-a', ['ping', '-c', '2', '-W', '2', ips['web-b']]);
  t.is(ping.code, 0, ping.stdout + ping.stderr);
  t.regex(ping.stdout, /ttl=62/, 'two routed hops: node-1 and node-2');
  const curl = await cluster.exec('client-a', ['curl', '-s', '-m', '5', `http://${ips['web-b']}/`]);
  t.is(curl.code, 0, curl.stderr);
  t.regex(curl.stdout, /node name:\tnode-2/);
});

serial('the gateway answers ARP with the bridge MAC and answers ping', async (t) => {
  const ping = await cluster.exec('client-a', ['ping', '-c', '1', '-W', '2', '10.244.1.1']);
  t.is(ping.code, 0, ping.stdout);
  const neigh = await cluster.exec('client-a', ['ip', 'neigh', 'show', '10.244.1.1']);
  t.regex(neigh.stdout, /10\.244\.1\.1 dev eth0 lladdr 0a:58:0a:f4:01:01/);
});

serial('a 1400-byte DF ping crosses nodes whole', async (t) => {
  const ping = await cluster.exec('client-a', ['ping', '-c', '2', '-W', '2', '-M', 'do', '-s', '1372', ips['web-b']]);
  t.is(ping.code, 0, ping.stdout + ping.stderr);
  t.regex(ping.stdout, /1380 bytes from/);
});

serial('pod MTU and routes are what the CNI would set', async (t) => {
  const link = await cluster.exec('web-b', ['ip', '-o', 'link', 'show', 'eth0']);
  t.regex(link.stdout, /mtu 1450/);
  t.regex(link.stdout, new RegExp(`qlen ${POD_TX_QUEUE_LENGTH}\\b`), 'a TAP ring deep enough to ride out a preempted node process');
  const route = await cluster.exec('web-b', ['ip', 'route', 'show', 'default']);
  t.regex(route.stdout, /default via 10\.244\.2\.1 dev eth0/);
  const resolv = await cluster.exec('web-b', ['cat', '/etc/resolv.conf']);
  t.regex(resolv.stdout, /nameserver 10\.96\.0\.10/);
  t.regex(resolv.stdout, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);
  t.regex(resolv.stdout, /options ndots:5/);
});

serial('status lists both nodes up and every pod ready', async (t) => {
  const status = await cluster.status();
  t.deepEqual(status.nodes.map((n) => [n.name, n.state]), [['node-1', 'up'], ['node-2', 'up']]);
  t.true(status.pods.every((p) => p.ready));
  const code = await cluster.exec('client-a', ['sh', '-c', 'exit 7']);
  t.is(code.code, 7, 'exec passes the exit code through');
});

serial("a pod's frames and the VXLAN layer appear in the node's pcapng", async (t) => {
  await cluster.exec('client-a', ['curl', '-s', '-m', '5', `http://${ips['web-b']}/`]);
  await new Promise((r) => setTimeout(r, 500)); // the writer flushes every 200 ms
  const file = join(cluster.pcapDir, 'node-1.pcapng');
  t.true(existsSync(file));
  const fields = (args: string[]) => execFileSync('tshark', ['-r', file, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ifaces = new Set(fields(['-T', 'fields', '-e', 'frame.interface_name']).trim().split('\n'));
  t.true(ifaces.has('default/client-a'), [...ifaces].join(','));
  t.true(ifaces.has('vxlan:node-2'));
  const vxlan = fields(['-Y', 'vxlan && tcp.dstport == 80', '-T', 'fields', '-e', 'vxlan.vni', '-e', 'ip.dst']).trim().split('\n');
  t.true(vxlan.length > 0 && vxlan[0] !== '', 'VXLAN frames carrying TCP to port 80');
  t.regex(vxlan[0], new RegExp(`^77\\t127\\.77\\.\\d+\\.2,${ips['web-b'].replace(/\./g, '\\.')}$`));
  const icmp = fields(['-Y', 'vxlan && icmp', '-T', 'fields', '-e', 'icmp.type']).trim();
  t.regex(icmp, /8/, 'the inner ICMP echo of the earlier pings is decoded');
});
