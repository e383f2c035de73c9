/**
 * From valid declarations to the cluster model: what the control plane would do after
 * `kubectl apply`. Deployments become pods, pods are scheduled and addressed, services get
 * cluster IPs and node ports. Problems (a node that does not exist, a full address range) are
 * reported through the fields of the declaration to blame.
 *
 * The random source is drawn from in a fixed order — generated pod names in declaration order,
 * then one UID per pod in pod order — so a seed reproduces the same cluster.
 */

import { cidrSize, formatCidr, type Cidr } from '../packet/addr.js';
import { BUILTIN_NAMESPACES } from './checks.js';
import { defaultClusterDecl, EXTERNAL_NODE_OFFSET, type ClusterDecl } from './decode-cluster.js';
import type { PodSpecDecl } from './decode-pod.js';
import type { ServiceDecl } from './decode-service.js';
import type { Declared } from './documents.js';
import {
  allocateClusterIps,
  allocatePodIps,
  clusterIndex,
  dnsServiceIP,
  gatewayAddress,
  kubernetesServiceIP,
  nodePodCidr,
  podMac,
  underlayAddress,
  vtepMac,
  type ClusterIpClaim,
} from './ipam.js';
import type {
  Cluster,
  ClusterSettings,
  ConfigMap,
  Deployment,
  Endpoints,
  Ingress,
  IngressClass,
  Labels,
  Namespace,
  NetworkPolicy,
  Node,
  Origin,
  Pod,
  PodOwner,
  Secret,
  Service,
  ServicePort,
} from './model.js';
import { generateName, podTemplateHash } from './naming.js';
import { allocateNodePorts, type NodePortClaim } from './nodeports.js';
import { randomUuid, type Random } from './random.js';
import { schedule } from './scheduler.js';
import type { Field } from './yaml-reader.js';

export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Attempts at a fresh generated name before giving up (only a broken random source needs many). */
const MAX_NAME_ATTEMPTS = 100;

/** A pod before scheduling: where it came from and which fields to blame for placement errors. */
interface PodDraft {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly pod: PodSpecDecl;
  readonly owner?: PodOwner;
  readonly origin: Origin;
  /** Blamed when the pod's node has no address left. */
  readonly blame: Field;
}

/** 'schedule': place and address pods on the declared nodes now; 'defer': leave that to the controller. */
export type PodPlacement = 'schedule' | 'defer';

/** `name`, when given (podwire up --name), wins over the Cluster document's metadata.name. */
export function resolveCluster(declared: readonly Declared[], random: Random, name?: string, placement: PodPlacement = 'schedule'): Cluster {
  const declaredCluster = declared.map((d) => d.decl).find((d): d is ClusterDecl => d.kind === 'Cluster') ?? defaultClusterDecl();
  const clusterDecl = name === undefined ? declaredCluster : { ...declaredCluster, name };
  const settings = resolveSettings(clusterDecl);
  const nodes = resolveNodes(clusterDecl, settings);
  const { drafts, deployments } = expandPods(declared, random);
  const pods = placement === 'schedule' ? placePods(drafts, nodes, random) : unplacedPods(drafts);
  return {
    settings,
    nodes,
    namespaces: resolveNamespaces(declared),
    pods,
    deployments,
    services: resolveLoadBalancers(resolveServices(declared, settings.serviceCIDR), settings, nodes),
    endpoints: declared.flatMap((d): Endpoints[] =>
      d.decl.kind === 'Endpoints' ? [{ namespace: d.decl.meta.namespace, name: d.decl.meta.name, labels: d.decl.meta.labels, subsets: d.decl.subsets, origin: d.origin }] : [],
    ),
    networkPolicies: declared.flatMap((d): NetworkPolicy[] => {
      if (d.decl.kind !== 'NetworkPolicy') return [];
      const { meta, podSelector, policyTypes, ingress, egress } = d.decl;
      return [{ namespace: meta.namespace, name: meta.name, labels: meta.labels, podSelector, policyTypes, ingress, egress, origin: d.origin }];
    }),
    configMaps: declared.flatMap((d): ConfigMap[] => {
      if (d.decl.kind !== 'ConfigMap') return [];
      const { meta, data, binaryKeys } = d.decl;
      return [{ namespace: meta.namespace, name: meta.name, labels: meta.labels, data, binaryKeys, origin: d.origin }];
    }),
    secrets: declared.flatMap((d): Secret[] => {
      if (d.decl.kind !== 'Secret') return [];
      const { meta, type, data } = d.decl;
      return [{ namespace: meta.namespace, name: meta.name, labels: meta.labels, type, data, origin: d.origin }];
    }),
    ingresses: declared.flatMap((d): Ingress[] => {
      if (d.decl.kind !== 'Ingress') return [];
      const { meta, kind: _kind, ...spec } = d.decl;
      return [{ namespace: meta.namespace, name: meta.name, labels: meta.labels, ...spec, origin: d.origin }];
    }),
    ingressClasses: declared.flatMap((d): IngressClass[] => {
      if (d.decl.kind !== 'IngressClass') return [];
      const { meta, controller, isDefault } = d.decl;
      return [{ name: meta.name, labels: meta.labels, controller, isDefault, origin: d.origin }];
    }),
  };
}

function resolveSettings(c: ClusterDecl): ClusterSettings {
  return {
    name: c.name,
    clusterIndex: clusterIndex(c.name),
    podCIDR: c.podCIDR,
    serviceCIDR: c.serviceCIDR,
    clusterDomain: c.clusterDomain,
    vni: c.vni,
    mtu: c.mtu,
    kubernetesIP: kubernetesServiceIP(c.serviceCIDR),
    dnsIP: dnsServiceIP(c.serviceCIDR),
    externalCIDR: c.externalCIDR,
    externalGateway: (c.externalCIDR.base + 1) >>> 0,
    loadBalancerCIDR: c.loadBalancerCIDR,
    conntrackMax: c.conntrackMax,
    conntrack: c.conntrack,
    dnsUpstreams: c.dnsUpstreams,
    dnsTTLSeconds: c.dnsTTLSeconds,
    overlayOffload: c.overlayOffload,
    nodeGracePeriodSeconds: c.nodeGracePeriodSeconds,
    subnetLeaseTTLSeconds: c.subnetLeaseTTLSeconds,
    flowBufferCapacity: c.flowBufferCapacity,
  };
}

function resolveNodes(c: ClusterDecl, settings: ClusterSettings): Node[] {
  return c.nodes.map((n, i) => {
    const index = i + 1;
    const podCIDR = nodePodCidr(c.podCIDR, index);
    const gateway = gatewayAddress(podCIDR);
    const underlay = underlayAddress(settings.clusterIndex, index);
    const externalIP = (settings.externalCIDR.base + EXTERNAL_NODE_OFFSET + index) >>> 0;
    return {
      name: n.name,
      index,
      // The kubelet's own labels; the Cluster document may add to them or override them.
      labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', ...n.labels },
      podCIDR,
      gateway,
      gatewayMac: podMac(gateway),
      underlay,
      vtepMac: vtepMac(underlay),
      externalIP,
      externalMac: podMac(externalIP),
    };
  });
}

function resolveNamespaces(declared: readonly Declared[]): Namespace[] {
  const withName = (name: string, labels: Labels): Labels => ({ ...labels, [NAMESPACE_NAME_LABEL]: name });
  const out: Namespace[] = BUILTIN_NAMESPACES.map((name) => ({ name, labels: withName(name, {}) }));
  for (const d of declared) {
    if (d.decl.kind !== 'Namespace') continue;
    const ns: Namespace = { name: d.decl.meta.name, labels: withName(d.decl.meta.name, d.decl.meta.labels), origin: d.origin };
    const builtin = out.findIndex((n) => n.name === ns.name && n.origin === undefined);
    if (builtin >= 0) out[builtin] = ns;
    else out.push(ns);
  }
  return out;
}

/** Pods in declaration order, each Deployment's replicas at the Deployment's place. */
function expandPods(declared: readonly Declared[], random: Random): { drafts: PodDraft[]; deployments: Deployment[] } {
  const taken = new Set<string>();
  for (const d of declared) if (d.decl.kind === 'Pod') taken.add(`${d.decl.meta.namespace}/${d.decl.meta.name}`);

  const drafts: PodDraft[] = [];
  const deployments: Deployment[] = [];
  for (const d of declared) {
    const decl = d.decl;
    if (decl.kind === 'Pod') {
      const { namespace, name, labels } = decl.meta;
      drafts.push({ namespace, name, labels, pod: decl.pod, origin: d.origin, blame: d.root });
      continue;
    }
    if (decl.kind !== 'Deployment') continue;
    const { namespace, name, labels } = decl.meta;
    const hash = podTemplateHash({ labels: decl.templateLabels, spec: decl.template.spec });
    // The ReplicaSet is `<deployment>-<hash>` and its pods are generateName'd from `<rs>-`.
    const base = `${name}-${hash}-`;
    const podNames: string[] = [];
    for (let r = 0; r < decl.replicas; r++) {
      const podName = uniqueName(base, namespace, taken, random);
      if (podName === undefined) {
        decl.replicasField.error(`could not generate a pod name from ${JSON.stringify(base)} that is not taken`);
        break;
      }
      podNames.push(podName);
      drafts.push({
        namespace,
        name: podName,
        labels: { ...decl.templateLabels, [POD_TEMPLATE_HASH_LABEL]: hash },
        pod: decl.template,
        owner: { kind: 'Deployment', name, podTemplateHash: hash },
        origin: d.origin,
        blame: decl.replicasField,
      });
    }
    const template = { labels: { ...decl.templateLabels, [POD_TEMPLATE_HASH_LABEL]: hash }, spec: decl.template.spec };
    deployments.push({ namespace, name, labels, replicas: decl.replicas, selector: decl.selector, podTemplateHash: hash, template, pods: podNames, origin: d.origin });
  }
  return { drafts, deployments };
}

/** Like the API server, retries a generated name that collides with an existing object. */
function uniqueName(base: string, namespace: string, taken: Set<string>, random: Random): string | undefined {
  for (let i = 0; i < MAX_NAME_ATTEMPTS; i++) {
    const name = generateName(base, random);
    const key = `${namespace}/${name}`;
    if (!taken.has(key)) {
      taken.add(key);
      return name;
    }
  }
  return undefined;
}

/** Schedules and addresses the pods; pods that cannot be placed are reported and left out. */
function placePods(drafts: readonly PodDraft[], nodes: readonly Node[], random: Random): Pod[] {
  const uids = drafts.map(() => randomUuid(random));
  const report = reporter();
  const placements = schedule(nodes, drafts.map((d) => d.pod.spec));
  const placed: number[] = [];
  placements.forEach((p, i) => {
    if (p.ok) placed.push(i);
    else report(p.field === 'nodeName' ? drafts[i].pod.nodeNameField : drafts[i].pod.nodeSelectorField, p.reason);
  });
  const blocks: Cidr[] = nodes.map((n) => n.podCIDR);
  const nodeOf = (i: number): number => (placements[i] as { node: number }).node;
  const ips = allocatePodIps(blocks, placed.map(nodeOf));

  const pods: Pod[] = [];
  placed.forEach((draftIndex, k) => {
    const d = drafts[draftIndex];
    const node = nodes[nodeOf(draftIndex)];
    const ip = ips[k];
    if (ip === undefined) {
      report(d.blame, `no pod address left on node ${node.name}: ${formatCidr(node.podCIDR)} is full`);
      return;
    }
    pods.push({
      ...d.pod.spec,
      namespace: d.namespace,
      name: d.name,
      uid: uids[draftIndex],
      labels: d.labels,
      node: node.name,
      ip,
      mac: podMac(ip),
      ...(d.owner !== undefined && { owner: d.owner }),
      origin: d.origin,
    });
  });
  return pods;
}

/**
 * The pods as declared, bound to no node and given no address: with several machines the
 * nodes are whoever joins, so the controller places pods when it sees them (a pod that
 * fits no node is Pending there, as in Kubernetes, not an error of the apply).
 */
function unplacedPods(drafts: readonly PodDraft[]): Pod[] {
  return drafts.map((d) => ({
    ...d.pod.spec,
    namespace: d.namespace,
    name: d.name,
    uid: '',
    labels: d.labels,
    node: '',
    ip: 0,
    mac: 0,
    ...(d.owner !== undefined && { owner: d.owner }),
    origin: d.origin,
  }));
}

/** Reports each (field, reason) once: a Deployment's replicas all fail the same way. */
function reporter(): (field: Field, reason: string) => void {
  const done = new Map<Field, Set<string>>();
  return (field, reason) => {
    const reasons = done.get(field) ?? new Set<string>();
    done.set(field, reasons);
    if (reasons.has(reason)) return;
    reasons.add(reason);
    field.error(reason);
  };
}

function resolveServices(declared: readonly Declared[], serviceCIDR: Cidr): Service[] {
  const services = declared.flatMap((d) => (d.decl.kind === 'Service' ? [{ decl: d.decl, origin: d.origin }] : []));
  const key = (s: ServiceDecl): string => `${s.meta.namespace}/${s.meta.name}`;
  const wantsIp = (s: ServiceDecl): boolean => s.type !== 'ExternalName' && s.clusterIP !== 'None';

  const ipClaimants = services.filter((s) => wantsIp(s.decl));
  const ipClaims: ClusterIpClaim[] = ipClaimants.map(({ decl }) => ({ owner: key(decl), request: typeof decl.clusterIP === 'number' ? decl.clusterIP : 'auto' }));
  const ips = new Map<ServiceDecl, number>();
  allocateClusterIps(serviceCIDR, ipClaims).forEach((a, i) => {
    if (a.ok) ips.set(ipClaimants[i].decl, a.value);
    else ipClaimants[i].decl.clusterIPField.error(a.reason);
  });

  // allocateLoadBalancerNodePorts: false gives node ports only to the ports that ask for one.
  const portClaimants = services.flatMap(({ decl }) =>
    decl.type === 'NodePort' || decl.type === 'LoadBalancer'
      ? decl.ports.filter((port) => decl.allocateLoadBalancerNodePorts || port.port.nodePort !== undefined).map((port) => ({ decl, port }))
      : [],
  );
  const portClaims: NodePortClaim[] = portClaimants.map(({ decl, port }) => ({
    owner: key(decl),
    servicePort: port.port.port,
    protocol: port.port.protocol,
    request: port.port.nodePort ?? 'auto',
  }));
  // Health check node ports come from the same range, after the service ports' (servicePort 0: never shared).
  const healthClaimants = services.flatMap(({ decl }) => (decl.healthCheckNodePort !== undefined ? [decl] : []));
  for (const decl of healthClaimants) portClaims.push({ owner: key(decl), servicePort: 0, protocol: 'TCP', request: decl.healthCheckNodePort! });
  const nodePorts = new Map<ServicePort, number>();
  const healthPorts = new Map<ServiceDecl, number>();
  allocateNodePorts(portClaims).forEach((a, i) => {
    if (i >= portClaimants.length) {
      const decl = healthClaimants[i - portClaimants.length];
      if (a.ok) healthPorts.set(decl, a.value);
      else decl.healthCheckNodePortField.error(a.reason);
      return;
    }
    const { port } = portClaimants[i];
    if (a.ok) nodePorts.set(port.port, a.value);
    else (port.port.nodePort === undefined ? port.field : port.nodePortField).error(a.reason);
  });

  return services.map(({ decl, origin }): Service => {
    const clusterIP = ips.get(decl);
    return {
      namespace: decl.meta.namespace,
      name: decl.meta.name,
      labels: decl.meta.labels,
      type: decl.type,
      ...(clusterIP !== undefined && { clusterIP }),
      headless: decl.clusterIP === 'None',
      ports: decl.ports.map((p) => {
        const nodePort = nodePorts.get(p.port);
        return nodePort === undefined ? p.port : { ...p.port, nodePort };
      }),
      ...(decl.selector !== undefined && { selector: decl.selector }),
      sessionAffinity: decl.sessionAffinity,
      ...(decl.sessionAffinityTimeoutSeconds !== undefined && { sessionAffinityTimeoutSeconds: decl.sessionAffinityTimeoutSeconds }),
      ...(decl.externalTrafficPolicy !== undefined && { externalTrafficPolicy: decl.externalTrafficPolicy }),
      ...(decl.loadBalancerIP !== undefined && { loadBalancerIP: decl.loadBalancerIP }),
      ...(decl.loadBalancerSourceRanges !== undefined && { loadBalancerSourceRanges: decl.loadBalancerSourceRanges }),
      ...(decl.externalIPs !== undefined && { externalIPs: decl.externalIPs }),
      ...(healthPorts.has(decl) && { healthCheckNodePort: healthPorts.get(decl)! }),
      ...(decl.type === 'LoadBalancer' && !decl.allocateLoadBalancerNodePorts && { allocateLoadBalancerNodePorts: false as const }),
      ...(decl.externalName !== undefined && { externalName: decl.externalName }),
      origin,
    };
  });
}

/**
 * LoadBalancer addresses, as MetalLB's layer-2 mode hands them out: spec.loadBalancerIP
 * when given, otherwise the lowest free address of the pool. Node and gateway addresses of
 * the outside network are never handed out; an exhausted pool leaves the service pending
 * (no ingress address), as a real cluster would.
 */
function resolveLoadBalancers(services: Service[], settings: ClusterSettings, nodes: readonly Node[]): Service[] {
  const taken = new Set<number>([settings.externalGateway, ...nodes.map((n) => n.externalIP)]);
  for (const s of services) if (s.type === 'LoadBalancer' && s.loadBalancerIP !== undefined) taken.add(s.loadBalancerIP);
  const pool = settings.loadBalancerCIDR;
  let next = 0;
  const size = cidrSize(pool);
  const allocate = (): number | undefined => {
    for (; next < size; next++) {
      const candidate = (pool.base + next) >>> 0;
      if (!taken.has(candidate)) {
        taken.add(candidate);
        return candidate;
      }
    }
    return undefined;
  };
  return services.map((s) => {
    if (s.type !== 'LoadBalancer') return s;
    const ingress = s.loadBalancerIP ?? allocate();
    return ingress === undefined ? s : { ...s, loadBalancerIngress: ingress };
  });
}
