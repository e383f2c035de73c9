/**
 * A packet for the outside network leaves through the node's uplink: TTL decremented, the
 * uplink's MAC as source; transmit resolves the next hop's MAC (the neighbour table, ARP
 * when unknown). The uplink takes plain frames: a super-frame leaves as segments.
 */
import { VNET_HDR_GSO_NONE } from '../../port/port.js';
import { Drop } from '../drops.js';
import { Egress, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import { rewriteL2, segmentIpLength } from '../rewrite.js';
import type { Stage } from './stage.js';

const NO_MAC = new Uint8Array(6);

function toUplink(ctx: FrameContext, t: PathTables): Verdict {
  if (ctx.egress !== Egress.Uplink) return ctx.dropped(Drop.InternalError);
  const up = t.uplink;
  if (up === undefined) return ctx.dropped(Drop.NoRoute);
  if (ctx.offload.gsoType !== VNET_HDR_GSO_NONE && segmentIpLength(ctx) < 0) return ctx.dropped(Drop.Malformed);
  // The destination MAC is the next hop's, which transmit resolves.
  rewriteL2(ctx, NO_MAC, t.uplinkMacBytes);
  ctx.ip.decrementTtl();
  ctx.counters.forwarded++;
  return Verdict.Egress;
}

export const TO_UPLINK: Stage = { name: 'to-uplink', run: toUplink };
