/**
 * A node's pcapng capture: one interface per pod (named after the pod) and one per overlay
 * peer (named `vxlan:<node>`), written by the pipeline's FrameTap.
 *
 * podwire's overlay socket hands the kernel only the VXLAN header and the inner frame; the
 * kernel adds UDP, IPv4 and (on a real NIC) Ethernet. So that Wireshark and tshark dissect
 * overlay traffic as they would on a real node's uplink, the capture writes each overlay
 * frame with outer Ethernet/IPv4/UDP headers rebuilt from the peer's lease: UDP port 4789,
 * the configured VNI, the underlay addresses.
 */
import { formatIpv4 } from '../packet/addr.js';
import { emitEthernet, ETHERNET_HEADER_LEN, ETHERTYPE } from '../packet/ethernet.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN } from '../packet/ipv4.js';
import { emitUdp, UDP_HEADER_LEN } from '../packet/udp.js';
import { emitVxlan, VXLAN_HEADER_LEN } from '../packet/vxlan.js';
import { CaptureWriter, type InterfaceSpec } from '../pcap/writer.js';
import type { Peer } from '../overlay/peers.js';
import type { FrameTap } from '../datapath/pipeline.js';

const OUTER_LEN = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + VXLAN_HEADER_LEN;

export interface CapturePod {
  slot: number;
  name: string;
  ip: number;
}

export interface CaptureNode {
  name: string;
  underlayAddr: number;
  underlayPort: number;
  vni: number;
  /** The node's address on the outside network, when it has an uplink. */
  uplink?: number;
}

/** A made-up but stable MAC for an underlay address: 02:00 + the address (locally administered). */
function underlayMac(addr: number): number {
  return 0x020000000000 + addr;
}

/** Room `frameOverlay` needs in front of an inner frame. */
export const OVERLAY_CAPTURE_HEADROOM = OUTER_LEN;

/**
 * Writes into `out` the VXLAN datagram an inner frame crossed the underlay in, with outer
 * Ethernet, IPv4 and UDP headers rebuilt from the peer's lease, and returns its length
 * (0 when it does not fit in `out`).
 */
export function frameOverlay(out: Buffer, node: CaptureNode, peer: Peer, outbound: boolean, frame: Uint8Array, offset: number, length: number): number {
  if (length > out.length - OUTER_LEN) return 0;
  const srcAddr = outbound ? node.underlayAddr : peer.underlayAddr;
  const dstAddr = outbound ? peer.underlayAddr : node.underlayAddr;
  const srcPort = outbound ? node.underlayPort : peer.underlayPort;
  const dstPort = outbound ? peer.underlayPort : node.underlayPort;
  out.set(frame.subarray(offset, offset + length), OUTER_LEN);
  emitEthernet({ dstMac: underlayMac(dstAddr), srcMac: underlayMac(srcAddr), ethertype: ETHERTYPE.IPV4 }, out, 0);
  const udpLength = UDP_HEADER_LEN + VXLAN_HEADER_LEN + length;
  emitIpv4(
    { src: srcAddr, dst: dstAddr, protocol: IPPROTO.UDP, ttl: 64, payloadLength: udpLength, dscp: 0, ecn: 0, identification: 0, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 },
    out,
    ETHERNET_HEADER_LEN,
  );
  emitVxlan({ vni: node.vni }, out, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN);
  // Checksum 0 (none) is what Linux sends for VXLAN over IPv4 by default (udpcsum off).
  emitUdp({ srcPort, dstPort }, out, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN, VXLAN_HEADER_LEN + length);
  return OUTER_LEN + length;
}

export class NodeCapture implements FrameTap {
  private readonly writer: CaptureWriter;
  private readonly podInterface = new Map<number, number>();
  /** Which pod each slot's interface belongs to: a slot is reused after its pod is gone. */
  private readonly podNames = new Map<number, string>();
  private readonly peerInterface = new Map<string, number>();
  private uplinkInterface = -1;
  private readonly scratch = Buffer.alloc(OUTER_LEN + 65536);

  constructor(
    path: string,
    private readonly node: CaptureNode,
    pods: readonly CapturePod[],
    peers: readonly Peer[],
  ) {
    const interfaces: InterfaceSpec[] = [];
    for (const pod of pods) {
      this.podInterface.set(pod.slot, interfaces.length);
      this.podNames.set(pod.slot, pod.name);
      interfaces.push({ name: pod.name, description: `eth0 of pod ${pod.name} (${formatIpv4(pod.ip)}) on ${node.name}` });
    }
    for (const peer of peers) {
      this.peerInterface.set(peer.node, interfaces.length);
      interfaces.push({
        name: `vxlan:${peer.node}`,
        description: `VXLAN VNI ${node.vni} between ${node.name} (${formatIpv4(node.underlayAddr)}) and ${peer.node} (${formatIpv4(peer.underlayAddr)})`,
      });
    }
    if (node.uplink !== undefined) {
      this.uplinkInterface = interfaces.length;
      interfaces.push({ name: `uplink:${node.name}`, description: `${node.name}'s uplink on the outside network (${formatIpv4(node.uplink)})` });
    }
    this.writer = new CaptureWriter({ path, format: 'pcapng', interfaces });
  }

  /** Declares interfaces for pods that joined since the capture began. */
  addPods(pods: readonly CapturePod[]): void {
    for (const pod of pods) {
      if (this.podInterface.has(pod.slot) && this.podNames.get(pod.slot) === pod.name) continue;
      const id = this.writer.addInterface({ name: pod.name, description: `eth0 of pod ${pod.name} (${formatIpv4(pod.ip)}) on ${this.node.name}` });
      this.podInterface.set(pod.slot, id);
      this.podNames.set(pod.slot, pod.name);
    }
  }

  get stats() {
    return this.writer.stats;
  }

  podFrame(slot: number, buf: Uint8Array, offset: number, length: number, comment?: string): void {
    const id = this.podInterface.get(slot);
    if (id !== undefined) this.writer.write(id, buf.subarray(offset, offset + length), comment);
  }

  uplinkFrame(buf: Uint8Array, offset: number, length: number): void {
    if (this.uplinkInterface >= 0) this.writer.write(this.uplinkInterface, buf.subarray(offset, offset + length));
  }

  overlayFrame(peer: Peer, outbound: boolean, frame: Uint8Array, offset: number, length: number): void {
    const id = this.peerInterface.get(peer.node);
    if (id === undefined) return;
    const framed = frameOverlay(this.scratch, this.node, peer, outbound, frame, offset, length);
    if (framed > 0) this.writer.write(id, this.scratch.subarray(0, framed));
  }

  flush(): void {
    this.writer.flush();
  }

  close(): void {
    this.writer.close();
  }
}
