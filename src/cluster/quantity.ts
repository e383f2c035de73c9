/**
 * Kubernetes resource quantities (`500Mi`, `1G`, `128974848`, `129e6`) as a number of
 * bytes: the suffixes of apimachinery's resource.Quantity, a fraction rounded up to a
 * whole byte as Quantity.Value() rounds. Amounts above 2^53 bytes are refused rather than
 * rounded, since no emptyDir here is that large.
 */

const BINARY_SUFFIXES: Readonly<Record<string, number>> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL_SUFFIXES: Readonly<Record<string, number>> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

/** Bytes, or why the text is not a non-negative quantity. */
export function parseByteQuantity(text: string): { ok: true; bytes: number } | { ok: false; reason: string } {
  const m = QUANTITY.exec(text);
  if (m === null) return { ok: false, reason: `must be a quantity such as 500Mi, 1Gi or 1000000, got ${JSON.stringify(text)}` };
  const [, sign, digits, exponent, suffix] = m;
  const multiplier = exponent !== undefined ? 10 ** Number(exponent.slice(1)) : suffix === undefined ? 1 : (BINARY_SUFFIXES[suffix] ?? DECIMAL_SUFFIXES[suffix]);
  const bytes = Math.ceil(Number(digits) * multiplier);
  if (sign === '-' && bytes > 0) return { ok: false, reason: `must not be negative, got ${JSON.stringify(text)}` };
  if (!Number.isSafeInteger(bytes)) return { ok: false, reason: `must be at most ${Number.MAX_SAFE_INTEGER} bytes, got ${JSON.stringify(text)}` };
  return { ok: true, bytes };
}
