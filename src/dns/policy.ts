/**
 * Who may ask. podwire's resolver answers pods and the node itself (loopback), nobody else:
 * an open resolver is a reflection amplifier. Queries from anywhere else are dropped without
 * an answer (a REFUSED would still be reflected at a spoofed source) and counted.
 */
import { prefixMask, type Cidr } from '../packet/addr.js';

const LOOPBACK: Cidr = { base: 0x7f000000, prefix: 8 };

export interface ClientPolicy {
  allowed(clientAddr: number): boolean;
}

/** Pod CIDR(s) plus loopback, as masks compared with one AND each: nothing allocated per query. */
export function clientPolicy(cidrs: readonly Cidr[]): ClientPolicy {
  const all = [LOOPBACK, ...cidrs];
  const bases = Uint32Array.from(all, (c) => c.base);
  const masks = Uint32Array.from(all, (c) => prefixMask(c.prefix));
  return {
    allowed(clientAddr: number): boolean {
      for (let i = 0; i < bases.length; i++) if (((clientAddr & masks[i]) >>> 0) === bases[i]) return true;
      return false;
    },
  };
}

/** One-off form of the policy: is `clientAddr` in the pod CIDR (or `extra`), or loopback? */
export function allowed(clientAddr: number, podCIDR: Cidr, extra: readonly Cidr[] = []): boolean {
  return clientPolicy([podCIDR, ...extra]).allowed(clientAddr);
}
