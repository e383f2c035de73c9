/**
 * A packet for another node's pod CIDR is framed for its VTEP (flannel.1's encap): inner
 * MACs from our VTEP to the peer's, TTL decremented; transmit adds the VXLAN header and the
 * overlay socket the outer UDP/IP. It must fit the overlay path: a super-frame's segments
 * must, a DF packet that does not gets "fragmentation needed" with the path's MTU, and
 * any other is cut into fragments on the way out, as the kernel fragments before a tunnel.
 */
import { ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED } from '../../packet/icmp.js';
import { VNET_HDR_GSO_NONE } from '../../port/port.js';
import { Drop } from '../drops.js';
import { Egress, Verdict, type FrameContext } from '../context.js';
import { icmpError } from '../icmp-error.js';
import type { PathTables } from '../tables.js';
import { rewriteL2, segmentIpLength } from '../rewrite.js';
import type { Stage } from './stage.js';

function encap(ctx: FrameContext, t: PathTables): Verdict {
  if (ctx.egress !== Egress.Peer) return Verdict.Continue;
  if (!t.overlayLinked) return ctx.dropped(Drop.NoRoute);
  const ip = ctx.ip;
  const mtu = t.overlayIpMtu;
  const size = ctx.offload.gsoType === VNET_HDR_GSO_NONE ? ip.totalLength : segmentIpLength(ctx);
  if (size < 0) return ctx.dropped(Drop.Malformed);
  if (size > mtu) {
    if (ip.dontFragment) return icmpError(ctx, t, ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, mtu, Drop.TooBig);
    if (ctx.offload.gsoType !== VNET_HDR_GSO_NONE) return ctx.dropped(Drop.NeedsFragmentation);
    if (ctx.fragmentSize === 0 || ctx.fragmentSize > mtu) ctx.fragmentSize = mtu;
  }
  const peer = ctx.egressPeer!;
  rewriteL2(ctx, peer.vtepMacBytes, t.vtepMacBytes);
  ip.decrementTtl();
  ctx.counters.encapsulated++;
  return Verdict.Egress;
}

export const ENCAP: Stage = { name: 'encap', run: encap };
