/**
 * The union of NetworkPolicy ipBlocks (each a CIDR minus its `except` CIDRs), compiled into a
 * longest-prefix-match table whose answer is exact: one probe per distinct prefix length in
 * use, not one test per block.
 *
 * Why a plain LPM of "cidr → allow, except → deny" is not enough: with two blocks
 * `10.0.0.0/8 except 10.1.0.0/16` and `10.0.0.0/8`, the address 10.1.0.1 finds the /16 "deny"
 * first, yet the second block includes it. So every prefix P that appears anywhere (as a cidr
 * or an except) is stored with the answer for the addresses whose longest stored prefix is P.
 * That answer is the same for all of them: prefixes are either nested or disjoint, so such an
 * address lies inside exactly the stored prefixes that contain P, and
 *
 *     inside(P) = some block b has cidr_b ⊇ P and no except e of b with e ⊇ P.
 *
 * An address under no stored prefix is outside. A prefix whose answer equals that of the
 * prefix just above it changes nothing and is dropped, so a redundant block costs no probe.
 *
 * `contains` allocates nothing (masked keys go to an `IpTable`, not to a `Map`).
 */
import { cidrContains, formatCidr, prefixMask, type Cidr } from '../packet/addr.js';
import type { IpBlock } from '../cluster/model.js';
import { IP_ABSENT, IpTable } from './policy-ip-table.js';

const OUTSIDE = 0;
const INSIDE = 1;

export class CidrSet {
  /** One table per prefix length in use, longest first, with its netmask beside it. */
  private readonly tables: readonly IpTable[];
  private readonly masks: Int32Array;

  private constructor(byLength: ReadonlyMap<number, Map<number, number>>) {
    const lengths = [...byLength.keys()].sort((a, b) => b - a);
    this.tables = lengths.map((len) => IpTable.from(byLength.get(len)!));
    this.masks = Int32Array.from(lengths, (len) => prefixMask(len) | 0);
  }

  static readonly EMPTY: CidrSet = CidrSet.of([]);

  static of(blocks: readonly IpBlock[]): CidrSet {
    const prefixes = distinctPrefixes(blocks);
    const byLength = new Map<number, Map<number, number>>();
    for (const p of prefixes) {
      const answer = insideAt(p, blocks);
      // The answer an address under p would get if p were not stored: that of the longest
      // stored prefix strictly containing p, or "outside".
      const parent = longestStrictSuperset(p, prefixes);
      const inherited = parent === undefined ? false : insideAt(parent, blocks);
      if (answer === inherited) continue;
      let table = byLength.get(p.prefix);
      if (table === undefined) byLength.set(p.prefix, (table = new Map()));
      table.set(p.base, answer ? INSIDE : OUTSIDE);
    }
    return new CidrSet(byLength);
  }

  /** Number of prefix lengths a lookup may probe: the cost of `contains`. */
  get probeCount(): number {
    return this.tables.length;
  }

  get isEmpty(): boolean {
    return this.tables.length === 0;
  }

  contains(addr: number): boolean {
    const tables = this.tables;
    const masks = this.masks;
    for (let i = 0; i < tables.length; i++) {
      const answer = tables[i].get(addr & masks[i]);
      if (answer !== IP_ABSENT) return answer === INSIDE;
    }
    return false;
  }
}

function distinctPrefixes(blocks: readonly IpBlock[]): Cidr[] {
  const byText = new Map<string, Cidr>();
  for (const b of blocks) for (const c of [b.cidr, ...b.except]) byText.set(formatCidr(c), c);
  return [...byText.values()];
}

function covers(outer: Cidr, inner: Cidr): boolean {
  return outer.prefix <= inner.prefix && cidrContains(outer, inner.base);
}

function insideAt(p: Cidr, blocks: readonly IpBlock[]): boolean {
  return blocks.some((b) => covers(b.cidr, p) && !b.except.some((e) => covers(e, p)));
}

function longestStrictSuperset(p: Cidr, prefixes: readonly Cidr[]): Cidr | undefined {
  let best: Cidr | undefined;
  for (const q of prefixes) {
    if (q.prefix < p.prefix && covers(q, p) && (best === undefined || q.prefix > best.prefix)) best = q;
  }
  return best;
}
