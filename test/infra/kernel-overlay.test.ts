/**
 * The kernel baseline of the cross-machine benchmark: flannel's vxlan entries as planned
 * (pure), the parsers of iperf3 and ping output (golden text), then the real overlay on an
 * underlay: ping and iperf3 between its two pods, its MTU, and nothing left after destroy.
 */
import anyTest, { type TestFn } from 'ava';
import { spawnSync } from 'node:child_process';
import { buildKernelOverlay, kernelNodePlan, peerEntries, VXLAN_OVERHEAD, type KernelOverlay } from '../../bench/cross-machine/kernel.js';
import { iperf3Between, parseIperf3, parsePing, pingBetween } from '../../bench/cross-machine/measure.js';
import { CommandFailed, listNetns, makeUnderlay, ownedBy, runCommand, type Underlay } from '../helpers/machines.js';

const test = anyTest as TestFn;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN) to create namespaces';
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return 'needs iproute2 with network namespace support';
  return undefined;
}
const skip = skipReason();
const kernel = skip === undefined ? test : test.skip;

// ---------------------------------------------------------------------------------------
// Pure: the plan and flannel's entries

test('machine mK gets 10.244.K.0/24: VTEP .0, gateway .1, pod .2, pod namespace under the prefix', (t) => {
  t.deepEqual(kernelNodePlan('pwt-m0000', 2), {
    subnet: 2,
    podCidr: '10.244.2.0/24',
    vtepAddress: '10.244.2.0',
    gateway: '10.244.2.1',
    podIp: '10.244.2.2',
    podNetns: 'pwt-m0000-kp2',
  });
  t.true(ownedBy('pwt-m0000', kernelNodePlan('pwt-m0000', 7).podNetns));
  t.throws(() => kernelNodePlan('pwt-m0000', 0), { instanceOf: RangeError });
  t.throws(() => kernelNodePlan('pwt-m0000', 255), { instanceOf: RangeError });
});

test('towards a peer, exactly flannel\'s three entries: onlink route via its VTEP, permanent neighbour, FDB to its underlay address', (t) => {
  t.deepEqual(peerEntries(kernelNodePlan('p', 2), '0e:11:22:33:44:55', '10.203.7.2'), [
    ['ip', 'route', 'add', '10.244.2.0/24', 'via', '10.244.2.0', 'dev', 'flannel.1', 'onlink'],
    ['ip', 'neigh', 'add', '10.244.2.0', 'lladdr', '0e:11:22:33:44:55', 'dev', 'flannel.1', 'nud', 'permanent'],
    ['bridge', 'fdb', 'append', '0e:11:22:33:44:55', 'dev', 'flannel.1', 'dst', '10.203.7.2', 'self', 'permanent'],
  ]);
  t.is(VXLAN_OVERHEAD, 50);
});

// ---------------------------------------------------------------------------------------
// Pure: the parsers, on output as iputils ping and iperf3 print it

const PING_OK = `PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.
64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.059 ms
64 bytes from 10.244.2.2: icmp_seq=2 ttl=62 time=0.035 ms
64 bytes from 10.244.2.2: icmp_seq=3 ttl=62 time=0.036 ms

--- 10.244.2.2 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 32ms
rtt min/avg/max/mdev = 0.035/0.043/0.059/0.011 ms
`;

test('ping: avg from the rtt line, p50 from the replies, loss from the statistics', (t) => {
  t.deepEqual(parsePing(PING_OK), { avgMs: 0.043, p50: 0.036, lossPct: 0 });
  const quiet = PING_OK.split('\n').filter((l) => !l.includes('icmp_seq')).join('\n');
  t.deepEqual(parsePing(quiet), { avgMs: 0.043, lossPct: 0 }, 'with -q there are no per-reply times, so no p50');
  const lossy = `PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.
64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.120 ms
64 bytes from 10.244.2.2: icmp_seq=4 ttl=62 time=0.100 ms
64 bytes from 10.244.2.2: icmp_seq=5 ttl=62 time=0.300 ms
64 bytes from 10.244.2.2: icmp_seq=6 ttl=62 time=0.200 ms

--- 10.244.2.2 ping statistics ---
6 packets transmitted, 4 received, +2 errors, 33.3333% packet loss, time 5008ms
rtt min/avg/max/mdev = 0.100/0.180/0.300/0.077 ms, pipe 2
`;
  t.deepEqual(parsePing(lossy), { avgMs: 0.18, p50: 0.12, lossPct: 33.3333 });
});

test('ping: no reply at all, or no statistics, is an error rather than a number', (t) => {
  const none = `PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.

--- 10.244.2.2 ping statistics ---
2 packets transmitted, 0 received, 100% packet loss, time 1010ms
`;
  t.throws(() => parsePing(none), { message: /no reply \(100% packet loss\)/ });
  t.throws(() => parsePing('ping: connect: Network is unreachable\n'), { message: /no statistics/ });
});

test('iperf3 -J: Gbit/s received and retransmits sent; its error field is the failure', (t) => {
  const ok = JSON.stringify({ start: {}, intervals: [], end: { sum_sent: { bits_per_second: 9.9e9, retransmits: 17 }, sum_received: { bits_per_second: 9.5e9 } } });
  t.deepEqual(parseIperf3(ok), { gbps: 9.5, retransmits: 17 });
  const noRetr = JSON.stringify({ end: { sum_sent: {}, sum_received: { bits_per_second: 1.25e8 } } });
  t.deepEqual(parseIperf3(noRetr), { gbps: 0.125, retransmits: 0 });
  t.throws(() => parseIperf3(JSON.stringify({ start: {}, intervals: [], end: {}, error: 'unable to connect to server: Connection refused' })), {
    message: /Connection refused/,
  });
  t.throws(() => parseIperf3('iperf3: error - oops'), { message: /not JSON/ });
});

// ---------------------------------------------------------------------------------------
// The real overlay

/** An underlay of two machines with the kernel overlay on it, both torn down however the test ends. */
async function overlayOnUnderlay(t: { teardown(fn: () => Promise<void>): void }): Promise<{ u: Underlay; k: KernelOverlay }> {
  const u = await makeUnderlay({ machines: 2 });
  t.teardown(() => u.destroy());
  const k = await buildKernelOverlay(u, [u.machines[0], u.machines[1]]);
  // Registered after the underlay's, so it runs first (ava runs teardowns last-in first-out).
  t.teardown(() => k.destroy());
  return { u, k };
}

kernel('the kernel overlay carries ping and a 2 s iperf3 between the pods of two machines', async (t) => {
  const { k } = await overlayOnUnderlay(t);
  const [p1, p2] = k.pods;
  t.deepEqual(
    k.pods.map((p) => p.ip),
    ['10.244.1.2', '10.244.2.2'],
  );
  const ping = await pingBetween(p1.netns, p2.ip, 20);
  t.is(ping.lossPct, 0);
  t.true(ping.avgMs > 0 && ping.avgMs < 50, `avg ${ping.avgMs} ms`);
  t.true(ping.p50 !== undefined && ping.p50 > 0);
  const back = await pingBetween(p2.netns, p1.ip, 5, 1000);
  t.is(back.lossPct, 0);
  const tcp = await iperf3Between(p1.netns, p2.netns, p2.ip, 2);
  t.true(tcp.gbps > 0.05, `${tcp.gbps} Gbit/s`);
  t.true(Number.isInteger(tcp.retransmits) && tcp.retransmits >= 0);
  t.log(`kernel vxlan across the underlay: ${tcp.gbps.toFixed(2)} Gbit/s, ${tcp.retransmits} retransmits; ping avg ${ping.avgMs} ms, p50 ${ping.p50} ms`);
});

kernel('what crosses is VXLAN on the underlay: the peer pod answers through flannel.1, and the pods have MTU 1450', async (t) => {
  const { u, k } = await overlayOnUnderlay(t);
  const [m1] = u.machines;
  const [p1, p2] = k.pods;
  const before = JSON.parse(await m1.exec(['ip', '-j', '-s', 'link', 'show', 'dev', 'flannel.1'])) as { stats64: { tx: { packets: number } } }[];
  await pingBetween(p1.netns, p2.ip, 10);
  const after = JSON.parse(await m1.exec(['ip', '-j', '-s', 'link', 'show', 'dev', 'flannel.1'])) as { stats64: { tx: { packets: number } } }[];
  t.true(after[0].stats64.tx.packets - before[0].stats64.tx.packets >= 10, 'the echoes left through flannel.1');
  const [vx] = JSON.parse(await m1.exec(['ip', '-j', '-d', 'link', 'show', 'dev', 'flannel.1'])) as { mtu: number; linkinfo: { info_data: { id: number; port: number; local: string; learning: boolean } } }[];
  t.deepEqual(
    { mtu: vx.mtu, id: vx.linkinfo.info_data.id, port: vx.linkinfo.info_data.port, local: vx.linkinfo.info_data.local, learning: vx.linkinfo.info_data.learning },
    { mtu: 1450, id: 1, port: 4789, local: m1.address, learning: false },
  );
  const [podIf] = JSON.parse(await runCommand(['ip', '-n', p1.netns, '-j', 'link', 'show', 'dev', 'eth0'])) as { mtu: number }[];
  t.is(podIf.mtu, 1450);
  t.is((await m1.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '1');
});

kernel('a 1422-byte DF ping passes between the pods (MTU 1450), a 1423-byte one does not', async (t) => {
  const { k } = await overlayOnUnderlay(t);
  const [p1, p2] = k.pods;
  const df = (size: number) => runCommand(['ip', 'netns', 'exec', p1.netns, 'ping', '-M', 'do', '-c', '1', '-W', '2', '-s', String(size), p2.ip]);
  await t.notThrowsAsync(df(1422));
  await t.throwsAsync(df(1423), { instanceOf: CommandFailed });
});

kernel('after destroy the pods, flannel.1 and cni0 are gone, ip_forward is back, and the underlay works as before', async (t) => {
  const u = await makeUnderlay({ machines: 3 });
  t.teardown(() => u.destroy());
  const [, m2, m3] = u.machines;
  const forwardBefore = (await m2.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).trim();
  // Machines 2 and 3: the pod subnets follow the machines' places, not the pair's order.
  const k = await buildKernelOverlay(u, [m3, m2]);
  t.teardown(() => k.destroy());
  t.deepEqual(
    k.pods.map((p) => p.ip),
    ['10.244.3.2', '10.244.2.2'],
  );
  t.is((await pingBetween(k.pods[0].netns, k.pods[1].ip, 3)).lossPct, 0);
  await k.destroy();
  const left = await listNetns();
  t.deepEqual(
    left.filter((ns) => ownedBy(u.prefix, ns)).sort(),
    [`${u.prefix}-m1`, `${u.prefix}-m2`, `${u.prefix}-m3`, `${u.prefix}-ul`],
  );
  for (const m of [m2, m3]) {
    const links = JSON.parse(await m.exec(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
    t.deepEqual(
      links.map((l) => l.ifname),
      ['lo', 'eth0'],
      m.name,
    );
    t.is((await m.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), forwardBefore);
    t.is((await m.exec(['ip', 'route', 'show'])).includes('10.244.'), false, `${m.name} has no pod routes left`);
  }
  await t.notThrowsAsync(m2.exec(['ping', '-c', '1', '-W', '2', m3.address]));
  await t.notThrowsAsync(k.destroy(), 'destroy is idempotent');
  await u.destroy();
  t.deepEqual((await listNetns()).filter((ns) => ns.startsWith(u.prefix)), []);
});

kernel('an overlay on a machine of another underlay, or on one machine twice, is refused before anything is built', async (t) => {
  const u = await makeUnderlay({ machines: 2 });
  t.teardown(() => u.destroy());
  const v = await makeUnderlay({ machines: 1 });
  t.teardown(() => v.destroy());
  await t.throwsAsync(buildKernelOverlay(u, [u.machines[0], v.machines[0]]), { message: /not a machine of underlay/ });
  await t.throwsAsync(buildKernelOverlay(u, [u.machines[0], u.machines[0]]), { message: /two different machines/ });
  const links = JSON.parse(await u.machines[0].exec(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
  t.deepEqual(
    links.map((l) => l.ifname),
    ['lo', 'eth0'],
  );
});

kernel('across a partition the measures fail as errors and leave no iperf3 server behind', async (t) => {
  const { u, k } = await overlayOnUnderlay(t);
  const [p1, p2] = k.pods;
  await u.partition(u.machines[1], true);
  await t.throwsAsync(pingBetween(p1.netns, p2.ip, 3), { message: /no reply \(100% packet loss\)/ });
  await t.throwsAsync(iperf3Between(p1.netns, p2.netns, p2.ip, 1));
  t.is((await runCommand(['ip', 'netns', 'pids', p2.netns])).trim(), '', 'the server was killed');
  // A server address that is not in the server's namespace: it cannot bind, and says so.
  await t.throwsAsync(iperf3Between(p2.netns, p1.netns, p2.ip, 1), { message: /iperf3 server in .*kp1/ });
  t.is((await runCommand(['ip', 'netns', 'pids', p1.netns])).trim(), '');
});
