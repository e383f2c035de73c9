/**
 * Golden fragments from the kernel itself. Two namespaces joined by a veth (pw-prefixed,
 * removed in teardown also when a test fails); python3 sends UDP datagrams of 3500 and
 * 2000 bytes and ping sends 3000-byte echoes (with and without record route), at MTU 1500 and 576, and tcpdump on the
 * receiving side writes what the kernel put on the wire. `ping -R` adds a record-route
 * option, which the kernel keeps in the first fragment only (ip_options_fragment). Each datagram's fragments, in
 * capture order and reversed, must reassemble to what was sent (the UDP payload byte for
 * byte, the checksums the kernel summed over the whole datagram), and cutting it again
 * at the largest fragment size seen must give the kernel's own fragments to the byte.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readU16 } from '../../src/packet/bytes.js';
import { internetChecksum, pseudoHeaderSum } from '../../src/packet/checksum.js';
import { readCapture } from '../../src/pcap/reader.js';
import { fragmentIpv4, FragmentError } from '../../src/packet/ipv4-fragment.js';
import { Defrag, DefragResult } from '../../src/netfilter/defrag.js';
import { kernelSkipReason } from '../helpers/cluster.js';
import { completed } from './defrag-frames.js';

const skip = kernelSkipReason() ?? (spawnable('tcpdump') ? undefined : 'needs tcpdump');
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;
if (skip !== undefined) console.log(`defrag-kernel: skipped, ${skip}`);

function spawnable(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const tag = String(process.pid % 100_000);
const NS_A = `pw-dfrag${tag}-a`;
const NS_B = `pw-dfrag${tag}-b`;
const LINK_A = `pwdf${tag}a`;
const LINK_B = `pwdf${tag}b`;
const ADDR_A = '10.255.7.1';
const ADDR_B = '10.255.7.2';
const dir = mkdtempSync(join(tmpdir(), 'pw-defrag-'));
let tcpdump: ChildProcess | undefined;

function sh(...args: string[]): string {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function inNs(ns: string, ...args: string[]): string {
  return sh('ip', 'netns', 'exec', ns, ...args);
}

function teardown(): void {
  if (tcpdump?.pid !== undefined && tcpdump.exitCode === null) {
    try {
      process.kill(tcpdump.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const ns of [NS_A, NS_B]) {
    try {
      sh('ip', 'netns', 'del', ns);
    } catch {
      // Not there.
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

function setUp(): void {
  sh('ip', 'netns', 'add', NS_A);
  sh('ip', 'netns', 'add', NS_B);
  sh('ip', 'link', 'add', LINK_A, 'netns', NS_A, 'type', 'veth', 'peer', 'name', LINK_B, 'netns', NS_B);
  for (const [ns, link, address] of [
    [NS_A, LINK_A, ADDR_A],
    [NS_B, LINK_B, ADDR_B],
  ]) {
    // Quiet links (no IPv6 chatter) whose checksums are complete on the wire, not left to "hardware".
    inNs(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    sh('ip', '-n', ns, 'addr', 'add', `${address}/24`, 'dev', link);
    sh('ip', '-n', ns, 'link', 'set', link, 'up');
    inNs(ns, 'ethtool', '-K', link, 'tx', 'off', 'rx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off');
  }
}

function setMtu(mtu: number): void {
  sh('ip', '-n', NS_A, 'link', 'set', LINK_A, 'mtu', String(mtu));
  sh('ip', '-n', NS_B, 'link', 'set', LINK_B, 'mtu', String(mtu));
}

/** The bytes python3 sends in a datagram of `length`: (i * 7 + seed) mod 256. */
function payloadOf(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

function sendUdp(length: number, seed: number, port: number): void {
  const script = `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("${ADDR_A}", ${port})); s.sendto(bytes((i * 7 + ${seed}) & 255 for i in range(${length})), ("${ADDR_B}", 9))`;
  inNs(NS_A, 'python3', '-c', script);
}

async function capture(during: () => void): Promise<Buffer[]> {
  const file = join(dir, `cap-${Date.now()}.pcap`);
  const proc = spawn('ip', ['netns', 'exec', NS_B, 'tcpdump', '--immediate-mode', '-Z', 'root', '-U', '-s', '0', '-i', LINK_B, '-w', file, 'ip'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  tcpdump = proc;
  await new Promise<void>((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
  });
  during();
  // Let the last frames reach the file before asking tcpdump to stop.
  await new Promise((r) => setTimeout(r, 1000));
  const exited = new Promise((r) => proc.on('exit', r));
  proc.kill('SIGINT');
  await exited;
  tcpdump = undefined;
  return readCapture(readFileSync(file)).records.map((r) => Buffer.from(r.data));
}

/** IPv4 fragments in the capture (Ethernet frames), grouped by (src, dst, protocol, id) in capture order. */
function fragmentGroups(frames: Buffer[]): Map<string, Buffer[]> {
  const groups = new Map<string, Buffer[]>();
  for (const f of frames) {
    if (f.length < 34 || readU16(f, 12) !== 0x0800) continue;
    const ip = f.subarray(14);
    const flags = readU16(ip, 6);
    if ((flags & 0x3fff) === 0) continue;
    const key = `${ip.readUInt32BE(12)}>${ip.readUInt32BE(16)}/${ip[9]}#${readU16(ip, 4)}`;
    groups.set(key, [...(groups.get(key) ?? []), Buffer.from(ip.subarray(0, readU16(ip, 2)))]);
  }
  return groups;
}

function reassemble(frags: Buffer[]): { whole: Buffer; maxFragmentSize: number } {
  const table = new Defrag();
  let whole: Buffer | undefined;
  for (const [i, f] of frags.entries()) {
    const r = table.insert(f, 0, 1e9);
    if (r === DefragResult.Complete) {
      if (i !== frags.length - 1) throw new Error('completed early');
      whole = completed(table);
    } else if (r !== DefragResult.Held) throw new Error(`fragment ${i} refused: ${table.lastDrop}`);
  }
  if (whole === undefined) throw new Error('never completed');
  return { whole, maxFragmentSize: table.maxFragmentSize };
}

function refragment(whole: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  const err = fragmentIpv4(whole, 0, size, Buffer.alloc(size), 0, (f, length) => out.push(Buffer.from(f.subarray(0, length))));
  if (err !== FragmentError.Ok) throw new Error(`fragmentIpv4: ${err}`);
  return out;
}

test.after.always(teardown);

serial('the kernel\'s fragments of UDP and ICMP datagrams reassemble to what was sent, and cut again to the kernel\'s bytes', async (t) => {
  setUp();
  const frames = [
    ...(await capture(() => {
      sendUdp(3500, 1, 40001);
      inNs(NS_A, 'ping', '-c', '1', '-W', '2', '-s', '3000', '-p', 'a5', ADDR_B);
      // Record route: a 60-byte header whose option the kernel turns to NOPs after the first fragment.
      inNs(NS_A, 'ping', '-R', '-c', '1', '-W', '2', '-s', '3000', '-p', 'a5', ADDR_B);
    })),
    ...(await (async () => {
      setMtu(576);
      return capture(() => sendUdp(2000, 2, 40002));
    })()),
  ];
  const groups = fragmentGroups(frames);
  // UDP at 1500 and 576, the echo requests and their replies.
  t.is(groups.size, 6, [...groups.keys()].join(' '));
  const seen = { udp3500: false, udp2000: false, echo: 0, recordRoute: 0 };
  for (const [key, frags] of groups) {
    t.true(frags.length >= 3, `${key}: ${frags.length} fragments`);
    const forward = reassemble(frags);
    const backward = reassemble([...frags].reverse());
    t.deepEqual(backward.whole, forward.whole, `${key}: the order does not matter`);
    const { whole, maxFragmentSize } = forward;
    t.is(maxFragmentSize, Math.max(...frags.map((f) => f.length)));
    const headerLength = (whole[0] & 0x0f) * 4;
    t.is(internetChecksum(whole, 0, headerLength), 0, `${key}: header checksum`);
    t.is(readU16(whole, 6), 0, `${key}: no fragment bits left`);
    const l4 = whole.subarray(headerLength);
    if (whole[9] === 17) {
      const length = l4.length - 8;
      const port = readU16(l4, 0);
      t.is(readU16(l4, 4), l4.length, 'UDP length');
      t.is(internetChecksum(l4, 0, l4.length, pseudoHeaderSum(whole.readUInt32BE(12), whole.readUInt32BE(16), 17, l4.length)), 0, 'the UDP checksum the kernel summed');
      t.deepEqual(l4.subarray(8), payloadOf(length, port === 40001 ? 1 : 2), 'what python3 sent');
      if (port === 40001) seen.udp3500 = length === 3500;
      if (port === 40002) seen.udp2000 = length === 2000;
    } else {
      t.is(whole[9], 1);
      t.is(internetChecksum(l4, 0, l4.length), 0, 'the ICMP checksum the kernel summed');
      t.is(l4.length, 3008);
      t.true(l4.subarray(8 + 16).every((b) => b === 0xa5), 'ping -p a5 fills the rest');
      seen.echo++;
      if (headerLength === 60) {
        // The first fragment's options came through; later ones had only NOPs (and EOL) there.
        t.is(whole[20 + (whole[20] === 1 ? 1 : 0)], 7, 'record route in the datagram');
        for (const f of frags.slice(1)) t.true(f.subarray(20, 60).every((b) => b === 1 || b === 0), 'no record route after the first fragment');
        seen.recordRoute++;
      }
    }
    // The kernel's own cut, reproduced: ip_do_fragment at the largest size seen.
    t.deepEqual(refragment(whole, maxFragmentSize), frags, `${key}: refragmented to the kernel's bytes`);
  }
  t.deepEqual(seen, { udp3500: true, udp2000: true, echo: 4, recordRoute: 2 });
});

serial('teardown leaves nothing of this test in the kernel', (t) => {
  teardown();
  const namespaces = sh('ip', 'netns', 'list');
  t.false(namespaces.includes(NS_A) || namespaces.includes(NS_B), namespaces);
});
