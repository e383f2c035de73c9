/**
 * Cluster lifecycle end to end: bad input starts nothing, two clusters with the same pod
 * CIDR run side by side without seeing each other, the overlay glues datagrams or not as
 * the Cluster document says (tcpdump on lo sees which), a killed node process is reported
 * and still cleaned up, a node killed with SIGKILL comes back with restart-node, its pods
 * on their addresses, and a path MTU below the pod MTU answers with fragmentation needed.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const podsYaml = (mtu: number, overlayOffload = true) => `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2, mtu: ${mtu}, overlayOffload: ${overlayOffload}}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {nodeName: node-2, containers: [{name: web, image: nginx}]}
`;

const tag = process.pid % 10000;
const alpha = new TestCluster(`alpha${tag}`);
const beta = new TestCluster(`beta${tag}`);
const broken = new TestCluster(`broken${tag}`);
const gamma = new TestCluster(`gamma${tag}`);

test.after.always(async (t) => {
  if (skip !== undefined) return;
  for (const c of [alpha, beta, broken, gamma]) {
    await c.teardown();
    t.deepEqual(c.leftovers(), [], `nothing of ${c.name} is left`);
  }
});

if (skip !== undefined) test(`cluster lifecycle end-to-end skipped: ${skip}`, (t) => t.pass());

serial('malformed YAML names the file, document and field, and creates nothing', async (t) => {
  const file = join(broken.stateRoot, 'bad.yaml');
  const yaml = `apiVersion: v1
kind: Pod
metadata: {name: ok}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: three
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
`;
  (await import('node:fs')).writeFileSync(file, yaml);
  const r = await broken.podwire(['up', '-f', file, '--detach']);
  t.is(r.code, 1);
  t.regex(r.stderr, /bad\.yaml: document 2 \(Deployment web\).*spec\.replicas/);
  t.regex(r.stderr, /nothing was started/);
  t.deepEqual(broken.leftovers(), []);
  t.false(existsSync(join(broken.stateRoot, broken.name)), 'no state directory either');
});

serial('two clusters with the same pod CIDR run side by side without seeing each other', async (t) => {
  await alpha.up(podsYaml(1500));
  await beta.up(podsYaml(1450, false));
  for (const c of [alpha, beta]) {
    const web = await c.podIp('web');
    t.is(web, '10.244.2.2', 'both clusters give web the same address');
    const curl = await c.exec('client', ['curl', '-s', '-m', '5', `http://${web}/`]);
    t.is(curl.code, 0, curl.stderr);
    t.regex(curl.stdout, new RegExp(`pod name:\\tweb`));
  }
  // Each cluster's node-2 saw exactly its own client's traffic.
  const alphaDecap = (await alpha.status()).nodes[1].detail!.counters.decapsulated;
  const betaDecap = (await beta.status()).nodes[1].detail!.counters.decapsulated;
  t.true(alphaDecap > 0 && betaDecap > 0);
});

/**
 * Sends `count` 100-byte UDP datagrams from client to web back to back while tcpdump
 * watches node-1's overlay socket on lo; returns the UDP length of every VXLAN datagram.
 */
async function burstOnLo(c: TestCluster, count: number): Promise<number[]> {
  const underlay = (await c.status()).nodes[0].underlay.split(':')[0];
  const file = join(c.stateRoot, 'lo.pcap');
  const tcpdump = spawn('tcpdump', ['-i', 'lo', '-n', '-U', '-w', file, `udp and src host ${underlay} and dst port 4789`], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      tcpdump.stderr.on('data', (d: Buffer) => d.toString().includes('listening on') && resolve());
      tcpdump.on('exit', (code) => reject(new Error(`tcpdump exited with ${code}`)));
    });
    const web = await c.podIp('web');
    const send = `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(${count}): s.sendto(b'x' * 100, ('${web}', 9))`;
    const r = await c.exec('client', ['python3', '-c', send]);
    if (r.code !== 0) throw new Error(`python3: ${r.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    const exited = new Promise((resolve) => tcpdump.on('exit', resolve));
    tcpdump.kill('SIGINT');
    await exited;
  }
  const out = execFileSync('tshark', ['-r', file, '-d', 'udp.port==4789,vxlan', '-T', 'fields', '-e', 'udp.length'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.trim().split('\n').filter((l) => l !== '').map((l) => Number(l.split(',')[0])); // the outer UDP layer comes first
}

serial('the overlay glues runs of datagrams into one, unless overlayOffload is false', async (t) => {
  // A 100-byte datagram in VXLAN: 8 (UDP) + 8 (VXLAN) + 14 + 20 + 8 + 100.
  const single = 158;
  const glued = await burstOnLo(alpha, 2000);
  t.true(glued.some((len) => len > single && (len - 8) % (single - 8) === 0), `alpha: glued datagrams on lo: ${glued.join(' ')}`);
  const alphaOverlay = (await alpha.status()).nodes[0].detail!.overlay;
  t.true(alphaOverlay.udpOffload);
  t.true(alphaOverlay.glued!.sent > 0);
  t.true((await alpha.status()).nodes[1].detail!.overlay.glued!.received > 0, 'node-2 split them again');

  const plain = await burstOnLo(beta, 2000);
  t.true(plain.length >= 100, `beta: ${plain.length} datagrams seen`); // the pod's TAP queue drops some of a burst
  t.deepEqual([...new Set(plain)], [single], 'beta: every VXLAN packet on its own');
  t.false((await beta.status()).nodes[0].detail!.overlay.udpOffload);

  // The status table says the same in its BACKEND column.
  const backends = async (c: typeof alpha) => [...(await c.podwire(['status'])).stdout.matchAll(/tap=\S+ udp=\S+/g)].map((m) => m[0]);
  t.deepEqual(await backends(alpha), ['tap=addon udp=addon+gso', 'tap=addon udp=addon+gso']);
  t.deepEqual(await backends(beta), ['tap=addon udp=addon', 'tap=addon udp=addon']);
});

serial('a DF packet larger than the overlay path gets fragmentation needed (MTU 1450)', async (t) => {
  // alpha's pods have MTU 1500 but the overlay carries at most 1450-byte inner packets.
  const web = await alpha.podIp('web');
  const ping = await alpha.exec('client', ['ping', '-c', '2', '-W', '2', '-M', 'do', '-s', '1472', web]);
  t.not(ping.code, 0);
  t.regex(ping.stdout + ping.stderr, /(Frag needed and DF set \(mtu = 1450\)|mtu[= ]+1450)/i);
  const ok = await alpha.exec('client', ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1372', web]);
  t.is(ok.code, 0, ok.stdout);
});

serial('a killed node process shows as down, and down still removes everything', async (t) => {
  const before = await beta.status();
  const pid = before.nodes[1].pid!;
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  const after = await beta.status();
  t.deepEqual(after.nodes.map((n) => n.state), ['up', 'down']);
  t.false(after.pods.find((p) => p.name === 'web')!.ready);
  const down = await beta.podwire(['down']);
  t.is(down.code, 0, down.stderr);
  t.deepEqual(beta.leftovers(), []);
});

const withService = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-svc}
spec: {selector: {app: web}, ports: [{port: 80}]}
`;

serial('a node killed with SIGKILL comes back with restart-node: same pods, same IPs, answering again', async (t) => {
  await gamma.up(withService);
  const running = await gamma.podwire(['restart-node', 'node-2']);
  t.is(running.code, 2);
  t.regex(running.stderr, /^node node-2 of cluster gamma\d+ is running \(pid \d+\)/);
  const before = await gamma.status();
  const pid = before.nodes[1].pid!;
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && (await gamma.status()).nodes[1].state === 'up'; i++) await new Promise((r) => setTimeout(r, 100));
  const again = await gamma.podwire(['up', '-f', join(gamma.stateRoot, 'cluster.yaml'), '--detach']);
  t.is(again.code, 2);
  t.regex(again.stderr, /node-2 is down: podwire restart-node --name gamma\d+ NODE starts it again/);

  const restart = await gamma.podwire(['restart-node', 'node-2']);
  t.is(restart.code, 0, restart.stdout + restart.stderr);
  const after = await gamma.status();
  t.deepEqual(after.nodes.map((n) => n.state), ['up', 'up']);
  t.not(after.nodes[1].pid, pid);
  t.deepEqual(after.pods, before.pods, 'every pod is back on its node with its address, and ready');
  const web = after.pods.find((p) => p.name === 'web')!.ip;
  const client = after.pods.find((p) => p.name === 'client')!.ip;
  const curl = await gamma.exec('client', ['curl', '-s', '-m', '5', `http://${web}/`]);
  t.is(curl.code, 0, curl.stderr);
  t.regex(curl.stdout, /pod name:\tweb/);
  const ping = await gamma.exec('web', ['ping', '-c', '2', '-W', '2', client]);
  t.is(ping.code, 0, ping.stdout + ping.stderr);
  // Its pod is an endpoint of the Service again: through cluster DNS and the ClusterIP.
  const viaService = await gamma.exec('client', ['curl', '-s', '-m', '5', 'http://web-svc/']);
  t.is(viaService.code, 0, viaService.stderr);
  t.regex(viaService.stdout, /pod name:\tweb/);
});

serial('podwire dns with an empty name is a usage error at once, not a 3 s wait', async (t) => {
  const started = Date.now();
  const r = await gamma.podwire(['dns', '']);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /NAME and TYPE must not be empty/);
  t.true(Date.now() - started < 3000, `${Date.now() - started} ms: it waited for an answer`);
  // A real question still gets its answer.
  t.regex((await gamma.podwire(['dns', 'web.default.svc.cluster.local'])).stdout, /^;; status: NXDOMAIN, id: \d+, flags: qr aa/);
});

serial('in the foreground, podwire up runs until Ctrl-C and then tears everything down', async (t) => {
  const fg = new TestCluster(`fg${tag}`);
  const { spawn } = await import('node:child_process');
  const { CLI } = await import('../helpers/cluster.js');
  const child = spawn(process.execPath, [CLI, 'up', '--name', fg.name, '--state-dir', fg.stateRoot], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 600 && !out.includes('Ctrl-C tears the cluster down.'); i++) await new Promise((r) => setTimeout(r, 100));
    t.regex(out, /4\/4 pods ready/);
    await new Promise((r) => setTimeout(r, 2500));
    t.is(child.exitCode, null, 'still running after it came up');
    child.kill('SIGINT');
    t.is(await exited, 0);
    t.regex(out, /cluster fg\d+ removed/);
    t.deepEqual(fg.leftovers(), []);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await fg.teardown();
  }
});
