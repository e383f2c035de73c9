/**
 * Address helpers. On the forwarding path an IPv4 address is a uint32 (network order read
 * as a big-endian integer) and a MAC address is a 48-bit integer: both fit a JavaScript
 * number exactly, compare with `===`, and key typed-array tables without allocating.
 *
 * The parse functions take text from users (YAML, CLI) and return `undefined` on bad input
 * rather than throwing; the caller turns that into an error message that names the field.
 */

export interface Cidr {
  /** Network address with host bits cleared. */
  readonly base: number;
  /** Prefix length, 0 to 32. */
  readonly prefix: number;
}

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIpv4(text: string): number | undefined {
  const m = DOTTED_QUAD.exec(text);
  if (m === null) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i];
    // "01" is refused: inet_aton would read it as octal, a classic source of surprises.
    if (part.length > 1 && part[0] === '0') return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(addr: number): string {
  return `${(addr >>> 24) & 0xff}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** Netmask of a prefix length as a uint32 (prefix 0 gives 0). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses `a.b.c.d/len`. Host bits must be zero unless `allowHostBits` is set, in which case
 * they are cleared (the form `ip addr` prints).
 */
export function parseCidr(text: string, allowHostBits = false): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseIpv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (addr === undefined || !/^\d{1,2}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  const base = (addr & prefixMask(prefix)) >>> 0;
  if (base !== addr && !allowHostBits) return undefined;
  return { base, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.base)}/${cidr.prefix}`;
}

/**
 * In int32 arithmetic only: a mask or address as a uint32 above 2^31 is a heap number
 * wherever it crosses a call that is not inlined, and the forwarding path asks this for
 * every packet.
 */
export function cidrContains(cidr: Cidr, addr: number): boolean {
  const prefix = cidr.prefix;
  const mask = prefix === 0 ? 0 : -1 << (32 - prefix);
  return ((addr ^ cidr.base) & mask) === 0;
}

/** Number of addresses in the block (2^(32-prefix)). */
export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

/** The n-th address of the block; the caller keeps n within cidrSize. */
export function cidrAddress(cidr: Cidr, n: number): number {
  return (cidr.base + n) >>> 0;
}

export const BROADCAST_MAC = 0xffffffffffff;

const MAC_TEXT = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/;

export function parseMac(text: string): number | undefined {
  const m = MAC_TEXT.exec(text);
  if (m === null) return undefined;
  let value = 0;
  for (const i of [1, 3, 4, 5, 6, 7]) value = value * 256 + parseInt(m[i], 16);
  return value;
}

export function formatMac(mac: number): string {
  const parts: string[] = [];
  for (let shift = 40; shift >= 0; shift -= 8) {
    parts.push(Math.floor(mac / 2 ** shift % 256).toString(16).padStart(2, '0'));
  }
  return parts.join(':');
}

/** Reads a 6-byte MAC at `offset` as a 48-bit integer (caller has checked the bounds). */
export function readMac(buf: Uint8Array, offset: number): number {
  return (
    ((buf[offset] << 8) | buf[offset + 1]) * 0x100000000 +
    ((buf[offset + 2] << 24) >>> 0) +
    ((buf[offset + 3] << 16) | (buf[offset + 4] << 8) | buf[offset + 5])
  );
}

/** A MAC as the 6 bytes the forwarding path compares and copies (see EthernetView.dstIs). */
export function macBytes(mac: number): Uint8Array {
  const out = new Uint8Array(6);
  writeMac(out, 0, mac);
  return out;
}

/** The (high 16 bits, low 32 bits as int32) halves tables key a MAC by. */
export function macHigh(mac: number): number {
  return Math.floor(mac / 0x100000000);
}
export function macLow(mac: number): number {
  return mac | 0;
}

export function writeMac(buf: Uint8Array, offset: number, mac: number): void {
  const high = Math.floor(mac / 0x100000000);
  const low = mac >>> 0;
  buf[offset] = high >>> 8;
  buf[offset + 1] = high & 0xff;
  buf[offset + 2] = low >>> 24;
  buf[offset + 3] = (low >>> 16) & 0xff;
  buf[offset + 4] = (low >>> 8) & 0xff;
  buf[offset + 5] = low & 0xff;
}

export function isMulticastMac(mac: number): boolean {
  // The I/G bit is the least significant bit of the first octet.
  return Math.floor(mac / 0x10000000000) % 2 === 1;
}
