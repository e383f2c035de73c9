import type { DatagramBatch, Port, PortStats, RxBatch, TxOffload } from '../../src/port/port.js';
import type { OverlayLink } from '../../src/overlay/link.js';

const MAX = 64;

function rxBatch(): RxBatch {
  return {
    buf: Buffer.alloc(1 << 20),
    slab: 0,
    count: 0,
    offsets: new Uint32Array(MAX),
    lengths: new Uint32Array(MAX),
    flags: new Uint8Array(MAX),
    gsoType: new Uint8Array(MAX),
    gsoSize: new Uint16Array(MAX),
    csumStart: new Uint16Array(MAX),
    csumOffset: new Uint16Array(MAX),
  };
}

/** An in-memory port: `inject` delivers frames as one batch, `sent` collects what went out. */
export class FakePort implements Port {
  readonly sent: Buffer[] = [];
  /** The offload metadata each sent frame carried (ports with offload only). */
  readonly sentOffload: TxOffload[] = [];
  readonly stats: PortStats = { rxFrames: 0, rxBytes: 0, rxBatches: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxErrors: 0 };
  flushes = 0;
  closed = false;
  private handler: ((batch: RxBatch) => void) | undefined;
  private readonly batch = rxBatch();

  constructor(
    readonly name: string,
    readonly offload = false,
  ) {}

  start(handler: (batch: RxBatch) => void): void {
    this.handler = handler;
  }

  /** Delivers the frames as one batch, each copied into the slab with 0xee between them. */
  inject(...frames: Uint8Array[]): void {
    this.injectWithOffload(frames.map((frame) => ({ frame })));
  }

  /** Like inject, with virtio_net_hdr metadata per frame (as a TAP with offload delivers). */
  injectWithOffload(frames: { frame: Uint8Array; offload?: TxOffload }[]): void {
    const b = this.batch;
    b.buf.fill(0xee);
    let at = 64;
    b.count = frames.length;
    frames.forEach(({ frame: f, offload: o }, i) => {
      b.buf.set(f, at);
      b.offsets[i] = at;
      b.lengths[i] = f.length;
      b.flags[i] = o?.flags ?? 0;
      b.gsoType[i] = o?.gsoType ?? 0;
      b.gsoSize[i] = o?.gsoSize ?? 0;
      b.csumStart[i] = o?.csumStart ?? 0;
      b.csumOffset[i] = o?.csumOffset ?? 0;
      at += f.length + 64;
    });
    this.handler!(b);
  }

  send(frame: Uint8Array, offset: number, length: number, offload?: TxOffload): boolean {
    this.sent.push(Buffer.from(frame.subarray(offset, offset + length)));
    if (this.offload && offload !== undefined) this.sentOffload.push({ ...offload });
    return true;
  }

  flush(): void {
    this.flushes++;
  }

  take(): Buffer[] {
    return this.sent.splice(0);
  }

  close(): void {
    this.closed = true;
  }
}

/** Two-ended in-memory overlay: datagrams sent by one pipeline arrive at the other on flush. */
export class FakeOverlay implements OverlayLink {
  peerLink: FakeOverlay | undefined;
  readonly queued: { data: Buffer; addr: number; port: number }[] = [];
  private handler: ((batch: DatagramBatch) => void) | undefined;

  constructor(
    readonly addr: number,
    readonly port = 4789,
    readonly carriesSuperFrames = false,
  ) {}

  start(handler: (batch: DatagramBatch) => void): void {
    this.handler = handler;
  }

  send(h: Uint8Array, ho: number, hl: number, f: Uint8Array, fo: number, fl: number, addr: number, port: number): boolean {
    this.queued.push({ data: Buffer.concat([h.subarray(ho, ho + hl), f.subarray(fo, fo + fl)]), addr, port });
    return true;
  }

  flush(): void {
    const out = this.queued.splice(0);
    if (out.length > 0 && this.peerLink !== undefined) this.peerLink.deliver(out.map((d) => d.data), this.addr, this.port);
  }

  deliver(datagrams: Buffer[], srcAddr: number, srcPort: number): void {
    const n = datagrams.length;
    const buf = Buffer.alloc(n * 70000);
    const batch: DatagramBatch = {
      buf,
      slab: 0,
      count: n,
      offsets: new Uint32Array(n),
      lengths: new Uint32Array(n),
      addrs: new Uint32Array(n).fill(srcAddr),
      ports: new Uint16Array(n).fill(srcPort),
    };
    datagrams.forEach((d, i) => {
      buf.set(d, i * 70000);
      batch.offsets[i] = i * 70000;
      batch.lengths[i] = d.length;
    });
    this.handler!(batch);
  }

  close(): void {}
}
