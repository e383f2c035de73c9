/**
 * UdpPort: the overlay's UDP socket through podwire's addon, recvmmsg/sendmmsg in batches.
 *
 * Each simulated node binds its own loopback address (127.x.y.z) and port; receive hands
 * over every ready datagram with its source address and port in one call, and flush()
 * sends the whole queue with sendmmsg, each datagram to its own peer.
 */
import { formatIpv4, parseIpv4 } from '../packet/addr.js';
import { NativePort, nativeIo, nativeIoUnavailable, slabBuffer, STAT_RX_GLUED, STAT_TX_GLUED, type NativeUdpPort } from './native.js';
import { inside, type DatagramBatch, type DatagramPort } from './port.js';

/** The largest UDP payload over IPv4 (65535 - 20 - 8). */
export const MAX_UDP_PAYLOAD = 65507;

export interface UdpOptions {
  /** Most datagrams per recvmmsg/sendmmsg; default 64. */
  batch?: number;
  /**
   * Largest datagram received; bigger ones are dropped and counted in rxErrors. Each of
   * the `batch` receive slots has this size, so it sets the slab's size (default 65507:
   * 64 slots take 4 MiB). 2048 is plenty for VXLAN of MTU-sized frames.
   */
  maxDatagram?: number;
  /** SO_RCVBUF and SO_SNDBUF (forced past rmem_max when root); default 8 MiB. */
  bufferBytes?: number;
  /**
   * UDP segmentation offload both ways (default off): a flush sends each run of
   * equal-sized datagrams to one peer as one glued datagram (UDP_SEGMENT), and glued
   * datagrams received (UDP_GRO) are split again, so send() and the batches still see
   * single datagrams. One skb per run instead of one per datagram: the overlay's
   * small-packet rate. `tcpdump` on the underlay shows the glued datagrams. Needs
   * maxDatagram >= 65507 (a glued datagram is up to 64 KiB); where the kernel lacks it
   * the port works without (see UdpPort.udpOffload).
   */
  udpOffload?: boolean;
}

/** Parses a dotted quad or passes a uint32 through; throws on bad text (setup time). */
export function toIpv4(address: string | number): number {
  const addr = typeof address === 'number' ? address : parseIpv4(address);
  if (addr === undefined || !Number.isInteger(addr) || addr < 0 || addr > 0xffffffff) {
    throw new RangeError(`not an IPv4 address: ${address}`);
  }
  return addr;
}

export class UdpPort extends NativePort<NativeUdpPort, DatagramBatch> implements DatagramPort {
  readonly backend = 'addon' as const;
  readonly address: number;
  readonly port: number;
  /** The socket buffer sizes the kernel granted (as getsockopt reports them). */
  readonly rcvbuf: number;
  readonly sndbuf: number;
  /** Whether UDP segmentation offload is on (asked for, and the kernel has it). */
  readonly udpOffload: boolean;
  private readonly maxDatagram: number;

  /** Binds address:port (port 0 lets the kernel choose; see .port). Throws EADDRINUSE etc. */
  static open(address: string | number, port: number, options: UdpOptions = {}): UdpPort {
    if (nativeIo === undefined) throw new Error(`podwire addon unavailable: ${nativeIoUnavailable}`);
    const addr = toIpv4(address);
    const maxDatagram = options.maxDatagram ?? MAX_UDP_PAYLOAD;
    if (options.udpOffload === true && maxDatagram < MAX_UDP_PAYLOAD) {
      throw new RangeError(`udpOffload needs maxDatagram ${MAX_UDP_PAYLOAD} (glued datagrams are up to 64 KiB), got ${maxDatagram}`);
    }
    const s = nativeIo.openUdp(addr, port, options.bufferBytes ?? 8 << 20, options.udpOffload === true);
    const native = new nativeIo.IoPort(s.fd, nativeIo.KIND_UDP, {
      batch: options.batch ?? 64,
      frameCap: maxDatagram,
      udpOffload: s.udpOffload ? 1 : 0,
    }) as NativeUdpPort;
    return new UdpPort(native, addr, s, maxDatagram);
  }

  private constructor(
    native: NativeUdpPort,
    addr: number,
    { port, rcvbuf, sndbuf, udpOffload }: { port: number; rcvbuf: number; sndbuf: number; udpOffload: boolean },
    maxDatagram: number,
  ) {
    super(native, `udp:${formatIpv4(addr)}:${port}`, {
      buf: slabBuffer(native.rxBuf),
      slab: native.rxSlab,
      count: 0,
      offsets: native.rxOffsets,
      lengths: native.rxLengths,
      addrs: native.rxAddrs,
      ports: native.rxPorts,
    });
    this.address = addr;
    this.port = port;
    this.rcvbuf = rcvbuf;
    this.sndbuf = sndbuf;
    this.udpOffload = udpOffload;
    this.maxDatagram = maxDatagram;
  }

  send(data: Uint8Array, offset: number, length: number, addr: number, port: number): boolean {
    return this.sendParts(data, offset, length, data, offset, 0, 0, addr, port);
  }

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
  ): boolean {
    const fits = inside(head, headOffset, headLength) && inside(body, bodyOffset, bodyLength) && headLength + bodyLength <= this.maxDatagram;
    if (this.closed || !fits) return this.refuse();
    const i = this.tx.add(head, headOffset, headLength, body, bodyOffset, bodyLength, bodySlab);
    this.native.txAddrs[i] = addr;
    this.native.txPorts[i] = port;
    return true;
  }

  get glued(): { sent: number; received: number } | undefined {
    if (!this.udpOffload) return undefined;
    return { sent: this.native.stats[STAT_TX_GLUED], received: this.native.stats[STAT_RX_GLUED] };
  }
}
