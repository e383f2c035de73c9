/**
 * Clusters for the service-rule tests: a small named one (golden text and packet-flow tables)
 * and a fast-check generator of random ones (the interpreter-versus-table property), built as
 * model objects so that every service type, policy, affinity and readiness is reachable.
 */
import fc from 'fast-check';
import { parseIpv4 } from '../../src/packet/addr.js';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import type { Cluster, EndpointAddress, Endpoints, Origin, Protocol, Service, ServicePort, ServiceType } from '../../src/cluster/model.js';
import type { ServiceRuleInputs } from '../../src/kube/kube-proxy.js';
import { cluster as loadYaml } from '../cluster/helpers.js';

export function ip(text: string): number {
  const value = parseIpv4(text);
  if (value === undefined) throw new Error(`bad address ${text}`);
  return value;
}

/** This node: node-1, gateway 10.244.1.1, reached from outside at 192.0.2.11 (its externalIP). */
export const NODE = 'node-1';
export const NODE_ADDRESS = ip('192.0.2.11');
export const GATEWAY = ip('10.244.1.1');

/**
 * The named cluster: web (ClusterIP, three endpoints, two of them here), shop (NodePort, one
 * remote endpoint), edge (LoadBalancer 192.0.2.100, Local policy, ClientIP affinity, one
 * endpoint here and one remote, one not ready), dns (UDP, no endpoints), idle (NodePort, no
 * endpoints), db (headless) and upstream (ExternalName).
 */
export const GOLDEN_YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets: [{addresses: [{ip: 10.244.1.2, nodeName: node-1}, {ip: 10.244.2.2, nodeName: node-2}, {ip: 10.244.1.10, nodeName: node-1}], ports: [{name: http, port: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec: {type: NodePort, clusterIP: 10.96.0.30, ports: [{port: 8080, nodePort: 30080}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: shop}
subsets: [{addresses: [{ip: 10.244.2.3, nodeName: node-2}], ports: [{port: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: edge}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.40
  loadBalancerIP: 192.0.2.100
  externalTrafficPolicy: Local
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports: [{name: https, port: 443, targetPort: 8443, nodePort: 30443}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: edge}
subsets: [{addresses: [{ip: 10.244.1.4, nodeName: node-1}, {ip: 10.244.2.4, nodeName: node-2}], notReadyAddresses: [{ip: 10.244.1.5, nodeName: node-1}], ports: [{name: https, port: 8443}]}]
---
apiVersion: v1
kind: Service
metadata: {name: dns}
spec: {clusterIP: 10.96.0.53, ports: [{name: dns, port: 53, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: idle}
spec: {type: NodePort, clusterIP: 10.96.0.60, ports: [{port: 80, nodePort: 30060}]}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, ports: [{port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: upstream}
spec: {type: ExternalName, externalName: example.com}
`;

export function goldenCluster(): Cluster {
  return loadYaml(GOLDEN_YAML);
}

export function inputsFor(cluster: Cluster, nodeName = NODE, nodeAddress = NODE_ADDRESS): ServiceRuleInputs {
  return { cluster, endpoints: computeEndpoints(cluster, new Map()), nodeName, nodeAddress };
}

export function goldenInputs(): ServiceRuleInputs {
  return inputsFor(goldenCluster());
}

// ---------------------------------------------------------------------------------------------
// Random clusters, as model objects.

const ORIGIN: Origin = { file: 'generated.yaml', document: 1, line: 1 };

/** Three nodes with the default networks (10.244.0.0/16, 10.96.0.0/12, outside 192.0.2.0/24), loaded as users load them. */
let bareCluster: Cluster | undefined;

/** A cluster of three nodes holding the given services and hand-written Endpoints. */
export function modelCluster(services: readonly Service[], endpoints: readonly Endpoints[]): Cluster {
  bareCluster ??= loadYaml('apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 3\n');
  return { ...bareCluster, pods: [], deployments: [], services, endpoints, networkPolicies: [] };
}

/** Endpoint addresses the generator picks from: pods on each node, and one outside the cluster. */
export const ENDPOINT_POOL = [
  '10.244.1.2', '10.244.1.3', '10.244.1.4', '10.244.2.2', '10.244.2.3', '10.244.3.2', '10.244.3.3', '198.51.100.7',
].map(ip);

interface PortSpec {
  readonly protocol: Protocol;
  readonly port: number;
  readonly targetPort: number;
}

interface AddressSpec {
  readonly pool: number;
  readonly ready: boolean;
  /** Whether the Endpoints object names the node (hand-written addresses may not). */
  readonly withNode: boolean;
}

interface ServiceSpec {
  readonly type: ServiceType | 'Headless';
  readonly ports: readonly PortSpec[];
  readonly hasLoadBalancerIP: boolean;
  readonly local: boolean;
  readonly affinitySeconds: number | undefined;
  readonly addresses: readonly AddressSpec[];
  /** How many external IPs, 192.0.2.(100+i) and 192.0.2.(150+i). */
  readonly externalIPs: number;
  /** loadBalancerSourceRanges (LoadBalancer only), from RANGE_POOL. */
  readonly sourceRanges: readonly number[];
}

/**
 * Source ranges: holding some of SOURCE_POOL and not others, one holding the node's address
 * (kube-proxy then lets the load-balancer IP itself through), every address, and a single host.
 */
export const RANGE_POOL = ['192.0.2.0/29', '10.244.1.0/24', '192.0.2.8/30', '0.0.0.0/0', '192.0.2.12/32', '10.244.0.0/16', '198.51.100.0/24'].map((text) => {
  const [address, prefix] = text.split('/');
  return { base: ip(address), prefix: Number(prefix) };
});

const portSpecArb: fc.Arbitrary<PortSpec> = fc.record({
  protocol: fc.constantFrom<Protocol>('TCP', 'TCP', 'UDP', 'SCTP'),
  port: fc.constantFrom(53, 80, 443, 8080),
  targetPort: fc.constantFrom(8080, 9090),
});

const serviceSpecArb: fc.Arbitrary<ServiceSpec> = fc.record({
  type: fc.constantFrom<ServiceSpec['type']>('ClusterIP', 'ClusterIP', 'NodePort', 'NodePort', 'LoadBalancer', 'LoadBalancer', 'Headless', 'ExternalName'),
  ports: fc.uniqueArray(portSpecArb, { minLength: 1, maxLength: 3, selector: (p) => `${p.protocol}/${p.port}` }),
  hasLoadBalancerIP: fc.boolean(),
  local: fc.boolean(),
  affinitySeconds: fc.option(fc.constantFrom(1, 2, 5), { nil: undefined }),
  addresses: fc.array(fc.record({ pool: fc.nat({ max: ENDPOINT_POOL.length - 1 }), ready: fc.boolean(), withNode: fc.boolean() }), { maxLength: 5 }),
  externalIPs: fc.constantFrom(0, 0, 1, 2),
  sourceRanges: fc.oneof(fc.constant([]), fc.uniqueArray(fc.nat({ max: RANGE_POOL.length - 1 }), { minLength: 1, maxLength: 3 })),
});

function nodeOf(address: number): string | undefined {
  const third = (address >>> 8) & 0xff;
  return address >>> 16 === (10 << 8) + 244 ? `node-${third}` : undefined;
}

/** Builds service number `i` (cluster IP 10.96.0.(20+i), LB IP 192.0.2.(200+i), node ports 30000+10i+j). */
function buildService(spec: ServiceSpec, i: number): { service: Service; endpoints?: Endpoints } {
  const name = `svc${i}`;
  const headless = spec.type === 'Headless';
  const type: ServiceType = headless ? 'ClusterIP' : spec.type;
  const named = spec.ports.length > 1;
  const ports: ServicePort[] = spec.ports.map((p, j) => ({
    ...(named ? { name: `p${j}` } : {}),
    protocol: p.protocol,
    port: p.port,
    targetPort: p.targetPort,
    ...(type === 'NodePort' || type === 'LoadBalancer' ? { nodePort: 30000 + 10 * i + j } : {}),
  }));
  const external = type === 'NodePort' || type === 'LoadBalancer';
  const service: Service = {
    namespace: 'default',
    name,
    labels: {},
    type,
    ...(type !== 'ExternalName' && !headless ? { clusterIP: ip(`10.96.0.${20 + i}`) } : {}),
    headless,
    ports: type === 'ExternalName' ? [] : ports,
    sessionAffinity: spec.affinitySeconds === undefined ? 'None' : 'ClientIP',
    ...(spec.affinitySeconds !== undefined ? { sessionAffinityTimeoutSeconds: spec.affinitySeconds } : {}),
    ...(external || (type === 'ClusterIP' && !headless && spec.externalIPs > 0) ? { externalTrafficPolicy: spec.local ? 'Local' : 'Cluster' } : {}),
    ...(type === 'LoadBalancer' && spec.hasLoadBalancerIP ? { loadBalancerIP: ip(`192.0.2.${200 + i}`) } : {}),
    ...(type === 'LoadBalancer' && spec.sourceRanges.length > 0 ? { loadBalancerSourceRanges: spec.sourceRanges.map((r) => RANGE_POOL[r]) } : {}),
    ...(type !== 'ExternalName' && !headless && spec.externalIPs > 0 ? { externalIPs: [ip(`192.0.2.${100 + i}`), ip(`192.0.2.${150 + i}`)].slice(0, spec.externalIPs) } : {}),
    ...(type === 'ExternalName' ? { externalName: 'example.com' } : {}),
    origin: ORIGIN,
  };
  if (type === 'ExternalName') return { service };
  const address = (a: AddressSpec): EndpointAddress => {
    const addr = ENDPOINT_POOL[a.pool];
    const nodeName = nodeOf(addr);
    return { ip: addr, ...(a.withNode && nodeName !== undefined ? { nodeName } : {}) };
  };
  const endpoints: Endpoints = {
    namespace: 'default',
    name,
    labels: {},
    subsets: [
      {
        addresses: spec.addresses.filter((a) => a.ready).map(address),
        notReadyAddresses: spec.addresses.filter((a) => !a.ready).map(address),
        ports: ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), port: p.targetPort as number, protocol: p.protocol })),
      },
    ],
    origin: ORIGIN,
  };
  return { service, endpoints };
}

export const randomClusterArb: fc.Arbitrary<Cluster> = fc.array(serviceSpecArb, { minLength: 1, maxLength: 6 }).map((specs) => {
  const built = specs.map(buildService);
  return modelCluster(
    built.map((b) => b.service),
    built.flatMap((b) => (b.endpoints === undefined ? [] : [b.endpoints])),
  );
});

/** Sources the packets come from: local and remote pods, endpoints, the node, its gateway, the outside. */
export const SOURCE_POOL = [...ENDPOINT_POOL, GATEWAY, NODE_ADDRESS, ip('10.244.2.9'), ip('192.0.2.7'), ip('192.0.2.8'), ip('192.0.2.12'), ip('192.0.2.200'), ip('192.0.2.201')];

/** Destinations of the packets, for a cluster of `serviceCount` services. */
export function destinationPool(serviceCount: number): number[] {
  const out = [NODE_ADDRESS, GATEWAY, ip('10.244.2.2'), ip('8.8.8.8'), ip('10.96.0.200'), ip('224.0.0.251')];
  for (let i = 0; i < serviceCount; i++) out.push(ip(`10.96.0.${20 + i}`), ip(`192.0.2.${200 + i}`), ip(`192.0.2.${100 + i}`));
  return out;
}

export const PORT_POOL = [53, 80, 443, 8080, 9090, 30000, 30001, 30010, 30011, 30020, 30030, 30040, 30050, 30051];

/** (address, port, protocol number) of every way into the cluster's services: where flows should go. */
export function serviceTargets(cluster: Cluster): [number, number, number][] {
  const proto = (p: Protocol) => (p === 'TCP' ? 6 : p === 'UDP' ? 17 : 132);
  const out: [number, number, number][] = [];
  for (const s of cluster.services) {
    for (const p of s.ports) {
      if (s.clusterIP !== undefined) out.push([s.clusterIP, p.port, proto(p.protocol)]);
      if (s.loadBalancerIP !== undefined) out.push([s.loadBalancerIP, p.port, proto(p.protocol)]);
      for (const external of s.externalIPs ?? []) out.push([external, p.port, proto(p.protocol)]);
      if (p.nodePort !== undefined) out.push([NODE_ADDRESS, p.nodePort, proto(p.protocol)], [GATEWAY, p.nodePort, proto(p.protocol)]);
    }
  }
  return out;
}
