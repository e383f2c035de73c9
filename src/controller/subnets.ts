/**
 * flannel's subnet allocation, pure: which /24 of the cluster's pod CIDR a joining node
 * leases, and the key form flannel stores a lease under. The store (etcd) and the leases'
 * expiry live elsewhere; this only decides.
 *
 * The /24s are counted as ipam.ts counts them for a one-machine cluster: index 1 is the first
 * a node gets (10.244.1.0/24), and the first /24 of the pod CIDR is never handed out.
 */

import { cidrContains, formatIpv4, parseIpv4, prefixMask, type Cidr } from '../packet/addr.js';
import { NODE_BLOCK_PREFIX, nodeCapacity, nodePodCidr } from '../cluster/ipam.js';

/**
 * The /24 for `node`: the one it held before (`remembered`, when still free or held by
 * itself), else one `held` by the node now, else the lowest free /24 of the pod CIDR counted
 * from index 1 (as ipam.ts nodePodCidr: the first /24 is unused), else undefined (full).
 * `held`: the subnets leased now, with their holder. A remembered or held subnet that is not
 * one of the pod CIDR's usable /24s (the cluster's pod CIDR changed) is not reused.
 */
export function chooseSubnet(podCIDR: Cidr, node: string, held: readonly { subnet: Cidr; node: string }[], remembered?: Cidr): Cidr | undefined {
  const takenByOthers = (subnet: Cidr): boolean => held.some((h) => h.node !== node && overlaps(h.subnet, subnet));
  // A node comes back to its old subnet, so its pods keep their addresses and peers' routes stay right.
  if (remembered !== undefined && isNodeBlock(podCIDR, remembered) && !takenByOthers(remembered)) return remembered;
  // Its own lease, still current (an agent restarted without its memory): leasing another would leak it.
  const own = held.find((h) => h.node === node && isNodeBlock(podCIDR, h.subnet) && !takenByOthers(h.subnet));
  if (own !== undefined) return own.subnet;
  for (let index = 1; index <= nodeCapacity(podCIDR); index++) {
    const candidate = nodePodCidr(podCIDR, index);
    if (!held.some((h) => overlaps(h.subnet, candidate))) return candidate;
  }
  return undefined;
}

/** Whether `subnet` is one of the /24s of `podCIDR` that nodes lease (not the first). */
function isNodeBlock(podCIDR: Cidr, subnet: Cidr): boolean {
  if (subnet.prefix !== NODE_BLOCK_PREFIX || (subnet.base & ~prefixMask(NODE_BLOCK_PREFIX)) !== 0) return false;
  if (podCIDR.prefix > NODE_BLOCK_PREFIX || !cidrContains(podCIDR, subnet.base)) return false;
  return subnet.base !== podCIDR.base;
}

/** CIDRs are nested or disjoint: they overlap when one holds the other's first address. */
function overlaps(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.base) || cidrContains(b, a.base);
}

/** "10.244.1.0-24", flannel's key form of a subnet (its etcd key under /coreos.com/network/subnets/). */
export function subnetKey(subnet: Cidr): string {
  return `${formatIpv4(subnet.base)}-${subnet.prefix}`;
}

/** The inverse of `subnetKey`: undefined for anything else, including host bits set or a prefix other than 24. */
export function parseSubnetKey(text: string): Cidr | undefined {
  const dash = text.lastIndexOf('-');
  if (dash < 0 || text.slice(dash + 1) !== String(NODE_BLOCK_PREFIX)) return undefined;
  const base = parseIpv4(text.slice(0, dash));
  if (base === undefined || (base & ~prefixMask(NODE_BLOCK_PREFIX)) !== 0) return undefined;
  return { base, prefix: NODE_BLOCK_PREFIX };
}
