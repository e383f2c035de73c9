/**
 * Software segmentation and checksum completion: what a NIC does with a TSO super-frame
 * and a partial checksum, for the places where podwire cannot hand them on whole (a 1500-
 * byte underlay, a port without offload).
 *
 * A pod whose TAP has TUNSETOFFLOAD sends TCP super-frames of up to 64 KiB (virtio GSO
 * type TCPV4) with the TCP checksum left partial: the checksum field holds the pseudo-header
 * sum, and the sum over bytes from `csumStart` to the end is still to be added (the
 * virtio_net_hdr NEEDS_CSUM contract). `completeChecksum` finishes such a frame in place;
 * `segmentTcpV4` cuts a super-frame into wire-sized frames with finished checksums, as
 * the kernel's tcp_gso_segment does: each segment carries at most `gsoSize` payload bytes,
 * sequence numbers advance, IPv4 identification counts up, FIN and PSH stay on the last
 * segment and CWR on the first.
 */
import { readU16, readU32, writeU16, writeU32 } from '../packet/bytes.js';
import { internetChecksum, pseudoHeaderSum } from '../packet/checksum.js';
import { ETHERNET_HEADER_LEN, ETHERTYPE } from '../packet/ethernet.js';
import { IPPROTO, IPV4_OFFSET } from '../packet/ipv4.js';
import { TCP_OFFSET } from '../packet/tcp.js';

// Local consts of src/packet's constants, which V8 folds into per-packet code (see IPPROTO in ipv4.ts).
const IP_TOTAL_LENGTH = IPV4_OFFSET.TOTAL_LENGTH;
const IP_ID = IPV4_OFFSET.IDENTIFICATION;
const IP_CHECKSUM = IPV4_OFFSET.CHECKSUM;
const IP_SRC = IPV4_OFFSET.SRC_ADDR;
const IP_DST = IPV4_OFFSET.DST_ADDR;
const TCP_SEQ = TCP_OFFSET.SEQ;
const TCP_FLAGS = TCP_OFFSET.FLAGS;
const TCP_CHECKSUM = TCP_OFFSET.CHECKSUM;
const TCP = IPPROTO.TCP;
const IP_PROTOCOL = IPV4_OFFSET.PROTOCOL;
/** Where an untagged Ethernet header keeps its EtherType. */
const ETHERTYPE_AT = ETHERNET_HEADER_LEN - 2;

const FIN_PSH = 0x09;
const CWR = 0x80;

export const GsoError = {
  Ok: 0,
  /** csumStart/csumOffset point outside the frame. */
  BadChecksumOffsets: 1,
  /** Not an untagged Ethernet/IPv4/TCP frame, or its headers do not fit. */
  NotTcpV4: 2,
  /** gsoSize is 0. */
  BadSegmentSize: 3,
  /** The output buffer cannot hold a segment. */
  NoRoom: 4,
} as const;
export type GsoError = (typeof GsoError)[keyof typeof GsoError];

/** Finishes a NEEDS_CSUM frame in place: the L4 checksum over csumStart..end. */
export function completeChecksum(frame: Uint8Array, offset: number, length: number, csumStart: number, csumOffset: number): GsoError {
  const field = csumStart + csumOffset;
  if (csumStart >= length || field + 2 > length) return GsoError.BadChecksumOffsets;
  // The field already holds the pseudo-header sum, so summing it in is the right start.
  const sum = internetChecksum(frame, offset + csumStart, length - csumStart);
  writeU16(frame, offset + field, sum);
  return GsoError.Ok;
}

/**
 * Cuts the TCP/IPv4 super-frame at `frame[offset, offset + length)` into segments of at
 * most `gsoSize` payload bytes; each is written into `out` at 0 and handed to `emit`
 * before the next is built. Returns Ok or why the frame could not be segmented.
 */
export function segmentTcpV4(
  frame: Uint8Array,
  offset: number,
  length: number,
  gsoSize: number,
  out: Uint8Array,
  emit: (segment: Uint8Array, length: number) => void,
): GsoError {
  if (gsoSize === 0) return GsoError.BadSegmentSize;
  if (length < ETHERNET_HEADER_LEN + 40 || readU16(frame, offset + ETHERTYPE_AT) !== ETHERTYPE.IPV4) return GsoError.NotTcpV4;
  const ip = offset + ETHERNET_HEADER_LEN;
  const ipHeaderLength = (frame[ip] & 0x0f) * 4;
  if (frame[ip] >> 4 !== 4 || ipHeaderLength < 20 || frame[ip + IP_PROTOCOL] !== TCP) return GsoError.NotTcpV4;
  const tcp = ip + ipHeaderLength;
  if (tcp + 20 > offset + length) return GsoError.NotTcpV4;
  const tcpHeaderLength = (frame[tcp + 12] >> 4) * 4;
  const headers = ETHERNET_HEADER_LEN + ipHeaderLength + tcpHeaderLength;
  if (tcpHeaderLength < 20 || headers > length) return GsoError.NotTcpV4;
  const ipEnd = ETHERNET_HEADER_LEN + readU16(frame, ip + IP_TOTAL_LENGTH);
  // The IP total length bounds the payload; a frame may carry Ethernet padding past it.
  const end = Math.min(length, ipEnd);
  if (headers + Math.min(gsoSize, end - headers) > out.length) return GsoError.NoRoom;

  const src = readU32(frame, ip + IP_SRC);
  const dst = readU32(frame, ip + IP_DST);
  const flags = frame[tcp + TCP_FLAGS];
  let seq = readU32(frame, tcp + TCP_SEQ);
  let id = readU16(frame, ip + IP_ID);
  const oIp = ETHERNET_HEADER_LEN;
  const oTcp = oIp + ipHeaderLength;
  for (let at = headers; at < end || at === headers; at += gsoSize) {
    const payload = Math.min(gsoSize, end - at);
    const last = at + payload >= end;
    out.set(frame.subarray(offset, offset + headers), 0);
    out.set(frame.subarray(offset + at, offset + at + payload), headers);
    writeU16(out, oIp + IP_TOTAL_LENGTH, ipHeaderLength + tcpHeaderLength + payload);
    writeU16(out, oIp + IP_ID, id);
    writeU16(out, oIp + IP_CHECKSUM, 0);
    writeU16(out, oIp + IP_CHECKSUM, internetChecksum(out, oIp, ipHeaderLength));
    writeU32(out, oTcp + TCP_SEQ, seq);
    let segFlags = flags;
    if (!last) segFlags &= ~FIN_PSH;
    if (at !== headers) segFlags &= ~CWR;
    out[oTcp + TCP_FLAGS] = segFlags;
    const tcpLength = tcpHeaderLength + payload;
    writeU16(out, oTcp + TCP_CHECKSUM, 0);
    writeU16(out, oTcp + TCP_CHECKSUM, internetChecksum(out, oTcp, tcpLength, pseudoHeaderSum(src, dst, TCP, tcpLength)));
    emit(out, headers + payload);
    seq = (seq + payload) >>> 0;
    id = (id + 1) & 0xffff;
    if (last) break;
  }
  return GsoError.Ok;
}
