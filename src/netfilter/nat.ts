/**
 * NAT on the packet path: in-place rewrites of a frame whose IPv4 and transport views the
 * caller has already checked, driven by a conntrack entry.
 *
 * The rule is the kernel's (nf_nat_packet / nf_nat_manip_pkt): a packet travelling in
 * direction `dir` leaves with the inverse of the *other* direction's tuple. For an
 * original-direction packet that applies the entry's DNAT and SNAT; for a reply it undoes
 * them. When an entry has no NAT the two agree with the packet and nothing is written.
 *
 * Where it happens, as in the kernel: destination rewriting (`NatManip.Destination`)
 * belongs before routing (PREROUTING), so the route and NetworkPolicy see the endpoint;
 * source rewriting (`NatManip.Source`) after the forwarding decision (POSTROUTING). A
 * pipeline without that split passes `NatManip.Both`. For ICMP echo the identifier moves
 * with SNAT: rewritten at Source in the original direction, at Destination in the reply.
 *
 * Checksums are patched incrementally (RFC 1624) and equal a full recompute: the IP header
 * for addresses; TCP and UDP for their pseudo-header addresses and ports; ICMP for the
 * identifier (ICMP has no pseudo-header). Ports and identifiers go through the views'
 * `*Incremental` helpers. Addresses go through `checksumAdjust32` and the views' plain
 * setters, the same step `Ipv4View.set*AddrIncremental` and
 * `TcpView.adjustChecksumForAddress` take, but on int32 values: those helpers handle the
 * address as a uint32, and wherever V8 does not inline them an address above 2^31
 * (192.168.x.x, 192.0.2.x) crosses a call as a heap number, an allocation per packet
 * (measured). A UDP checksum of 0 means "none" and stays 0; a patched one that comes out
 * 0 is sent as 0xffff, as a computed one would be. Nothing here allocates or throws.
 *
 * ICMP errors RELATED to a connection are translated by nat-icmp.ts.
 */
import { checksumAdjust16, checksumAdjust32 } from '../packet/checksum.js';
import type { IcmpView } from '../packet/icmp.js';
import { IPPROTO, IPV4_OFFSET, type Ipv4View } from '../packet/ipv4.js';
import type { TcpView } from '../packet/tcp.js';
import type { UdpView } from '../packet/udp.js';
import type { Conntrack } from './conntrack.js';
import { readI32 } from './conntrack-tuple.js';

// Local consts of src/packet's constants, which V8 folds into per-packet code (see IPPROTO in ipv4.ts).
const IP_SRC = IPV4_OFFSET.SRC_ADDR;
const IP_DST = IPV4_OFFSET.DST_ADDR;
const IPPROTO_ICMP = IPPROTO.ICMP;
const IPPROTO_TCP = IPPROTO.TCP;
const IPPROTO_UDP = IPPROTO.UDP;

// Addresses are read from the IPv4 header as int32 (see readI32).

/** Which half of the translation to apply: a bit set. */
export const NatManip = { Destination: 1, Source: 2, Both: 3 } as const;
export type NatManip = (typeof NatManip)[keyof typeof NatManip];

/**
 * Translates a packet of connection `ref` (from `Conntrack.lookup` or `create`) in place.
 * `l4` is the checked view for the packet's protocol: a TcpView, UdpView or IcmpView (an
 * ICMP query such as echo; errors go to `natIcmpError`), and is ignored for other
 * protocols, whose addresses alone are translated. Returns true when anything changed.
 */
export function natPacket(
  ct: Conntrack,
  ref: number,
  ip: Ipv4View,
  l4: TcpView | UdpView | IcmpView | undefined,
  manip: NatManip = NatManip.Both,
): boolean {
  switch (ct.protocol(ref >>> 1)) {
    case IPPROTO_TCP:
      return natTcp(ct, ref, ip, l4 as TcpView, manip);
    case IPPROTO_UDP:
      return natUdp(ct, ref, ip, l4 as UdpView, manip);
    case IPPROTO_ICMP:
      return natIcmpQuery(ct, ref, ip, l4 as IcmpView, manip);
    default:
      return natAddresses(ct, ref, ip, manip);
  }
}

export function natTcp(ct: Conntrack, ref: number, ip: Ipv4View, tcp: TcpView, manip: NatManip = NatManip.Both): boolean {
  const id = ref >>> 1;
  const other = (ref & 1) ^ 1;
  let changed = false;
  if ((manip & NatManip.Destination) !== 0) changed = tcpDestination(ip, tcp, ct.tupleSrc(id, other), ct.tupleSport(id, other));
  if ((manip & NatManip.Source) !== 0) changed = tcpSource(ip, tcp, ct.tupleDst(id, other), ct.tupleDport(id, other)) || changed;
  return changed;
}

export function natUdp(ct: Conntrack, ref: number, ip: Ipv4View, udp: UdpView, manip: NatManip = NatManip.Both): boolean {
  const id = ref >>> 1;
  const other = (ref & 1) ^ 1;
  let changed = false;
  if ((manip & NatManip.Destination) !== 0) changed = udpDestination(ip, udp, ct.tupleSrc(id, other), ct.tupleSport(id, other));
  if ((manip & NatManip.Source) !== 0) changed = udpSource(ip, udp, ct.tupleDst(id, other), ct.tupleDport(id, other)) || changed;
  return changed;
}

function tcpDestination(ip: Ipv4View, tcp: TcpView, addr: number, port: number): boolean {
  let changed = false;
  const from = readI32(ip.buf, ip.offset + IP_DST);
  if (from !== addr) {
    setIpDst(ip, from, addr);
    tcp.checksum = checksumAdjust32(tcp.checksum, from, addr);
    changed = true;
  }
  if (tcp.dstPort !== port) {
    tcp.setDstPortIncremental(port);
    changed = true;
  }
  return changed;
}

function tcpSource(ip: Ipv4View, tcp: TcpView, addr: number, port: number): boolean {
  let changed = false;
  const from = readI32(ip.buf, ip.offset + IP_SRC);
  if (from !== addr) {
    setIpSrc(ip, from, addr);
    tcp.checksum = checksumAdjust32(tcp.checksum, from, addr);
    changed = true;
  }
  if (tcp.srcPort !== port) {
    tcp.setSrcPortIncremental(port);
    changed = true;
  }
  return changed;
}

function udpDestination(ip: Ipv4View, udp: UdpView, addr: number, port: number): boolean {
  let changed = false;
  const from = readI32(ip.buf, ip.offset + IP_DST);
  if (from !== addr) {
    setIpDst(ip, from, addr);
    udp.checksum = udpChecksumAdjust32(udp.checksum, from, addr);
    changed = true;
  }
  const old = udp.dstPort;
  if (old !== port) {
    udp.checksum = udpChecksumAdjust16(udp.checksum, old, port);
    udp.dstPort = port;
    changed = true;
  }
  return changed;
}

function udpSource(ip: Ipv4View, udp: UdpView, addr: number, port: number): boolean {
  let changed = false;
  const from = readI32(ip.buf, ip.offset + IP_SRC);
  if (from !== addr) {
    setIpSrc(ip, from, addr);
    udp.checksum = udpChecksumAdjust32(udp.checksum, from, addr);
    changed = true;
  }
  const old = udp.srcPort;
  if (old !== port) {
    udp.checksum = udpChecksumAdjust16(udp.checksum, old, port);
    udp.srcPort = port;
    changed = true;
  }
  return changed;
}

/** ICMP queries (echo and the like): addresses, and the identifier on the SNAT side. */
export function natIcmpQuery(ct: Conntrack, ref: number, ip: Ipv4View, icmp: IcmpView, manip: NatManip = NatManip.Both): boolean {
  const id = ref >>> 1;
  const dir = ref & 1;
  let changed = natAddresses(ct, ref, ip, manip);
  // SNAT owns the identifier: set going out (Source, original direction), restored coming back (Destination, reply).
  const identifierManip = dir === 0 ? NatManip.Source : NatManip.Destination;
  if ((manip & identifierManip) !== 0) {
    const target = ct.tupleSport(id, dir ^ 1);
    if (icmp.identifier !== target) {
      icmp.setIdentifierIncremental(target);
      changed = true;
    }
  }
  return changed;
}

/** Protocols tracked by address only: the IP header alone changes. */
export function natAddresses(ct: Conntrack, ref: number, ip: Ipv4View, manip: NatManip = NatManip.Both): boolean {
  const id = ref >>> 1;
  const other = (ref & 1) ^ 1;
  let changed = false;
  if ((manip & NatManip.Destination) !== 0) {
    const from = readI32(ip.buf, ip.offset + IP_DST);
    const to = ct.tupleSrc(id, other);
    if (from !== to) {
      setIpDst(ip, from, to);
      changed = true;
    }
  }
  if ((manip & NatManip.Source) !== 0) {
    const from = readI32(ip.buf, ip.offset + IP_SRC);
    const to = ct.tupleDst(id, other);
    if (from !== to) {
      setIpSrc(ip, from, to);
      changed = true;
    }
  }
  return changed;
}

/** The IPv4 destination address, `from` to `to` (int32), with the header checksum patched. */
export function setIpDst(ip: Ipv4View, from: number, to: number): void {
  ip.checksum = checksumAdjust32(ip.checksum, from, to);
  ip.dstAddr = to;
}

/** The IPv4 source address, `from` to `to` (int32), with the header checksum patched. */
export function setIpSrc(ip: Ipv4View, from: number, to: number): void {
  ip.checksum = checksumAdjust32(ip.checksum, from, to);
  ip.srcAddr = to;
}

/**
 * A UDP checksum after a 16-bit field changed: 0 ("none") stays 0, and a result of 0 is
 * sent as 0xffff, its equal in ones' complement, because 0 on the wire would mean "none".
 */
export function udpChecksumAdjust16(checksum: number, oldWord: number, newWord: number): number {
  if (checksum === 0) return 0;
  const adjusted = checksumAdjust16(checksum, oldWord, newWord);
  return adjusted === 0 ? 0xffff : adjusted;
}

/** The same for a 32-bit field (an address in the pseudo-header), given as int32 or uint32. */
export function udpChecksumAdjust32(checksum: number, oldValue: number, newValue: number): number {
  if (checksum === 0) return 0;
  const adjusted = checksumAdjust32(checksum, oldValue, newValue);
  return adjusted === 0 ? 0xffff : adjusted;
}
