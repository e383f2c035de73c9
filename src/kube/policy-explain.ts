/**
 * Why NetworkPolicy allows or denies a connection: the cold-path companion of PolicyTables, for
 * `podwire trace`. It walks every rule of the policies applying to the pod, in policy order,
 * through the rules' own compiled peer and port sets (the checks read their folded unions),
 * and the property tests hold explanations and checks to the same reference.
 */
import { formatCidr, formatIpv4 } from '../packet/addr.js';
import { IPPROTO } from '../packet/ipv4.js';
import type { LabelSelector, NetworkPolicy, NetworkPolicyPeer, Pod } from '../cluster/model.js';
import { formatSelector, selectorMatches } from '../cluster/selector.js';
import { IP_ABSENT } from './policy-ip-table.js';
import { ANY_PEER, ANY_PORT, PORTS_PER_POD, type PolicyDirection, type PolicyLayout } from './policy-layout.js';
import { ingressPortSpec, NamedPortIndex, PortSet, protocolName } from './policy-ports.js';

export type ExplanationReason =
  /** Not a pod, or a pod another node enforces for. */
  | 'not-enforced-here'
  /** No policy selects the pod for this direction. */
  | 'not-isolated'
  /** A pod cannot block itself. */
  | 'same-pod'
  /** An ingress-isolated pod accepts its own node. */
  | 'local-node'
  | 'allowed-by-rule'
  | 'no-rule-allows';

export interface RuleVerdict {
  /** `namespace/name` of the policy. */
  readonly policy: string;
  /** Index of the rule in the policy's `ingress` or `egress` list. */
  readonly rule: number;
  readonly peerMatched: boolean;
  readonly portMatched: boolean;
  /** The rule's `from` / `to`, in words. */
  readonly peers: string;
  /** The rule's ports as compiled for this pod (ingress named ports resolved). */
  readonly ports: string;
}

export interface PolicyExplanation {
  readonly direction: PolicyDirection;
  readonly podIp: number;
  readonly peerIp: number;
  readonly protocol: number;
  readonly dstPort: number;
  readonly allowed: boolean;
  readonly reason: ExplanationReason;
  /** `namespace/name` of the pod, when these tables enforce for it. */
  readonly pod?: string;
  /** Policies that isolate the pod in this direction, `namespace/name`. */
  readonly applying: readonly string[];
  /** Every rule of those policies, with what it matched. */
  readonly rules: readonly RuleVerdict[];
  /** The first rule that admits both peer and port, when the reason is `allowed-by-rule`. */
  readonly allowedBy?: RuleVerdict;
}

export function explainDecision(
  layout: PolicyLayout,
  direction: PolicyDirection,
  podIp: number,
  peerIp: number,
  protocol: number,
  dstPort: number,
): PolicyExplanation {
  const query = { direction, podIp: podIp >>> 0, peerIp: peerIp >>> 0, protocol, dstPort };
  const number = layout.podNumberOf.get(podIp);
  if (number === IP_ABSENT || layout.enforced[number] === 0) return { ...query, allowed: true, reason: 'not-enforced-here', applying: [], rules: [] };

  const pod = layout.pods[number];
  const d = layout[direction];
  // Which policies isolate the pod, found again as the compiler found them (cold path).
  const type = direction === 'ingress' ? 'Ingress' : 'Egress';
  const applyingIndexes = layout.policies.flatMap((p, i) =>
    p.namespace === pod.namespace && p.policyTypes.includes(type) && selectorMatches(p.podSelector, pod.labels) ? [i] : [],
  );
  const base = { ...query, pod: `${pod.namespace}/${pod.name}`, applying: applyingIndexes.map((i) => policyName(layout.policies[i])) };
  if (d.isolated[number] === 0) return { ...base, allowed: true, reason: 'not-isolated', rules: [] };

  const peer = layout.podNumberOf.get(peerIp);
  const receiver = direction === 'ingress' ? number : peer;
  const rules: RuleVerdict[] = [];
  for (const i of applyingIndexes) {
    const policy = layout.policies[i];
    const peerLists = direction === 'ingress' ? policy.ingress.map((r) => r.from) : policy.egress.map((r) => r.to);
    peerLists.forEach((peerList, r) => {
      const peerId = d.rulePeers[i][r];
      const ports = portSetOf(d.rulePorts[i][r], policy, r, pod, layout);
      rules.push({
        policy: policyName(policy),
        rule: r,
        peerMatched: peerId === ANY_PEER || layout.peerSets[peerId].matches(peer, peerIp),
        portMatched: ports === undefined || ports.matches(receiver, protocol, dstPort),
        peers: describePeers(peerList, policy.namespace),
        ports: ports === undefined ? 'any port' : ports.describe(),
      });
    });
  }

  if ((peerIp | 0) === (podIp | 0)) return { ...base, allowed: true, reason: 'same-pod', rules };
  if (direction === 'ingress' && layout.localNodeExempt && (peerIp | 0) === layout.nodeAddress[number]) {
    return { ...base, allowed: true, reason: 'local-node', rules };
  }
  const allowedBy = rules.find((r) => r.peerMatched && r.portMatched);
  return allowedBy === undefined
    ? { ...base, allowed: false, reason: 'no-rule-allows', rules }
    : { ...base, allowed: true, reason: 'allowed-by-rule', rules, allowedBy };
}

/** A rule's port set, undefined for every port; ingress named ports are resolved again for `pod`. */
function portSetOf(portId: number, policy: NetworkPolicy, rule: number, pod: Pod, layout: PolicyLayout): PortSet | undefined {
  if (portId === ANY_PORT) return undefined;
  if (portId !== PORTS_PER_POD) return layout.portSets[portId];
  // Resolved ingress ports are plain numbers: no named-port columns are needed.
  return new PortSet(ingressPortSpec(policy.ingress[rule].ports, pod), new NamedPortIndex([]));
}

/**
 * Lines for `podwire trace`: the verdict first, then, for a denial, each rule and what it
 * failed to match. For example:
 *
 *     ingress to default/db (10.244.1.3) from 10.244.2.4 TCP 5432: denied, no rule of default/db-access allows it
 *       default/db-access ingress[0]: from pods role=api in namespace default (peer: no), TCP 5432 (port: yes)
 */
export function formatExplanation(e: PolicyExplanation): string[] {
  const pod = e.pod === undefined ? formatIpv4(e.podIp) : `${e.pod} (${formatIpv4(e.podIp)})`;
  const way = e.direction === 'ingress' ? `ingress to ${pod} from ${formatIpv4(e.peerIp)}` : `egress from ${pod} to ${formatIpv4(e.peerIp)}`;
  const port = e.protocol === IPPROTO.TCP || e.protocol === IPPROTO.UDP || e.protocol === IPPROTO.SCTP ? ` ${e.dstPort}` : '';
  const head = `${way} ${protocolName(e.protocol)}${port}: `;
  switch (e.reason) {
    case 'not-enforced-here':
      return [`${head}allowed, not a pod enforced by these tables`];
    case 'not-isolated':
      return [`${head}allowed, no policy selects the pod for ${e.direction}`];
    case 'same-pod':
      return [`${head}allowed, a pod cannot block itself`];
    case 'local-node':
      return [`${head}allowed, a pod always accepts its own node`];
    case 'allowed-by-rule':
      return [`${head}allowed by ${ruleName(e.allowedBy!, e.direction)}: ${describeRule(e.allowedBy!, e.direction)}`];
    case 'no-rule-allows': {
      const why = e.rules.length === 0 ? `isolated by ${e.applying.join(', ')}, which allow no ${e.direction}` : `no rule of ${e.applying.join(', ')} allows it`;
      return [`${head}denied, ${why}`, ...e.rules.map((r) => `  ${ruleName(r, e.direction)}: ${describeRule(r, e.direction)} (peer: ${yesNo(r.peerMatched)}, port: ${yesNo(r.portMatched)})`)];
    }
  }
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

function ruleName(r: RuleVerdict, direction: PolicyDirection): string {
  return `${r.policy} ${direction}[${r.rule}]`;
}

function describeRule(r: RuleVerdict, direction: PolicyDirection): string {
  return `${direction === 'ingress' ? 'from' : 'to'} ${r.peers}, ${r.ports}`;
}

function policyName(p: NetworkPolicy): string {
  return `${p.namespace}/${p.name}`;
}

/** A `from` / `to` list in words, e.g. `pods role=client in namespaces user=alice or 192.0.2.0/24`. */
function describePeers(peers: readonly NetworkPolicyPeer[], policyNamespace: string): string {
  if (peers.length === 0) return 'anywhere';
  return peers.map((p) => describePeer(p, policyNamespace)).join(' or ');
}

function describePeer(p: NetworkPolicyPeer, policyNamespace: string): string {
  if (p.ipBlock !== undefined) {
    const except = p.ipBlock.except.map(formatCidr);
    return formatCidr(p.ipBlock.cidr) + (except.length === 0 ? '' : ` except ${except.join(', ')}`);
  }
  const pods = p.podSelector === undefined || isEmpty(p.podSelector) ? 'all pods' : `pods ${formatSelector(p.podSelector)}`;
  const where =
    p.namespaceSelector === undefined
      ? `namespace ${policyNamespace}`
      : isEmpty(p.namespaceSelector)
        ? 'all namespaces'
        : `namespaces ${formatSelector(p.namespaceSelector)}`;
  return `${pods} in ${where}`;
}

function isEmpty(s: LabelSelector): boolean {
  return Object.keys(s.matchLabels).length === 0 && s.matchExpressions.length === 0;
}
