/**
 * A userspace wire: two Ports joined by a Unix stream socket, so the pipeline can be
 * driven between processes (or inside one test) with no TAP and no privilege.
 *
 * Node has no AF_UNIX datagram sockets, so frames are length-prefixed records on a stream
 * (see stream-port.ts). Every record carries a virtio_net_hdr: a wire passes offload
 * metadata through, so GSO super-frames can be tested without a kernel.
 */
import { once } from 'node:events';
import * as net from 'node:net';
import { StreamPort, type StreamPortOptions } from './stream-port.js';

export interface WireOptions {
  /** Most frames per delivered batch; default 256. */
  batch?: number;
  /** Drop instead of queueing past this many unsent bytes; default 4 MiB. */
  maxQueuedBytes?: number;
}

export class WirePort extends StreamPort {
  readonly backend = 'wire' as const;

  constructor(socket: net.Socket, name: string, options: WireOptions = {}) {
    const opts: StreamPortOptions = { name, vnetHdr: true, ...options };
    super(socket, socket, opts, () => socket.end());
  }
}

/** Listens on `path` (a '\0'-prefixed name is Linux's abstract namespace) for one peer. */
export async function serveWire(path: string, name: string, options: WireOptions = {}): Promise<WirePort> {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(path);
  await once(server, 'listening');
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  // One wire, two ends: no more peers.
  server.close();
  return new WirePort(socket, name, options);
}

/** Connects to a wire served at `path`. */
export async function connectWire(path: string, name: string, options: WireOptions = {}): Promise<WirePort> {
  const socket = net.connect(path);
  await once(socket, 'connect');
  socket.pause();
  return new WirePort(socket, name, options);
}

let pairs = 0;

/** Both ends of a fresh wire, in this process (for tests). */
export async function createWirePair(names: [string, string] = ['wire-a', 'wire-b'], options: WireOptions = {}): Promise<[WirePort, WirePort]> {
  const path = `\0podwire-wire-${process.pid}-${pairs++}`;
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const a = net.connect(path);
  await once(a, 'connect');
  a.pause();
  const [b] = await accepted;
  server.close();
  return [new WirePort(a, names[0], options), new WirePort(b, names[1], options)];
}
