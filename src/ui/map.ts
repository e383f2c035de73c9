/**
 * The cluster map the web view draws, built from what `podwire status` knows: the
 * cluster's model (nodes, pods, Services, policies) and the nodes' own word on which of
 * them are up and ready. Pure: the server reads the state and the nodes, this shapes it.
 *
 * Everything is text a person reads (addresses dotted, CIDRs with their prefix), and the
 * ids the page and the flow edges share: `pod:NS/NAME`, `svc:NS/NAME`, `node:NAME`, and
 * `ip:A.B.C.D` for an address no pod or Service holds (the outside network).
 */
import { VXLAN_PORT } from '../packet/vxlan.js';
import { cidrContains, formatCidr, formatIpv4 } from '../packet/addr.js';
import type { Cluster } from '../cluster/model.js';
import { computeEndpoints, podKey } from '../cluster/endpoints.js';

/** What the map takes from the nodes: the shape of `podwire status --json` (src/cli/status.ts). */
export interface MapStatus {
  readonly nodes: readonly {
    readonly name: string;
    readonly state: 'up' | 'down';
    readonly ready: boolean;
    /** The machine it runs on, when the cluster spans several (its host name and underlay address). */
    readonly machine?: string;
    /** The VTEP's UDP port, when not VXLAN's own (a node joined with --underlay-port). */
    readonly underlayPort?: number;
  }[];
  readonly pods: readonly { readonly namespace: string; readonly name: string; readonly ready: boolean; readonly restarts: number; readonly reason?: string }[];
}

export interface MapPod {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly ip: string;
  readonly ready: boolean;
  readonly restarts: number;
  readonly reason?: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface MapNode {
  readonly id: string;
  readonly name: string;
  /** The node process answers its control socket. */
  readonly up: boolean;
  /** Its lease is fresh: its pods are in the Services. */
  readonly ready: boolean;
  /** Which machine runs it: `this machine`, or the machine's underlay address in a cluster in etcd. */
  readonly machine: string;
  readonly podCIDR: string;
  /** cni0: the bridge and the pods' gateway. */
  readonly bridge: { readonly name: 'cni0'; readonly address: string };
  /** flannel.1: the VTEP's UDP address on the underlay. */
  /** `address` is `underlay:port`; `port` the VTEP's UDP port, which every VXLAN datagram of the node carries on one side. */
  readonly vtep: { readonly name: 'flannel.1'; readonly address: string; readonly port: number };
  /** The uplink's address on the outside network, where NodePorts answer. */
  readonly externalIP: string;
  readonly pods: readonly MapPod[];
}

export interface MapEndpoint {
  readonly ip: string;
  readonly port: number;
  readonly ready: boolean;
  /** The backing pod's id (`pod:NS/NAME`), when a pod backs it. */
  readonly pod?: string;
  readonly node?: string;
}

export interface MapServicePort {
  readonly name?: string;
  readonly protocol: string;
  readonly port: number;
  readonly targetPort: number | string;
  readonly nodePort?: number;
  readonly endpoints: readonly MapEndpoint[];
}

export interface MapService {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  readonly clusterIP?: string;
  readonly headless: boolean;
  readonly loadBalancerIP?: string;
  readonly externalName?: string;
  readonly ports: readonly MapServicePort[];
  /** The cluster DNS every cluster has: answered by each node itself, with no endpoints to show. */
  readonly builtin?: true;
}

export interface ClusterMap {
  readonly name: string;
  readonly nodes: readonly MapNode[];
  readonly services: readonly MapService[];
  readonly policies: readonly { readonly id: string; readonly namespace: string; readonly name: string; readonly policyTypes: readonly string[] }[];
  /** The overlay: one link per pair of nodes, as every node holds a lease-route to every other. */
  readonly links: readonly { readonly from: string; readonly to: string }[];
  readonly outside: { readonly cidr: string; readonly loadBalancerCIDR: string };
  readonly dns: { readonly ip: string; readonly domain: string };
}

/** VXLAN's IANA port: what every node's VTEP binds to on its underlay address. */

export function podId(namespace: string, name: string): string {
  return `pod:${namespace}/${name}`;
}

export function serviceId(namespace: string, name: string): string {
  return `svc:${namespace}/${name}`;
}

export function buildClusterMap(name: string, cluster: Cluster, status: MapStatus): ClusterMap {
  const podStatus = new Map(status.pods.map((p) => [podKey(p), p]));
  const nodeStatus = new Map(status.nodes.map((n) => [n.name, n]));
  const readiness = new Map(cluster.pods.map((p) => [podKey(p), podStatus.get(podKey(p))?.ready === true]));
  const nodes: MapNode[] = cluster.nodes.map((node) => {
    const seen = nodeStatus.get(node.name);
    return {
      id: `node:${node.name}`,
      name: node.name,
      up: seen?.state === 'up',
      ready: seen?.ready === true,
      machine: seen?.machine ?? 'this machine',
      podCIDR: formatCidr(node.podCIDR),
      bridge: { name: 'cni0', address: `${formatIpv4(node.gateway)}/${node.podCIDR.prefix}` },
      vtep: { name: 'flannel.1', address: `${formatIpv4(node.underlay)}:${seen?.underlayPort ?? VXLAN_PORT}`, port: seen?.underlayPort ?? VXLAN_PORT },
      externalIP: formatIpv4(node.externalIP),
      pods: cluster.pods
        .filter((p) => p.node === node.name)
        .map((p) => {
          const s = podStatus.get(podKey(p));
          return {
            id: podId(p.namespace, p.name),
            namespace: p.namespace,
            name: p.name,
            ip: formatIpv4(p.ip),
            ready: s?.ready === true,
            restarts: s?.restarts ?? 0,
            ...(s?.reason !== undefined ? { reason: s.reason } : {}),
            labels: p.labels,
          };
        }),
    };
  });
  const endpoints = computeEndpoints(cluster, readiness);
  const services: MapService[] = cluster.services.map((s) => ({
    id: serviceId(s.namespace, s.name),
    namespace: s.namespace,
    name: s.name,
    type: s.type,
    headless: s.headless,
    ...(s.clusterIP !== undefined ? { clusterIP: formatIpv4(s.clusterIP) } : {}),
    ...(s.loadBalancerIngress !== undefined ? { loadBalancerIP: formatIpv4(s.loadBalancerIngress) } : {}),
    ...(s.externalName !== undefined ? { externalName: s.externalName } : {}),
    ports: s.ports.map((port) => ({
      ...(port.name !== undefined ? { name: port.name } : {}),
      protocol: port.protocol,
      port: port.port,
      targetPort: port.targetPort,
      ...(port.nodePort !== undefined ? { nodePort: port.nodePort } : {}),
      endpoints: (endpoints.find((e) => e.service === s && e.servicePort === port)?.endpoints ?? []).map((e) => ({
        ip: formatIpv4(e.ip),
        port: e.port,
        ready: e.ready,
        ...(e.pod !== undefined ? { pod: `pod:${e.pod}` } : {}),
        ...(e.node !== undefined ? { node: e.node } : {}),
      })),
    })),
  }));
  // kube-dns is published at the cluster DNS address unless the YAML declares it (src/dns/zone.ts): its flows need a box.
  if (!services.some((s) => s.namespace === 'kube-system' && s.name === 'kube-dns')) {
    const port = (name: string, protocol: string) => ({ name, protocol, port: 53, targetPort: 53, endpoints: [] });
    services.push({ id: serviceId('kube-system', 'kube-dns'), namespace: 'kube-system', name: 'kube-dns', type: 'ClusterIP', headless: false, clusterIP: formatIpv4(cluster.settings.dnsIP), ports: [port('dns', 'UDP'), port('dns-tcp', 'TCP')], builtin: true });
  }
  const links: { from: string; to: string }[] = [];
  for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) links.push({ from: nodes[i].id, to: nodes[j].id });
  return {
    name,
    nodes,
    services,
    policies: cluster.networkPolicies.map((p) => ({ id: `netpol:${p.namespace}/${p.name}`, namespace: p.namespace, name: p.name, policyTypes: p.policyTypes })),
    links,
    outside: { cidr: formatCidr(cluster.settings.externalCIDR), loadBalancerCIDR: formatCidr(cluster.settings.loadBalancerCIDR) },
    dns: { ip: formatIpv4(cluster.settings.dnsIP), domain: cluster.settings.clusterDomain },
  };
}

/**
 * The map id of an address: the pod holding it, the Service whose ClusterIP or LB address
 * it is, the node whose uplink or bridge it is, else the address itself.
 */
export function addressId(cluster: Cluster, ip: number): string {
  const pod = cluster.pods.find((p) => p.ip === ip);
  if (pod !== undefined) return podId(pod.namespace, pod.name);
  const service = cluster.services.find((s) => s.clusterIP === ip || s.loadBalancerIngress === ip);
  if (service !== undefined) return serviceId(service.namespace, service.name);
  const node = cluster.nodes.find((n) => n.externalIP === ip || n.gateway === ip || cidrContains(n.podCIDR, ip));
  if (node !== undefined) return `node:${node.name}`;
  return `ip:${formatIpv4(ip)}`;
}
