/**
 * The learning bridge (cni0) for frames from a pod. Frames to the bridge's own MAC are
 * routed (the stages after this one). Every other frame is switched: to the port the FDB
 * knows for its destination MAC, or flooded (broadcast, multicast, unknown unicast) within
 * the port's flood budget. Switched IPv4 still goes through conntrack, service NAT and
 * NetworkPolicy, as with br_netfilter (bridge-nf-call-iptables=1, which Kubernetes
 * requires): a service's reply from a backend on the same bridge must be un-NATed, and
 * policy must hold between two pods of one node, flooded frames included.
 */
import { ETHERTYPE } from '../../packet/ethernet.js';
import { Drop } from '../drops.js';
import { Egress, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

function bridge(ctx: FrameContext, t: PathTables): Verdict {
  const eth = ctx.eth;
  const type = eth.ethertype;
  if (eth.dstIs(t.gatewayMacBytes)) {
    if (type === ETHERTYPE.IPV4) return Verdict.Continue;
    return ctx.dropped(type === ETHERTYPE.IPV6 ? Drop.Ipv6 : Drop.UnknownEthertype);
  }
  const out = eth.dstIsGroup ? -1 : t.fdb.lookupHalves(eth.dstHigh, eth.dstLowInt32());
  if (out === ctx.inSlot) return ctx.dropped(Drop.SamePort);
  if (out < 0) {
    if (!ctx.dry && !t.floods.allow(ctx.inSlot)) return ctx.dropped(Drop.FloodLimited);
    ctx.egress = Egress.Flood;
  } else {
    ctx.egress = Egress.Pod;
    ctx.egressSlot = out;
  }
  ctx.recorder?.note('bridge', out < 0 ? 'flooded to every pod port of the bridge' : `switched to port ${t.slots[out]?.name ?? out} (FDB)`);
  if (type !== ETHERTYPE.IPV4) return Verdict.Egress;
  ctx.bridged = true;
  return Verdict.Continue;
}

export const BRIDGE: Stage = { name: 'bridge', run: bridge };
