/**
 * What the egress stages (deliver, encap, to-uplink) share: framing the IPv4 packet in the
 * context for its next hop, and the size of a super-frame's segments.
 */
import { ETHERNET_HEADER_LEN, ETHERTYPE } from '../packet/ethernet.js';
import { VNET_HDR_GSO_TCPV4 } from '../port/port.js';
import type { FrameContext } from './context.js';

/**
 * Writes a plain Ethernet header in front of the IPv4 packet (a tagged frame leaves its
 * tag behind; the view may be the inner one of a VXLAN datagram) and points transmit at
 * the frame.
 */
export function rewriteL2(ctx: FrameContext, dstMac: Uint8Array, srcMac: Uint8Array): void {
  const ip = ctx.ip;
  const eth = ctx.eth;
  const ethOffset = ip.offset - ETHERNET_HEADER_LEN;
  eth.check(ip.buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength);
  eth.setDstFrom(dstMac);
  eth.setSrcFrom(srcMac);
  eth.ethertype = ETHERTYPE.IPV4;
  ctx.sendPacket();
}

/** IP length of one segment of the TCP super-frame in the context, or -1 when it is not TCP. */
export function segmentIpLength(ctx: FrameContext): number {
  if (ctx.offload.gsoType !== VNET_HDR_GSO_TCPV4 || ctx.l4 !== ctx.tcp) return -1;
  const tcp = ctx.tcp;
  return ctx.ip.headerLength + tcp.headerLength + Math.min(ctx.offload.gsoSize, tcp.payloadLength);
}
