/**
 * The overlay socket, addon and node:dgram alike: two nodes on 127.0.0.2 and 127.0.0.3
 * exchange 10k datagrams each way and see each other's true address and port. Loopback
 * only, no privilege needed.
 */
import test from 'ava';
import { DgramPort } from '../../native-free/udp.js';
import { nativeIo, nativeIoUnavailable } from '../../src/io/native.js';
import { openOverlaySocket, type OverlayBackend } from '../../src/io/open.js';
import type { DatagramBatch, DatagramPort } from '../../src/io/port.js';
import { UdpPort } from '../../src/io/udp.js';
import { parseIpv4 } from '../../src/packet/addr.js';

const A = parseIpv4('127.0.0.2')!;
const B = parseIpv4('127.0.0.3')!;
const COUNT = 10_000;
const WINDOW = 512; // datagrams in flight: well within the socket buffers, so none is lost

const backends: OverlayBackend[] = nativeIo !== undefined ? ['addon', 'dgram'] : ['dgram'];
if (nativeIo === undefined) {
  test('addon backend', (t) => {
    t.log(`skipped: ${nativeIoUnavailable}`);
    t.pass();
  });
}

for (const backend of backends) {
  test(`${backend}: 10k datagrams each way between two nodes, with true peer addresses`, async (t) => {
    const a = await openOverlaySocket('127.0.0.2', 0, { backend, maxDatagram: 2048 });
    const b = await openOverlaySocket(B, 0, { backend, maxDatagram: 2048 });
    t.is(a.backend, backend);
    t.is(a.address, A);
    t.not(a.port, 0);
    try {
      // b echoes every datagram to whoever sent it, after checking the sender is a.
      let badSource = 0;
      b.start((batch: DatagramBatch) => {
        for (let i = 0; i < batch.count; i++) {
          if (batch.addrs[i] !== A || batch.ports[i] !== a.port) badSource++;
          b.send(batch.buf, batch.offsets[i], batch.lengths[i], batch.addrs[i], batch.ports[i]);
        }
        b.flush();
      });
      const seen = new Uint8Array(COUNT);
      let echoed = 0;
      let echoBadSource = 0;
      let sent = 0;
      const payload = Buffer.alloc(200);
      const sendSome = (): void => {
        while (sent < COUNT && sent - echoed < WINDOW) {
          payload.writeUInt32BE(sent, 0);
          payload.fill(sent & 0xff, 4);
          a.send(payload, 0, 4 + (sent % 190), B, b.port);
          sent++;
        }
        a.flush();
      };
      const done = new Promise<void>((resolve) => {
        a.start((batch) => {
          for (let i = 0; i < batch.count; i++) {
            if (batch.addrs[i] !== B || batch.ports[i] !== b.port) echoBadSource++;
            const n = batch.buf.readUInt32BE(batch.offsets[i]);
            if (n < COUNT && batch.lengths[i] === 4 + (n % 190) && batch.buf[batch.offsets[i] + batch.lengths[i] - 1] === (n & 0xff)) {
              seen[n]++;
            }
            echoed++;
          }
          if (echoed >= COUNT) resolve();
          else sendSome();
        });
      });
      sendSome();
      await done;
      t.is(badSource, 0);
      t.is(echoBadSource, 0);
      t.is(seen.filter((x) => x === 1).length, COUNT, 'every datagram came back once, intact');
      t.is(a.stats.txFrames, COUNT);
      t.is(b.stats.rxFrames, COUNT);
      t.is(b.stats.txFrames, COUNT);
      t.is(a.stats.rxFrames, COUNT);
      t.is(a.stats.txDropped + b.stats.txDropped + a.stats.rxErrors + b.stats.rxErrors, 0);
      t.log(`${backend}: ${b.stats.rxFrames} datagrams in ${b.stats.rxBatches} batches`);
      t.true(b.stats.rxBatches < b.stats.rxFrames, 'datagrams arrive in batches');
    } finally {
      a.close();
      b.close();
    }
  });

  test(`${backend}: no SO_REUSEADDR: a second bind to the same address fails`, async (t) => {
    const a = await openOverlaySocket('127.0.0.2', 0, { backend });
    try {
      const err = await t.throwsAsync(openOverlaySocket('127.0.0.2', a.port, { backend }));
      t.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
    } finally {
      a.close();
    }
  });

  test(`${backend}: a datagram the kernel refuses is dropped and counted, the socket lives on`, async (t) => {
    const a = await openOverlaySocket('127.0.0.2', 0, { backend });
    const b = await openOverlaySocket('127.0.0.3', 0, { backend });
    try {
      const got = new Promise<number>((resolve) => b.start((batch) => resolve(batch.count)));
      a.start(() => undefined);
      const data = Buffer.from('hello');
      a.send(data, 0, data.length, B, 0); // port 0: refused
      a.send(data, 0, data.length, B, b.port);
      a.flush();
      t.is(await got, 1);
      t.is(a.stats.txDropped, 1);
      t.is(a.stats.txFrames, 1);
    } finally {
      a.close();
      b.close();
    }
  });
}

if (nativeIo !== undefined) {
  test('addon: a datagram larger than maxDatagram is counted as an error, not delivered cut', async (t) => {
    const a = UdpPort.open('127.0.0.2', 0);
    const b = UdpPort.open('127.0.0.3', 0, { maxDatagram: 512 });
    try {
      const got = new Promise<number[]>((resolve) => b.start((batch) => resolve(Array.from(batch.lengths.subarray(0, batch.count)))));
      const big = Buffer.alloc(1000);
      a.send(big, 0, 1000, B, b.port);
      a.send(big, 0, 100, B, b.port);
      a.flush();
      t.deepEqual(await got, [100]);
      t.is(b.stats.rxErrors, 1);
    } finally {
      a.close();
      b.close();
    }
  });
}

test('dgram fallback batches what arrives within one event-loop turn', async (t) => {
  const a: DatagramPort = await DgramPort.open('127.0.0.2', 0);
  const b: DatagramPort = await DgramPort.open('127.0.0.3', 0);
  try {
    let batches = 0;
    let frames = 0;
    const done = new Promise<void>((resolve) =>
      b.start((batch) => {
        batches++;
        frames += batch.count;
        if (frames === 200) resolve();
      }),
    );
    const data = Buffer.alloc(64);
    for (let i = 0; i < 200; i++) a.send(data, 0, 64, B, b.port);
    a.flush();
    await done;
    t.true(batches < frames);
  } finally {
    a.close();
    b.close();
  }
});
