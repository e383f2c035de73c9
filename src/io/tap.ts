/**
 * TapPort: a pod's eth0, seen from the node process, through podwire's addon.
 *
 * The addon reads every ready frame into a slab on one libuv wake-up and calls us once
 * per batch; transmit copies frames into the addon's tx slab and flush() writes them all
 * in one native call. The RxBatch object and every array in it are allocated once, here.
 *
 * The TAP lives as long as this port: moving it into the pod's namespace and renaming it
 * to eth0 (`ip link set NAME netns NS`, `ip -n NS link set NAME name eth0`) keeps the fd
 * working; close() deletes the device wherever it is.
 */
import { NativePort, nativeIo, nativeIoUnavailable, slabBuffer, type NativeTapPort } from './native.js';
import { inside, type Port, type RxBatch, type TxOffload } from './port.js';

/** Ethernet (14) + one VLAN tag (4) + the largest IP packet (65535): a GSO super-frame. */
export const MAX_TAP_FRAME = 65553;

export interface TapOptions {
  /**
   * IFF_VNET_HDR: frames carry virtio_net_hdr offload metadata (as RxBatch.flags, gsoType,
   * gsoSize, csumStart, csumOffset). Default false.
   */
  vnetHdr?: boolean;
  /**
   * TUNSETOFFLOAD CSUM|TSO4|TSO6 (implies vnetHdr): the pod's kernel hands over unsegmented
   * TCP super-frames of up to 64 KiB with partial checksums, and accepts them back.
   */
  offload?: boolean;
  /** Most frames per receive batch and per flush; default 256. */
  batch?: number;
}

/** close() deletes the device, wherever it was moved. */
export class TapPort extends NativePort<NativeTapPort, RxBatch> implements Port {
  readonly backend = 'addon' as const;
  readonly offload: boolean;

  /** Opens (creates) the TAP `name` ('' or a '%d' pattern lets the kernel choose). */
  static open(name: string, options: TapOptions = {}): TapPort {
    if (nativeIo === undefined) throw new Error(`podwire addon unavailable: ${nativeIoUnavailable}`);
    const vnetHdr = options.vnetHdr === true || options.offload === true;
    const vnetHdrLen = vnetHdr ? 10 : 0;
    const { fd, name: ifName } = nativeIo.openTap(name, vnetHdrLen, options.offload === true);
    // From here the IoPort owns fd (it closes it itself if its constructor throws).
    const native = new nativeIo.IoPort(fd, nativeIo.KIND_TAP, {
      batch: options.batch ?? 256,
      frameCap: MAX_TAP_FRAME,
      vnetHdrLen,
    }) as NativeTapPort;
    return new TapPort(native, ifName, vnetHdr);
  }

  /** `name` is the kernel's name for the device when it was opened (it may be renamed later). */
  private constructor(native: NativeTapPort, name: string, vnetHdr: boolean) {
    super(native, name, {
      buf: slabBuffer(native.rxBuf),
      slab: native.rxSlab,
      count: 0,
      offsets: native.rxOffsets,
      lengths: native.rxLengths,
      flags: native.rxFlags,
      gsoType: native.rxGsoType,
      gsoSize: native.rxGsoSize,
      csumStart: native.rxCsumStart,
      csumOffset: native.rxCsumOffset,
    });
    this.offload = vnetHdr;
  }

  send(frame: Uint8Array, offset: number, length: number, offload?: TxOffload, slab = 0): boolean {
    if (this.closed || length === 0 || length > MAX_TAP_FRAME || !inside(frame, offset, length)) return this.refuse();
    const i = this.tx.add(frame, offset, 0, frame, offset, length, slab);
    if (this.offload) {
      const n = this.native;
      // The arrays are reused: a frame without metadata must clear what the last one left.
      n.txFlags[i] = offload ? offload.flags : 0;
      n.txGsoType[i] = offload ? offload.gsoType : 0;
      n.txGsoSize[i] = offload ? offload.gsoSize : 0;
      n.txCsumStart[i] = offload ? offload.csumStart : 0;
      n.txCsumOffset[i] = offload ? offload.csumOffset : 0;
    }
    return true;
  }
}
