/**
 * Frame I/O throughput, side by side in one run: TAP frames/s read and written through
 * podwire's addon, the python relay (native-free/) and the registry's tuntap2 fork (the
 * measured reference), and UDP datagrams/s through the addon and node:dgram. Plus two
 * answers to design questions: does UDP GSO (UDP_SEGMENT) pay for small datagrams to one
 * peer, and what does a TAP-to-TAP relay carry for real TCP (iperf3) with and without
 * TSO offload.
 *
 * The load comes from a small C program compiled here with gcc: it writes raw frames on a
 * packet socket inside the pod namespace, or blasts UDP on loopback with sendmmsg, i.e.
 * it offers more than the port under test can take (its offered rate is reported too).
 * Every load is bounded in count and time; TAPs live in a namespace made here
 * (pw-iobench-<pid>) and UDP uses 127.0.0.0/8 only.
 *
 * TAP figures need root and /dev/net/tun; without them only the UDP figures are made.
 * `npm run bench -- io`, or alone: `node dist/bench/io.bench.js` (PODWIRE_BENCH_SECONDS
 * sets each measurement's window, default 2).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DgramPort } from '../native-free/udp.js';
import { RelayTapPort } from '../native-free/tap-relay.js';
import { nativeIo, nativeIoUnavailable } from '../src/io/native.js';
import type { DatagramPort, Port, PortStats, RxBatch } from '../src/io/port.js';
import { TapPort } from '../src/io/tap.js';
import { UdpPort } from '../src/io/udp.js';
import { parseIpv4 } from '../src/packet/addr.js';
import type { BenchContext, BenchModule, Figure } from './harness.js';

const SECONDS = Number(process.env.PODWIRE_BENCH_SECONDS ?? 2);
/** Counters settle (ramp-up, first batches) before the window opens. */
const WARMUP_MS = 300;
const ID = process.pid % 10000;
const NS = `pw-iobench-${process.pid}`;
const NS_B = `pw-iobench-${process.pid}-b`;
/** Upper bound on what one load generator run sends, whatever the window. */
const MAX_FRAMES = 100_000_000;

/** The load generator; prints frames sent, sent/s, offered/s. Modes: packet IFNAME SECONDS MAX | udp SRC DST PORT SECONDS MAX SIZE GSO | sink ADDR PORT SECONDS. */
const BLAST_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define BATCH 64

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void die(const char *what) { perror(what); exit(1); }
static struct sockaddr_in addr(const char *ip, int port) {
  struct sockaddr_in a; memset(&a, 0, sizeof a); a.sin_family = AF_INET; a.sin_port = htons(port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", ip); exit(1); }
  return a;
}
static void bigbuf(int fd, int opt_force, int opt) {
  int n = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, opt_force, &n, sizeof n) < 0) setsockopt(fd, SOL_SOCKET, opt, &n, sizeof n);
}

int main(int argc, char **argv) {
  static char buf[BATCH * 1500];
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  memset(msgs, 0, sizeof msgs);
  unsigned long long sent = 0, max = 0;
  double seconds = 0, start = now();
  int fd, size = 60, gso = 0;
  if (argc == 5 && strcmp(argv[1], "packet") == 0) {
    seconds = atof(argv[3]); max = strtoull(argv[4], 0, 10);
    fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: transmit only */
    if (fd < 0) die("socket");
    struct sockaddr_ll ll; memset(&ll, 0, sizeof ll);
    ll.sll_family = AF_PACKET; ll.sll_ifindex = if_nametoindex(argv[2]);
    if (ll.sll_ifindex == 0) die("if_nametoindex");
    if (bind(fd, (struct sockaddr *)&ll, sizeof ll) < 0) die("bind");
    int one = 1; /* straight to the driver: the TAP's queue, not a qdisc's */
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    /* to 02:00:00:00:00:01 from 02:00:00:00:00:02, ethertype 0x88b5 (local experimental) */
    unsigned char f[60] = {2,0,0,0,0,1, 2,0,0,0,0,2, 0x88,0xb5};
    memcpy(buf, f, sizeof f);
  } else if (argc == 9 && strcmp(argv[1], "udp") == 0) {
    seconds = atof(argv[5]); max = strtoull(argv[6], 0, 10); size = atoi(argv[7]); gso = atoi(argv[8]);
    if (size < 1 || size > 1472) { fprintf(stderr, "size 1..1472\n"); return 1; }
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    bigbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    struct sockaddr_in src = addr(argv[2], 0), dst = addr(argv[3], atoi(argv[4]));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind");
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) die("connect");
    memset(buf, 0x5a, sizeof buf);
  } else if (argc == 5 && strcmp(argv[1], "sink") == 0) {
    seconds = atof(argv[4]);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    bigbuf(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    struct sockaddr_in a = addr(argv[2], atoi(argv[3]));
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    struct timeval tv = {0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < BATCH; i++) {
      iovs[i].iov_base = buf + i * 1500; iovs[i].iov_len = 1500;
      msgs[i].msg_hdr.msg_iov = &iovs[i]; msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n"); fflush(stdout);
    unsigned long long got = 0;
    while (now() - start < seconds) {
      int r = recvmmsg(fd, msgs, BATCH, 0, 0);
      if (r > 0) got += r;
      else if (r < 0 && errno != EAGAIN && errno != EINTR) die("recvmmsg");
    }
    printf("%llu\n", got);
    return 0;
  } else {
    fprintf(stderr, "usage: blast packet IFNAME SECONDS MAX | udp SRC DST PORT SECONDS MAX SIZE GSO | sink ADDR PORT SECONDS\n");
    return 2;
  }

  for (int i = 0; i < BATCH; i++) {
    iovs[i].iov_base = buf; iovs[i].iov_len = size;
    msgs[i].msg_hdr.msg_iov = &iovs[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }
  /* GSO: one send of BATCH segments of size bytes each, cut by the kernel after routing */
  char control[CMSG_SPACE(sizeof(unsigned short))];
  struct iovec whole = { buf, (size_t)size * BATCH };
  struct msghdr gmsg; memset(&gmsg, 0, sizeof gmsg);
  gmsg.msg_iov = &whole; gmsg.msg_iovlen = 1; gmsg.msg_control = control; gmsg.msg_controllen = sizeof control;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&gmsg);
  cm->cmsg_level = SOL_UDP; cm->cmsg_type = UDP_SEGMENT; cm->cmsg_len = CMSG_LEN(sizeof(unsigned short));
  *(unsigned short *)CMSG_DATA(cm) = (unsigned short)size;
  if (gso && (size_t)size * BATCH > 65507) { fprintf(stderr, "GSO batch too big\n"); return 1; }

  /* A full queue refuses the frame (ENOBUFS: the TAP's ring, with the qdisc bypassed) and
     sendmmsg stops there: count it as offered, not sent, and go on. */
  unsigned long long refused = 0;
  while (sent < max && now() - start < seconds) {
    int r = gso ? (sendmsg(fd, &gmsg, 0) < 0 ? -1 : BATCH) : sendmmsg(fd, msgs, BATCH, 0);
    if (r > 0) sent += r;
    else if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) refused += gso ? BATCH : 1;
    else die(gso ? "sendmsg" : "sendmmsg");
  }
  double t = now() - start;
  printf("%llu %.0f %.0f\n", sent, sent / t, (sent + refused) / t);
  return 0;
}
`;

// ---------------------------------------------------------------------------------------
// Processes and namespaces

const children = new Set<ChildProcess>();

function spawnTracked(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Runs to completion (asynchronously, so ports keep being served); throws on failure. */
async function sh(cmd: string, args: string[]): Promise<string> {
  const child = spawnTracked(cmd, args);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`);
  return out;
}

/** Starts a command, resolving with its stdout once it exits. */
function background(cmd: string, args: string[]): { child: ChildProcess; done: Promise<string> } {
  const child = spawnTracked(cmd, args);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const done = once(child, 'close').then(([code]) => {
    if (code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${String(code)}: ${err.trim()}`);
    return out;
  });
  done.catch(() => undefined);
  return { child, done };
}

function whyNoTun(): string | undefined {
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/net/tun is not accessible';
  }
  return process.getuid?.() === 0 ? undefined : 'not root';
}

/**
 * A namespace with a process parked in it, so that the namespace's interface counters can
 * be read synchronously from /proc/<pid>/net/dev rather than by spawning `ip` mid-run.
 */
class Netns {
  private readonly parked: ChildProcess;
  private constructor(readonly name: string, parked: ChildProcess) {
    this.parked = parked;
  }

  static async create(name: string): Promise<Netns> {
    await sh('ip', ['netns', 'add', name]);
    await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    await sh('ip', ['netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
    const parked = spawnTracked('ip', ['netns', 'exec', name, 'sleep', '3600']);
    const ns = new Netns(name, parked);
    // `ip netns exec` setns()es, then execs sleep under the same pid: wait for that.
    for (let i = 0; i < 100 && !ns.sees('lo'); i++) await sleep(10);
    return ns;
  }

  /** Moves a TAP in and brings it up (optionally with an address). */
  async adopt(ifName: string, cidr?: string): Promise<void> {
    await sh('ip', ['link', 'set', ifName, 'netns', this.name]);
    if (cidr !== undefined) await sh('ip', ['-n', this.name, 'addr', 'add', cidr, 'dev', ifName]);
    await sh('ip', ['-n', this.name, 'link', 'set', ifName, 'up']);
  }

  private sees(ifName: string): boolean {
    try {
      return readFileSync(`/proc/${this.parked.pid}/net/dev`, 'utf8').includes(` ${ifName}:`);
    } catch {
      return false;
    }
  }

  /** Frames the namespace's side of `ifName` has received (what we wrote into the TAP). */
  rxPackets(ifName: string): number {
    const text = readFileSync(`/proc/${this.parked.pid}/net/dev`, 'utf8');
    const line = text.split('\n').find((l) => l.trimStart().startsWith(`${ifName}:`));
    if (line === undefined) throw new Error(`${ifName} not in ${this.name}`);
    return Number(line.split(':')[1].trim().split(/\s+/)[1]);
  }

  async destroy(): Promise<void> {
    this.parked.kill('SIGKILL');
    await sh('ip', ['netns', 'del', this.name]).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------
// The ports under test, behind one shape

interface TapUnderTest {
  readonly name: string;
  /** Counts received frames from now on; returns the running count. */
  startCounting(): () => number;
  /** Writes 60-byte frames as fast as it will take them until `until` (performance.now() ms). */
  pump(until: number): Promise<void>;
  close(): Promise<void>;
}

/** A frame nobody in the pod wants (a unicast MAC that is not the TAP's): dropped on arrival. */
const JUNK = Buffer.from('020000000009' + '020000000002' + '88b5' + '00'.repeat(46), 'hex');

function portUnderTest(port: Port, closed?: () => Promise<void>): TapUnderTest {
  return {
    name: port.name,
    startCounting() {
      port.start(() => undefined);
      return () => port.stats.rxFrames;
    },
    async pump(until) {
      while (performance.now() < until) {
        // A 5 ms slice of sends, then let the loop run (the relay's pipe drains then).
        const slice = performance.now() + 5;
        while (performance.now() < slice) {
          for (let i = 0; i < 256; i++) port.send(JUNK, 0, JUNK.length);
          port.flush();
        }
        await yieldToLoop();
      }
    },
    async close() {
      port.close();
      if (closed) await closed();
    },
  };
}

interface Tuntap2Device {
  readonly name: string;
  on(event: 'data', listener: (frame: Buffer) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean;
  once(event: 'drain', listener: () => void): void;
  release(callback?: () => void): void;
}

function loadTuntap2(): { LinuxTap: new () => Tuntap2Device } | string {
  try {
    return createRequire(import.meta.url)('@xiaobaidadada/node-tuntap2-wintun') as { LinuxTap: new () => Tuntap2Device };
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
}

/** The registry's tuntap2 fork: fs streams over the fd, one thread-pool read() or write() per frame. */
async function openTuntap2(name: string, ns: Netns, LinuxTap: new () => Tuntap2Device): Promise<TapUnderTest> {
  const dev = new LinuxTap();
  // Deleting the device under it (see close) fails its pending read: expected, not news.
  dev.on('error', () => undefined);
  // It cannot name the device at creation (it refuses options.name); rename while down.
  await sh('ip', ['link', 'set', dev.name, 'name', name]);
  let count = 0;
  return {
    name,
    startCounting() {
      dev.on('data', () => count++);
      return () => count;
    },
    async pump(until) {
      // Its write stream queues without bound; honour its backpressure as a caller should.
      while (performance.now() < until) {
        if (!dev.write(JUNK)) await Promise.race([new Promise<void>((r) => dev.once('drain', r)), sleep(50)]);
      }
    },
    async close() {
      // Its fd is blocking and a thread-pool read() is always pending on it; closing the
      // fd does not wake that read, and the stream waits for it before closing. Deleting
      // the device does wake it.
      const released = new Promise<void>((resolve) => dev.release(resolve));
      await sh('ip', ['-n', ns.name, 'link', 'del', name]).catch(() => undefined);
      await Promise.race([released, sleep(2000)]);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Measurements

/** Rate of `counter` over the window that opens WARMUP_MS from now. */
async function rateOver(counter: () => number): Promise<number> {
  await sleep(WARMUP_MS);
  const c0 = counter();
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  return ((counter() - c0) * 1000) / (performance.now() - t0);
}

async function tapRead(ns: Netns, tap: TapUnderTest, blast: string): Promise<{ read: number; offered: number }> {
  const counter = tap.startCounting();
  const load = background('ip', ['netns', 'exec', ns.name, blast, 'packet', tap.name, String(SECONDS + 1), String(MAX_FRAMES)]);
  const read = await rateOver(counter);
  const [, , offered] = (await load.done).trim().split(' ').map(Number);
  return { read, offered };
}

async function tapWrite(ns: Netns, tap: TapUnderTest): Promise<number> {
  const until = performance.now() + WARMUP_MS + SECONDS * 1000 + 200;
  const pumping = tap.pump(until);
  const rate = await rateOver(() => ns.rxPackets(tap.name));
  await pumping;
  return rate;
}

const rate = (name: string, value: number, unit = 'frames/s'): Figure => ({ name, value: Math.round(value), unit });

async function tapFigures(ctx: BenchContext, blast: string | undefined): Promise<Figure[]> {
  const figures: Figure[] = [];
  const ns = await Netns.create(NS);
  try {
    const contenders: [string, () => Promise<TapUnderTest>][] = [];
    if (nativeIo !== undefined) contenders.push(['addon', async () => portUnderTest(TapPort.open(`pwb${ID}a`))]);
    else ctx.log(`  (addon: ${nativeIoUnavailable})`);
    contenders.push([
      'python relay',
      async () => {
        const port = await RelayTapPort.open(`pwb${ID}p`);
        return portUnderTest(port, () => port.exited);
      },
    ]);
    const tuntap2 = loadTuntap2();
    if (typeof tuntap2 === 'string') ctx.log(`  (tuntap2 fork unavailable: ${tuntap2})`);
    else contenders.push(['tuntap2 fork', () => openTuntap2(`pwb${ID}t`, ns, tuntap2.LinuxTap)]);

    const reads = new Map<string, number>();
    const writes = new Map<string, number>();
    for (const [label, open] of contenders) {
      const readName = `tap read, ${label}`;
      const writeName = `tap write, ${label}`;
      if (!ctx.selects(readName) && !ctx.selects(writeName)) continue;
      if (ctx.selects(readName) && blast !== undefined) {
        const tap = await open();
        try {
          await ns.adopt(tap.name);
          const { read, offered } = await tapRead(ns, tap, blast);
          ctx.log(`  ${readName}: ${Math.round(read)} frames/s (offered ${Math.round(offered)})`);
          figures.push(rate(readName, read));
          reads.set(label, read);
        } finally {
          await tap.close();
        }
      }
      if (ctx.selects(writeName)) {
        const tap = await open();
        try {
          await ns.adopt(tap.name);
          const written = await tapWrite(ns, tap);
          ctx.log(`  ${writeName}: ${Math.round(written)} frames/s`);
          figures.push(rate(writeName, written));
          writes.set(label, written);
        } finally {
          await tap.close();
        }
      }
    }
    const ref = 'tuntap2 fork';
    for (const [what, m] of [['read', reads], ['write', writes]] as const) {
      const ours = m.get('addon');
      const theirs = m.get(ref);
      if (ours !== undefined && theirs !== undefined && theirs > 0) {
        figures.push({ name: `tap ${what}: addon / tuntap2 fork`, value: Number((ours / theirs).toFixed(1)), unit: 'x' });
      }
    }
  } finally {
    await ns.destroy();
  }
  return figures;
}

/**
 * iperf3 TCP between two pods whose TAPs are joined by an addon relay in this process;
 * with offload, 64 KiB super-frames cross the relay unsegmented.
 */
async function relayFigures(ctx: BenchContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  if (nativeIo === undefined) return figures;
  const iperf = ['/usr/bin/iperf3', '/usr/local/bin/iperf3'].find((p) => existsSync(p));
  if (iperf === undefined) {
    ctx.log('  (iperf3 not installed: no relay figures)');
    return figures;
  }
  for (const offload of [false, true]) {
    const name = `tap-to-tap relay, iperf3 TCP, addon, ${offload ? 'TSO offload' : 'no offload'}`;
    if (!ctx.selects(name)) continue;
    const nsA = await Netns.create(NS);
    const nsB = await Netns.create(NS_B);
    const a = TapPort.open(`pwb${ID}x`, { offload });
    const b = TapPort.open(`pwb${ID}y`, { offload });
    try {
      await nsA.adopt(a.name, '10.124.0.2/24');
      await nsB.adopt(b.name, '10.124.0.3/24');
      const relay = (to: TapPort) => (batch: RxBatch) => {
        for (let i = 0; i < batch.count; i++) {
          to.send(batch.buf, batch.offsets[i], batch.lengths[i], {
            flags: batch.flags[i],
            gsoType: batch.gsoType[i],
            gsoSize: batch.gsoSize[i],
            csumStart: batch.csumStart[i],
            csumOffset: batch.csumOffset[i],
          });
        }
        to.flush();
      };
      a.start(relay(b));
      b.start(relay(a));
      const server = background('ip', ['netns', 'exec', nsB.name, iperf, '-s', '-1', '-B', '10.124.0.3', '-p', '5201']);
      await sleep(300);
      const out = await sh('ip', ['netns', 'exec', nsA.name, iperf, '-c', '10.124.0.3', '-p', '5201', '-t', String(SECONDS + 1), '-O', '1', '-J']);
      await server.done.catch(() => undefined);
      const bps = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
      ctx.log(`  ${name}: ${(bps / 1e9).toFixed(2)} Gbit/s`);
      figures.push({ name, value: Number((bps / 1e9).toFixed(2)), unit: 'Gbit/s' });
    } finally {
      a.close();
      b.close();
      await nsA.destroy();
      await nsB.destroy();
    }
  }
  return figures;
}

interface DatagramUnderTest {
  readonly port: number;
  readonly stats: PortStats;
  start(): void;
  pump(until: number, to: number, toPort: number): Promise<void>;
  close(): void;
}

function datagramUnderTest(p: DatagramPort): DatagramUnderTest {
  const payload = Buffer.alloc(64, 0x5a);
  return {
    port: p.port,
    stats: p.stats,
    start: () => p.start(() => undefined),
    async pump(until, to, toPort) {
      while (performance.now() < until) {
        const slice = performance.now() + 5;
        while (performance.now() < slice) {
          for (let i = 0; i < 64; i++) p.send(payload, 0, payload.length, to, toPort);
          p.flush();
        }
        await yieldToLoop();
      }
    },
    close: () => p.close(),
  };
}

async function udpFigures(ctx: BenchContext, blast: string | undefined): Promise<Figure[]> {
  const figures: Figure[] = [];
  const RX = '127.0.0.2';
  const TX = '127.0.0.3';
  const kinds: [string, (addr: string) => Promise<DatagramUnderTest>][] = [];
  if (nativeIo !== undefined) kinds.push(['addon', async (a) => datagramUnderTest(UdpPort.open(a, 0, { maxDatagram: 2048 }))]);
  kinds.push(['node:dgram', async (a) => datagramUnderTest(await DgramPort.open(a, 0, { maxDatagram: 2048 }))]);

  for (const [label, open] of kinds) {
    const recvName = `udp receive, ${label}`;
    if (ctx.selects(recvName) && blast !== undefined) {
      const port = await open(RX);
      try {
        port.start();
        // UDP_SEGMENT: the sender's cheapest way to offer many small datagrams (see below).
        const load = background(blast, ['udp', TX, RX, String(port.port), String(SECONDS + 1), String(MAX_FRAMES), '64', '1']);
        const got = await rateOver(() => port.stats.rxFrames);
        const [, , offered] = (await load.done).trim().split(' ').map(Number);
        ctx.log(`  ${recvName}: ${Math.round(got)} datagrams/s of 64 B (offered ${Math.round(offered)})`);
        figures.push(rate(recvName, got, 'datagrams/s'));
      } finally {
        port.close();
      }
    }
    const sendName = `udp send, ${label}`;
    if (ctx.selects(sendName) && blast !== undefined) {
      const port = await open(TX);
      const sinkPort = 20000 + (process.pid % 20000);
      const sink = background(blast, ['sink', RX, String(sinkPort), String(SECONDS + 1)]);
      try {
        await once(sink.child.stdout!, 'data');
        port.start();
        const until = performance.now() + WARMUP_MS + SECONDS * 1000 + 200;
        const pumping = port.pump(until, parseIpv4(RX)!, sinkPort);
        const sent = await rateOver(() => port.stats.txFrames);
        await pumping;
        const delivered = lastNumber(await sink.done) / (SECONDS + 1);
        ctx.log(`  ${sendName}: ${Math.round(sent)} datagrams/s of 64 B (the sink saw ~${Math.round(delivered)}/s)`);
        figures.push(rate(sendName, sent, 'datagrams/s'));
      } finally {
        port.close();
        sink.child.kill();
      }
    }
  }

  // UDP GSO: the C sender alone, 64 x 100 B to one peer per call, sendmmsg vs UDP_SEGMENT.
  if (blast !== undefined) {
    for (const gso of [0, 1]) {
      const name = `udp send 100 B to one peer, C, ${gso ? 'UDP_SEGMENT (64 per send)' : 'sendmmsg (64 per call)'}`;
      if (!ctx.selects(name)) continue;
      const sinkPort = 40000 + (process.pid % 20000);
      const sink = background(blast, ['sink', RX, String(sinkPort), String(SECONDS + 1)]);
      await once(sink.child.stdout!, 'data');
      const out = await background(blast, ['udp', TX, RX, String(sinkPort), String(SECONDS), String(MAX_FRAMES), '100', String(gso)]).done;
      const [, sent] = out.trim().split(' ').map(Number);
      const delivered = lastNumber(await sink.done) / SECONDS;
      ctx.log(`  ${name}: ${Math.round(sent)} datagrams/s sent, the recvmmsg sink got ~${Math.round(delivered)}/s`);
      figures.push(rate(name, sent, 'datagrams/s'));
      figures.push(rate(`${name}, received`, delivered, 'datagrams/s'));
    }
  }
  return figures;
}

/** The sink prints "ready", then its count. */
function lastNumber(out: string): number {
  return Number(out.trim().split('\n').pop());
}

/** Compiles the load generator; undefined (and a log line) without gcc. */
async function buildBlaster(ctx: BenchContext, dir: string): Promise<string | undefined> {
  const src = path.join(dir, 'blast.c');
  const exe = path.join(dir, 'blast');
  writeFileSync(src, BLAST_C);
  try {
    await sh('gcc', ['-O2', '-Wall', '-o', exe, src]);
    return exe;
  } catch (err) {
    ctx.log(`  (no load generator: ${(err as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

const io: BenchModule = {
  name: 'io',
  async run(ctx) {
    // A filter that names none of these figures must not build TAPs or namespaces.
    const probes = ['tap read, addon', 'tap write, addon', 'tap read, python relay', 'udp receive, addon', 'udp send, addon', 'tuntap2'];
    if (!probes.some((name) => ctx.selects(name))) return [];
    // Rates here are CPU-bound on both sides of the kernel: say what else was running.
    ctx.log(`  ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(1)} at start; ${SECONDS} s windows`);
    const dir = mkdtempSync(path.join(tmpdir(), 'pw-iobench-'));
    const figures: Figure[] = [];
    try {
      const blast = await buildBlaster(ctx, dir);
      const noTun = whyNoTun();
      if (noTun !== undefined) ctx.log(`  (no TAP figures: ${noTun})`);
      else {
        figures.push(...(await tapFigures(ctx, blast)));
        figures.push(...(await relayFigures(ctx)));
      }
      figures.push(...(await udpFigures(ctx, blast)));
    } finally {
      for (const child of children) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
    return figures;
  },
};
export default io;

// Alone: node dist/bench/io.bench.js [filter...]
if (process.argv[1] !== undefined && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  const terms = process.argv.slice(2).map((s) => s.toLowerCase());
  const ctx: BenchContext = {
    outDir: path.dirname(fileURLToPath(import.meta.url)),
    budget: { maxTime: SECONDS, minSamples: 1 },
    selects: (name) => terms.length === 0 || terms.some((t) => name.toLowerCase().includes(t)),
    log: (line) => console.log(line),
  };
  io.run(ctx).then(
    (figures) => {
      console.table(figures.map((f) => ({ name: f.name, value: f.value, unit: f.unit })));
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
