/**
 * What `podwire conntrack` costs a node whose table is full (issue 13, item 6): a one-node
 * cluster, a pod that sends 300,000 one-datagram UDP flows (the table holds 262,144), then
 * the listing into a file while the pod pings through the node every 10 ms. Prints the
 * listing's time and line count, the node's RSS before and at its peak, and ping RTTs during
 * the listing and outside it. As root:
 *
 *   node dist/scripts/measure-conntrack-listing.js [--name NAME]
 *
 * Everything it creates is the cluster's (`pw-NAME-*`, under a temporary state directory),
 * removed with `podwire down` at the end, also when a step fails.
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const { values } = parseArgs({ options: { name: { type: 'string', default: 'ctmeasure' } } });
const name = values.name;
const stateRoot = mkdtempSync(join(tmpdir(), 'pw-measure-'));

const YAML = `apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: server}
spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
`;

function podwireArgs(args: string[]): string[] {
  return [CLI, args[0], '--name', name, '--state-dir', stateRoot, ...args.slice(1)];
}

async function podwire(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, podwireArgs(args), { maxBuffer: 64 << 20 });
  return stdout;
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
}

function quantiles(values: number[]): string {
  if (values.length === 0) return 'none';
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => v[Math.min(v.length - 1, Math.floor(v.length * q))].toFixed(2);
  return `n ${v.length}, p50 ${at(0.5)}, p99 ${at(0.99)}, max ${at(1)} ms`;
}

async function main(): Promise<void> {
  const yaml = join(stateRoot, 'cluster.yaml');
  writeFileSync(yaml, YAML);
  await podwire(['up', '-f', yaml, '--detach']);
  const status = JSON.parse(await podwire(['status', '--json'])) as { nodes: { pid: number }[]; pods: { name: string; ip: string }[] };
  const pid = status.nodes[0].pid;
  const server = status.pods.find((p) => p.name === 'server')!.ip;
  const fill = `
import socket, time
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
n = 0
for s in socks:
    for port in range(1, 52430):
        if n >= 300000: break
        s.sendto(b'x', ('${server}', port)); n += 1
        if n % 100 == 0: time.sleep(0.001)
`;
  let t0 = performance.now();
  await podwire(['exec', 'client', '--', 'python3', '-c', fill]);
  // (-C is new with the streaming listing: a tree from before it reports no count here.)
  const entries = await podwire(['conntrack', 'node-1', '-C']).then((s) => s.trim(), () => '(no -C)');
  process.stdout.write(`filled in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${entries} entries\n`);

  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  const ping = spawn(process.execPath, podwireArgs(['exec', 'client', '--', 'ping', '-D', '-i', '0.01', '-w', '12', server]), { stdio: ['ignore', 'pipe', 'ignore'] });
  let pingOut = '';
  ping.stdout.on('data', (d: Buffer) => (pingOut += d.toString()));
  await new Promise((r) => setTimeout(r, 1000));

  const listingFile = join(stateRoot, 'listing.txt');
  const started = Date.now() / 1000;
  t0 = performance.now();
  const listing = spawn(process.execPath, podwireArgs(['conntrack', 'node-1']), { stdio: ['ignore', 'pipe', 'pipe'] });
  listing.stdout.pipe(createWriteStream(listingFile));
  let footer = '';
  listing.stderr.on('data', (d: Buffer) => (footer += d.toString()));
  const code = await new Promise<number | null>((resolve) => listing.on('close', resolve));
  if (code !== 0) process.stdout.write(`listing failed: ${footer.trim()}\n`);
  const took = (performance.now() - t0) / 1000;
  const ended = Date.now() / 1000;
  await new Promise((resolve) => ping.on('close', resolve));
  clearInterval(sampler);

  const during: number[] = [];
  const outside: number[] = [];
  for (const line of pingOut.split('\n')) {
    const m = /^\[(\d+\.\d+)\].*time=([\d.]+) ms/.exec(line);
    if (m === null) continue;
    const at = Number(m[1]);
    (at >= started && at <= ended + 0.1 ? during : outside).push(Number(m[2]));
  }
  const lines = readFileSync(listingFile, 'utf8').split('\n').length - 1;
  process.stdout.write(`listing: exit ${code} in ${took.toFixed(2)} s, ${lines} lines; ${footer.trim()}\n`);
  process.stdout.write(`node RSS: ${before} MiB before, ${peak} MiB at the peak of the listing\n`);
  process.stdout.write(`ping through the node during the listing: ${quantiles(during)}\n`);
  process.stdout.write(`ping through the node outside it:        ${quantiles(outside)}\n`);
}

main()
  .catch((err: Error) => {
    process.stderr.write(`measure-conntrack-listing: ${err.message}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await podwire(['down']).catch(() => undefined);
    rmSync(stateRoot, { recursive: true, force: true });
  });
