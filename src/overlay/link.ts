/**
 * What the pipeline needs of an overlay transport: the contract between the node's
 * forwarding path and the VTEP socket (vtep.ts), or a fake one in tests. It lives here, with
 * the overlay, so that the overlay does not import from src/node, which wires it.
 */
import type { DatagramBatch, TxOffload } from '../port/port.js';

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
