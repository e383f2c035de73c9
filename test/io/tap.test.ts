/**
 * TAP ports against a real kernel: a pod namespace whose eth0 is our TAP, real ping and
 * real TCP inside it. Needs root and /dev/net/tun; elsewhere it says why and skips.
 *
 * Everything lives in namespaces made here (pw-iotest-<pid>, pw-iotest-<pid>-b) and TAPs
 * named pwio<pid%10000><letter>; nothing touches the root namespace's addresses or routes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import { parseIpv4, parseMac } from '../../src/packet/addr.js';
import { openTapPort, type OpenedTap, type TapBackend } from '../../src/io/open.js';
import { nativeIo, nativeIoUnavailable } from '../../src/io/native.js';
import { VNET_HDR_GSO_TCPV4, type RxBatch } from '../../src/io/port.js';
import { BURST_PY, must, plugIntoPod, replyTo, run, TCP_SINK_PY, TCP_SOURCE_PY, whyNoTun } from './helpers.js';

const NS = `pw-iotest-${process.pid}`;
const NS_B = `pw-iotest-${process.pid}-b`;
const ID = process.pid % 10000;
const GATEWAY = parseIpv4('10.123.0.1')!;
const GATEWAY_MAC = parseMac('02:00:00:7b:00:01')!;

const noTun = whyNoTun();
// Without a built addon the fallback is what runs, so it is what gets tested.
const backends: TapBackend[] = nativeIo !== undefined ? ['addon', 'python-relay'] : ['python-relay'];

const opened: OpenedTap[] = [];
const children: ChildProcess[] = [];

async function openTap(t: ExecutionContext, backend: TapBackend, letter: string, offload = false): Promise<OpenedTap> {
  const port = await openTapPort(`pwio${ID}${letter}`, { backend, offload });
  opened.push(port);
  t.is(port.backend, backend);
  return port;
}

/** Closes a port and waits until its TAP is gone (the relay exits asynchronously). */
async function closeTap(port: OpenedTap): Promise<void> {
  port.close();
  const exited = (port as { exited?: Promise<void> }).exited;
  if (exited !== undefined) await exited;
}

/** Answers ARP and ping for the gateway address, as the node's bridge would. */
function serveGateway(port: OpenedTap): void {
  port.start((batch: RxBatch) => {
    for (let i = 0; i < batch.count; i++) {
      const frame = batch.buf.subarray(batch.offsets[i], batch.offsets[i] + batch.lengths[i]);
      const reply = replyTo(frame, GATEWAY, GATEWAY_MAC);
      if (reply !== undefined) port.send(reply, 0, reply.length);
    }
    port.flush();
  });
}

/** Starts a long-running command inside a namespace; it is killed (by pid) at teardown. */
function spawnIn(ns: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

if (noTun !== undefined) {
  test('TAP tests', (t) => {
    t.log(`skipped: ${noTun}`);
    t.pass();
  });
} else {
  test.before(async () => {
    await must('ip', ['netns', 'add', NS]);
    await must('ip', ['netns', 'add', NS_B]);
    for (const ns of [NS, NS_B]) {
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // Keep IPv6 autoconfiguration chatter (router solicitations, DAD) off the test TAPs.
      await must('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
  });

  test.after.always(async () => {
    for (const port of opened) await closeTap(port).catch(() => undefined);
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // TAPs still in the root namespace (a test failed before moving them) go with their fd;
    // whatever is left in the namespaces goes with them.
    await run('ip', ['netns', 'del', NS]);
    await run('ip', ['netns', 'del', NS_B]);
  });

  if (nativeIo === undefined) {
    test.serial('addon backend', (t) => {
      t.log(`skipped: ${nativeIoUnavailable}`);
      t.pass();
    });
  }

  for (const backend of backends) {
    test.serial(`${backend}: ping from a pod through a TAP moved into its namespace and renamed eth0`, async (t) => {
      const port = await openTap(t, backend, backend === 'addon' ? 'a' : 'p');
      await plugIntoPod(port.name, NS, '10.123.0.2/24');
      serveGateway(port);
      const ping = await run('ip', ['netns', 'exec', NS, 'ping', '-c', '3', '-W', '2', '10.123.0.1']);
      t.is(ping.code, 0, ping.stdout + ping.stderr);
      t.regex(ping.stdout, /3 received/);
      t.true(port.stats.rxFrames >= 4, 'an ARP request and three echo requests');
      t.true(port.stats.txFrames >= 4, 'an ARP reply and three echo replies');
      t.is(port.stats.txDropped, 0);
      await closeTap(port);
      // Closing the port deletes the device, even inside the namespace.
      t.not((await run('ip', ['-n', NS, 'link', 'show', 'eth0'])).code, 0);
    });

    test.serial(`${backend}: a TAP deleted under the port is reported, and the port stops`, async (t) => {
      const port = await openTap(t, backend, backend === 'addon' ? 'd' : 'e');
      await plugIntoPod(port.name, NS, '10.123.0.2/24');
      const failed = new Promise<Error>((resolve) => port.start(() => undefined, resolve));
      await must('ip', ['-n', NS, 'link', 'del', 'eth0']);
      const err = await failed;
      t.log(`${backend}: ${err.message}`);
      t.truthy(err.message);
      t.false(port.send(Buffer.alloc(60), 0, 60), 'a dead port drops');
      await closeTap(port);
    });

    test.serial(`${backend}: a burst arrives in batches`, async (t) => {
      const port = await openTap(t, backend, backend === 'addon' ? 'b' : 'q');
      await plugIntoPod(port.name, NS, '10.123.0.2/24');
      let biggest = 0;
      port.start((batch) => {
        if (batch.count > biggest) biggest = batch.count;
      });
      const bursting = run('ip', ['netns', 'exec', NS, 'python3', '-c', BURST_PY, '3000']);
      // Keep this thread busy while the burst lands, as a loaded node would be: the kernel
      // queues the frames (up to the TAP's txqueuelen) and one wake-up must read many.
      const busyUntil = performance.now() + 400;
      while (performance.now() < busyUntil);
      const burst = await bursting;
      t.is(burst.code, 0, burst.stderr);
      // Wait for the stragglers (the relay adds a pipe and a Python loop on the way).
      for (let i = 0; i < 50 && port.stats.rxFrames < 500; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      const { rxFrames, rxBatches } = port.stats;
      t.log(`${backend}: ${rxFrames} frames in ${rxBatches} batches, the biggest ${biggest}`);
      t.true(rxFrames >= 500, `only ${rxFrames} of 3000 frames arrived`);
      t.true(rxBatches < rxFrames);
      t.true(biggest > 1);
      await closeTap(port);
    });

    test.serial(`${backend}: offload: a TCP transfer crosses a relay between two pods as TSO super-frames`, async (t) => {
      const a = await openTap(t, backend, backend === 'addon' ? 'x' : 'u', true);
      const b = await openTap(t, backend, backend === 'addon' ? 'y' : 'v', true);
      t.true(a.offload && b.offload);
      await plugIntoPod(a.name, NS, '10.123.0.2/24');
      await plugIntoPod(b.name, NS_B, '10.123.0.3/24');
      let biggest = 0;
      let tso = 0;
      const relayTo = (to: OpenedTap) => (batch: RxBatch) => {
        for (let i = 0; i < batch.count; i++) {
          const len = batch.lengths[i];
          if (len > biggest) biggest = len;
          if (len > 1514 && (batch.gsoType[i] & 0x7f) === VNET_HDR_GSO_TCPV4) tso++;
          to.send(batch.buf, batch.offsets[i], len, {
            flags: batch.flags[i],
            gsoType: batch.gsoType[i],
            gsoSize: batch.gsoSize[i],
            csumStart: batch.csumStart[i],
            csumOffset: batch.csumOffset[i],
          }, batch.slab); // by reference from the receive slab where the addon has one
        }
        to.flush();
      };
      a.start(relayTo(b));
      b.start(relayTo(a));

      const bytes = 32 << 20;
      const sink = spawnIn(NS_B, ['python3', '-c', TCP_SINK_PY, '10.123.0.3', '5001']);
      let sinkOut = '';
      sink.stdout!.setEncoding('utf8').on('data', (s: string) => (sinkOut += s));
      while (!sinkOut.includes('listening')) await once(sink.stdout!, 'data');
      const source = await run('ip', ['netns', 'exec', NS, 'python3', '-c', TCP_SOURCE_PY, '10.123.0.3', '5001', String(bytes)]);
      t.is(source.code, 0, source.stderr);
      if (sink.exitCode === null) await once(sink, 'exit');
      t.is(Number(sinkOut.split('\n')[1]), bytes, 'the sink received every byte');
      t.log(`${backend}: biggest frame ${biggest} bytes, ${tso} TSO super-frames, ${a.stats.rxFrames} frames from the source`);
      t.true(biggest > 1514, 'frames larger than the MTU');
      t.true(tso > 0, 'frames marked GSO TCPV4');
      t.is(b.stats.txDropped, 0);
      await closeTap(a);
      await closeTap(b);
    });
  }
}
