/**
 * The VTEP's socket as the pipeline sees it: a datagram port that sends a VXLAN header and
 * an inner frame as one datagram, to a peer's underlay address.
 *
 * The header and the frame live in different buffers (the frame in the receive slab where
 * it was rewritten in place); the port sends them as one datagram, taking a frame that is
 * still in a native receive slab by reference (the kernel gathers the two parts).
 */
import type { DatagramBatch, DatagramPort, TxOffload } from '../port/port.js';
import type { OverlayLink } from './link.js';

export class VtepSocket implements OverlayLink {
  /**
   * `carriesSuperFrames`: the underlay is loopback, so TSO super-frames cross whole with
   * their offload bits (superframe.ts); otherwise the pipeline segments them first.
   */
  constructor(
    readonly port: DatagramPort,
    readonly carriesSuperFrames: boolean,
  ) {}

  start(handler: (batch: DatagramBatch) => void): void {
    this.port.start(handler);
  }

  send(
    header: Uint8Array,
    headerOffset: number,
    headerLength: number,
    frame: Uint8Array,
    frameOffset: number,
    frameLength: number,
    addr: number,
    port: number,
    _offload: TxOffload,
    frameSlab = 0,
  ): boolean {
    return this.port.sendParts(header, headerOffset, headerLength, frame, frameOffset, frameLength, frameSlab, addr, port);
  }

  flush(): void {
    this.port.flush();
  }

  close(): void {
    this.port.close();
  }
}
