/**
 * Source NAT and confirmation of a new connection (POSTROUTING): masquerade where service
 * NAT or the egress rule asked for it, to the address of the interface the packet leaves
 * by, with a free port chosen as --random-fully does; then both tuples are recorded in
 * conntrack and the packet is rewritten as its entry says. Two services with the same
 * backend reached from one client ip:port would give two connections one reply tuple: the
 * kernel's NAT keeps both by remapping the source port (nf_nat_used_tuple), and so does
 * this stage. A dry run records the rewrite and changes no table.
 */
import { cidrContains, formatIpv4 } from '../../packet/addr.js';
import { CreateError } from '../../netfilter/conntrack.js';
import { chooseSnatPort, defaultSnatRange } from '../../netfilter/nat-port.js';
import { Drop } from '../drops.js';
import { Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import { translate } from '../translate.js';
import type { Stage } from './stage.js';

function sourceNat(ctx: FrameContext, t: PathTables): Verdict {
  if (!ctx.isNew) return Verdict.Continue;
  const ct = t.conntrack;
  const orig = ctx.orig;
  const reply = ctx.reply;
  const ip = ctx.ip;
  if (ctx.masquerade) {
    const range = defaultSnatRange(orig.proto, orig.sport);
    // kube-proxy masquerades with --random-fully; so does podwire's egress rule.
    if (!chooseSnatPort(ct, reply, egressAddress(t, ctx.dstAddr), range, ctx.random, ctx.nowNs, true)) return ctx.dropped(Drop.NatExhausted);
  }
  if (ctx.dry) {
    ctx.recorder?.note('source-nat', ctx.masquerade ? `MASQUERADE to ${formatIpv4(reply.dst)}:${reply.dport} (--random-fully)` : 'no source NAT');
    return Verdict.Continue;
  }
  let ref = ct.create(orig, reply, ctx.tcpFlags, ip.totalLength, ctx.nowNs);
  if (ref === CreateError.Clash && !ctx.masquerade && (ctx.dstAddr !== ip.dstAddr || ctx.dstPort !== orig.dport)) {
    const range = defaultSnatRange(orig.proto, orig.sport);
    if (chooseSnatPort(ct, reply, orig.src, range, ctx.random, ctx.nowNs)) ref = ct.create(orig, reply, ctx.tcpFlags, ip.totalLength, ctx.nowNs);
  }
  if (ref === CreateError.Full) return ctx.dropped(Drop.CtFull);
  if (ref === CreateError.Invalid) return ctx.dropped(Drop.CtInvalid);
  if (ref < 0) return ctx.dropped(Drop.CtClash);
  translate(ctx, t, ref);
  return Verdict.Continue;
}

/**
 * MASQUERADE's address: the one of the interface the packet leaves by, as the kernel
 * picks it: the bridge's (the gateway) towards a local pod, flannel.1's (the pod CIDR's
 * network address) towards another node, the uplink's towards the outside.
 */
export function egressAddress(t: PathTables, dst: number): number {
  if (cidrContains(t.node.subnet, dst)) return t.node.gatewayIp;
  if (cidrContains(t.node.clusterCidr, dst)) return t.node.subnet.base;
  return t.uplink?.addr ?? t.node.gatewayIp;
}

export const SOURCE_NAT: Stage = { name: 'source-nat', run: sourceNat };
