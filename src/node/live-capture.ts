/**
 * A live capture: a pcapng stream of some of a node's interfaces, taken while the node
 * runs (`podwire capture`). The forwarding path's tap calls write each matching frame
 * once into this capture's own bounded buffer, and `take()`, off the forwarding path,
 * hands the whole records buffered so far to whoever streams them to the reader. There
 * are two such buffers, swapped at each take: the frames go on into one while the other
 * is sent, and nothing is allocated or copied per take.
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
import { encodeIdb, encodeShb, epbLen, idbLen, OPT_COMMENT, OPT_ENDOFOPT, pad4, shbLen, SplitClock, writeEpb, type InterfaceDescription } from '../pcap/pcapng.js';
import type { FrameMatcher } from '../pcap/filter.js';
import type { Peer } from '../overlay/peers.js';
import { Ingress, Verdict, type FrameContext } from '../datapath/context.js';
import { DROP_REASONS } from '../datapath/drops.js';
import type { FrameTap } from '../datapath/pipeline.js';
import { frameOverlay, OVERLAY_CAPTURE_HEADROOM, type CaptureNode } from './capture.js';

/** What a live capture takes: one pod's eth0, or a node's interfaces (all, or the one named). */
export type CaptureSelection = { readonly pod: string } | { readonly iface?: string };

/**
 * A pod on a slot, as the pipeline's slot table holds it (the same object for as long as
 * the pod holds the slot, so the capture can tell a new pod on a reused slot by identity).
 */
export interface LivePod {
  readonly name: string;
  readonly ip: number;
  /** Its TAP, whose name `--iface` also accepts. */
  readonly port: { readonly name: string };
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
  /** The records' timestamps; by default the wall clock, moved on by performance.now(). */
  readonly clock?: SplitClock;
}

export interface LiveCaptureStats {
  /** Records written into the stream (taken or still buffered). */
  readonly records: number;
  /** Matching frames lost because the buffer was full: the reader was too slow. */
  readonly dropped: number;
}

const DEFAULT_BUFFER_BYTES = 4 << 20;
/**
 * Interface ids are 0 and up. Every frame asks which interface it belongs to, so a "no" is
 * remembered as well as a "yes": an interface outside the selection costs a lookup.
 */
const NOT_WANTED = -1;
/** Not asked yet, or asked when the buffer had no room for its description. */
const UNDECIDED = -2;

/**
 * A record's options with this comment, encoded once: opt_comment, its text zero-padded
 * to 32 bits, opt_endofopt. Adding a verdict to a record is then one copy.
 */
function commentOptions(text: string): Buffer {
  const value = Buffer.from(text);
  const options = Buffer.alloc(4 + pad4(value.length) + 4);
  options.writeUInt16LE(OPT_COMMENT, 0);
  options.writeUInt16LE(value.length, 2);
  value.copy(options, 4);
  options.writeUInt32LE(OPT_ENDOFOPT, 4 + pad4(value.length));
  return options;
}

/** The verdicts, and DROPPED with each reason. */
const FORWARDED = commentOptions('FORWARDED');
const STOLEN = commentOptions('STOLEN: answered or held by the node (ARP, ICMP echo, DNS, a fragment)');
const DROPPED = DROP_REASONS.map((r) => commentOptions(`DROPPED: ${r.name} (${r.description})`));

export class LiveCapture implements FrameTap {
  /** Where the tap writes records now. */
  private buf: Buffer;
  /** What the last take() handed out, until the next. */
  private spare: Buffer;
  private used = 0;
  private records = 0;
  private droppedFrames = 0;
  private nextInterface = 0;
  private readonly snaplen: number;
  private readonly clock: SplitClock;
  /** Pod slot -> its interface, or NOT_WANTED (and which pod it was decided for: slots are reused). */
  private readonly pods = new Map<number, { pod: LivePod; id: number }>();
  /** Peer node -> its interface, or NOT_WANTED. */
  private readonly peers = new Map<string, number>();
  private uplinkId = UNDECIDED;
  private readonly scratch = Buffer.alloc(OVERLAY_CAPTURE_HEADROOM + 65536);
  /** The first record of the frame being walked: where it starts, its interface, the bytes it came from. */
  private firstAt = -1;
  private firstInterface = -1;
  private firstBuf: Uint8Array | undefined;
  private firstOffset = 0;

  constructor(private readonly options: LiveCaptureOptions) {
    this.snaplen = options.snaplen ?? MAX_SNAPLEN;
    this.clock = options.clock ?? new SplitClock();
    const shb = { userAppl: 'podwire capture' };
    const size = Math.max(options.bufferBytes ?? DEFAULT_BUFFER_BYTES, shbLen(shb) + epbLen(this.snaplen) + 4 * 1024);
    this.buf = Buffer.alloc(size);
    this.spare = Buffer.alloc(size);
    this.used = encodeShb(shb, this.buf, 0);
  }

  get stats(): LiveCaptureStats {
    return { records: this.records, dropped: this.droppedFrames };
  }

  /**
   * The whole records buffered since the last take (the section header first); the tap
   * goes on in the other buffer. The bytes stay as they are until the next take: send
   * them (and wait for the socket to be done with them) before taking again.
   */
  take(): Buffer {
    const taken = this.buf;
    const out = taken.subarray(0, this.used);
    this.buf = this.spare;
    this.spare = taken;
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
    if (pod === undefined) return NOT_WANTED;
    if (known !== undefined && known.pod === pod) return known.id;
    const id = this.wants(pod.name, pod.port.name)
      ? this.declare({ snaplen: this.snaplen, name: pod.name, description: `eth0 of pod ${pod.name} (${formatIpv4(pod.ip)}) on ${this.options.node.name}, TAP ${pod.port.name}` })
      : NOT_WANTED;
    if (id !== UNDECIDED) this.pods.set(slot, { pod, id });
    return id;
  }

  private peerInterface(peer: Peer): number {
    const known = this.peers.get(peer.node);
    if (known !== undefined) return known;
    const name = `vxlan:${peer.node}`;
    const node = this.options.node;
    const id = this.wants(name)
      ? this.declare({ snaplen: this.snaplen, name, description: `VXLAN VNI ${node.vni} between ${node.name} (${formatIpv4(node.underlayAddr)}) and ${peer.node} (${formatIpv4(peer.underlayAddr)})` })
      : NOT_WANTED;
    if (id !== UNDECIDED) this.peers.set(peer.node, id);
    return id;
  }

  private uplinkInterface(): number {
    if (this.uplinkId !== UNDECIDED) return this.uplinkId;
    const node = this.options.node;
    const name = `uplink:${node.name}`;
    if (node.uplink === undefined || !this.wants(name, 'uplink')) return (this.uplinkId = NOT_WANTED);
    this.uplinkId = this.declare({ snaplen: this.snaplen, name, description: `${node.name}'s uplink on the outside network (${formatIpv4(node.uplink)})` });
    return this.uplinkId;
  }

  /** The interface the frame being walked came in on, or NOT_WANTED (which no record has). */
  private ingressInterface(ctx: FrameContext): number {
    switch (ctx.ingress) {
      case Ingress.Pod:
        return this.pods.get(ctx.inSlot)?.id ?? NOT_WANTED;
      case Ingress.Overlay:
        return ctx.fromPeer === undefined ? NOT_WANTED : (this.peers.get(ctx.fromPeer.node) ?? NOT_WANTED);
      case Ingress.Uplink:
        return this.uplinkId >= 0 ? this.uplinkId : NOT_WANTED;
      default:
        return NOT_WANTED;
    }
  }

  /** Writes an Interface Description Block; its id, or UNDECIDED when the buffer has no room now. */
  private declare(idb: InterfaceDescription): number {
    const len = idbLen(idb);
    if (this.buf.length - this.used < len) {
      this.droppedFrames++;
      return UNDECIDED;
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
    this.clock.read();
    this.used += writeEpb(this.buf, at, id, this.clock, buf, offset, length, this.snaplen);
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
  private comment(at: number, options: Buffer): void {
    const buf = this.buf;
    const oldLen = buf.readUInt32LE(at + 4);
    const optionsLen = options.length;
    if (this.used + optionsLen > buf.length || oldLen + optionsLen > 0xffffffff) return;
    const end = at + oldLen;
    if (end < this.used) buf.copyWithin(end + optionsLen, end, this.used);
    buf.set(options, end - 4);
    const newLen = oldLen + optionsLen;
    buf.writeUInt32LE(newLen, end - 4 + optionsLen);
    buf.writeUInt32LE(newLen, at + 4);
    this.used += optionsLen;
  }
}
