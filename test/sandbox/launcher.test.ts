/**
 * podwire-sandbox on its own, against a network namespace this test makes: the namespaces,
 * the container's filesystem, the credentials, and the launcher's signal and exit-status
 * passing. The cluster-level behaviour is test/e2e/sandbox.test.ts's.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkipReason } from '../helpers/cluster.js';
import { containerCommand, preparePodDirectory, sandboxUnavailable, SANDBOX_BINARY, startPause, type ContainerSandbox, type PauseProcess } from '../../src/sandbox/launcher.js';

const skip = kernelSkipReason() ?? sandboxUnavailable();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const NETNS = `pw-sbx${process.pid % 100000}`;
const root = mkdtempSync(join(tmpdir(), 'pw-sandbox-'));
const podDir = join(root, 'pod');
let pause: PauseProcess | undefined;

const base = (): ContainerSandbox => ({
  initPid: pause!.initPid,
  podDir,
  mounts: [],
  hide: [root],
  uid: 0,
  gid: 0,
  supplementalGroups: [],
  capabilities: [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31],
  noNewPrivileges: false,
  readOnlyRootFilesystem: false,
});

function run(spec: ContainerSandbox, script: string): { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const [cmd, ...args] = containerCommand(spec, ['sh', '-c', script]);
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

test.before(async () => {
  if (skip !== undefined) return;
  spawnSync('ip', ['netns', 'add', NETNS]);
  await preparePodDirectory(podDir, {
    hosts: '127.0.0.1\tlocalhost\n10.9.9.9\tsbx\n',
    resolvConf: 'nameserver 10.96.0.10\n',
    hostname: 'sbx',
    volumes: new Map([
      ['data', { kind: 'files', files: [{ path: 'key', data: Buffer.from('value'), mode: 0o644 }, { path: 'nested/dir/f', data: Buffer.from('deep'), mode: 0o600 }] }],
      ['scratch', { kind: 'emptyDir' }],
    ]),
  });
  pause = await startPause(`/run/netns/${NETNS}`, 'sbx');
});

test.after.always(() => {
  if (skip !== undefined) return;
  if (pause !== undefined) {
    pause.process.kill('SIGKILL');
    // Its init holds the pause's stderr: should it outlive the pause, the pipe must not keep this worker alive.
    try {
      process.kill(pause.initPid, 'SIGKILL');
    } catch {
      // Gone with the pause, as it should be.
    }
    pause.process.stdout?.destroy();
    pause.process.stderr?.destroy();
  }
  spawnSync('ip', ['netns', 'del', NETNS]);
  rmSync(root, { recursive: true, force: true });
});

if (skip !== undefined) test(`sandbox launcher tests skipped: ${skip}`, (t) => t.pass());

test('the command line names every setting once, and a container needs a command', (t) => {
  const spec: ContainerSandbox = { initPid: 42, podDir: '/p', mounts: [{ source: '/p/volumes/v', target: '/data', readOnly: true }], hide: ['/srv/state'], uid: 1000, gid: 2000, supplementalGroups: [3, 4], capabilities: [], noNewPrivileges: true, readOnlyRootFilesystem: true, workingDir: '/w' };
  t.deepEqual(containerCommand(spec, ['sleep', '1'], '/bin/sbx'), [
    '/bin/sbx', 'run', '--pause', '42', '--pod-dir', '/p', '--mount', '/p/volumes/v:/data:ro', '--hide', '/srv/state',
    '--uid', '1000', '--gid', '2000', '--groups', '3,4', '--caps', 'none', '--no-new-privs', '--read-only-root', '--workdir', '/w', '--', 'sleep', '1',
  ]);
  t.throws(() => containerCommand(spec, []), { message: /needs a command/ });
});

serial('the pod directory: private, with world-writable tmp and shm, files with their modes, no escape', async (t) => {
  t.is(statSync(podDir).mode & 0o777, 0o700);
  t.is(statSync(join(podDir, 'tmp')).mode & 0o7777, 0o1777);
  t.is(statSync(join(podDir, 'volumes', 'data', 'nested', 'dir', 'f')).mode & 0o777, 0o600);
  t.is(statSync(join(podDir, 'volumes', 'scratch')).mode & 0o777, 0o777);
  const other = join(root, 'escape');
  await t.throwsAsync(preparePodDirectory(other, { hosts: '', resolvConf: '', hostname: 'x', volumes: new Map([['v', { kind: 'files', files: [{ path: '../../x', data: Buffer.from(''), mode: 0o644 }] }]]) }), { message: /leaves the volume/ });
});

serial('the pod has its own hostname, network, PID 1 and /etc files', (t) => {
  const r = run(base(), 'hostname; cat /proc/1/comm; ip -o link | wc -l; cat /etc/hosts /etc/resolv.conf /etc/hostname; echo $$');
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines[0], 'sbx');
  t.is(lines[1], 'pause');
  t.is(lines[2], '1', 'only lo: the pod\'s own network namespace');
  t.deepEqual(lines.slice(3, 7), ['127.0.0.1\tlocalhost', '10.9.9.9\tsbx', 'nameserver 10.96.0.10', 'sbx']);
  t.true(Number(lines[7]) > 1 && Number(lines[7]) < 100, `a small pid in the pod's namespace: ${lines[7]}`);
});

serial('the host\'s state is out of reach and writes stay in the container', (t) => {
  const r = run(base(), `ls ${root} 2>&1; ls /run; test -e /run/netns && echo netns; echo x > /usr/pw-probe && cat /usr/pw-probe; cat /proc/sys/kernel/hostname; echo 1 > /proc/sysrq-trigger || echo sysrq-denied; cat /proc/kcore | wc -c`);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^ls: .*${root.replaceAll('/', '\\/')}.*No such file`, 'm'), 'the test root (the pod directory\'s parent) is hidden');
  t.notRegex(r.stdout, /^netns$/m);
  t.regex(r.stdout, /^x$/m);
  t.false(existsSync('/usr/pw-probe'), 'the write landed in the overlay, not on the host');
  t.regex(r.stdout, /^sysrq-denied$/m);
  t.regex(r.stdout, /^0$/m, '/proc/kcore is masked');
});

serial('volumes at their paths: read-only ones refuse writes, an emptyDir is shared by the pod', (t) => {
  const spec = { ...base(), mounts: [{ source: join(podDir, 'volumes', 'data'), target: '/etc/data', readOnly: true }, { source: join(podDir, 'volumes', 'scratch'), target: '/scratch', readOnly: false }] };
  const r = run(spec, 'cat /etc/data/key; echo; cat /etc/data/nested/dir/f; echo; touch /etc/data/new 2>/dev/null || echo ro; echo shared > /scratch/s; echo tmp > /tmp/t');
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['value', 'deep', 'ro']);
  t.is(readFileSync(join(podDir, 'volumes', 'scratch', 's'), 'utf8'), 'shared\n');
  t.is(run(base(), 'cat /tmp/t').stdout, 'tmp\n', "/tmp is the pod's, seen by its next container");
});

serial("a mount path through a symlink is resolved inside the container, never on the host", (t) => {
  // /var/run is a symlink to /run: the volume lands in the container's /run, and nothing is made on the host.
  t.false(existsSync('/run/pw-sandbox-probe'));
  const spec = { ...base(), mounts: [{ source: join(podDir, 'volumes', 'data'), target: '/var/run/pw-sandbox-probe/data', readOnly: true }] };
  const r = run(spec, 'cat /run/pw-sandbox-probe/data/key');
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'value');
  t.false(existsSync('/run/pw-sandbox-probe'), 'no directory appeared on the host');
});

serial('the user, groups, capabilities, no_new_privs and a read-only root', (t) => {
  const spec = { ...base(), uid: 1000, gid: 2000, supplementalGroups: [3000], capabilities: [], noNewPrivileges: true, readOnlyRootFilesystem: true };
  const r = run(spec, 'id -u; id -g; id -G; grep -E "^(CapBnd|CapEff|NoNewPrivs)" /proc/self/status; touch /x 2>/dev/null || echo ro-root; touch /tmp/ok && echo tmp-ok');
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['1000', '2000', '2000 3000', 'CapEff:\t0000000000000000', 'CapBnd:\t0000000000000000', 'NoNewPrivs:\t1', 'ro-root', 'tmp-ok']);
  const rootSpec = run(base(), 'grep -E "^(CapBnd|CapEff)" /proc/self/status');
  t.deepEqual(rootSpec.stdout.trim().split('\n'), ['CapEff:\t00000000a80425fb', 'CapBnd:\t00000000a80425fb'], "containerd's default set for root");
  const noSysAdmin = run(base(), 'nsenter -t 1 -u true 2>&1 || echo denied');
  t.regex(noSysAdmin.stdout, /denied/);
});

serial('the launcher exits as its container: exit codes, 127 for a missing command, death by signal', async (t) => {
  t.is(run(base(), 'exit 3').code, 3);
  const [cmd, ...args] = containerCommand(base(), ['no-such-command-pw']);
  const missing = spawnSync(cmd, args, { encoding: 'utf8' });
  t.is(missing.status, 127);
  t.regex(missing.stderr, /podwire-sandbox: exec no-such-command-pw: No such file or directory/);
  const setupFailed = spawnSync(SANDBOX_BINARY, ['run', '--pause', '999999999', '--pod-dir', podDir, '--', 'true'], { encoding: 'utf8' });
  t.is(setupFailed.status, 125);
  t.regex(setupFailed.stderr, /is the pod's pause running/);
  const usage = spawnSync(SANDBOX_BINARY, ['run', '--uid', 'root'], { encoding: 'utf8' });
  t.is(usage.status, 2);
  t.regex(usage.stderr, /--uid: not a number/);

  // A SIGTERM to the launcher reaches the container once; the container's death by it is the launcher's.
  const [c2, ...a2] = containerCommand(base(), ['sh', '-c', 'trap "echo got-term; exit 143" TERM; echo ready; while :; do sleep 0.05; done']);
  const child = spawn(c2, a2, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  while (!stdout.includes('ready')) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.is(code, 143);
  t.is(stdout.split('got-term').length - 1, 1, stdout);

  const [c3, ...a3] = containerCommand(base(), ['sleep', '30']);
  const sleeper = spawn(c3, a3, { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  sleeper.kill('SIGTERM');
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => sleeper.on('exit', (_c, s) => resolve(s)));
  t.is(signal, 'SIGTERM', 'killed by the signal it was sent, as the kubelet sees a container die');
});

serial('orphans are reaped by the pod\'s init, and killing the pause ends every process of the pod', async (t) => {
  const r = run(base(), 'sh -c "sleep 0.1 &" ; sleep 0.4; ps -e -o stat=,comm= | grep -c "^Z" || true');
  t.is(r.stdout.trim(), '0', 'no zombies left');
  const [cmd, ...args] = containerCommand(base(), ['sleep', '30']);
  const sleeper = spawn(cmd, args, { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const ended = new Promise<void>((resolve) => sleeper.on('exit', () => resolve()));
  const old = pause!;
  old.process.kill('SIGTERM');
  await ended;
  t.pass('the container ended with its pod');
  pause = await startPause(`/run/netns/${NETNS}`, 'sbx');
});

serial("a pause killed the moment it names its init leaves no init behind: the init is armed before it is named", async (t) => {
  for (let i = 0; i < 20; i++) {
    const p = await startPause(`/run/netns/${NETNS}`, 'sbx');
    p.process.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (alive(p.initPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.false(alive(p.initPid), `round ${i}: init ${p.initPid} outlived its pause`);
  }
});

/** Running, as opposed to gone or dead and waiting to be reaped (the host's init reaps orphans when it gets to them). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
