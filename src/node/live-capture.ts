/**
 * A live capture: a pcapng stream of some of a node's interfaces, taken while the node
 * runs (`podwire capture`). The forwarding path's tap calls write each matching frame
 * once into this capture's own bounded buffer, and `take()`, off the forwarding path,
 * hands the whole records buffered so far to whoever streams them to the reader.
 *
 * A slow reader never slows the node: while the buffer is full, frames are dropped and
 * counted (`dropped`), and the stream still holds whole records only. Each received
 * frame's record carries the path's verdict as its opt_comment (FORWARDED, STOLEN, or
 * DROPPED with the reason), added when the walk ends.
 *
 * Interfaces are declared as the stream meets them (an Interface Description Block may
 * come between packets): one per pod (its `namespace/name`), one per overlay peer
 * (`vxlan:<node>`, the VXLAN datagrams with outer headers rebuilt as the file capture
 * does), and the uplink (`uplink:<node>`).
 */
import { formatIpv4 } from '../packet/addr.js';
import { capturedLength, MAX_SNAPLEN } from '../pcap/pcap.js';
import { encodeEpb, encodeIdb, encodeShb, epbLen, idbLen, OPT_COMMENT, OPT_ENDOFOPT, pad4, shbLen, type InterfaceDescription } from '../pcap/pcapng.js';
import { wallClock } from '../pcap/writer.js';
import type { FrameMatcher } from '../pcap/filter.js';
import type { Peer } from '../overlay/peers.js';
import { Ingress, Verdict, type FrameContext } from '../datapath/context.js';
import { DROP_REASONS } from '../datapath/drops.js';
import type { FrameTap } from '../datapath/pipeline.js';
import { frameOverlay, OVERLAY_CAPTURE_HEADROOM, type CaptureNode } from './capture.js';

/** What a live capture takes: one pod's eth0, or a node's interfaces (all, or the one named). */
export type CaptureSelection = { readonly pod: string } | { readonly iface?: string };

export interface LivePod {
  readonly name: string;
  readonly ip: number;
  /** The TAP's name, which `--iface` also accepts. */
  readonly device: string;
}

export interface LiveCaptureOptions {
  readonly node: CaptureNode;
  readonly selection: CaptureSelection;
  /** The pod on a slot now, or undefined. */
  readonly podAt: (slot: number) => LivePod | undefined;
  readonly matcher: FrameMatcher;
  /** The bounded buffer (default 4 MiB). */
  readonly bufferBytes?: number;
  readonly snaplen?: number;
  /** Nanoseconds since the epoch; default pcap/writer's wallClock(). */
  readonly clock?: () => bigint;
}

export interface LiveCaptureStats {
  /** Records written into the stream (taken or still buffered). */
  readonly records: number;
  /** Matching frames lost because the buffer was full: the reader was too slow. */
  readonly dropped: number;
}

const DEFAULT_BUFFER_BYTES = 4 << 20;

/** Comments, encoded once: the verdicts, and DROPPED with each reason. */
const FORWARDED = Buffer.from('FORWARDED');
const STOLEN = Buffer.from('STOLEN: answered or held by the node (ARP, ICMP echo, DNS, a fragment)');
const DROPPED = DROP_REASONS.map((r) => Buffer.from(`DROPPED: ${r.name} (${r.description})`));

export class LiveCapture implements FrameTap {
  private readonly buf: Buffer;
  private used = 0;
  private records = 0;
  private droppedFrames = 0;
  private nextInterface = 0;
  private readonly snaplen: number;
  private readonly clock: () => bigint;
  /** Pod slot -> its interface (and which pod it was declared for: slots are reused). */
  private readonly pods = new Map<number, { name: string; id: number }>();
  private readonly peers = new Map<string, number>();
  private uplinkId = -1;
  private readonly scratch = Buffer.alloc(OVERLAY_CAPTURE_HEADROOM + 65536);
  /** The first record of the frame being walked: where it starts, its interface, the bytes it came from. */
  private firstAt = -1;
  private firstInterface = -1;
  private firstBuf: Uint8Array | undefined;
  private firstOffset = 0;

  constructor(private readonly options: LiveCaptureOptions) {
    this.snaplen = options.snaplen ?? MAX_SNAPLEN;
    this.clock = options.clock ?? wallClock();
    const shb = { userAppl: 'podwire capture' };
    this.buf = Buffer.alloc(Math.max(options.bufferBytes ?? DEFAULT_BUFFER_BYTES, shbLen(shb) + epbLen(this.snaplen) + 4 * 1024));
    this.used = encodeShb(shb, this.buf, 0);
  }

  get stats(): LiveCaptureStats {
    return { records: this.records, dropped: this.droppedFrames };
  }

  /** The whole records buffered since the last take (the section header first), and the buffer emptied. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.used));
    this.used = 0;
    this.firstAt = -1;
    return out;
  }

  // ---- FrameTap ----------------------------------------------------------------------

  podFrame(slot: number, buf: Uint8Array, offset: number, length: number): void {
    const id = this.podInterface(slot);
    if (id >= 0) this.record(id, buf, offset, length, buf, offset);
  }

  uplinkFrame(buf: Uint8Array, offset: number, length: number): void {
    const id = this.uplinkInterface();
    if (id >= 0) this.record(id, buf, offset, length, buf, offset);
  }

  overlayFrame(peer: Peer, outbound: boolean, frame: Uint8Array, offset: number, length: number): void {
    const id = this.peerInterface(peer);
    if (id < 0) return;
    const framed = frameOverlay(this.scratch, this.options.node, peer, outbound, frame, offset, length);
    if (framed > 0) this.record(id, this.scratch, 0, framed, frame, offset);
  }

  verdict(ctx: FrameContext, verdict: Verdict): void {
    const at = this.firstAt;
    this.firstAt = -1;
    if (at < 0 || this.firstBuf !== ctx.buf || this.firstOffset < ctx.offset || this.firstOffset >= ctx.offset + ctx.length) return;
    if (this.firstInterface !== this.ingressInterface(ctx)) return;
    const comment = verdict === Verdict.Drop ? DROPPED[ctx.drop] : verdict === Verdict.Stolen ? STOLEN : FORWARDED;
    if (comment !== undefined) this.comment(at, comment);
  }

  // ---- interfaces --------------------------------------------------------------------

  private wants(name: string, device?: string): boolean {
    const sel = this.options.selection;
    if ('pod' in sel) return sel.pod === name;
    return sel.iface === undefined || sel.iface === name || (device !== undefined && sel.iface === device);
  }

  private podInterface(slot: number): number {
    const known = this.pods.get(slot);
    const pod = this.options.podAt(slot);
    if (pod === undefined) return -1;
    if (known !== undefined && known.name === pod.name) return known.id;
    if (!this.wants(pod.name, pod.device)) return -1;
    const id = this.declare({ snaplen: this.snaplen, name: pod.name, description: `eth0 of pod ${pod.name} (${formatIpv4(pod.ip)}) on ${this.options.node.name}, TAP ${pod.device}` });
    if (id >= 0) this.pods.set(slot, { name: pod.name, id });
    return id;
  }

  private peerInterface(peer: Peer): number {
    const known = this.peers.get(peer.node);
    if (known !== undefined) return known;
    const name = `vxlan:${peer.node}`;
    if (!this.wants(name)) return -1;
    const node = this.options.node;
    const id = this.declare({ snaplen: this.snaplen, name, description: `VXLAN VNI ${node.vni} between ${node.name} (${formatIpv4(node.underlayAddr)}) and ${peer.node} (${formatIpv4(peer.underlayAddr)})` });
    if (id >= 0) this.peers.set(peer.node, id);
    return id;
  }

  private uplinkInterface(): number {
    if (this.uplinkId >= 0) return this.uplinkId;
    const node = this.options.node;
    const name = `uplink:${node.name}`;
    if (node.uplink === undefined || !this.wants(name, 'uplink')) return -1;
    this.uplinkId = this.declare({ snaplen: this.snaplen, name, description: `${node.name}'s uplink on the outside network (${formatIpv4(node.uplink)})` });
    return this.uplinkId;
  }

  private ingressInterface(ctx: FrameContext): number {
    switch (ctx.ingress) {
      case Ingress.Pod:
        return this.pods.get(ctx.inSlot)?.id ?? -2;
      case Ingress.Overlay:
        return ctx.fromPeer === undefined ? -2 : (this.peers.get(ctx.fromPeer.node) ?? -2);
      case Ingress.Uplink:
        return this.uplinkId >= 0 ? this.uplinkId : -2;
      default:
        return -2;
    }
  }

  /** Writes an Interface Description Block; its id, or -1 when the buffer has no room now. */
  private declare(idb: InterfaceDescription): number {
    const len = idbLen(idb);
    if (this.buf.length - this.used < len) {
      this.droppedFrames++;
      return -1;
    }
    this.used += encodeIdb(idb, this.buf, this.used);
    return this.nextInterface++;
  }

  // ---- records -----------------------------------------------------------------------

  /** One Enhanced Packet Block for `buf[offset, +length)`; `source` is where the path holds the frame. */
  private record(id: number, buf: Uint8Array, offset: number, length: number, source: Uint8Array, sourceOffset: number): void {
    if (!this.options.matcher(buf, offset, length)) return;
    const len = epbLen(capturedLength(length, this.snaplen));
    if (this.buf.length - this.used < len) {
      this.droppedFrames++;
      return;
    }
    const at = this.used;
    this.used += encodeEpb({ interfaceId: id, timestampNs: this.clock(), data: buf.subarray(offset, offset + length), snaplen: this.snaplen }, this.buf, at);
    this.records++;
    if (this.firstAt < 0) {
      this.firstAt = at;
      this.firstInterface = id;
      this.firstBuf = source;
      this.firstOffset = sourceOffset;
    }
  }

  /**
   * Gives the record at `at` (written without options) an opt_comment: the options go where
   * its trailing length was, and the records written after it move along. A comment that
   * does not fit is left out; the record stays whole either way.
   */
  private comment(at: number, text: Buffer): void {
    const buf = this.buf;
    const oldLen = buf.readUInt32LE(at + 4);
    const optionsLen = 4 + pad4(text.length) + 4;
    if (this.used + optionsLen > buf.length || oldLen + optionsLen > 0xffffffff) return;
    const end = at + oldLen;
    buf.copyWithin(end + optionsLen, end, this.used);
    let o = end - 4;
    buf.writeUInt16LE(OPT_COMMENT, o);
    buf.writeUInt16LE(text.length, o + 2);
    text.copy(buf, o + 4);
    buf.fill(0, o + 4 + text.length, o + 4 + pad4(text.length));
    o += 4 + pad4(text.length);
    buf.writeUInt32LE(OPT_ENDOFOPT, o);
    const newLen = oldLen + optionsLen;
    buf.writeUInt32LE(newLen, o + 4);
    buf.writeUInt32LE(newLen, at + 4);
    this.used += optionsLen;
  }
}
