/**
 * The podwire command writes all of its output to a pipe, however slowly the reader reads,
 * and stops quietly when the reader goes away. `status --json` on a state directory holding
 * a 2,000-pod cluster prints about 300 KB without needing root or a running node.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/cluster.js';
import { cluster } from '../cluster/helpers.js';

const PODS = 2000;
const root = mkdtempSync(join(tmpdir(), 'pw-cli-output-'));
const name = 'bigoutput';

test.before(() => {
  const big = cluster(`
apiVersion: podwire.dev/v1alpha1
kind: Cluster
metadata: {name: ${name}}
spec: {nodes: 10}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${PODS}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
`);
  mkdirSync(join(root, name));
  writeFileSync(join(root, name, 'cluster.json'), JSON.stringify(big));
});

test.after.always(() => rmSync(root, { recursive: true, force: true }));

function startStatus() {
  return spawn(process.execPath, [CLI, 'status', '--name', name, '--state-dir', root, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
}

test('a slow reader of a pipe gets all of status --json, and it parses', async (t) => {
  const child = startStatus();
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const chunks: Buffer[] = [];
  let reading = false;
  child.stdout.on('data', (d: Buffer) => {
    chunks.push(d);
    // A slow reader: a pause after every chunk.
    child.stdout.pause();
    if (reading) setTimeout(() => child.stdout.resume(), 5);
  });
  child.stdout.pause();
  // The reader sleeps while the command finishes writing and wants to exit.
  await new Promise((r) => setTimeout(r, 1500));
  reading = true;
  child.stdout.resume();
  const code = await closed;
  const out = Buffer.concat(chunks).toString('utf8');
  t.is(code, 0, stderr);
  // What a file gets (a file is written synchronously, so it always got everything).
  const file = join(root, 'status.json');
  const fd = openSync(file, 'w');
  spawnSync(process.execPath, [CLI, 'status', '--name', name, '--state-dir', root, '--json'], { stdio: ['ignore', fd, 'ignore'] });
  closeSync(fd);
  const whole = statSync(file).size;
  t.true(whole > 4 * 65536, `${whole} bytes`);
  t.is(Buffer.byteLength(out), whole);
  const parsed = JSON.parse(out) as { pods: unknown[]; nodes: unknown[] };
  t.is(parsed.pods.length, PODS);
  t.is(parsed.nodes.length, 10);
});

test('a reader that goes away does not crash the command: it finishes, with no stack trace', async (t) => {
  const child = startStatus();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0);
  t.is(stderr, '');
});
