/**
 * Names Kubernetes makes up: the Deployment controller's pod-template-hash and the API server's
 * `generateName` suffix. Both use apimachinery's "safe" alphabet, which has no vowels (so no
 * words) and none of the look-alikes 0, 1 and 3.
 */

import { randomInt, type Random } from './random.js';

export const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** Length of the random suffix `generateName` appends. */
export const GENERATED_SUFFIX_LENGTH = 5;
/** `generateName` keeps the result a DNS label: the base is cut to 63 - 5 characters. */
const MAX_GENERATED_BASE = 63 - GENERATED_SUFFIX_LENGTH;

/** FNV-1a, 32-bit, over the UTF-8 bytes of `text`. */
export function fnv32a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * apimachinery's rand.SafeEncodeString: each character is replaced by the alphabet entry at
 * its char code modulo 27. (Applied to a decimal number, it only ever yields 10 distinct
 * characters, which is why real pod-template-hashes look the way they do.)
 */
export function safeEncodeString(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) out += SAFE_ALPHABET[text.charCodeAt(i) % SAFE_ALPHABET.length];
  return out;
}

/**
 * The Deployment controller's ComputeHash: FNV-32a over the pod template, its decimal value
 * safe-encoded. Kubernetes hashes its own Go serialisation of the template; we hash a canonical
 * JSON of ours (sorted keys), so values differ from kube's but equal templates hash equally.
 */
export function podTemplateHash(template: unknown): string {
  return safeEncodeString(String(fnv32a(canonicalJson(template))));
}

/** JSON with object keys sorted at every level, so the text depends only on the value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The API server's generateName: `base` (cut to 58 characters) plus 5 random safe characters. */
export function generateName(base: string, random: Random): string {
  let suffix = '';
  for (let i = 0; i < GENERATED_SUFFIX_LENGTH; i++) suffix += SAFE_ALPHABET[randomInt(random, SAFE_ALPHABET.length)];
  return `${base.length > MAX_GENERATED_BASE ? base.slice(0, MAX_GENERATED_BASE) : base}${suffix}`;
}
