/**
 * What `podwire get` shows, gathered from either store: the cluster, which pods are ready,
 * which nodes are Ready and when each object was made. get-format.ts prints it.
 */
import { formatCidr, formatIpv4 } from '../packet/addr.js';
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import type { Cluster } from '../cluster/model.js';
import { ingressAddresses } from '../ingress/controller.js';
import type { EndpointsInfo, IngressInfo, NodeInfo, PodInfo, ServiceInfo } from './get-format.js';

export interface ClusterFacts {
  readonly cluster: Cluster;
  readonly endpoints: readonly ServicePortEndpoints[];
  /** Ready pods by "namespace/name"; a pod that is absent has not been reported yet. */
  readonly podReady: ReadonlyMap<string, boolean>;
  /** Restarts and the reason a container is not running, by "namespace/name", where the store knows them. */
  readonly podContainers?: ReadonlyMap<string, { readonly restarts: number; readonly reason?: string }>;
  readonly readyNodes: ReadonlySet<string>;
  /** ms since the epoch, by "pod/NS/NAME", "service/NS/NAME" or "node/NAME"; default `fallbackTime`. */
  readonly createdAt: ReadonlyMap<string, number>;
  readonly fallbackTime: number;
}

export function getInputs(facts: ClusterFacts): { pods: PodInfo[]; services: ServiceInfo[]; endpoints: EndpointsInfo[]; nodes: NodeInfo[]; ingresses: IngressInfo[] } {
  const { cluster } = facts;
  const at = (key: string) => facts.createdAt.get(key) ?? facts.fallbackTime;
  const nodeByName = new Map(cluster.nodes.map((n) => [n.name, n]));
  const pods = cluster.pods.map((pod): PodInfo => {
    const key = `${pod.namespace}/${pod.name}`;
    const reported = facts.podReady.has(key);
    const ready = facts.podReady.get(key) === true;
    const nodeReady = facts.readyNodes.has(pod.node);
    const node = nodeByName.get(pod.node);
    const containers = facts.podContainers?.get(key);
    return {
      pod,
      status: !nodeReady && reported ? 'Unknown' : (containers?.reason ?? (reported ? 'Running' : 'ContainerCreating')),
      phase: !nodeReady && reported ? 'Unknown' : reported ? 'Running' : 'Pending',
      readyContainers: ready ? pod.containers.length : 0,
      restarts: containers?.restarts ?? 0,
      createdAt: at(`pod/${key}`),
      ...(node !== undefined ? { hostIP: formatIpv4(node.underlay) } : {}),
      ready,
    };
  });
  const services = cluster.services.map((service): ServiceInfo => ({ service, createdAt: at(`service/${service.namespace}/${service.name}`) }));
  const endpoints: EndpointsInfo[] = [];
  for (const service of cluster.services) {
    // A Service without a selector has Endpoints only when they were written by hand.
    if (service.selector === undefined && !cluster.endpoints.some((e) => e.namespace === service.namespace && e.name === service.name)) continue;
    if (service.type === 'ExternalName') continue;
    const ports = facts.endpoints.filter((e) => e.service.namespace === service.namespace && e.service.name === service.name);
    endpoints.push({ namespace: service.namespace, name: service.name, ports, createdAt: at(`service/${service.namespace}/${service.name}`) });
  }
  const nodes = cluster.nodes.map((node): NodeInfo => ({
    name: node.name,
    labels: node.labels,
    ready: facts.readyNodes.has(node.name),
    createdAt: at(`node/${node.name}`),
    internalIP: formatIpv4(node.underlay),
    externalIP: formatIpv4(node.externalIP),
    podCIDR: formatCidr(node.podCIDR),
  }));
  const ingresses = cluster.ingresses.map((ingress): IngressInfo => ({ ingress, addresses: ingressAddresses(cluster, ingress), createdAt: at(`ingress/${ingress.namespace}/${ingress.name}`) }));
  return { pods, services, endpoints, nodes, ingresses };
}
