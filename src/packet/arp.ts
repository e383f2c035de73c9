/**
 * ARP (RFC 826) for Ethernet and IPv4, the only pairing podwire's bridge answers.
 *
 * `ArpView.check` proves only that the 28 bytes of an Ethernet/IPv4 ARP packet lie inside
 * the buffer: the accessors read those fixed offsets, so they stay in bounds whatever the
 * length fields say. Whether the packet really is Ethernet/IPv4 (hardware type 1, protocol
 * type 0x0800, lengths 6 and 4) is judged by `parseArp`. Bytes after the 28 (Ethernet
 * padding to the 60-byte minimum) are not the view's concern.
 */
import { readMac, writeMac } from './addr.js';
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { PacketError, PacketOk } from './errors.js';
import { ETHERTYPE } from './ethernet.js';

/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;

/** ARP operations. An open set: other codes (RARP, InARP) are carried as numbers. */
export const ARP_OP = {
  REQUEST: 1,
  REPLY: 2,
} as const;

const HARDWARE_ETHERNET = 1;
const MAC_LEN = 6;
const IPV4_LEN = 4;

const HTYPE = 0;
const PTYPE = 2;
const HLEN = 4;
const PLEN = 5;
const OPER = 6;
const SHA = 8;
const SPA = 14;
const THA = 18;
const TPA = 24;

export class ArpView {
  buf: Uint8Array = EMPTY;
  /** Offset of the ARP packet in `buf`. */
  offset = 0;

  /**
   * Points this view at an ARP packet of at most `available` bytes at `offset`. Returns
   * `PacketOk` or why not; allocates nothing, so one view can serve every packet.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < ARP_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    this.buf = buf;
    this.offset = offset;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): ArpView | PacketError {
    const view = new ArpView();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  get hardwareType(): number {
    return readU16(this.buf, this.offset + HTYPE);
  }
  get protocolType(): number {
    return readU16(this.buf, this.offset + PTYPE);
  }
  get hardwareLength(): number {
    return this.buf[this.offset + HLEN];
  }
  get protocolLength(): number {
    return this.buf[this.offset + PLEN];
  }
  get operation(): number {
    return readU16(this.buf, this.offset + OPER);
  }
  set operation(op: number) {
    writeU16(this.buf, this.offset + OPER, op);
  }
  get senderMac(): number {
    return readMac(this.buf, this.offset + SHA);
  }
  set senderMac(mac: number) {
    writeMac(this.buf, this.offset + SHA, mac);
  }
  get senderIp(): number {
    return readU32(this.buf, this.offset + SPA);
  }
  set senderIp(addr: number) {
    writeU32(this.buf, this.offset + SPA, addr);
  }
  get targetMac(): number {
    return readMac(this.buf, this.offset + THA);
  }
  set targetMac(mac: number) {
    writeMac(this.buf, this.offset + THA, mac);
  }
  get targetIp(): number {
    return readU32(this.buf, this.offset + TPA);
  }
  set targetIp(addr: number) {
    writeU32(this.buf, this.offset + TPA, addr);
  }
}

const EMPTY = new Uint8Array(0);

export interface ArpRepr {
  operation: number;
  senderMac: number;
  senderIp: number;
  targetMac: number;
  targetIp: number;
}

/** Refuses anything but Ethernet/IPv4 ARP (BadField); the operation stays open. */
export function parseArp(view: ArpView): ArpRepr | PacketError {
  if (
    view.hardwareType !== HARDWARE_ETHERNET ||
    view.protocolType !== ETHERTYPE.IPV4 ||
    view.hardwareLength !== MAC_LEN ||
    view.protocolLength !== IPV4_LEN
  ) {
    return PacketError.BadField;
  }
  return {
    operation: view.operation,
    senderMac: view.senderMac,
    senderIp: view.senderIp,
    targetMac: view.targetMac,
    targetIp: view.targetIp,
  };
}

export function arpBufferLen(_repr?: ArpRepr): number {
  return ARP_LEN;
}

/** Writes the 28-byte packet at `offset` and returns 28. */
export function emitArp(repr: ArpRepr, buf: Uint8Array, offset: number): number {
  return writeArp(buf, offset, repr.operation, repr.senderMac, repr.senderIp, repr.targetMac, repr.targetIp);
}

/**
 * The answer to `request` from the owner of `ourMac` (RFC 826: swap sender and target,
 * fill in our MAC, operation reply), written at `offset` of `buf`. The request's fields
 * are read before anything is written, so `buf`/`offset` may be the request's own bytes
 * (an in-place reply). Whether the target address is ours to answer for, and whether the
 * request was parsed as Ethernet/IPv4, is the caller's decision. Allocates nothing;
 * returns 28.
 */
export function emitArpReply(request: ArpView, ourMac: number, buf: Uint8Array, offset: number): number {
  return writeArp(buf, offset, ARP_OP.REPLY, ourMac, request.targetIp, request.senderMac, request.senderIp);
}

/** Arguments are evaluated before the first write, which is what makes in-place replies safe. */
function writeArp(buf: Uint8Array, offset: number, op: number, sha: number, spa: number, tha: number, tpa: number): number {
  writeU16(buf, offset + HTYPE, HARDWARE_ETHERNET);
  writeU16(buf, offset + PTYPE, ETHERTYPE.IPV4);
  buf[offset + HLEN] = MAC_LEN;
  buf[offset + PLEN] = IPV4_LEN;
  writeU16(buf, offset + OPER, op);
  writeMac(buf, offset + SHA, sha);
  writeU32(buf, offset + SPA, spa);
  writeMac(buf, offset + THA, tha);
  writeU32(buf, offset + TPA, tpa);
  return ARP_LEN;
}
