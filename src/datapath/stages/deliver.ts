/**
 * A routed packet for a pod of this node leaves through the bridge: MACs rewritten to come
 * from the gateway, TTL decremented (the header checksum patched, RFC 1624). A switched
 * frame leaves as it came, whatever NAT rewrote inside it.
 */
import { Egress, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import { rewriteL2 } from '../rewrite.js';
import type { Stage } from './stage.js';

function deliver(ctx: FrameContext, t: PathTables): Verdict {
  if (ctx.bridged) return Verdict.Egress;
  if (ctx.egress !== Egress.Pod) return Verdict.Continue;
  const pod = t.slots[ctx.egressSlot]!;
  const ip = ctx.ip;
  rewriteL2(ctx, pod.macBytes, t.gatewayMacBytes);
  ip.decrementTtl();
  ctx.counters.forwarded++;
  return Verdict.Egress;
}

export const DELIVER: Stage = { name: 'deliver', run: deliver };
