/**
 * The random source the loader draws from (generated pod-name suffixes, pod UIDs). It is passed
 * in, never read from `Math.random` here, so that a seed reproduces a cluster exactly.
 */

/** Returns a uniformly distributed number in [0, 1), like `Math.random` (which also fits). */
export type Random = () => number;

/**
 * mulberry32: a 32-bit-state generator, small and fast, with good enough statistics for names
 * and UIDs. Not for secrets.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

/** An integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  // Clamp: a caller-supplied source might return exactly 1.
  return Math.min(n - 1, Math.floor(random() * n));
}

/** A version-4 UUID (RFC 4122 layout: version nibble 4, variant bits 10). */
export function randomUuid(random: Random): string {
  const bytes = Array.from({ length: 16 }, () => randomInt(random, 256));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
