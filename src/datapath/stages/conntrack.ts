/**
 * Connection tracking (PREROUTING's conntrack): the packet's tuple is looked up; a known
 * connection's packet is translated as its entry says (replies get the reverse NAT), an
 * ICMP error RELATED to a connection gets its quote translated too, and a first packet is
 * marked new for the stages that decide it. What conntrack cannot place is INVALID and
 * dropped, as kube-proxy's KUBE-FORWARD drops it: a TCP segment out of state, an ICMP
 * error quoting no connection, a foreign inner source from a peer that answers nothing.
 */
import { CT_NOT_FOUND, CtDir, refDir, TrackVerdict } from '../../netfilter/conntrack.js';
import { readPacketTuple, TupleKind } from '../../netfilter/conntrack-tuple.js';
import { natIcmpError } from '../../netfilter/nat-icmp.js';
import { Drop } from '../drops.js';
import { Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import { translate } from '../translate.js';
import type { Stage } from './stage.js';
import { TCP_FIN, TCP_RST } from '../../packet/tcp.js';

const CLOSING_FLAGS = TCP_FIN | TCP_RST;

function conntrack(ctx: FrameContext, t: PathTables): Verdict {
  const ip = ctx.ip;
  const ct = t.conntrack;
  const kind = readPacketTuple(ip, ctx.orig);
  if (kind === TupleKind.Untracked) {
    if (ctx.foreignSource) return ctx.dropped(Drop.OverlaySpoofed);
    ctx.untracked = true;
    ctx.dstAddr = ip.dstAddr;
    ctx.dstPort = 0;
    ctx.recorder?.note('conntrack', `protocol ${ip.protocol} is not tracked: judged packet by packet`);
    return Verdict.Continue;
  }
  if (kind === TupleKind.IcmpError) {
    const ref = ct.lookupTuple(ctx.orig);
    if (ref === CT_NOT_FOUND) {
      ctx.recorder?.note('conntrack', 'an ICMP error about no tracked connection: INVALID');
      return ctx.dropped(Drop.CtInvalid);
    }
    if (ctx.foreignSource && refDir(ref) !== CtDir.Reply) return ctx.dropped(Drop.OverlaySpoofed);
    natIcmpError(ct, ref, ip, ctx.icmp);
    ctx.dstAddr = ip.dstAddr;
    ctx.recorder?.note('conntrack', 'an ICMP error RELATED to a tracked connection: its NAT applies to the quote');
    return Verdict.Continue;
  }
  // The time comes from the tables' clock cell: a double argument per packet would be a heap number.
  const ref = ct.lookupTuple(ctx.orig);
  if (ref !== CT_NOT_FOUND) {
    const verdict = ctx.dry ? TrackVerdict.Accept : ct.update(ref, ctx.tcpFlags, ip.totalLength);
    if (verdict === TrackVerdict.Invalid) return ctx.dropped(Drop.CtInvalid);
    if (verdict !== TrackVerdict.Reopen) {
      if (ctx.foreignSource && refDir(ref) !== CtDir.Reply) return ctx.dropped(Drop.OverlaySpoofed);
      // A FIN or RST is the connection's end as an observer tells it (once: conntrack marks it).
      if (ctx.flows !== undefined && (ctx.tcpFlags & CLOSING_FLAGS) !== 0) ctx.flows.closing(ctx, ref);
      translate(ctx, t, ref);
      ctx.dstAddr = ip.dstAddr;
      ctx.dstPort = ctx.orig.dport;
      ctx.recorder?.note('conntrack', `an entry exists: ${refDir(ref) === CtDir.Reply ? 'a reply' : 'ESTABLISHED'}, its NAT applies`);
      return Verdict.Continue;
    }
  }
  if (ctx.foreignSource) return ctx.dropped(Drop.OverlaySpoofed);
  ctx.isNew = true;
  ctx.reply.setReplyOf(ctx.orig);
  ctx.dstAddr = ip.dstAddr;
  ctx.dstPort = ctx.orig.dport;
  ctx.recorder?.note('conntrack', 'no entry: a NEW connection');
  return Verdict.Continue;
}

export const CONNTRACK: Stage = { name: 'conntrack', run: conntrack };
