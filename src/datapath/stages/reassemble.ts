/**
 * IPv4 reassembly before conntrack, as the kernel's nf_defrag_ipv4 does it: every fragment
 * waits in the node's bounded reassembly table until its datagram is whole, so conntrack,
 * service NAT, NetworkPolicy and masquerade judge the datagram and no fragment slips past
 * them. The whole datagram goes on framed like the fragment that completed it, where the
 * table holds it (it leaves headroom for the header); transmit cuts it again to the
 * largest fragment size its sender used (the kernel's frag_max_size), so what leaves
 * looks like what came in.
 */
import { ETHERNET_HEADER_LEN, ETHERTYPE, emitEthernet } from '../../packet/ethernet.js';
import { PacketOk } from '../../packet/errors.js';
import { DefragDrop, DefragResult } from '../../netfilter/defrag.js';
import { Drop } from '../drops.js';
import { PARSED, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

/** What each of the reassembly table's refusals counts as on the node, by DefragDrop. */
const DROP_OF: readonly Drop[] = (() => {
  const of: Drop[] = [];
  of[DefragDrop.Malformed] = Drop.Malformed;
  of[DefragDrop.NotFragment] = Drop.InternalError;
  of[DefragDrop.BadLength] = Drop.FragmentInvalid;
  of[DefragDrop.TinyFragment] = Drop.FragmentInvalid;
  of[DefragDrop.Duplicate] = Drop.FragmentOverlap;
  of[DefragDrop.Overlap] = Drop.FragmentOverlap;
  of[DefragDrop.TooManyFragments] = Drop.FragmentTooMany;
  of[DefragDrop.TooBig] = Drop.FragmentTooMany;
  of[DefragDrop.EcnMismatch] = Drop.FragmentInvalid;
  of[DefragDrop.Timeout] = Drop.FragmentTimeout;
  of[DefragDrop.Evicted] = Drop.FragmentTableFull;
  of[DefragDrop.SourceLimit] = Drop.FragmentTableFull;
  return of;
})();

export function dropOfDefrag(reason: DefragDrop): Drop {
  return DROP_OF[reason] ?? Drop.InternalError;
}

function reassemble(ctx: FrameContext, t: PathTables): Verdict {
  const ip = ctx.ip;
  if (!ip.isFragment) return Verdict.Continue;
  if (ctx.dry) {
    ctx.recorder?.note('reassemble', 'a fragment: held until its datagram is whole, then judged as one');
    return ctx.stolen();
  }
  const table = t.reassembly;
  const result = table.insert(ip.buf, ip.offset, ctx.nowNs, ip.totalLength);
  if (result === DefragResult.Held) {
    ctx.counters.fragmentsHeld++;
    return ctx.stolen();
  }
  if (result === DefragResult.Dropped) {
    // A retransmitted copy of a fragment already held harms nothing: absorbed, not counted.
    if (table.lastDrop === DefragDrop.Duplicate) return ctx.stolen();
    return ctx.dropped(dropOfDefrag(table.lastDrop));
  }
  // The table leaves room before the datagram: its Ethernet header goes there, no copy.
  const length = table.completeLength;
  const out = table.completeBuffer;
  const at = table.completeOffset - ETHERNET_HEADER_LEN;
  emitEthernet({ dstMac: ctx.eth.dstMac, srcMac: ctx.eth.srcMac, ethertype: ETHERTYPE.IPV4 }, out, at);
  ctx.buf = out;
  ctx.offset = at;
  ctx.length = ETHERNET_HEADER_LEN + length;
  ctx.clearOffload();
  if (ctx.eth.check(out, at, ctx.length) !== PacketOk) return ctx.dropped(Drop.InternalError);
  const bad = ctx.parseIpv4(out, at + ETHERNET_HEADER_LEN, length);
  if (bad !== PARSED) return ctx.dropped(bad);
  ctx.fragmentSize = table.maxFragmentSize;
  ctx.txBuf = out;
  ctx.txOffset = at;
  ctx.txLength = ctx.length;
  ctx.counters.reassembled++;
  return Verdict.Continue;
}

export const REASSEMBLE: Stage = { name: 'reassemble', run: reassemble };
