/**
 * Stand-in DNS servers for the benchmark, one per process, each on 127.0.0.1 at a port the
 * kernel picks (printed as `listening PORT` once ready):
 *
 *   --io addon --yaml FILE   podwire's Responder over the addon's UdpPort (src/io/udp.ts):
 *                            every ready datagram in one recvmmsg, the answers in one
 *                            sendmmsg, as the node's loopback listener does, in a process
 *                            that does nothing else.
 *   --io echo                node:dgram, one socket, and no DNS work at all: the query comes
 *                            back with QR set. The ceiling of a node:dgram listener (the
 *                            node's listener before it moved to the addon) on this machine.
 *
 * Runs until SIGTERM or SIGINT. Started by servers.ts as `node proto-server.js ...`.
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { nativeIo, nativeIoUnavailable } from '../../src/io/native.js';
import { UdpPort } from '../../src/io/udp.js';
import { LOOPBACK_CLIENT, responderFor } from './responder.js';

const LOOPBACK = '127.0.0.1';
/** Fits any UDP answer the responder writes for a client without EDNS (512), with room. */
const OUT_BYTES = 4096;

function serveAddon(yamlFile: string): void {
  if (nativeIo === undefined) throw new Error(`the podwire addon is unavailable: ${nativeIoUnavailable ?? 'unknown reason'}`);
  const responder = responderFor(yamlFile);
  const port = UdpPort.open(LOOPBACK, 0, { batch: 64, maxDatagram: 2048, bufferBytes: 4 << 20 });
  const out = Buffer.alloc(OUT_BYTES);
  const ctx = { ...LOOPBACK_CLIENT };
  port.start(
    (batch) => {
      for (let i = 0; i < batch.count; i++) {
        ctx.clientAddr = batch.addrs[i];
        ctx.clientPort = batch.ports[i];
        const r = responder.respond(batch.buf, batch.offsets[i], batch.lengths[i], ctx, out, 0);
        if (r.action === 'answer') port.send(out, 0, r.length, r.clientAddr, r.clientPort);
      }
      port.flush();
    },
    (err) => {
      process.stderr.write(`proto-server: ${err.message}\n`);
      process.exit(1);
    },
  );
  ready(port.port, () => port.close());
}

function serveEcho(): void {
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    msg[2] |= 0x80; // QR: a response, rcode NOERROR, no records
    socket.send(msg, rinfo.port, rinfo.address);
  });
  socket.bind(0, LOOPBACK, () => ready(socket.address().port, () => socket.close()));
}

function ready(port: number, close: () => void): void {
  const stop = () => {
    close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`listening ${port}\n`);
}

const { values } = parseArgs({ options: { io: { type: 'string' }, yaml: { type: 'string' } } });
try {
  if (values.io === 'addon' && values.yaml !== undefined) serveAddon(values.yaml);
  else if (values.io === 'echo') serveEcho();
  else throw new Error('usage: proto-server.js --io addon --yaml FILE | --io echo');
} catch (err) {
  process.stderr.write(`proto-server: ${(err as Error).message}\n`);
  process.exit(2);
}
