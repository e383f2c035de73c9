/**
 * Service NAT for a new connection (PREROUTING's nat table, KUBE-SERVICES): the compiled
 * service table makes kube-proxy's decision (DNAT to an endpoint, REJECT without ready
 * endpoints, DROP for an external Local-policy flow with no local endpoint or a source
 * outside a load balancer's source ranges, masquerade or not). Pods' TCP DNS to the
 * cluster DNS address goes to the node's DNS relay, and TCP to the node's own addresses on
 * a health check node port to the node's health server. The destination chosen here is
 * what routing and policy see; the packet is rewritten when the connection is confirmed
 * (source NAT stage).
 */
import { cidrContains } from '../../packet/addr.js';
import { ICMP_DEST_UNREACHABLE, ICMP_PORT_UNREACHABLE } from '../../packet/icmp.js';
import { IPPROTO } from '../../packet/ipv4.js';
import { setReplySource } from '../../netfilter/nat-port.js';
import { FlowVerdict } from '../../kube/service-table.js';
import { Drop } from '../drops.js';
import { Ingress, Verdict, type FrameContext } from '../context.js';
import { icmpError } from '../icmp-error.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';
import { DNS_PORT } from '../dns-frame.js';

const U32 = 0x100000000;

function serviceNat(ctx: FrameContext, t: PathTables): Verdict {
  if (!ctx.isNew) return Verdict.Continue;
  const ip = ctx.ip;
  const proto = ip.protocol;
  const fromPod = ctx.ingress === Ingress.Pod;
  // Masquerade applies to pod traffic whose destination is outside the pod network.
  ctx.masquerade = fromPod && t.uplink !== undefined && !cidrContains(t.node.clusterCidr, ctx.dstAddr);
  if (proto === IPPROTO.TCP && t.relayAddress !== 0) {
    if (fromPod && ctx.dstAddr === t.node.dnsIp && ctx.dstPort === DNS_PORT) return toRelay(ctx, t, "DNS over TCP to the cluster DNS address: DNAT to the node's DNS relay");
    if (t.healthPorts[ctx.dstPort] === 1 && t.isNodeAddress(ctx.dstAddr)) return toRelay(ctx, t, "a health check node port of the node itself: to the node's health server");
  }
  const table = t.services?.table;
  if (table === undefined || (proto !== IPPROTO.TCP && proto !== IPPROTO.UDP)) return Verdict.Continue;
  if (!ctx.dry) t.affinity.setTime(ctx.nowNs / 1e9);
  const decision = ctx.decision;
  const verdict = table.classify(ip.srcAddr, ctx.dstAddr, proto, ctx.dstPort, (ctx.random() * U32) | 0, ctx.dry ? null : t.affinity, decision);
  ctx.recorder?.service(ctx, verdict);
  if (verdict === FlowVerdict.Reject) return icmpError(ctx, t, ICMP_DEST_UNREACHABLE, ICMP_PORT_UNREACHABLE, 0, Drop.NoEndpoints);
  if (verdict === FlowVerdict.Drop) return ctx.dropped(Drop.NoLocalEndpoints);
  if (verdict === FlowVerdict.Firewall) return ctx.dropped(Drop.SourceRangeDenied);
  if (verdict === FlowVerdict.Dnat) {
    ctx.dstAddr = decision.dnatAddress;
    ctx.dstPort = decision.dnatPort;
    setReplySource(ctx.reply, ctx.dstAddr, ctx.dstPort);
    ctx.counters.serviceFlows++;
  }
  ctx.masquerade = decision.masquerade;
  return Verdict.Continue;
}

/** To the node's own namespace on the pod network, the port kept, not masqueraded. */
function toRelay(ctx: FrameContext, t: PathTables, note: string): Verdict {
  ctx.dstAddr = t.relayAddress;
  setReplySource(ctx.reply, t.relayAddress, ctx.dstPort);
  ctx.masquerade = false;
  ctx.recorder?.note('service-nat', note);
  return Verdict.Continue;
}

export const SERVICE_NAT: Stage = { name: 'service-nat', run: serviceNat };
