/**
 * A VXLAN datagram from the overlay (flannel.1's receive side): the VNI must be the
 * cluster's, and the sender a peer of the lease table at exactly its VTEP's address and
 * port. The inner frame must be for our VTEP and a pod of this node. An inner source
 * outside the sending peer's pod CIDR is only a reply to a connection this node tracks
 * (a masqueraded or DNATed flow coming back); conntrack decides that (`foreignSource`).
 *
 * The outer source port is checked too: every podwire VTEP sends from its bound port, and
 * while a peer's node runs, no other process can bind that address and port. VXLAN itself
 * has no authentication (see SECURITY.md).
 */
import { cidrContains } from '../../packet/addr.js';
import { PacketOk } from '../../packet/errors.js';
import { ETHERTYPE } from '../../packet/ethernet.js';
import { decodeSuperFrameBits } from '../../overlay/superframe.js';
import { Drop } from '../drops.js';
import { PARSED, Parsed, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

function decap(ctx: FrameContext, t: PathTables): Verdict {
  const vx = ctx.vxlan;
  const buf = ctx.buf;
  if (vx.check(buf, ctx.offset, ctx.length) !== PacketOk) return ctx.dropped(Drop.Malformed);
  if (!vx.vniValid || vx.vni !== t.node.vni) return ctx.dropped(Drop.WrongVni);
  const peer = t.peers.peerAt(ctx.srcAddr, ctx.srcPort);
  if (peer === undefined) return ctx.dropped(Drop.UnknownPeer);
  ctx.fromPeer = peer;
  if (ctx.tap !== undefined) ctx.tap.overlayFrame(peer, false, buf, vx.payloadOffset, vx.payloadLength);
  ctx.counters.decapsulated++;
  const inner = ctx.eth;
  if (inner.check(buf, vx.payloadOffset, vx.payloadLength) !== PacketOk) return ctx.dropped(Drop.Malformed);
  ctx.parsed = Parsed.Ethernet;
  if (!inner.dstIs(t.vtepMacBytes)) return ctx.dropped(Drop.NotForThisNode);
  if (inner.ethertype !== ETHERTYPE.IPV4) return ctx.dropped(inner.ethertype === ETHERTYPE.IPV6 ? Drop.Ipv6 : Drop.UnknownEthertype);
  const bad = ctx.parseIpv4(buf, inner.payloadOffset, inner.payloadLength);
  if (bad !== PARSED) return ctx.dropped(bad);
  const ip = ctx.ip;
  if (!cidrContains(t.node.subnet, ip.dstAddr)) return ctx.dropped(Drop.NotForThisNode);
  if (!decodeSuperFrameBits(buf, ctx.offset, ip.headerLength, ip.protocol, ctx.offload)) return ctx.dropped(Drop.Malformed);
  ctx.foreignSource = !cidrContains(peer.subnet, ip.srcAddr);
  return Verdict.Continue;
}

export const DECAP: Stage = { name: 'decap', run: decap };
