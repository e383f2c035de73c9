/**
 * The overlay's UDP socket as the forwarding path uses it: the VTEP's send and receive,
 * with super-frame metadata where the underlay can carry it.
 */
import type { DatagramBatch, TxOffload } from '../io/port.js';

/** The overlay's UDP socket as the forwarding path uses it. */
export interface OverlayLink {
  /** True on a loopback underlay, where GSO super-frames travel whole in one datagram. */
  readonly carriesSuperFrames: boolean;
  start(handler: (batch: DatagramBatch) => void): void;
  /** Queues header + frame as one datagram to addr:port; false when dropped. */
  send(
    header: Uint8Array,
    headerOffset: number,
    headerLength: number,
    frame: Uint8Array,
    frameOffset: number,
    frameLength: number,
    addr: number,
    port: number,
    offload: TxOffload,
    /** `frame`'s slab number when it is a native receive slab (by reference), else 0. */
    frameSlab?: number,
  ): boolean;
  flush(): void;
  close(): void;
}

