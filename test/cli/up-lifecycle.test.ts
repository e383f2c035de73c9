/**
 * `podwire up` against the kernel: Ctrl-C at any moment of startup (once or twice, sent to
 * the process group as a terminal sends it) leaves nothing of the cluster behind; two ups of
 * one name at once get one cluster and a clear "being started"; a cluster whose name hashes
 * to another's loopback addresses moves to free ones; the state directory is private.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterIndex } from '../../src/cluster/ipam.js';
import type { Cluster } from '../../src/cluster/model.js';
import { clusterLinkPrefix } from '../../src/node/names.js';
import { CLI, kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;
if (skip !== undefined) test(`up lifecycle skipped: ${skip}`, (t) => t.pass());

const tag = process.pid % 10000;
const yaml = (nodes: number) => `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: ${nodes}}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {nodeName: node-${nodes}, containers: [{name: web, image: nginx}]}
`;

const made: TestCluster[] = [];
function newCluster(name: string): TestCluster {
  const c = new TestCluster(name);
  made.push(c);
  return c;
}

test.after.always(async (t) => {
  if (skip !== undefined) return;
  for (const c of made) {
    await c.teardown();
    t.deepEqual(c.leftovers(), [], `nothing of ${c.name} is left`);
  }
});

/** `podwire up` (foreground) in its own process group, the way a terminal runs it. */
function startUp(c: TestCluster, extra: string[] = []): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const file = join(c.stateRoot, 'cluster.yaml');
  if (!existsSync(file)) writeFileSync(file, yaml(2));
  const child = spawn(process.execPath, [CLI, 'up', '--name', c.name, '--state-dir', c.stateRoot, '-f', file, ...extra], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

async function waitFor(output: () => string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(output())) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${output()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Everything of the cluster still there: namespaces, links, processes, state files. */
function remains(c: TestCluster, index: number): string[] {
  const prefix = clusterLinkPrefix(index);
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter((l): l is string => l !== undefined && l.startsWith(prefix) && l.length === 10);
  const state = readdirSync(c.stateRoot).filter((e) => e === c.name || e.startsWith(`${c.name}.`) || e.startsWith(`.${c.name}.`));
  return [...c.leftovers(), ...links.map((l) => `link ${l}`), ...state.map((e) => `state ${e}`)];
}

function readIndex(c: TestCluster): number {
  return (JSON.parse(readFileSync(join(c.stateRoot, c.name, 'cluster.json'), 'utf8')) as Cluster).settings.clusterIndex;
}

// Moments of startup: state written, the outside world and first node starting, pods
// coming up, and the cluster running in the foreground.
const MOMENTS: ReadonlyArray<readonly [string, RegExp, number]> = [
  ['just after the state is written', /cluster \S+: 2 nodes/, 130],
  ['while the nodes start', /started node-1/, 130],
  ['while pods become ready', /0\/2 pods ready/, 130],
  ['once it runs in the foreground', /Ctrl-C tears the cluster down/, 0],
];

MOMENTS.forEach(([moment, line, code], i) => {
  for (const twice of [false, true]) {
    serial(`Ctrl-C${twice ? ' twice' : ''} ${moment} tears down everything that was started`, async (t) => {
      const c = newCluster(`int${i}${twice ? 'd' : 's'}${tag}`);
      const up = startUp(c);
      await waitFor(up.output, line);
      const index = readIndex(c);
      process.kill(-up.child.pid!, 'SIGINT');
      if (twice) {
        await new Promise((r) => setTimeout(r, 10));
        try {
          process.kill(-up.child.pid!, 'SIGINT');
        } catch (err) {
          // Done before the second: a teardown of this little takes milliseconds.
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
      t.is(await up.exited, code, up.output());
      t.deepEqual(remains(c, index), [], up.output());
    });
  }
});

serial('Ctrl-C tears down also when the reader of up\'s output died first (up | tee, and the same Ctrl-C ended tee)', async (t) => {
  const c = newCluster(`intpipe${tag}`);
  const up = startUp(c);
  await waitFor(up.output, /Ctrl-C tears the cluster down/);
  const index = readIndex(c);
  up.child.stdout!.destroy();
  process.kill(up.child.pid!, 'SIGINT');
  t.is(await up.exited, 0, up.output());
  t.deepEqual(remains(c, index), [], up.output());
});

serial('two ups of one name at once: one cluster, and the other says it is being started', async (t) => {
  const c = newCluster(`twice${tag}`);
  const first = startUp(c, ['--detach']);
  await waitFor(first.output, /cluster \S+: 2 nodes/);
  // Frozen while it holds the start lock, as a slow start would be.
  process.kill(first.child.pid!, 'SIGSTOP');
  const second = await c.podwire(['up', '-f', join(c.stateRoot, 'cluster.yaml'), '--detach']);
  process.kill(first.child.pid!, 'SIGCONT');
  t.is(second.code, 1, second.stdout + second.stderr);
  t.regex(second.stderr, new RegExp(`^cluster ${c.name} is being started \\(by podwire up, pid ${first.child.pid}\\)`));
  t.is(await first.exited, 0, first.output());
  const status = await c.status();
  t.true(status.pods.every((p) => p.ready));
  t.false(existsSync(join(c.stateRoot, `${c.name}.lock`)), 'the lock is released once the cluster runs');
  const again = await c.podwire(['up', '-f', join(c.stateRoot, 'cluster.yaml'), '--detach']);
  t.is(again.code, 2);
  t.regex(again.stderr, /is already running/);
});

serial('a lock left by a dead up, or holding a pid that is no podwire, is taken over', async (t) => {
  const c = newCluster(`stale${tag}`);
  writeFileSync(join(c.stateRoot, 'cluster.yaml'), yaml(1));
  const dead = spawn('true');
  await new Promise((r) => dead.on('close', r));
  writeFileSync(join(c.stateRoot, `${c.name}.lock`), `${dead.pid}\n`);
  await c.up(readFileSync(join(c.stateRoot, 'cluster.yaml'), 'utf8'));
  t.false(existsSync(join(c.stateRoot, `${c.name}.lock`)));
  await c.podwire(['down']);
  writeFileSync(join(c.stateRoot, `${c.name}.lock`), '1\n'); // init: alive, but no podwire
  await c.up(readFileSync(join(c.stateRoot, 'cluster.yaml'), 'utf8'));
  t.pass();
});

serial('a cluster whose name hashes to a running cluster\'s underlay gets free addresses and both run', async (t) => {
  const a = newCluster(`hash${tag}`);
  let other = '';
  for (let i = 0; other === ''; i++) if (clusterIndex(`h${i}x${tag}`) === clusterIndex(a.name)) other = `h${i}x${tag}`;
  const b = newCluster(other); // its own state root: only the bind probe can see a
  await a.up(yaml(2));
  const r = await b.up(yaml(2));
  t.regex(r.stdout, new RegExp(`underlay 127\\.77\\.${clusterIndex(a.name)}\\.0/24 is held by a socket bound to 127\\.77\\.${clusterIndex(a.name)}\\.1:4789; trying the next`));
  const [sa, sb] = [await a.status(), await b.status()];
  t.true(sa.nodes.every((n) => n.state === 'up') && sb.nodes.every((n) => n.state === 'up'));
  t.not(sb.nodes[0].underlay, sa.nodes[0].underlay);
  t.is(sb.nodes[0].underlay, `127.77.${readIndex(b)}.1`);
  const webB = await b.podIp('web');
  const curl = await b.exec('client', ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${webB}/`]);
  t.is(curl.stdout, '200');
  const indexB = readIndex(b);
  await b.podwire(['down']);
  t.deepEqual(remains(b, indexB), []);
  t.true((await a.status()).nodes.every((n) => n.state === 'up'), 'down of the other cluster leaves this one running');
});

serial('down and up of cluster "a" leave cluster "a-b" alone, though its namespaces begin with pw-a-', async (t) => {
  const longer = newCluster(`pfx${tag}-b`);
  const shorter = newCluster(`pfx${tag}`);
  await longer.up(yaml(2));
  const before = longer.leftovers();
  t.true(before.some((n) => n === `pw-${longer.name}-default-web`), before.join(', '));
  const down = await shorter.podwire(['down']);
  t.is(down.code, 0, down.stderr);
  t.regex(down.stdout, /was not running/);
  t.deepEqual(longer.leftovers(), before);
  await shorter.up(yaml(2));
  for (const c of [longer, shorter]) {
    const curl = await c.exec('client', ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${await c.podIp('web')}/`]);
    t.is(curl.stdout, '200', `${c.name}: ${curl.stderr}`);
  }
  const again = await shorter.podwire(['down']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(longer.leftovers(), before, 'only the shorter cluster went');
  t.deepEqual(shorter.leftovers().filter((n) => !n.startsWith(`pw-${longer.name}-`)), []);
});

serial('the state directory is private: 0700, its files 0600, and a local user reads nothing', async (t) => {
  const c = newCluster(`priv${tag}`);
  chmodSync(c.stateRoot, 0o755); // as /run/podwire is: only the cluster's own modes protect it
  await c.up(yaml(1));
  const dir = join(c.stateRoot, c.name);
  const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
  t.is(mode(dir), '700');
  t.is(mode(join(dir, 'logs')), '700');
  for (const file of ['cluster.json', 'node-1.pid', 'logs/node-1.log']) t.is(mode(join(dir, file)), '600', file);
  const user = `pwu${tag}`;
  execFileSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', user]);
  try {
    for (const path of [join(dir, 'cluster.json'), join(dir, 'logs', 'node-1.log')]) {
      const read = spawnAs(user, ['cat', path]);
      t.not(read.status, 0, `${user} read ${path}`);
      t.regex(read.stderr, /Permission denied/);
    }
  } finally {
    execFileSync('userdel', [user]);
  }
});

function spawnAs(user: string, argv: string[]): { status: number | null; stderr: string } {
  try {
    execFileSync('runuser', ['-u', user, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    return { status: 0, stderr: '' };
  } catch (err) {
    const e = err as { status: number | null; stderr: string };
    return { status: e.status, stderr: e.stderr };
  }
}
