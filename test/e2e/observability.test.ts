/**
 * Watching a running cluster as a user would: every node's /metrics read by Debian's
 * promtool and scraped by a real Prometheus server (started here on loopback, with its own
 * data directory), and `podwire capture` streamed live into tcpdump and tshark through a
 * pipe, with the verdicts as packet comments, and a reader too slow for the traffic losing
 * packets (counted) while the pods' traffic goes on unharmed.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const missing = ['promtool', 'prometheus', 'tcpdump', 'tshark'].filter((tool) => spawnSync('which', [tool]).status !== 0);
const skip = kernelSkipReason() ?? (missing.length > 0 ? `needs ${missing.join(', ')} (scripts/setup.sh installs them)` : undefined);
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const pod = (ns: string, name: string, node: number, labels: string, image: string) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {${labels}}}
spec: {nodeName: node-${node}, containers: [{name: c, image: ${image}}]}
---`;

const YAML = `
apiVersion: v1
kind: Namespace
metadata: {name: locked}
---
${pod('default', 'client', 1, 'app: client', 'busybox')}
${pod('default', 'web', 2, 'app: web', 'nginx')}
${pod('locked', 'victim', 1, 'app: victim', 'nginx')}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: locked}
spec: {podSelector: {}, policyTypes: [Ingress]}
`;

const cluster = new TestCluster(`obs${process.pid % 10000}`);
const ips: Record<string, string> = {};
let metricsUrls: string[] = [];
let prometheus: ChildProcess | undefined;
let promDir: string | undefined;

test.before(async () => {
  if (skip !== undefined) return;
  await cluster.up(YAML, ['--seed', '5']);
  const status = await cluster.status();
  for (const p of status.pods) ips[p.name] = p.ip;
  metricsUrls = status.nodes.map((n) => (n.detail as { metrics?: { url: string } } | undefined)?.metrics?.url ?? '');
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
    prometheus.kill('SIGTERM');
    await new Promise((r) => prometheus!.once('exit', r));
  }
  if (promDir !== undefined) rmSync(promDir, { recursive: true, force: true });
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`observability end-to-end skipped: ${skip}`, (t) => t.pass());

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** Quotes `word` for sh. */
const sh = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/**
 * `podwire capture ARGS -w - | READER...` run by sh, so the reader's stdin is a real pipe
 * as in a terminal (tshark refuses a socket there); the capture's pid is written to a file
 * for Ctrl-C.
 */
function capturePipe(args: string[], reader: string[]) {
  const pidFile = join(cluster.stateRoot, `capture-${process.hrtime.bigint()}.pid`);
  const captureArgv = [process.execPath, CLI, 'capture', '--name', cluster.name, '--state-dir', cluster.stateRoot, ...args, '-w', '-'];
  const errFile = `${pidFile}.err`;
  const script = `{ ${captureArgv.map(sh).join(' ')} 2>${sh(errFile)} & echo $! > ${sh(pidFile)}; wait $!; echo $? > ${sh(`${pidFile}.code`)}; } | ${reader.map(sh).join(' ')}`;
  const shell = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let readerErr = '';
  shell.stdout.on('data', (d: Buffer) => (out += d.toString()));
  shell.stderr.on('data', (d: Buffer) => (readerErr += d.toString()));
  const done = new Promise<void>((r) => shell.once('close', () => r()));
  return {
    output: () => out,
    readerErrors: () => readerErr,
    /** Ctrl-C the capture; resolves with its stderr once the reader has read to the end. */
    async stop(): Promise<{ code: number; stderr: string }> {
      const pid = Number(await until('the capture pid', async () => readFileSync(pidFile, 'utf8').trim() || undefined));
      process.kill(pid, 'SIGINT');
      await done;
      return { code: Number(readFileSync(`${pidFile}.code`, 'utf8')), stderr: readFileSync(errFile, 'utf8') };
    },
  };
}

serial("every node's /metrics passes promtool check metrics", async (t) => {
  t.is(metricsUrls.length, 2);
  for (const url of metricsUrls) {
    t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await (await fetch(url)).text();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    t.is(r.status, 0, `${url}: ${r.stdout}${r.stderr}`);
    t.true(text.includes('node_network_receive_packets_total{device='), url);
  }
});

serial('a Prometheus server scrapes the nodes: DNS query rates after dig, hubble_drop_total after a policy drop', async (t) => {
  promDir = mkdtempSync(join(tmpdir(), `pw-e2e-${cluster.name}-prom-`));
  const port = await freePort();
  const targets = metricsUrls.map((u) => new URL(u).host);
  writeFileSync(join(promDir, 'prometheus.yml'), `global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: podwire\n    static_configs: [{targets: [${targets.map((h) => `'${h}'`).join(', ')}]}]\n`);
  prometheus = spawn('prometheus', [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  const api = `http://127.0.0.1:${port}`;
  await until('prometheus ready', async () => ((await fetch(`${api}/-/ready`)).ok ? true : undefined));
  const query = async (q: string): Promise<number | undefined> => {
    const body = (await (await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { value: [number, string] }[] } };
    const v = body.data.result[0]?.value[1];
    return v === undefined ? undefined : Number(v);
  };
  await until('both nodes scraped', async () => ((await query('count(up == 1)')) === 2 ? true : undefined));
  for (let i = 0; i < 4; i++) {
    const r = await cluster.exec('client', ['dig', '+short', `web-${i}.nowhere.default.svc.cluster.local`, 'kubernetes.default.svc.cluster.local']);
    t.is(r.code, 0, r.stderr);
    await sleep(700);
  }
  const rate = await until('a DNS request rate', async () => {
    const v = await query('sum(rate(coredns_dns_requests_total[1m]))');
    return v !== undefined && v > 0 ? v : undefined;
  });
  t.true(rate > 0);
  const denied = await cluster.exec('client', ['curl', '-s', '-m', '2', '-o', '/dev/null', `http://${ips.victim}/`]);
  t.not(denied.code, 0, 'default deny keeps the client out');
  const drops = await until('a policy drop in Prometheus', async () => {
    const v = await query('sum(hubble_drop_total{reason="POLICY_DENIED"})');
    return v !== undefined && v > 0 ? v : undefined;
  });
  t.true(drops >= 1);
  t.true((await query('sum(podwire_drops_total{reason="policy-denied"})'))! >= 1);
});

serial('capture --pod client piped live into tcpdump -r - decodes the ping as it happens', async (t) => {
  const cap = capturePipe(['--pod', 'client'], ['tcpdump', '-r', '-', '-nn', '-l']);
  await sleep(500);
  const ping = await cluster.exec('client', ['ping', '-c', '3', '-i', '0.2', ips.web]);
  t.is(ping.code, 0, ping.stderr);
  // Read while the capture still runs: the stream is live, not written at the end.
  await until('tcpdump printing the echo replies', async () => ((cap.output().match(/ICMP echo reply/g)?.length ?? 0) >= 3 ? true : undefined), 10_000);
  const { code, stderr } = await cap.stop();
  t.is(code, 0, stderr);
  t.is(cap.output().match(new RegExp(`IP ${ips.client.replace(/\./g, '\\.')} > ${ips.web.replace(/\./g, '\\.')}: ICMP echo request`, 'g'))?.length, 3, cap.output());
  t.regex(stderr, /^\d+ packets captured\n0 packets dropped by the node/);
});

serial('tshark reads a filtered node capture from a pipe: HTTP through the VXLAN, and verdicts with the policy drop named', async (t) => {
  const cap = capturePipe(['--node', 'node-1', '--filter', 'tcp port 80 or udp port 4789'], ['tshark', '-r', '-', '-l', '-T', 'fields', '-E', 'separator=|', '-e', 'frame.interface_name', '-e', 'vxlan.vni', '-e', 'http.request.method', '-e', 'frame.comment', '-e', 'tcp.dstport']);
  await sleep(500);
  const ok = await cluster.exec('client', ['curl', '-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${ips.web}/`]);
  t.is(ok.stdout, '200', ok.stderr);
  const denied = await cluster.exec('client', ['curl', '-s', '-m', '1', '-o', '/dev/null', `http://${ips.victim}/`]);
  t.not(denied.code, 0);
  await sleep(500);
  const { code, stderr } = await cap.stop();
  t.is(code, 0, stderr);
  const lines = cap.output().trim().split('\n').map((l) => l.split('|'));
  t.true(lines.some(([iface, vni, method]) => iface === 'default/client' && vni === '' && method === 'GET'), `the GET leaving the client:\n${cap.output()}\n${cap.readerErrors()}\n${stderr}`);
  // tshark takes the copy inside VXLAN for a retransmission of the segment it saw on the pod's interface, so it is known by its port, not as HTTP.
  t.true(lines.some(([iface, vni, , , dport]) => iface === 'vxlan:node-2' && vni === '1' && dport === '80'), `the connection inside VXLAN to node-2:\n${cap.output()}`);
  t.true(lines.some(([iface, , , comment]) => iface === 'default/client' && comment === 'FORWARDED'));
  t.true(lines.some(([iface, , , comment]) => iface === 'default/client' && comment?.startsWith('DROPPED: policy-denied')), cap.output());
});

serial('a reader slower than the traffic loses packets, counted, and the pods never notice', async (t) => {
  const floodArgs = ['ping', '-f', '-c', '3000', '-s', '1400', '-W', '1', ips.web];
  const baselineStart = Date.now();
  t.is((await cluster.exec('client', floodArgs, 60_000)).code, 0);
  const baselineMs = Date.now() - baselineStart;
  const capture = spawn(process.execPath, [CLI, 'capture', '--name', cluster.name, '--state-dir', cluster.stateRoot, '--pod', 'client', '-B', '64', '-w', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  capture.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The reader reads nothing while the traffic flows.
  capture.stdout.pause();
  await sleep(500);
  const started = Date.now();
  const flood = await cluster.exec('client', floodArgs, 60_000);
  const floodMs = Date.now() - started;
  t.is(flood.code, 0, flood.stderr);
  t.regex(flood.stdout, /3000 packets transmitted, 3000 received, 0% packet loss/, 'no pod packet lost to the stalled capture');
  // Then it reads to the end: what was kept is whole.
  const chunks: Buffer[] = [];
  capture.stdout.on('data', (d: Buffer) => chunks.push(d));
  capture.stdout.resume();
  await sleep(1000);
  capture.kill('SIGINT');
  await new Promise((r) => capture.once('close', r));
  const m = /^(\d+) packets captured\n(\d+) packets dropped by the node/.exec(stderr);
  t.truthy(m, stderr);
  const [captured, dropped] = [Number(m![1]), Number(m![2])];
  t.true(dropped > 0, `dropped ${dropped}`);
  t.true(captured > 0 && captured + dropped >= 6000, `${captured} + ${dropped}: every request and reply either kept or counted`);
  const read = spawnSync('tcpdump', ['-r', '-', '-nn', '-q'], { input: Buffer.concat(chunks), encoding: 'utf8' });
  t.is(read.status, 0, read.stderr);
  t.notRegex(read.stderr, /truncated|bogus/i);
  t.log(`3000 flood pings: ${baselineMs} ms without a capture, ${floodMs} ms with the capture stalled; ${captured} captured, ${dropped} dropped`);
});

serial('capture refuses what it cannot do before it starts', async (t) => {
  const nosuch = await cluster.podwire(['capture', '--pod', 'nosuch', '-w', join(cluster.stateRoot, 'x.pcapng')]);
  t.is(nosuch.code, 2);
  t.regex(nosuch.stderr, /pod default\/nosuch is not in cluster/);
  const badFilter = await cluster.podwire(['capture', '--pod', 'client', '--filter', 'host example.com', '-w', '-']);
  t.is(badFilter.code, 2);
  t.regex(badFilter.stderr, /"example.com" is not an IPv4 address/);
  const badIface = await cluster.podwire(['capture', '--node', 'node-1', '--iface', 'eth9', '-w', join(cluster.stateRoot, 'x.pcapng')]);
  t.is(badIface.code, 1);
  t.regex(badIface.stderr, /node-1 has no interface eth9 \(it has: /);
});
