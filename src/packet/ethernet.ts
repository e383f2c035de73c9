/**
 * Ethernet II (IEEE 802.3 with an EtherType), with one 802.1Q tag recognised.
 *
 * `EthernetView.check` proves that the 14-byte header, plus the 4-byte tag when the
 * EtherType at byte 12 is a tag protocol identifier (0x8100, or 0x88a8 for an 802.1ad
 * outer tag), lies inside the buffer; after it returns `PacketOk` no accessor reads out
 * of bounds.
 *
 * Exactly one tag is read. In a double-tagged (QinQ) frame the view reports the outer
 * tag, `ethertype` is then the inner tag's TPID (0x8100), and the payload begins with the
 * inner TCI and the real EtherType. A caller that cares checks a second view at
 * `offset + VLAN_TAG_LEN`: its MACs are meaningless, its tag, `ethertype` and payload are
 * the inner ones. podwire's pods never send tagged frames, so one level is all the bridge
 * needs to recognise and count them, and a header of 14 or 18 bytes keeps the view
 * trivially bounded.
 *
 * The frame ends where the caller's `available` says (a TAP read, a pcap record): the
 * frame check sequence is not part of it, and padding to the 60-byte minimum, when
 * present, is payload that the layer above ignores through its own length field.
 */
import { readMac, writeMac } from './addr.js';
import { readU16, writeU16 } from './bytes.js';
import { PacketError, PacketOk } from './errors.js';

export const ETHERNET_HEADER_LEN = 14;
/** Length of one 802.1Q / 802.1ad tag (TPID plus TCI). */
export const VLAN_TAG_LEN = 4;

/**
 * Well-known EtherTypes. An open set: any other value is carried through as a number,
 * including values of 1500 and below, which are 802.3 length fields (LLC frames).
 */
export const ETHERTYPE = {
  IPV4: 0x0800,
  ARP: 0x0806,
  /** 802.1Q customer tag (C-tag). */
  VLAN: 0x8100,
  IPV6: 0x86dd,
  /** 802.1ad service tag (S-tag), the outer tag of a QinQ frame. */
  QINQ: 0x88a8,
} as const;

/** VID 0xfff is reserved by 802.1Q and never appears on the wire; `parseEthernet` refuses it. */
export const VLAN_ID_RESERVED = 0xfff;

const DST_MAC = 0;
const SRC_MAC = 6;
/** The EtherType of an untagged frame, or the TPID of a tagged one. */
const TYPE_OR_TPID = 12;
/** Tag control information (PCP, DEI, VID), present only in a tagged frame. */
const TCI = 14;

function isTagProtocol(type: number): boolean {
  return type === ETHERTYPE.VLAN || type === ETHERTYPE.QINQ;
}

export class EthernetView {
  buf: Uint8Array = EMPTY;
  /** Offset of the destination MAC in `buf`. */
  offset = 0;
  /**
   * 14, or 18 with a tag: fixed by `check`, so that a setter writing 0x8100 into an
   * untagged frame's EtherType cannot make a later getter reach for a tag that was never
   * proved to be inside the buffer.
   */
  headerLength = ETHERNET_HEADER_LEN;
  /** Header plus payload: the `available` bytes the frame was checked with. */
  frameLength = 0;

  /**
   * Points this view at a frame of `available` bytes at `offset`. Returns `PacketOk` or
   * why not; allocates nothing, so one view can serve every frame.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < ETHERNET_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    const tagged = isTagProtocol(readU16(buf, offset + TYPE_OR_TPID));
    if (tagged && available < ETHERNET_HEADER_LEN + VLAN_TAG_LEN) return PacketError.Truncated;
    this.buf = buf;
    this.offset = offset;
    this.headerLength = tagged ? ETHERNET_HEADER_LEN + VLAN_TAG_LEN : ETHERNET_HEADER_LEN;
    this.frameLength = available;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): EthernetView | PacketError {
    const view = new EthernetView();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  get dstMac(): number {
    return readMac(this.buf, this.offset + DST_MAC);
  }
  set dstMac(mac: number) {
    writeMac(this.buf, this.offset + DST_MAC, mac);
  }
  get srcMac(): number {
    return readMac(this.buf, this.offset + SRC_MAC);
  }
  set srcMac(mac: number) {
    writeMac(this.buf, this.offset + SRC_MAC, mac);
  }
  /**
   * The forwarding path's MAC operations: against a MAC held as 6 bytes (`macBytes`), and
   * the destination as two small integers. A MAC as one number is above 2^31, so each
   * getter result or argument that crosses a call that is not inlined becomes a heap
   * number: one allocation per frame per MAC. These make none.
   */
  dstIs(mac: Uint8Array): boolean {
    return sameMac(this.buf, this.offset + DST_MAC, mac);
  }
  srcIs(mac: Uint8Array): boolean {
    return sameMac(this.buf, this.offset + SRC_MAC, mac);
  }
  setDstFrom(mac: Uint8Array): void {
    copyMac(this.buf, this.offset + DST_MAC, mac);
  }
  setSrcFrom(mac: Uint8Array): void {
    copyMac(this.buf, this.offset + SRC_MAC, mac);
  }
  /** Broadcast or multicast: the I/G bit of the first byte. */
  get dstIsGroup(): boolean {
    return (this.buf[this.offset + DST_MAC] & 0x01) !== 0;
  }
  /** The destination's first two bytes, for tables keyed by (high, low). */
  get dstHigh(): number {
    return readU16(this.buf, this.offset + DST_MAC);
  }
  /** The destination's last four bytes as an int32 (a small integer, never a heap number). */
  dstLowInt32(): number {
    const b = this.buf;
    const at = this.offset + DST_MAC + 2;
    return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
  }
  /** Swaps source and destination MACs in place (an answer going back where it came from). */
  swapMacs(): void {
    const b = this.buf;
    const at = this.offset;
    for (let i = 0; i < 6; i++) {
      const x = b[at + DST_MAC + i];
      b[at + DST_MAC + i] = b[at + SRC_MAC + i];
      b[at + SRC_MAC + i] = x;
    }
  }

  /** The EtherType of the payload: after the tag when there is one. */
  get ethertype(): number {
    return readU16(this.buf, this.offset + this.headerLength - 2);
  }
  set ethertype(type: number) {
    writeU16(this.buf, this.offset + this.headerLength - 2, type);
  }

  get hasVlan(): boolean {
    return this.headerLength !== ETHERNET_HEADER_LEN;
  }
  /** The tag's TPID (0x8100 or 0x88a8), or 0 for an untagged frame. */
  get vlanTpid(): number {
    return this.hasVlan ? readU16(this.buf, this.offset + TYPE_OR_TPID) : 0;
  }
  /** The whole tag control information word, or 0 for an untagged frame. */
  get tci(): number {
    return this.hasVlan ? readU16(this.buf, this.offset + TCI) : 0;
  }
  /** VLAN ID, 0 to 4095; 0 also for an untagged frame (check `hasVlan`). */
  get vlanId(): number {
    return this.tci & 0x0fff;
  }
  /** Priority code point, 0 to 7; 0 for an untagged frame. */
  get pcp(): number {
    return this.tci >>> 13;
  }
  /** Drop eligible indicator; false for an untagged frame. */
  get dei(): boolean {
    return (this.tci & 0x1000) !== 0;
  }

  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
  get payloadLength(): number {
    return this.frameLength - this.headerLength;
  }
  /** The payload as a subarray (allocates a view object: not for the hot path). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.frameLength);
  }
}

const EMPTY = new Uint8Array(0);

export interface EthernetRepr {
  dstMac: number;
  srcMac: number;
  /** The payload's EtherType (inside the tag when there is one). */
  ethertype: number;
  /** Present when the frame carries an 802.1Q tag; emit writes one when it is set. */
  vlanId?: number;
  /** Priority code point; emit writes 0 when absent. */
  pcp?: number;
  /** Drop eligible indicator; emit writes false when absent. */
  dei?: boolean;
  /** The tag's TPID; emit writes 0x8100 when absent. */
  vlanTpid?: number;
}

/** Reads the header into a repr. The only judgement: a tag may not carry the reserved VID. */
export function parseEthernet(view: EthernetView): EthernetRepr | PacketError {
  const repr: EthernetRepr = { dstMac: view.dstMac, srcMac: view.srcMac, ethertype: view.ethertype };
  if (!view.hasVlan) return repr;
  if (view.vlanId === VLAN_ID_RESERVED) return PacketError.BadField;
  repr.vlanId = view.vlanId;
  repr.pcp = view.pcp;
  repr.dei = view.dei;
  repr.vlanTpid = view.vlanTpid;
  return repr;
}

/** Header bytes plus `payloadLength`: 14 + payload, or 18 + payload with a tag. */
export function ethernetBufferLen(repr: EthernetRepr, payloadLength = 0): number {
  return (repr.vlanId === undefined ? ETHERNET_HEADER_LEN : ETHERNET_HEADER_LEN + VLAN_TAG_LEN) + payloadLength;
}

/**
 * Writes the header (and the tag when `repr.vlanId` is set) at `offset`; the payload goes
 * right after it. Returns the number of header bytes written, 14 or 18. No padding to
 * the 60-byte minimum: a TAP device takes short frames, and a NIC pads them itself.
 */
export function emitEthernet(repr: EthernetRepr, buf: Uint8Array, offset: number): number {
  writeMac(buf, offset + DST_MAC, repr.dstMac);
  writeMac(buf, offset + SRC_MAC, repr.srcMac);
  if (repr.vlanId === undefined) {
    writeU16(buf, offset + TYPE_OR_TPID, repr.ethertype);
    return ETHERNET_HEADER_LEN;
  }
  writeU16(buf, offset + TYPE_OR_TPID, repr.vlanTpid ?? ETHERTYPE.VLAN);
  const tci = (((repr.pcp ?? 0) & 0x7) << 13) | (repr.dei === true ? 0x1000 : 0) | (repr.vlanId & 0x0fff);
  writeU16(buf, offset + TCI, tci);
  writeU16(buf, offset + TCI + 2, repr.ethertype);
  return ETHERNET_HEADER_LEN + VLAN_TAG_LEN;
}

function sameMac(buf: Uint8Array, at: number, mac: Uint8Array): boolean {
  return (
    buf[at] === mac[0] && buf[at + 1] === mac[1] && buf[at + 2] === mac[2] && buf[at + 3] === mac[3] && buf[at + 4] === mac[4] && buf[at + 5] === mac[5]
  );
}

function copyMac(buf: Uint8Array, at: number, mac: Uint8Array): void {
  buf[at] = mac[0];
  buf[at + 1] = mac[1];
  buf[at + 2] = mac[2];
  buf[at + 3] = mac[3];
  buf[at + 4] = mac[4];
  buf[at + 5] = mac[5];
}
