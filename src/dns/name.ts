/**
 * Domain names on the wire (RFC 1035 §3.1, §4.1.4).
 *
 * Reading is defensive in the way dns-packet's decoder is, with its bounds counted from the
 * message's own start rather than from zero: a label runs past the end, a label length
 * byte of the reserved 0x40/0x80 kinds, a name over 255 bytes, and a compression pointer
 * that does not point strictly backwards into an earlier name (forward, self and into the
 * 12-byte header) are all refused. Because every accepted pointer lands before the start
 * of the segment it was read from, decompression cannot loop; the jump cap is a second
 * guard, not the first.
 *
 * `NameReader` is reusable: one per consumer, re-pointed per name, allocating nothing.
 */
import { DNS_HEADER_LEN, MAX_LABEL_LEN, MAX_NAME_LEN } from './constants.js';

export const NameError = {
  /** The name runs past the end of the message. */
  Truncated: -1,
  /** A label length byte of the reserved kinds (0x40, 0x80: RFC 6891 retired extended labels). */
  BadLabel: -2,
  /** More than 255 bytes once decompressed. */
  TooLong: -3,
  /** A compression pointer that is not strictly backwards into the message body. */
  BadPointer: -4,
} as const;
export type NameError = (typeof NameError)[keyof typeof NameError];

/** More jumps than a 255-byte name has labels cannot be a real name. */
const MAX_JUMPS = 127;

export class NameReader {
  /** The uncompressed wire form of the last name read (root label included). */
  readonly bytes = new Uint8Array(MAX_NAME_LEN);
  /** Bytes used in `bytes`: 1 for the root. */
  length = 0;
  /** Labels, root excluded. */
  labels = 0;
  /** Offset just past the name in the message (past its pointer, when compressed). */
  end = 0;
  /** Whether the name used a compression pointer. */
  compressed = false;

  /**
   * Reads the name at `pos` of the message that occupies `msg[msgStart, msgEnd)`. With
   * `lower`, ASCII letters are folded to lower case as they are copied (DNS names compare
   * case-insensitively, RFC 4343). Returns 0, or a `NameError`.
   */
  read(msg: Uint8Array, msgStart: number, msgEnd: number, pos: number, lower: boolean): 0 | NameError {
    const out = this.bytes;
    let n = 0;
    let labels = 0;
    let jumps = 0;
    let segment = pos;
    let end = -1;
    for (;;) {
      if (pos >= msgEnd) return NameError.Truncated;
      const len = msg[pos];
      if (len === 0) {
        out[n++] = 0;
        if (end < 0) end = pos + 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (pos + 1 >= msgEnd) return NameError.Truncated;
        const target = ((len & 0x3f) << 8) | msg[pos + 1];
        // Relative to the message: the header holds no name, and only earlier bytes may be named.
        if (target < DNS_HEADER_LEN || msgStart + target >= segment || ++jumps > MAX_JUMPS) return NameError.BadPointer;
        if (end < 0) end = pos + 2;
        pos = segment = msgStart + target;
        continue;
      }
      if (kind !== 0) return NameError.BadLabel;
      // The label, its length byte and the root byte still to come must fit in 255.
      if (n + len + 2 > MAX_NAME_LEN) return NameError.TooLong;
      if (pos + 1 + len > msgEnd) return NameError.Truncated;
      out[n++] = len;
      for (let i = 1; i <= len; i++) {
        const c = msg[pos + i];
        out[n++] = lower && c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
      }
      labels++;
      pos += 1 + len;
    }
    this.length = n;
    this.labels = labels;
    this.end = end;
    this.compressed = jumps > 0;
    return 0;
  }

  /** The name as presentation text (for tests, logs and cold paths: allocates). */
  text(): string {
    return wireToText(this.bytes, 0);
  }
}

/**
 * Validates the name at `pos` without copying it and returns the offset past it, or a
 * `NameError`. For skipping the owner names of records a responder does not read.
 */
export function skipName(msg: Uint8Array, msgStart: number, msgEnd: number, pos: number): number {
  let total = 1;
  let jumps = 0;
  let segment = pos;
  let end = -1;
  for (;;) {
    if (pos >= msgEnd) return NameError.Truncated;
    const len = msg[pos];
    if (len === 0) return end < 0 ? pos + 1 : end;
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= msgEnd) return NameError.Truncated;
      const target = ((len & 0x3f) << 8) | msg[pos + 1];
      if (target < DNS_HEADER_LEN || msgStart + target >= segment || ++jumps > MAX_JUMPS) return NameError.BadPointer;
      if (end < 0) end = pos + 2;
      pos = segment = msgStart + target;
      continue;
    }
    if (kind !== 0) return NameError.BadLabel;
    total += len + 1;
    if (total > MAX_NAME_LEN) return NameError.TooLong;
    if (pos + 1 + len > msgEnd) return NameError.Truncated;
    pos += 1 + len;
  }
}

/** ASCII case-insensitive equality of two uncompressed wire names. */
export function wireNamesEqual(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) {
    let x = a[aStart + i];
    let y = b[bStart + i];
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** Byte length of an uncompressed wire name starting at `pos` (the caller knows it is well formed). */
export function wireNameLength(wire: Uint8Array, pos: number): number {
  let p = pos;
  while (wire[p] !== 0) p += wire[p] + 1;
  return p + 1 - pos;
}

/**
 * Presentation form of an uncompressed wire name, with a trailing dot (RFC 1035 §5.1):
 * `.` and `\` inside a label are escaped, bytes outside printable ASCII become `\DDD`.
 */
export function wireToText(wire: Uint8Array, pos: number): string {
  if (wire[pos] === 0) return '.';
  let text = '';
  let p = pos;
  while (wire[p] !== 0) {
    const len = wire[p];
    for (let i = 1; i <= len; i++) {
      const c = wire[p + i];
      if (c === 0x2e || c === 0x5c) text += `\\${String.fromCharCode(c)}`;
      else if (c <= 0x20 || c >= 0x7f) text += `\\${String(c).padStart(3, '0')}`;
      else text += String.fromCharCode(c);
    }
    text += '.';
    p += len + 1;
  }
  return text;
}

/**
 * Wire form of a presentation name (`web.default.svc.cluster.local`, trailing dot optional,
 * `\.` and `\DDD` escapes understood), or undefined when a label is empty or too long or the
 * name exceeds 255 bytes. For configuration, tests and cold paths: allocates.
 */
export function textToWire(text: string): Uint8Array | undefined {
  const body = text.endsWith('.') && !text.endsWith('\\.') ? text.slice(0, -1) : text;
  if (body === '') return text === '.' || text === '' ? Uint8Array.of(0) : undefined;
  const out: number[] = [];
  let label: number[] = [];
  const finish = (): boolean => {
    if (label.length === 0 || label.length > MAX_LABEL_LEN) return false;
    out.push(label.length, ...label);
    label = [];
    return true;
  };
  for (let i = 0; i < body.length; i++) {
    const ch = body.charCodeAt(i);
    if (ch === 0x5c) {
      const digits = /^\d{3}/.exec(body.slice(i + 1, i + 4));
      if (digits !== null) {
        const value = Number(digits[0]);
        if (value > 255) return undefined;
        label.push(value);
        i += 3;
      } else if (i + 1 < body.length) {
        label.push(body.charCodeAt(++i) & 0xff);
      } else {
        return undefined;
      }
    } else if (ch === 0x2e) {
      if (!finish()) return undefined;
    } else {
      if (ch > 0xff) return undefined;
      label.push(ch);
    }
  }
  if (!finish()) return undefined;
  out.push(0);
  return out.length > MAX_NAME_LEN ? undefined : Uint8Array.from(out);
}

/** Lower-cases ASCII letters in place, for keys and comparisons. */
export function lowerAscii(bytes: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c >= 0x41 && c <= 0x5a) bytes[i] = c | 0x20;
  }
}
