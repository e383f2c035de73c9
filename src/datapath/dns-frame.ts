/**
 * A DNS answer for a pod, framed by the node: what the local stage sends for a query it
 * answers at once, and what the path sends later for one that was forwarded upstream.
 */
import { ETHERNET_HEADER_LEN, ETHERTYPE, emitEthernet } from '../packet/ethernet.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN } from '../packet/ipv4.js';
import { emitUdp, UDP_HEADER_LEN } from '../packet/udp.js';
import { Egress, type FrameContext } from './context.js';
import type { PathTables } from './tables.js';

export const DNS_PORT = 53;
/** Ethernet + IPv4 + UDP in front of a DNS message built for a pod. */
export const DNS_FRAME_HEADERS = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN;

/** Builds the headers around a DNS message in `ctx.dnsFrame` and points transmit at it. */
export function frameDnsAnswer(ctx: FrameContext, t: PathTables, slot: number, clientPort: number, length: number): void {
  const pod = t.slots[slot]!;
  const out = ctx.dnsFrame;
  const dnsIp = t.node.dnsIp!;
  emitEthernet({ dstMac: pod.mac, srcMac: t.node.gatewayMac, ethertype: ETHERTYPE.IPV4 }, out, 0);
  emitIpv4(
    { src: dnsIp, dst: pod.ip, protocol: IPPROTO.UDP, ttl: 64, payloadLength: UDP_HEADER_LEN + length, dscp: 0, ecn: 0, identification: 0, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 },
    out,
    ETHERNET_HEADER_LEN,
  );
  emitUdp({ srcPort: DNS_PORT, dstPort: clientPort }, out, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN, length, { src: dnsIp, dst: pod.ip });
  ctx.clearOffload();
  ctx.txBuf = out;
  ctx.txOffset = 0;
  ctx.txLength = DNS_FRAME_HEADERS + length;
  ctx.egress = Egress.Pod;
  ctx.egressSlot = slot;
}
