/**
 * UDP segmentation offload on the overlay socket (UdpOptions.udpOffload): runs of
 * equal-sized datagrams to one peer leave as one glued datagram and arrive split again,
 * so both ends see exactly the datagrams that were sent, in order. Loopback only, no
 * privilege needed; the kernel does the gluing, so these run against the real thing.
 */
import test from 'ava';
import fc from 'fast-check';
import { DgramPort } from '../../native-free/udp.js';
import { nativeIo, nativeIoUnavailable } from '../../src/io/native.js';
import type { DatagramBatch, DatagramPort } from '../../src/io/port.js';
import { UdpPort } from '../../src/io/udp.js';
import { parseIpv4 } from '../../src/packet/addr.js';

const A = parseIpv4('127.0.0.2')!;
const B = parseIpv4('127.0.0.3')!;
const C = parseIpv4('127.0.0.4')!;

/** Datagram `seq` of `length` bytes: its number, then a fill that depends on both. */
function datagram(seq: number, length: number): Buffer {
  const d = Buffer.alloc(length);
  for (let i = 0; i < length; i++) d[i] = (seq * 31 + i * 7) & 0xff;
  if (length >= 4) d.writeUInt32BE(seq, 0);
  return d;
}

/** The same datagrams, boundaries included. */
function same(got: readonly Buffer[], want: readonly Buffer[]): boolean {
  return got.length === want.length && got.every((d, i) => d.equals(want[i]));
}

interface Received {
  readonly data: Buffer;
  readonly addr: number;
  readonly port: number;
}

/** Starts `port` and resolves with the first `count` datagrams (copies), or rejects after `ms`. */
function collect(port: DatagramPort, count: number, ms = 5000): Promise<Received[]> {
  return new Promise((resolve, reject) => {
    const got: Received[] = [];
    const timer = setTimeout(() => reject(new Error(`${port.name}: ${got.length} of ${count} datagrams after ${ms} ms`)), ms);
    if (count === 0) {
      clearTimeout(timer);
      resolve(got);
      return;
    }
    port.start((batch: DatagramBatch) => {
      for (let i = 0; i < batch.count; i++) {
        const at = batch.offsets[i];
        got.push({ data: Buffer.from(batch.buf.subarray(at, at + batch.lengths[i])), addr: batch.addrs[i], port: batch.ports[i] });
      }
      if (got.length >= count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

if (nativeIo === undefined) {
  test('udp offload', (t) => {
    t.log(`skipped: ${nativeIoUnavailable}`);
    t.pass();
  });
} else {
  test('runs of equal datagrams leave glued and arrive split, in order, byte for byte', async (t) => {
    const a = UdpPort.open(A, 0, { udpOffload: true });
    const b = UdpPort.open(B, 0, { udpOffload: true });
    const c = UdpPort.open(C, 0, { udpOffload: true });
    try {
      t.true(a.udpOffload && b.udpOffload, 'Linux 5.0 or later has UDP_SEGMENT and UDP_GRO');
      // [peer, length] in sending order: a run ended by a shorter datagram, a run broken by
      // another peer, a run longer than one glued send may carry (64), an empty datagram,
      // a run ended by a longer datagram, and datagrams too big to glue two of.
      const plan: [number, number][] = [
        ...Array.from({ length: 20 }, (): [number, number] => [B, 200]),
        [B, 120],
        [B, 120],
        ...Array.from({ length: 5 }, (): [number, number] => [B, 300]),
        [C, 300],
        ...Array.from({ length: 5 }, (): [number, number] => [B, 300]),
        ...Array.from({ length: 70 }, (): [number, number] => [B, 64]),
        [B, 0],
        [B, 50],
        [B, 50],
        [B, 51],
        [B, 40000],
        [B, 40000],
      ];
      const toB = plan.filter(([peer]) => peer === B).length;
      const atB = collect(b, toB);
      const atC = collect(c, 1);
      plan.forEach(([peer, length], seq) => a.send(datagram(seq, length), 0, length, peer, peer === B ? b.port : c.port));
      a.flush();
      const gotB = await atB;
      const gotC = await atC;

      const expected = (peer: number): Buffer[] => plan.flatMap(([p, length], seq) => (p === peer ? [datagram(seq, length)] : []));
      t.deepEqual(gotB.map((r) => r.data), expected(B));
      t.deepEqual(gotC.map((r) => r.data), expected(C));
      t.true([...gotB, ...gotC].every((r) => r.addr === A && r.port === a.port), 'every datagram carries its true source');
      t.is(a.stats.txFrames, plan.length);
      t.is(b.stats.rxFrames, toB);
      t.is(a.stats.txDropped + b.stats.rxErrors + c.stats.rxErrors, 0);
      // The kernel really glued: whole runs left and arrived as one datagram each.
      t.true(a.glued!.sent >= 90, `glued on send: ${a.glued!.sent}`);
      t.is(b.glued!.received, a.glued!.sent, 'every glued datagram went to b (c got a run of one)');
      t.true(b.stats.rxBatches <= 3);
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });

  test('a glued send reaches a socket without offload as single datagrams', async (t) => {
    const a = UdpPort.open(A, 0, { udpOffload: true });
    const plain = UdpPort.open(B, 0);
    const dgram = await DgramPort.open(C, 0);
    try {
      t.false(plain.udpOffload);
      t.is(plain.glued, undefined);
      const lengths = [...Array(40).fill(100), 30];
      const atPlain = collect(plain, lengths.length);
      const atDgram = collect(dgram, lengths.length);
      for (const port of [plain.port, dgram.port]) {
        lengths.forEach((length, seq) => a.send(datagram(seq, length), 0, length, port === plain.port ? B : C, port));
      }
      a.flush();
      const expected = lengths.map((length, seq) => datagram(seq, length));
      t.deepEqual((await atPlain).map((r) => r.data), expected);
      t.deepEqual((await atDgram).map((r) => r.data), expected);
      t.is(a.glued!.sent, 2 * lengths.length);
    } finally {
      a.close();
      plain.close();
      dgram.close();
    }
  });

  test('property: whatever the mix of sizes and peers, each peer gets its datagrams in order', async (t) => {
    const a = UdpPort.open(A, 0, { udpOffload: true });
    const b = UdpPort.open(B, 0, { udpOffload: true });
    const c = UdpPort.open(C, 0, { udpOffload: true });
    // One receiver per peer for the whole property; each run drains what it sent.
    const queues = new Map<number, Buffer[]>([
      [B, []],
      [C, []],
    ]);
    let wake: (() => void) | undefined;
    for (const [addr, port] of [
      [B, b],
      [C, c],
    ] as const) {
      port.start((batch) => {
        for (let i = 0; i < batch.count; i++) {
          const at = batch.offsets[i];
          queues.get(addr)!.push(Buffer.from(batch.buf.subarray(at, at + batch.lengths[i])));
        }
        wake?.();
      });
    }
    const drain = async (want: number): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (queues.get(B)!.length + queues.get(C)!.length < want && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
    };
    try {
      // Few distinct sizes, so that equal neighbours (the runs that glue) are common.
      const item = fc.record({ toC: fc.boolean(), length: fc.oneof(fc.constantFrom(0, 1, 64, 100, 1450), fc.integer({ min: 0, max: 9000 })) });
      await fc.assert(
        fc.asyncProperty(fc.array(item, { maxLength: 300 }), async (plan) => {
          queues.get(B)!.length = 0;
          queues.get(C)!.length = 0;
          plan.forEach(({ toC, length }, seq) => a.send(datagram(seq, length), 0, length, toC ? C : B, toC ? c.port : b.port));
          a.flush();
          await drain(plan.length);
          const expected = (toC: boolean): Buffer[] => plan.flatMap((p, seq) => (p.toC === toC ? [datagram(seq, p.length)] : []));
          return same(queues.get(B)!, expected(false)) && same(queues.get(C)!, expected(true));
        }),
        { numRuns: 60 },
      );
      t.is(a.stats.txDropped + b.stats.rxErrors + c.stats.rxErrors, 0);
      t.true(a.glued!.sent > 0);
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });

  test('udpOffload needs a receive slot for a whole glued datagram', (t) => {
    t.throws(() => UdpPort.open(A, 0, { udpOffload: true, maxDatagram: 2048 }), { message: /udpOffload needs maxDatagram 65507/ });
  });
}
