/**
 * Carrying offload metadata across the overlay, for podwire's loopback underlay.
 *
 * Between two node processes on one machine the underlay is loopback (MTU 64 KiB), so a
 * TSO super-frame can cross in one VXLAN datagram instead of forty: the way veth pairs
 * and virtio links pass GSO packets whole. What the receiving TAP needs to deliver it is
 * the virtio_net_hdr the sending TAP gave us. Of that, csumStart and csumOffset follow
 * from the inner headers; the GSO type and segment size, and whether the checksum is
 * still partial, do not, so they travel in the VXLAN header's first reserved field
 * (RFC 7348 bits 8-31, which receivers must ignore and which tshark shows as reserved):
 *
 *   byte 1: bit 0 NEEDS_CSUM, bit 1 GSO TCPv4
 *   bytes 2-3: gso_size
 *
 * Only podwire nodes of one cluster on a loopback underlay use this; across a real
 * 1500-byte underlay super-frames are segmented before encapsulation (gso.ts) and the
 * field stays zero, as the RFC asks.
 */
import { readU16, writeU16 } from '../packet/bytes.js';
import { ETHERNET_HEADER_LEN } from '../packet/ethernet.js';
import { IPPROTO } from '../packet/ipv4.js';
import { TCP_OFFSET } from '../packet/tcp.js';
import { UDP_OFFSET } from '../packet/udp.js';
import { VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_NONE, VNET_HDR_GSO_TCPV4, type TxOffload } from '../port/port.js';

// Local consts of src/packet's constants, which V8 folds into per-packet code (see IPPROTO in ipv4.ts).
const TCP_CHECKSUM = TCP_OFFSET.CHECKSUM;
const UDP_CHECKSUM = UDP_OFFSET.CHECKSUM;
const TCP = IPPROTO.TCP;

const BITS = 1;
const GSO_SIZE = 2;
const BIT_NEEDS_CSUM = 0x01;
const BIT_GSO_TCPV4 = 0x02;

/** True when the frame needs more than a plain datagram can say. */
export function hasOffload(offload: TxOffload): boolean {
  return offload.gsoType !== VNET_HDR_GSO_NONE || (offload.flags & VNET_HDR_F_NEEDS_CSUM) !== 0;
}

/** Writes the offload bits into a VXLAN header already emitted at `offset`. */
export function encodeSuperFrameBits(header: Uint8Array, offset: number, offload: TxOffload): void {
  const gso = offload.gsoType === VNET_HDR_GSO_TCPV4;
  header[offset + BITS] = ((offload.flags & VNET_HDR_F_NEEDS_CSUM) !== 0 ? BIT_NEEDS_CSUM : 0) | (gso ? BIT_GSO_TCPV4 : 0);
  writeU16(header, offset + GSO_SIZE, gso ? offload.gsoSize : 0);
}

/** Clears the offload bits of a VXLAN header (a plain frame after a super-frame), leaving the VNI. */
export function clearSuperFrameBits(header: Uint8Array, offset: number): void {
  header[offset + BITS] = 0;
  writeU16(header, offset + GSO_SIZE, 0);
}

/**
 * Rebuilds offload metadata for the inner frame from the VXLAN header at `vxlanOffset` and
 * the inner IPv4 header (its header length and protocol, already checked by the caller).
 * Returns false when the bits ask for something the frame cannot be (GSO on non-TCP).
 */
export function decodeSuperFrameBits(header: Uint8Array, vxlanOffset: number, ipHeaderLength: number, protocol: number, out: TxOffload): boolean {
  const bits = header[vxlanOffset + BITS];
  out.flags = (bits & BIT_NEEDS_CSUM) !== 0 ? VNET_HDR_F_NEEDS_CSUM : 0;
  out.gsoType = VNET_HDR_GSO_NONE;
  out.gsoSize = 0;
  out.csumStart = 0;
  out.csumOffset = 0;
  if (bits === 0) return true;
  if ((bits & BIT_GSO_TCPV4) !== 0) {
    if (protocol !== TCP) return false;
    out.gsoType = VNET_HDR_GSO_TCPV4;
    out.gsoSize = readU16(header, vxlanOffset + GSO_SIZE);
    if (out.gsoSize === 0) return false;
  }
  if (out.flags !== 0) {
    if (protocol !== TCP && protocol !== IPPROTO.UDP) return false;
    out.csumStart = ETHERNET_HEADER_LEN + ipHeaderLength;
    out.csumOffset = protocol === TCP ? TCP_CHECKSUM : UDP_CHECKSUM;
  }
  return true;
}
