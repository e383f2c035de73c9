/**
 * `Dissector.dissect(frame)` walks a frame through every parser the way the dataplane
 * does (src/datapath/stages): Ethernet (one 802.1Q tag, or QinQ) → ARP | IPv4 | IPv6;
 * IPv4 → ICMP (an error's quoted datagram through a second IPv4 view) | UDP | TCP; UDP to
 * port 4789 → VXLAN → the inner Ethernet frame, once. At every layer it checks the view
 * against the window the layer above names, and when `check` says `PacketOk` it parses
 * the header and drives every getter, setter and method (test/helpers/bounds.ts).
 *
 * Two things differ from the dataplane, both so that one mutated byte cannot hide the
 * layers beneath it from the fuzz. A failed parse (a bad checksum, a missing VXLAN I
 * flag, a version other than 4) is counted but the walk goes on into the payload: the
 * bounds contract is `check`'s, and holds whatever `parse` thinks of the header. And
 * fragments are walked as if they began with a transport header.
 *
 * With `fence` on, each layer's buffer is a Proxy fenced to exactly that layer's window
 * (slow: a trap per byte). Without it, each layer's buffer ends where its window ends, so
 * a read past the end gives `undefined`, which the exercisers catch when it reaches a
 * field or a repr; a throw is caught either way.
 */
import { PacketOk } from '../../src/packet/errors.js';
import { ArpView } from '../../src/packet/arp.js';
import { EthernetView, ETHERTYPE, VLAN_TAG_LEN } from '../../src/packet/ethernet.js';
import { IcmpView } from '../../src/packet/icmp.js';
import { IPPROTO, Ipv4View } from '../../src/packet/ipv4.js';
import { Ipv6View } from '../../src/packet/ipv6.js';
import { TcpView } from '../../src/packet/tcp.js';
import { UdpView, type PseudoAddrs } from '../../src/packet/udp.js';
import { VxlanView, VXLAN_PORT } from '../../src/packet/vxlan.js';
import {
  exerciseArp,
  exerciseEthernet,
  exerciseIcmp,
  exerciseIpv4,
  exerciseIpv6,
  exerciseTcp,
  exerciseUdp,
  exerciseVxlan,
  fenced,
  walkTcpOptions,
} from '../helpers/bounds.js';

/**
 * The layers counted. `vlan` is a tagged frame (outer or inner); `icmpQuote` the IPv4
 * header an ICMP error quotes; `tcpOptions` a segment whose options yielded at least one
 * option; `inner` the Ethernet frame inside VXLAN (its own layers count under their names).
 */
export const LAYERS = [
  'ethernet',
  'vlan',
  'arp',
  'ipv4',
  'icmp',
  'icmpQuote',
  'udp',
  'tcp',
  'tcpOptions',
  'vxlan',
  'inner',
  'ipv6',
] as const;
export type Layer = (typeof LAYERS)[number];

type Counts = Record<Layer, number>;

function zeroes(): Counts {
  return Object.fromEntries(LAYERS.map((layer) => [layer, 0])) as Counts;
}

/** How often each layer was reached: `checked` when `check` accepted, `parsed` when parse did too. */
export class Reach {
  readonly checked = zeroes();
  readonly parsed = zeroes();

  count(layer: Layer, parsed: boolean): void {
    this.checked[layer]++;
    if (parsed) this.parsed[layer]++;
  }
}

/** Called as each layer is accepted, with the offset of its header: how the mutators find fields. */
export type LayerHook = (layer: Layer, offset: number) => void;

/** One view per protocol, re-pointed with `check` as the dataplane's are. */
class ViewSet {
  readonly eth = new EthernetView();
  /** The C-tag of a QinQ frame: a second Ethernet view four bytes on. */
  readonly cTag = new EthernetView();
  readonly arp = new ArpView();
  readonly ipv4 = new Ipv4View();
  readonly ipv6 = new Ipv6View();
  readonly icmp = new IcmpView();
  readonly udp = new UdpView();
  readonly tcp = new TcpView();
  readonly vxlan = new VxlanView();
}

export class Dissector {
  readonly reach = new Reach();
  private frame: Uint8Array = new Uint8Array(0);
  private fence = false;
  // Outer frame, its quoted datagram, inner frame, its quoted datagram: a nested layer
  // must not re-point a view that the layer around it is still reading.
  private readonly sets = [new ViewSet(), new ViewSet(), new ViewSet(), new ViewSet()];

  constructor(private readonly hook?: LayerHook) {}

  /** Walks `frame` (which the exercisers' setters and checksum fills may rewrite). */
  dissect(frame: Uint8Array, fence: boolean): void {
    this.frame = frame;
    this.fence = fence;
    this.ethernet(0, frame.length, false);
  }

  /** What a layer's `check` is given: fenced to its window, or ending where it ends. */
  private window(offset: number, available: number): Uint8Array {
    return this.fence ? fenced(this.frame, offset, offset + available) : this.frame.subarray(0, offset + available);
  }

  private views(inner: boolean, quoted: boolean): ViewSet {
    return this.sets[(inner ? 2 : 0) + (quoted ? 1 : 0)];
  }

  private accepted(layer: Layer, offset: number, parsed: unknown): void {
    this.hook?.(layer, offset);
    this.reach.count(layer, typeof parsed !== 'number');
  }

  private ethernet(offset: number, available: number, inner: boolean): void {
    const views = this.views(inner, false);
    const eth = views.eth;
    if (eth.check(this.window(offset, available), offset, available) !== PacketOk) return;
    const parsed = exerciseEthernet(eth, available);
    this.accepted(inner ? 'inner' : 'ethernet', offset, parsed);
    if (!eth.hasVlan) return this.network(eth.ethertype, eth.payloadOffset, eth.payloadLength, inner);
    this.reach.count('vlan', typeof parsed !== 'number');
    if (eth.ethertype !== ETHERTYPE.VLAN) return this.network(eth.ethertype, eth.payloadOffset, eth.payloadLength, inner);
    // QinQ: the C-tag's TCI and EtherType follow the S-tag, read by a view four bytes on.
    const tag = views.cTag;
    const at = offset + VLAN_TAG_LEN;
    if (tag.check(this.window(at, available - VLAN_TAG_LEN), at, available - VLAN_TAG_LEN) !== PacketOk) return;
    this.accepted('vlan', at, exerciseEthernet(tag, available - VLAN_TAG_LEN));
    this.network(tag.ethertype, tag.payloadOffset, tag.payloadLength, inner);
  }

  private network(ethertype: number, offset: number, available: number, inner: boolean): void {
    if (ethertype === ETHERTYPE.ARP) this.arp(offset, available, inner);
    else if (ethertype === ETHERTYPE.IPV4) this.ipv4(offset, available, inner, false);
    else if (ethertype === ETHERTYPE.IPV6) this.ipv6(offset, available, inner);
  }

  private arp(offset: number, available: number, inner: boolean): void {
    const arp = this.views(inner, false).arp;
    if (arp.check(this.window(offset, available), offset, available) !== PacketOk) return;
    this.accepted('arp', offset, exerciseArp(arp, available));
  }

  private ipv6(offset: number, available: number, inner: boolean): void {
    const ip = this.views(inner, false).ipv6;
    if (ip.check(this.window(offset, available), offset, available) !== PacketOk) return;
    this.accepted('ipv6', offset, exerciseIpv6(ip, available));
  }

  private ipv4(offset: number, available: number, inner: boolean, quoted: boolean): void {
    const ip = this.views(inner, quoted).ipv4;
    if (ip.check(this.window(offset, available), offset, available) !== PacketOk) return;
    // Read before the exerciser rewrites the addresses: the pseudo-header needs the originals.
    const addrs: PseudoAddrs = { src: ip.srcAddr, dst: ip.dstAddr };
    this.accepted(quoted ? 'icmpQuote' : 'ipv4', offset, exerciseIpv4(ip, available));
    const at = ip.payloadOffset;
    const length = ip.payloadLength;
    if (ip.protocol === IPPROTO.ICMP && !quoted) this.icmp(at, length, inner);
    else if (ip.protocol === IPPROTO.UDP) this.udp(at, length, inner, quoted, addrs);
    else if (ip.protocol === IPPROTO.TCP) this.tcp(at, length, inner, quoted, addrs);
  }

  private icmp(offset: number, available: number, inner: boolean): void {
    const icmp = this.views(inner, false).icmp;
    if (icmp.check(this.window(offset, available), offset, available) !== PacketOk) return;
    this.accepted('icmp', offset, exerciseIcmp(icmp, available));
    // An error quotes the offending datagram, which conntrack reads with an IPv4 view.
    if (icmp.isError) this.ipv4(icmp.embeddedOffset, icmp.embeddedLength, inner, true);
  }

  private udp(offset: number, available: number, inner: boolean, quoted: boolean, addrs: PseudoAddrs): void {
    const udp = this.views(inner, quoted).udp;
    if (udp.check(this.window(offset, available), offset, available) !== PacketOk) return;
    this.accepted('udp', offset, exerciseUdp(udp, available, addrs));
    // One level of encapsulation, as the dataplane decapsulates: VXLAN inside VXLAN is payload.
    if (udp.dstPort === VXLAN_PORT && !inner && !quoted) this.vxlan(udp.payloadOffset, udp.payloadLength);
  }

  private tcp(offset: number, available: number, inner: boolean, quoted: boolean, addrs: PseudoAddrs): void {
    const tcp = this.views(inner, quoted).tcp;
    if (tcp.check(this.window(offset, available), offset, available) !== PacketOk) return;
    const walk = walkTcpOptions(tcp);
    if (walk.options > 0) this.reach.count('tcpOptions', walk.error === PacketOk);
    this.accepted('tcp', offset, exerciseTcp(tcp, available, addrs));
  }

  private vxlan(offset: number, available: number): void {
    const vxlan = this.sets[0].vxlan;
    if (vxlan.check(this.window(offset, available), offset, available) !== PacketOk) return;
    this.accepted('vxlan', offset, exerciseVxlan(vxlan, available));
    this.ethernet(vxlan.payloadOffset, vxlan.payloadLength, true);
  }
}

/** One frame, one walk, with a fresh `Dissector`: for replays and tools. Returns what it reached. */
export function dissect(frame: Uint8Array, fence = true): Reach {
  const dissector = new Dissector();
  dissector.dissect(frame, fence);
  return dissector.reach;
}
