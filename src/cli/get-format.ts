/**
 * `podwire get`: the pure formatting half. Pods, services, endpoints and nodes are printed the
 * way kubectl 1.30 prints them, so a learner can hold the two outputs side by side: the table
 * columns of kubectl's internal printers laid out by Go's tabwriter as kubectl configures it,
 * AGE from apimachinery's HumanDuration, and `-o json|yaml` as a v1 List of real Kubernetes
 * object shapes with their keys sorted, as kubectl prints unstructured objects.
 *
 * Reading the store (readiness, restarts, creation times) is the caller's job; this file only
 * turns what it is given into text.
 */
import { stringify as yamlStringify } from 'yaml';
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import type { Ingress, IngressServiceBackend, Labels, Pod, Protocol, Service } from '../cluster/model.js';
import { formatCidr, formatIpv4 } from '../packet/addr.js';

export type GetKind = 'pods' | 'services' | 'endpoints' | 'nodes' | 'ingresses';

const KIND_NAMES: Readonly<Record<string, GetKind>> = {
  pod: 'pods', pods: 'pods', po: 'pods',
  service: 'services', services: 'services', svc: 'services',
  endpoints: 'endpoints', ep: 'endpoints',
  node: 'nodes', nodes: 'nodes', no: 'nodes',
  ingress: 'ingresses', ingresses: 'ingresses', ing: 'ingresses',
};

/** kubectl's resource names and short names: pod/pods/po, service/services/svc, endpoints/ep, node/nodes/no, ingress/ingresses/ing; undefined otherwise. */
export function parseGetKind(text: string): GetKind | undefined {
  // kubectl's REST mapper lowercases the resource before matching (`get Pods` works).
  const kind = text.toLowerCase();
  return Object.hasOwn(KIND_NAMES, kind) ? KIND_NAMES[kind] : undefined;
}

export interface PodInfo {
  readonly pod: Pod;
  /** STATUS column as kubectl shows it: Running, Pending, ContainerCreating, Terminating, Unknown (its node is NotReady), Completed, Error. */
  readonly status: string;
  readonly phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  readonly readyContainers: number;
  readonly restarts: number;
  readonly createdAt: number;
  /** The node's address (status.hostIP) when bound. */
  readonly hostIP?: string;
  readonly ready: boolean;
}

export interface ServiceInfo {
  readonly service: Service;
  readonly createdAt: number;
}

export interface EndpointsInfo {
  readonly namespace: string;
  readonly name: string;
  readonly ports: readonly ServicePortEndpoints[];
  readonly createdAt: number;
}

export interface NodeInfo {
  readonly name: string;
  readonly labels: Labels;
  readonly ready: boolean;
  readonly createdAt: number;
  readonly internalIP: string;
  readonly externalIP?: string;
  readonly podCIDR: string;
  readonly kernel?: string;
  readonly osImage?: string;
}

export interface GetInput {
  readonly kind: GetKind;
  /** undefined with -A. */
  readonly namespace?: string;
  readonly output: 'table' | 'wide' | 'json' | 'yaml';
  /** ms since the epoch. */
  readonly now: number;
  readonly pods?: readonly PodInfo[];
  readonly services?: readonly ServiceInfo[];
  readonly endpoints?: readonly EndpointsInfo[];
  readonly nodes?: readonly NodeInfo[];
  readonly ingresses?: readonly IngressInfo[];
}

export interface IngressInfo {
  readonly ingress: Ingress;
  /** status.loadBalancer.ingress: the address of the controller's Service that serves it; empty when none does. */
  readonly addresses: readonly string[];
  readonly createdAt: number;
}

/** What the kubelet column and nodeInfo say: podwire is not a kubelet release. */
export const KUBELET_VERSION = 'v1.30.0-podwire';
export const CONTAINER_RUNTIME = 'podwire://netns';

// ---------------------------------------------------------------------------------------------
// AGE

/**
 * apimachinery's duration.HumanDuration: about two significant figures. Up to a second in the
 * future still reads 0s (clock skew between machines); further ahead is `<invalid>`.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${days}d` : `${days}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) {
    const d = days % 365;
    return d === 0 ? `${years}y` : `${years}y${d}d`;
  }
  return `${years}y`;
}

/** The API server stores creationTimestamp to the second; kubectl's AGE counts from that. */
function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function age(createdAt: number, now: number): string {
  return humanDuration(now - wholeSeconds(createdAt));
}

/** RFC 3339 without fractional seconds, as metav1.Time marshals. */
function timestamp(ms: number): string {
  return new Date(wholeSeconds(ms)).toISOString().replace('.000Z', 'Z');
}

// ---------------------------------------------------------------------------------------------
// Columns

/**
 * Go's text/tabwriter as kubectl's printers set it up (minwidth 6, padding 3, pad with spaces):
 * every cell but a line's last is padded to its column's widest cell plus 3, and to at least 6.
 * (src/cli/table.ts pads by 2, which is why this file does not use it.)
 */
export function alignColumns(rows: readonly (readonly string[])[]): string {
  const MIN_WIDTH = 6;
  const PADDING = 3;
  const widths: number[] = [];
  for (const row of rows) {
    for (let i = 0; i < row.length - 1; i++) widths[i] = Math.max(widths[i] ?? MIN_WIDTH, row[i].length + PADDING);
  }
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('') + '\n').join('');
}

/** labels.FormatLabels: `k=v` by sorted key, `<none>` when empty. */
function formatLabels(labels: Labels | undefined): string {
  const keys = Object.keys(labels ?? {}).sort(byteOrder);
  return keys.length === 0 ? '<none>' : keys.map((k) => `${k}=${labels![k]}`).join(',');
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Pods

function podRow(info: PodInfo, now: number, wide: boolean): string[] {
  const { pod } = info;
  const row = [pod.name, `${info.readyContainers}/${pod.containers.length}`, info.status, String(info.restarts), age(info.createdAt, now)];
  if (wide) row.push(podIP(info) ?? '<none>', pod.node === '' ? '<none>' : pod.node, '<none>', '<none>');
  return row;
}

/** A pending pod has no sandbox yet, so the CNI has not given it its address. */
function podIP(info: PodInfo): string | undefined {
  return info.phase === 'Pending' ? undefined : formatIpv4(info.pod.ip);
}

function podObject(info: PodInfo): JsonObject {
  const { pod } = info;
  const replicaSet = pod.owner !== undefined ? `${pod.owner.name}-${pod.owner.podTemplateHash}` : undefined;
  const ip = podIP(info);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: pod.name,
      namespace: pod.namespace,
      uid: pod.uid,
      labels: nonEmpty(pod.labels),
      creationTimestamp: timestamp(info.createdAt),
      // The ReplicaSet's own uid is not in podwire's model, so the reference goes without it.
      generateName: replicaSet !== undefined ? `${replicaSet}-` : undefined,
      ownerReferences: replicaSet !== undefined
        ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: replicaSet, controller: true, blockOwnerDeletion: true }]
        : undefined,
    },
    spec: {
      nodeName: pod.node === '' ? undefined : pod.node,
      nodeSelector: nonEmpty(pod.nodeSelector),
      hostname: pod.hostname,
      subdomain: pod.subdomain,
      dnsPolicy: pod.dnsPolicy,
      dnsConfig: pod.dnsConfig === undefined ? undefined : {
        nameservers: nonEmptyList(pod.dnsConfig.nameservers),
        searches: nonEmptyList(pod.dnsConfig.searches),
        options: nonEmptyList(pod.dnsConfig.options.map((o) => ({ name: o.name, value: o.value }))),
      },
      containers: pod.containers.map((c) => ({
        name: c.name,
        image: c.image,
        command: nonEmptyList(c.command),
        args: nonEmptyList(c.args),
        env: nonEmptyList(c.env.map((e) => ({ name: e.name, value: e.value }))),
        ports: nonEmptyList(c.ports.map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol }))),
      })),
    },
    status: {
      phase: info.phase,
      podIP: ip,
      podIPs: ip !== undefined ? [{ ip }] : undefined,
      hostIP: info.hostIP,
      hostIPs: info.hostIP !== undefined ? [{ ip: info.hostIP }] : undefined,
      conditions: [{ type: 'Ready', status: info.ready ? 'True' : 'False', lastProbeTime: null }],
      // podwire counts restarts per pod: they are the first container's.
      containerStatuses: pod.containers.map((c, i) => ({
        name: c.name,
        image: c.image,
        ready: i < info.readyContainers,
        restartCount: i === 0 ? info.restarts : 0,
      })),
      // No container declares requests or limits.
      qosClass: 'BestEffort',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Services

function serviceRow(info: ServiceInfo, now: number, wide: boolean): string[] {
  const svc = info.service;
  const row = [svc.name, svc.type, clusterIP(svc) ?? '<none>', externalIP(svc, wide), portsText(svc), age(info.createdAt, now)];
  if (wide) row.push(formatLabels(svc.selector));
  return row;
}

function clusterIP(svc: Service): string | undefined {
  if (svc.type === 'ExternalName') return undefined;
  if (svc.headless) return 'None';
  return svc.clusterIP !== undefined ? formatIpv4(svc.clusterIP) : undefined;
}

/** kubectl's getServiceExternalIP: the load balancer's address, then spec.externalIPs. */
function externalIP(svc: Service, wide: boolean): string {
  const externalIPs = (svc.externalIPs ?? []).map(formatIpv4);
  switch (svc.type) {
    case 'ClusterIP':
    case 'NodePort':
      return externalIPs.length > 0 ? externalIPs.join(',') : '<none>';
    case 'LoadBalancer': {
      if (svc.loadBalancerIngress === undefined) return externalIPs.length > 0 ? externalIPs.join(',') : '<pending>';
      const text = formatIpv4(svc.loadBalancerIngress);
      // loadBalancerStatusStringer cuts a long list outside -o wide.
      const ingress = !wide && text.length > 16 ? `${text.slice(0, 13)}...` : text;
      return [ingress, ...externalIPs].join(',');
    }
    case 'ExternalName':
      return svc.externalName ?? '';
  }
}

/** makePortString: `80/TCP`, `80:30080/TCP` with a node port, `<none>` without ports. */
function portsText(svc: Service): string {
  if (svc.ports.length === 0) return '<none>';
  return svc.ports.map((p) => (p.nodePort !== undefined && p.nodePort > 0 ? `${p.port}:${p.nodePort}/${p.protocol}` : `${p.port}/${p.protocol}`)).join(',');
}

function serviceObject(info: ServiceInfo): JsonObject {
  const svc = info.service;
  const ip = clusterIP(svc);
  const hasIP = svc.type !== 'ExternalName';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: svc.name, namespace: svc.namespace, labels: nonEmpty(svc.labels), creationTimestamp: timestamp(info.createdAt) },
    spec: {
      type: svc.type,
      clusterIP: ip,
      clusterIPs: ip !== undefined ? [ip] : undefined,
      // What the API server defaults on an IPv4-only cluster.
      ipFamilies: hasIP ? ['IPv4'] : undefined,
      ipFamilyPolicy: hasIP ? 'SingleStack' : undefined,
      internalTrafficPolicy: hasIP ? 'Cluster' : undefined,
      allocateLoadBalancerNodePorts: svc.type === 'LoadBalancer' ? svc.allocateLoadBalancerNodePorts ?? true : undefined,
      ports: nonEmptyList(svc.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port, targetPort: p.targetPort, nodePort: p.nodePort }))),
      selector: svc.selector !== undefined ? nonEmpty(svc.selector) : undefined,
      sessionAffinity: svc.sessionAffinity,
      sessionAffinityConfig: svc.sessionAffinity === 'ClientIP'
        ? { clientIP: { timeoutSeconds: svc.sessionAffinityTimeoutSeconds ?? 10800 } }
        : undefined,
      externalIPs: svc.externalIPs !== undefined ? svc.externalIPs.map(formatIpv4) : undefined,
      externalTrafficPolicy: svc.externalTrafficPolicy,
      healthCheckNodePort: svc.healthCheckNodePort,
      loadBalancerIP: svc.loadBalancerIP !== undefined ? formatIpv4(svc.loadBalancerIP) : undefined,
      loadBalancerSourceRanges: svc.loadBalancerSourceRanges !== undefined ? svc.loadBalancerSourceRanges.map(formatCidr) : undefined,
      externalName: svc.externalName,
    },
    status: {
      loadBalancer: svc.loadBalancerIngress !== undefined ? { ingress: [{ ip: formatIpv4(svc.loadBalancerIngress), ipMode: 'VIP' }] } : {},
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Ingresses

/** kubectl's loadBalancerWidth: a longer ADDRESS is cut (not with -o wide). */
const LOAD_BALANCER_WIDTH = 16;

function ingressRow(info: IngressInfo, now: number, wide: boolean): string[] {
  const ing = info.ingress;
  let address = info.addresses.join(',');
  if (!wide && address.length > LOAD_BALANCER_WIDTH) address = `${address.slice(0, LOAD_BALANCER_WIDTH - 3)}...`;
  return [ing.name, ing.ingressClassName ?? '<none>', ingressHosts(ing), address, ing.tls.length > 0 ? '80, 443' : '80', age(info.createdAt, now)];
}

/** kubectl's formatHosts: the first three hosts, then how many rules more; `*` without any. */
export function ingressHosts(ing: Ingress): string {
  const max = 3;
  const list: string[] = [];
  let more = false;
  for (const rule of ing.rules) {
    if (list.length === max) more = true;
    if (!more && rule.host !== undefined) list.push(rule.host);
  }
  if (list.length === 0) return '*';
  const joined = list.join(',');
  return more ? `${joined} + ${ing.rules.length - max} more...` : joined;
}

function ingressBackend(b: IngressServiceBackend): JsonObject {
  return { service: { name: b.name, port: typeof b.port === 'number' ? { number: b.port } : { name: b.port } } };
}

function ingressObject(info: IngressInfo): JsonObject {
  const ing = info.ingress;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: ing.name, namespace: ing.namespace, labels: nonEmpty(ing.labels), annotations: nonEmpty(ing.annotations), creationTimestamp: timestamp(info.createdAt) },
    spec: {
      ingressClassName: ing.ingressClassName,
      defaultBackend: ing.defaultBackend !== undefined ? ingressBackend(ing.defaultBackend) : undefined,
      rules: nonEmptyList(
        ing.rules.map((rule) => ({
          host: rule.host,
          http: rule.paths.length > 0 ? { paths: rule.paths.map((p) => ({ path: p.path === '' ? undefined : p.path, pathType: p.pathType, backend: ingressBackend(p.backend) })) } : undefined,
        })),
      ),
      tls: nonEmptyList(ing.tls.map((t) => ({ hosts: nonEmptyList([...t.hosts]), secretName: t.secretName }))),
    },
    status: { loadBalancer: info.addresses.length > 0 ? { ingress: info.addresses.map((ip) => ({ ip })) } : {} },
  };
}

// ---------------------------------------------------------------------------------------------
// Endpoints

export interface SubsetAddress {
  readonly ip: string;
  readonly hostname?: string;
  readonly nodeName?: string;
  /** namespace/name of the backing pod. */
  readonly pod?: string;
}

export interface SubsetPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface Subset {
  readonly addresses: readonly SubsetAddress[];
  readonly notReadyAddresses: readonly SubsetAddress[];
  readonly ports: readonly SubsetPort[];
}

/**
 * The endpoints controller's RepackSubsets: each distinct port (name, number, protocol) is
 * offered by a set of addresses, and ports offered by the same set share one subset. A
 * targetPort named per pod can give one service port two numbers, hence two subsets.
 * Addresses sort by their IP text, as SortSubsets does; subsets and their ports keep service
 * port order, where Kubernetes orders them by a hash of its Go objects.
 */
export function repackSubsets(ports: readonly ServicePortEndpoints[]): Subset[] {
  const byPort = new Map<string, { port: SubsetPort; addrs: Map<string, { addr: SubsetAddress; ready: boolean }> }>();
  for (const spe of ports) {
    for (const e of spe.endpoints) {
      const port: SubsetPort = { name: spe.servicePort.name, port: e.port, protocol: spe.protocol };
      const portKey = `${port.name ?? ''}/${port.port}/${port.protocol}`;
      let entry = byPort.get(portKey);
      if (entry === undefined) byPort.set(portKey, (entry = { port, addrs: new Map() }));
      const addr: SubsetAddress = { ip: formatIpv4(e.ip), hostname: e.hostname, nodeName: e.node, pod: e.pod };
      entry.addrs.set(`${addr.ip}/${addr.pod ?? ''}`, { addr, ready: e.ready });
    }
  }
  const bySet = new Map<string, { addrs: { addr: SubsetAddress; ready: boolean }[]; ports: SubsetPort[] }>();
  for (const { port, addrs } of byPort.values()) {
    const list = [...addrs.values()].sort((a, b) => byteOrder(a.addr.ip, b.addr.ip) || byteOrder(a.addr.pod ?? '', b.addr.pod ?? ''));
    const setKey = list.map((a) => `${a.addr.ip}/${a.addr.pod ?? ''}/${a.ready}`).join(',');
    const group = bySet.get(setKey);
    if (group === undefined) bySet.set(setKey, { addrs: list, ports: [port] });
    else group.ports.push(port);
  }
  return [...bySet.values()].map(({ addrs, ports: subsetPorts }) => ({
    addresses: addrs.filter((a) => a.ready).map((a) => a.addr),
    notReadyAddresses: addrs.filter((a) => !a.ready).map((a) => a.addr),
    ports: subsetPorts,
  }));
}

/** kubectl's formatEndpoints: ready `ip:port` per subset and port, the first 3, then `+ N more...`. */
export function formatSubsets(subsets: readonly Subset[]): string {
  const MAX = 3;
  const list: string[] = [];
  let count = 0;
  for (const subset of subsets) {
    for (const port of subset.ports) {
      count += subset.addresses.length;
      for (const addr of subset.addresses) {
        if (list.length === MAX) break;
        list.push(`${addr.ip}:${port.port}`);
      }
    }
  }
  if (count > MAX) return `${list.join(',')} + ${count - MAX} more...`;
  return list.length === 0 ? '<none>' : list.join(',');
}

function endpointsRow(info: EndpointsInfo, now: number): string[] {
  return [info.name, formatSubsets(repackSubsets(info.ports)), age(info.createdAt, now)];
}

function endpointsObject(info: EndpointsInfo, podUids: ReadonlyMap<string, string>): JsonObject {
  const service = info.ports[0]?.service;
  // The controller copies the service's labels, and marks the Endpoints of a headless one.
  const labels = { ...(service?.labels ?? {}), ...(service?.headless === true ? { 'service.kubernetes.io/headless': '' } : {}) };
  const address = (a: SubsetAddress): JsonObject => {
    const slash = a.pod?.indexOf('/') ?? -1;
    return {
      ip: a.ip,
      hostname: a.hostname,
      nodeName: a.nodeName,
      targetRef: a.pod !== undefined
        ? { kind: 'Pod', namespace: a.pod.slice(0, slash), name: a.pod.slice(slash + 1), uid: podUids.get(a.pod) }
        : undefined,
    };
  };
  const subsets = repackSubsets(info.ports);
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: info.name, namespace: info.namespace, labels: nonEmpty(labels), creationTimestamp: timestamp(info.createdAt) },
    subsets: nonEmptyList(subsets.map((s) => ({
      addresses: nonEmptyList(s.addresses.map(address)),
      notReadyAddresses: nonEmptyList(s.notReadyAddresses.map(address)),
      ports: nonEmptyList(s.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol }))),
    }))),
  };
}

// ---------------------------------------------------------------------------------------------
// Nodes

const ROLE_PREFIX = 'node-role.kubernetes.io/';

/** kubectl's findNodeRoles: node-role.kubernetes.io/<role> keys and kubernetes.io/role values, sorted. */
function nodeRoles(labels: Labels): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith(ROLE_PREFIX) && key.length > ROLE_PREFIX.length) roles.add(key.slice(ROLE_PREFIX.length));
    else if (key === 'kubernetes.io/role' && value !== '') roles.add(value);
  }
  return roles.size === 0 ? '<none>' : [...roles].sort(byteOrder).join(',');
}

function nodeRow(info: NodeInfo, now: number, wide: boolean): string[] {
  const row = [info.name, info.ready ? 'Ready' : 'NotReady', nodeRoles(info.labels), age(info.createdAt, now), KUBELET_VERSION];
  if (wide) row.push(info.internalIP, info.externalIP ?? '<none>', info.osImage ?? '<unknown>', info.kernel ?? '<unknown>', CONTAINER_RUNTIME);
  return row;
}

function nodeObject(info: NodeInfo): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: info.name, labels: nonEmpty(info.labels), creationTimestamp: timestamp(info.createdAt) },
    spec: { podCIDR: info.podCIDR, podCIDRs: [info.podCIDR] },
    status: {
      addresses: [
        { type: 'InternalIP', address: info.internalIP },
        ...(info.externalIP !== undefined ? [{ type: 'ExternalIP', address: info.externalIP }] : []),
        { type: 'Hostname', address: info.name },
      ],
      // A lease gone stale makes the node lifecycle controller set Ready to Unknown.
      conditions: [info.ready
        ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }
        : { type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' }],
      // NodeSystemInfo's fields have no omitempty: the unknown ones print empty.
      nodeInfo: {
        architecture: info.labels['kubernetes.io/arch'] ?? '',
        bootID: '',
        containerRuntimeVersion: CONTAINER_RUNTIME,
        kernelVersion: info.kernel ?? '',
        kubeProxyVersion: KUBELET_VERSION,
        kubeletVersion: KUBELET_VERSION,
        machineID: '',
        operatingSystem: info.labels['kubernetes.io/os'] ?? 'linux',
        osImage: info.osImage ?? '',
        systemUUID: '',
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// JSON and YAML

type Json = string | number | boolean | null | undefined | readonly Json[] | JsonObject;
interface JsonObject { readonly [key: string]: Json }

/** Go's omitempty on a map: an empty one is left out. */
function nonEmpty(labels: Labels): Labels | undefined {
  return Object.keys(labels).length === 0 ? undefined : labels;
}

function nonEmptyList<T extends Json>(list: readonly T[]): readonly T[] | undefined {
  return list.length === 0 ? undefined : list;
}

function present(object: JsonObject): string[] {
  return Object.keys(object).filter((k) => object[k] !== undefined).sort(byteOrder);
}

/**
 * encoding/json's MarshalIndent with four spaces, as kubectl's JSON printer calls it: keys in
 * byte order (the object is a map by then), and <, >, & and the JavaScript line separators
 * escaped, as Go escapes them for HTML safety.
 */
function goJson(value: Json, indent: string): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (typeof value !== 'object') return String(value);
  const inner = `${indent}    `;
  if (isList(value)) {
    return value.length === 0 ? '[]' : `[\n${value.map((v) => inner + goJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = present(value);
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${goJson(k, inner)}: ${goJson(value[k], inner)}`).join(',\n')}\n${indent}}`;
}

function isList(value: readonly Json[] | JsonObject): value is readonly Json[] {
  return Array.isArray(value);
}

/** Drops absent fields, so the YAML writer never sees an undefined. */
function defined(value: Json): Json {
  if (value === null || typeof value !== 'object') return value;
  if (isList(value)) return value.map(defined);
  return Object.fromEntries(present(value).map((k) => [k, defined(value[k])]));
}

/**
 * sigs.k8s.io/yaml over go-yaml v2: two-space maps, `- ` items level with their key, sorted keys,
 * YAML 1.1 resolution (so "True", "y", "on" and timestamps are quoted), plain scalars folded at 80.
 */
function goYaml(value: Json): string {
  return yamlStringify(defined(value), { indentSeq: false, schema: 'yaml-1.1', sortMapEntries: true, lineWidth: 80 });
}

// ---------------------------------------------------------------------------------------------
// The command's output

interface Listed {
  readonly namespace?: string;
  readonly name: string;
  readonly row: (wide: boolean) => string[];
  readonly object: () => JsonObject;
}

function listed(input: GetInput): Listed[] {
  const { now } = input;
  switch (input.kind) {
    case 'pods':
      return (input.pods ?? []).map((p) => ({ namespace: p.pod.namespace, name: p.pod.name, row: (w) => podRow(p, now, w), object: () => podObject(p) }));
    case 'services':
      return (input.services ?? []).map((s) => ({ namespace: s.service.namespace, name: s.service.name, row: (w) => serviceRow(s, now, w), object: () => serviceObject(s) }));
    case 'endpoints': {
      const uids = new Map((input.pods ?? []).map((p) => [`${p.pod.namespace}/${p.pod.name}`, p.pod.uid]));
      return (input.endpoints ?? []).map((e) => ({ namespace: e.namespace, name: e.name, row: () => endpointsRow(e, now), object: () => endpointsObject(e, uids) }));
    }
    case 'nodes':
      return (input.nodes ?? []).map((n) => ({ name: n.name, row: (w) => nodeRow(n, now, w), object: () => nodeObject(n) }));
    case 'ingresses':
      return (input.ingresses ?? []).map((i) => ({ namespace: i.ingress.namespace, name: i.ingress.name, row: (w) => ingressRow(i, now, w), object: () => ingressObject(i) }));
  }
}

const HEADERS: Readonly<Record<GetKind, { readonly table: readonly string[]; readonly wide: readonly string[] }>> = {
  pods: { table: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'], wide: ['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES'] },
  services: { table: ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'], wide: ['SELECTOR'] },
  endpoints: { table: ['NAME', 'ENDPOINTS', 'AGE'], wide: [] },
  nodes: { table: ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'], wide: ['INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME'] },
  ingresses: { table: ['NAME', 'CLASS', 'HOSTS', 'ADDRESS', 'PORTS', 'AGE'], wide: [] },
};

/**
 * stdout text, and the stderr line kubectl prints when a table would be empty ("No resources
 * found in default namespace." / "No resources found"), each ending in a newline. Filters by
 * namespace itself (nodes are cluster-scoped) and lists in the API server's order: by storage
 * key, `<namespace>/<name>` compared byte by byte.
 */
export function formatGet(input: GetInput): { stdout: string; stderr?: string } {
  const clusterScoped = input.kind === 'nodes';
  const items = listed(input)
    .filter((item) => clusterScoped || input.namespace === undefined || item.namespace === input.namespace)
    .map((item) => ({ item, key: clusterScoped ? item.name : `${item.namespace}/${item.name}` }))
    .sort((a, b) => byteOrder(a.key, b.key))
    .map(({ item }) => item);

  if (input.output === 'json' || input.output === 'yaml') {
    const list: JsonObject = { apiVersion: 'v1', items: items.map((i) => i.object()), kind: 'List', metadata: { resourceVersion: '' } };
    return { stdout: input.output === 'json' ? `${goJson(list, '')}\n` : goYaml(list) };
  }
  if (items.length === 0) {
    const namespaced = !clusterScoped && input.namespace !== undefined;
    return { stdout: '', stderr: namespaced ? `No resources found in ${input.namespace} namespace.\n` : 'No resources found\n' };
  }
  const wide = input.output === 'wide';
  const allNamespaces = !clusterScoped && input.namespace === undefined;
  const headers = [...(allNamespaces ? ['NAMESPACE'] : []), ...HEADERS[input.kind].table, ...(wide ? HEADERS[input.kind].wide : [])];
  const rows = items.map((item) => [...(allNamespaces ? [item.namespace ?? ''] : []), ...item.row(wide)]);
  return { stdout: alignColumns([headers, ...rows]) };
}
