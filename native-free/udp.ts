/**
 * The overlay socket over node:dgram, for hosts without the addon.
 *
 * dgram calls us once per datagram; to keep the pipeline's batch shape, datagrams are
 * copied into a slab as they come and handed over together from a setImmediate, i.e.
 * once per event-loop turn (or sooner when the slab fills). Roughly 200k datagrams/s on
 * a machine where the addon's recvmmsg does several times that.
 */
import * as dgram from 'node:dgram';
import { formatIpv4, parseIpv4 } from '../src/packet/addr.js';
import { inside, type DatagramBatch, type DatagramPort, type PortErrorHandler, type PortStats } from '../src/port/port.js';

export interface DgramOptions {
  /** Most datagrams per batch; default 64. */
  batch?: number;
  /** Largest datagram received; default 65507. */
  maxDatagram?: number;
  /** SO_RCVBUF/SO_SNDBUF; default 8 MiB (capped by net.core.rmem_max without root). */
  bufferBytes?: number;
  /** Drop instead of queueing once this many datagrams wait to be sent; default 4096. */
  maxQueued?: number;
}

interface SlabBatch extends DatagramBatch {
  buf: Buffer;
}

export class DgramPort implements DatagramPort {
  readonly backend = 'dgram' as const;
  readonly name: string;
  readonly address: number;
  readonly port: number;
  readonly stats: PortStats = { rxFrames: 0, rxBytes: 0, rxBatches: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxErrors: 0 };
  error: Error | undefined;

  private readonly batch: SlabBatch;
  private readonly maxDatagram: number;
  private readonly maxQueued: number;
  private rxCursor = 0;
  private scheduled = false;
  private handler: ((batch: DatagramBatch) => void) | undefined;
  private onError: PortErrorHandler | undefined;
  private closed = false;
  // Transmit queue: copies, because dgram may keep a buffer until its send completes.
  private readonly txQueue: { data: Buffer; addr: number; port: number }[] = [];
  private lastAddr = -1;
  private lastAddrText = '';
  /** One callback for every send: without one, dgram turns a refused datagram into an 'error' that closes the socket. */
  private readonly sent = (err: Error | null): void => {
    if (err !== null) {
      this.stats.txFrames -= 1;
      this.stats.txDropped += 1;
    }
  };

  /** Binds address:port (0 lets the kernel choose); no SO_REUSEADDR. */
  static async open(address: string | number, port: number, options: DgramOptions = {}): Promise<DgramPort> {
    const addr = typeof address === 'number' ? address : parseIpv4(address);
    if (addr === undefined) throw new RangeError(`not an IPv4 address: ${address}`);
    const bytes = options.bufferBytes ?? 8 << 20;
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, formatIpv4(addr), () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    // Ask for big buffers; without root the kernel caps them at rmem_max/wmem_max.
    try {
      socket.setRecvBufferSize(bytes);
      socket.setSendBufferSize(bytes);
    } catch {
      // keep the defaults
    }
    return new DgramPort(socket, addr, socket.address().port, options);
  }

  private constructor(
    private readonly socket: dgram.Socket,
    addr: number,
    port: number,
    options: DgramOptions,
  ) {
    this.address = addr;
    this.port = port;
    this.name = `udp:${formatIpv4(addr)}:${port}`;
    this.maxDatagram = options.maxDatagram ?? 65507;
    this.maxQueued = options.maxQueued ?? 4096;
    const cap = options.batch ?? 64;
    this.batch = {
      buf: Buffer.allocUnsafeSlow(cap * 2048 + this.maxDatagram),
      slab: 0,
      count: 0,
      offsets: new Uint32Array(cap),
      lengths: new Uint32Array(cap),
      addrs: new Uint32Array(cap),
      ports: new Uint16Array(cap),
    };
    socket.on('error', (err) => this.fail(err));
  }

  start(handler: (batch: DatagramBatch) => void, onError?: PortErrorHandler): void {
    if (this.handler !== undefined) throw new Error(`${this.name}: already started`);
    this.handler = handler;
    this.onError = onError;
    this.socket.on('message', (msg, rinfo) => this.receive(msg, rinfo));
  }

  private receive(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    const b = this.batch;
    if (msg.length > this.maxDatagram) {
      this.stats.rxErrors += 1;
      return;
    }
    if (b.count === b.offsets.length || this.rxCursor + msg.length > b.buf.length) this.deliver();
    const i = b.count;
    msg.copy(b.buf, this.rxCursor);
    b.offsets[i] = this.rxCursor;
    b.lengths[i] = msg.length;
    b.addrs[i] = parseIpv4(rinfo.address) ?? 0;
    b.ports[i] = rinfo.port;
    b.count = i + 1;
    this.rxCursor += msg.length;
    this.stats.rxBytes += msg.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.deliver();
      });
    }
  }

  private deliver(): void {
    const b = this.batch;
    if (b.count === 0 || this.closed) return;
    this.stats.rxFrames += b.count;
    this.stats.rxBatches += 1;
    this.handler!(b);
    b.count = 0;
    this.rxCursor = 0;
  }

  send(data: Uint8Array, offset: number, length: number, addr: number, port: number): boolean {
    return this.sendParts(data, offset, 0, data, offset, length, 0, addr, port);
  }

  /** Joins the two parts in one copy (dgram has no gather send, and may keep the buffer until sent). */
  sendParts(
    head: Uint8Array,
    headOffset: number,
    headLength: number,
    body: Uint8Array,
    bodyOffset: number,
    bodyLength: number,
    _bodySlab: number,
    addr: number,
    port: number,
  ): boolean {
    const fits = inside(head, headOffset, headLength) && inside(body, bodyOffset, bodyLength) && headLength + bodyLength <= this.maxDatagram;
    if (this.closed || !fits || !(port > 0 && port <= 0xffff)) {
      this.stats.txDropped += 1;
      return false;
    }
    if (this.txQueue.length >= this.maxQueued) this.flush();
    const data = Buffer.allocUnsafe(headLength + bodyLength);
    data.set(head.subarray(headOffset, headOffset + headLength), 0);
    data.set(body.subarray(bodyOffset, bodyOffset + bodyLength), headLength);
    this.txQueue.push({ data, addr, port });
    return true;
  }

  flush(): void {
    const queue = this.txQueue;
    if (queue.length === 0) return;
    // Past maxQueued datagrams still waiting in dgram, this socket is as full as a kernel
    // send buffer would be.
    const room = this.closed ? 0 : this.maxQueued - this.socket.getSendQueueCount();
    for (let i = 0; i < queue.length; i++) {
      const d = queue[i];
      if (i >= room) {
        this.stats.txDropped += 1;
        continue;
      }
      if (d.addr !== this.lastAddr) {
        this.lastAddr = d.addr;
        this.lastAddrText = formatIpv4(d.addr);
      }
      this.socket.send(d.data, d.port, this.lastAddrText, this.sent);
      this.stats.txFrames += 1;
      this.stats.txBytes += d.data.length;
    }
    queue.length = 0;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.socket.close();
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    try {
      this.socket.close();
    } catch {
      // already closed
    }
    if (this.onError) this.onError(err);
    else process.emitWarning(`${this.name}: ${err.message}`, 'PodwirePortWarning');
  }
}
