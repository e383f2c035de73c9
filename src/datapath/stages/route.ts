/**
 * The routing decision on the destination PREROUTING left (the node's routing table):
 * a pod of this node (cni0), another node's pod CIDR (flannel.1, one route per lease),
 * the outside network through the uplink, or unreachable (ICMP sent back). A switched
 * frame keeps the port the bridge chose. Traffic that came over the overlay never goes
 * back into it (no transit node); the TTL must allow one more hop.
 */
import { cidrContains, formatCidr, formatIpv4 } from '../../packet/addr.js';
import { ICMP_DEST_UNREACHABLE, ICMP_HOST_UNREACHABLE, ICMP_NET_UNREACHABLE, ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED } from '../../packet/icmp.js';
import { Drop } from '../drops.js';
import { Egress, Ingress, Verdict, type FrameContext } from '../context.js';
import { icmpError } from '../icmp-error.js';
import { NO_POD, type PathTables } from '../tables.js';
import type { Stage } from './stage.js';

function route(ctx: FrameContext, t: PathTables): Verdict {
  if (ctx.bridged) return Verdict.Continue;
  const ip = ctx.ip;
  if (ip.ttl <= 1) {
    if (ctx.ingress === Ingress.Uplink) return ctx.dropped(Drop.TtlExceeded);
    return icmpError(ctx, t, ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED, 0, Drop.TtlExceeded);
  }
  const dst = ctx.dstAddr;
  const node = t.node;
  if (cidrContains(node.subnet, dst)) {
    const slot = t.podSlotOf(dst);
    if (slot === NO_POD) return icmpError(ctx, t, ICMP_DEST_UNREACHABLE, ICMP_HOST_UNREACHABLE, 0, Drop.NoNeighbour);
    ctx.egress = Egress.Pod;
    ctx.egressSlot = slot;
    ctx.recorder?.note('route', `${formatCidr(node.subnet)} dev cni0: pod ${t.slots[slot]!.name}`);
    return Verdict.Continue;
  }
  const peer = t.peers.peerFor(dst);
  if (peer !== undefined) {
    if (ctx.ingress === Ingress.Overlay) return ctx.dropped(Drop.NotForThisNode);
    ctx.egress = Egress.Peer;
    ctx.egressPeer = peer;
    ctx.recorder?.note('route', `${formatCidr(peer.subnet)} via ${formatIpv4(peer.subnet.base)} dev flannel.1 onlink (${peer.node})`);
    return Verdict.Continue;
  }
  const inCluster = cidrContains(node.clusterCidr, dst);
  if (!inCluster && t.uplink !== undefined && ctx.ingress !== Ingress.Uplink) {
    ctx.egress = Egress.Uplink;
    ctx.nextHop = t.nextHopFor(dst);
    ctx.recorder?.note('route', `default via ${formatIpv4(t.uplink.gateway)} dev uplink`);
    return Verdict.Continue;
  }
  return icmpError(ctx, t, ICMP_DEST_UNREACHABLE, inCluster ? ICMP_HOST_UNREACHABLE : ICMP_NET_UNREACHABLE, 0, Drop.NoRoute);
}

export const ROUTE: Stage = { name: 'route', run: route };
