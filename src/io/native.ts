/**
 * Loads podwire's I/O addon (build/Release/podwire_io.node, built from src/io/native by the
 * package's install script). Importing this module never throws: where the addon is
 * missing or unusable, `nativeIo` is undefined and `nativeIoUnavailable` says why, and
 * src/io/open.ts falls back to native-free/.
 *
 * Set PODWIRE_NO_ADDON=1 to pretend the addon is absent (to exercise the fallbacks).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { markAsUntransferable } from 'node:worker_threads';
import type { PortErrorHandler, PortStats } from './port.js';

/** The buffers every native port shares with JavaScript (see src/io/native/port.h). */
export interface NativePortBase {
  readonly rxBuf: Uint8Array;
  readonly rxOffsets: Uint32Array;
  readonly rxLengths: Uint32Array;
  readonly txBuf: Uint8Array;
  readonly txOffsets: Uint32Array;
  readonly txLengths: Uint32Array;
  /** This port's receive slab in the addon's registry: what other ports' txRefSlab name. */
  readonly rxSlab: number;
  /** Entry i's body, after its head in txBuf: a range of registered slab txRefSlab[i] (0: none). */
  readonly txRefSlab: Uint32Array;
  readonly txRefOffsets: Uint32Array;
  readonly txRefLengths: Uint32Array;
  /** Counters in STAT order, written by C++. */
  readonly stats: Float64Array;
  start(onBatch: (count: number) => void, onError: (message: string, errno: number) => void): void;
  /** Sends tx frames [0, count); returns how many the kernel took. */
  flush(count: number): number;
  close(): void;
}

export interface NativeTapPort extends NativePortBase {
  readonly rxFlags: Uint8Array;
  readonly rxGsoType: Uint8Array;
  readonly rxGsoSize: Uint16Array;
  readonly rxCsumStart: Uint16Array;
  readonly rxCsumOffset: Uint16Array;
  readonly txFlags: Uint8Array;
  readonly txGsoType: Uint8Array;
  readonly txGsoSize: Uint16Array;
  readonly txCsumStart: Uint16Array;
  readonly txCsumOffset: Uint16Array;
}

export interface NativeUdpPort extends NativePortBase {
  readonly rxAddrs: Uint32Array;
  readonly rxPorts: Uint16Array;
  readonly txAddrs: Uint32Array;
  readonly txPorts: Uint16Array;
}

export interface NativePortOptions {
  /** Most frames per receive wake-up and per flush (1 to 1024). */
  batch?: number;
  /** Largest frame or datagram accepted, in bytes (64 to 65600). */
  frameCap?: number;
  /** 0, or 10/12 when the TAP was opened with IFF_VNET_HDR. */
  vnetHdrLen?: number;
  /** UDP only, 1 when openUdp granted udpOffload: glue runs on send, split glued datagrams on receive. */
  udpOffload?: number;
}

export interface NativeIo {
  openTap(name: string, vnetHdrLen: number, offload: boolean): { fd: number; name: string };
  openUdp(
    addr: number,
    port: number,
    bufferBytes: number,
    udpOffload: boolean,
  ): { fd: number; port: number; rcvbuf: number; sndbuf: number; udpOffload: boolean };
  IoPort: new (fd: number, kind: number, options: NativePortOptions) => NativePortBase;
  readonly KIND_TAP: number;
  readonly KIND_UDP: number;
  readonly STAT_COUNT: number;
}

/** Slots of NativePortBase.stats (the Stat enum in port.h). */
export const STAT_RX_FRAMES = 0;
export const STAT_RX_BYTES = 1;
export const STAT_RX_BATCHES = 2;
export const STAT_TX_FRAMES = 3;
export const STAT_TX_BYTES = 4;
export const STAT_TX_DROPPED = 5;
export const STAT_RX_ERRORS = 6;
export const STAT_TX_GLUED = 7;
export const STAT_RX_GLUED = 8;
const STAT_COUNT = 9;

function load(): { io?: NativeIo; reason?: string } {
  if (process.env.PODWIRE_NO_ADDON) return { reason: 'disabled by PODWIRE_NO_ADDON' };
  if (process.platform !== 'linux') return { reason: `the addon is Linux-only (this is ${process.platform})` };
  // dist/src/io/native.js -> <package>/build/Release; the same from src/ under a loader.
  const path = fileURLToPath(new URL('../../../build/Release/podwire_io.node', import.meta.url));
  try {
    const io = createRequire(import.meta.url)(path) as NativeIo;
    if (io.STAT_COUNT !== STAT_COUNT) return { reason: `${path} is a different version (stale build?)` };
    return { io };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND') return { reason: `${path} not built (run npm install or npx node-gyp rebuild)` };
    return { reason: `${path} failed to load: ${e.message}` };
  }
}

const loaded = load();
/** The addon, or undefined (then see nativeIoUnavailable). */
export const nativeIo: NativeIo | undefined = loaded.io;
/** Why the addon cannot be used, or undefined when it can. */
export const nativeIoUnavailable: string | undefined = loaded.reason;

/**
 * Keeps the native slabs attached: C++ holds raw pointers into them, so they must never
 * be transferred to a worker or detached (the addon would write into freed memory).
 */
export function pinShared(port: NativePortBase): void {
  for (const value of Object.values(port)) {
    if (ArrayBuffer.isView(value)) markAsUntransferable(value.buffer);
  }
}

/** Copies up to this many bytes a byte at a time (measured: 8 bytes ~40 ns by loop, ~150 ns by Buffer.copy). */
const SMALL_COPY = 16;

/**
 * Copies src[offset, offset + length) to dst at `at`. A head (a VXLAN header, say) is
 * copied in a loop: Buffer.copy from an offset makes a view object per call, and the call
 * costs more than the copy. Anything longer goes through Buffer.copy, or set() of a view.
 */
function copyInto(dst: Uint8Array, at: number, src: Uint8Array, offset: number, length: number): void {
  if (length <= SMALL_COPY) {
    for (let i = 0; i < length; i++) dst[at + i] = src[offset + i];
  } else if (Buffer.isBuffer(src)) {
    src.copy(dst, at, offset, offset + length);
  } else {
    dst.set(src.subarray(offset, offset + length), at);
  }
}

/**
 * A native port's transmit queue: each entry is a head copied into the tx slab followed by
 * a body that is copied after it, or, when the body lies in a registered receive slab
 * (`bodySlab` != 0), left where it is for the kernel to gather at flush. The port fills
 * its own per-entry arrays (offload metadata, destinations) at the index add() returns.
 */
export class TxQueue {
  private count = 0;
  private cursor = 0;
  private readonly buf: Uint8Array;
  private readonly cap: number;

  constructor(private readonly native: NativePortBase) {
    this.buf = native.txBuf;
    this.cap = native.txOffsets.length;
  }

  /** Queues an entry (flushing first when the queue or the slab is full); returns its index. */
  add(head: Uint8Array, headOffset: number, headLength: number, body: Uint8Array, bodyOffset: number, bodyLength: number, bodySlab: number): number {
    const copied = bodySlab === 0 ? headLength + bodyLength : headLength;
    if (this.count === this.cap || this.cursor + copied > this.buf.length) this.flush();
    const i = this.count;
    const at = this.cursor;
    const n = this.native;
    if (headLength !== 0) copyInto(this.buf, at, head, headOffset, headLength);
    if (bodySlab === 0 && bodyLength !== 0) copyInto(this.buf, at + headLength, body, bodyOffset, bodyLength);
    n.txOffsets[i] = at;
    n.txLengths[i] = copied;
    n.txRefSlab[i] = bodySlab;
    n.txRefOffsets[i] = bodyOffset;
    n.txRefLengths[i] = bodySlab === 0 ? 0 : bodyLength;
    this.count = i + 1;
    this.cursor = at + copied;
    return i;
  }

  /** Hands every queued entry to the kernel in one native call. */
  flush(): void {
    if (this.count === 0) return;
    this.native.flush(this.count);
    this.count = 0;
    this.cursor = 0;
  }
}

/** A Buffer over a native slab, without copying. */
export function slabBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** PortStats read live from the counters C++ writes. */
export class NativeStats implements PortStats {
  constructor(private readonly c: Float64Array) {}
  get rxFrames(): number {
    return this.c[STAT_RX_FRAMES];
  }
  get rxBytes(): number {
    return this.c[STAT_RX_BYTES];
  }
  get rxBatches(): number {
    return this.c[STAT_RX_BATCHES];
  }
  get txFrames(): number {
    return this.c[STAT_TX_FRAMES];
  }
  get txBytes(): number {
    return this.c[STAT_TX_BYTES];
  }
  get txDropped(): number {
    return this.c[STAT_TX_DROPPED];
  }
  get rxErrors(): number {
    return this.c[STAT_RX_ERRORS];
  }
  /** A plain copy, for logging and JSON. */
  toJSON(): PortStats {
    const { rxFrames, rxBytes, rxBatches, txFrames, txBytes, txDropped, rxErrors } = this;
    return { rxFrames, rxBytes, rxBatches, txFrames, txBytes, txDropped, rxErrors };
  }
}

/** The Error a native onError(message, errno) becomes. */
export function portError(name: string, message: string, errno: number): Error & { code?: string; errno?: number } {
  const err: Error & { code?: string; errno?: number } = new Error(`${name}: ${message}`);
  err.errno = errno;
  try {
    err.code = getSystemErrorName(-errno); // libuv's negative form
  } catch {
    // an errno Node does not know keeps only its number
  }
  return err;
}

/**
 * What the addon's ports share: the counters C++ writes, the transmit queue, and the life
 * cycle. start() hands `batch`, filled with each wake-up's frames, to the handler; when the
 * port dies (the device deleted, the socket failed) it is closed, `error` says why, and the
 * error goes to onError, or becomes a process warning without one. close() writes what is
 * queued first.
 */
export abstract class NativePort<N extends NativePortBase, B extends { count: number }> {
  readonly stats: PortStats;
  /** Why the port stopped, once it has. */
  error: Error | undefined;
  protected closed = false;
  protected readonly tx: TxQueue;

  protected constructor(
    protected readonly native: N,
    readonly name: string,
    private readonly batch: B,
  ) {
    pinShared(native);
    this.stats = new NativeStats(native.stats);
    this.tx = new TxQueue(native);
  }

  start(handler: (batch: B) => void, onError?: PortErrorHandler): void {
    const batch = this.batch;
    this.native.start(
      (count) => {
        batch.count = count;
        handler(batch);
      },
      (message, errno) => {
        const err = portError(this.name, message, errno);
        this.closed = true;
        this.error = err;
        if (onError) onError(err);
        else process.emitWarning(err.message, 'PodwirePortWarning');
      },
    );
  }

  /** Counts a frame refused before it reached the queue; returns false for send() to return. */
  protected refuse(): false {
    this.native.stats[STAT_TX_DROPPED] += 1;
    return false;
  }

  flush(): void {
    this.tx.flush();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.native.close();
  }
}
