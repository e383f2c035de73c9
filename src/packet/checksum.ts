/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Sums are carried unfolded in a JavaScript number: 64 KiB of 16-bit words adds up to
 * less than 2^32, so nothing overflows before `finishChecksum` folds the carries.
 */

/** Adds the 16-bit big-endian words of buf[offset, offset+length) to `initial`. */
export function onesComplementSum(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  let sum = initial;
  const end = offset + length;
  let i = offset;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  // An odd final byte is padded with a zero byte on the right.
  if (i < end) sum += buf[i] << 8;
  return sum;
}

/** Folds carries into 16 bits and complements: the value that goes in the header. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function internetChecksum(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  return finishChecksum(onesComplementSum(buf, offset, length, initial));
}

/** Sum of the IPv4 pseudo-header for UDP and TCP (RFC 768, RFC 9293 section 3.1). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/**
 * RFC 1624 equation 3: HC' = ~(~HC + ~m + m'), for a 16-bit field changing from
 * `oldWord` to `newWord`. Equation 2 of RFC 1141 can produce 0xffff where a full
 * recompute gives 0x0000; equation 3 agrees with the recompute (a property test holds
 * it to that). A UDP checksum of 0 means "none" and must be left alone by the caller.
 */
export function checksumAdjust16(checksum: number, oldWord: number, newWord: number): number {
  let sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The same for a 32-bit field (an IPv4 address), as two 16-bit words. */
export function checksumAdjust32(checksum: number, oldValue: number, newValue: number): number {
  let sum =
    (~checksum & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    (newValue >>> 16) +
    (newValue & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
