/**
 * A frame from a local pod's eth0: the one checked parse of its headers, and anti-spoofing
 * (a pod sends only with its own MAC and IPv4 address, in IP headers and in ARP alike, as
 * Cilium and Calico enforce and as a bridge with `ebtables --among-src` would). The FDB
 * learns the source port here, as the kernel bridge does on every received frame.
 */
import { PacketOk } from '../../packet/errors.js';
import { ETHERTYPE } from '../../packet/ethernet.js';
import { Drop } from '../drops.js';
import { PARSED, Parsed, Verdict, type FrameContext } from '../context.js';
import type { PathTables } from '../tables.js';
import type { Stage } from './stage.js';

/** ARP probes (RFC 5227) announce nothing: their sender address is 0.0.0.0. */
const ARP_PROBE_SENDER = 0;

function podIngress(ctx: FrameContext, t: PathTables): Verdict {
  const pod = t.slots[ctx.inSlot];
  if (pod === undefined) return ctx.dropped(Drop.NoNeighbour);
  const eth = ctx.eth;
  if (eth.check(ctx.buf, ctx.offset, ctx.length) !== PacketOk) return ctx.dropped(Drop.Malformed);
  ctx.parsed = Parsed.Ethernet;
  if (!eth.srcIs(pod.macBytes)) return ctx.dropped(Drop.Spoofed);
  if (!ctx.dry) t.fdb.learnHalves(pod.macHigh, pod.macLow, ctx.inSlot);
  const type = eth.ethertype;
  if (type === ETHERTYPE.IPV4) {
    const bad = ctx.parseIpv4(ctx.buf, eth.payloadOffset, ctx.length - eth.headerLength);
    if (bad !== PARSED) return ctx.dropped(bad);
    if (ctx.ip.srcAddr !== pod.ip) return ctx.dropped(Drop.Spoofed);
    return Verdict.Continue;
  }
  if (type === ETHERTYPE.ARP) {
    const arp = ctx.arp;
    if (arp.check(ctx.buf, eth.payloadOffset, ctx.length - eth.headerLength) !== PacketOk) return ctx.dropped(Drop.Malformed);
    if (arp.senderMac !== pod.mac) return ctx.dropped(Drop.Spoofed);
    // A gratuitous ARP claiming a neighbour's address would point every bystander's cache at us.
    if (arp.senderIp !== pod.ip && arp.senderIp !== ARP_PROBE_SENDER) return ctx.dropped(Drop.ArpSpoofed);
  }
  return Verdict.Continue;
}

export const POD_INGRESS: Stage = { name: 'pod-ingress', run: podIngress };
