/**
 * IPv4 packets for the conntrack and NAT tests, built with src/packet's emitters, and
 * checked views over them, as a pipeline would hold.
 */
import { parseIpv4 } from '../../src/packet/addr.js';
import { internetChecksum } from '../../src/packet/checksum.js';
import { PacketOk } from '../../src/packet/errors.js';
import { emitIcmp, IcmpView, ICMP_DEST_UNREACHABLE, type IcmpRepr } from '../../src/packet/icmp.js';
import { emitIpv4, IPV4_HEADER_LEN, Ipv4View } from '../../src/packet/ipv4.js';
import { emitTcp, TcpView, TCP_HEADER_LEN } from '../../src/packet/tcp.js';
import { emitUdp, UdpView, UDP_HEADER_LEN } from '../../src/packet/udp.js';
import { FlowTuple, readPacketTuple, TupleKind } from '../../src/netfilter/conntrack-tuple.js';

export function addr(text: string): number {
  const a = parseIpv4(text);
  if (a === undefined) throw new Error(`bad address ${text}`);
  return a;
}

export const TCP = 6;
export const UDP = 17;
export const ICMP = 1;

/** An IPv4 header (20 bytes) before `payload`, at `offset` in a buffer of `offset + total` bytes. */
function ipPacket(src: number, dst: number, protocol: number, payload: Uint8Array, offset = 0, ttl = 64): Buffer {
  const buf = Buffer.alloc(offset + IPV4_HEADER_LEN + payload.length, 0xa5);
  emitIpv4(
    {
      src,
      dst,
      protocol,
      ttl,
      payloadLength: payload.length,
      dscp: 0,
      ecn: 0,
      identification: 0x4d2,
      dontFragment: true,
      moreFragments: false,
      fragmentOffsetBytes: 0,
    },
    buf,
    offset,
  );
  buf.set(payload, offset + IPV4_HEADER_LEN);
  return buf;
}

export function tcpPacket(src: number, dst: number, sport: number, dport: number, flags: number, payload: Uint8Array = Buffer.alloc(0), offset = 0): Buffer {
  const segment = Buffer.alloc(TCP_HEADER_LEN + payload.length);
  segment.set(payload, TCP_HEADER_LEN);
  emitTcp(
    { srcPort: sport, dstPort: dport, seq: 0x01020304, ack: (flags & 0x10) !== 0 ? 0x0a0b0c0d : 0, flags, window: 64240, urgent: 0, options: { sackPermitted: false } },
    segment,
    0,
    payload.length,
    { src, dst },
  );
  return ipPacket(src, dst, TCP, segment, offset);
}

/** `checksum: false` sends the UDP checksum as 0 ("none"). */
export function udpPacket(src: number, dst: number, sport: number, dport: number, payload: Uint8Array = Buffer.alloc(0), checksum = true, offset = 0): Buffer {
  const datagram = Buffer.alloc(UDP_HEADER_LEN + payload.length);
  datagram.set(payload, UDP_HEADER_LEN);
  emitUdp({ srcPort: sport, dstPort: dport }, datagram, 0, payload.length, checksum ? { src, dst } : undefined);
  return ipPacket(src, dst, UDP, datagram, offset);
}

export function icmpPacket(src: number, dst: number, repr: IcmpRepr, data: Uint8Array = Buffer.alloc(0), offset = 0): Buffer {
  const message = Buffer.alloc(8 + data.length);
  message.set(data, 8);
  emitIcmp(repr, message, 0, data.length);
  return ipPacket(src, dst, ICMP, message, offset);
}

/**
 * The ICMP error `src` sends to `dst` about `offending` (an IP packet starting at byte 0):
 * it quotes the IP header and `quoteL4` bytes after it (8 by RFC 792; Linux sends more).
 */
export function icmpErrorPacket(src: number, dst: number, offending: Buffer, quoteL4 = 8, code = 3, offset = 0): Buffer {
  const headerLength = (offending[0] & 0x0f) * 4;
  const quote = offending.subarray(0, Math.min(offending.length, headerLength + quoteL4));
  return icmpPacket(src, dst, { kind: 'destUnreachable', code }, quote, offset);
}

export { ICMP_DEST_UNREACHABLE };

export interface Views {
  readonly buf: Buffer;
  readonly ip: Ipv4View;
  readonly tcp: TcpView;
  readonly udp: UdpView;
  readonly icmp: IcmpView;
  /** The packet's tuple (for an ICMP error: the related lookup tuple). */
  readonly tuple: FlowTuple;
  readonly kind: TupleKind;
}

/** Checked views over the packet at `offset`, the transport one for its protocol. */
export function views(buf: Buffer, offset = 0): Views {
  const ip = new Ipv4View();
  if (ip.check(buf, offset) !== PacketOk) throw new Error('bad IPv4');
  const tcp = new TcpView();
  const udp = new UdpView();
  const icmp = new IcmpView();
  const at = ip.payloadOffset;
  const length = ip.payloadLength;
  if (ip.protocol === TCP && tcp.check(buf, at, length) !== PacketOk) throw new Error('bad TCP');
  if (ip.protocol === UDP && udp.check(buf, at, length) !== PacketOk) throw new Error('bad UDP');
  if (ip.protocol === ICMP && icmp.check(buf, at, length) !== PacketOk) throw new Error('bad ICMP');
  const tuple = new FlowTuple();
  const kind = readPacketTuple(ip, tuple);
  return { buf, ip, tcp, udp, icmp, tuple, kind };
}

/** The ICMP message's checksum summed from scratch: 0 when the stored one is right. */
export function icmpChecksumResidue(v: Views): number {
  return internetChecksum(v.buf, v.icmp.offset, v.icmp.length);
}
