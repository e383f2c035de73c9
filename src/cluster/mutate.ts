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
import { cidrAddress, cidrSize } from '../packet/addr.js';
import { equalitySelector, selectorMatches } from './selector.js';
import type { Cluster, Deployment, Node, Pod, PodSpec } from './model.js';
import { podMac } from './ipam.js';
import { generateName } from './naming.js';
import { randomUuid, type Random } from './random.js';

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
  const taken = new Set(pods.map((p) => `${p.namespace}/${p.name}`));
  let name: string;
  do name = generateName(`${deployment.name}-${deployment.podTemplateHash}-`, random);
  while (taken.has(`${deployment.namespace}/${name}`));
  const spec = deployment.template.spec;
  const node = placeReplica(cluster.nodes, pods, spec);
  const ip = lowestFreeAddress(node, pods);
  return {
    ...spec,
    namespace: deployment.namespace,
    name,
    uid: randomUuid(random),
    labels: deployment.template.labels,
    node: node.name,
    ip,
    mac: podMac(ip),
    owner: { kind: 'Deployment', name: deployment.name, podTemplateHash: deployment.podTemplateHash },
    origin: deployment.origin,
  };
}

function placeReplica(nodes: readonly Node[], pods: readonly Pod[], spec: PodSpec): Node {
  const selector = equalitySelector(spec.nodeSelector);
  let best: Node | undefined;
  let bestLoad = Infinity;
  for (const node of nodes) {
    if (spec.nodeName !== undefined && node.name !== spec.nodeName) continue;
    if (!selectorMatches(selector, node.labels)) continue;
    const load = pods.filter((p) => p.node === node.name).length;
    if (load < bestLoad) {
      best = node;
      bestLoad = load;
    }
  }
  if (best === undefined) throw new MutationError('no node matches the template\'s nodeName and nodeSelector');
  return best;
}

function lowestFreeAddress(node: Node, pods: readonly Pod[]): number {
  const used = new Set(pods.filter((p) => p.node === node.name).map((p) => p.ip));
  // .0 is the network, .1 the gateway, the last two the DNS relay and the broadcast address.
  for (let n = 2; n < cidrSize(node.podCIDR) - 2; n++) {
    const addr = cidrAddress(node.podCIDR, n);
    if (!used.has(addr)) return addr;
  }
  throw new MutationError(`node ${node.name} has no pod address left in its pod CIDR`);
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
