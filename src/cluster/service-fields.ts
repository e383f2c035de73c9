/**
 * Every field of a v1 Service and v1 Endpoints object, and what podwire does with it: the
 * decoders read what is honoured; `reportServiceFields` / `reportEndpointsFields` warn,
 * naming the file, document and field, about everything else that is set, so that a
 * manifest never loses a field in silence. The README's table of honoured fields is this
 * table. A value that asks for what podwire gives anyway (ipFamilies [IPv4], an
 * internalTrafficPolicy of Cluster) is honoured and gets no warning.
 */
import type { Field, FieldMap } from './yaml-reader.js';

/** undefined: read and honoured; a string: why it is not, for the warning. */
type Coverage = undefined | string | ((field: Field) => string | undefined);

const IPV4_ONLY = 'podwire is IPv4 single-stack';

/** v1 ServiceSpec, in the API reference's order. */
export const SERVICE_SPEC_FIELDS: Readonly<Record<string, Coverage>> = {
  ports: undefined,
  selector: undefined,
  clusterIP: undefined,
  clusterIPs: (f) => (f.list()?.length ?? 0) > 1 ? `${IPV4_ONLY}: only clusterIP is used, the other addresses are ignored` : undefined,
  type: undefined,
  externalIPs: undefined,
  sessionAffinity: undefined,
  loadBalancerIP: undefined,
  loadBalancerSourceRanges: undefined,
  externalName: undefined,
  externalTrafficPolicy: undefined,
  healthCheckNodePort: undefined,
  publishNotReadyAddresses: (f) => (f.boolean() === true ? 'not supported by podwire: endpoints that are not ready stay out of the Service and its DNS records' : undefined),
  sessionAffinityConfig: undefined,
  ipFamilies: (f) => ((f.list() ?? []).some((item) => item.peekString() !== 'IPv4') ? `${IPV4_ONLY}: only IPv4 is served` : undefined),
  ipFamilyPolicy: (f) => (f.peekString() === 'RequireDualStack' ? `${IPV4_ONLY}: the service gets its IPv4 address only` : undefined),
  allocateLoadBalancerNodePorts: undefined,
  loadBalancerClass: () => "not supported by podwire: its built-in load balancer serves every LoadBalancer service, whatever the class",
  internalTrafficPolicy: (f) => (f.peekString() === 'Local' ? 'not supported by podwire: cluster traffic goes to every ready endpoint, as with Cluster' : undefined),
  trafficDistribution: () => 'not supported by podwire: endpoints are chosen without topology',
};

/** v1 ServicePort. appProtocol is read by nobody on the forwarding path, kube-proxy included. */
export const SERVICE_PORT_FIELDS: Readonly<Record<string, Coverage>> = {
  name: undefined,
  protocol: undefined,
  appProtocol: undefined,
  port: undefined,
  targetPort: undefined,
  nodePort: undefined,
};

/** The Service object itself. */
export const SERVICE_FIELDS: Readonly<Record<string, Coverage>> = {
  apiVersion: undefined,
  kind: undefined,
  metadata: undefined,
  spec: undefined,
  status: () => 'ignored: the status is the cluster\'s to write (podwire gives LoadBalancer addresses from its own pool)',
};

export const ENDPOINTS_FIELDS: Readonly<Record<string, Coverage>> = { apiVersion: undefined, kind: undefined, metadata: undefined, subsets: undefined };
export const ENDPOINT_SUBSET_FIELDS: Readonly<Record<string, Coverage>> = { addresses: undefined, notReadyAddresses: undefined, ports: undefined };
export const ENDPOINT_ADDRESS_FIELDS: Readonly<Record<string, Coverage>> = { ip: undefined, hostname: undefined, nodeName: undefined, targetRef: undefined };
export const ENDPOINT_PORT_FIELDS: Readonly<Record<string, Coverage>> = { name: undefined, port: undefined, protocol: undefined, appProtocol: undefined };

/** Warns about each key of `map` that the table does not honour, or that the API does not have. */
export function reportFields(map: FieldMap | undefined, table: Readonly<Record<string, Coverage>>, what: string): void {
  if (map === undefined) return;
  for (const [key, field] of map.entries) {
    if (!field.present) continue;
    if (!Object.hasOwn(table, key)) {
      field.warn(`not a field of ${what}: ignored (kubectl would refuse it)`);
      continue;
    }
    const coverage = table[key];
    const reason = typeof coverage === 'function' ? coverage(field) : coverage;
    if (reason !== undefined) field.warn(reason);
  }
}

export function reportServiceFields(root: FieldMap): void {
  reportFields(root, SERVICE_FIELDS, 'a v1 Service');
  const spec = root.get('spec').shape === 'map' ? root.get('spec').map() : undefined;
  reportFields(spec, SERVICE_SPEC_FIELDS, 'a v1 ServiceSpec');
  const ports = spec?.get('ports');
  if (ports?.shape === 'list') for (const item of ports.list() ?? []) if (item.shape === 'map') reportFields(item.map(), SERVICE_PORT_FIELDS, 'a v1 ServicePort');
}

export function reportEndpointsFields(root: FieldMap): void {
  reportFields(root, ENDPOINTS_FIELDS, 'a v1 Endpoints');
  const subsets = root.get('subsets');
  if (subsets.shape !== 'list') return;
  for (const subset of subsets.list() ?? []) {
    if (subset.shape !== 'map') continue;
    const m = subset.map()!;
    reportFields(m, ENDPOINT_SUBSET_FIELDS, 'a v1 EndpointSubset');
    for (const key of ['addresses', 'notReadyAddresses']) {
      const list = m.get(key);
      if (list.shape === 'list') for (const a of list.list() ?? []) if (a.shape === 'map') reportFields(a.map(), ENDPOINT_ADDRESS_FIELDS, 'a v1 EndpointAddress');
    }
    const ports = m.get('ports');
    if (ports.shape === 'list') for (const p of ports.list() ?? []) if (p.shape === 'map') reportFields(p.map(), ENDPOINT_PORT_FIELDS, 'a v1 EndpointPort');
  }
}
