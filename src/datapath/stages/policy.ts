/**
 * NetworkPolicy (the FORWARD chain's verdict) for a new connection, on the destination
 * after DNAT: egress of the source pod at its node, ingress of the destination pod at its
 * node, so each node enforces for its own pods. Protocols conntrack does not follow are
 * judged on every packet. Established connections were allowed when they began.
 */
import { cidrContains } from '../../packet/addr.js';
import { IPPROTO } from '../../packet/ipv4.js';
import { Drop } from '../drops.js';
import { Ingress, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

function policy(ctx: FrameContext, t: PathTables): Verdict {
  if (!ctx.isNew && !ctx.untracked) return Verdict.Continue;
  const tables = t.policy;
  if (tables === undefined) return Verdict.Continue;
  const proto = ctx.ip.protocol;
  const port = proto === IPPROTO.TCP || proto === IPPROTO.UDP ? ctx.dstPort : 0;
  const src = ctx.ip.srcAddr;
  const dst = ctx.dstAddr;
  if (ctx.ingress === Ingress.Pod) {
    const allowed = tables.egressAllowed(src, dst, proto, port);
    ctx.recorder?.policy('egress', src, dst, proto, port, allowed);
    if (ctx.flows !== undefined) ctx.flows.policyVerdict(ctx, 'policy', tables, true, allowed);
    if (!allowed) return ctx.dropped(Drop.PolicyDenied);
  }
  if (cidrContains(t.node.subnet, dst)) {
    const allowed = tables.ingressAllowed(dst, src, proto, port);
    ctx.recorder?.policy('ingress', dst, src, proto, port, allowed);
    if (ctx.flows !== undefined) ctx.flows.policyVerdict(ctx, 'policy', tables, false, allowed);
    if (!allowed) return ctx.dropped(Drop.PolicyDenied);
  } else if (ctx.recorder !== undefined && cidrContains(t.node.clusterCidr, dst)) {
    ctx.recorder.note('policy', 'ingress is judged on the destination node');
  }
  return Verdict.Continue;
}

export const POLICY: Stage = { name: 'policy', run: policy };
