/**
 * NetworkPolicy decisions on the forwarding path: is this NEW connection allowed into (out of)
 * this pod? Built by `compile` (policy.ts); the layout and the cost of a check are described in
 * policy-layout.ts. Checks allocate nothing and never throw.
 *
 * Where the caller stands (the node pipeline's FORWARD stage):
 * - Ask only for the first packet of a connection, conntrack state NEW. Kubernetes allows the
 *   replies of an allowed connection implicitly; that is conntrack's job (an ESTABLISHED or
 *   RELATED packet is not asked about), and the answer for a reply asked here would be wrong.
 * - Ask after the service DNAT (so the destination is the endpoint pod, not the ClusterIP:
 *   policies name pods, not services) and before any SNAT/masquerade (so the source is the
 *   client pod, not the node).
 * - A connection between two pods needs both answers: `egressAllowed` for the source pod and
 *   `ingressAllowed` for the destination pod. Each node enforces for its own pods, so with
 *   tables compiled for one node, the source's node asks egress and the destination's node
 *   asks ingress; a pod another node enforces for, or an address that is no pod, gets
 *   `true` (nothing to enforce here).
 * - Protocol is the IPv4 protocol number. Only TCP, UDP and SCTP have ports; for anything else
 *   (ICMP) pass port 0: it is allowed by a rule without `ports` and by no rule with them.
 *
 * Kubernetes makes exactly two exceptions to isolation, and so do these tables:
 * - a pod cannot block itself (a connection from a pod to its own address, as a hairpin
 *   through a Service, is always allowed);
 * - an ingress-isolated pod still accepts connections from its own node (here: the node's
 *   address on the pod network, its gateway), so that kubelet-style health checks work. This
 *   can be switched off at compile time. Egress to the node is not exempt.
 * DNS is not exempt: under default-deny egress a pod needs a rule that allows it, e.g.
 *
 *     egress:
 *       - ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
 *
 * (no `to`: any destination on port 53). The usual `to: [{namespaceSelector: kube-system,
 * podSelector: k8s-app=kube-dns}]` form matches nothing in podwire, whose cluster DNS is served
 * by the node at the service address, not by pods; an ipBlock of the DNS address (10.96.0.10/32)
 * works too, if the pipeline asks before the embedded DNS answers.
 */
import { IP_ABSENT, type IpTable } from './policy-ip-table.js';
import { ANY_PEER, ANY_PORT, type DirectionLayout, type PolicyDirection, type PolicyLayout } from './policy-layout.js';
import type { PeerSet } from './policy-peers.js';
import type { PortSet } from './policy-ports.js';
import { explainDecision, type PolicyExplanation } from './policy-explain.js';

export interface PolicyTablesSummary {
  /** Pods these tables enforce for. */
  readonly pods: number;
  readonly ingressIsolated: number;
  readonly egressIsolated: number;
  /** The most grants any one pod has in one direction: the worst-case number a check walks. */
  readonly maxGrants: number;
  /** Grants stored, in both directions: pods with the same rules share theirs. */
  readonly grants: number;
  /** Peer sets, unions included. */
  readonly peerSets: number;
  readonly portSets: number;
  /** Bytes of the peer sets' pod bitsets. */
  readonly peerSetBytes: number;
}

export class PolicyTables {
  // Copied out of the layout so that the hot path reads fields of one object.
  private readonly podNumberOf: IpTable;
  private readonly nodeAddress: Int32Array;
  private readonly localNodeExempt: boolean;
  private readonly ingress: DirectionLayout;
  private readonly egress: DirectionLayout;
  private readonly peerSets: readonly PeerSet[];
  private readonly portSets: readonly PortSet[];

  constructor(readonly layout: PolicyLayout) {
    this.podNumberOf = layout.podNumberOf;
    this.nodeAddress = layout.nodeAddress;
    this.localNodeExempt = layout.localNodeExempt;
    this.ingress = layout.ingress;
    this.egress = layout.egress;
    this.peerSets = layout.peerSets;
    this.portSets = layout.portSets;
  }

  /** May `srcIp` open a connection to pod `dstPodIp` on `protocol`/`dstPort`? */
  ingressAllowed(dstPodIp: number, srcIp: number, protocol: number, dstPort: number): boolean {
    // Addresses become int32 at once: a uint32 above 2^31 is a double, which V8 boxes (allocates)
    // whenever it passes one to a function it has not inlined.
    const dst = dstPodIp | 0;
    const src = srcIp | 0;
    const pod = this.podNumberOf.get(dst);
    if (pod === IP_ABSENT) return true;
    const d = this.ingress;
    if (d.isolated[pod] === 0) return true;
    if (src === dst) return true;
    if (this.localNodeExempt && src === this.nodeAddress[pod]) return true;
    // The receiver of an ingress connection is the pod itself.
    return this.granted(d, pod, this.podNumberOf.get(src), src, pod, protocol, dstPort);
  }

  /** May pod `srcPodIp` open a connection to `dstIp` on `protocol`/`dstPort`? */
  egressAllowed(srcPodIp: number, dstIp: number, protocol: number, dstPort: number): boolean {
    const src = srcPodIp | 0;
    const dst = dstIp | 0;
    const pod = this.podNumberOf.get(src);
    if (pod === IP_ABSENT) return true;
    const d = this.egress;
    if (d.isolated[pod] === 0) return true;
    if (dst === src) return true;
    const peer = this.podNumberOf.get(dst);
    return this.granted(d, pod, peer, dst, peer, protocol, dstPort);
  }

  /**
   * Whether some policy selects pod `podIp` for `direction` in these tables, so that a
   * connection of it gets a verdict at all (flow observers ask, for new connections only).
   */
  isolated(direction: PolicyDirection, podIp: number): boolean {
    const pod = this.podNumberOf.get(podIp | 0);
    if (pod === IP_ABSENT) return false;
    return (direction === 'ingress' ? this.ingress : this.egress).isolated[pod] === 1;
  }

  /**
   * Which policy and rule decide a connection, or why none allows it: for `podwire trace`.
   * Cold path (allocates); it reads the same compiled sets as the checks, so it cannot disagree
   * with them.
   */
  explain(direction: PolicyDirection, podIp: number, peerIp: number, protocol: number, dstPort: number): PolicyExplanation {
    return explainDecision(this.layout, direction, podIp, peerIp, protocol, dstPort);
  }

  /** How many grants a check for this pod may walk in this direction (0 when not isolated). */
  grantCount(direction: PolicyDirection, podIp: number): number {
    const pod = this.podNumberOf.get(podIp);
    if (pod === IP_ABSENT) return 0;
    const d = this.layout[direction];
    return d.grantEnd[pod] - d.grantBegin[pod];
  }

  summary(): PolicyTablesSummary {
    const { ingress, egress, pods, enforced } = this.layout;
    let maxGrants = 0;
    for (const d of [ingress, egress]) {
      for (let n = 0; n < pods.length; n++) maxGrants = Math.max(maxGrants, d.grantEnd[n] - d.grantBegin[n]);
    }
    const count = (a: Uint8Array): number => a.reduce((sum, x) => sum + x, 0);
    return {
      pods: count(enforced),
      ingressIsolated: count(ingress.isolated),
      egressIsolated: count(egress.isolated),
      maxGrants,
      grants: (ingress.grants.length + egress.grants.length) / 2,
      peerSets: this.peerSets.length,
      portSets: this.portSets.length,
      peerSetBytes: this.peerSets.reduce((sum, set) => sum + set.bytes, 0),
    };
  }

  /**
   * Does some grant of pod `pod` admit the peer and the port? `peer` is the other end's pod
   * number (or IP_ABSENT, which is NOT_A_POD), `receiver` the destination's. Ports first:
   * usually a compare or two.
   */
  private granted(d: DirectionLayout, pod: number, peer: number, peerIp: number, receiver: number, protocol: number, dstPort: number): boolean {
    const grants = d.grants;
    const end = 2 * d.grantEnd[pod];
    for (let g = 2 * d.grantBegin[pod]; g < end; g += 2) {
      const ports = grants[g + 1];
      if (ports !== ANY_PORT && !this.portSets[ports].matches(receiver, protocol, dstPort)) continue;
      const peers = grants[g];
      if (peers === ANY_PEER || this.peerSets[peers].matches(peer, peerIp)) return true;
    }
    return false;
  }
}
