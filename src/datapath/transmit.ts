/**
 * The one transmit stage at the end of the forwarding path: what the walk decided leaves
 * here, and nowhere else. It does what the egress cannot take as metadata (finishes a
 * partial checksum, cuts a TCP super-frame into segments, cuts a reassembled datagram back
 * into the fragments its sender made), resolves the uplink's next hop (ARP), feeds the
 * capture, and queues frames on their ports, which are flushed once per batch.
 *
 * Frames of the batch being handled go out by reference to the receive slab (native ports
 * gather them from there at the flush); anything else is copied once by the port.
 */
import { ARP_LEN, ARP_OP, emitArp } from '../packet/arp.js';
import { BROADCAST_MAC } from '../packet/addr.js';
import { emitEthernet, ETHERNET_HEADER_LEN, ETHERTYPE, EthernetView } from '../packet/ethernet.js';
import { emitVxlan, VXLAN_HEADER_LEN } from '../packet/vxlan.js';
import { fragmentIpv4, FragmentError } from '../packet/ipv4-fragment.js';
import { readU16, readU32 } from '../packet/bytes.js';
import { IPV4_HEADER_LEN, IPV4_OFFSET } from '../packet/ipv4.js';
import { completeChecksum, GsoError, segmentTcpV4 } from './gso.js';
import { clearSuperFrameBits, encodeSuperFrameBits, hasOffload } from '../overlay/superframe.js';
import type { Peer } from '../overlay/peers.js';
import type { OverlayLink } from '../overlay/link.js';
import type { Port } from '../port/port.js';
import { VNET_HDR_GSO_NONE } from '../port/port.js';

export type { OverlayLink } from '../overlay/link.js';
import { Drop } from './drops.js';
import { Egress, type FrameContext, type Verdict } from './context.js';
import type { PathTables } from './tables.js';

/**
 * An interface tap for captures: called for every frame received and sent. A received
 * frame is tapped before its walk (which may rewrite it in place), then the frames it
 * caused are tapped as they leave, then `verdict` says what the walk decided about it.
 */
export interface FrameTap {
  podFrame(slot: number, buf: Uint8Array, offset: number, length: number, comment?: string): void;
  uplinkFrame(buf: Uint8Array, offset: number, length: number): void;
  /** The inner Ethernet frame of a VXLAN datagram; the capture adds the outer headers. */
  overlayFrame(peer: Peer, outbound: boolean, frame: Uint8Array, offset: number, length: number): void;
  /** After a received frame's walk: `ctx` still says where it came in and, when dropped, why. */
  verdict?(ctx: FrameContext, verdict: Verdict): void;
}

/** What the walk hands its decision to: the ports (PortTransmit) or a trace's notebook. */
export interface Transmit {
  send(ctx: FrameContext, t: PathTables): void;
}

const MAX_DIRTY = 1024;
const IP_TOTAL_LENGTH = IPV4_OFFSET.TOTAL_LENGTH;
const IP_DST = IPV4_OFFSET.DST_ADDR;

export class PortTransmit implements Transmit {
  tap: FrameTap | undefined;
  overlay: OverlayLink | undefined;
  uplink: Port | undefined;
  private rxBuf: Uint8Array | undefined;
  private rxSlab = 0;
  private readonly dirtySlots = new Int32Array(MAX_DIRTY);
  private dirtyCount = 0;
  private overlayDirty = false;
  private uplinkDirty = false;
  private readonly eth = new EthernetView();
  /** Where software segmentation builds each segment (up to a 64 KiB pod MTU). */
  private readonly segment = Buffer.alloc(65536);
  /** Where refragmentation builds each fragment, behind the frame's Ethernet header. */
  private readonly fragment = Buffer.alloc(ETHERNET_HEADER_LEN + 65536);
  private readonly arpRequest = Buffer.alloc(ETHERNET_HEADER_LEN + ARP_LEN);
  /** Its own buffer: the frame may be in the context's scratch (an ICMP error going back over the overlay). */
  private readonly vxlanHeader = Buffer.alloc(VXLAN_HEADER_LEN);
  private headerVni = -1;
  // The piece being sent, for the emit callbacks bound once below (no closure per frame).
  private ctx: FrameContext | undefined;
  private tables: PathTables | undefined;
  private readonly emitPiece = (piece: Uint8Array, length: number): void => this.sendPiece(this.ctx!, this.tables!, piece, 0, length);
  private readonly emitSegment = (segment: Uint8Array, length: number): void => this.toEgress(this.ctx!, this.tables!, segment, 0, length);
  private readonly emitReleased = (piece: Uint8Array, length: number): void => this.onUplink(this.ctx!, piece, 0, length);
  /**
   * The fragment size of the datagram the neighbour table holds for a next hop (0: a
   * plain frame). The table holds one frame per address, so a reassembled datagram waits
   * for ARP whole and is cut when it is released: holding its first fragment would lose
   * the rest. At most one entry per next hop (the gateway or an address of the uplink's
   * network); written only when a frame is held, never per forwarded frame.
   */
  private readonly heldFragmentSize = new Map<number, number>();

  /** Frames in `buf` go out by reference to slab `slab` until the batch is flushed. */
  beginBatch(buf: Uint8Array, slab: number): void {
    this.rxBuf = buf;
    this.rxSlab = slab;
  }

  send(ctx: FrameContext, t: PathTables): void {
    this.ctx = ctx;
    this.tables = t;
    if (ctx.egress !== Egress.None) {
      const size = ctx.fragmentSize;
      const tooBig = size > 0 && readU16(ctx.txBuf, ctx.txOffset + ETHERNET_HEADER_LEN + IP_TOTAL_LENGTH) > size;
      if (tooBig && !(ctx.egress === Egress.Uplink && t.neighbours.lookupBytes(ctx.nextHop | 0) === undefined)) this.refragment(ctx, size);
      else this.sendPiece(ctx, t, ctx.txBuf, ctx.txOffset, ctx.txLength);
    }
    if (ctx.releasedBuf !== undefined) {
      const frame = ctx.releasedBuf;
      ctx.releasedBuf = undefined;
      this.addressed(frame, 0, ctx.releasedMac, t.uplink!.mac);
      const size = this.releasedFragmentSize(t, frame, ctx.releasedLength);
      if (size > 0) {
        this.fragment.set(frame.subarray(0, ETHERNET_HEADER_LEN), 0);
        const err = fragmentIpv4(frame, ETHERNET_HEADER_LEN, size, this.fragment, ETHERNET_HEADER_LEN, this.emitReleased, true);
        if (err !== FragmentError.Ok) ctx.drops[Drop.Malformed]++;
      } else this.onUplink(ctx, frame, 0, ctx.releasedLength);
    }
  }

  /** The size to cut a released frame to (its datagram's fragment size), or 0 to send it whole. */
  private releasedFragmentSize(t: PathTables, frame: Buffer, length: number): number {
    this.eth.check(frame, 0, length);
    if (this.eth.ethertype !== ETHERTYPE.IPV4 || length < ETHERNET_HEADER_LEN + IPV4_HEADER_LEN) return 0;
    const hop = t.nextHopFor(readU32(frame, ETHERNET_HEADER_LEN + IP_DST));
    const size = this.heldFragmentSize.get(hop) ?? 0;
    this.heldFragmentSize.delete(hop);
    return readU16(frame, ETHERNET_HEADER_LEN + IP_TOTAL_LENGTH) > size ? size : 0;
  }

  /** Hands every queued frame to the kernel; by-reference frames must go before the batch ends. */
  flush(t: PathTables): void {
    this.rxBuf = undefined;
    this.rxSlab = 0;
    for (let i = 0; i < this.dirtyCount; i++) t.slots[this.dirtySlots[i]]?.port.flush();
    this.dirtyCount = 0;
    if (this.overlayDirty) {
      this.overlay?.flush();
      this.overlayDirty = false;
    }
    if (this.uplinkDirty) {
      this.uplink?.flush();
      this.uplinkDirty = false;
    }
  }

  /** A reassembled datagram leaves as fragments of at most `size` bytes of IP. */
  private refragment(ctx: FrameContext, size: number): void {
    const out = this.fragment;
    out.set(ctx.txBuf.subarray(ctx.txOffset, ctx.txOffset + ETHERNET_HEADER_LEN), 0);
    const err = fragmentIpv4(ctx.txBuf, ctx.txOffset + ETHERNET_HEADER_LEN, size, out, ETHERNET_HEADER_LEN, this.emitPiece, true);
    if (err !== FragmentError.Ok) ctx.drops[Drop.Malformed]++;
  }

  /** One frame (or fragment) to the egress, through software offload where the egress needs it. */
  private sendPiece(ctx: FrameContext, t: PathTables, buf: Uint8Array, offset: number, length: number): void {
    if (hasOffload(ctx.offload) && !this.takesOffload(ctx, t)) return this.softwareOffload(ctx, buf, offset, length);
    this.toEgress(ctx, t, buf, offset, length);
  }

  private takesOffload(ctx: FrameContext, t: PathTables): boolean {
    switch (ctx.egress) {
      case Egress.Pod:
        return t.slots[ctx.egressSlot]?.port.offload ?? false;
      case Egress.Peer:
        return this.overlay?.carriesSuperFrames ?? false;
      case Egress.Flood:
        // Decided port by port in flood().
        return true;
      default:
        return false;
    }
  }

  /**
   * Does in software what the egress cannot take as metadata: finishes a partial checksum,
   * or cuts a super-frame into segments, each sent with no offload left.
   */
  private softwareOffload(ctx: FrameContext, buf: Uint8Array, offset: number, length: number): void {
    const offload = ctx.offload;
    if (offload.gsoType === VNET_HDR_GSO_NONE) {
      if (completeChecksum(buf, offset, length, offload.csumStart, offload.csumOffset) !== GsoError.Ok) {
        ctx.drops[Drop.Malformed]++;
        return;
      }
      offload.flags = 0;
      return this.toEgress(ctx, this.tables!, buf, offset, length);
    }
    const gsoSize = offload.gsoSize;
    offload.flags = 0;
    offload.gsoType = VNET_HDR_GSO_NONE;
    if (segmentTcpV4(buf, offset, length, gsoSize, this.segment, this.emitSegment) !== GsoError.Ok) ctx.drops[Drop.Malformed]++;
  }

  private toEgress(ctx: FrameContext, t: PathTables, buf: Uint8Array, offset: number, length: number): void {
    switch (ctx.egress) {
      case Egress.Pod:
        return this.toPod(ctx, t, ctx.egressSlot, buf, offset, length);
      case Egress.Peer:
        return this.toPeer(ctx, t, ctx.egressPeer!, buf, offset, length);
      case Egress.Uplink:
        return this.toNeighbour(ctx, t, buf, offset, length);
      case Egress.UplinkAddressed:
        return this.onUplink(ctx, buf, offset, length);
      case Egress.Flood:
        return this.flood(ctx, t, buf, offset, length);
      default:
        ctx.drops[Drop.InternalError]++;
    }
  }

  private toPod(ctx: FrameContext, t: PathTables, slot: number, buf: Uint8Array, offset: number, length: number): void {
    const pod = t.slots[slot];
    if (pod === undefined) {
      ctx.drops[Drop.NoNeighbour]++;
      return;
    }
    if (this.tap !== undefined) this.tap.podFrame(slot, buf, offset, length);
    if (!pod.port.send(buf, offset, length, ctx.offload, this.slabOf(buf))) {
      ctx.drops[Drop.TxQueueFull]++;
      return;
    }
    this.markDirty(slot);
  }

  private flood(ctx: FrameContext, t: PathTables, buf: Uint8Array, offset: number, length: number): void {
    ctx.counters.flooded++;
    const slots = t.slots;
    const o = ctx.offload;
    // A frame flooded with offload metadata is rare (a super-frame to an unknown MAC). A
    // partial checksum is finished once, in place, for every port; a super-frame is cut
    // per port without offload, from the untouched frame, with the metadata kept for the rest.
    if (hasOffload(o) && o.gsoType === VNET_HDR_GSO_NONE && slots.some((p, s) => p !== undefined && s !== ctx.inSlot && !p.port.offload)) {
      if (completeChecksum(buf, offset, length, o.csumStart, o.csumOffset) !== GsoError.Ok) {
        ctx.drops[Drop.Malformed]++;
        return;
      }
      o.flags = 0;
    }
    const segmented = o.gsoType !== VNET_HDR_GSO_NONE;
    for (let slot = 0; slot < slots.length; slot++) {
      const pod = slots[slot];
      if (slot === ctx.inSlot || pod === undefined) continue;
      if (segmented && !pod.port.offload) {
        const { flags, gsoType, gsoSize } = o;
        ctx.egress = Egress.Pod;
        ctx.egressSlot = slot;
        this.softwareOffload(ctx, buf, offset, length);
        ctx.egress = Egress.Flood;
        o.flags = flags;
        o.gsoType = gsoType;
        o.gsoSize = gsoSize;
        continue;
      }
      this.toPod(ctx, t, slot, buf, offset, length);
    }
  }

  private toPeer(ctx: FrameContext, t: PathTables, peer: Peer, buf: Uint8Array, offset: number, length: number): void {
    const link = this.overlay;
    if (link === undefined) {
      ctx.drops[Drop.NoRoute]++;
      return;
    }
    const header = this.vxlanHeader;
    // The header is the node's VNI every time: emitted once, its offload bits per frame.
    if (this.headerVni !== t.node.vni) {
      emitVxlan({ vni: t.node.vni }, header, 0);
      this.headerVni = t.node.vni;
    }
    if (hasOffload(ctx.offload)) encodeSuperFrameBits(header, 0, ctx.offload);
    else clearSuperFrameBits(header, 0);
    if (!link.send(header, 0, VXLAN_HEADER_LEN, buf, offset, length, peer.underlayAddr, peer.underlayPort, ctx.offload, this.slabOf(buf))) {
      ctx.drops[Drop.TxQueueFull]++;
      return;
    }
    if (this.tap !== undefined) this.tap.overlayFrame(peer, true, buf, offset, length);
    this.overlayDirty = true;
  }

  /** Out of the uplink towards `ctx.nextHop`: its MAC when known, else the frame waits for ARP. */
  private toNeighbour(ctx: FrameContext, t: PathTables, buf: Uint8Array, offset: number, length: number): void {
    const up = t.uplink;
    if (up === undefined) {
      ctx.drops[Drop.NoRoute]++;
      return;
    }
    const mac = t.neighbours.lookupBytes(ctx.nextHop | 0);
    if (mac !== undefined) {
      const eth = this.eth;
      eth.check(buf, offset, ETHERNET_HEADER_LEN);
      eth.setDstFrom(mac);
      eth.setSrcFrom(t.uplinkMacBytes);
      return this.onUplink(ctx, buf, offset, length);
    }
    if (!t.neighbours.hold(ctx.nextHop, buf, offset, length, ctx.nowNs)) return;
    this.heldFragmentSize.set(ctx.nextHop, ctx.fragmentSize);
    const out = this.arpRequest;
    emitEthernet({ dstMac: BROADCAST_MAC, srcMac: up.mac, ethertype: ETHERTYPE.ARP }, out, 0);
    emitArp({ operation: ARP_OP.REQUEST, senderMac: up.mac, senderIp: up.addr, targetMac: 0, targetIp: ctx.nextHop }, out, ETHERNET_HEADER_LEN);
    this.onUplink(ctx, out, 0, out.length);
  }

  private addressed(buf: Uint8Array, offset: number, dstMac: number, srcMac: number): void {
    const eth = this.eth;
    eth.check(buf, offset, ETHERNET_HEADER_LEN);
    eth.dstMac = dstMac;
    eth.srcMac = srcMac;
  }

  private onUplink(ctx: FrameContext, buf: Uint8Array, offset: number, length: number): void {
    const port = this.uplink;
    if (port === undefined) {
      ctx.drops[Drop.NoRoute]++;
      return;
    }
    if (this.tap !== undefined) this.tap.uplinkFrame(buf, offset, length);
    if (!port.send(buf, offset, length, ctx.offload, this.slabOf(buf))) {
      ctx.drops[Drop.TxQueueFull]++;
      return;
    }
    this.uplinkDirty = true;
  }

  /** The slab number to send `buf` by reference, or 0 (copy) when it is not the batch's. */
  private slabOf(buf: Uint8Array): number {
    return buf === this.rxBuf ? this.rxSlab : 0;
  }

  private markDirty(slot: number): void {
    for (let i = 0; i < this.dirtyCount; i++) if (this.dirtySlots[i] === slot) return;
    if (this.dirtyCount < MAX_DIRTY) this.dirtySlots[this.dirtyCount++] = slot;
  }
}
