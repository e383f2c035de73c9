/**
 * The compiled form of a cluster's NetworkPolicies: what `compile` (policy.ts) builds and what
 * `PolicyTables` (policy-tables.ts) and `explain` (policy-explain.ts) read.
 *
 * Every pod of the cluster has a number, its position in `cluster.pods`, found from its
 * address by one hash probe. Pods are numbered for two reasons: the pods the tables enforce
 * for (all, or one node's) keep their decision data at their number, and peer sets and named
 * ports are columns indexed by the number of the pod at the other end. Per enforced pod and
 * direction:
 * - `isolated`: whether some policy in the pod's namespace selects it with that direction in
 *   its policyTypes. A pod that is not isolated allows everything in that direction.
 * - a span of *grants* in one flat Int32Array: pairs (peer-set id, port-set id). A connection
 *   is allowed when some grant admits both its peer and its port. `ANY_PEER` stands for an
 *   empty `from`/`to`, `ANY_PORT` for an empty `ports`. An isolated pod with no grant (a
 *   default-deny policy) denies all.
 *
 * From rules to grants: a rule admits (its peers × its ports), and the pod admits the union
 * over its rules. Rules allowing the same port set are folded into one grant whose peer set is
 * the union of theirs (a rule "x AND p" and a rule "y AND p" allow exactly "(x OR y) AND p"),
 * so a pod has one grant per distinct port set among its rules, however many policies name
 * those ports. Union peer sets are bounded by a memory budget (see policy.ts); past it, rules
 * keep a grant each.
 *
 * Peer sets and port sets are shared: every rule with the same peers (in the same namespace,
 * when that matters) points at one peer set, every rule allowing the same ports at one port
 * set, and every pod with the same rules at the same unions. A peer set costs pods/8 bytes, so
 * memory is (distinct rules + unions) × pods / 8, not rules times selected pods.
 *
 * Cost of a check, for the pod in question:
 *   1 hash probe (its address → its number); if it is isolated,
 *   + 1 hash probe (the other end's address → its pod number, or NOT_A_POD)
 *   + for each grant of the pod, until one matches:
 *       port set: one compare per (protocol, range), one load per named egress port
 *       peer set: one bit test (pods) + one hash probe per prefix length among its ipBlocks
 * Grants number at most the rules selecting that pod (usually the distinct port sets), so the
 * cost never depends on how many pods, namespaces or policies the cluster has, and a check
 * allocates nothing. Compiling costs O(policies × pods in their namespace) selector
 * evaluations to find who is selected, plus O(distinct peers × pods in the namespaces they
 * name) to fill the peer sets.
 *
 * Per pod there is a fixed handful of bytes (isolation flags, a grant span per direction, its
 * node's address); grant lists are shared by pods with the same rules. The `rule*` arrays keep
 * each rule's own peer and port sets, per policy, for explanations only.
 */
import type { NetworkPolicy, Pod } from '../cluster/model.js';
import type { PeerSet } from './policy-peers.js';
import type { PortSet } from './policy-ports.js';
import type { IpTable } from './policy-ip-table.js';

/** Grant peer id for an empty `from` / `to`: every address. */
export const ANY_PEER = -1;
/** Grant port id for an empty `ports`: every protocol and port. */
export const ANY_PORT = -1;

export type PolicyDirection = 'ingress' | 'egress';

/** Rule port id, explanations only: an ingress rule with named ports, resolved per pod. */
export const PORTS_PER_POD = -2;
/** Rule id, explanations only: the rule's policy selects no pod enforced here. */
export const NOT_COMPILED = -3;

export interface DirectionLayout {
  /** By pod number: 1 where the pod is isolated in this direction. */
  readonly isolated: Uint8Array;
  /**
   * By pod number: the pod's grants are pairs [grantBegin[n], grantEnd[n]) of `grants`. Pods
   * with the same grants share one span.
   */
  readonly grantBegin: Int32Array;
  readonly grantEnd: Int32Array;
  /** Pairs: grants[2g] is a peer-set id or ANY_PEER, grants[2g + 1] a port-set id or ANY_PORT. */
  readonly grants: Int32Array;

  /**
   * Cold, for explanations: by policy index, then by rule index in this direction, the rule's
   * own peer-set id (or ANY_PEER) and port-set id (or ANY_PORT, PORTS_PER_POD); NOT_COMPILED
   * for policies that apply to no pod enforced here.
   */
  readonly rulePeers: readonly Int32Array[];
  readonly rulePorts: readonly Int32Array[];
}

export interface PolicyLayout {
  /** Pod address → pod number. */
  readonly podNumberOf: IpTable;
  /** `cluster.pods`: pod number → pod. */
  readonly pods: readonly Pod[];
  /** 1 for the pods these tables enforce for. */
  readonly enforced: Uint8Array;
  /** Gateway (the node's own address on the pod network) of each pod's node, as int32. */
  readonly nodeAddress: Int32Array;
  /** Whether connections from a pod's own node bypass its ingress isolation (see CompileOptions). */
  readonly localNodeExempt: boolean;
  readonly ingress: DirectionLayout;
  readonly egress: DirectionLayout;
  readonly peerSets: readonly PeerSet[];
  readonly portSets: readonly PortSet[];
  readonly policies: readonly NetworkPolicy[];
}
