/**
 * One node's forwarding path: what `cni0`, the node's routing table and `flannel.1` do in a
 * real node, done on frames in userspace.
 *
 *   pod port rx -> Ethernet check -> anti-spoof -> learn source in the FDB
 *     dst MAC = gateway   -> ARP responder | IPv4 router (local pod | remote node | gateway)
 *     broadcast/multicast -> ARP for the gateway answered, everything else flooded
 *     other unicast       -> FDB lookup -> one port, or flood when unknown
 *   overlay rx -> VXLAN check (I flag, VNI, known peer) -> inner frame for our VTEP -> local pod
 *
 * The router rewrites MACs and decrements the TTL in place, in the receive slab, then hands
 * the frame to the egress port, which queues a reference to it there (native ports: the
 * kernel gathers it from the slab at the batch's flush) or copies it once. Nothing on
 * this path allocates: views are fields re-pointed per frame, addresses are numbers,
 * tables are typed arrays or number-keyed maps, and every drop is a counter increment.
 * ICMP errors (rare by nature) are built in a scratch buffer owned by the pipeline.
 *
 * Time comes in through `now()` (ns), so tests drive the clock.
 */
import { cidrContains, cidrSize, BROADCAST_MAC, isMulticastMac, type Cidr } from '../packet/addr.js';
import { ArpView, ARP_LEN, ARP_OP, emitArp, emitArpReply } from '../packet/arp.js';
import { emitEthernet, ETHERNET_HEADER_LEN, ETHERTYPE, EthernetView } from '../packet/ethernet.js';
import { PacketOk } from '../packet/errors.js';
import {
  emitIcmp,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REQUEST,
  ICMP_FRAG_NEEDED,
  ICMP_HEADER_LEN,
  ICMP_HOST_UNREACHABLE,
  ICMP_NET_UNREACHABLE,
  ICMP_PORT_UNREACHABLE,
  ICMP_TIME_EXCEEDED,
  ICMP_TTL_EXCEEDED,
  IcmpView,
  type IcmpRepr,
} from '../packet/icmp.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN, Ipv4View } from '../packet/ipv4.js';
import { TcpView } from '../packet/tcp.js';
import { emitVxlan, VXLAN_HEADER_LEN, VxlanView } from '../packet/vxlan.js';
import { Conntrack, CreateError, CT_NOT_FOUND, TrackVerdict } from '../netfilter/conntrack.js';
import { FlowTuple, readPacketTuple, TupleKind } from '../netfilter/conntrack-tuple.js';
import { natPacket } from '../netfilter/nat.js';
import type { PolicyTables } from '../netfilter/policy.js';
import { natIcmpError } from '../netfilter/nat-icmp.js';
import { chooseSnatPort, defaultSnatRange, setReplySource } from '../netfilter/nat-port.js';
import { AffinityTable, FlowDecision, FlowVerdict, type LiveServiceTable } from '../netfilter/service-table.js';
import { emitUdp, UdpView } from '../packet/udp.js';
import { Fdb } from '../l2/fdb.js';
import { NeighbourTable } from '../l2/neighbours.js';
import { completeChecksum, GsoError, segmentTcpV4 } from '../overlay/gso.js';
import { OverlayPeers, type Peer } from '../overlay/peers.js';
import { decodeSuperFrameBits, encodeSuperFrameBits, hasOffload } from '../overlay/superframe.js';
import type { DatagramBatch, Port, RxBatch, TxOffload } from '../io/port.js';
import { VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_NONE, VNET_HDR_GSO_TCPV4 } from '../io/port.js';
import { readU16, writeU16 } from '../packet/bytes.js';
import { checksumAdjust32, internetChecksum } from '../packet/checksum.js';
import { Drop, DROP_REASONS } from './drops.js';

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): what the overlay adds to an IP packet. */
export const VXLAN_OVERHEAD = 50;

export interface PipelineOptions {
  /** Uniform in [0, 1): endpoint choice and SNAT ports; a seeded source makes tests repeatable. */
  random?: () => number;
  /** Connection table size (the kernel's nf_conntrack_max); default 262,144. */
  conntrackMax?: number;
  /** Hash seed of the connection table. */
  seed?: number;
}

export interface NodeIdentity {
  name: string;
  /** This node's pod CIDR (10.244.N.0/24). */
  subnet: Cidr;
  /** The cluster-wide pod CIDR; destinations inside it but on no node are unreachable. */
  clusterCidr: Cidr;
  /** Gateway address and the bridge's MAC (the pods' default router, cni0 in a real node). */
  gatewayIp: number;
  gatewayMac: number;
  /** MAC of this node's VTEP (flannel.1), the inner source MAC of encapsulated frames. */
  vtepMac: number;
  vni: number;
  /** The underlay path's MTU; inner IP packets up to underlayMtu - 50 cross the overlay whole. */
  underlayMtu: number;
  /** The cluster DNS address, answered inside the dataplane for local pods (UDP). */
  dnsIp?: number;
}

/** The cluster DNS responder as the pipeline calls it (src/node/dns-server.ts). */
export interface DnsAnswerer {
  fromPod(query: Uint8Array, offset: number, length: number, clientAddr: number, clientPort: number, out: Uint8Array, outOffset: number): { action: string; length: number };
}

const DNS_PORT = 53;
/** Ethernet + IPv4 + UDP in front of a DNS message built for a pod. */
const DNS_FRAME_HEADERS = 42;

/** The node's NIC on the outside network (the ext namespace's bridge). */
export interface UplinkIdentity {
  /** The node's address there, and its MAC. */
  addr: number;
  mac: number;
  network: Cidr;
  /** Next hop for destinations outside `network`. */
  gateway: number;
}

/** An interface tap for captures: called for every frame received and sent. */
export interface FrameTap {
  podFrame(slot: number, buf: Uint8Array, offset: number, length: number, comment?: string): void;
  uplinkFrame(buf: Uint8Array, offset: number, length: number): void;
  /** The inner Ethernet frame of a VXLAN datagram; the capture adds the outer headers. */
  overlayFrame(peer: Peer, outbound: boolean, frame: Uint8Array, offset: number, length: number): void;
}

interface PodSlot {
  name: string;
  ip: number;
  mac: number;
  port: Port;
}

const NO_POD = -1;
/** Ingress "slots" that are not pods. */
const INGRESS_OVERLAY = -1;
const INGRESS_UPLINK = -2;
const MAX_SLOTS = 1024;
const SCRATCH_LEN = 2048;
/** ICMP errors quote the offending IP header and the first 8 bytes after it (RFC 792). */
const ICMP_QUOTE_EXTRA = 8;

export class Pipeline {
  readonly peers = new OverlayPeers();
  readonly fdb = new Fdb();
  readonly drops = new Float64Array(DROP_REASONS.length);
  readonly conntrack: Conntrack;
  private readonly random: () => number;
  private readonly orig = new FlowTuple();
  private readonly reply = new FlowTuple();
  private readonly udp = new UdpView();
  readonly counters = { forwarded: 0, flooded: 0, encapsulated: 0, decapsulated: 0, arpReplies: 0, icmpSent: 0, serviceFlows: 0, dnsQueries: 0 };
  tap: FrameTap | undefined;

  private readonly slots: (PodSlot | undefined)[] = [];
  /** Local pod slot by host number within the node's subnet: one array index per lookup. */
  private readonly slotByHost: Int32Array;
  private readonly dirtySlots = new Int32Array(MAX_SLOTS);
  private dirtyCount = 0;
  private overlayDirty = false;
  private overlay: OverlayLink | undefined;
  private uplink: { port: Port; id: UplinkIdentity } | undefined;
  private uplinkDirty = false;
  readonly neighbours = new NeighbourTable();
  /** NetworkPolicy for this node's pods; undefined allows everything. */
  policy: PolicyTables | undefined;
  /** kube-proxy's decisions, compiled; undefined: no services. */
  services: LiveServiceTable | undefined;
  private readonly affinity = new AffinityTable(65_536);
  private readonly decision = new FlowDecision();
  /** Answers UDP queries to the cluster DNS address; undefined: they are routed like any packet. */
  dns: DnsAnswerer | undefined;
  /** Told about the first internal error (the agent logs it); later ones are only counted. */
  onInternalError: ((err: unknown) => void) | undefined;
  /** Where pods' TCP connections to the cluster DNS address go (the node's DNS relay); 0: nowhere. */
  dnsTcpTarget = 0;
  private readonly dnsFrame = Buffer.alloc(DNS_FRAME_HEADERS + 65535);
  /** LoadBalancer addresses this node answers ARP for on its uplink. */
  private announced = new Set<number>();

  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();
  private readonly icmp = new IcmpView();
  private readonly vxlan = new VxlanView();
  private readonly tcp = new TcpView();
  /** Where software segmentation builds each segment (up to a 64 KiB pod MTU). */
  private readonly segment = Buffer.alloc(65536);
  private readonly innerEth = new EthernetView();
  private readonly scratch = Buffer.alloc(SCRATCH_LEN);
  private readonly vxlanHeader = Buffer.alloc(VXLAN_HEADER_LEN);
  /** The batch being handled: frames in `rxBuf` go out by reference to slab `rxSlab`. */
  private rxBuf: Uint8Array | undefined;
  private rxSlab = 0;
  /**
   * The clock read once per batch: every frame of a batch arrived together, and connection
   * timeouts count in seconds (the kernel's conntrack ticks in jiffies).
   */
  private nowNs = 0;
  /** Offload metadata handed through from the receive batch to the egress port. */
  private readonly offload: TxOffload = { flags: 0, gsoType: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };

  constructor(
    readonly node: NodeIdentity,
    /** Nanoseconds on a monotonic clock: the dataplane's only notion of time. */
    readonly clock: () => number,
    options: PipelineOptions = {},
  ) {
    this.slotByHost = new Int32Array(Math.min(cidrSize(node.subnet), 1 << 16)).fill(NO_POD);
    this.random = options.random ?? Math.random;
    this.conntrack = new Conntrack({ maxEntries: options.conntrackMax ?? 262_144, seed: options.seed ?? 0x9e3779b9 });
  }

  /** Largest inner IPv4 packet the overlay carries whole. */
  get overlayIpMtu(): number {
    return this.node.underlayMtu - VXLAN_OVERHEAD;
  }

  /** Attaches a pod's port; returns its slot (the capture interface and FDB port number). */
  addPod(name: string, ip: number, mac: number, port: Port): number {
    if (!cidrContains(this.node.subnet, ip)) throw new Error(`pod ${name}: ${ip} is outside the node's pod CIDR`);
    let slot = this.slots.findIndex((s) => s === undefined);
    if (slot < 0) slot = this.slots.length;
    if (slot >= MAX_SLOTS) throw new Error(`node ${this.node.name}: more than ${MAX_SLOTS} pods`);
    this.slots[slot] = { name, ip, mac, port };
    this.slotByHost[ip - this.node.subnet.base] = slot;
    port.start((batch) => this.receiveFromPod(slot, batch));
    return slot;
  }

  removePod(slot: number): void {
    const pod = this.slots[slot];
    if (pod === undefined) return;
    this.slots[slot] = undefined;
    this.slotByHost[pod.ip - this.node.subnet.base] = NO_POD;
    this.fdb.flushPort(slot);
    pod.port.close();
  }

  pods(): { slot: number; name: string; ip: number; mac: number; port: Port }[] {
    const out = [];
    for (let slot = 0; slot < this.slots.length; slot++) {
      const pod = this.slots[slot];
      if (pod !== undefined) out.push({ slot, ...pod });
    }
    return out;
  }

  attachOverlay(link: OverlayLink): void {
    this.overlay = link;
    link.start((batch) => this.receiveFromOverlay(batch));
  }

  attachUplink(port: Port, id: UplinkIdentity): void {
    this.uplink = { port, id };
    port.start((batch) => this.receiveFromUplink(batch));
  }

  /** Replaces the set of LoadBalancer addresses this node answers ARP for. */
  announce(addrs: readonly number[]): void {
    this.announced = new Set(addrs);
  }

  dropCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    DROP_REASONS.forEach((r, i) => {
      if (this.drops[i] > 0) out[r.name] = this.drops[i];
    });
    return out;
  }

  // ---- receive from a pod ------------------------------------------------------------

  receiveFromPod(slot: number, batch: RxBatch): void {
    const pod = this.slots[slot];
    if (pod === undefined) return;
    this.beginBatch(batch.buf, batch.slab);
    const nowNs = this.nowNs;
    for (let i = 0; i < batch.count; i++) {
      const offset = batch.offsets[i];
      const length = batch.lengths[i];
      this.offload.flags = batch.flags[i];
      this.offload.gsoType = batch.gsoType[i];
      this.offload.gsoSize = batch.gsoSize[i];
      this.offload.csumStart = batch.csumStart[i];
      this.offload.csumOffset = batch.csumOffset[i];
      try {
        if (this.tap !== undefined) this.tap.podFrame(slot, batch.buf, offset, length);
        this.podFrame(slot, pod, batch.buf, offset, length, nowNs);
      } catch (err) {
        this.internalError(err);
      }
    }
    this.flush();
  }

  private beginBatch(buf: Uint8Array, slab: number): void {
    this.rxBuf = buf;
    this.rxSlab = slab;
    this.nowNs = this.clock();
  }

  /** The slab number to send `buf` by reference, or 0 (copy) when it is not the batch's. */
  private slabOf(buf: Uint8Array): number {
    return buf === this.rxBuf ? this.rxSlab : 0;
  }

  /**
   * Nothing on the forwarding path throws by design; should a bug make it, the frame is
   * dropped and counted, and the node keeps forwarding instead of dying with its pods.
   */
  private internalError(err: unknown): void {
    this.drop(Drop.InternalError);
    if (this.drops[Drop.InternalError] !== 1) return;
    try {
      this.onInternalError?.(err);
    } catch {
      // A failing reporter must not cut the batch short: frames queued by reference
      // still have to be flushed before the slab is read into again.
    }
  }

  private podFrame(slot: number, pod: PodSlot, buf: Buffer, offset: number, length: number, nowNs: number): void {
    const eth = this.eth;
    if (eth.check(buf, offset, length) !== PacketOk) return this.drop(Drop.Malformed);
    const src = eth.srcMac;
    if (src !== pod.mac) return this.drop(Drop.Spoofed);
    this.fdb.learn(src, slot, nowNs);
    const dst = eth.dstMac;
    if (dst === this.node.gatewayMac) return this.routeFromPod(slot, pod, buf, offset, length);
    if (dst === BROADCAST_MAC || isMulticastMac(dst)) {
      if (eth.ethertype === ETHERTYPE.ARP && this.answerArp(slot, pod, buf, offset, length)) return;
      return this.flood(slot, buf, offset, length);
    }
    // Bridged IPv4 goes through conntrack, NAT and NetworkPolicy as with br_netfilter
    // (bridge-nf-call-iptables=1, which Kubernetes requires): a service's reply from a
    // backend on the same bridge must be un-NATed, and policy must hold on one node too.
    if (eth.ethertype === ETHERTYPE.IPV4 && !this.bridgeFilter(slot, pod, buf, length)) return;
    const out = this.fdb.lookup(dst, nowNs);
    if (out < 0) return this.flood(slot, buf, offset, length);
    if (out === slot) return this.drop(Drop.SamePort);
    this.sendToPod(out, buf, offset, length);
  }

  /** The netfilter hooks for an IPv4 frame the bridge switches; false when it was dropped. */
  private bridgeFilter(slot: number, pod: PodSlot, buf: Buffer, length: number): boolean {
    const eth = this.eth;
    const ip = this.ip;
    if (ip.check(buf, eth.payloadOffset, length - eth.headerLength) !== PacketOk || ip.version !== 4) return this.dropped(Drop.Malformed);
    if (!ip.verifyChecksum()) return this.dropped(Drop.BadChecksum);
    if (ip.srcAddr !== pod.ip) return this.dropped(Drop.Spoofed);
    return this.track(slot, undefined);
  }

  /**
   * Answers an ARP request for the gateway address in place and sends it back; returns
   * false for any other ARP (which the bridge floods, so pods resolve each other).
   */
  private answerArp(slot: number, pod: PodSlot, buf: Buffer, offset: number, length: number): boolean {
    const eth = this.eth;
    const arp = this.arp;
    if (arp.check(buf, eth.payloadOffset, length - eth.headerLength) !== PacketOk) {
      this.drop(Drop.Malformed);
      return true;
    }
    if (arp.senderMac !== pod.mac) {
      this.drop(Drop.Spoofed);
      return true;
    }
    if (arp.operation !== ARP_OP.REQUEST || arp.targetIp !== this.node.gatewayIp) return false;
    emitArpReply(arp, this.node.gatewayMac, buf, eth.payloadOffset);
    eth.dstMac = pod.mac;
    eth.srcMac = this.node.gatewayMac;
    this.counters.arpReplies++;
    this.sendToPod(slot, buf, offset, eth.headerLength + ARP_LEN);
    return true;
  }

  private routeFromPod(slot: number, pod: PodSlot, buf: Buffer, offset: number, length: number): void {
    const eth = this.eth;
    const type = eth.ethertype;
    if (type === ETHERTYPE.ARP) {
      // A unicast ARP to the gateway (a pod refreshing its neighbour entry).
      if (!this.answerArp(slot, pod, buf, offset, length)) this.drop(Drop.LocalUnhandled);
      return;
    }
    if (type === ETHERTYPE.IPV6) return this.drop(Drop.Ipv6);
    if (type !== ETHERTYPE.IPV4) return this.drop(Drop.UnknownEthertype);
    const ip = this.ip;
    if (ip.check(buf, eth.payloadOffset, length - eth.headerLength) !== PacketOk || ip.version !== 4) {
      return this.drop(Drop.Malformed);
    }
    // A GSO super-frame's header checksum is valid as sent; only offloaded L4 sums are partial.
    if (!ip.verifyChecksum()) return this.drop(Drop.BadChecksum);
    if (ip.srcAddr !== pod.ip) return this.drop(Drop.Spoofed);
    const dst = ip.dstAddr;
    if (dst === this.node.gatewayIp && this.conntrackReplyTo() === CT_NOT_FOUND) {
      // Not a reply to a masqueraded (hairpin) connection: the node itself is asked.
      if (!this.answerEcho(this.node.gatewayMac)) return this.drop(Drop.LocalUnhandled);
      return this.sendToPod(slot, buf, offset, this.eth.headerLength + this.ip.totalLength);
    }
    if (dst === this.node.dnsIp && ip.protocol === IPPROTO.UDP && this.dns !== undefined && this.isDnsQuery()) return this.answerDns(slot, pod);
    if (ip.ttl <= 1) return this.icmpError(slot, undefined, ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED, 0, Drop.TtlExceeded);
    this.forward(slot, undefined, buf);
  }

  private isDnsQuery(): boolean {
    const ip = this.ip;
    return !ip.isFragment && this.udp.check(ip.buf, ip.payloadOffset, ip.payloadLength) === PacketOk && this.udp.dstPort === DNS_PORT;
  }

  /**
   * A UDP query to the cluster DNS address from a local pod, answered here: the responder
   * writes the message behind room for the headers, which are then built around it.
   * NetworkPolicy egress applies as it would to a DNS pod.
   */
  private answerDns(slot: number, pod: PodSlot): void {
    const ip = this.ip;
    const udp = this.udp;
    if (this.policy !== undefined && !this.policy.egressAllowed(ip.srcAddr, ip.dstAddr, IPPROTO.UDP, DNS_PORT)) return this.drop(Drop.PolicyDenied);
    this.counters.dnsQueries++;
    const result = this.dns!.fromPod(ip.buf, udp.payloadOffset, udp.payloadLength, ip.srcAddr, udp.srcPort, this.dnsFrame, DNS_FRAME_HEADERS);
    if (result.action === 'answer') this.sendDnsFrame(slot, pod, udp.srcPort, result.length);
  }

  /** Sends a DNS answer the responder produced later (a forwarded query's) to the pod that asked. */
  deliverDnsAnswer(clientAddr: number, clientPort: number, message: Uint8Array, length: number): void {
    if (!cidrContains(this.node.subnet, clientAddr)) return;
    const slot = this.slotByHost[clientAddr - this.node.subnet.base];
    const pod = slot === NO_POD ? undefined : this.slots[slot];
    if (pod === undefined || length > this.dnsFrame.length - DNS_FRAME_HEADERS) return;
    this.dnsFrame.set(message.subarray(0, length), DNS_FRAME_HEADERS);
    this.sendDnsFrame(slot, pod, clientPort, length);
    this.flush();
  }

  private sendDnsFrame(slot: number, pod: PodSlot, clientPort: number, length: number): void {
    const out = this.dnsFrame;
    const dnsIp = this.node.dnsIp!;
    emitEthernet({ dstMac: pod.mac, srcMac: this.node.gatewayMac, ethertype: ETHERTYPE.IPV4 }, out, 0);
    emitIpv4(
      { src: dnsIp, dst: pod.ip, protocol: IPPROTO.UDP, ttl: 64, payloadLength: 8 + length, dscp: 0, ecn: 0, identification: 0, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 },
      out,
      ETHERNET_HEADER_LEN,
    );
    emitUdp({ srcPort: DNS_PORT, dstPort: clientPort }, out, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN, length, { src: dnsIp, dst: pod.ip });
    this.offload.flags = 0;
    this.offload.gsoType = VNET_HDR_GSO_NONE;
    this.sendToPod(slot, out, 0, DNS_FRAME_HEADERS + length);
  }

  /**
   * The routed path for the IPv4 packet in `this.ip` (checked, checksum verified, TTL > 1),
   * from a pod (`inSlot` >= 0), the overlay (`fromPeer`) or the uplink (INGRESS_UPLINK):
   * connection tracking and NAT (what PREROUTING and POSTROUTING do), then the route on the
   * translated destination.
   */
  private forward(inSlot: number, fromPeer: Peer | undefined, buf: Buffer): void {
    if (!this.track(inSlot, fromPeer)) return;
    const ip = this.ip;
    const dst = ip.dstAddr;
    if (cidrContains(this.node.subnet, dst)) return this.routeToLocalPod(inSlot, fromPeer, buf);
    const peer = this.peers.peerFor(dst);
    if (peer !== undefined) {
      // Traffic that came over the overlay never goes back into it (no transit node).
      if (fromPeer !== undefined) return this.drop(Drop.NotForThisNode);
      return this.encapsulate(inSlot, peer, buf);
    }
    if (!cidrContains(this.node.clusterCidr, dst) && this.uplink !== undefined && inSlot !== INGRESS_UPLINK) {
      return this.toOutside(buf);
    }
    const unreachable = cidrContains(this.node.clusterCidr, dst) ? ICMP_HOST_UNREACHABLE : ICMP_NET_UNREACHABLE;
    this.icmpError(inSlot, fromPeer, ICMP_DEST_UNREACHABLE, unreachable, 0, Drop.NoRoute);
  }

  /**
   * Connection tracking for the packet in `this.ip`: a known connection's packet is
   * translated as its entry says (replies get the reverse NAT; ICMP errors RELATED to a
   * connection get their quote translated too); a new one gets an entry, with masquerade
   * when it leaves the cluster through the uplink. Returns false when the packet was
   * dropped (counted).
   */
  private track(inSlot: number, fromPeer: Peer | undefined): boolean {
    const ip = this.ip;
    const ct = this.conntrack;
    const nowNs = this.nowNs;
    const kind = readPacketTuple(ip, this.orig);
    if (kind === TupleKind.Untracked) return true;
    if (kind === TupleKind.IcmpError) {
      const ref = ct.lookupTuple(this.orig, nowNs);
      if (ref === CT_NOT_FOUND) return true; // not about a connection we know: route as is
      if (this.icmp.check(ip.buf, ip.payloadOffset, ip.payloadLength) !== PacketOk) return this.dropped(Drop.Malformed);
      natIcmpError(ct, ref, ip, this.icmp);
      return true;
    }
    const tcpFlags = this.checkL4();
    if (tcpFlags < 0) return this.dropped(Drop.Malformed);
    let ref = ct.lookupTuple(this.orig, nowNs);
    if (ref !== CT_NOT_FOUND) {
      const verdict = ct.update(ref, tcpFlags, ip.totalLength, nowNs);
      if (verdict === TrackVerdict.Invalid) return this.dropped(Drop.CtInvalid);
      if (verdict !== TrackVerdict.Reopen) {
        this.translate(ref);
        return true;
      }
    }
    // A new connection. PREROUTING: is it for a service (DNAT)? FORWARD: NetworkPolicy
    // on the translated destination (egress at the source pod's node, ingress at the
    // destination pod's). POSTROUTING: masquerade. Then both tuples are recorded.
    this.reply.setReplyOf(this.orig);
    let dst = ip.dstAddr;
    let dstPort = this.orig.dport;
    let masquerade = this.leavesCluster(inSlot, fromPeer);
    const table = this.services?.table;
    const proto = ip.protocol;
    if (inSlot >= 0 && dst === this.node.dnsIp && proto === IPPROTO.TCP && dstPort === DNS_PORT && this.dnsTcpTarget !== 0) {
      dst = this.dnsTcpTarget;
      setReplySource(this.reply, dst, DNS_PORT);
      masquerade = false;
    } else if (table !== undefined && (proto === IPPROTO.TCP || proto === IPPROTO.UDP)) {
      this.affinity.setTime(nowNs / 1e9);
      const verdict = table.classify(ip.srcAddr, dst, proto, dstPort, (this.random() * 0x100000000) | 0, this.affinity, this.decision);
      if (verdict === FlowVerdict.Reject) {
        this.icmpError(inSlot, fromPeer, ICMP_DEST_UNREACHABLE, ICMP_PORT_UNREACHABLE, 0, Drop.NoEndpoints);
        return false;
      }
      if (verdict === FlowVerdict.Drop) return this.dropped(Drop.NoLocalEndpoints);
      if (verdict === FlowVerdict.Dnat) {
        dst = this.decision.dnatAddress;
        dstPort = this.decision.dnatPort;
        setReplySource(this.reply, dst, dstPort);
        this.counters.serviceFlows++;
      }
      masquerade = this.decision.masquerade;
      if (inSlot === INGRESS_UPLINK && verdict !== FlowVerdict.Dnat) return this.dropped(Drop.LocalUnhandled);
    } else if (inSlot === INGRESS_UPLINK) {
      return this.dropped(Drop.LocalUnhandled);
    }
    if (!this.policyAllows(inSlot, dst, dstPort)) return this.dropped(Drop.PolicyDenied);
    if (masquerade) {
      const range = defaultSnatRange(this.orig.proto, this.orig.sport);
      // kube-proxy masquerades with --random-fully; so does podwire's egress rule.
      if (!chooseSnatPort(ct, this.reply, this.egressAddress(dst), range, this.random, nowNs, true)) return this.dropped(Drop.NatExhausted);
    }
    ref = ct.create(this.orig, this.reply, tcpFlags, ip.totalLength, nowNs);
    if (ref === CreateError.Clash && !masquerade && (dst !== ip.dstAddr || dstPort !== this.orig.dport)) {
      // Two services with the same backend reached from one client ip:port give two
      // connections the same reply tuple. The kernel's NAT keeps both by remapping the
      // source port (nf_nat_used_tuple, then a new port); so does podwire.
      const range = defaultSnatRange(this.orig.proto, this.orig.sport);
      if (chooseSnatPort(ct, this.reply, this.orig.src, range, this.random, nowNs)) ref = ct.create(this.orig, this.reply, tcpFlags, ip.totalLength, nowNs);
    }
    if (ref === CreateError.Full) return this.dropped(Drop.CtFull);
    if (ref === CreateError.Invalid) return this.dropped(Drop.CtInvalid);
    if (ref < 0) return this.dropped(Drop.CtClash);
    this.translate(ref);
    return true;
  }

  /**
   * Applies connection `ref`'s NAT to the packet. A frame whose L4 checksum the pod left
   * partial (NEEDS_CSUM: the field holds the pseudo-header sum, the rest is summed on the
   * way out) must only see the address change in that field, as the kernel's
   * inet_proto_csum_replace4 does for CHECKSUM_PARTIAL; ports are summed later anyway.
   */
  private translate(ref: number): void {
    // Most connections between pods have no NAT: nothing to rewrite, no view to pick.
    if (!this.conntrack.natted(ref >>> 1)) return;
    const ip = this.ip;
    if ((this.offload.flags & VNET_HDR_F_NEEDS_CSUM) === 0) {
      natPacket(this.conntrack, ref, ip, this.l4());
      return;
    }
    const field = ip.offset - ETHERNET_HEADER_LEN + this.offload.csumStart + this.offload.csumOffset;
    if (field + 2 > ip.offset + ip.totalLength) return;
    const partial = readU16(ip.buf, field);
    const oldSrc = ip.srcAddr;
    const oldDst = ip.dstAddr;
    if (!natPacket(this.conntrack, ref, ip, this.l4())) return;
    let folded = checksumAdjust32(~partial & 0xffff, oldSrc, ip.srcAddr);
    folded = checksumAdjust32(folded, oldDst, ip.dstAddr);
    writeU16(ip.buf, field, ~folded & 0xffff);
  }

  /**
   * The FORWARD stage's NetworkPolicy verdict for a new connection of the packet in
   * `this.ip`, to `dst:dstPort` after any DNAT.
   */
  private policyAllows(inSlot: number, dst: number, port: number): boolean {
    const policy = this.policy;
    if (policy === undefined) return true;
    const ip = this.ip;
    const proto = ip.protocol;
    const dstPort = proto === IPPROTO.TCP || proto === IPPROTO.UDP ? port : 0;
    const src = ip.srcAddr;
    if (inSlot >= 0 && !policy.egressAllowed(src, dst, proto, dstPort)) return false;
    if (cidrContains(this.node.subnet, dst) && !policy.ingressAllowed(dst, src, proto, dstPort)) return false;
    return true;
  }

  /**
   * MASQUERADE's address: the one of the interface the packet leaves by, as the kernel
   * picks it: the bridge's (the gateway) towards a local pod, flannel.1's (the pod CIDR's
   * network address) towards another node, the uplink's towards the outside.
   */
  private egressAddress(dst: number): number {
    if (cidrContains(this.node.subnet, dst)) return this.node.gatewayIp;
    if (cidrContains(this.node.clusterCidr, dst)) return this.node.subnet.base;
    return this.uplink?.id.addr ?? this.node.gatewayIp;
  }

  /** Masquerade applies to pod traffic whose destination is outside the pod network. */
  private leavesCluster(inSlot: number, fromPeer: Peer | undefined): boolean {
    return inSlot >= 0 && fromPeer === undefined && this.uplink !== undefined && !cidrContains(this.node.clusterCidr, this.ip.dstAddr);
  }

  /**
   * Checks the transport view NAT will rewrite; returns the TCP flags (0 for other
   * protocols) or -1 when the header is malformed.
   */
  private checkL4(): number {
    const ip = this.ip;
    switch (ip.protocol) {
      case IPPROTO.TCP:
        return this.tcp.check(ip.buf, ip.payloadOffset, ip.payloadLength) === PacketOk ? this.tcp.flags : -1;
      case IPPROTO.UDP:
        return this.udp.check(ip.buf, ip.payloadOffset, ip.payloadLength) === PacketOk ? 0 : -1;
      case IPPROTO.ICMP:
        return this.icmp.check(ip.buf, ip.payloadOffset, ip.payloadLength) === PacketOk ? 0 : -1;
      default:
        return 0;
    }
  }

  private l4(): TcpView | UdpView | IcmpView | undefined {
    switch (this.ip.protocol) {
      case IPPROTO.TCP:
        return this.tcp;
      case IPPROTO.UDP:
        return this.udp;
      case IPPROTO.ICMP:
        return this.icmp;
      default:
        return undefined;
    }
  }

  private dropped(reason: Drop): false {
    this.drop(reason);
    return false;
  }

  /** Leaves through the uplink: TTL down, MACs from the neighbour table. */
  private toOutside(buf: Buffer): void {
    const ip = this.ip;
    const size = this.offload.gsoType === VNET_HDR_GSO_NONE ? ip.totalLength : this.gsoSegmentIpLength();
    if (size < 0) return this.drop(Drop.Malformed);
    ip.decrementTtl();
    const ethOffset = ip.offset - ETHERNET_HEADER_LEN;
    const eth = this.eth;
    eth.check(buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength);
    eth.ethertype = ETHERTYPE.IPV4;
    this.counters.forwarded++;
    // The uplink takes plain frames: a super-frame leaves as segments.
    if (hasOffload(this.offload)) {
      return this.softwareOffload(buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength, (seg, len) => this.sendOutside(seg, 0, len, this.ip.dstAddr));
    }
    this.sendOutside(buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength, ip.dstAddr);
  }

  /**
   * Turns the ICMP echo request in `this.eth`/`this.ip` into its reply in place, from
   * `ourMac`: how the node answers ping on its own addresses (the gateway, as cni0's
   * address does; its uplink address). Returns false for anything else.
   */
  private answerEcho(ourMac: number): boolean {
    const eth = this.eth;
    const ip = this.ip;
    const icmp = this.icmp;
    if (
      ip.protocol !== IPPROTO.ICMP ||
      ip.isFragment ||
      icmp.check(ip.buf, ip.payloadOffset, ip.payloadLength) !== PacketOk ||
      icmp.type !== ICMP_ECHO_REQUEST ||
      !icmp.verifyChecksum()
    ) {
      return false;
    }
    eth.dstMac = eth.srcMac;
    eth.srcMac = ourMac;
    const from = ip.srcAddr;
    ip.srcAddr = ip.dstAddr;
    ip.dstAddr = from;
    ip.ttl = 64;
    ip.fillChecksum();
    icmp.type = 0;
    icmp.fillChecksum();
    this.counters.icmpSent++;
    return true;
  }

  /**
   * Routes the IPv4 packet in `this.ip` to a pod on this node: MACs rewritten to come from
   * the gateway, TTL decremented. `fromPeer` is set when the packet came over the overlay
   * (ICMP errors then go back that way).
   */
  private routeToLocalPod(inSlot: number, fromPeer: Peer | undefined, buf: Buffer): void {
    const ip = this.ip;
    const target = this.slotByHost[ip.dstAddr - this.node.subnet.base];
    const pod = target === NO_POD ? undefined : this.slots[target];
    if (pod === undefined) return this.icmpError(inSlot, fromPeer, ICMP_DEST_UNREACHABLE, ICMP_HOST_UNREACHABLE, 0, Drop.NoNeighbour);
    // The Ethernet header ends where the IP header begins (Ethernet view may be the inner one).
    const ethOffset = ip.offset - ETHERNET_HEADER_LEN;
    const eth = this.eth;
    eth.check(buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength);
    eth.dstMac = pod.mac;
    eth.srcMac = this.node.gatewayMac;
    eth.ethertype = ETHERTYPE.IPV4;
    ip.decrementTtl();
    this.counters.forwarded++;
    this.sendToPod(target, buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength);
  }

  private encapsulate(inSlot: number, peer: Peer, buf: Buffer): void {
    const ip = this.ip;
    if (this.overlay === undefined) return this.drop(Drop.NoRoute);
    // A super-frame leaves as segments of gsoSize payload: those must fit the path.
    const size = this.offload.gsoType === VNET_HDR_GSO_NONE ? ip.totalLength : this.gsoSegmentIpLength();
    if (size < 0) return this.drop(Drop.Malformed);
    if (size > this.overlayIpMtu) {
      if (ip.dontFragment) return this.icmpError(inSlot, undefined, ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, this.overlayIpMtu, Drop.TooBig);
      return this.drop(Drop.NeedsFragmentation);
    }
    const eth = this.eth;
    const ethOffset = ip.offset - ETHERNET_HEADER_LEN;
    // A tagged frame leaves its tag behind: the inner header is plain Ethernet.
    eth.check(buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength);
    eth.dstMac = peer.vtepMac;
    eth.srcMac = this.node.vtepMac;
    eth.ethertype = ETHERTYPE.IPV4;
    ip.decrementTtl();
    this.counters.encapsulated++;
    this.sendToPeer(peer, buf, ethOffset, ETHERNET_HEADER_LEN + ip.totalLength);
  }

  /** IP length of one segment of the TCP super-frame in `this.ip`, or -1 when it is not TCP. */
  private gsoSegmentIpLength(): number {
    const ip = this.ip;
    if (this.offload.gsoType !== VNET_HDR_GSO_TCPV4 || ip.protocol !== IPPROTO.TCP) return -1;
    if (this.tcp.check(ip.buf, ip.payloadOffset, ip.payloadLength) !== PacketOk) return -1;
    return ip.headerLength + this.tcp.headerLength + Math.min(this.offload.gsoSize, this.tcp.payloadLength);
  }

  // ---- receive from the uplink -------------------------------------------------------

  receiveFromUplink(batch: RxBatch): void {
    this.offload.flags = 0;
    this.offload.gsoType = VNET_HDR_GSO_NONE;
    this.beginBatch(batch.buf, batch.slab);
    const nowNs = this.nowNs;
    for (let i = 0; i < batch.count; i++) {
      try {
        this.uplinkFrame(batch.buf, batch.offsets[i], batch.lengths[i], nowNs);
      } catch (err) {
        this.internalError(err);
      }
    }
    this.flush();
  }

  private uplinkFrame(buf: Buffer, offset: number, length: number, nowNs: number): void {
    const up = this.uplink!;
    const eth = this.eth;
    if (eth.check(buf, offset, length) !== PacketOk) return this.drop(Drop.Malformed);
    const dstMac = eth.dstMac;
    if (dstMac !== up.id.mac && dstMac !== BROADCAST_MAC && !isMulticastMac(dstMac)) return this.drop(Drop.NotForThisNode);
    const type = eth.ethertype;
    if (type === ETHERTYPE.ARP) return this.uplinkArp(buf, offset, length, nowNs);
    if (type === ETHERTYPE.IPV6) return this.drop(Drop.Ipv6);
    if (type !== ETHERTYPE.IPV4) return this.drop(Drop.UnknownEthertype);
    const ip = this.ip;
    if (ip.check(buf, eth.payloadOffset, length - eth.headerLength) !== PacketOk || ip.version !== 4) return this.drop(Drop.Malformed);
    if (!ip.verifyChecksum()) return this.drop(Drop.BadChecksum);
    const dst = ip.dstAddr;
    if (dst !== up.id.addr && !this.announced.has(dst)) return this.drop(Drop.NotForThisNode);
    // An echo request to the node is for the node: replies to masqueraded pings are echo
    // replies, which answerEcho leaves alone.
    if (dst === up.id.addr && ip.protocol === IPPROTO.ICMP && this.answerEcho(up.id.mac)) {
      return this.sendOnUplink(buf, offset, eth.headerLength + ip.totalLength);
    }
    // Replies to masqueraded connections, NodePorts and LoadBalancer addresses: track()
    // finds the connection or decides a new one, and drops what nothing here listens for.
    if (ip.ttl <= 1) return this.drop(Drop.TtlExceeded);
    this.forward(INGRESS_UPLINK, undefined, buf);
  }

  /** The connection the packet in `this.ip` belongs to, without changing anything. */
  private conntrackReplyTo(): number {
    const kind = readPacketTuple(this.ip, this.orig);
    if (kind === TupleKind.Untracked) return CT_NOT_FOUND;
    return this.conntrack.lookupTuple(this.orig, this.nowNs);
  }

  /** Learns the sender, releases a frame that waited for it, answers for our addresses. */
  private uplinkArp(buf: Buffer, offset: number, length: number, nowNs: number): void {
    const up = this.uplink!;
    const eth = this.eth;
    const arp = this.arp;
    if (arp.check(buf, eth.payloadOffset, length - eth.headerLength) !== PacketOk) return this.drop(Drop.Malformed);
    const sender = arp.senderIp;
    if (cidrContains(up.id.network, sender) && sender !== up.id.addr) {
      const held = this.neighbours.learn(sender, arp.senderMac, nowNs);
      if (held !== undefined) this.sendToNeighbour(held.frame, 0, held.length, arp.senderMac);
    }
    const target = arp.targetIp;
    if (arp.operation !== ARP_OP.REQUEST || (target !== up.id.addr && !this.announced.has(target))) return;
    emitArpReply(arp, up.id.mac, buf, eth.payloadOffset);
    eth.dstMac = arp.targetMac;
    eth.srcMac = up.id.mac;
    this.counters.arpReplies++;
    this.sendOnUplink(buf, offset, eth.headerLength + ARP_LEN);
  }

  /**
   * Sends the IPv4 packet framed at `offset` out of the uplink towards `dstAddr`: the
   * neighbour's MAC when known, otherwise the frame waits while an ARP request goes out.
   */
  private sendOutside(buf: Uint8Array, offset: number, length: number, dstAddr: number): void {
    const up = this.uplink;
    if (up === undefined) return this.drop(Drop.NoRoute);
    const nextHop = cidrContains(up.id.network, dstAddr) ? dstAddr : up.id.gateway;
    const nowNs = this.nowNs;
    const mac = this.neighbours.lookup(nextHop, nowNs);
    if (mac >= 0) return this.sendToNeighbour(buf, offset, length, mac);
    if (this.neighbours.hold(nextHop, buf, offset, length, nowNs)) this.sendArpRequest(nextHop);
  }

  private sendToNeighbour(buf: Uint8Array, offset: number, length: number, mac: number): void {
    const eth = this.eth;
    eth.check(buf, offset, length);
    eth.dstMac = mac;
    eth.srcMac = this.uplink!.id.mac;
    this.sendOnUplink(buf, offset, length);
  }

  private sendArpRequest(target: number): void {
    const up = this.uplink!;
    const out = this.scratch;
    emitEthernet({ dstMac: BROADCAST_MAC, srcMac: up.id.mac, ethertype: ETHERTYPE.ARP }, out, 0);
    emitArp({ operation: ARP_OP.REQUEST, senderMac: up.id.mac, senderIp: up.id.addr, targetMac: 0, targetIp: target }, out, ETHERNET_HEADER_LEN);
    this.sendOnUplink(out, 0, ETHERNET_HEADER_LEN + ARP_LEN);
  }

  private sendOnUplink(buf: Uint8Array, offset: number, length: number): void {
    const up = this.uplink!;
    if (this.tap !== undefined) this.tap.uplinkFrame(buf, offset, length);
    if (!up.port.send(buf, offset, length, this.offload, this.slabOf(buf))) return this.drop(Drop.TxQueueFull);
    this.uplinkDirty = true;
  }

  // ---- receive from the overlay ------------------------------------------------------

  receiveFromOverlay(batch: DatagramBatch): void {
    this.beginBatch(batch.buf, batch.slab);
    for (let i = 0; i < batch.count; i++) {
      try {
        this.overlayDatagram(batch.buf, batch.offsets[i], batch.lengths[i], batch.addrs[i]);
      } catch (err) {
        this.internalError(err);
      }
    }
    this.flush();
  }

  private overlayDatagram(buf: Buffer, offset: number, length: number, srcAddr: number): void {
    const vx = this.vxlan;
    if (vx.check(buf, offset, length) !== PacketOk) return this.drop(Drop.Malformed);
    if (!vx.vniValid || vx.vni !== this.node.vni) return this.drop(Drop.WrongVni);
    const peer = this.peers.peerByUnderlay(srcAddr);
    // The source port is the sender's choice (the kernel hashes flows into it), so only the address is checked.
    if (peer === undefined) return this.drop(Drop.UnknownPeer);
    if (this.tap !== undefined) this.tap.overlayFrame(peer, false, buf, vx.payloadOffset, vx.payloadLength);
    this.counters.decapsulated++;
    const inner = this.innerEth;
    if (inner.check(buf, vx.payloadOffset, vx.payloadLength) !== PacketOk) return this.drop(Drop.Malformed);
    if (inner.dstMac !== this.node.vtepMac) return this.drop(Drop.NotForThisNode);
    if (inner.ethertype !== ETHERTYPE.IPV4) return this.drop(inner.ethertype === ETHERTYPE.IPV6 ? Drop.Ipv6 : Drop.UnknownEthertype);
    const ip = this.ip;
    if (ip.check(buf, inner.payloadOffset, inner.payloadLength) !== PacketOk || ip.version !== 4) return this.drop(Drop.Malformed);
    if (!ip.verifyChecksum()) return this.drop(Drop.BadChecksum);
    if (!cidrContains(this.node.subnet, ip.dstAddr)) return this.drop(Drop.NotForThisNode);
    if (!decodeSuperFrameBits(buf, offset, ip.headerLength, ip.protocol, this.offload)) return this.drop(Drop.Malformed);
    if (ip.ttl <= 1) return this.icmpError(INGRESS_OVERLAY, peer, ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED, 0, Drop.TtlExceeded);
    this.forward(INGRESS_OVERLAY, peer, buf);
  }

  // ---- transmit ----------------------------------------------------------------------

  private sendToPod(slot: number, buf: Uint8Array, offset: number, length: number): void {
    const pod = this.slots[slot];
    if (pod === undefined) return this.drop(Drop.NoNeighbour);
    if (!pod.port.offload && hasOffload(this.offload)) {
      return this.softwareOffload(buf, offset, length, (seg, len) => this.sendToPod(slot, seg, 0, len));
    }
    if (this.tap !== undefined) this.tap.podFrame(slot, buf, offset, length);
    if (!pod.port.send(buf, offset, length, this.offload, this.slabOf(buf))) return this.drop(Drop.TxQueueFull);
    this.markDirty(slot);
  }

  private sendToPeer(peer: Peer, buf: Uint8Array, offset: number, length: number): void {
    const link = this.overlay!;
    if (!link.carriesSuperFrames && hasOffload(this.offload)) {
      return this.softwareOffload(buf, offset, length, (seg, len) => this.sendToPeer(peer, seg, 0, len));
    }
    // Its own buffer: the frame may be in `scratch` (an ICMP error going back over the overlay).
    const header = this.vxlanHeader;
    emitVxlan({ vni: this.node.vni }, header, 0);
    if (hasOffload(this.offload)) encodeSuperFrameBits(header, 0, this.offload);
    if (!link.send(header, 0, VXLAN_HEADER_LEN, buf, offset, length, peer.underlayAddr, peer.underlayPort, this.offload, this.slabOf(buf))) {
      return this.drop(Drop.TxQueueFull);
    }
    if (this.tap !== undefined) this.tap.overlayFrame(peer, true, buf, offset, length);
    this.overlayDirty = true;
  }

  /**
   * Does in software what the egress cannot take as metadata: finishes a partial checksum,
   * or cuts a super-frame into segments, each handed to `send` with no offload left.
   */
  private softwareOffload(buf: Uint8Array, offset: number, length: number, send: (seg: Uint8Array, len: number) => void): void {
    const offload = this.offload;
    if (offload.gsoType === VNET_HDR_GSO_NONE) {
      if (completeChecksum(buf, offset, length, offload.csumStart, offload.csumOffset) !== GsoError.Ok) return this.drop(Drop.Malformed);
      offload.flags = 0;
      return send(buf.subarray(offset, offset + length), length);
    }
    const gsoSize = offload.gsoSize;
    offload.flags = 0;
    offload.gsoType = VNET_HDR_GSO_NONE;
    if (segmentTcpV4(buf, offset, length, gsoSize, this.segment, send) !== GsoError.Ok) this.drop(Drop.Malformed);
  }

  private flood(inSlot: number, buf: Uint8Array, offset: number, length: number): void {
    this.counters.flooded++;
    for (let slot = 0; slot < this.slots.length; slot++) {
      if (slot !== inSlot && this.slots[slot] !== undefined) this.sendToPod(slot, buf, offset, length);
    }
  }

  private markDirty(slot: number): void {
    for (let i = 0; i < this.dirtyCount; i++) if (this.dirtySlots[i] === slot) return;
    this.dirtySlots[this.dirtyCount++] = slot;
  }

  /** Expires idle connections, a bounded number of entries per call (the agent ticks it). */
  reap(budget: number): number {
    return this.conntrack.expire(this.clock(), budget);
  }

  /** Hands every queued frame to the kernel; by-reference frames must go before the batch ends. */
  private flush(): void {
    this.rxBuf = undefined;
    this.rxSlab = 0;
    for (let i = 0; i < this.dirtyCount; i++) this.slots[this.dirtySlots[i]]?.port.flush();
    this.dirtyCount = 0;
    if (this.overlayDirty) {
      this.overlay?.flush();
      this.overlayDirty = false;
    }
    if (this.uplinkDirty) {
      this.uplink?.port.flush();
      this.uplinkDirty = false;
    }
  }

  private drop(reason: Drop): void {
    this.drops[reason]++;
  }

  /**
   * Counts `reason` and sends an ICMP error about the packet in `this.ip` back to where it
   * came from: the pod in `inSlot`, or over the overlay to `fromPeer`. Source is the
   * gateway address, as the kernel router would use for an error it generates.
   */
  private icmpError(inSlot: number, fromPeer: Peer | undefined, type: number, code: number, mtu: number, reason: Drop): void {
    this.drop(reason);
    const ip = this.ip;
    // Never answer an ICMP error with an error (RFC 1122 3.2.2), nor a non-first fragment.
    if (ip.fragmentOffsetBytes !== 0) return;
    if (ip.protocol === IPPROTO.ICMP && this.icmp.check(ip.buf, ip.payloadOffset, ip.payloadLength) === PacketOk && this.icmp.isError) return;
    const quoted = Math.min(ip.totalLength, ip.headerLength + ICMP_QUOTE_EXTRA);
    const out = this.scratch;
    const ipAt = ETHERNET_HEADER_LEN;
    const icmpAt = ipAt + IPV4_HEADER_LEN;
    out.set(ip.buf.subarray(ip.offset, ip.offset + quoted), icmpAt + ICMP_HEADER_LEN);
    const repr: IcmpRepr =
      type === ICMP_TIME_EXCEEDED ? { kind: 'timeExceeded', code } : { kind: 'destUnreachable', code, mtu };
    emitIcmp(repr, out, icmpAt, quoted);
    const payloadLength = ICMP_HEADER_LEN + quoted;
    emitIpv4(
      {
        src: this.node.gatewayIp,
        dst: ip.srcAddr,
        protocol: IPPROTO.ICMP,
        ttl: 64,
        payloadLength,
        dscp: 0x30, // CS6 (0xc0 in the TOS byte), as Linux marks the ICMP errors it generates.
        ecn: 0,
        identification: 0,
        dontFragment: false,
        moreFragments: false,
        fragmentOffsetBytes: 0,
      },
      out,
      ipAt,
    );
    const frameLength = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + payloadLength;
    this.counters.icmpSent++;
    this.offload.flags = 0;
    this.offload.gsoType = VNET_HDR_GSO_NONE;
    if (fromPeer !== undefined) {
      emitEthernet({ dstMac: fromPeer.vtepMac, srcMac: this.node.vtepMac, ethertype: ETHERTYPE.IPV4 }, out, 0);
      this.sendToPeer(fromPeer, out, 0, frameLength);
      return;
    }
    if (inSlot === INGRESS_UPLINK && this.uplink !== undefined) {
      // From the node's own address there, as the kernel answers on that interface.
      out.writeUInt32BE(this.uplink.id.addr, ipAt + 12);
      out.writeUInt16BE(0, ipAt + 10);
      out.writeUInt16BE(internetChecksum(out, ipAt, IPV4_HEADER_LEN), ipAt + 10);
      emitEthernet({ dstMac: 0, srcMac: this.uplink.id.mac, ethertype: ETHERTYPE.IPV4 }, out, 0);
      this.sendOutside(out, 0, frameLength, out.readUInt32BE(ipAt + 16));
      return;
    }
    const pod = this.slots[inSlot];
    if (pod === undefined) return;
    emitEthernet({ dstMac: pod.mac, srcMac: this.node.gatewayMac, ethertype: ETHERTYPE.IPV4 }, out, 0);
    this.sendToPod(inSlot, out, 0, frameLength);
  }
}

/** The overlay's UDP socket as the pipeline uses it. */
export interface OverlayLink {
  /** True on a loopback underlay, where GSO super-frames travel whole in one datagram. */
  readonly carriesSuperFrames: boolean;
  start(handler: (batch: DatagramBatch) => void): void;
  /** Queues header + frame as one datagram to addr:port; false when dropped. */
  send(
    header: Uint8Array,
    headerOffset: number,
    headerLength: number,
    frame: Uint8Array,
    frameOffset: number,
    frameLength: number,
    addr: number,
    port: number,
    offload: TxOffload,
    /** `frame`'s slab number when it is a native receive slab (by reference), else 0. */
    frameSlab?: number,
  ): boolean;
  flush(): void;
  close(): void;
}
