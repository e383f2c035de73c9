/**
 * ARP answered by the node. On the pod side the bridge's address (the gateway, cni0's IP)
 * is answered with the bridge MAC, in place; every other ARP goes on to the bridge, which
 * floods it so pods resolve each other. On the uplink the node learns its neighbours,
 * releases a frame that waited for one, and answers for its own address and the
 * LoadBalancer addresses it announces (as MetalLB's L2 mode does).
 */
import { ARP_LEN, ARP_OP, emitArpReply } from '../../packet/arp.js';
import { cidrContains, formatIpv4 } from '../../packet/addr.js';
import { ETHERTYPE } from '../../packet/ethernet.js';
import { Drop } from '../drops.js';
import { Egress, Ingress, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

function podArp(ctx: FrameContext, t: PathTables): Verdict {
  const eth = ctx.eth;
  if (eth.ethertype !== ETHERTYPE.ARP) return Verdict.Continue;
  const arp = ctx.arp;
  const toGateway = eth.dstMac === t.node.gatewayMac;
  if (arp.operation !== ARP_OP.REQUEST || arp.targetIp !== t.node.gatewayIp) {
    // A unicast ARP to the gateway that is not a request for it: nothing here answers it.
    return toGateway ? ctx.dropped(Drop.LocalUnhandled) : Verdict.Continue;
  }
  const pod = t.slots[ctx.inSlot]!;
  emitArpReply(arp, t.node.gatewayMac, ctx.buf, eth.payloadOffset);
  eth.dstMac = pod.mac;
  eth.srcMac = t.node.gatewayMac;
  ctx.counters.arpReplies++;
  ctx.recorder?.note('arp', `who-has ${formatIpv4(t.node.gatewayIp)}: answered with the bridge MAC`);
  return reply(ctx, Egress.Pod, ctx.inSlot);
}

function uplinkArp(ctx: FrameContext, t: PathTables): Verdict {
  if (ctx.ingress !== Ingress.Uplink || ctx.eth.ethertype !== ETHERTYPE.ARP) return Verdict.Continue;
  const up = t.uplink!;
  const arp = ctx.arp;
  const eth = ctx.eth;
  const sender = arp.senderIp;
  if (!ctx.dry && cidrContains(up.network, sender) && sender !== up.addr) {
    const held = t.neighbours.learn(sender, arp.senderMac, ctx.nowNs);
    if (held !== undefined) ctx.release(held.frame, held.length, arp.senderMac);
  }
  const target = arp.targetIp;
  if (arp.operation !== ARP_OP.REQUEST || (target !== up.addr && !t.announced.has(target))) {
    return ctx.stolen();
  }
  emitArpReply(arp, up.mac, ctx.buf, eth.payloadOffset);
  eth.dstMac = arp.targetMac;
  eth.srcMac = up.mac;
  ctx.counters.arpReplies++;
  return reply(ctx, Egress.UplinkAddressed, -1);
}

function reply(ctx: FrameContext, egress: Egress, slot: number): Verdict {
  ctx.clearOffload();
  ctx.txBuf = ctx.buf;
  ctx.txOffset = ctx.offset;
  ctx.txLength = ctx.eth.headerLength + ARP_LEN;
  ctx.egress = egress;
  ctx.egressSlot = slot;
  return Verdict.Stolen;
}

export const POD_ARP: Stage = { name: 'arp', run: podArp };
export const UPLINK_ARP: Stage = { name: 'arp', run: uplinkArp };
