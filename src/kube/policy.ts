/**
 * NetworkPolicy (networking.k8s.io/v1) compiled into per-pod decision tables. Pure: a cluster
 * model in, tables out; recompile when pods, namespaces or policies change (a full rebuild is
 * the only update, so it is always the recovery path too).
 *
 *     const tables = compile(cluster, { node: 'node-1' });
 *     tables.ingressAllowed(dstPodIp, srcIp, IPPROTO.TCP, 80);   // NEW connections only
 *
 * The semantics are Kubernetes':
 * - a pod is isolated for ingress (egress) iff some policy *in its namespace* selects it and
 *   has Ingress (Egress) in its policyTypes; a pod that is not isolated allows everything in
 *   that direction;
 * - an isolated pod allows the union of what the rules of all those policies allow; a rule
 *   needs both its peers and its ports to match; an empty `from`/`to` matches every peer and an
 *   empty `ports` every port;
 * - peers and ports: see policy-peers.ts and policy-ports.ts; the two built-in exceptions
 *   (a pod and itself, a pod and its own node) and where the pipeline must ask: policy-tables.ts;
 * - the layout and the cost of a check: policy-layout.ts.
 */
import type { Cluster, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, Pod } from '../cluster/model.js';
import { selectorMatches } from '../cluster/selector.js';
import { IpTable } from './policy-ip-table.js';
import { ANY_PEER, ANY_PORT, NOT_COMPILED, PORTS_PER_POD, type DirectionLayout, type PolicyDirection } from './policy-layout.js';
import { buildPeerSet, peerSetKey, PodDirectory, unionOfPeerSets, type PeerSet } from './policy-peers.js';
import { egressPortSpec, ingressPortSpec, NamedPortIndex, PortSet, portSpecKey, type PortSpec } from './policy-ports.js';
import { PolicyTables } from './policy-tables.js';

export { PolicyTables, type PolicyTablesSummary } from './policy-tables.js';
export { formatExplanation, type ExplanationReason, type PolicyExplanation, type RuleVerdict } from './policy-explain.js';
export type { PolicyDirection } from './policy-layout.js';
export { PROTOCOL_NUMBER, protocolName } from './policy-ports.js';

export interface CompileOptions {
  /**
   * Enforce for this node's pods only: what a node agent needs (egress for its pods as
   * sources, ingress for its pods as destinations). Peers still range over the whole cluster.
   * Every pod is enforced for when unset.
   */
  readonly node?: string;
  /**
   * Kubernetes lets an ingress-isolated pod accept connections from its own node ("the only
   * allowed connections into the pod are those from the pod's node and those allowed by the
   * ingress list"). True by default; false makes the node subject to the rules like any peer.
   */
  readonly localNodeExempt?: boolean;
  /**
   * Bytes the union peer sets (see policy-layout.ts) may take in all, each pods/8: memory
   * traded for speed. 16 MiB by default; 0 gives every rule its own grant.
   */
  readonly unionBudget?: number;
}

export function compile(cluster: Cluster, options: CompileOptions = {}): PolicyTables {
  const directory = new PodDirectory(cluster);
  const sets = new SetInterner(directory, new NamedPortIndex(cluster.pods), options.unionBudget ?? DEFAULT_UNION_BUDGET);
  const enforced = cluster.pods.map((pod) => options.node === undefined || pod.node === options.node);
  const gateways = new Map(cluster.nodes.map((n) => [n.name, n.gateway]));
  const policiesIn = indexPolicies(cluster.networkPolicies);

  const ingress = new DirectionBuilder('ingress', sets, cluster.networkPolicies);
  const egress = new DirectionBuilder('egress', sets, cluster.networkPolicies);
  cluster.pods.forEach((pod, n) => {
    const candidates = enforced[n] ? (policiesIn.get(pod.namespace) ?? []) : [];
    const selecting = candidates.filter(({ policy }) => selectorMatches(policy.podSelector, pod.labels));
    ingress.addPod(pod, selecting);
    egress.addPod(pod, selecting);
  });

  return new PolicyTables({
    podNumberOf: IpTable.from(new Map(cluster.pods.map((pod, n) => [pod.ip, n]))),
    pods: cluster.pods,
    enforced: Uint8Array.from(enforced, (e) => (e ? 1 : 0)),
    // A pod whose node is unknown gets its own address, which is exempt anyway.
    nodeAddress: Int32Array.from(cluster.pods, (pod) => gateways.get(pod.node) ?? pod.ip),
    localNodeExempt: options.localNodeExempt ?? true,
    ingress: ingress.finish(),
    egress: egress.finish(),
    peerSets: sets.peerSets,
    portSets: sets.portSets,
    policies: cluster.networkPolicies,
  });
}

interface IndexedPolicy {
  readonly policy: NetworkPolicy;
  /** Position in `cluster.networkPolicies`. */
  readonly index: number;
}

function indexPolicies(policies: readonly NetworkPolicy[]): Map<string, IndexedPolicy[]> {
  const byNamespace = new Map<string, IndexedPolicy[]>();
  policies.forEach((policy, index) => {
    let list = byNamespace.get(policy.namespace);
    if (list === undefined) byNamespace.set(policy.namespace, (list = []));
    list.push({ policy, index });
  });
  return byNamespace;
}

type Rule = NetworkPolicyIngressRule | NetworkPolicyEgressRule;

/**
 * The default of `unionBudget`, in bytes of pod bitsets. Unions make a check cost one peer
 * test per distinct port set instead of one per rule, but pods selected by different
 * combinations of policies need different unions, and in a pathological cluster there could
 * be one per pod. Past the budget, rules keep their own grants: checks cost what they would
 * without unions, and memory stays bounded.
 */
const DEFAULT_UNION_BUDGET = 16 * 1024 * 1024;

/**
 * Hands out shared peer-set and port-set ids. A rule's peer set never depends on the pod it
 * applies to, so it is looked up by rule; so are its port sets, except for ingress rules with
 * named ports, which resolve against each selected pod and are shared by content.
 */
class SetInterner {
  readonly peerSets: PeerSet[] = [];
  readonly portSets: PortSet[] = [];
  private readonly peerIdByKey = new Map<string, number>();
  private readonly peerIdByRule = new Map<Rule, number>();
  private readonly portIdByKey = new Map<string, number>();
  private readonly portIdByRule = new Map<Rule, number>();
  private readonly unionIdByMembers = new Map<string, number>();

  constructor(
    private readonly directory: PodDirectory,
    private readonly namedPorts: NamedPortIndex,
    /** Bytes the union peer sets may still take. */
    private unionBudget: number,
  ) {}

  /** A peer set admitting what any of `peerIds` (two or more, no ANY_PEER) admits; undefined past the budget. */
  unionId(peerIds: readonly number[]): number | undefined {
    const key = [...peerIds].sort((a, b) => a - b).join(',');
    let id = this.unionIdByMembers.get(key);
    if (id !== undefined) return id;
    const members = peerIds.map((i) => this.peerSets[i]);
    // Every bitset spans all pods, so the union costs what any member does.
    if (members[0].bytes > this.unionBudget) return undefined;
    const union = unionOfPeerSets(members);
    this.unionBudget -= union.bytes;
    id = this.peerSets.push(union) - 1;
    this.unionIdByMembers.set(key, id);
    return id;
  }

  peerId(rule: Rule, direction: PolicyDirection, policyNamespace: string): number {
    const peers = direction === 'ingress' ? (rule as NetworkPolicyIngressRule).from : (rule as NetworkPolicyEgressRule).to;
    if (peers.length === 0) return ANY_PEER;
    let id = this.peerIdByRule.get(rule);
    if (id !== undefined) return id;
    const key = peerSetKey(peers, policyNamespace);
    id = this.peerIdByKey.get(key);
    if (id === undefined) {
      id = this.peerSets.push(buildPeerSet(peers, policyNamespace, this.directory)) - 1;
      this.peerIdByKey.set(key, id);
    }
    this.peerIdByRule.set(rule, id);
    return id;
  }

  /** Whether the rule's port set depends on the pod it applies to: ingress named ports. */
  resolvesPerPod(rule: Rule, direction: PolicyDirection): boolean {
    return direction === 'ingress' && rule.ports.some((p) => typeof p.port === 'string');
  }

  portId(rule: Rule, direction: PolicyDirection, receiver: Pod): number {
    if (rule.ports.length === 0) return ANY_PORT;
    if (!this.resolvesPerPod(rule, direction)) {
      let id = this.portIdByRule.get(rule);
      if (id === undefined) {
        id = this.portSetId(direction === 'ingress' ? ingressPortSpec(rule.ports, receiver) : egressPortSpec(rule.ports));
        this.portIdByRule.set(rule, id);
      }
      return id;
    }
    return this.portSetId(ingressPortSpec(rule.ports, receiver));
  }

  private portSetId(spec: PortSpec): number {
    const key = portSpecKey(spec);
    let id = this.portIdByKey.get(key);
    if (id === undefined) {
      id = this.portSets.push(new PortSet(spec, this.namedPorts)) - 1;
      this.portIdByKey.set(key, id);
    }
    return id;
  }
}

/** Accumulates one direction's pods in order, then packs them into typed arrays. */
class DirectionBuilder {
  private readonly isolated: number[] = [];
  private readonly grantBegin: number[] = [];
  private readonly grantEnd: number[] = [];
  private readonly grants: number[] = [];
  /** A grant list (ids joined) → where it starts in `grants`: pods with equal lists share it. */
  private readonly spanByGrants = new Map<string, number>();
  private readonly rulePeers: Int32Array[];
  private readonly rulePorts: Int32Array[];

  constructor(
    private readonly direction: PolicyDirection,
    private readonly sets: SetInterner,
    policies: readonly NetworkPolicy[],
  ) {
    const ruleCounts = policies.map((p) => (direction === 'ingress' ? p.ingress.length : p.egress.length));
    this.rulePeers = ruleCounts.map((n) => new Int32Array(n).fill(NOT_COMPILED));
    this.rulePorts = ruleCounts.map((n) => new Int32Array(n).fill(NOT_COMPILED));
  }

  /**
   * Adds the next pod in `cluster.pods` order. `selecting`: the policies of its namespace whose
   * podSelector matches it, any type; none for a pod not enforced here.
   */
  addPod(pod: Pod, selecting: readonly IndexedPolicy[]): void {
    const type = this.direction === 'ingress' ? 'Ingress' : 'Egress';
    const applying = selecting.filter(({ policy }) => policy.policyTypes.includes(type));
    /** Port-set id → the distinct peer-set ids of the rules allowing those ports. */
    const peersByPorts = new Map<number, Set<number>>();
    for (const { policy, index } of applying) {
      const rules: readonly Rule[] = this.direction === 'ingress' ? policy.ingress : policy.egress;
      rules.forEach((rule, r) => {
        const peers = this.sets.peerId(rule, this.direction, policy.namespace);
        const ports = this.sets.portId(rule, this.direction, pod);
        this.rulePeers[index][r] = peers;
        this.rulePorts[index][r] = this.sets.resolvesPerPod(rule, this.direction) ? PORTS_PER_POD : ports;
        let group = peersByPorts.get(ports);
        if (group === undefined) peersByPorts.set(ports, (group = new Set()));
        group.add(peers);
      });
    }
    const grants: number[] = [];
    for (const [ports, group] of peersByPorts) grants.push(...this.foldedGrants([...group], ports));
    this.isolated.push(applying.length > 0 ? 1 : 0);
    this.addSpan(grants);
  }

  /** Rules with the same ports become one grant whose peers are the union of theirs. */
  private foldedGrants(peerIds: readonly number[], ports: number): number[] {
    if (peerIds.includes(ANY_PEER)) return [ANY_PEER, ports];
    const union = peerIds.length === 1 ? peerIds[0] : this.sets.unionId(peerIds);
    if (union !== undefined) return [union, ports];
    return peerIds.flatMap((peers) => [peers, ports]);
  }

  private addSpan(grants: readonly number[]): void {
    const key = grants.join(',');
    let begin = this.spanByGrants.get(key);
    if (begin === undefined) {
      begin = this.grants.length / 2;
      this.grants.push(...grants);
      this.spanByGrants.set(key, begin);
    }
    this.grantBegin.push(begin);
    this.grantEnd.push(begin + grants.length / 2);
  }

  finish(): DirectionLayout {
    return {
      isolated: Uint8Array.from(this.isolated),
      grantBegin: Int32Array.from(this.grantBegin),
      grantEnd: Int32Array.from(this.grantEnd),
      grants: Int32Array.from(this.grants),
      rulePeers: this.rulePeers,
      rulePorts: this.rulePorts,
    };
  }
}
