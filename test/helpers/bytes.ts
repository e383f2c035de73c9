/** Bytes from a hex dump: whitespace and `|` separators are ignored, as in a spec table. */
export function hex(text: string): Buffer {
  const clean = text.replace(/[\s|]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${text}`);
  return Buffer.from(clean, 'hex');
}

/** A buffer of `length` bytes filled with 0xa5, so that a field never written shows up. */
export function poisoned(length: number): Buffer {
  return Buffer.alloc(length, 0xa5);
}
