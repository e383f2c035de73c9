/**
 * A port is one place frames come in and go out: a pod's TAP, the overlay's UDP socket, or
 * a userspace wire in tests. The pipeline sees only this interface.
 *
 * Receive is batched: the port reads every frame the kernel has ready (until EAGAIN) into
 * one preallocated slab and hands the whole batch to the handler in a single call, so the
 * cost of crossing from libuv into JavaScript is paid per batch, not per frame. Frames in
 * a batch are views into the slab and are valid only until the handler returns.
 *
 * A native port's slab has a number (`slab`): handing a frame of that slab to another
 * native port's send() with its number queues a reference instead of a copy, and the
 * kernel gathers the frame from the receive slab at flush. Such a frame must be flushed
 * before the handler returns (the slab is read into again after it), which the pipeline
 * does at the end of every batch.
 *
 * Offload metadata travels beside each frame, not inside it: with IFF_VNET_HDR a TAP
 * delivers TSO/GSO super-frames of up to 64 KiB with a virtio_net_hdr, which the port
 * strips into `RxBatch.gsoType/gsoSize/csumStart/csumOffset/flags`. A port that does not
 * do offload reports GSO_NONE and flags 0 for every frame.
 *
 * This contract sits below everything that implements or uses a port (src/io's addon
 * ports, native-free's fallbacks, the overlay, the node) and imports nothing, so that
 * native-free can implement it without importing src/io, which opens native-free's ports.
 */

/** virtio_net_hdr flags and GSO types (include/uapi/linux/virtio_net.h). */
export const VNET_HDR_F_NEEDS_CSUM = 1;
export const VNET_HDR_F_DATA_VALID = 2;
export const VNET_HDR_GSO_NONE = 0;
export const VNET_HDR_GSO_TCPV4 = 1;
export const VNET_HDR_GSO_UDP = 3;
export const VNET_HDR_GSO_TCPV6 = 4;
export const VNET_HDR_GSO_UDP_L4 = 5;
export const VNET_HDR_GSO_ECN = 0x80;

export interface RxBatch {
  /** The slab all frames of this batch live in. */
  readonly buf: Buffer;
  /** `buf`'s number for by-reference transmit; 0 when it has none (ports without the addon). */
  readonly slab: number;
  /** Number of frames in this batch. */
  count: number;
  /** Frame i is buf[offsets[i], offsets[i] + lengths[i]). */
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** Per-frame offload metadata (see virtio_net_hdr). */
  readonly flags: Uint8Array;
  readonly gsoType: Uint8Array;
  readonly gsoSize: Uint16Array;
  readonly csumStart: Uint16Array;
  readonly csumOffset: Uint16Array;
}

/** Whether [offset, offset + length) lies inside `buf`: what a send checks before it copies. */
export function inside(buf: Uint8Array, offset: number, length: number): boolean {
  return offset >= 0 && length >= 0 && offset + length <= buf.length;
}

/** Offload metadata for one frame on transmit; the same meaning as on receive. */
export interface TxOffload {
  flags: number;
  gsoType: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export interface PortStats {
  rxFrames: number;
  rxBytes: number;
  rxBatches: number;
  txFrames: number;
  txBytes: number;
  /** Frames the kernel refused or that found the transmit queue full. */
  txDropped: number;
  /** Frames refused on receive (too large for the slab, read errors). */
  rxErrors: number;
}

/**
 * Why a port stopped for good: its TAP was deleted, its relay process or wire peer went
 * away. The port is closed by the time this is called; `code` is an errno name when the
 * kernel gave one.
 */
export type PortErrorHandler = (err: Error & { code?: string }) => void;

export interface Port {
  readonly name: string;
  /** True when frames carry offload metadata (TAP with IFF_VNET_HDR). */
  readonly offload: boolean;
  /**
   * Starts delivery; `handler` is called once per batch. Without `onError` a port that
   * dies emits a process warning instead.
   */
  start(handler: (batch: RxBatch) => void, onError?: PortErrorHandler): void;
  /**
   * Queues one frame (copied into the transmit slab) and returns false when it had to be
   * dropped (port closed, frame too large). A full slab is flushed first, not dropped.
   * `offload` is ignored by ports without offload. `slab`, when `frame` is a batch's
   * `buf`, is that batch's `slab`: a native port then queues a reference, not a copy.
   */
  send(frame: Uint8Array, offset: number, length: number, offload?: TxOffload, slab?: number): boolean;
  /** Writes every queued frame to the kernel; the pipeline calls it at the end of a batch. */
  flush(): void;
  readonly stats: PortStats;
  close(): void;
}

/**
 * A batch of UDP datagrams from the overlay socket: the same slab layout as RxBatch, with
 * each datagram's source instead of offload metadata.
 */
export interface DatagramBatch {
  readonly buf: Buffer;
  /** `buf`'s number for by-reference transmit (see RxBatch.slab); 0: none. */
  readonly slab: number;
  count: number;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** Source IPv4 address of datagram i, as a uint32 (src/packet/addr.ts). */
  readonly addrs: Uint32Array;
  /** Source UDP port of datagram i. */
  readonly ports: Uint16Array;
}

/**
 * The overlay's UDP socket: a Port whose frames are datagrams with a peer address each.
 * Bound to one IPv4 address and port, never shared (no SO_REUSEADDR).
 */
export interface DatagramPort {
  readonly name: string;
  /** Bound IPv4 address (uint32) and UDP port (the kernel's choice when 0 was asked). */
  readonly address: number;
  readonly port: number;
  start(handler: (batch: DatagramBatch) => void, onError?: PortErrorHandler): void;
  /** Queues one datagram for addr:port (copied); false when it had to be dropped. */
  send(data: Uint8Array, offset: number, length: number, addr: number, port: number): boolean;
  /**
   * Queues `head` then `body` as one datagram for addr:port (a VXLAN header and its
   * frame); a native port takes a body in a receive slab (`bodySlab`, as in Port.send) by
   * reference. False when it had to be dropped.
   */
  sendParts(
    head: Uint8Array,
    headOffset: number,
    headLength: number,
    body: Uint8Array,
    bodyOffset: number,
    bodyLength: number,
    bodySlab: number,
    addr: number,
    port: number,
  ): boolean;
  flush(): void;
  readonly stats: PortStats;
  /**
   * With UDP segmentation offload (UdpOptions.udpOffload): how many datagrams left glued
   * to others, and how many arrived glued and were split; undefined without it.
   */
  readonly glued?: { readonly sent: number; readonly received: number };
  close(): void;
}
