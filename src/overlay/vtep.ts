/**
 * The VTEP's socket as the pipeline sees it: a datagram port that sends a VXLAN header and
 * an inner frame as one datagram, to a peer's underlay address.
 *
 * The header and the frame live in different buffers (the frame in the receive slab where
 * it was rewritten in place), so they are joined in a scratch buffer before the port copies
 * the datagram into its transmit slab.
 */
import type { DatagramBatch, DatagramPort, TxOffload } from '../io/port.js';
import type { OverlayLink } from '../node/pipeline.js';

const MAX_DATAGRAM = 65536;

export class VtepSocket implements OverlayLink {
  private readonly scratch = Buffer.alloc(MAX_DATAGRAM);

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
  ): boolean {
    const length = headerLength + frameLength;
    if (length > MAX_DATAGRAM) return false;
    this.scratch.set(header.subarray(headerOffset, headerOffset + headerLength), 0);
    this.scratch.set(frame.subarray(frameOffset, frameOffset + frameLength), headerLength);
    return this.port.send(this.scratch, 0, length, addr, port);
  }

  flush(): void {
    this.port.flush();
  }

  close(): void {
    this.port.close();
  }
}
