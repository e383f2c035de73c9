/**
 * Empty or malformed positional arguments and option values are usage errors, by the same
 * rules the cluster's own names follow, before any node is asked anything (`podwire dns ''`
 * used to ask for the root and wait 3 s; here, with no node running, it would fail to
 * connect with code 1).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { demoFiles } from '../../src/cluster/demo.js';
import { loadCluster } from '../../src/cluster/load.js';
import { seededRandom } from '../../src/cluster/random.js';
import { UNIX_SOCKET_PATH_MAX } from '../../src/node/names.js';
import { CLI } from '../helpers/cluster.js';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'pw-cli-args-'));
// Its own name: were a check missing, `up x.yaml` would start a cluster and `down x` bring
// one down, and only this test's cluster may be the one.
const name = `args${process.pid % 10000}`;

test.before(() => {
  // A cluster as up leaves it in the state directory; its nodes are not running.
  const r = loadCluster(demoFiles(), { random: seededRandom(1), name });
  if (!r.ok) throw new Error('demo does not load');
  mkdirSync(join(root, name));
  writeFileSync(join(root, name, 'cluster.json'), JSON.stringify(r.cluster));
});
test.after.always(async () => {
  await podwire(['down', '--name', name, '--state-dir', root]);
  rmSync(root, { recursive: true, force: true });
});

async function podwire(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const CASES: ReadonlyArray<readonly [readonly string[], RegExp]> = [
  [['dns', ''], /^podwire dns: NAME and TYPE must not be empty/],
  [['dns', 'kubernetes', ''], /^podwire dns: NAME and TYPE must not be empty/],
  [['dns', '--node', '', 'kubernetes'], /^podwire dns: --node "": must not be empty/],
  [['dns', '--node', 'node-9', 'kubernetes'], /^node node-9 is not in cluster args\d+ \(nodes: node-1, node-2\)/],
  [['exec', '', '--', 'true'], /^podwire exec: POD "": must not be empty/],
  [['exec', '-n', '', 'client', '--', 'true'], /^podwire exec: -n "": must not be empty/],
  [['exec', 'Client', '--', 'true'], /^podwire exec: POD "Client": must be a DNS-1123 subdomain/],
  [['rules', ''], /^podwire rules: NODE "": must not be empty/],
  [['trace', '', '--from', 'client', '--to', '10.96.0.1:443'], /^podwire trace: NODE "": must not be empty/],
  [['trace', 'node-1', '--from', '', '--to', '10.96.0.1:443'], /^podwire trace: --from "": must not be empty/],
  [['trace', 'node-1', '--from', 'client', '-n', ' ', '--to', '10.96.0.1:443'], /^podwire trace: -n " ": must be a DNS-1123 label/],
  [['delete', 'pod', ''], /^podwire delete: (pod "": must not be empty|usage)/],
  [['delete', 'pod/'], /^podwire delete: usage/],
  [['scale', 'deployment/deploy-nginx', '--replicas', ''], /^podwire scale: usage/],
  [['scale', 'deployment/deploy-nginx', '--replicas', ' 3'], /^podwire scale: usage/],
  [['scale', 'deployment/deploy-nginx', '-n', '', '--replicas', '3'], /^podwire scale: -n "": must not be empty/],
  [['up', '--seed', '', '--detach'], /^--seed : not an integer/],
  [['restart-node', ''], /^podwire restart-node: NODE "": must not be empty/],
  [['down', 'mycluster'], /^podwire down: unexpected argument "mycluster" \(down takes options only; a cluster is named with --name NAME\)/],
  [['status', 'mycluster'], /^podwire status: unexpected argument "mycluster"/],
  [['status', '--', 'x'], /^podwire status: unexpected argument "x"/],
  [['up', 'cluster.yaml', '--detach'], /^podwire up: unexpected argument "cluster.yaml" \(up takes options only; files are given with -f FILE/],
  [['restart-node', 'node-9'], /^node node-9 is not in cluster args\d+/],
];

for (const [args, message] of CASES) {
  test(`podwire ${args.map((a) => JSON.stringify(a)).join(' ')} is a usage error, before any node is asked`, async (t) => {
    const r = await podwire([args[0], '--name', name, '--state-dir', root, ...args.slice(1)]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
  });
}

test('a --state-dir too long for the nodes\' Unix sockets is a usage error before anything starts', async (t) => {
  const long = join(root, 'd'.repeat(UNIX_SOCKET_PATH_MAX - root.length - 20));
  const r = await podwire(['up', '--name', name, '--state-dir', long, '--detach']);
  t.is(r.code, 2, r.stdout + r.stderr);
  t.regex(r.stderr, new RegExp(`^--state-dir ${long}: node node-1's socket .*node-1\\.(dns\\.)?sock would be \\d+ bytes, a Unix socket path holds at most ${UNIX_SOCKET_PATH_MAX}`));
  t.is(r.stdout, '');
});
