/**
 * NetworkPolicy peers (`from` / `to` entries) compiled into peer sets: the pods a rule admits,
 * as a bitset over the cluster's pod numbers, plus the union of its ipBlocks.
 *
 * Which pods a peer names, as Kubernetes defines it:
 * - `podSelector` alone: matching pods in the policy's own namespace;
 * - `namespaceSelector` alone: every pod in the matching namespaces (namespace labels include
 *   `kubernetes.io/metadata.name`, so a namespace can be named that way);
 * - both in one entry: matching pods in matching namespaces (AND). Two entries, one with each
 *   selector, are two peers (OR): the classic YAML indentation pitfall;
 * - `ipBlock`: addresses, whoever holds them. Kubernetes says ipBlocks "should be
 *   cluster-external IPs, since Pod IPs are ephemeral", but nothing excludes pod addresses,
 *   and the upstream conformance tests allow a pod by its address in an ipBlock. So a pod
 *   address inside a block is a match, and an `except` removes it from that block only: the
 *   same pod may still be admitted by a selector peer of the rule, or by another block.
 *
 * Why a bitset and not a hash set of pod addresses: a check first turns the peer's address
 * into its pod number (one hash probe, shared by every rule), then tests one bit per rule.
 * A rule's pod set costs pods/8 bytes however many pods it selects, so the sets of a hundred
 * rules over ten thousand pods fit in 125 KiB, where hash sets of the same pods would spread
 * over megabytes and miss the cache on most probes.
 *
 * Selectors are evaluated here, once per compile.
 */
import type { Cluster, IpBlock, LabelSelector, Labels, NetworkPolicyPeer, Pod } from '../cluster/model.js';
import { selectorMatches } from '../cluster/selector.js';
import { CidrSet } from './policy-cidrs.js';

/** The pod number of an address that is not a pod. */
export const NOT_A_POD = -1;

export class PeerSet {
  constructor(
    /** Bit n set when pod number n is admitted. */
    readonly podBits: Int32Array,
    /** The union of the ipBlock peers. */
    readonly blocks: CidrSet,
    /** The ipBlocks `blocks` was built from, kept to build unions. */
    readonly ipBlocks: readonly IpBlock[],
  ) {}

  /** `podNumber`: the pod holding `addr`, or NOT_A_POD. */
  matches(podNumber: number, addr: number): boolean {
    if (podNumber >= 0 && (this.podBits[podNumber >>> 5] & (1 << (podNumber & 31))) !== 0) return true;
    return this.blocks.contains(addr);
  }

  /** How many pods the set admits by selector (not counting ipBlocks). */
  get podCount(): number {
    let n = 0;
    for (const word of this.podBits) {
      let w = word;
      while (w !== 0) {
        w &= w - 1;
        n++;
      }
    }
    return n;
  }

  /** Bytes of typed arrays the pod bitset holds. */
  get bytes(): number {
    return this.podBits.byteLength;
  }
}

/** A peer set admitting what any of `sets` admits. */
export function unionOfPeerSets(sets: readonly PeerSet[]): PeerSet {
  const bits = new Int32Array(sets[0].podBits.length);
  for (const set of sets) for (let i = 0; i < bits.length; i++) bits[i] |= set.podBits[i];
  const ipBlocks = sets.flatMap((set) => set.ipBlocks);
  return new PeerSet(bits, ipBlocks.length === 0 ? CidrSet.EMPTY : CidrSet.of(ipBlocks), ipBlocks);
}

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
const EVERYTHING: LabelSelector = { matchLabels: {}, matchExpressions: [] };

/**
 * The cluster's pods numbered (their position in `cluster.pods`) and grouped by namespace, with
 * each namespace's labels: what selectors run over.
 */
export class PodDirectory {
  readonly pods: readonly Pod[];
  private readonly numbersByNamespace = new Map<string, number[]>();
  private readonly namespaceLabels = new Map<string, Labels>();

  constructor(cluster: Cluster) {
    this.pods = cluster.pods;
    for (const ns of cluster.namespaces) {
      this.namespaceLabels.set(ns.name, ns.labels);
      this.numbersByNamespace.set(ns.name, []);
    }
    cluster.pods.forEach((pod, n) => {
      let list = this.numbersByNamespace.get(pod.namespace);
      if (list === undefined) {
        // The loader refuses pods in undeclared namespaces; stay correct if a model is built by hand.
        this.numbersByNamespace.set(pod.namespace, (list = []));
        this.namespaceLabels.set(pod.namespace, { [NAMESPACE_NAME_LABEL]: pod.namespace });
      }
      list.push(n);
    });
  }

  /** Numbers of the pods a selector peer names, for a policy in `policyNamespace`. */
  podsNamedBy(peer: NetworkPolicyPeer, policyNamespace: string): number[] {
    if (peer.podSelector === undefined && peer.namespaceSelector === undefined) return []; // an ipBlock peer
    const podSelector = peer.podSelector ?? EVERYTHING;
    const namespaces =
      peer.namespaceSelector === undefined
        ? [policyNamespace]
        : [...this.namespaceLabels].filter(([, labels]) => selectorMatches(peer.namespaceSelector!, labels)).map(([name]) => name);
    return namespaces.flatMap((ns) => (this.numbersByNamespace.get(ns) ?? []).filter((n) => selectorMatches(podSelector, this.pods[n].labels)));
  }
}

/** The peer set of one rule's non-empty `from` / `to` list. */
export function buildPeerSet(peers: readonly NetworkPolicyPeer[], policyNamespace: string, directory: PodDirectory): PeerSet {
  const bits = new Int32Array(Math.ceil(directory.pods.length / 32));
  const blocks: IpBlock[] = [];
  for (const peer of peers) {
    if (peer.ipBlock !== undefined) blocks.push(peer.ipBlock);
    else for (const n of directory.podsNamedBy(peer, policyNamespace)) bits[n >>> 5] |= 1 << (n & 31);
  }
  return new PeerSet(bits, blocks.length === 0 ? CidrSet.EMPTY : CidrSet.of(blocks), blocks);
}

/**
 * Two rules with equal keys admit the same addresses, so they share one peer set. The policy's
 * namespace matters only to a peer without a namespaceSelector.
 */
export function peerSetKey(peers: readonly NetworkPolicyPeer[], policyNamespace: string): string {
  const local = peers.some((p) => p.ipBlock === undefined && p.namespaceSelector === undefined);
  return `${local ? policyNamespace : '*'}\n${JSON.stringify(peers)}`;
}
