/**
 * `podwire conntrack` end to end: real flows from a pod (python3, ping, curl) fill a node's
 * table, and the real CLI lists them with conntrack-tools' filters and -C, through a pipe,
 * also to a reader that stops reading for a while.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { CLI, kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const YAML = `
apiVersion: podwire.dev/v1alpha1
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

const cluster = new TestCluster(`ct${process.pid % 10000}`);
let client = '';
let server = '';

test.before(async () => {
  if (skip !== undefined) return;
  await cluster.up(YAML);
  client = await cluster.podIp('client');
  server = await cluster.podIp('server');
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), [], 'podwire down leaves nothing behind');
});

if (skip !== undefined) test(`conntrack end-to-end skipped: ${skip}`, (t) => t.pass());

const FOOTER = /^conntrack v1\.4\.7 \(conntrack-tools\): (\d+) flow entries have been shown\.\n$/;

/**
 * `count` UDP flows from the client pod to the server, one datagram each to destination
 * ports first .. first + count - 1 from one source port; paced so that no queue on the way
 * drops one. Each becomes an UNREPLIED entry that lives 30 s, so a test sends its own.
 */
async function udpFlows(first: number, count: number): Promise<number> {
  const script = `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('', 0))
for i in range(${count}):
    s.sendto(b'x', ('${server}', ${first} + i))
    if i % 50 == 49: time.sleep(0.002)
print(s.getsockname()[1])
`;
  const r = await cluster.exec('client', ['python3', '-c', script], 60_000);
  if (r.code !== 0) throw new Error(`python3: ${r.stderr}`);
  return Number(r.stdout.trim());
}

async function conntrack(...args: string[]) {
  return cluster.podwire(['conntrack', 'node-1', ...args]);
}

serial('filters select what conntrack -L would, -C counts, and the footer is conntrack-tools\'', async (t) => {
  const flows = 3000;
  const sport = await udpFlows(20_000, flows);

  const mine = await conntrack('-p', 'udp', '-s', client, '-d', server, '--sport', String(sport));
  t.is(mine.code, 0, mine.stderr);
  const lines = mine.stdout.trimEnd().split('\n');
  t.is(lines.length, flows);
  t.true(lines.every((l) => l.startsWith('udp      17 ') && l.includes(`src=${client} dst=${server} sport=${sport} dport=`) && l.includes('[UNREPLIED]')), lines[0]);
  t.deepEqual(new Set(lines.map((l) => /dport=(\d+)/.exec(l)![1])).size, flows);
  t.is(FOOTER.exec(mine.stderr)?.[1], String(flows), mine.stderr);
  // More than a pipe holds (64 KiB), all of it arrived.
  t.true(mine.stdout.length > 5 * 65_536, `${mine.stdout.length} bytes`);

  const one = await conntrack('-p', 'udp', '--dport', '20005', '-s', client);
  t.regex(one.stdout, new RegExp(`^udp {6}17 \\d+ src=${client.replace(/\./g, '\\.')} dst=${server.replace(/\./g, '\\.')} sport=${sport} dport=20005 `));
  t.is(one.stdout.trimEnd().split('\n').length, 1);
  t.is(FOOTER.exec(one.stderr)?.[1], '1');

  const counted = await conntrack('-C', '-p', 'udp', '--sport', String(sport));
  t.is(counted.stdout, `${flows}\n`);
  t.is(counted.stderr, '');
  const all = await conntrack('-C');
  t.true(Number(all.stdout) >= flows, all.stdout);

  const json = await conntrack('--json', '-p', 'udp', '--sport', String(sport));
  const entries = JSON.parse(json.stdout) as { proto: number; original: { src: number; sport: number } }[];
  t.is(entries.length, flows);
  t.true(entries.every((e) => e.proto === 17 && e.original.sport === sport));

  const none = await conntrack('-d', '192.0.2.99');
  t.is(none.stdout, '');
  t.is(FOOTER.exec(none.stderr)?.[1], '0');
  const noneJson = await conntrack('--json', '-d', '192.0.2.99');
  t.deepEqual(JSON.parse(noneJson.stdout), []);
});

serial('-p icmp and -p tcp show ping and curl', async (t) => {
  const ping = await cluster.exec('client', ['ping', '-c', '1', '-W', '2', server]);
  t.is(ping.code, 0, ping.stdout + ping.stderr);
  const curl = await cluster.exec('client', ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${server}/`]);
  t.is(curl.stdout, '200');

  const icmp = await conntrack('-p', 'icmp', '-s', client);
  const icmpLines = icmp.stdout.trimEnd().split('\n');
  t.true(icmpLines.length >= 1 && icmpLines.every((l) => l.startsWith('icmp     1 ') && l.includes(`src=${client} dst=${server} type=8 code=0 id=`)), icmp.stdout);
  const tcp = await conntrack('-p', 'tcp', '--dport', '80', '-d', server);
  const tcpLines = tcp.stdout.trimEnd().split('\n');
  t.true(tcpLines.length >= 1 && tcpLines.every((l) => l.startsWith('tcp      6 ') && l.includes(`src=${client} dst=${server} sport=`) && l.includes(' dport=80 ')), tcp.stdout);
  t.is(FOOTER.exec(tcp.stderr)?.[1], String(tcpLines.length));
});

serial('an open TCP connection lasts 24 h as on a kube-proxy node, with no counters unless accounting is on; -o extended adds the layer-3 prefix', async (t) => {
  // Held open (request answered, the socket kept) while the node is asked.
  const script = `import socket, time
s = socket.create_connection(('${server}', 80))
s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
s.recv(100)
print(s.getsockname()[1], flush=True)
time.sleep(4)`;
  const holding = cluster.exec('client', ['python3', '-c', script], 30_000);
  try {
    let line = '';
    for (let i = 0; i < 40 && line === ''; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const r = await conntrack('-p', 'tcp', '--dport', '80', '-d', server, '-o', 'extended');
      line = r.stdout.split('\n').find((l) => l.includes(' ESTABLISHED ') && l.includes('[ASSURED]')) ?? '';
    }
    t.regex(line, /^ipv4 {5}2 tcp {6}6 (86399|86400) ESTABLISHED src=/);
    t.false(line.includes('packets='), line);
  } finally {
    await holding;
  }
  const bad = await conntrack('-o', 'xml');
  t.is(bad.code, 2);
  t.regex(bad.stderr, /-o xml: podwire prints the default and extended formats/);
});

serial('bad filters are usage errors (exit 2) that name the problem', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--dport', '80'], /ports need a protocol with ports: -p tcp or -p udp/],
    [['-p', 'icmp', '--sport', '7'], /ports need a protocol with ports/],
    [['-p', 'sctp'], /-p sctp: one of tcp, udp, icmp/],
    [['-s', '10.244.1'], /-s 10\.244\.1: not an IPv4 address/],
    [['-p', 'tcp', '--dport', '70000'], /--dport 70000: not a port/],
    [['-C', '--json'], /usage: podwire conntrack NODE/],
  ];
  for (const [args, message] of cases) {
    const r = await conntrack(...args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, message);
  }
});

serial('a reader that stops reading for a while still gets every line, and the node forwards meanwhile', async (t) => {
  const flows = 3000;
  const sport = await udpFlows(30_000, flows);
  const child = spawn(process.execPath, [CLI, 'conntrack', '--name', cluster.name, '--state-dir', cluster.stateRoot, 'node-1', '-p', 'udp', '--sport', String(sport)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Not reading: the pipe fills, the CLI waits for it, the node waits for the CLI.
  child.stdout.pause();
  await new Promise((r) => setTimeout(r, 1500));
  // The node is not stuck behind the listing it cannot send.
  const ping = await cluster.exec('client', ['ping', '-c', '3', '-i', '0.2', '-W', '1', server]);
  t.is(ping.code, 0, ping.stdout);
  const status = await cluster.podwire(['status', '--json']);
  t.is(status.code, 0);
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0, stderr);
  t.is(stdout.trimEnd().split('\n').length, flows);
  t.is(FOOTER.exec(stderr)?.[1], String(flows));
});

serial('a reader that goes away (| head -1) ends the listing quietly with 141, as SIGPIPE ends conntrack', async (t) => {
  const sport = await udpFlows(40_000, 3000);
  const child = spawn(process.execPath, [CLI, 'conntrack', '--name', cluster.name, '--state-dir', cluster.stateRoot, 'node-1', '-p', 'udp', '--sport', String(sport)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const first = await new Promise<string>((resolve) => {
    let got = '';
    child.stdout.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) {
        child.stdout.destroy();
        resolve(got.slice(0, got.indexOf('\n')));
      }
    });
  });
  t.true(first.startsWith('udp      17 '), first);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 141);
  t.is(stderr, '');
  const counted = await conntrack('-C', '-p', 'udp', '--sport', String(sport));
  t.is(counted.stdout, '3000\n');
});
