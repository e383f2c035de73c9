/**
 * A frame from the node's NIC on the outside network: only what is addressed to this
 * node (its MAC or a broadcast; its address or a LoadBalancer address it announces) goes
 * further, after the one checked parse of its headers.
 */
import { PacketOk } from '../../packet/errors.js';
import { ETHERTYPE } from '../../packet/ethernet.js';
import { Drop } from '../drops.js';
import { PARSED, Parsed, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

function uplinkIngress(ctx: FrameContext, t: PathTables): Verdict {
  const up = t.uplink;
  if (up === undefined) return ctx.dropped(Drop.NotForThisNode);
  const eth = ctx.eth;
  if (eth.check(ctx.buf, ctx.offset, ctx.length) !== PacketOk) return ctx.dropped(Drop.Malformed);
  ctx.parsed = Parsed.Ethernet;
  if (!eth.dstIs(t.uplinkMacBytes) && !eth.dstIsGroup) return ctx.dropped(Drop.NotForThisNode);
  const type = eth.ethertype;
  if (type === ETHERTYPE.ARP) {
    return ctx.arp.check(ctx.buf, eth.payloadOffset, ctx.length - eth.headerLength) === PacketOk ? Verdict.Continue : ctx.dropped(Drop.Malformed);
  }
  if (type === ETHERTYPE.IPV6) return ctx.dropped(Drop.Ipv6);
  if (type !== ETHERTYPE.IPV4) return ctx.dropped(Drop.UnknownEthertype);
  const bad = ctx.parseIpv4(ctx.buf, eth.payloadOffset, ctx.length - eth.headerLength);
  if (bad !== PARSED) return ctx.dropped(bad);
  const dst = ctx.ip.dstAddr;
  if (dst !== up.addr && !t.announced.has(dst)) return ctx.dropped(Drop.NotForThisNode);
  return Verdict.Continue;
}

export const UPLINK_INGRESS: Stage = { name: 'uplink-ingress', run: uplinkIngress };
