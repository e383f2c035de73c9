/**
 * Datagrams and fragments for the reassembly tests: a datagram is built byte by byte
 * (header, options, payload) with its checksum, and cut by `fragmentIpv4` or by hand.
 */
import { writeU16, writeU32 } from '../../src/packet/bytes.js';
import { internetChecksum } from '../../src/packet/checksum.js';
import { fragmentIpv4, FragmentError } from '../../src/packet/ipv4-fragment.js';

export const UDP = 17;
export const TCP = 6;
export const SRC = 0x0af40102; // 10.244.1.2
export const DST = 0x0af40202; // 10.244.2.2

export interface DatagramSpec {
  payloadLength: number;
  protocol?: number;
  id?: number;
  src?: number;
  dst?: number;
  df?: boolean;
  dscpEcn?: number;
  ttl?: number;
  /** Option bytes, a multiple of 4 long, at most 40. */
  options?: Uint8Array;
  /** The payload's bytes are (i * 7 + fill) & 0xff. */
  fill?: number;
}

/** A whole IPv4 datagram (no fragment bits but DF) with a correct header checksum. */
export function datagram(spec: DatagramSpec): Buffer {
  const options = spec.options ?? new Uint8Array(0);
  const headerLength = 20 + options.length;
  const buf = Buffer.alloc(headerLength + spec.payloadLength);
  buf[0] = 0x40 | (headerLength / 4);
  buf[1] = spec.dscpEcn ?? 0;
  writeU16(buf, 2, buf.length);
  writeU16(buf, 4, spec.id ?? 0x1234);
  writeU16(buf, 6, spec.df ? 0x4000 : 0);
  buf[8] = spec.ttl ?? 64;
  buf[9] = spec.protocol ?? UDP;
  writeU32(buf, 12, spec.src ?? SRC);
  writeU32(buf, 16, spec.dst ?? DST);
  buf.set(options, 20);
  const fill = spec.fill ?? 0;
  for (let i = 0; i < spec.payloadLength; i++) buf[headerLength + i] = (i * 7 + fill) & 0xff;
  writeU16(buf, 10, internetChecksum(buf, 0, headerLength));
  return buf;
}

/** The datagram's fragments of at most `maxIpSize` bytes, each a copy. Throws if it cannot be cut. */
export function fragments(packet: Uint8Array, maxIpSize: number, keepDf = false): Buffer[] {
  const out: Buffer[] = [];
  const scratch = Buffer.alloc(65_536);
  const err = fragmentIpv4(packet, 0, maxIpSize, scratch, 0, (frame, length) => out.push(Buffer.from(frame.subarray(0, length))), keepDf);
  if (err !== FragmentError.Ok) throw new Error(`fragmentIpv4: error ${err}`);
  return out;
}

/** One fragment by hand: `payload` bytes at `offsetBytes`, MF as given, header fields from `spec`. */
export function fragment(spec: Omit<DatagramSpec, 'payloadLength'> & { offsetBytes: number; payloadLength: number; mf: boolean }): Buffer {
  const buf = datagram(spec);
  const flags = (spec.df ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) | (spec.offsetBytes >>> 3);
  writeU16(buf, 6, flags);
  writeU16(buf, 10, 0);
  const headerLength = (buf[0] & 0x0f) * 4;
  writeU16(buf, 10, internetChecksum(buf, 0, headerLength));
  return buf;
}

/** The bytes a Complete result points at, copied. */
export function completed(table: { completeBuffer: Buffer; completeOffset: number; completeLength: number }): Buffer {
  return Buffer.from(table.completeBuffer.subarray(table.completeOffset, table.completeOffset + table.completeLength));
}
