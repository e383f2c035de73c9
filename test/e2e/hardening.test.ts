/**
 * Issue 13's hardening on a real cluster, with the kernel's own stack in every pod: IP
 * fragments get the verdict and the NAT of their datagram (NetworkPolicy, DNAT,
 * masquerade), forged ICMP errors and ARP claims from a pod go nowhere, a local non-root
 * user cannot inject frames through the overlay, and one pod's broadcast storm leaves the
 * others' traffic alone. The attacks are real frames: python3 raw and AF_PACKET sockets in
 * an attacker pod (test/e2e/scripts), tcpdump and UDP receivers in the targets.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, kernelSkipReason, TestCluster, type Result } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const SCRIPTS = new URL('../../../test/e2e/scripts/', import.meta.url);
const script = (name: string) => readFileSync(new URL(name, SCRIPTS), 'utf8');

const pod = (ns: string, name: string, node: number, app: string, image = 'busybox') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${app}}}
spec: {nodeName: node-${node}, containers: [{name: c, image: ${image}}]}
---`;

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Namespace
metadata: {name: locked}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: locked}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
${pod('locked', 'shut-near', 1, 'shut')}
${pod('locked', 'shut-far', 2, 'shut')}
${pod('default', 'client', 1, 'client')}
${pod('default', 'open-near', 1, 'open')}
${pod('default', 'open-far', 2, 'open')}
${pod('default', 'attacker', 1, 'attacker')}
${pod('default', 'bystander', 1, 'bystander')}
${pod('default', 'web-near', 1, 'webui', 'nginx')}
${pod('default', 'web-far', 2, 'webui', 'nginx')}
${pod('default', 'udp-backend', 2, 'udp-backend')}
apiVersion: v1
kind: Service
metadata: {name: clusterip-service}
spec: {clusterIP: 10.100.100.100, selector: {app: webui}, ports: [{port: 80, targetPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: udp-sink}
spec: {clusterIP: 10.100.100.101, selector: {app: udp-backend}, ports: [{protocol: UDP, port: 9999, targetPort: 7777}]}
`;

const cluster = new TestCluster(`hrd${process.pid % 10000}`);
/** The local non-root user of the overlay test: pw-prefixed, removed in teardown also on failure. */
const USER = `pwhrd${process.pid % 10000}`;
const OUTSIDE_ADDR = '192.0.2.1';
const LISTEN_PORT = 7777;
const ips: Record<string, string> = {};
const macs: Record<string, string> = {};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The background commands this file started, ended by their pid in teardown should one outlive a failed test. */
const started = new Set<ChildProcess>();

/** Runs a script of test/e2e/scripts with python3 in a pod's network namespace. */
function python(podName: string, name: string, args: (string | number)[], ns = podName.startsWith('shut') ? 'locked' : 'default'): Promise<Result> {
  return cluster.podwire(['exec', '-n', ns, podName, '--', 'python3', '-c', script(name), ...args.map(String)], 60_000);
}

/**
 * Starts a podwire command in the background and resolves once `ready` shows in its output
 * (a receiver bound, tcpdump listening), with a function that waits for its end. Every
 * command given here ends by itself (a receive timeout, `timeout N tcpdump`).
 */
function background(args: string[], ready: RegExp): Promise<() => Promise<{ stdout: string; stderr: string }>> {
  const child = spawn(process.execPath, [CLI, args[0], '--name', cluster.name, '--state-dir', cluster.stateRoot, ...args.slice(1)], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let stdout = '';
  let stderr = '';
  const ended = new Promise<void>((resolve) => child.on('close', () => (started.delete(child), resolve())));
  return new Promise((resolve, reject) => {
    const check = () => {
      if (ready.test(stdout) || ready.test(stderr)) resolve(async () => (await ended, { stdout, stderr }));
    };
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), check()));
    child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), check()));
    void ended.then(() => reject(new Error(`${args.join(' ').slice(0, 200)} ended before ${ready}: ${stdout}${stderr}`)));
    setTimeout(() => reject(new Error(`${args.join(' ').slice(0, 200)}: no ${ready} within 20 s`)), 20_000).unref();
  });
}

/** A UDP receiver on `port` for `seconds` in a pod (or the outside world), once bound; resolves to "source length" lines. */
/**
 * How long a receiver listens while the test's sends go out one after another: each send
 * is a `podwire exec` (a container started in the pod), which takes a second or more on a
 * loaded machine, and the last send must still land inside every window.
 */
const SENDS_WINDOW_S = 8;

async function listen(where: string, seconds: number, port = LISTEN_PORT): Promise<() => Promise<string[]>> {
  const python = ['python3', '-c', script('udp-recv.py'), String(port), String(seconds)];
  const args = where === 'outside' ? ['outside', '--', ...python] : ['exec', '-n', where.startsWith('shut') ? 'locked' : 'default', where, '--', ...python];
  const done = await background(args, /^ready$/m);
  return async () => (await done()).stdout.split('\n').filter((l) => l !== '' && l !== 'ready');
}

/** tcpdump in a pod (or the outside world) for `seconds`, once it listens; resolves to its lines. */
async function capture(where: string, seconds: number, filter: string[]): Promise<() => Promise<string[]>> {
  const tcpdump = ['timeout', String(seconds), 'tcpdump', '-i', where === 'outside' ? 'any' : 'eth0', '-n', '-l', ...filter];
  const done = await background(where === 'outside' ? ['outside', '--', ...tcpdump] : ['exec', where, '--', ...tcpdump], /listening on/);
  return async () => (await done()).stdout.split('\n').filter((l) => l !== '');
}

/** Every node's drops, summed by reason. */
async function drops(): Promise<Record<string, number>> {
  const sum: Record<string, number> = {};
  for (const n of (await cluster.status()).nodes) {
    for (const [reason, count] of Object.entries(n.detail?.drops ?? {})) sum[reason] = (sum[reason] ?? 0) + count;
  }
  return sum;
}

async function dropDelta(reason: string, action: () => Promise<void>): Promise<number> {
  const before = (await drops())[reason] ?? 0;
  await action();
  return ((await drops())[reason] ?? 0) - before;
}

const curl = (from: string, url: string) => cluster.exec(from, ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', url]);

function removeUser(): void {
  if (spawnSync('id', [USER]).status === 0) spawnSync('userdel', [USER]);
}

test.before(async () => {
  if (skip !== undefined) return;
  await cluster.up(YAML, ['--seed', '13']);
  const status = await cluster.status();
  for (const p of status.pods) ips[p.name] = p.ip;
  for (const n of status.nodes) for (const p of (n.detail as { pods?: { name: string; mac: string }[] } | undefined)?.pods ?? []) macs[p.name] = p.mac;
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  for (const child of started) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  removeUser();
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
  t.not(spawnSync('id', [USER]).status, 0, `user ${USER} is removed`);
});

if (skip !== undefined) test(`hardening end-to-end skipped: ${skip}`, (t) => t.pass());

serial('a ping of 3000 bytes to a pod under default deny gets no reply, on one node and across nodes; to an open pod it does', async (t) => {
  for (const target of ['shut-near', 'shut-far']) {
    let r: Result | undefined;
    const denied = await dropDelta('policy-denied', async () => {
      r = await cluster.exec('client', ['ping', '-s', '3000', '-c', '2', '-W', '1', ips[target]]);
    });
    t.not(r!.code, 0, `${target} must not answer`);
    t.regex(r!.stdout, / 0 received/, target);
    t.true(denied >= 2, `${target}: each echo request denied as a datagram (${denied})`);
  }
  for (const target of ['open-near', 'open-far']) {
    const r = await cluster.exec('client', ['ping', '-s', '3000', '-c', '2', '-W', '1', ips[target]]);
    t.is(r.code, 0, `${target}: ${r.stdout}${r.stderr}`);
    t.regex(r.stdout, /3008 bytes from/, `${target}: the reply crossed whole`);
  }
});

serial('a 3500-byte UDP datagram never reaches a pod under default deny; an open pod receives it whole', async (t) => {
  const expected: Record<string, string[]> = { 'shut-near': [], 'shut-far': [], 'open-near': [`${ips.client} 3500`], 'open-far': [`${ips.client} 3500`] };
  const targets = Object.keys(expected);
  const receivers = await Promise.all(targets.map((target) => listen(target, SENDS_WINDOW_S)));
  for (const target of targets) {
    const sent = await python('client', 'udp-send.py', [ips[target], LISTEN_PORT, 3500]);
    t.is(sent.code, 0, sent.stderr);
  }
  const received = await Promise.all(receivers.map((done) => done()));
  targets.forEach((target, i) => t.deepEqual(received[i], expected[target], target));
});

serial('a fragmented UDP send to a ClusterIP is DNATed to the backend; to the outside it leaves masqueraded, never with the pod address', async (t) => {
  const [atBackend, seen, outside] = await Promise.all([
    listen('udp-backend', SENDS_WINDOW_S),
    capture('outside', SENDS_WINDOW_S + 1, ['ip', 'and', 'dst', 'host', OUTSIDE_ADDR]),
    listen('outside', SENDS_WINDOW_S, 9999),
  ]);
  await python('client', 'udp-send.py', ['10.100.100.101', 9999, 3500]);
  for (const from of ['client', 'open-far']) await python(from, 'udp-send.py', [OUTSIDE_ADDR, 9999, 3500]);
  t.deepEqual(await atBackend(), [`${ips.client} 3500`], 'arrived whole at the endpoint');
  const got = await outside();
  t.deepEqual(got.sort(), ['192.0.2.11 3500', '192.0.2.12 3500'], "whole, from node-1's and node-2's addresses");
  const lines = await seen();
  const sources = new Set(lines.map((l) => / IP (\d+\.\d+\.\d+\.\d+)(\.\d+)? > /.exec(l)?.[1]).filter((s) => s !== undefined));
  // tcpdump names a fragment after the first by its protocol only: they crossed as fragments.
  t.true(lines.some((l) => l.includes('ip-proto-17')), `fragments were seen:\n${lines.join('\n')}`);
  t.deepEqual([...sources].sort(), ['192.0.2.11', '192.0.2.12'], `only node addresses:\n${lines.join('\n')}`);
});

serial("a pod's ARP poisoning claiming another pod's address never reaches a bystander, whose traffic keeps working", async (t) => {
  const victim = 'web-near';
  const neighbour = async () => (await cluster.exec('bystander', ['ip', 'neigh', 'show', ips[victim]])).stdout;
  t.is((await cluster.exec('bystander', ['ping', '-c', '1', '-W', '1', ips[victim]])).code, 0);
  t.true((await neighbour()).includes(macs[victim]), 'the bystander knows the victim');
  const rounds = 15;
  let seenDuring: string[] = [];
  const spoofed = await dropDelta('arp-spoofed', async () => {
    const attack = python('attacker', 'arp-spoof.py', [ips[victim], ips.bystander, rounds, 0.2]);
    // The kernel's neighbour locktime (1 s) ignores a second update soon after the first: look after it.
    await sleep(1800);
    seenDuring = [await neighbour()];
    const r = await attack;
    t.is(r.code, 0, r.stderr);
  });
  seenDuring.push(await neighbour());
  for (const line of seenDuring) t.false(line.includes(macs.attacker), `the attacker's MAC for the victim: ${line}`);
  t.log(`arp-spoofed: ${spoofed}`);
  t.true(spoofed >= 2 * rounds, `arp-spoofed counted ${spoofed}`);
  const ping = await cluster.exec('bystander', ['ping', '-c', '2', '-W', '1', ips[victim]]);
  t.is(ping.code, 0, ping.stdout);
  t.is((await curl('bystander', `http://${ips[victim]}/`)).stdout, '200');
});

serial('forged ICMP errors quoting no connection never reach their victim; a real port unreachable still comes back', async (t) => {
  const count = 5;
  let near: string[] = [];
  let far: string[] = [];
  const invalid = await dropDelta('conntrack-invalid', async () => {
    const nearDump = await capture('open-near', SENDS_WINDOW_S, ['icmp']);
    const farDump = await capture('open-far', SENDS_WINDOW_S, ['icmp']);
    for (const target of ['open-near', 'open-far']) {
      const r = await python('attacker', 'icmp-forge.py', [ips[target], ips.client, count]);
      t.is(r.code, 0, r.stderr);
    }
    [near, far] = await Promise.all([nearDump(), farDump()]);
  });
  t.deepEqual(near, [], 'nothing reached open-near');
  t.deepEqual(far, [], 'nothing reached open-far');
  t.log(`conntrack-invalid: ${invalid}`);
  t.true(invalid >= 4 * count, `conntrack-invalid counted ${invalid}`);
  for (const target of ['open-near', 'open-far']) {
    const r = await python('client', 'udp-send.py', [ips[target], 9, 64, 'refused']);
    t.is(r.stdout.trim(), 'refused', `${target}'s port unreachable reached the sender`);
  }
});

serial('a local non-root user cannot send into a pod through the overlay, not even from a peer node\'s address', async (t) => {
  const state = JSON.parse(readFileSync(join(cluster.stateRoot, cluster.name, 'cluster.json'), 'utf8')) as {
    settings: { vni: number };
    nodes: { name: string; underlay: number; vtepMac: number }[];
  };
  const [n1, n2] = state.nodes;
  const addr = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  const mac = (n: number) => n.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
  removeUser();
  const add = spawnSync('useradd', ['-M', '-s', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
  t.is(add.status, 0, add.stderr);
  try {
    const asUser = (args: (string | number)[]) =>
      spawnSync('runuser', ['-u', USER, '--', '/usr/bin/python3', '-c', script('vxlan-forge.py'), ...args.map(String)], { encoding: 'utf8', timeout: 20_000 });
    // The peer's VTEP holds its address and port (no SO_REUSEADDR/SO_REUSEPORT), so neither
    // this user nor root in this test can send from there: a forged inner source from the
    // right port (overlay-spoofed) is unreachable for a local user, and the inner-source
    // check is proved in memory (test/datapath/hardening.test.ts).
    t.is(asUser([addr(n2.underlay), 4789, 'bind-only']).stdout.trim(), 'EADDRINUSE');
    let sent = '';
    const received = await listen('open-near', 4);
    const unknown = await dropDelta('unknown-peer', async () => {
      // Port 0: the kernel picks one, never the VTEP's 4789, which is taken.
      const r = asUser([addr(n2.underlay), 0, addr(n1.underlay), state.settings.vni, mac(n1.vtepMac), mac(n2.vtepMac), ips['open-far'], ips['open-near'], LISTEN_PORT, 10]);
      sent = r.stdout + r.stderr;
      await sleep(300);
    });
    t.regex(sent, /^sent 10 from \('127\./, sent);
    t.deepEqual(await received(), [], 'nothing arrived in the pod');
    t.is(unknown, 10, 'each forged datagram counted as unknown-peer');
  } finally {
    removeUser();
  }
});

serial("one pod's broadcast storm of 20,000 frames is cut at its flood budget; other pods' traffic keeps working", async (t) => {
  const curls: string[] = [];
  const limited = await dropDelta('flood-limited', async () => {
    // 20,000 frames over about 2 s: ten times the default budget of 2,000 a second.
    const storm = python('attacker', 'storm.py', [20_000, '10.244.1.250', ips.attacker, 10_000]);
    await sleep(700);
    for (let i = 0; i < 3; i++) curls.push((await curl('bystander', `http://${ips['web-near']}/`)).stdout);
    const r = await storm;
    t.regex(r.stdout, /^sent 20000 /, r.stderr);
    t.log(r.stdout.trim());
  });
  curls.push((await curl('bystander', `http://${ips['web-near']}/`)).stdout);
  curls.push((await curl('client', `http://${ips['web-far']}/`)).stdout);
  t.deepEqual(curls, ['200', '200', '200', '200', '200']);
  t.log(`flood-limited: ${limited}`);
  t.true(limited >= 10_000, `flood-limited counted ${limited}`);
});

serial('after all of it every node is up, nothing threw, and the service answers', async (t) => {
  const status = await cluster.status();
  t.deepEqual(
    status.nodes.map((n) => n.state),
    ['up', 'up'],
  );
  t.is((await drops())['internal-error'] ?? 0, 0);
  for (const from of ['client', 'open-far', 'bystander']) t.is((await curl(from, 'http://10.100.100.100/')).stdout, '200', from);
});
