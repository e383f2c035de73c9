/**
 * Whole clusters of forwarding paths in memory, wired as the node agent wires them: one
 * Pipeline per node with the cluster's identities, a FakePort per pod and per uplink, an
 * overlay hub between the nodes' VTEPs, the compiled service table and NetworkPolicy.
 * Frames go in through the ports and come out in their `sent` lists; nothing touches the
 * kernel. Plus builders for the frames a pod, the outside or a peer would send.
 */
import { cidrContains } from '../../src/packet/addr.js';
import { emitArp, ARP_OP } from '../../src/packet/arp.js';
import { emitEthernet, ETHERNET_HEADER_LEN, ETHERTYPE } from '../../src/packet/ethernet.js';
import { emitIcmp } from '../../src/packet/icmp.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN } from '../../src/packet/ipv4.js';
import { emitTcp, TCP_SYN } from '../../src/packet/tcp.js';
import { emitUdp, UDP_HEADER_LEN } from '../../src/packet/udp.js';
import { emitVxlan, VXLAN_HEADER_LEN } from '../../src/packet/vxlan.js';
import type { Cluster, Node, Pod } from '../../src/cluster/model.js';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { compile as compilePolicy } from '../../src/kube/policy.js';
import { LiveServiceTable } from '../../src/kube/service-table.js';
import type { ServiceRuleInputs } from '../../src/kube/kube-proxy.js';
import { Pipeline } from '../../src/datapath/pipeline.js';
import type { FlowOptions } from '../../src/datapath/flow-recorder.js';
import type { OverlayLink } from '../../src/overlay/link.js';
import type { DatagramBatch } from '../../src/port/port.js';
import { FakePort } from './fake-port.js';

export const VXLAN_PORT = 4789;
export const UNDERLAY_MTU = 1500;

/** Every VTEP of a test cluster: datagrams queued by one are delivered to their addressee at flush. */
export class OverlayHub {
  readonly links = new Map<number, HubLink>();
  /** Every datagram that crossed, for tests that look at the underlay. */
  readonly crossed: { from: number; to: number; data: Buffer }[] = [];

  link(addr: number, port = VXLAN_PORT): HubLink {
    const l = new HubLink(this, addr, port);
    this.links.set(addr, l);
    return l;
  }

  /** Delivers a datagram as if `srcAddr:srcPort` had sent it (forgeries included). */
  inject(to: number, srcAddr: number, srcPort: number, datagram: Buffer): void {
    this.links.get(to)?.deliver([datagram], srcAddr, srcPort);
  }
}

export class HubLink implements OverlayLink {
  readonly carriesSuperFrames = false;
  private handler: ((batch: DatagramBatch) => void) | undefined;
  private readonly queued: { data: Buffer; addr: number; port: number }[] = [];

  constructor(
    private readonly hub: OverlayHub,
    readonly addr: number,
    readonly port: number,
  ) {}

  start(handler: (batch: DatagramBatch) => void): void {
    this.handler = handler;
  }

  send(h: Uint8Array, ho: number, hl: number, f: Uint8Array, fo: number, fl: number, addr: number, port: number): boolean {
    this.queued.push({ data: Buffer.concat([h.subarray(ho, ho + hl), f.subarray(fo, fo + fl)]), addr, port });
    return true;
  }

  flush(): void {
    for (const d of this.queued.splice(0)) {
      this.hub.crossed.push({ from: this.addr, to: d.addr, data: d.data });
      const target = this.hub.links.get(d.addr);
      if (target !== undefined && target.port === d.port) target.deliver([d.data], this.addr, this.port);
    }
  }

  deliver(datagrams: Buffer[], srcAddr: number, srcPort: number): void {
    const n = datagrams.length;
    const stride = 70_000;
    const buf = Buffer.alloc(n * stride);
    const batch: DatagramBatch = {
      buf,
      slab: 0,
      count: n,
      offsets: new Uint32Array(n),
      lengths: new Uint32Array(n),
      addrs: new Uint32Array(n).fill(srcAddr),
      ports: new Uint16Array(n).fill(srcPort),
    };
    datagrams.forEach((d, i) => {
      buf.set(d, i * stride);
      batch.offsets[i] = i * stride;
      batch.lengths[i] = d.length;
    });
    this.handler?.(batch);
  }

  close(): void {}
}

export interface TestNode {
  node: Node;
  pipeline: Pipeline;
  uplink: FakePort;
  inputs: ServiceRuleInputs;
  /** Pod ports by "namespace/name". */
  ports: Map<string, FakePort>;
}

export interface TestCluster {
  cluster: Cluster;
  hub: OverlayHub;
  nodes: TestNode[];
  /** Sets the clock every pipeline reads (ns). */
  setTime(ns: number): void;
  nodeOf(pod: Pod): TestNode;
  pod(name: string, namespace?: string): Pod;
  port(pod: Pod): FakePort;
  /** Everything sent on every port since the last call, emptied. */
  drain(): void;
}

export interface WireOptions {
  random?: () => number;
  conntrackMax?: number;
  floodRate?: number;
  /** Readiness of "namespace/name"; every pod is ready when not given. */
  ready?: (key: string) => boolean;
  /** The flow ring's options (observe), `false` for none. */
  flows?: FlowOptions | false;
}

export function wireCluster(cluster: Cluster, options: WireOptions = {}): TestCluster {
  let now = 1_000_000_000;
  const hub = new OverlayHub();
  const readiness = new Map(cluster.pods.map((p) => [`${p.namespace}/${p.name}`, options.ready?.(`${p.namespace}/${p.name}`) ?? true]));
  const endpoints = computeEndpoints(cluster, readiness);
  const nodes = cluster.nodes.map((node): TestNode => {
    const pipeline = new Pipeline(
      {
        name: node.name,
        subnet: node.podCIDR,
        clusterCidr: cluster.settings.podCIDR,
        gatewayIp: node.gateway,
        gatewayMac: node.gatewayMac,
        vtepMac: node.vtepMac,
        vni: cluster.settings.vni,
        underlayMtu: UNDERLAY_MTU,
        dnsIp: cluster.settings.dnsIP,
      },
      () => now,
      { random: options.random, conntrackMax: options.conntrackMax ?? 4096, seed: node.index, floodRate: options.floodRate, flows: options.flows },
    );
    for (const other of cluster.nodes) {
      if (other !== node) pipeline.peers.add({ node: other.name, subnet: other.podCIDR, vtepMac: other.vtepMac, underlayAddr: other.underlay, underlayPort: VXLAN_PORT });
    }
    pipeline.attachOverlay(hub.link(node.underlay));
    const uplink = new FakePort(`uplink-${node.name}`);
    pipeline.attachUplink(uplink, { addr: node.externalIP, mac: node.externalMac, network: cluster.settings.externalCIDR, gateway: cluster.settings.externalGateway });
    const ports = new Map<string, FakePort>();
    for (const pod of cluster.pods.filter((p) => p.node === node.name)) {
      const port = new FakePort(`${pod.namespace}/${pod.name}`);
      pipeline.addPod(`${pod.namespace}/${pod.name}`, pod.ip, pod.mac, port);
      ports.set(`${pod.namespace}/${pod.name}`, port);
    }
    const inputs: ServiceRuleInputs = { cluster, endpoints, nodeName: node.name, nodeAddress: node.externalIP };
    pipeline.services = new LiveServiceTable(inputs);
    pipeline.policy = compilePolicy(cluster, { node: node.name });
    return { node, pipeline, uplink, inputs, ports };
  });
  const byName = new Map(nodes.map((n) => [n.node.name, n]));
  return {
    cluster,
    hub,
    nodes,
    setTime: (ns) => (now = ns),
    nodeOf: (pod) => byName.get(pod.node)!,
    pod(name, namespace = 'default') {
      const pod = cluster.pods.find((p) => p.namespace === namespace && (p.name === name || p.name.startsWith(`${name}-`)));
      if (pod === undefined) throw new Error(`no pod ${namespace}/${name}`);
      return pod;
    },
    port(pod) {
      return byName.get(pod.node)!.ports.get(`${pod.namespace}/${pod.name}`)!;
    },
    drain() {
      for (const n of nodes) {
        n.uplink.take();
        for (const p of n.ports.values()) p.take();
      }
      hub.crossed.length = 0;
    },
  };
}

/** The MAC a pod puts on a frame to `dst`: the neighbour's own on its subnet, else the gateway's. */
export function nextMac(cluster: Cluster, from: Pod, dst: number): number {
  const node = cluster.nodes.find((n) => n.name === from.node)!;
  // Its own address it would reach over lo; through eth0 only by way of the gateway.
  if (!cidrContains(node.podCIDR, dst) || dst === from.ip) return node.gatewayMac;
  return cluster.pods.find((p) => p.ip === dst)?.mac ?? node.gatewayMac;
}

export interface PacketSpec {
  srcMac: number;
  dstMac: number;
  src: number;
  dst: number;
  ttl?: number;
  df?: boolean;
  id?: number;
}

/** An Ethernet + IPv4 frame around an L4 payload the caller has written at 34. */
function ipFrame(spec: PacketSpec, protocol: number, l4Length: number): Buffer {
  const frame = Buffer.alloc(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + l4Length);
  emitEthernet({ dstMac: spec.dstMac, srcMac: spec.srcMac, ethertype: ETHERTYPE.IPV4 }, frame, 0);
  emitIpv4(
    { src: spec.src, dst: spec.dst, protocol, ttl: spec.ttl ?? 64, payloadLength: l4Length, dscp: 0, ecn: 0, identification: spec.id ?? 1, dontFragment: spec.df ?? true, moreFragments: false, fragmentOffsetBytes: 0 },
    frame,
    ETHERNET_HEADER_LEN,
  );
  return frame;
}

export function tcpSyn(spec: PacketSpec, sport: number, dport: number): Buffer {
  const frame = ipFrame(spec, IPPROTO.TCP, 20);
  emitTcp({ srcPort: sport, dstPort: dport, seq: 1000, ack: 0, flags: TCP_SYN, window: 64240, urgent: 0, options: { sackPermitted: false } }, frame, 34, 0, { src: spec.src, dst: spec.dst });
  return frame;
}

export function tcpSegment(spec: PacketSpec, sport: number, dport: number, flags: number, seq: number, ack: number, payload = 0): Buffer {
  const frame = ipFrame(spec, IPPROTO.TCP, 20 + payload);
  frame.fill(0x61, 54);
  emitTcp({ srcPort: sport, dstPort: dport, seq, ack, flags, window: 64240, urgent: 0, options: { sackPermitted: false } }, frame, 34, payload, { src: spec.src, dst: spec.dst });
  return frame;
}

export function udpDatagram(spec: PacketSpec, sport: number, dport: number, payload = 16): Buffer {
  const frame = ipFrame(spec, IPPROTO.UDP, UDP_HEADER_LEN + payload);
  for (let i = 0; i < payload; i++) frame[42 + i] = i & 0xff;
  emitUdp({ srcPort: sport, dstPort: dport }, frame, 34, payload, { src: spec.src, dst: spec.dst });
  return frame;
}

export function echoRequest(spec: PacketSpec, data = 56, id = 7, seq = 1): Buffer {
  const frame = ipFrame(spec, IPPROTO.ICMP, 8 + data);
  frame.fill(0x61, 42);
  emitIcmp({ kind: 'echoRequest', id, seq }, frame, 34, data);
  return frame;
}

/** A raw IPv4 packet of any protocol number (GRE, SCTP...): what conntrack does not follow. */
export function rawIp(spec: PacketSpec, protocol: number, payload = 16): Buffer {
  return ipFrame(spec, protocol, payload);
}

export function arpFrame(srcMac: number, dstMac: number, operation: number, senderMac: number, senderIp: number, targetMac: number, targetIp: number): Buffer {
  const frame = Buffer.alloc(42);
  emitEthernet({ dstMac, srcMac, ethertype: ETHERTYPE.ARP }, frame, 0);
  emitArp({ operation, senderMac, senderIp, targetMac, targetIp }, frame, 14);
  return frame;
}

export { ARP_OP };

/**
 * Cuts the IPv4 packet of `frame` into fragments carrying `sizes` payload bytes each (the
 * last takes the rest), each framed like the original: what a sender's kernel emits.
 */
export function fragments(frame: Buffer, sizes: number[]): Buffer[] {
  const ihl = (frame[14] & 0x0f) * 4;
  const total = frame.readUInt16BE(16);
  const payload = frame.subarray(14 + ihl, 14 + total);
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < payload.length; i++) {
    const size = i < sizes.length ? sizes[i] : payload.length - at;
    const piece = payload.subarray(at, at + size);
    const more = at + piece.length < payload.length;
    const f = Buffer.alloc(14 + ihl + piece.length);
    frame.copy(f, 0, 0, 14 + ihl);
    piece.copy(f, 14 + ihl);
    f.writeUInt16BE(ihl + piece.length, 16);
    f.writeUInt16BE((more ? 0x2000 : 0) | (at / 8), 20);
    f.writeUInt16BE(0, 24);
    let sum = 0;
    for (let j = 14; j < 14 + ihl; j += 2) sum += f.readUInt16BE(j);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    f.writeUInt16BE(~sum & 0xffff, 24);
    out.push(f);
    at += piece.length;
  }
  return out;
}

/** A VXLAN datagram as a peer's VTEP sends it: header, inner Ethernet from its VTEP to ours, the IP packet of `frame`. */
export function vxlanFrom(cluster: Cluster, from: Node, to: Node, frame: Buffer): Buffer {
  const out = Buffer.alloc(VXLAN_HEADER_LEN + frame.length);
  emitVxlan({ vni: cluster.settings.vni }, out, 0);
  frame.copy(out, VXLAN_HEADER_LEN);
  emitEthernet({ dstMac: to.vtepMac, srcMac: from.vtepMac, ethertype: ETHERTYPE.IPV4 }, out, VXLAN_HEADER_LEN);
  return out;
}
