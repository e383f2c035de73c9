/**
 * Longest-prefix match over IPv4 prefixes: routes (one per remote node's pod CIDR, as
 * flannel keeps them) and NetworkPolicy ipBlocks.
 *
 * One hash map per prefix length in use, probed from the longest length down. A lookup
 * costs at most one probe per distinct length present (a cluster uses two or three), never
 * a scan of the entries, and allocates nothing: keys are the masked uint32 network numbers.
 */
import { prefixMask, type Cidr } from '../packet/addr.js';

export class LpmTable<V> {
  private readonly byLength: (Map<number, V> | undefined)[] = new Array(33);
  /** Prefix lengths in use, longest first. */
  private lengths: number[] = [];
  private masks: number[] = [];

  get size(): number {
    let n = 0;
    for (const len of this.lengths) n += this.byLength[len]!.size;
    return n;
  }

  set(cidr: Cidr, value: V): void {
    let map = this.byLength[cidr.prefix];
    if (map === undefined) {
      map = new Map();
      this.byLength[cidr.prefix] = map;
      this.lengths = [...this.lengths, cidr.prefix].sort((a, b) => b - a);
      this.masks = this.lengths.map(prefixMask);
    }
    map.set(cidr.base, value);
  }

  delete(cidr: Cidr): boolean {
    const map = this.byLength[cidr.prefix];
    if (map === undefined || !map.delete(cidr.base)) return false;
    if (map.size === 0) {
      this.byLength[cidr.prefix] = undefined;
      this.lengths = this.lengths.filter((len) => len !== cidr.prefix);
      this.masks = this.lengths.map(prefixMask);
    }
    return true;
  }

  /** The value of the longest prefix containing `addr`, or undefined. */
  lookup(addr: number): V | undefined {
    const lengths = this.lengths;
    for (let i = 0; i < lengths.length; i++) {
      const value = this.byLength[lengths[i]]!.get((addr & this.masks[i]) >>> 0);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  /** Every prefix and value, longest prefixes first (for tools, `ip route` style). */
  entries(): { cidr: Cidr; value: V }[] {
    const out: { cidr: Cidr; value: V }[] = [];
    for (const prefix of this.lengths) {
      for (const [base, value] of this.byLength[prefix]!) out.push({ cidr: { base, prefix }, value });
    }
    return out;
  }
}
