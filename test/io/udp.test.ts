/**
 * The overlay socket, addon and node:dgram alike: two nodes on 127.0.0.2 and 127.0.0.3
 * exchange 10k datagrams each way and see each other's true address and port. Loopback
 * only, no privilege needed.
 */
import test from 'ava';
import { DgramPort } from '../../native-free/udp.js';
import { nativeIo, nativeIoUnavailable, STAT_TX_DROPPED, type NativeUdpPort } from '../../src/io/native.js';
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
      // b echoes every datagram to whoever sent it, after checking the sender is a: the
      // addon's straight from its receive slab, by reference (dgram copies).
      let badSource = 0;
      b.start((batch: DatagramBatch) => {
        t.is(batch.slab !== 0, backend === 'addon');
        for (let i = 0; i < batch.count; i++) {
          if (batch.addrs[i] !== A || batch.ports[i] !== a.port) badSource++;
          b.sendParts(batch.buf, 0, 0, batch.buf, batch.offsets[i], batch.lengths[i], batch.slab, batch.addrs[i], batch.ports[i]);
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

if (nativeIo !== undefined) {
  test('addon: a header and a body by reference leave as one datagram; a reference outside its slab is dropped', async (t) => {
    const a = UdpPort.open('127.0.0.2', 0);
    const b = UdpPort.open('127.0.0.3', 0);
    const c = UdpPort.open('127.0.0.4', 0);
    try {
      const received: Buffer[] = [];
      const atC = new Promise<void>((resolve) => {
        c.start((batch) => {
          for (let i = 0; i < batch.count; i++) received.push(Buffer.from(batch.buf.subarray(batch.offsets[i], batch.offsets[i] + batch.lengths[i])));
          if (received.length >= 2) resolve();
        });
      });
      const forwarded = new Promise<void>((resolve) => {
        b.start((batch) => {
          const header = Buffer.from('VXLANHDR');
          for (let i = 0; i < batch.count; i++) {
            const off = batch.offsets[i];
            const len = batch.lengths[i];
            b.sendParts(header, 0, 8, batch.buf, off, len, batch.slab, parseIpv4('127.0.0.4')!, c.port);
            // The same body once more, naming a slab that is not registered: refused at
            // flush and counted.
            b.sendParts(header, 0, 8, batch.buf, off, len, 0xffff, parseIpv4('127.0.0.4')!, c.port);
            b.sendParts(batch.buf, off, 0, batch.buf, off + 4, len - 4, batch.slab, parseIpv4('127.0.0.4')!, c.port);
          }
          b.flush();
          resolve();
        });
      });
      a.start(() => undefined);
      const frame = Buffer.from('0123456789abcdef-inner-frame');
      a.send(frame, 0, frame.length, B, b.port);
      a.flush();
      await forwarded;
      await atC;
      t.deepEqual(received.map((d) => d.toString()), ['VXLANHDR0123456789abcdef-inner-frame', '456789abcdef-inner-frame']);
      t.is(b.stats.txDropped, 1);
      t.is(b.stats.txFrames, 2);
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });
}

if (nativeIo !== undefined) {
  test('addon: flush refuses a reference past the end of its slab, whatever JavaScript wrote', (t) => {
    const io = nativeIo!;
    const s1 = io.openUdp(A, 0, 1 << 16, false);
    const s2 = io.openUdp(B, 0, 1 << 16, false);
    const source = new io.IoPort(s1.fd, io.KIND_UDP, { batch: 4, frameCap: 2048 }) as NativeUdpPort;
    const port = new io.IoPort(s2.fd, io.KIND_UDP, { batch: 4, frameCap: 2048 }) as NativeUdpPort;
    try {
      t.true(source.rxSlab > 0);
      t.not(source.rxSlab, port.rxSlab);
      const end = source.rxBuf.length;
      const entries: [number, number, number][] = [
        [source.rxSlab, end - 4, 8], // runs past the end
        [source.rxSlab, end + 1, 0], // starts past the end
        [0xfffffff, 0, 8], // no such slab
        [source.rxSlab, end - 8, 8], // the last 8 bytes: fine
      ];
      entries.forEach(([slab, offset, length], i) => {
        port.txOffsets[i] = 0;
        port.txLengths[i] = 0;
        port.txRefSlab[i] = slab;
        port.txRefOffsets[i] = offset;
        port.txRefLengths[i] = length;
        port.txAddrs[i] = A;
        port.txPorts[i] = s1.port;
      });
      t.is(port.flush(entries.length), 1);
      t.is(port.stats[STAT_TX_DROPPED], 3);
    } finally {
      source.close();
      port.close();
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
