/**
 * Address management: every address and MAC the cluster uses is a pure function of the
 * cluster's settings and the order of the YAML, so two runs (or two machines) given the same
 * input agree without talking to each other.
 *
 * Pod network: the pod CIDR is cut into /24s and node N (counted from 1) gets the N-th, so with
 * the default 10.244.0.0/16 node-1 has 10.244.1.0/24 (the first /24 is left unused, as kubeadm
 * clusters with flannel do). In each /24, .1 is the node's gateway (its bridge) and pods take
 * .2 upward in the order they are declared; .255 is the broadcast address.
 *
 * MACs are derived from IPs the way the bridge CNI plugin does (0a:58 + the IPv4 bytes), so a
 * MAC in a capture says which address it belongs to, and nothing needs ARP-table state to agree.
 *
 * Underlay: each node's VXLAN socket binds its own loopback address, 127.77.<cluster>.<node>,
 * where <node> is the node's index and <cluster> the cluster's index (1-254), which also
 * names its links. Resolving a cluster gives it `clusterIndex(name)`, an FNV-1a hash of the
 * name; two names share a hash one time in 254, so `podwire up` searches onward from there for
 * an index no other cluster on the machine holds (`withClusterIndex`) and records it in
 * cluster.json. The VTEP MAC is 0e:77 + the underlay address, by the same rule as pod MACs but
 * with a different prefix.
 *
 * Service network: the first address of the service CIDR is reserved for the `kubernetes`
 * service and the tenth for cluster DNS (10.96.0.1 and 10.96.0.10 by default); explicit
 * clusterIPs are honoured first, then the rest get the lowest free address, in YAML order.
 */

import { cidrAddress, cidrContains, cidrSize, formatCidr, formatIpv4, type Cidr } from '../packet/addr.js';
import type { Cluster } from './model.js';
import { fnv32a } from './naming.js';

/** Every node's pod block is a /24. */
export const NODE_BLOCK_PREFIX = 24;
/** Nodes are numbered into the last octet of their underlay address (1-254). */
export const MAX_NODES = 254;
/** Pod addresses in a /24: .2 to .254. */
export const PODS_PER_NODE = 252;

/**
 * The node's own DNS endpoint in its pod CIDR: the last address before the broadcast
 * address (.254 of a /24), where the node's DNS-over-TCP relay listens. Pods never get it.
 */
export function dnsRelayAddress(block: Cidr): number {
  return cidrAddress(block, cidrSize(block) - 2);
}

const UNDERLAY_BASE = (127 << 24) | (77 << 16);
const POD_MAC_PREFIX = 0x0a58 * 2 ** 32;
const VTEP_MAC_PREFIX = 0x0e77 * 2 ** 32;

/** How many node blocks the pod CIDR holds: its /24s less the unused first one (0 if none). */
export function nodeCapacity(podCIDR: Cidr): number {
  return podCIDR.prefix > NODE_BLOCK_PREFIX ? 0 : 2 ** (NODE_BLOCK_PREFIX - podCIDR.prefix) - 1;
}

/** Node `index`'s /24 (1 <= index <= nodeCapacity). */
export function nodePodCidr(podCIDR: Cidr, index: number): Cidr {
  return { base: cidrAddress(podCIDR, index * 256), prefix: NODE_BLOCK_PREFIX };
}

/** The node's bridge address, every local pod's default gateway: .1 of its block. */
export function gatewayAddress(block: Cidr): number {
  return cidrAddress(block, 1);
}

/** 0a:58:<ip>: the bridge CNI plugin's rule, so the MAC names the address it carries. */
export function podMac(ip: number): number {
  return POD_MAC_PREFIX + ip;
}

/** 1-254, from the cluster's name; picks the third octet of every underlay address. */
export function clusterIndex(clusterName: string): number {
  return (fnv32a(clusterName) % 254) + 1;
}

/** Cluster indexes to try for `name`, its hash first, then upward, wrapping after 254. */
export function clusterIndexCandidates(clusterName: string): number[] {
  const first = clusterIndex(clusterName);
  return Array.from({ length: 254 }, (_, i) => ((first - 1 + i) % 254) + 1);
}

/** The cluster with another index: the same nodes on the underlay addresses it implies. */
export function withClusterIndex(cluster: Cluster, index: number): Cluster {
  return {
    ...cluster,
    settings: { ...cluster.settings, clusterIndex: index },
    nodes: cluster.nodes.map((node) => {
      const underlay = underlayAddress(index, node.index);
      return { ...node, underlay, vtepMac: vtepMac(underlay) };
    }),
  };
}

/** 127.77.<clusterIndex>.<nodeIndex>: the loopback address a node's VXLAN socket binds. */
export function underlayAddress(clusterIdx: number, nodeIndex: number): number {
  return (UNDERLAY_BASE | (clusterIdx << 8) | nodeIndex) >>> 0;
}

/** 0e:77:<underlay>: locally administered, unicast, distinct from every pod MAC (0a:58). */
export function vtepMac(underlay: number): number {
  return VTEP_MAC_PREFIX + underlay;
}

/**
 * Pod addresses: `placement[i]` is the position in `blocks` of pod i's node. Pods on a node get
 * .2, .3, ... in order; `undefined` marks a pod that found its node's block full.
 */
export function allocatePodIps(blocks: readonly Cidr[], placement: readonly number[]): Array<number | undefined> {
  const used = new Array<number>(blocks.length).fill(0);
  return placement.map((node) => {
    const block = blocks[node];
    const offset = 2 + used[node];
    // The last address of the block is its broadcast address.
    // The last address is the broadcast address, the one before it the node's DNS relay.
    if (offset >= cidrSize(block) - 2) return undefined;
    used[node]++;
    return cidrAddress(block, offset);
  });
}

/** The `kubernetes` service's address: the first of the service CIDR. */
export function kubernetesServiceIP(serviceCIDR: Cidr): number {
  return cidrAddress(serviceCIDR, 1);
}

/** The cluster DNS service's address: the tenth of the service CIDR, as kubeadm sets it. */
export function dnsServiceIP(serviceCIDR: Cidr): number {
  return cidrAddress(serviceCIDR, 10);
}

/** Services entitled to the reserved addresses, as `namespace/name`. */
export const KUBERNETES_SERVICE = 'default/kubernetes';
export const DNS_SERVICE = 'kube-system/kube-dns';

export interface ClusterIpClaim {
  /** `namespace/name` of the service. */
  readonly owner: string;
  /** A requested address, or 'auto' for the lowest free one. */
  readonly request: number | 'auto';
}

export type Allocation = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly reason: string };

/**
 * Cluster IPs for `claims`, in the same order. Explicit requests are served first so that an
 * automatic allocation can never take an address a later document asks for by name.
 */
export function allocateClusterIps(serviceCIDR: Cidr, claims: readonly ClusterIpClaim[]): Allocation[] {
  const range = `the service CIDR ${formatCidr(serviceCIDR)}`;
  const first = cidrAddress(serviceCIDR, 1);
  const last = cidrAddress(serviceCIDR, cidrSize(serviceCIDR) - 2);
  const reserved = new Map<number, string>([
    [kubernetesServiceIP(serviceCIDR), KUBERNETES_SERVICE],
    [dnsServiceIP(serviceCIDR), DNS_SERVICE],
  ]);
  const owners = new Map<number, string>();
  const results: Allocation[] = new Array(claims.length);

  claims.forEach((claim, i) => {
    const ip = claim.request;
    if (ip === 'auto') return;
    const shown = formatIpv4(ip);
    let reason: string | undefined;
    if (!cidrContains(serviceCIDR, ip)) reason = `${shown} is not in ${range}`;
    else if (ip < first) reason = `${shown} is the network address of ${range}`;
    else if (ip > last) reason = `${shown} is the broadcast address of ${range}`;
    else if (reserved.has(ip) && reserved.get(ip) !== claim.owner) reason = `${shown} is reserved for Service ${reserved.get(ip)}`;
    else if (owners.has(ip)) reason = `${shown} is already allocated to Service ${owners.get(ip)}`;
    if (reason !== undefined) {
      results[i] = { ok: false, reason };
      return;
    }
    owners.set(ip, claim.owner);
    results[i] = { ok: true, value: ip };
  });

  let cursor = first;
  claims.forEach((claim, i) => {
    if (claim.request !== 'auto') return;
    // The well-known services get their reserved address when they ask for any.
    for (const [ip, owner] of reserved) {
      if (owner === claim.owner && !owners.has(ip)) {
        owners.set(ip, owner);
        results[i] = { ok: true, value: ip };
        return;
      }
    }
    while (cursor <= last && (owners.has(cursor) || reserved.has(cursor))) cursor++;
    if (cursor > last) {
      results[i] = { ok: false, reason: `no free address left in ${range}` };
      return;
    }
    owners.set(cursor, claim.owner);
    results[i] = { ok: true, value: cursor };
  });
  return results;
}
