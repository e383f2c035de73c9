/**
 * IPv4 fragmentation (RFC 791 section 3.2, "Fragmentation"), as the kernel's
 * ip_do_fragment does it on output.
 *
 * `fragmentIpv4` cuts the packet at `buf[offset, offset + total length)` into fragments
 * of at most `maxIpSize` bytes of IP (header included). Each fragment is written into
 * `out` at `outOffset` (the bytes before it, an Ethernet header the caller wrote once,
 * are left alone) and handed to `emit(out, outOffset + fragment length)` before the next
 * is built, so one output buffer serves every fragment and nothing is allocated.
 *
 * - Every fragment but the last carries `(maxIpSize - header length) & ~7` payload bytes:
 *   offsets count 8-byte units. The last carries the rest.
 * - The header is the original's: identification, TOS, TTL, protocol, addresses. Total
 *   length, the fragment offset and MF are each fragment's own, and the header checksum
 *   is summed again. A packet that is itself a fragment is cut further: offsets start at
 *   its own and only its last piece keeps its MF bit, as RFC 791 asks.
 * - Options: the first fragment carries them all; later ones only those with the copy
 *   flag (type bit 0x80, RFC 791 "copied flag"). The others are overwritten with NOOP
 *   bytes so the header keeps its length, as the kernel's ip_options_fragment does. A
 *   packet whose options do not parse (a length below 2 or past the header) is refused:
 *   which bytes to copy cannot be told.
 * - DF: a packet with DF set that does not fit is refused (`DontFragment`: the caller
 *   sends ICMP fragmentation needed), unless `keepDf` is set, in which case its fragments
 *   keep DF. That is the kernel's IPSKB_FRAG_PMTU case: a datagram that was reassembled
 *   from DF fragments is cut again to the size its sender chose (see defrag.ts).
 * - A packet that already fits is emitted once, unchanged.
 *
 * Nothing here reads a clock or throws on bad bytes. Per fragment, the only allocation is
 * the subarray view its payload is copied through: JavaScript has no ranged copy between
 * two arrays without one (the header, at most 60 bytes, is copied by hand instead).
 */
import { readU16, writeU16 } from './bytes.js';
import { internetChecksum } from './checksum.js';
import { IPV4_HEADER_LEN } from './ipv4.js';

/** The smallest MTU every IPv4 link must carry (RFC 791): a 60-byte header and 8 bytes. */
export const IPV4_MIN_MTU = 68;

const TOTAL_LENGTH = 2;
const FLAGS_FRAGMENT = 6;
const CHECKSUM = 10;
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const FRAGMENT_UNITS = 0x1fff;

const OPTION_END = 0;
const OPTION_NOOP = 1;
/** Type bit 0x80: copy this option into every fragment. */
const OPTION_COPIED = 0x80;

export const FragmentError = {
  Ok: 0,
  /** The packet fails Ipv4View's checks or is not version 4. */
  Malformed: 1,
  /** `maxIpSize` leaves fewer than 8 payload bytes after the header (or is above 65535). */
  BadSize: 2,
  /** DF is set, the packet does not fit, and `keepDf` was not given. */
  DontFragment: 3,
  /** An option's length is below 2 or runs past the header. */
  BadOptions: 4,
  /** `out` from `outOffset` cannot hold the largest fragment. */
  NoRoom: 5,
  /** The cut would put a fragment past offset 65528 bytes (a fragment of a fragment near the end). */
  OffsetOverflow: 6,
} as const;
export type FragmentError = (typeof FragmentError)[keyof typeof FragmentError];

/** `outputFragmentSize`'s answer when DF forbids the cut: send ICMP fragmentation needed (3/4) with the MTU. */
export const NEEDS_ICMP_FRAG_NEEDED = -1;

/**
 * What the kernel's output path does with a datagram of `ipLength` bytes on a path of
 * `mtu` (ip_forward's ip_exceeds_mtu, then ip_fragment and ip_do_fragment): 0 to send it
 * whole, a size to cut it to with `fragmentIpv4` (`keepDf` = `dontFragment`), or
 * NEEDS_ICMP_FRAG_NEEDED. `fragMaxSize` is 0 for a datagram that arrived whole, and the
 * largest fragment's size (defrag.ts `maxFragmentSize`) for one that was reassembled: such
 * a datagram is always cut again, to its sender's fragment size or the MTU if smaller, and
 * with DF only refused when the sender's fragments themselves would not fit.
 */
export function outputFragmentSize(ipLength: number, dontFragment: boolean, fragMaxSize: number, mtu: number): number {
  if (fragMaxSize > 0) {
    if (dontFragment && fragMaxSize > mtu) return NEEDS_ICMP_FRAG_NEEDED;
    return Math.min(mtu, fragMaxSize);
  }
  if (ipLength <= mtu) return 0;
  return dontFragment ? NEEDS_ICMP_FRAG_NEEDED : mtu;
}

/** How many fragments `fragmentIpv4` makes of a payload of `payloadLength` bytes: 1 when it fits. */
export function ipv4FragmentCount(headerLength: number, payloadLength: number, maxIpSize: number): number {
  if (headerLength + payloadLength <= maxIpSize) return 1;
  const perFragment = (maxIpSize - headerLength) & ~7;
  if (perFragment <= 0) return 0;
  return Math.ceil(payloadLength / perFragment);
}

/**
 * True when the options at `buf[at, at + length)` parse: every option other than END and
 * NOOP has a length of at least 2 that stays inside the area. Nothing after END is read.
 */
function optionsParse(buf: Uint8Array, at: number, length: number): boolean {
  const end = at + length;
  let i = at;
  while (i < end) {
    const type = buf[i];
    if (type === OPTION_END) return true;
    if (type === OPTION_NOOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return false;
    const optionLength = buf[i + 1];
    if (optionLength < 2 || i + optionLength > end) return false;
    i += optionLength;
  }
  return true;
}

/** Overwrites the options without the copy flag with NOOP in place (options already checked). */
function keepCopiedOptions(buf: Uint8Array, at: number, length: number): void {
  const end = at + length;
  let i = at;
  while (i < end) {
    const type = buf[i];
    if (type === OPTION_END) return;
    if (type === OPTION_NOOP) {
      i++;
      continue;
    }
    const optionLength = buf[i + 1];
    if ((type & OPTION_COPIED) === 0) buf.fill(OPTION_NOOP, i, i + optionLength);
    i += optionLength;
  }
}

/**
 * Cuts the IPv4 packet at `buf[offset, ...)` into fragments of at most `maxIpSize` bytes
 * of IP (see the module comment). Returns Ok once every fragment has been emitted, or
 * why none was; on an error nothing is emitted.
 */
export function fragmentIpv4(
  buf: Uint8Array,
  offset: number,
  maxIpSize: number,
  out: Uint8Array,
  outOffset: number,
  emit: (frame: Uint8Array, length: number) => void,
  keepDf = false,
): FragmentError {
  // Ipv4View.check's bounds, inline: a module-level view would be shared mutable state.
  if (!Number.isInteger(offset) || offset < 0 || offset + IPV4_HEADER_LEN > buf.length) return FragmentError.Malformed;
  const headerLength = (buf[offset] & 0x0f) * 4;
  const totalLength = readU16(buf, offset + TOTAL_LENGTH);
  if (buf[offset] >>> 4 !== 4 || headerLength < IPV4_HEADER_LEN || totalLength < headerLength || offset + totalLength > buf.length) {
    return FragmentError.Malformed;
  }
  if (!Number.isInteger(maxIpSize) || maxIpSize > 0xffff || !Number.isInteger(outOffset) || outOffset < 0) return FragmentError.BadSize;
  if (totalLength <= maxIpSize) {
    if (outOffset + totalLength > out.length) return FragmentError.NoRoom;
    out.set(buf.subarray(offset, offset + totalLength), outOffset);
    emit(out, outOffset + totalLength);
    return FragmentError.Ok;
  }
  const perFragment = (maxIpSize - headerLength) & ~7;
  if (maxIpSize < headerLength + 8) return FragmentError.BadSize;
  const flagsWord = readU16(buf, offset + FLAGS_FRAGMENT);
  if ((flagsWord & FLAG_DF) !== 0 && !keepDf) return FragmentError.DontFragment;
  if (!optionsParse(buf, offset + IPV4_HEADER_LEN, headerLength - IPV4_HEADER_LEN)) return FragmentError.BadOptions;
  if (outOffset + headerLength + perFragment > out.length) return FragmentError.NoRoom;
  const payloadLength = totalLength - headerLength;
  const baseUnits = flagsWord & FRAGMENT_UNITS;
  // The last fragment starts at the last multiple of perFragment below the payload's end.
  const lastStart = Math.floor((payloadLength - 1) / perFragment) * perFragment;
  if (baseUnits + (lastStart >>> 3) > FRAGMENT_UNITS) return FragmentError.OffsetOverflow;

  // Flags every fragment keeps: DF when asked to, and the reserved bit as found.
  const keptFlags = flagsWord & (FLAG_DF | 0x8000);
  const lastMf = flagsWord & FLAG_MF;
  const ip = outOffset;
  for (let i = 0; i < headerLength; i++) out[ip + i] = buf[offset + i];
  for (let at = 0; at < payloadLength; at += perFragment) {
    const length = Math.min(perFragment, payloadLength - at);
    const last = at + length === payloadLength;
    // Later fragments: the header already in `out` loses its non-copied options once.
    if (at === perFragment) keepCopiedOptions(out, ip + IPV4_HEADER_LEN, headerLength - IPV4_HEADER_LEN);
    out.set(buf.subarray(offset + headerLength + at, offset + headerLength + at + length), ip + headerLength);
    writeU16(out, ip + TOTAL_LENGTH, headerLength + length);
    writeU16(out, ip + FLAGS_FRAGMENT, keptFlags | (last ? lastMf : FLAG_MF) | (baseUnits + (at >>> 3)));
    writeU16(out, ip + CHECKSUM, 0);
    writeU16(out, ip + CHECKSUM, internetChecksum(out, ip, headerLength));
    emit(out, ip + headerLength + length);
  }
  return FragmentError.Ok;
}
