/**
 * StreamPort: a Port over a byte stream (a Unix socket, a child process's pipes), for the
 * places where podwire has no addon: the python TAP relay and the userspace wire.
 *
 * Stream format, both directions: records of [u32 big-endian payload length][payload],
 * where the payload is the frame, preceded by a 10-byte virtio_net_hdr (little-endian,
 * the kernel's own layout) when the port carries offload metadata. A TAP opened with
 * IFF_VNET_HDR reads and writes exactly that payload, so the relay passes it through
 * untouched.
 *
 * Receive parses each 'data' chunk incrementally and hands all complete records in it to
 * the handler as one batch (a record split across chunks waits for the rest). Frames are
 * views into the chunk, valid until the handler returns, as with the addon.
 */
import type { Readable, Writable } from 'node:stream';
import { inside, type Port, type PortErrorHandler, type PortStats, type RxBatch, type TxOffload } from '../src/port/port.js';

export const RECORD_PREFIX_LEN = 4;
export const VNET_HDR_LEN = 10;
/** Ethernet + VLAN tag + the largest IP packet: a GSO super-frame. */
export const MAX_STREAM_FRAME = 65553;

export interface StreamPortOptions {
  name: string;
  /** Records carry a virtio_net_hdr before the frame (RxBatch metadata, TxOffload). */
  vnetHdr: boolean;
  /** Most frames per delivered batch; default 256. */
  batch?: number;
  /**
   * Frames are dropped (txDropped) instead of queued once this many bytes wait in the
   * output stream: a slow peer must not make the node buffer without bound. Default 4 MiB.
   */
  maxQueuedBytes?: number;
}

/** RxBatch whose slab changes with every chunk. */
interface StreamBatch extends RxBatch {
  buf: Buffer;
}

const TX_SLAB = 256 * 1024;

export class StreamPort implements Port {
  readonly name: string;
  readonly offload: boolean;
  readonly stats: PortStats = { rxFrames: 0, rxBytes: 0, rxBatches: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxErrors: 0 };
  /** Why the port stopped, once it has. */
  error: Error | undefined;

  private readonly hdrLen: number;
  private readonly maxQueued: number;
  private readonly batch: StreamBatch;
  private pending: Buffer | undefined;
  private tx = Buffer.allocUnsafeSlow(TX_SLAB);
  private txCursor = 0;
  private txCount = 0;
  private txBytes = 0;
  private closed = false;
  private handler: ((batch: RxBatch) => void) | undefined;
  private onError: PortErrorHandler | undefined;

  /**
   * `input` stays paused until start(); `initial` is data already read from it (bytes that
   * followed a handshake, say). `closeStreams` ends both streams on close().
   */
  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    options: StreamPortOptions,
    private readonly closeStreams: () => void,
    initial?: Buffer,
  ) {
    this.name = options.name;
    this.offload = options.vnetHdr;
    this.hdrLen = options.vnetHdr ? VNET_HDR_LEN : 0;
    this.maxQueued = options.maxQueuedBytes ?? 4 << 20;
    const cap = options.batch ?? 256;
    this.batch = {
      buf: Buffer.alloc(0),
      slab: 0,
      count: 0,
      offsets: new Uint32Array(cap),
      lengths: new Uint32Array(cap),
      flags: new Uint8Array(cap),
      gsoType: new Uint8Array(cap),
      gsoSize: new Uint16Array(cap),
      csumStart: new Uint16Array(cap),
      csumOffset: new Uint16Array(cap),
    };
    if (initial !== undefined && initial.length > 0) this.pending = initial;
    input.pause();
    const died = (err?: Error): void => this.fail(err ?? new Error('stream ended'));
    input.on('error', died);
    input.on('end', () => died(this.endError()));
    output.on('error', died);
  }

  start(handler: (batch: RxBatch) => void, onError?: PortErrorHandler): void {
    if (this.handler !== undefined) throw new Error(`${this.name}: already started`);
    if (this.closed) throw new Error(`${this.name}: closed`);
    this.handler = handler;
    this.onError = onError;
    this.input.on('data', (chunk: Buffer) => this.receive(chunk));
    // Bytes read before start (after a handshake) come first.
    if (this.pending !== undefined) {
      const first = this.pending;
      this.pending = undefined;
      this.receive(first);
    }
    this.input.resume();
  }

  private receive(chunk: Buffer): void {
    if (this.closed || this.handler === undefined) return;
    const data = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    const b = this.batch;
    const cap = b.offsets.length;
    const hdr = this.hdrLen;
    const maxRecord = hdr + MAX_STREAM_FRAME;
    b.buf = data;
    let pos = 0;
    let count = 0;
    while (data.length - pos >= RECORD_PREFIX_LEN) {
      const len = data.readUInt32BE(pos);
      if (len <= hdr || len > maxRecord) {
        // Out of step with the writer: nothing after this point can be trusted.
        this.stats.rxErrors += 1;
        this.fail(new Error(`${this.name}: bad record length ${len}`));
        return;
      }
      const start = pos + RECORD_PREFIX_LEN;
      if (data.length - start < len) break;
      if (hdr !== 0) {
        b.flags[count] = data[start];
        b.gsoType[count] = data[start + 1];
        // start + 2: hdr_len, which the Port contract does not carry
        b.gsoSize[count] = data.readUInt16LE(start + 4);
        b.csumStart[count] = data.readUInt16LE(start + 6);
        b.csumOffset[count] = data.readUInt16LE(start + 8);
      } else {
        b.flags[count] = 0;
        b.gsoType[count] = 0;
        b.gsoSize[count] = 0;
        b.csumStart[count] = 0;
        b.csumOffset[count] = 0;
      }
      b.offsets[count] = start + hdr;
      b.lengths[count] = len - hdr;
      this.stats.rxBytes += len - hdr;
      count++;
      pos = start + len;
      if (count === cap) {
        this.deliver(count);
        count = 0;
        if (this.closed) return;
      }
    }
    if (count > 0) this.deliver(count);
    // Copy the tail: a view would keep the whole chunk alive until the record completes.
    if (pos < data.length && !this.closed) this.pending = Buffer.from(data.subarray(pos));
  }

  private deliver(count: number): void {
    this.batch.count = count;
    this.stats.rxFrames += count;
    this.stats.rxBatches += 1;
    this.handler!(this.batch);
  }

  send(frame: Uint8Array, offset: number, length: number, offload?: TxOffload): boolean {
    if (this.closed || length === 0 || length > MAX_STREAM_FRAME || !inside(frame, offset, length)) {
      this.stats.txDropped += 1;
      return false;
    }
    const need = RECORD_PREFIX_LEN + this.hdrLen + length;
    if (this.txCursor + need > this.tx.length) this.flush();
    if (need > this.tx.length) this.tx = Buffer.allocUnsafeSlow(need);
    const tx = this.tx;
    let at = this.txCursor;
    tx.writeUInt32BE(this.hdrLen + length, at);
    at += RECORD_PREFIX_LEN;
    if (this.hdrLen !== 0) {
      tx[at] = offload ? offload.flags : 0;
      tx[at + 1] = offload ? offload.gsoType : 0;
      tx.writeUInt16LE(0, at + 2); // hdr_len: the kernel derives it (see src/io/native/port.cc)
      tx.writeUInt16LE(offload ? offload.gsoSize : 0, at + 4);
      tx.writeUInt16LE(offload ? offload.csumStart : 0, at + 6);
      tx.writeUInt16LE(offload ? offload.csumOffset : 0, at + 8);
      at += this.hdrLen;
    }
    tx.set(frame.subarray(offset, offset + length), at);
    this.txCursor = at + length;
    this.txCount += 1;
    this.txBytes += length;
    return true;
  }

  flush(): void {
    if (this.txCount === 0) return;
    if (this.closed || this.output.writableLength > this.maxQueued) {
      this.stats.txDropped += this.txCount;
    } else {
      // A copy: the stream keeps what it is given until written, and the slab is reused.
      this.output.write(Buffer.from(this.tx.subarray(0, this.txCursor)));
      this.stats.txFrames += this.txCount;
      this.stats.txBytes += this.txBytes;
    }
    this.txCursor = 0;
    this.txCount = 0;
    this.txBytes = 0;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.closeStreams();
  }

  /** What the input ending means; subclasses know better (the relay exited, say). */
  protected endError(): Error {
    return new Error('peer closed the stream');
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    this.closeStreams();
    if (this.onError) this.onError(err);
    else if (this.handler !== undefined) process.emitWarning(`${this.name}: ${err.message}`, 'PodwirePortWarning');
  }
}
