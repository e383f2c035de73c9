/**
 * Hand-built frames for capture tests: Ethernet, IPv4 (header checksum filled), UDP and
 * TCP (checksums over the pseudo-header), VXLAN. Deliberately independent of the packet
 * views being written elsewhere; only the checksum helpers and emitUdp are shared.
 */
import { finishChecksum, internetChecksum, onesComplementSum, pseudoHeaderSum } from '../../src/packet/checksum.js';
import { emitUdp, IPPROTO_UDP, UDP_HEADER_LEN } from '../../src/packet/udp.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const IPPROTO_TCP = 6;
export const VXLAN_PORT = 4789;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Dotted quad to a uint32; throws on anything else (test input is ours). */
export function ip(text: string): number {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 address ${text}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function mac(text: string): Buffer {
  const bytes = Buffer.from(text.replace(/:/g, ''), 'hex');
  if (bytes.length !== 6) throw new Error(`bad MAC address ${text}`);
  return bytes;
}

export function ethernet(dst: string, src: string, etherType: number, payload: Uint8Array): Buffer {
  const frame = Buffer.alloc(14 + payload.length);
  mac(dst).copy(frame, 0);
  mac(src).copy(frame, 6);
  frame.writeUInt16BE(etherType, 12);
  frame.set(payload, 14);
  return frame;
}

export interface Ipv4Fields {
  src: string;
  dst: string;
  protocol: number;
  ttl?: number;
  id?: number;
}

/** A 20-byte IPv4 header (DF set, no options) with its checksum, then the payload. */
export function ipv4(fields: Ipv4Fields, payload: Uint8Array): Buffer {
  const packet = Buffer.alloc(20 + payload.length);
  packet[0] = 0x45;
  packet.writeUInt16BE(packet.length, 2);
  packet.writeUInt16BE(fields.id ?? 0x1234, 4);
  packet.writeUInt16BE(0x4000, 6);
  packet[8] = fields.ttl ?? 64;
  packet[9] = fields.protocol;
  packet.writeUInt32BE(ip(fields.src), 12);
  packet.writeUInt32BE(ip(fields.dst), 16);
  packet.writeUInt16BE(internetChecksum(packet, 0, 20), 10);
  packet.set(payload, 20);
  return packet;
}

/** A UDP datagram with its checksum over the IPv4 pseudo-header. */
export function udp(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const datagram = Buffer.alloc(UDP_HEADER_LEN + payload.length);
  datagram.set(payload, UDP_HEADER_LEN);
  emitUdp({ srcPort, dstPort }, datagram, 0, payload.length, { src: ip(src), dst: ip(dst) });
  return datagram;
}

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
}

/** A 20-byte TCP header (no options) with its checksum, then the payload. */
export function tcp(src: string, dst: string, fields: TcpFields, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const segment = Buffer.alloc(20 + payload.length);
  segment.writeUInt16BE(fields.srcPort, 0);
  segment.writeUInt16BE(fields.dstPort, 2);
  segment.writeUInt32BE(fields.seq >>> 0, 4);
  segment.writeUInt32BE((fields.ack ?? 0) >>> 0, 8);
  segment[12] = 5 << 4;
  segment[13] = fields.flags;
  segment.writeUInt16BE(fields.window ?? 64240, 14);
  segment.set(payload, 20);
  const sum = onesComplementSum(segment, 0, segment.length, pseudoHeaderSum(ip(src), ip(dst), IPPROTO_TCP, segment.length));
  segment.writeUInt16BE(finishChecksum(sum), 16);
  return segment;
}

/** The 8-byte VXLAN header (RFC 7348, I flag set) followed by the inner frame. */
export function vxlan(vni: number, inner: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header[0] = 0x08;
  header.writeUIntBE(vni, 4, 3);
  return Buffer.concat([header, inner]);
}

/** Ethernet / IPv4 / UDP in one call. */
export function udpFrame(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const packet = ipv4({ src, dst, protocol: IPPROTO_UDP }, udp(src, dst, srcPort, dstPort, payload));
  return ethernet('02:00:00:00:00:02', '02:00:00:00:00:01', ETHERTYPE_IPV4, packet);
}

export interface VxlanTcpOptions {
  vni: number;
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
}

/**
 * What podwire sends between nodes: node 1 (192.168.50.1) to node 2 (192.168.50.2) on
 * UDP 4789, carrying pod 10.244.1.2's TCP segment to pod 10.244.2.3.
 */
export function vxlanTcpFrame(options: VxlanTcpOptions): Buffer {
  const inner = ethernet(
    '0a:58:0a:f4:02:03',
    '0a:58:0a:f4:01:02',
    ETHERTYPE_IPV4,
    ipv4(
      { src: '10.244.1.2', dst: '10.244.2.3', protocol: IPPROTO_TCP },
      tcp('10.244.1.2', '10.244.2.3', { srcPort: options.srcPort, dstPort: options.dstPort, seq: 1000, ack: 0, flags: TCP_SYN }, options.payload),
    ),
  );
  // The outer source port is a flow hash in real VTEPs; any value decodes the same.
  const outerUdp = udp('192.168.50.1', '192.168.50.2', 49152, VXLAN_PORT, vxlan(options.vni, inner));
  const outer = ipv4({ src: '192.168.50.1', dst: '192.168.50.2', protocol: IPPROTO_UDP }, outerUdp);
  return ethernet('02:50:00:00:00:02', '02:50:00:00:00:01', ETHERTYPE_IPV4, outer);
}
