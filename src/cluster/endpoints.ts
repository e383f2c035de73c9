/**
 * The endpoints controller: which pods back which service port, computed from selectors,
 * container ports and pod readiness, the way the Kubernetes endpoints controller fills an
 * EndpointSlice. Pure: readiness is passed in (the node agents observe it), so the same
 * function serves kube-proxy's rules, the DNS zone and `podwire status`.
 *
 * - A service with a selector gets every pod of its namespace whose labels match; ready
 *   pods are endpoints, unready ones are listed as not ready (DNS and rules skip them).
 * - A targetPort given by name resolves per pod through its containers' named ports, so
 *   two pods may serve one service port on different numbers; a pod without that name is
 *   not an endpoint of that port.
 * - A service without a selector takes its addresses from hand-written Endpoints.
 * - ExternalName services have no endpoints.
 */
import { formatIpv4 } from '../packet/addr.js';
import type { Cluster, Endpoints, Pod, Protocol, Service, ServicePort } from './model.js';

export interface Endpoint {
  readonly ip: number;
  readonly port: number;
  readonly ready: boolean;
  /** Node hosting the endpoint (undefined for hand-written addresses without nodeName). */
  readonly node?: string;
  /** The backing pod, as namespace/name (undefined for hand-written addresses). */
  readonly pod?: string;
  /** For headless DNS: the pod's hostname when it sets hostname (and subdomain). */
  readonly hostname?: string;
}

export interface ServicePortEndpoints {
  readonly service: Service;
  readonly servicePort: ServicePort;
  readonly protocol: Protocol;
  /** Every endpoint, ready or not, in a stable order (pod declaration order, then IP). */
  readonly endpoints: readonly Endpoint[];
}

/** Ready state by "namespace/name"; a pod absent from the map is not ready. */
export type Readiness = ReadonlyMap<string, boolean>;

export function podKey(pod: Pick<Pod, 'namespace' | 'name'>): string {
  return `${pod.namespace}/${pod.name}`;
}

function selects(service: Service, pod: Pod): boolean {
  const selector = service.selector;
  if (selector === undefined || pod.namespace !== service.namespace) return false;
  for (const [key, value] of Object.entries(selector)) if (pod.labels[key] !== value) return false;
  return true;
}

/** The container port a service port reaches on `pod`, or undefined when the pod has none. */
export function resolveTargetPort(servicePort: ServicePort, pod: Pod): number | undefined {
  const target = servicePort.targetPort;
  if (typeof target === 'number') return target;
  for (const container of pod.containers) {
    for (const port of container.ports) {
      if (port.name === target && port.protocol === servicePort.protocol) return port.containerPort;
    }
  }
  return undefined;
}

function fromSelector(cluster: Cluster, service: Service, servicePort: ServicePort, readiness: Readiness): Endpoint[] {
  const out: Endpoint[] = [];
  for (const pod of cluster.pods) {
    if (!selects(service, pod)) continue;
    const port = resolveTargetPort(servicePort, pod);
    if (port === undefined) continue;
    out.push({
      ip: pod.ip,
      port,
      ready: readiness.get(podKey(pod)) === true,
      node: pod.node,
      pod: podKey(pod),
      ...(pod.hostname !== undefined && pod.subdomain === service.name ? { hostname: pod.hostname } : {}),
    });
  }
  return out;
}

function fromEndpoints(declared: Endpoints | undefined, servicePort: ServicePort): Endpoint[] {
  if (declared === undefined) return [];
  const out: Endpoint[] = [];
  for (const subset of declared.subsets) {
    // A subset port matches the service port by name (both unnamed for a one-port service).
    const port = subset.ports.find((p) => (p.name ?? '') === (servicePort.name ?? '') && p.protocol === servicePort.protocol);
    if (port === undefined) continue;
    for (const [ready, list] of [[true, subset.addresses], [false, subset.notReadyAddresses]] as const) {
      for (const a of list) {
        out.push({ ip: a.ip, port: port.port, ready, ...(a.nodeName !== undefined ? { node: a.nodeName } : {}), ...(a.hostname !== undefined ? { hostname: a.hostname } : {}) });
      }
    }
  }
  return out;
}

/** Endpoints of every port of every service (ExternalName services excluded). */
export function computeEndpoints(cluster: Cluster, readiness: Readiness): ServicePortEndpoints[] {
  const declared = new Map(cluster.endpoints.map((e) => [`${e.namespace}/${e.name}`, e]));
  const out: ServicePortEndpoints[] = [];
  for (const service of cluster.services) {
    if (service.type === 'ExternalName') continue;
    for (const servicePort of service.ports) {
      const endpoints =
        service.selector !== undefined
          ? fromSelector(cluster, service, servicePort, readiness)
          : fromEndpoints(declared.get(`${service.namespace}/${service.name}`), servicePort);
      out.push({ service, servicePort, protocol: servicePort.protocol, endpoints });
    }
  }
  return out;
}

/** `10.244.1.2:80,10.244.2.2:80` as kubectl get endpoints prints (ready ones only). */
export function formatEndpoints(list: readonly Endpoint[]): string {
  const ready = list.filter((e) => e.ready);
  return ready.length === 0 ? '<none>' : ready.map((e) => `${formatIpv4(e.ip)}:${e.port}`).join(',');
}
