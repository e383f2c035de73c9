/**
 * Changes to a running cluster's desired state, as the Deployment and ReplicaSet
 * controllers make them: scaling a Deployment and deleting a pod (whose ReplicaSet then
 * replaces it). Pure: a new Cluster in, a new Cluster out; the node agents reconcile.
 *
 * New replicas are named like the first ones (`<deployment>-<pod-template-hash>-<5 chars>`),
 * placed on the node with the fewest pods among those the template's nodeSelector allows,
 * and given the lowest free address of that node's pod CIDR. Scaling down removes the
 * newest replicas first, as a ReplicaSet does when all its pods are equally ready.
 */
import { cidrAddress, cidrSize, type Cidr } from '../packet/addr.js';
import { equalitySelector, selectorMatches } from './selector.js';
import type { Cluster, Deployment, Pod } from './model.js';
import { podMac } from './ipam.js';
import { generateName } from './naming.js';
import { randomUuid, type Random } from './random.js';
import type { PlacementRequest, SchedulableNode } from './scheduler.js';

/** Attempts at a fresh generated name before giving up, as resolve.ts allows. */
const MAX_NAME_ATTEMPTS = 100;

export class MutationError extends Error {}

function findDeployment(cluster: Cluster, namespace: string, name: string): Deployment {
  const found = cluster.deployments.find((d) => d.namespace === namespace && d.name === name);
  if (found === undefined) {
    const names = cluster.deployments.filter((d) => d.namespace === namespace).map((d) => d.name);
    throw new MutationError(`deployment ${namespace}/${name} not found${names.length > 0 ? ` (deployments in ${namespace}: ${names.join(', ')})` : ''}`);
  }
  return found;
}

/** A new replica from the deployment's template, named, placed and addressed. */
function newReplica(cluster: Cluster, pods: readonly Pod[], deployment: Deployment, random: Random): Pod {
  const name = replicaName(deployment, new Set(pods.map((p) => podKey(p.namespace, p.name))), random);
  if (name === undefined) throw new MutationError(`could not generate a pod name for deployment ${deployment.namespace}/${deployment.name} that is not taken`);
  const node = leastLoadedNode(cluster.nodes, deployment.template.spec, (n) => pods.filter((p) => p.node === n.name).length);
  if (node === undefined) throw new MutationError('no node matches the template\'s nodeName and nodeSelector');
  const ip = lowestFreeAddress(node.podCIDR, new Set(pods.filter((p) => p.node === node.name).map((p) => p.ip)));
  if (ip === undefined) throw new MutationError(`node ${node.name} has no pod address left in its pod CIDR`);
  return replicaPod(deployment, name, randomUuid(random), node.name, ip);
}

// The helpers below are shared with the controller (src/controller/replicas.ts), which makes
// the same pods from the same rules, pass after pass.

/** The key pods are unique by: names are unique within a namespace. */
export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * A generated name for a new replica, `<deployment>-<pod-template-hash>-<5 chars>`, retried
 * like the API server does while it collides with a key of `taken` (see `podKey`);
 * undefined when every attempt collided (only a broken random source gets there).
 */
export function replicaName(deployment: Deployment, taken: ReadonlySet<string>, random: Random): string | undefined {
  for (let attempt = 0; attempt < MAX_NAME_ATTEMPTS; attempt++) {
    const name = generateName(`${deployment.name}-${deployment.podTemplateHash}-`, random);
    if (!taken.has(podKey(deployment.namespace, name))) return name;
  }
  return undefined;
}

/** The pod the deployment's template makes, bound to `node` at `ip`. */
export function replicaPod(deployment: Deployment, name: string, uid: string, node: string, ip: number): Pod {
  return {
    ...deployment.template.spec,
    namespace: deployment.namespace,
    name,
    uid,
    labels: deployment.template.labels,
    node,
    ip,
    mac: podMac(ip),
    owner: { kind: 'Deployment', name: deployment.name, podTemplateHash: deployment.podTemplateHash },
    origin: deployment.origin,
  };
}

/**
 * The node a new pod goes to: of `nodes`, those its spec.nodeName and nodeSelector allow,
 * the one with the fewest pods (`load`), the earlier node on a tie; undefined when none is
 * allowed. The caller narrows `nodes` first when some cannot take pods.
 */
export function leastLoadedNode<N extends SchedulableNode>(nodes: readonly N[], spec: PlacementRequest, load: (node: N) => number): N | undefined {
  const selector = equalitySelector(spec.nodeSelector);
  let best: N | undefined;
  let bestLoad = Infinity;
  for (const node of nodes) {
    if (spec.nodeName !== undefined && node.name !== spec.nodeName) continue;
    if (!selectorMatches(selector, node.labels)) continue;
    const pods = load(node);
    if (pods < bestLoad) {
      best = node;
      bestLoad = pods;
    }
  }
  return best;
}

/**
 * The lowest address of a node's pod CIDR not in `used`, or undefined when it is full. .0 is
 * the network and .1 the gateway; the last two are the node's DNS relay (`dnsRelayAddress`)
 * and the broadcast address.
 */
export function lowestFreeAddress(podCIDR: Cidr, used: ReadonlySet<number>): number | undefined {
  for (let n = 2; n < cidrSize(podCIDR) - 2; n++) {
    const addr = cidrAddress(podCIDR, n);
    if (!used.has(addr)) return addr;
  }
  return undefined;
}

export function scaleDeployment(cluster: Cluster, namespace: string, name: string, replicas: number, random: Random): Cluster {
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 1000) throw new MutationError(`--replicas ${replicas}: must be an integer from 0 to 1000`);
  const deployment = findDeployment(cluster, namespace, name);
  const mine = (p: Pod) => p.namespace === namespace && p.owner?.kind === 'Deployment' && p.owner.name === name;
  let pods = [...cluster.pods];
  let current = deployment.pods.slice();
  if (replicas > current.length) {
    while (current.length < replicas) {
      const pod = newReplica(cluster, pods, deployment, random);
      pods.push(pod);
      current.push(pod.name);
    }
  } else {
    const removed = new Set(current.slice(replicas));
    pods = pods.filter((p) => !(mine(p) && removed.has(p.name)));
    current = current.slice(0, replicas);
  }
  const deployments = cluster.deployments.map((d) => (d === deployment ? { ...d, replicas, pods: current } : d));
  return { ...cluster, pods, deployments };
}

/** Deletes a pod; a Deployment's pod is replaced by a new one, as its ReplicaSet would. */
export function deletePod(cluster: Cluster, namespace: string, name: string, random: Random): { cluster: Cluster; replacement?: Pod } {
  const pod = cluster.pods.find((p) => p.namespace === namespace && p.name === name);
  if (pod === undefined) throw new MutationError(`pod ${namespace}/${name} not found`);
  const pods = cluster.pods.filter((p) => p !== pod);
  if (pod.owner === undefined) return { cluster: { ...cluster, pods } };
  const deployment = findDeployment(cluster, namespace, pod.owner.name);
  const replacement = newReplica({ ...cluster, pods }, pods, deployment, random);
  const deployments = cluster.deployments.map((d) =>
    d === deployment ? { ...d, pods: [...d.pods.filter((n) => n !== name), replacement.name] } : d,
  );
  return { cluster: { ...cluster, pods: [...pods, replacement], deployments }, replacement };
}
