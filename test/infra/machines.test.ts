/**
 * The several-machine harness: its plan of names and addresses (pure, property-tested),
 * then real underlays: machines reach each other and only each other, the MTU is the one
 * asked for, a partition cuts and restores, and teardown leaves nothing, even when the
 * test body fails or the run crashed.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fc from 'fast-check';
import {
  CommandFailed,
  MAX_IFNAME,
  MAX_MACHINES,
  MAX_PREFIX,
  cleanupStale,
  listNetns,
  makeUnderlay,
  ownedBy,
  planUnderlay,
  runCommand,
  subnetFromDraw,
  type Machine,
  type Underlay,
} from '../helpers/machines.js';

const test = anyTest as TestFn;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN) to create namespaces';
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return 'needs iproute2 with network namespace support';
  return undefined;
}
const skip = skipReason();
const kernel = skip === undefined ? test : test.skip;
const kernelSerial = skip === undefined ? test.serial : test.serial.skip;
const kernelSerialFailing = skip === undefined ? test.serial.failing : test.serial.skip;

/** An underlay that is destroyed when the test ends, however it ends. */
async function underlay(t: { teardown(fn: () => Promise<void>): void }, opts: Parameters<typeof makeUnderlay>[0]): Promise<Underlay> {
  const u = await makeUnderlay(opts);
  t.teardown(() => u.destroy());
  return u;
}

const pingOnce = (from: Machine, to: string, extra: string[] = []) => from.exec(['ping', '-c', '1', '-W', '2', ...extra, to]);
/** Whether one echo gets its reply (ping exits 0). */
const reaches = (from: Machine, to: string) => pingOnce(from, to).then(
  () => true,
  () => false,
);

/** Dotted address as a 32-bit number. */
const toInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const inNet = (ip: string, net: string, bits: number) => Math.floor(toInt(ip) / 2 ** (32 - bits)) === Math.floor(toInt(net) / 2 ** (32 - bits));

// ---------------------------------------------------------------------------------------
// The plan

test('subnet draws cover 10.200.0.0/13 exactly, one /24 per draw', (t) => {
  t.is(subnetFromDraw(0), '10.200.0');
  t.is(subnetFromDraw(300), '10.201.44');
  t.is(subnetFromDraw(2047), '10.207.255');
  t.throws(() => subnetFromDraw(2048), { instanceOf: RangeError });
  t.throws(() => subnetFromDraw(-1), { instanceOf: RangeError });
  t.throws(() => subnetFromDraw(1.5), { instanceOf: RangeError });
  const seen = new Set(Array.from({ length: 2048 }, (_, d) => subnetFromDraw(d)));
  t.is(seen.size, 2048);
});

test('a plan: names fit IFNAMSIZ and are unique, each namespace is owned by the prefix, addresses are hosts of the /24 and not the gateway', (t) => {
  const prefixArb = fc.stringMatching(new RegExp(`^[a-z0-9][a-z0-9-]{0,${MAX_PREFIX - 1}}$`));
  fc.assert(
    fc.property(prefixArb, fc.integer({ min: 1, max: MAX_MACHINES }), fc.integer({ min: 0, max: 2047 }), (prefix, n, draw) => {
      const plan = planUnderlay(prefix, n, subnetFromDraw(draw));
      const links = [plan.bridge, ...plan.machines.map((m) => m.port)];
      const namespaces = [plan.netns, ...plan.machines.map((m) => m.netns)];
      const addresses = [plan.bridgeAddress, ...plan.machines.map((m) => m.address)];
      return (
        plan.machines.length === n &&
        links.every((l) => l.length <= MAX_IFNAME) &&
        new Set(links).size === links.length &&
        new Set(namespaces).size === namespaces.length &&
        namespaces.every((ns) => ownedBy(prefix, ns)) &&
        new Set(addresses).size === addresses.length &&
        addresses.every((a) => inNet(a, plan.cidr.split('/')[0], 24) && inNet(a, '10.200.0.0', 13)) &&
        plan.machines.every((m) => !/\.(0|255)$/.test(m.address))
      );
    }),
  );
  t.pass();
});

test('a plan refuses prefixes that would overflow a link name, and machine counts past the /24', (t) => {
  t.throws(() => planUnderlay('x'.repeat(MAX_PREFIX + 1), 1, '10.200.0'), { instanceOf: RangeError });
  t.throws(() => planUnderlay('Bad_Prefix', 1, '10.200.0'), { instanceOf: RangeError });
  t.throws(() => planUnderlay('pwt-m0000', 0, '10.200.0'), { instanceOf: RangeError });
  t.throws(() => planUnderlay('pwt-m0000', MAX_MACHINES + 1, '10.200.0'), { instanceOf: RangeError });
  const plan = planUnderlay('pwt-m0000', 2, '10.203.7');
  t.deepEqual(
    { netns: plan.netns, bridge: plan.bridge, gw: plan.bridgeAddress, cidr: plan.cidr, m2: plan.machines[1] },
    {
      netns: 'pwt-m0000-ul',
      bridge: 'pwt-m0000-br',
      gw: '10.203.7.254',
      cidr: '10.203.7.0/24',
      m2: { name: 'm2', netns: 'pwt-m0000-m2', address: '10.203.7.2', iface: 'eth0', port: 'pwt-m0000-p2' },
    },
  );
});

test('a run owns the namespaces named with its prefix and a dash, not those of a longer prefix', (t) => {
  t.true(ownedBy('pwt-m1a2b', 'pwt-m1a2b-m1'));
  t.true(ownedBy('pwt-m1a2b', 'pwt-m1a2b-kp2'));
  t.false(ownedBy('pwt-m1a2b', 'pwt-m1a2bc-m1'));
  t.false(ownedBy('pwt-m', 'pwt-m1a2b-m1'));
  t.false(ownedBy('pwt-m1a2b', 'pwt-m1a2b'));
});

// ---------------------------------------------------------------------------------------
// Real underlays

kernel('three machines ping each other and the gateway across the bridge; the default route is the underlay', async (t) => {
  const u = await underlay(t, { machines: 3 });
  t.regex(u.prefix, /^pwt-m[0-9a-f]{4}$/);
  t.true(inNet(u.bridgeAddress, '10.200.0.0', 13), u.bridgeAddress);
  t.deepEqual(
    u.machines.map((m) => [m.name, m.iface, inNet(m.address, u.cidr.split('/')[0], 24)]),
    [
      ['m1', 'eth0', true],
      ['m2', 'eth0', true],
      ['m3', 'eth0', true],
    ],
  );
  for (const from of u.machines) {
    for (const to of u.machines) if (to !== from) t.true(await reaches(from, to.address), `${from.name} -> ${to.name}`);
    t.true(await reaches(from, u.bridgeAddress), `${from.name} -> gateway`);
    const [route] = JSON.parse(await from.exec(['ip', '-j', 'route', 'show', 'default'])) as { gateway: string; dev: string }[];
    t.deepEqual({ gateway: route.gateway, dev: route.dev }, { gateway: u.bridgeAddress, dev: 'eth0' });
    const addrs = JSON.parse(await from.exec(['ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0'])) as { mtu: number; addr_info: { local: string; prefixlen: number }[] }[];
    t.deepEqual({ mtu: addrs[0].mtu, addr: addrs[0].addr_info.map((a) => `${a.local}/${a.prefixlen}`) }, { mtu: 1500, addr: [`${from.address}/24`] });
  }
  // Nothing of ours in the root namespace: no link with the prefix, no route to the underlay.
  const rootLinks = JSON.parse(await runCommand(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
  t.deepEqual(rootLinks.filter((l) => l.ifname.startsWith(u.prefix)), []);
  const net = u.cidr.slice(0, u.cidr.lastIndexOf('.') + 1);
  t.false((await runCommand(['ip', 'route', 'show', 'table', 'all'])).includes(` ${net}`) || (await runCommand(['ip', 'addr'])).includes(` ${net}`));
});

kernel('MTU 1500: a 1472-byte DF ping crosses the bridge, a 1473-byte one does not', async (t) => {
  const u = await underlay(t, { machines: 2 });
  const [m1, m2] = u.machines;
  await t.notThrowsAsync(pingOnce(m1, m2.address, ['-M', 'do', '-s', '1472']));
  const err = await t.throwsAsync(pingOnce(m1, m2.address, ['-M', 'do', '-s', '1473']), { instanceOf: CommandFailed });
  t.regex(`${err?.stdout}${err?.stderr}`, /mtu=1500|message too long/i);
});

kernel('the MTU asked for is the one every hop has: 1400 carries a 1372-byte DF ping and not a 1373-byte one', async (t) => {
  const u = await underlay(t, { machines: 2, mtu: 1400 });
  const [m1, m2] = u.machines;
  t.is(u.mtu, 1400);
  await t.notThrowsAsync(pingOnce(m1, m2.address, ['-M', 'do', '-s', '1372']));
  await t.throwsAsync(pingOnce(m1, m2.address, ['-M', 'do', '-s', '1373']), { instanceOf: CommandFailed });
  const bridgeSide = JSON.parse(await runCommand(['ip', '-n', u.netns, '-j', 'link', 'show'])) as { ifname: string; mtu: number }[];
  t.deepEqual(
    bridgeSide.filter((l) => l.ifname !== 'lo').map((l) => l.mtu),
    [1400, 1400, 1400],
  );
});

kernel('a partition cuts one machine off the others, and restoring it reconnects', async (t) => {
  const u = await underlay(t, { machines: 3 });
  const [m1, m2, m3] = u.machines;
  await u.partition(m2, true);
  t.false(await reaches(m1, m2.address));
  t.false(await reaches(m2, m3.address));
  t.true(await reaches(m1, m3.address), 'the others still reach each other');
  await u.partition(m2, false);
  // The bridge port comes back forwarding at once (no STP), but the machine's carrier
  // needs a moment.
  let back = false;
  for (let i = 0; i < 20 && !back; i++) back = await reaches(m1, m2.address);
  t.true(back);
});

kernel('exec rejects with stderr; spawn runs inside the machine', async (t) => {
  const u = await underlay(t, { machines: 1 });
  const [m1] = u.machines;
  const err = await t.throwsAsync(m1.exec(['ip', 'link', 'show', 'dev', 'nosuchdev']), { instanceOf: CommandFailed });
  t.regex(err?.message ?? '', /nosuchdev/);
  const child = m1.spawn(['ip', '-o', 'link', 'show']);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const [code] = (await once(child, 'close')) as [number];
  t.is(code, 0);
  t.deepEqual(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(':')[1].trim().split('@')[0]),
    ['lo', 'eth0'],
  );
});

kernel('destroy ends spawned processes by pid and leaves no namespace with the prefix; it is idempotent', async (t) => {
  const u = await makeUnderlay({ machines: 2 });
  t.teardown(() => u.destroy());
  // A process that ignores SIGTERM, so the SIGKILL after the grace period is what ends it.
  const stubborn = u.machines[0].spawn(['sh', '-c', 'trap "" TERM; sleep 60']);
  const plain = u.machines[1].spawn(['sleep', '60']);
  const exits = [once(stubborn, 'exit'), once(plain, 'exit')];
  await new Promise((r) => setTimeout(r, 200));
  t.is((await listNetns()).filter((ns) => ownedBy(u.prefix, ns)).length, 3);
  const started = Date.now();
  await u.destroy();
  const [[, stubbornSignal], [, plainSignal]] = (await Promise.all(exits)) as [number | null, string | null][];
  t.is(plainSignal, 'SIGTERM');
  t.is(stubbornSignal, 'SIGKILL');
  t.true(Date.now() - started >= 1900, 'SIGKILL only after the 2 s grace');
  t.deepEqual((await listNetns()).filter((ns) => ns.startsWith(u.prefix)), []);
  await t.notThrowsAsync(u.destroy());
  t.throws(() => u.machines[0].spawn(['true']), { message: /destroyed/ });
});

kernel('cleanupStale removes what a crashed run left: its namespaces and the processes in them, and nothing of another prefix', async (t) => {
  const crashed = await underlay(t, { machines: 2 });
  const other = await underlay(t, { machines: 1 });
  // Started outside the harness, as a run that crashed would leave it: nobody tracks it.
  const orphan = spawn('ip', ['netns', 'exec', crashed.machines[1].netns, 'sleep', '60'], { stdio: 'ignore', detached: true });
  const exited = once(orphan, 'exit');
  t.teardown(() => {
    if (orphan.exitCode === null && orphan.signalCode === null) process.kill(orphan.pid!, 'SIGKILL');
  });
  await new Promise((r) => setTimeout(r, 200));
  const removed = await cleanupStale(crashed.prefix);
  t.deepEqual(removed.sort(), [`${crashed.prefix}-m1`, `${crashed.prefix}-m2`, `${crashed.prefix}-ul`]);
  const [, signal] = (await exited) as [number | null, string | null];
  t.is(signal, 'SIGKILL');
  const left = await listNetns();
  t.deepEqual(left.filter((ns) => ownedBy(crashed.prefix, ns)), []);
  t.is(left.filter((ns) => ownedBy(other.prefix, ns)).length, 2);
  t.true(await reaches(other.machines[0], other.bridgeAddress), 'the other run still works');
  await t.notThrowsAsync(crashed.destroy(), 'destroy after a cleanup is a no-op');
});

// A body that fails must still tear down: the failing test registers its underlay's
// teardown and throws; the next serial test checks what it left.
let failedPrefix: string | undefined;

kernelSerialFailing('a failing test body (expected to fail) still tears its underlay down', async (t) => {
  const u = await underlay(t, { machines: 2 });
  failedPrefix = u.prefix;
  t.is(u.machines.length, 3, 'fails on purpose');
});

kernelSerial('... and after it nothing with its prefix is left', async (t) => {
  t.truthy(failedPrefix, 'the failing test ran first and made an underlay');
  t.deepEqual((await listNetns()).filter((ns) => ownedBy(failedPrefix!, ns)), []);
});
