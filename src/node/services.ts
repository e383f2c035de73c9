/**
 * What a node derives from services beyond the rules: which LoadBalancer and external
 * addresses it announces, and a fingerprint per service so that only changed services are recompiled.
 */
import { externalIPsOf, isProxied } from '../kube/kube-proxy.js';
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import type { Cluster } from '../cluster/model.js';

/**
 * The addresses `node` answers ARP for on the outside network, as MetalLB's layer-2 mode
 * elects one speaker per service: a LoadBalancer's address, and the service's external IPs
 * (except those that are some node's own address: that node answers for it already). The
 * speaker is the first node (in cluster order) for policy Cluster; for policy Local, the
 * first node with a ready endpoint of the service, so that traffic lands where it may be
 * served and the client's address is kept.
 */
export function announcedAddresses(cluster: Cluster, endpoints: readonly ServicePortEndpoints[], node: string): number[] {
  const out: number[] = [];
  const nodeAddresses = new Set(cluster.nodes.map((n) => n.externalIP));
  for (const service of cluster.services) {
    const addresses: number[] = [];
    if (service.type === 'LoadBalancer' && service.loadBalancerIngress !== undefined) addresses.push(service.loadBalancerIngress);
    if (isProxied(service)) for (const ip of externalIPsOf(service)) if (!nodeAddresses.has(ip)) addresses.push(ip);
    if (addresses.length === 0) continue;
    let speaker: string | undefined;
    if (service.externalTrafficPolicy === 'Local') {
      const withEndpoints = new Set(
        endpoints.filter((e) => e.service === service || (e.service.namespace === service.namespace && e.service.name === service.name)).flatMap((e) => e.endpoints.filter((x) => x.ready && x.node !== undefined).map((x) => x.node!)),
      );
      speaker = cluster.nodes.find((n) => withEndpoints.has(n.name))?.name;
    } else {
      speaker = cluster.nodes[0]?.name;
    }
    if (speaker === node) out.push(...addresses);
  }
  return out;
}

/** "namespace/name" -> a string that changes whenever the service or its endpoints do. */
export function serviceFingerprints(cluster: Cluster, endpoints: readonly ServicePortEndpoints[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const service of cluster.services) {
    const { origin: _origin, ...spec } = service;
    out.set(`${service.namespace}/${service.name}`, JSON.stringify(spec));
  }
  for (const e of endpoints) {
    const key = `${e.service.namespace}/${e.service.name}`;
    out.set(key, `${out.get(key) ?? ''}|${e.servicePort.port}:${JSON.stringify(e.endpoints)}`);
  }
  return out;
}
