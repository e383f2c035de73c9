/**
 * Every command checks --name by the one rule for cluster names before it touches a path:
 * `status --name ../outside` must not read ../outside/cluster.json.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI } from '../helpers/cluster.js';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'pw-cli-names-'));
const stateRoot = join(root, 'state');

test.before(() => {
  mkdirSync(stateRoot);
  // What a path walk out of the state directory would find.
  mkdirSync(join(root, 'outside'));
  writeFileSync(join(root, 'outside', 'cluster.json'), JSON.stringify({ settings: { name: 'outside' }, nodes: [], pods: [] }));
});
test.after.always(() => rmSync(root, { recursive: true, force: true }));

async function podwire(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Each command with arguments that are otherwise valid, so that only --name is wrong. */
const COMMANDS: ReadonlyArray<readonly string[]> = [
  ['up', '--detach'],
  ['down'],
  ['status'],
  ['status', '--json'],
  ['exec', 'client', '--', 'true'],
  ['outside', '--', 'true'],
  ['rules', 'node-1'],
  ['conntrack', 'node-1'],
  ['trace', 'node-1', '--from', 'client', '--to', '10.96.0.1:443'],
  ['dns', 'kubernetes.default'],
  ['scale', 'deployment/web', '--replicas', '2'],
  ['delete', 'pod', 'client'],
];

for (const [command, ...rest] of COMMANDS) {
  test(`${command} ${rest.join(' ')}: --name ../outside is a usage error, nothing outside the state directory is read`, async (t) => {
    const r = await podwire([command, '--name', '../outside', '--state-dir', stateRoot, ...rest]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /^--name "\.\.\/outside": must be a DNS-1123 label/);
    t.is(r.stdout, '');
  });
}

test('a name the Cluster document may carry (32 characters) is one down accepts; 33 neither accepts', async (t) => {
  const ok = await podwire(['down', '--name', 'c'.repeat(32), '--state-dir', stateRoot]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /was not running/);
  const long = await podwire(['down', '--name', 'c'.repeat(33), '--state-dir', stateRoot]);
  t.is(long.code, 2);
  t.regex(long.stderr, /must be at most 32 characters, got 33/);
  const file = join(root, 'long.yaml');
  writeFileSync(file, `apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nmetadata: {name: ${'c'.repeat(33)}}\n`);
  const up = await podwire(['up', '-f', file, '--state-dir', stateRoot, '--detach']);
  t.is(up.code, 1);
  t.regex(up.stderr, /long\.yaml: document 1 \(Cluster c+\), line 3: metadata\.name: must be at most 32 characters, got 33/);
});
