/**
 * ICMP errors the node sends about the packet in the context, back where it came from:
 * the pod it came from, over the overlay to the peer that sent it, or out of the uplink.
 * The error is built in the context's scratch buffer and handed to transmit; the frame it
 * is about is dropped (counted with `reason`). Its source is the gateway address (the
 * node's own address on the uplink), as the kernel router uses for errors it generates.
 */
import { formatIpv4 } from '../packet/addr.js';
import { ETHERNET_HEADER_LEN, ETHERTYPE, emitEthernet } from '../packet/ethernet.js';
import { emitIcmp, ICMP_HEADER_LEN, ICMP_TIME_EXCEEDED, type IcmpRepr } from '../packet/icmp.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN } from '../packet/ipv4.js';
import type { Drop } from './drops.js';
import { Egress, Ingress, Verdict, type FrameContext } from './context.js';
import type { PathTables } from './tables.js';

/** ICMP errors quote the offending IP header and the first 8 bytes after it (RFC 792). */
const ICMP_QUOTE_EXTRA = 8;
/** CS6 (0xc0 in the TOS byte), as Linux marks the ICMP errors it generates. */
const DSCP_CS6 = 0x30;

export function icmpError(ctx: FrameContext, t: PathTables, type: number, code: number, mtu: number, reason: Drop): Verdict {
  ctx.drop = reason;
  ctx.egress = Egress.None;
  const ip = ctx.ip;
  // Never answer an ICMP error with an error (RFC 1122 3.2.2), nor a non-first fragment.
  if (ip.fragmentOffsetBytes !== 0) return Verdict.Drop;
  if (ctx.l4 === ctx.icmp && ctx.icmp.isError) return Verdict.Drop;
  let source: number;
  if (ctx.ingress === Ingress.Uplink) {
    if (t.uplink === undefined) return Verdict.Drop;
    source = t.uplink.addr;
  } else if (ctx.ingress === Ingress.Pod || ctx.ingress === Ingress.Overlay) {
    source = t.node.gatewayIp;
  } else {
    return Verdict.Drop;
  }
  const quoted = Math.min(ip.totalLength, ip.headerLength + ICMP_QUOTE_EXTRA);
  const out = ctx.scratch;
  const ipAt = ETHERNET_HEADER_LEN;
  const icmpAt = ipAt + IPV4_HEADER_LEN;
  out.set(ip.buf.subarray(ip.offset, ip.offset + quoted), icmpAt + ICMP_HEADER_LEN);
  const repr: IcmpRepr = type === ICMP_TIME_EXCEEDED ? { kind: 'timeExceeded', code } : { kind: 'destUnreachable', code, mtu };
  emitIcmp(repr, out, icmpAt, quoted);
  const payloadLength = ICMP_HEADER_LEN + quoted;
  const to = ip.srcAddr;
  emitIpv4(
    { src: source, dst: to, protocol: IPPROTO.ICMP, ttl: 64, payloadLength, dscp: DSCP_CS6, ecn: 0, identification: 0, dontFragment: false, moreFragments: false, fragmentOffsetBytes: 0 },
    out,
    ipAt,
  );
  ctx.counters.icmpSent++;
  ctx.clearOffload();
  ctx.txBuf = out;
  ctx.txOffset = 0;
  ctx.txLength = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + payloadLength;
  switch (ctx.ingress) {
    case Ingress.Overlay: {
      const peer = ctx.fromPeer!;
      emitEthernet({ dstMac: peer.vtepMac, srcMac: t.node.vtepMac, ethertype: ETHERTYPE.IPV4 }, out, 0);
      ctx.egress = Egress.Peer;
      ctx.egressPeer = peer;
      break;
    }
    case Ingress.Uplink: {
      const up = t.uplink!;
      emitEthernet({ dstMac: 0, srcMac: up.mac, ethertype: ETHERTYPE.IPV4 }, out, 0);
      ctx.egress = Egress.Uplink;
      ctx.nextHop = t.nextHopFor(to);
      break;
    }
    default: {
      const pod = t.slots[ctx.inSlot];
      if (pod === undefined) return Verdict.Drop;
      emitEthernet({ dstMac: pod.mac, srcMac: t.node.gatewayMac, ethertype: ETHERTYPE.IPV4 }, out, 0);
      ctx.egress = Egress.Pod;
      ctx.egressSlot = ctx.inSlot;
    }
  }
  ctx.recorder?.note('route', `ICMP type ${type} code ${code} sent back to ${formatIpv4(to)}`);
  return Verdict.Drop;
}
