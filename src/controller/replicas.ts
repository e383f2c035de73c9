/**
 * The controller's pod management in one pure pass: what kube-controller-manager's ReplicaSet
 * controller and pod garbage collector, and then kube-scheduler, would do to bring the pods
 * that exist (`bound`) to what was applied (`desired`) on the nodes of the cluster now.
 *
 * The pass has no memory: everything it knows is in its input, so running it again on its
 * own result plans nothing. Placement, addressing and naming are mutate.ts' rules (the ones
 * `podwire scale` and `delete` use), extended with node readiness and the reasons a pod waits.
 */

import { cidrContains, formatCidr, type Cidr } from '../packet/addr.js';
import type { Deployment, Labels, Pod, PodSpec } from '../cluster/model.js';
import { podMac } from '../cluster/ipam.js';
import { leastLoadedNode, lowestFreeAddress, podKey, replicaName, replicaPod } from '../cluster/mutate.js';
import { canonicalJson } from '../cluster/naming.js';
import { randomUuid, type Random } from '../cluster/random.js';
import { equalitySelector, formatSelector, selectorMatches } from '../cluster/selector.js';

export interface NodeView {
  readonly name: string;
  readonly labels: Labels;
  readonly podCIDR: Cidr;
  /** Ready now (its agent renews its lease). */
  readonly ready: boolean;
}

export interface PendingPod {
  readonly namespace: string;
  readonly name: string;
  readonly reason: string;
}

export interface PodPlan {
  readonly create: readonly Pod[];
  readonly remove: readonly Pod[];
  /** Pods that could not be placed now, with the scheduler's reason ("0/3 nodes are available: ..."), retried next time. */
  readonly pending: readonly PendingPod[];
  /** The deployments with `pods` set to their current replica names (after the plan). */
  readonly deployments: readonly Deployment[];
}

export interface PlanInput {
  /**
   * The applied objects resolved: deployments with template and replicas (their `pods` is
   * ignored), standalone pods as declared (their node, ip, mac and uid are ignored; pods with
   * an owner are a deployment's and ignored here, so a loaded Cluster's pods can be passed whole).
   */
  readonly desired: { readonly deployments: readonly Deployment[]; readonly pods: readonly Pod[] };
  readonly nodes: readonly NodeView[];
  /** The pods that exist now, each with node, ip, mac and uid, in creation order. */
  readonly bound: readonly Pod[];
  readonly random: Random;
}

/** A pod to make: its spec decides where, `make` builds it once placed. */
interface Request {
  readonly namespace: string;
  readonly name: string;
  readonly spec: PodSpec;
  readonly make: (node: string, ip: number) => Pod;
}

/**
 * What the ReplicaSet controller and the scheduler do in one pass. Bound pods are removed
 * when their node left the cluster, when their address is not in their node's pod CIDR (the
 * node came back with another subnet), when they are no longer declared, when a standalone
 * pod's spec or labels changed (it is made again), when a deployment's pod has an older
 * pod-template-hash, and for a deployment's surplus: pods on NotReady nodes first, then the
 * newest, as a ReplicaSet ranks them. Pods on NotReady nodes are otherwise kept and counted.
 * New pods go to Ready nodes only: spec.nodeName binds, else the Ready nodes matching
 * nodeSelector with a free address, fewest pods first, ties by node order; pods bound by
 * nodeName are placed before spread ones. A new pod's IP is the lowest free address of its
 * node's pod CIDR; an address of a pod removed in this pass is not handed out again until
 * the next. Deterministic for a given random.
 */
export function planPods(input: PlanInput): PodPlan {
  const { desired, nodes, bound, random } = input;
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const declaredPods = new Map(desired.pods.filter((p) => p.owner === undefined).map((p) => [podKey(p.namespace, p.name), p]));
  const declaredDeployments = new Map(desired.deployments.map((d) => [podKey(d.namespace, d.name), d]));

  const removed = new Set<Pod>();
  const present = new Set<string>();
  const replicasOf = new Map<Deployment, Pod[]>(desired.deployments.map((d) => [d, []]));
  for (const pod of bound) {
    const node = nodeByName.get(pod.node);
    if (node === undefined || !cidrContains(node.podCIDR, pod.ip)) {
      removed.add(pod);
      continue;
    }
    const key = podKey(pod.namespace, pod.name);
    if (pod.owner === undefined) {
      const declared = declaredPods.get(key);
      if (declared === undefined || present.has(key) || !sameDeclaration(declared, pod)) removed.add(pod);
      else present.add(key);
      continue;
    }
    const deployment = declaredDeployments.get(podKey(pod.namespace, pod.owner.name));
    if (deployment === undefined || pod.owner.podTemplateHash !== deployment.podTemplateHash) removed.add(pod);
    else replicasOf.get(deployment)!.push(pod);
  }
  for (const [deployment, replicas] of replicasOf) {
    for (const pod of surplus(replicas, deployment.replicas, nodeByName)) removed.add(pod);
  }

  const kept = bound.filter((p) => !removed.has(p));
  const load = new Map<string, number>();
  const used = new Map<string, Set<number>>(nodes.map((n) => [n.name, new Set<number>()]));
  for (const pod of kept) load.set(pod.node, (load.get(pod.node) ?? 0) + 1);
  // Removed pods' addresses too: their sandboxes may still be up while the new pods start.
  for (const pod of bound) used.get(pod.node)?.add(pod.ip);

  const taken = new Set([...bound.map((p) => podKey(p.namespace, p.name)), ...declaredPods.keys()]);
  const pending: PendingPod[] = [];
  const requests: Request[] = [];
  const keptKeys = new Set(kept.map((p) => podKey(p.namespace, p.name)));
  for (const [key, pod] of declaredPods) {
    if (present.has(key)) continue;
    // The API server refuses a second object of the same name (a replica that happens to have it).
    if (keptKeys.has(key)) {
      pending.push({ namespace: pod.namespace, name: pod.name, reason: `a pod named ${key} exists already` });
      continue;
    }
    requests.push({ namespace: pod.namespace, name: pod.name, spec: pod, make: (node, ip) => ({ ...pod, uid: randomUuid(random), node, ip, mac: podMac(ip) }) });
  }
  for (const [deployment, replicas] of replicasOf) {
    for (let missing = deployment.replicas - keptCount(replicas, removed); missing > 0; missing--) {
      const name = replicaName(deployment, taken, random);
      if (name === undefined) {
        pending.push({ namespace: deployment.namespace, name: `${deployment.name}-${deployment.podTemplateHash}-`, reason: 'could not generate a pod name that is not taken' });
        break;
      }
      taken.add(podKey(deployment.namespace, name));
      requests.push({ namespace: deployment.namespace, name, spec: deployment.template.spec, make: (node, ip) => replicaPod(deployment, name, randomUuid(random), node, ip) });
    }
  }

  const create: Pod[] = [];
  // As resolve.ts does: pods bound by nodeName count before any pod is spread.
  const ordered = [...requests.filter((r) => r.spec.nodeName !== undefined), ...requests.filter((r) => r.spec.nodeName === undefined)];
  for (const request of ordered) {
    const placed = place(request.spec, nodes, load, used);
    if (!placed.ok) {
      pending.push({ namespace: request.namespace, name: request.name, reason: placed.reason });
      continue;
    }
    const pod = request.make(placed.node.name, placed.ip);
    create.push(pod);
    load.set(pod.node, (load.get(pod.node) ?? 0) + 1);
    used.get(pod.node)!.add(pod.ip);
  }

  const deployments = desired.deployments.map((d) => ({
    ...d,
    pods: [...replicasOf.get(d)!.filter((p) => !removed.has(p)), ...create.filter((p) => p.owner?.name === d.name && p.namespace === d.namespace)].map((p) => p.name),
  }));
  return { create, remove: bound.filter((p) => removed.has(p)), pending, deployments };
}

/** The spec and labels a pod was made from; what it was given when bound (and where it was declared) is not compared. */
function sameDeclaration(declared: Pod, bound: Pod): boolean {
  return canonicalJson(declarationOf(declared)) === canonicalJson(declarationOf(bound));
}

function declarationOf(pod: Pod): { labels: Labels; spec: PodSpec } {
  // The rest is the PodSpec; a field added to Pod but not to PodSpec belongs in this list.
  const { namespace, name, uid, labels, node, ip, mac, owner, origin, ...spec } = pod;
  return { labels, spec };
}

function keptCount(replicas: readonly Pod[], removed: ReadonlySet<Pod>): number {
  return replicas.filter((p) => !removed.has(p)).length;
}

/**
 * The replicas a ReplicaSet deletes when it has more than `wanted`: not-ready ones first (a
 * NotReady node's pods are not ready), then the newest (later in creation order).
 */
function surplus(replicas: readonly Pod[], wanted: number, nodes: ReadonlyMap<string, NodeView>): Pod[] {
  const excess = replicas.length - wanted;
  if (excess <= 0) return [];
  const ranked = replicas.map((pod, order) => ({ pod, order, ready: nodes.get(pod.node)!.ready }));
  ranked.sort((a, b) => Number(a.ready) - Number(b.ready) || b.order - a.order);
  return ranked.slice(0, excess).map((r) => r.pod);
}

type Placed = { readonly ok: true; readonly node: NodeView; readonly ip: number } | { readonly ok: false; readonly reason: string };

/** kube-scheduler for one pod, with `load` and `used` as they stand after the pods before it. */
function place(spec: PodSpec, nodes: readonly NodeView[], load: ReadonlyMap<string, number>, used: ReadonlyMap<string, ReadonlySet<number>>): Placed {
  const selector = equalitySelector(spec.nodeSelector);
  const freeAddress = (node: NodeView): number | undefined => lowestFreeAddress(node.podCIDR, used.get(node.name)!);

  if (spec.nodeName !== undefined) {
    const node = nodes.find((n) => n.name === spec.nodeName);
    if (node === undefined) return { ok: false, reason: `node ${JSON.stringify(spec.nodeName)} does not exist (nodes: ${nodes.map((n) => n.name).join(', ')})` };
    if (!selectorMatches(selector, node.labels)) return { ok: false, reason: `node ${node.name} (from spec.nodeName) does not match ${formatSelector(selector)}` };
    if (!node.ready) return { ok: false, reason: `node ${node.name} (from spec.nodeName) is not ready` };
    const ip = freeAddress(node);
    if (ip === undefined) return { ok: false, reason: `no pod address left on node ${node.name}: ${formatCidr(node.podCIDR)} is full` };
    return { ok: true, node, ip };
  }

  if (nodes.length === 0) return { ok: false, reason: 'no nodes available to schedule pods' };
  // Each node that cannot take the pod is counted once, under the first check it fails.
  const failures = new Map<string, number>();
  const fail = (why: string): void => void failures.set(why, (failures.get(why) ?? 0) + 1);
  const candidates: NodeView[] = [];
  for (const node of nodes) {
    if (!node.ready) fail('node(s) were not ready');
    else if (!selectorMatches(selector, node.labels)) fail("node(s) didn't match Pod's node affinity/selector");
    else if (freeAddress(node) === undefined) fail('node(s) had no free pod address');
    else candidates.push(node);
  }
  const node = leastLoadedNode(candidates, spec, (n) => load.get(n.name) ?? 0);
  if (node === undefined) {
    // kube-scheduler's FitError: the counted reasons, sorted as text.
    const reasons = [...failures].map(([why, count]) => `${count} ${why}`).sort();
    return { ok: false, reason: `0/${nodes.length} nodes are available: ${reasons.join(', ')}.` };
  }
  return { ok: true, node, ip: freeAddress(node)! };
}
