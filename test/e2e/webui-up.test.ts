/**
 * `podwire up --ui`: the demo in the foreground with its web view, which answers while the
 * cluster runs and goes with it on Ctrl-C.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { CLI, kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;
const cluster = new TestCluster(`webup${process.pid % 10000}`);
let up: ChildProcess | undefined;

test.after.always(async (t) => {
  if (skip !== undefined) return;
  if (up?.pid !== undefined && up.exitCode === null) up.kill('SIGKILL');
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`up --ui end-to-end skipped: ${skip}`, (t) => t.pass());

serial('up --ui serves the map while the cluster runs, and Ctrl-C takes page and cluster down', async (t) => {
  const child = spawn(process.execPath, [CLI, 'up', '--name', cluster.name, '--state-dir', cluster.stateRoot, '--ui', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  up = child;
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /web view: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m !== null) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`up exited (${code}): ${out}`)));
  });
  const map = JSON.parse(spawnSync('curl', ['-s', '-m', '5', `${url}api/cluster`], { encoding: 'utf8' }).stdout) as { nodes: { pods: unknown[] }[] };
  t.is(map.nodes.length, 2);
  t.is(map.nodes.flatMap((n) => n.pods).length, 4);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  t.is(await exited, 0, out);
  t.regex(out, /cluster webup\d+ removed/);
  t.not(spawnSync('curl', ['-s', '-m', '2', `${url}api`]).status, 0, 'the page is gone with the cluster');
});
