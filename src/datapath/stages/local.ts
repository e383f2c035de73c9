/**
 * What is for the node itself (the routing decision "local", its INPUT chain), after
 * conntrack and service NAT have had their say, as in the kernel: ping to the gateway
 * address (as cni0's address answers, also from other nodes) and to its uplink address,
 * and pods' UDP queries to the cluster DNS address, answered in the dataplane by the
 * embedded responder (NetworkPolicy egress applies as it would to a DNS pod). A reply to
 * a masqueraded connection was translated to its pod by conntrack and is not local any
 * more. Anything else addressed to the node has nothing listening. An answer replaces
 * the frame: stolen.
 */
import { formatIpv4 } from '../../packet/addr.js';
import { ICMP_ECHO_REQUEST } from '../../packet/icmp.js';
import { IPPROTO } from '../../packet/ipv4.js';
import { Drop } from '../drops.js';
import { Egress, Ingress, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import { DNS_FRAME_HEADERS, DNS_PORT, frameDnsAnswer } from '../dns-frame.js';
import type { Stage } from './stage.js';

function local(ctx: FrameContext, t: PathTables): Verdict {
  if (ctx.bridged) return Verdict.Continue;
  const dst = ctx.dstAddr;
  const up = t.uplink;
  switch (ctx.ingress) {
    case Ingress.Uplink:
      // What service NAT did not send on is for the node: its address or an announced LB address.
      if (dst !== up!.addr && !t.announced.has(dst)) return Verdict.Continue;
      return dst === up!.addr && answerEcho(ctx, t.uplinkMacBytes) ? echoed(ctx, Egress.UplinkAddressed) : ctx.dropped(Drop.LocalUnhandled);
    case Ingress.Overlay:
      if (dst !== t.node.gatewayIp) return Verdict.Continue;
      return answerEcho(ctx, t.vtepMacBytes) ? echoed(ctx, Egress.Peer) : ctx.dropped(Drop.LocalUnhandled);
    case Ingress.Pod:
      if (t.isNodeAddress(dst)) {
        return answerEcho(ctx, t.gatewayMacBytes) ? echoed(ctx, Egress.Pod) : ctx.dropped(Drop.LocalUnhandled);
      }
      if (dst === t.node.dnsIp && t.dns !== undefined && ctx.l4 === ctx.udp && ctx.udp.dstPort === DNS_PORT) return answerDns(ctx, t);
      return Verdict.Continue;
    default:
      return Verdict.Continue;
  }
}

/**
 * Turns the ICMP echo request in the context into its reply in place, from `ourMac`.
 * Returns false for anything else.
 */
function answerEcho(ctx: FrameContext, ourMac: Uint8Array): boolean {
  const eth = ctx.eth;
  const ip = ctx.ip;
  const icmp = ctx.icmp;
  if (ctx.l4 !== icmp || icmp.type !== ICMP_ECHO_REQUEST || !icmp.verifyChecksum()) return false;
  eth.swapMacs();
  eth.setSrcFrom(ourMac);
  const from = ip.srcAddr;
  ip.srcAddr = ip.dstAddr;
  ip.dstAddr = from;
  ip.ttl = 64;
  ip.fillChecksum();
  icmp.type = 0;
  icmp.fillChecksum();
  ctx.counters.icmpSent++;
  return true;
}

function echoed(ctx: FrameContext, egress: Egress): Verdict {
  ctx.recorder?.note('local', 'an echo request to the node itself: answered');
  ctx.sendPacket();
  ctx.egress = egress;
  ctx.egressSlot = ctx.inSlot;
  ctx.egressPeer = ctx.fromPeer;
  return Verdict.Stolen;
}

function answerDns(ctx: FrameContext, t: PathTables): Verdict {
  const ip = ctx.ip;
  const udp = ctx.udp;
  const policy = t.policy;
  if (policy !== undefined) {
    const allowed = policy.egressAllowed(ip.srcAddr, ip.dstAddr, IPPROTO.UDP, DNS_PORT);
    if (ctx.flows !== undefined) ctx.flows.policyVerdict(ctx, 'local', policy, true, allowed);
    if (!allowed) {
      ctx.recorder?.policy('egress', ip.srcAddr, ip.dstAddr, IPPROTO.UDP, DNS_PORT, false);
      return ctx.dropped(Drop.PolicyDenied);
    }
  }
  ctx.counters.dnsQueries++;
  if (ctx.dry) {
    ctx.recorder?.note('local', `a DNS query to ${formatIpv4(ip.dstAddr)}: answered by the node's embedded DNS`);
    return ctx.stolen();
  }
  if (ctx.flows !== undefined) ctx.flows.dnsQuery(ctx);
  const result = t.dns!.fromPod(ip.buf, udp.payloadOffset, udp.payloadLength, ip.srcAddr, udp.srcPort, ctx.dnsFrame, DNS_FRAME_HEADERS);
  if (result.action !== 'answer') return ctx.stolen(); // forwarded upstream: the answer comes later
  frameDnsAnswer(ctx, t, ctx.inSlot, udp.srcPort, result.length);
  if (ctx.flows !== undefined) ctx.flows.dnsAnswer(ctx.dnsFrame, result.length);
  return Verdict.Stolen;
}

export const LOCAL: Stage = { name: 'local', run: local };
