/**
 * A routed packet for a pod of this node leaves through the bridge: MACs rewritten to come
 * from the gateway, TTL decremented (the header checksum patched, RFC 1624). A switched
 * frame leaves as it came, whatever NAT rewrote inside it.
 */
import { ETHERNET_HEADER_LEN, ETHERTYPE } from '../../packet/ethernet.js';
import { Egress, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

function deliver(ctx: FrameContext, t: PathTables): Verdict {
  if (ctx.bridged) return Verdict.Egress;
  if (ctx.egress !== Egress.Pod) return Verdict.Continue;
  const pod = t.slots[ctx.egressSlot]!;
  const ip = ctx.ip;
  rewriteL2(ctx, pod.macBytes, t.gatewayMacBytes);
  ip.decrementTtl();
  ctx.counters.forwarded++;
  return Verdict.Egress;
}

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

export const DELIVER: Stage = { name: 'deliver', run: deliver };
