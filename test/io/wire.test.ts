/**
 * The userspace wire and the stream framing under it (shared with the python TAP relay).
 * No privilege needed.
 */
import { PassThrough } from 'node:stream';
import test from 'ava';
import { StreamPort } from '../../native-free/stream-port.js';
import { createWirePair } from '../../native-free/wire.js';
import { VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_TCPV4, type RxBatch } from '../../src/io/port.js';
import { hex } from '../helpers/bytes.js';

function frameOf(n: number, length: number): Buffer {
  const f = Buffer.alloc(length, n & 0xff);
  f.writeUInt32BE(n, 0);
  return f;
}

test('wire: frames and their offload metadata cross intact, in batches', async (t) => {
  const [a, b] = await createWirePair();
  try {
    t.true(a.offload);
    const got: { n: number; len: number; ok: boolean; gso: number; gsoSize: number; cs: number; co: number; flags: number }[] = [];
    const done = new Promise<void>((resolve) =>
      b.start((batch: RxBatch) => {
        for (let i = 0; i < batch.count; i++) {
          const off = batch.offsets[i];
          const len = batch.lengths[i];
          const n = batch.buf.readUInt32BE(off);
          got.push({
            n,
            len,
            ok: batch.buf.subarray(off, off + len).equals(frameOf(n, len)),
            gso: batch.gsoType[i],
            gsoSize: batch.gsoSize[i],
            cs: batch.csumStart[i],
            co: batch.csumOffset[i],
            flags: batch.flags[i],
          });
        }
        if (got.length === 1000) resolve();
      }),
    );
    for (let n = 0; n < 1000; n++) {
      const len = n === 500 ? 65000 : 60 + (n % 1400);
      const offload = n % 2 === 0 ? { flags: VNET_HDR_F_NEEDS_CSUM, gsoType: VNET_HDR_GSO_TCPV4, gsoSize: 1448, csumStart: 34, csumOffset: 16 } : undefined;
      t.true(a.send(frameOf(n, len), 0, len, offload));
      if (n % 100 === 99) a.flush();
    }
    a.flush();
    await done;
    t.deepEqual(
      got.map((g) => g.n),
      Array.from({ length: 1000 }, (_, i) => i),
    );
    t.true(got.every((g) => g.ok));
    t.is(got[500].len, 65000);
    t.deepEqual(
      { gso: got[2].gso, gsoSize: got[2].gsoSize, cs: got[2].cs, co: got[2].co, flags: got[2].flags },
      { gso: VNET_HDR_GSO_TCPV4, gsoSize: 1448, cs: 34, co: 16, flags: VNET_HDR_F_NEEDS_CSUM },
    );
    t.deepEqual({ gso: got[3].gso, flags: got[3].flags }, { gso: 0, flags: 0 }, 'a frame without metadata clears it');
    t.is(b.stats.rxFrames, 1000);
    t.true(b.stats.rxBatches < 1000);
    t.is(a.stats.txFrames, 1000);
  } finally {
    a.close();
    b.close();
  }
});

test('wire: the peer closing is reported through onError', async (t) => {
  const [a, b] = await createWirePair();
  const err = new Promise<Error>((resolve) => b.start(() => undefined, resolve));
  a.start(() => undefined, () => undefined);
  a.close();
  t.regex((await err).message, /closed/);
  t.is(b.send(Buffer.alloc(60), 0, 60), false, 'a dead port drops');
});

/** A StreamPort fed by hand, without offload metadata (the relay's plain format). */
function streamPort(): { port: StreamPort; input: PassThrough } {
  const input = new PassThrough();
  const output = new PassThrough();
  const port = new StreamPort(input, output, { name: 'test', vnetHdr: false }, () => input.end());
  return { port, input };
}

test('stream: records split at every byte boundary still come out whole', async (t) => {
  // Two records: "abc" and 70 bytes of 0x42.
  const stream = Buffer.concat([hex('00000003 616263'), hex('00000046'), Buffer.alloc(70, 0x42)]);
  for (let cut = 1; cut < stream.length; cut++) {
    const { port, input } = streamPort();
    const frames: string[] = [];
    port.start((batch) => {
      for (let i = 0; i < batch.count; i++) frames.push(batch.buf.toString('latin1', batch.offsets[i], batch.offsets[i] + batch.lengths[i]));
    });
    input.write(stream.subarray(0, cut));
    input.write(stream.subarray(cut));
    await new Promise((r) => setImmediate(r));
    t.deepEqual(frames, ['abc', 'B'.repeat(70)], `cut at ${cut}`);
    port.close();
  }
});

test('stream: one chunk with many records is one batch; a byte-by-byte feed still works', async (t) => {
  const records = Buffer.concat(Array.from({ length: 10 }, (_, i) => Buffer.concat([hex('00000002'), Buffer.from([i, i])])));
  const { port, input } = streamPort();
  const counts: number[] = [];
  port.start((batch) => counts.push(batch.count));
  input.write(records);
  for (const byte of records) input.write(Buffer.from([byte]));
  await new Promise((r) => setImmediate(r));
  t.is(counts[0], 10);
  t.is(counts.reduce((x, y) => x + y, 0), 20);
  t.is(port.stats.rxFrames, 20);
  port.close();
});

test('stream: an impossible record length stops the port and is reported', async (t) => {
  const { port, input } = streamPort();
  const err = new Promise<Error>((resolve) => port.start(() => t.fail('no frame expected'), resolve));
  input.write(hex('7fffffff 00'));
  t.regex((await err).message, /bad record length/);
  t.is(port.stats.rxErrors, 1);
});
