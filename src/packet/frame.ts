/**
 * One pass over a frame's Ethernet, IPv4 and transport headers: what a forwarding path
 * needs of every frame (where each header starts, the 5-tuple), proved in bounds by one
 * checked constructor instead of three.
 *
 * `FrameView.check` applies the same length rules as EthernetView, Ipv4View and the
 * transport views together (tag, IHL, total length, TCP data offset, UDP length) and
 * fills plain number fields, so reading the 5-tuple afterwards is a field load, not a
 * getter over the buffer. A frame that is not IPv4 is still a valid Ethernet frame here
 * (`isIpv4` false); a fragment other than the first has no transport header to read
 * (`hasPorts` false). Meaning (checksums, version beyond the nibble) stays with the
 * per-protocol parse functions, as in the rest of src/packet.
 */
import { ETHERTYPE, ETHERNET_HEADER_LEN, VLAN_TAG_LEN } from './ethernet.js';
import { PacketError, PacketOk } from './errors.js';
import { IPPROTO } from './ipv4.js';

const TCP_MIN = 20;
const UDP_LEN = 8;
const ICMP_MIN = 8;

export class FrameView {
  buf: Uint8Array = EMPTY;
  offset = 0;
  length = 0;
  ethertype = 0;
  /** Offset of the network header in `buf` (after any 802.1Q tag). */
  l3Offset = 0;
  isIpv4 = false;
  ipHeaderLength = 0;
  /** IPv4 total length: the packet may be followed by Ethernet padding. */
  ipTotalLength = 0;
  protocol = 0;
  /** IPv4 addresses as int32 (`>>> 0` gives the uint32 of src/packet/addr.ts). */
  srcAddr = 0;
  dstAddr = 0;
  isFragment = false;
  /** Offset of the transport header in `buf`, and the bytes the IP packet gives it. */
  l4Offset = 0;
  l4Length = 0;
  /** True for TCP and UDP headers that are present and valid in length. */
  hasPorts = false;
  srcPort = 0;
  dstPort = 0;

  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < ETHERNET_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    let l3 = offset + ETHERNET_HEADER_LEN;
    let type = (buf[offset + 12] << 8) | buf[offset + 13];
    if (type === ETHERTYPE.VLAN || type === ETHERTYPE.QINQ) {
      if (available < ETHERNET_HEADER_LEN + VLAN_TAG_LEN) return PacketError.Truncated;
      type = (buf[offset + 16] << 8) | buf[offset + 17];
      l3 += VLAN_TAG_LEN;
    }
    this.buf = buf;
    this.offset = offset;
    this.length = available;
    this.ethertype = type;
    this.l3Offset = l3;
    this.isIpv4 = false;
    this.hasPorts = false;
    if (type !== ETHERTYPE.IPV4) return PacketOk;

    const end = offset + available;
    if (l3 + 20 > end) return PacketError.Truncated;
    const ihl = (buf[l3] & 0x0f) << 2;
    if (ihl < 20 || l3 + ihl > end) return PacketError.BadHeaderLength;
    const total = (buf[l3 + 2] << 8) | buf[l3 + 3];
    if (total < ihl || l3 + total > end) return PacketError.BadLength;
    this.isIpv4 = true;
    this.ipHeaderLength = ihl;
    this.ipTotalLength = total;
    const proto = buf[l3 + 9];
    this.protocol = proto;
    this.srcAddr = (buf[l3 + 12] << 24) | (buf[l3 + 13] << 16) | (buf[l3 + 14] << 8) | buf[l3 + 15];
    this.dstAddr = (buf[l3 + 16] << 24) | (buf[l3 + 17] << 16) | (buf[l3 + 18] << 8) | buf[l3 + 19];
    const fragment = ((buf[l3 + 6] << 8) | buf[l3 + 7]) & 0x1fff;
    this.isFragment = fragment !== 0 || (buf[l3 + 6] & 0x20) !== 0;
    const l4 = l3 + ihl;
    const l4Length = total - ihl;
    this.l4Offset = l4;
    this.l4Length = l4Length;
    // Only a first fragment (or a whole packet) starts with the transport header.
    if (fragment !== 0) return PacketOk;
    if (proto === IPPROTO.TCP) {
      if (l4Length < TCP_MIN) return PacketError.Truncated;
      const dataOffset = (buf[l4 + 12] >>> 4) << 2;
      if (dataOffset < TCP_MIN || dataOffset > l4Length) return PacketError.BadHeaderLength;
    } else if (proto === IPPROTO.UDP) {
      if (l4Length < UDP_LEN) return PacketError.Truncated;
      const udpLength = (buf[l4 + 4] << 8) | buf[l4 + 5];
      if (udpLength < UDP_LEN || udpLength > l4Length) return PacketError.BadLength;
    } else {
      if (proto === IPPROTO.ICMP && l4Length < ICMP_MIN) return PacketError.Truncated;
      return PacketOk;
    }
    this.hasPorts = true;
    this.srcPort = (buf[l4] << 8) | buf[l4 + 1];
    this.dstPort = (buf[l4 + 2] << 8) | buf[l4 + 3];
    return PacketOk;
  }
}

const EMPTY = new Uint8Array(0);
