/**
 * Applies a connection's NAT to the packet in the context, for the stages that translate
 * (conntrack for a known connection, source NAT for a new one). A frame whose L4 checksum
 * the pod left partial (NEEDS_CSUM: the field holds the pseudo-header sum, the rest is
 * summed on the way out) must only see the address change in that field, as the kernel's
 * inet_proto_csum_replace4 does for CHECKSUM_PARTIAL; ports are summed later anyway.
 */
import { ETHERNET_HEADER_LEN } from '../packet/ethernet.js';
import { readU16, writeU16 } from '../packet/bytes.js';
import { checksumAdjust32 } from '../packet/checksum.js';
import { refId } from '../netfilter/conntrack.js';
import { natPacket } from '../netfilter/nat.js';
import { VNET_HDR_F_NEEDS_CSUM } from '../port/port.js';
import type { FrameContext } from './context.js';
import type { PathTables } from './tables.js';

export function translate(ctx: FrameContext, t: PathTables, ref: number): void {
  const ct = t.conntrack;
  // Most connections between pods have no NAT: nothing to rewrite, no view to pick.
  if (!ct.natted(refId(ref))) return;
  const ip = ctx.ip;
  if ((ctx.offload.flags & VNET_HDR_F_NEEDS_CSUM) === 0) {
    natPacket(ct, ref, ip, ctx.l4);
    return;
  }
  const field = ip.offset - ETHERNET_HEADER_LEN + ctx.offload.csumStart + ctx.offload.csumOffset;
  if (field + 2 > ip.offset + ip.totalLength) return;
  const partial = readU16(ip.buf, field);
  const oldSrc = ip.srcAddr;
  const oldDst = ip.dstAddr;
  if (!natPacket(ct, ref, ip, ctx.l4)) return;
  let folded = checksumAdjust32(~partial & 0xffff, oldSrc, ip.srcAddr);
  folded = checksumAdjust32(folded, oldDst, ip.dstAddr);
  writeU16(ip.buf, field, ~folded & 0xffff);
}
