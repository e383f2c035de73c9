/**
 * Node lifecycle end to end, the node lifecycle controller's job: a node process that stops
 * renewing its lease (frozen by SIGSTOP, or killed by SIGKILL) becomes NotReady after the
 * grace period, its pods' endpoints leave the Service on the surviving node (established
 * connections to the survivor's pods carry on), and a frozen node whose lease renews again
 * brings its pods back into the Service.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, kernelSkipReason, TestCluster, type StatusJson } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const GRACE_SECONDS = 3;

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2, nodeGracePeriodSeconds: ${GRACE_SECONDS}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
`;

/** What `status --json` says about a node's health, beyond the shared helper's fields. */
type LifecycleStatus = Omit<StatusJson, 'nodes'> & {
  nodes: (StatusJson['nodes'][number] & { ready: boolean; leaseAgeSeconds?: number; detail?: { lifecycle: { readyNodes: string[] } } })[];
};

const cluster = new TestCluster(`nlc${process.pid % 10000}`);
/** node-2's command line, read before it is killed, to start it again as `up` did. */
let node2Argv: string[] = [];
/** Node processes this test froze, so teardown can thaw them even when a check failed. */
const frozen = new Set<number>();

test.before(async () => {
  if (skip === undefined) await cluster.up(YAML, ['--seed', '3']);
});

test.after.always(async (t) => {
  if (skip === undefined) {
    for (const pid of frozen) signal(pid, 'SIGCONT');
    await cluster.teardown();
    t.deepEqual(cluster.leftovers(), []);
  }
});

if (skip !== undefined) test(`node lifecycle end-to-end skipped: ${skip}`, (t) => t.pass());

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** The node's process, from the state directory, checked to be that node's podwire process. */
function nodePid(node: string): number {
  const pid = Number(readFileSync(join(cluster.stateRoot, cluster.name, `${node}.pid`), 'utf8').trim());
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (!argv.some((a) => a.endsWith('node/main.js')) || argv[argv.indexOf('--node') + 1] !== node) {
    throw new Error(`pid ${pid} is not ${node}'s node process: ${argv.join(' ')}`);
  }
  return pid;
}

async function status(): Promise<LifecycleStatus> {
  return (await cluster.status()) as LifecycleStatus;
}

async function waitFor(what: string, ok: (s: LifecycleStatus) => boolean, timeoutMs: number): Promise<LifecycleStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status();
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(s.nodes.map((n) => [n.name, n.state, n.ready, n.leaseAgeSeconds]))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Which pod answered each of `n` requests in a row from the client (FAILED for a failure). */
async function backends(n: number): Promise<string[]> {
  const r = await cluster.exec('client', ['sh', '-c', `for i in $(seq ${n}); do curl -s -m 2 http://web/ | grep 'pod name:' || echo FAILED; done`], 180_000);
  return r.stdout.trim().split('\n').map((l) => l.replace(/.*pod name:\s*/, '').trim());
}

const nodeOf = (s: LifecycleStatus, pod: string) => s.pods.find((p) => p.name === pod)?.node;
const node = (s: LifecycleStatus, name: string) => s.nodes.find((n) => n.name === name)!;
/**
 * Status says node-2 is NotReady and node-1, which judges leases on its own timer (a
 * quarter of the grace period), has taken node-2's pods out of its Services.
 */
const node2Gone = (s: LifecycleStatus) => !node(s, 'node-2').ready && node(s, 'node-1').detail?.lifecycle.readyNodes.includes('node-2') === false;
/** Grace, then at most one judgement tick of node-1, and the time the status command takes. */
const NOT_READY_WITHIN_MS = GRACE_SECONDS * 1000 + 5000;

serial('before any fault both nodes are Ready with a fresh lease, and the Service reaches pods on both', async (t) => {
  const s = await status();
  for (const n of s.nodes) {
    t.true(n.ready, `${n.name} Ready`);
    t.true(n.leaseAgeSeconds !== undefined && n.leaseAgeSeconds < GRACE_SECONDS, `${n.name} lease age ${String(n.leaseAgeSeconds)}`);
  }
  const answers = await backends(20);
  t.false(answers.includes('FAILED'), answers.join(','));
  t.deepEqual([...new Set(answers.map((p) => nodeOf(s, p)))].sort(), ['node-1', 'node-2']);
});

serial('a frozen node becomes NotReady after the grace period and leaves the Service; thawed, its pods rejoin', async (t) => {
  const pid = nodePid('node-2');
  frozen.add(pid);
  signal(pid, 'SIGSTOP');
  try {
    const frozenAt = Date.now();
    const s = await waitFor('node-2 NotReady, also for node-1', node2Gone, NOT_READY_WITHIN_MS);
    t.true(Date.now() - frozenAt >= GRACE_SECONDS * 1000 - 1000, 'not before the grace period (less a renewal interval)');
    const answers = await backends(40);
    t.deepEqual(answers.filter((p) => nodeOf(s, p) !== 'node-1'), [], 'all 40 answered by node-1 pods');
  } finally {
    signal(pid, 'SIGCONT');
    frozen.delete(pid);
  }
  await waitFor('node-2 Ready again with its pods', (x) => node(x, 'node-2').ready && x.pods.every((p) => p.ready), (GRACE_SECONDS + 20) * 1000);
  const s = await status();
  const back = await backends(40);
  t.false(back.includes('FAILED'), back.join(','));
  t.true(back.some((p) => nodeOf(s, p) === 'node-2'), `node-2 pods serve again: ${back.join(',')}`);
});

/**
 * Keep-alive HTTP connections from the client through the Service, each to a pod of node-1
 * (a new connection is made until one lands there), as a space-separated line of the pods
 * they reached. Every 0.5 s each asks again (the echo server closes a connection idle for
 * 5 s); the script stops with CHANGED or a traceback when an answer differs or fails, and
 * `ask()` prints what they answer now. Four of them, so that a change that broke
 * established flows (each would then pick one of node-1's two pods anew) shows in all but
 * one run of 16.
 */
async function connectionsToNode1(s: LifecycleStatus): Promise<{ first: string; ask: () => Promise<string>; close: () => void }> {
  const node1Pods = s.pods.filter((p) => p.node === 'node-1' && p.name.startsWith('web-')).map((p) => p.name);
  const script = `
import http.client, select, sys
wanted = set(sys.argv[1:])
def ask(c):
    c.request('GET', '/'); body = c.getresponse().read().decode()
    return [l.split(':',1)[1].strip() for l in body.splitlines() if 'pod name' in l][0]
kept = []
for attempt in range(100):
    c = http.client.HTTPConnection('web', 80, timeout=5)
    if ask(c) in wanted: kept.append(c)
    else: c.close()
    if len(kept) == 4: break
first = ' '.join(ask(c) for c in kept)
print(first, flush=True)
while True:
    readable, _, _ = select.select([sys.stdin], [], [], 0.5)
    now = ' '.join(ask(c) for c in kept)
    if now != first:
        print('CHANGED ' + now, flush=True)
        sys.exit(1)
    if readable:
        if sys.stdin.readline() == '': break
        print(now, flush=True)
`;
  const child = spawn(process.execPath, [CLI, 'exec', '--name', cluster.name, '--state-dir', cluster.stateRoot, 'client', '--', 'python3', '-c', script, ...node1Pods], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let errors = '';
  child.stdout.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr.on('data', (d: Buffer) => (errors += d.toString()));
  const next = async (): Promise<string> => {
    const deadline = Date.now() + 15_000;
    while (lines.length === 0) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no answer on the kept connections: ${errors}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return lines.shift()!;
  };
  const first = await next();
  return {
    first,
    ask: async () => {
      child.stdin.write('\n');
      return next();
    },
    close: () => child.stdin.end(),
  };
}

serial('a SIGKILLed node becomes NotReady, its pods not ready, and 40 requests in a row all succeed; connections to node-1 carry on', async (t) => {
  const before = await status();
  const kept = await connectionsToNode1(before);
  try {
    const reached = kept.first.split(' ');
    t.is(reached.length, 4);
    t.deepEqual(reached.filter((p) => nodeOf(before, p) !== 'node-1'), [], `the kept connections reached ${kept.first}`);
    const pid = nodePid('node-2');
    node2Argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    process.kill(pid, 'SIGKILL');
    const s = await waitFor('node-2 NotReady, also for node-1', node2Gone, NOT_READY_WITHIN_MS);
    t.is(node(s, 'node-2').state, 'down');
    t.true(node(s, 'node-1').ready);
    const onNode2 = s.pods.filter((p) => p.node === 'node-2');
    t.true(onNode2.length > 0);
    t.deepEqual(onNode2.filter((p) => p.ready), [], 'node-2 pods not ready');
    const answers = await backends(40);
    t.is(answers.length, 40);
    t.deepEqual(answers.filter((p) => p === 'FAILED' || nodeOf(s, p) !== 'node-1'), [], 'all 40 answered by node-1 pods');
    const text = await cluster.podwire(['status']);
    t.regex(text.stdout, /node-2\s+Down\s+NotReady/);
    t.is(await kept.ask(), kept.first, 'established connections keep their backends across the endpoint change');
  } finally {
    kept.close();
  }
});

serial('a restarted node renews its lease again: its pods rejoin with their IPs, and no request fails meanwhile', async (t) => {
  if (node2Argv.length === 0) return t.fail('node-2 was not killed by the test before');
  const before = await status();
  // Requests run on while node-2 comes up: none may reach a pod of it that is not serving yet.
  const during = backends(150);
  await new Promise((r) => setTimeout(r, 300));
  // Started as `podwire up` starts a node (detached, logging to its log, its pid recorded),
  // so `podwire down` in teardown ends it like the others.
  const stateDir = join(cluster.stateRoot, cluster.name);
  const log = openSync(join(stateDir, 'logs', 'node-2.log'), 'a');
  const child = spawn(node2Argv[0]!, node2Argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  writeFileSync(join(stateDir, 'node-2.pid'), `${child.pid}\n`);
  const answers = await during;
  t.deepEqual(answers.filter((a) => a === 'FAILED'), [], `${answers.filter((a) => a === 'FAILED').length} of ${answers.length} failed`);
  const after = await waitFor('node-2 Ready with its pods', (x) => node(x, 'node-2').ready && x.pods.every((p) => p.ready) && node(x, 'node-1').detail?.lifecycle.readyNodes.includes('node-2') === true, 30_000);
  t.deepEqual(
    after.pods.map((p) => [p.name, p.ip]),
    before.pods.map((p) => [p.name, p.ip]),
    'the same pods with the same IPs',
  );
  const back = await backends(40);
  t.false(back.includes('FAILED'), back.join(','));
  t.true(back.some((p) => nodeOf(after, p) === 'node-2'), `node-2 pods serve again: ${back.join(',')}`);
});

serial('a node stopped gracefully (SIGTERM) takes its pods out of the Services at once, not after the grace period', async (t) => {
  const pid = nodePid('node-2');
  process.kill(pid, 'SIGTERM');
  // Well inside the grace period: node-2's lease is still fresh, node-2 still counts as Ready.
  await new Promise((r) => setTimeout(r, 500));
  const answers = await backends(20);
  const s = await status();
  t.deepEqual(answers.filter((p) => p === 'FAILED' || nodeOf(s, p) !== 'node-1'), [], 'all 20 answered by node-1 pods');
});
