/**
 * The node's DNS loopback port against a local user of the machine (issue 13, item 4): a
 * non-root user the test creates asks the port with dig (UDP and TCP) and gets nothing,
 * neither cluster names nor recursion to the upstream; holding 300 TCP connections it
 * blocks neither a pod's `dig +tcp` to the cluster DNS (through the relay) nor root's tools;
 * and a pod's connection that never completes a message is closed at the read deadline.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';
import { HOLDER_SCRIPT } from '../helpers/connection-holder.js';

const missing = ['/usr/sbin/useradd', '/usr/sbin/userdel', '/usr/sbin/runuser', '/usr/sbin/dnsmasq', '/usr/bin/dig', '/usr/bin/python3'].filter((p) => !existsSync(p));
const reason = kernelSkipReason() ?? (missing.length > 0 ? `needs ${missing.join(', ')}` : undefined);
const test = anyTest as TestFn;
const serial = reason === undefined ? test.serial : test.serial.skip;

const UPSTREAM = `127.0.${53 + ((process.pid + 37) % 100)}.${1 + ((process.pid + 11) % 200)}`;
const USER = `pwdns${process.pid % 100000}`;
const CLUSTER_NAME = 'web.default.svc.cluster.local';
/** The server's TCP read deadline (src/node/dns-server.ts TCP_IDLE_MS). */
const TCP_IDLE_S = 10;

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 1, dnsUpstreams: [${UPSTREAM}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.100.100.100, selector: {app: web}, ports: [{port: 80}]}
`;

const cluster = new TestCluster(`dlu${process.pid % 10000}`);
const children: ChildProcess[] = [];
let dnsmasq: ChildProcess | undefined;
let userCreated = false;
let dnsPort = 0;

test.before(async () => {
  if (reason !== undefined) return;
  // A leftover of a crashed run of the same pid must not stop this one.
  spawnSync('/usr/sbin/userdel', [USER], { stdio: 'ignore' });
  execFileSync('/usr/sbin/useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  userCreated = true;
  dnsmasq = spawn('/usr/sbin/dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${UPSTREAM}`, '--port=53', '--address=/example.com/192.0.2.77'], { stdio: 'ignore' });
  await cluster.up(YAML, ['--seed', '5']);
  dnsPort = dnsStatus(await cluster.status()).port;
});

test.after.always(async (t) => {
  if (reason !== undefined) return;
  for (const c of children) killGroup(c);
  // userdel refuses while a process of the user lives: give the killed ones a moment.
  for (let i = 0; i < 50 && spawnSync('/usr/bin/pgrep', ['-u', USER]).status === 0; i++) await new Promise((r) => setTimeout(r, 100));
  if (dnsmasq?.pid !== undefined) dnsmasq.kill('SIGTERM');
  await cluster.teardown();
  if (userCreated) {
    const r = spawnSync('/usr/sbin/userdel', [USER], { encoding: 'utf8' });
    t.is(r.status, 0, `userdel ${USER}: ${r.stderr}`);
  }
  t.deepEqual(cluster.leftovers(), []);
});

if (reason !== undefined) test(`DNS port against local users skipped: ${reason}`, (t) => t.pass());

/**
 * runuser stays as the parent of the user's command, so killing it alone would leave the
 * command running as the user: each is started as the leader of a process group of its own
 * and the group is killed.
 */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

interface GuardStatus {
  port: number;
  forward: { forwarded: number };
  localUsersRefused: { udp: number; tcp: number };
  tcp: { idleClosed: number; relayOpen: number };
}

function dnsStatus(status: Awaited<ReturnType<TestCluster['status']>>): GuardStatus {
  return (status.nodes[0].detail as unknown as { dns: GuardStatus }).dns;
}

/** Runs argv as the test's user; resolves with the exit code and output. */
function asUser(argv: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn('/usr/sbin/runuser', ['-u', USER, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, detached: true });
    children.push(child);
    let stdout = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

const dig = (name: string, extra: string[] = []) => ['/usr/bin/dig', '@127.0.0.1', '-p', String(dnsPort), '+tries=1', '+time=2', ...extra, name];

serial('a local user asking the port gets no answer, neither recursion nor cluster names; root does', async (t) => {
  const before = dnsStatus(await cluster.status());
  for (const [name, extra] of [
    ['example.com', []],
    ['example.com', ['+tcp']],
    [CLUSTER_NAME, []],
    [CLUSTER_NAME, ['+tcp']],
  ] as const) {
    const r = await asUser(dig(name, [...extra]));
    t.not(r.code, 0, `${name} ${extra.join(' ')}: dig gave up (${r.stdout.trim().split('\n').pop()})`);
    t.notRegex(r.stdout, /ANSWER SECTION|status: /, `${name} ${extra.join(' ')}: no response at all`);
  }
  const after = dnsStatus(await cluster.status());
  t.is(after.forward.forwarded, before.forward.forwarded, 'nothing was forwarded upstream for the user');
  t.true(after.localUsersRefused.udp >= before.localUsersRefused.udp + 2);
  t.true(after.localUsersRefused.tcp >= before.localUsersRefused.tcp + 2);
  // Root (the operator's dig, podwire dns) is still served, recursion included.
  const root = spawnSync('/usr/bin/dig', dig('example.com', ['+short']).slice(1), { encoding: 'utf8' });
  t.is(root.stdout.trim(), '192.0.2.77');
  t.is(dnsStatus(await cluster.status()).forward.forwarded, after.forward.forwarded + 1, 'root\'s query went upstream');
  const tool = await cluster.podwire(['dns', CLUSTER_NAME]);
  t.regex(tool.stdout, /IN\s+A\s+10\.100\.100\.100/);
});


serial('a local user holding 300 TCP connections: the pod\'s dig +tcp to the cluster DNS still answers', async (t) => {
  const holder = spawn('/usr/sbin/runuser', ['-u', USER, '--', '/usr/bin/python3', '-c', HOLDER_SCRIPT, String(dnsPort), '300'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children.push(holder);
  try {
    const [line] = (await new Promise<string[]>((resolve) => holder.stdout!.once('data', (c: Buffer) => resolve(c.toString().trim().split('\n'))))) as string[];
    t.is(line, '0', 'none of the user\'s connections stays open');
    for (let i = 0; i < 5; i++) {
      const r = await cluster.exec('client', ['dig', '+tcp', '+tries=1', '+time=3', '+short', CLUSTER_NAME]);
      t.is(r.stdout.trim(), '10.100.100.100', `pod dig +tcp #${i + 1} while the user holds on`);
    }
    const udp = await cluster.exec('client', ['dig', '+tries=1', '+time=3', '+short', CLUSTER_NAME]);
    t.is(udp.stdout.trim(), '10.100.100.100', 'and over UDP in the dataplane');
    const tool = await cluster.podwire(['dns', CLUSTER_NAME]);
    t.regex(tool.stdout, /IN\s+A\s+10\.100\.100\.100/, 'podwire dns (root, UDP) too');
  } finally {
    killGroup(holder);
  }
});

/** In the pod: connect to the cluster DNS over TCP, announce a 100-byte message, send a byte a second; print the seconds until the server closed. */
const TRICKLE = `
import socket, time
s = socket.create_connection(('10.96.0.10', 53), timeout=5)
s.settimeout(1)
s.sendall(b'\\x00\\x64')
start = time.time()
while time.time() - start < 25:
    try:
        s.sendall(b'\\x00')
        if s.recv(1) == b'': break
    except socket.timeout: pass
    except OSError: break
print(round(time.time() - start, 1), flush=True)
`;

serial('a pod\'s TCP connection that never completes a message is closed at the read deadline', async (t) => {
  const r = await cluster.exec('client', ['/usr/bin/python3', '-c', TRICKLE], 40_000);
  const seconds = Number(r.stdout.trim());
  t.true(seconds >= TCP_IDLE_S - 1 && seconds < TCP_IDLE_S + 4, `closed after ${r.stdout.trim()} s (${r.stderr.trim()})`);
  t.is(dnsStatus(await cluster.status()).tcp?.idleClosed, 1, 'counted');
});
