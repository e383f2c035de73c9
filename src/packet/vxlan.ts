/**
 * VXLAN (RFC 7348): an 8-byte header inside UDP (port 4789) in front of an inner
 * Ethernet frame.
 *
 *     flags (8) | reserved (24) | VNI (24) | reserved (8)
 *
 * The header has no length field; `VxlanView.check` proves the 8 bytes fit in
 * `available` (the UDP payload length) and nothing more. The I flag is judged by
 * `parseVxlan`; reserved bits are ignored on receive and written as zero, as the RFC says.
 */
import { readU24, writeU24 } from './bytes.js';
import { PacketError, PacketOk } from './errors.js';

export const VXLAN_HEADER_LEN = 8;
/** IANA-assigned UDP port (Linux's vxlan default is 8472 unless `dstport 4789`). */
export const VXLAN_PORT = 4789;
/** The I flag: "the VNI is valid". Must be set; the other seven flag bits are reserved. */
export const VXLAN_FLAG_I = 0x08;
/** The VNI is 24 bits. */
export const VXLAN_MAX_VNI = 0xffffff;

const FLAGS = 0;
const RESERVED1 = 1;
const VNI = 4;
const RESERVED2 = 7;

export class VxlanView {
  buf: Uint8Array = EMPTY;
  /** Offset of the VXLAN header in `buf`. */
  offset = 0;
  /** Header plus inner frame: the `available` that `check` was given. */
  length = 0;

  /**
   * Points this view at a VXLAN packet of `available` bytes at `offset` (the UDP payload).
   * Returns `PacketOk` or why not; allocates nothing, so one view can serve every packet.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < VXLAN_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    this.buf = buf;
    this.offset = offset;
    this.length = available;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): VxlanView | PacketError {
    const view = new VxlanView();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  get flags(): number {
    return this.buf[this.offset + FLAGS];
  }
  set flags(value: number) {
    this.buf[this.offset + FLAGS] = value & 0xff;
  }
  /** True when the I flag says the VNI field is valid. */
  get vniValid(): boolean {
    return (this.flags & VXLAN_FLAG_I) !== 0;
  }
  get vni(): number {
    return readU24(this.buf, this.offset + VNI);
  }
  set vni(value: number) {
    writeU24(this.buf, this.offset + VNI, value);
  }
  /** The 24 reserved bits after the flags (ignored on receive). */
  get reserved1(): number {
    return readU24(this.buf, this.offset + RESERVED1);
  }
  /** The 8 reserved bits after the VNI (ignored on receive). */
  get reserved2(): number {
    return this.buf[this.offset + RESERVED2];
  }
  /** Where the inner Ethernet frame begins. */
  get payloadOffset(): number {
    return this.offset + VXLAN_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.length - VXLAN_HEADER_LEN;
  }
  /** The inner frame as a subarray (allocates a view object: not for the hot path). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.length);
  }
}

const EMPTY = new Uint8Array(0);

export interface VxlanRepr {
  vni: number;
}

/** Refuses a header without the I flag (BadField); reserved bits are ignored (RFC 7348 §5). */
export function parseVxlan(view: VxlanView): VxlanRepr | PacketError {
  if (!view.vniValid) return PacketError.BadField;
  return { vni: view.vni };
}

export function vxlanBufferLen(payloadLength: number): number {
  return VXLAN_HEADER_LEN + payloadLength;
}

/**
 * Writes the header at `offset`: the I flag, the VNI (taken modulo 2^24) and every
 * reserved bit as zero. The inner frame goes at `offset + VXLAN_HEADER_LEN`. Returns the
 * number of header bytes written.
 */
export function emitVxlan(repr: VxlanRepr, buf: Uint8Array, offset: number): number {
  buf[offset + FLAGS] = VXLAN_FLAG_I;
  writeU24(buf, offset + RESERVED1, 0);
  writeU24(buf, offset + VNI, repr.vni);
  buf[offset + RESERVED2] = 0;
  return VXLAN_HEADER_LEN;
}
