/**
 * Services and Endpoints, validated as the API server does for the fields podwire models.
 * Addresses are not allocated here (see ipam.ts, nodeports.ts): a ServiceDecl says what the
 * YAML asked for.
 */

import { cidrContains, parseCidr, type Cidr } from '../packet/addr.js';
import {
  checked,
  claimUnique,
  decodeCidr,
  decodeIpv4,
  decodeLabels,
  decodeMetadata,
  decodePortNumber,
  decodePortRef,
  decodeProtocol,
  required,
  type ObjectMeta,
} from './decode-common.js';
import type { EndpointAddress, EndpointPort, EndpointSubset, Labels, ObjectReference, ServicePort, ServiceType } from './model.js';
import { checkDns1035Label, checkDnsLabel, checkDnsSubdomain } from './names.js';
import { NODE_PORT_MAX, NODE_PORT_MIN } from './nodeports.js';
import { reportEndpointsFields, reportServiceFields } from './service-fields.js';
import type { Field, FieldMap } from './yaml-reader.js';

const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

export const DEFAULT_AFFINITY_TIMEOUT = 10800;
const MAX_AFFINITY_TIMEOUT = 86400;

export interface ServicePortDecl {
  /** `nodePort` is only what the YAML asked for; allocation fills in the rest. */
  readonly port: ServicePort;
  readonly field: Field;
  readonly nodePortField: Field;
}

export interface ServiceDecl {
  readonly kind: 'Service';
  readonly meta: ObjectMeta;
  readonly type: ServiceType;
  /** An address, 'None' (headless) or undefined (allocate one, unless ExternalName). */
  readonly clusterIP: number | 'None' | undefined;
  readonly clusterIPField: Field;
  readonly ports: readonly ServicePortDecl[];
  readonly selector?: Labels;
  readonly sessionAffinity: 'None' | 'ClientIP';
  readonly sessionAffinityTimeoutSeconds?: number;
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  readonly loadBalancerIP?: number;
  readonly loadBalancerSourceRanges?: readonly Cidr[];
  readonly externalIPs?: readonly number[];
  /** spec.allocateLoadBalancerNodePorts: false leaves a LoadBalancer's ports without node ports unless they ask for one. */
  readonly allocateLoadBalancerNodePorts: boolean;
  /** Set when the service needs one (LoadBalancer, Local): the number asked for, or 'auto'. */
  readonly healthCheckNodePort?: number | 'auto';
  readonly healthCheckNodePortField: Field;
  readonly externalName?: string;
}

export interface EndpointsDecl {
  readonly kind: 'Endpoints';
  readonly meta: ObjectMeta;
  readonly subsets: readonly EndpointSubset[];
}

export function decodeService(root: FieldMap): ServiceDecl | undefined {
  reportServiceFields(root);
  const meta = decodeMetadata(root, true, checkDns1035Label);
  const spec = root.get('spec').mapOrEmpty();
  if (spec === undefined) return undefined;
  const type = spec.get('type').oneOf(SERVICE_TYPES) ?? 'ClusterIP';

  const clusterIPField = spec.get('clusterIP');
  const clusterIP = decodeClusterIP(clusterIPField, type);
  const headless = clusterIP === 'None';

  const portsField = spec.get('ports');
  const portItems = portsField.list() ?? [];
  if (portItems.length === 0 && !headless && type !== 'ExternalName') portsField.error('must have at least one port');
  const ports: ServicePortDecl[] = [];
  const names = new Set<string>();
  const portProtocols = new Set<string>();
  for (const item of portItems) {
    const decl = decodeServicePort(item, type, portItems.length > 1, names, portProtocols);
    if (decl !== undefined) ports.push(decl);
  }

  const selectorLabels = decodeLabels(spec.get('selector'));
  const selector = Object.keys(selectorLabels).length > 0 ? selectorLabels : undefined;

  const sessionAffinity = spec.get('sessionAffinity').oneOf(['None', 'ClientIP'] as const) ?? 'None';
  const affinityConfigField = spec.get('sessionAffinityConfig');
  let sessionAffinityTimeoutSeconds: number | undefined;
  if (sessionAffinity === 'ClientIP') {
    const timeoutField = affinityConfigField.mapOrEmpty()?.get('clientIP').mapOrEmpty()?.get('timeoutSeconds');
    sessionAffinityTimeoutSeconds =
      timeoutField?.present === true
        ? timeoutField.integer(`must be an integer between 1 and ${MAX_AFFINITY_TIMEOUT}`, 1, MAX_AFFINITY_TIMEOUT)
        : DEFAULT_AFFINITY_TIMEOUT;
  } else if (affinityConfigField.present) {
    affinityConfigField.error('must not be set when sessionAffinity is None');
  }

  const rangesField = spec.get('loadBalancerSourceRanges');
  // The API server reads each range as net.ParseCIDR does: host bits are allowed and dropped.
  const loadBalancerSourceRanges = (rangesField.list() ?? []).flatMap((item) => decodeCidr(item, true) ?? []);
  if (rangesField.present && type !== 'LoadBalancer') rangesField.error("may only be used when type is 'LoadBalancer'");

  const externalIPs = decodeExternalIPs(spec.get('externalIPs'));
  // The API server's ExternallyAccessible: a ClusterIP service with external IPs is reached from outside too.
  const external = type === 'NodePort' || type === 'LoadBalancer' || (type === 'ClusterIP' && clusterIP !== 'None' && externalIPs.length > 0);

  const etpField = spec.get('externalTrafficPolicy');
  let externalTrafficPolicy = etpField.oneOf(['Cluster', 'Local'] as const);
  if (externalTrafficPolicy !== undefined && !external) etpField.error('may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)');
  if (external) externalTrafficPolicy ??= 'Cluster';
  else externalTrafficPolicy = undefined;

  const lbField = spec.get('loadBalancerIP');
  const loadBalancerIP = decodeIpv4(lbField);
  if (loadBalancerIP !== undefined && type !== 'LoadBalancer') lbField.error('may only be set when type is LoadBalancer');

  // The API server allocates one for exactly the services that need it, and refuses it elsewhere.
  const healthField = spec.get('healthCheckNodePort');
  const needsHealthCheck = type === 'LoadBalancer' && externalTrafficPolicy === 'Local';
  let healthCheckNodePort: number | 'auto' | undefined;
  if (needsHealthCheck) {
    healthCheckNodePort = healthField.present
      ? healthField.integer(`must be an integer between ${NODE_PORT_MIN} and ${NODE_PORT_MAX} (the node port range)`, NODE_PORT_MIN, NODE_PORT_MAX)
      : 'auto';
  } else if (healthField.present) {
    healthField.error("may only be set when type is 'LoadBalancer' and externalTrafficPolicy is 'Local'");
  }

  const allocateField = spec.get('allocateLoadBalancerNodePorts');
  const allocateLoadBalancerNodePorts = allocateField.present ? allocateField.boolean() ?? true : true;
  if (allocateField.present && type !== 'LoadBalancer') allocateField.error("may only be used when type is 'LoadBalancer'");

  let externalName: string | undefined;
  if (type === 'ExternalName') {
    // Kubernetes accepts the absolute form (trailing dot) of the name too.
    externalName = required(spec.get('externalName'), (v) => checkDnsSubdomain(v.endsWith('.') ? v.slice(0, -1) : v));
  }

  if (meta === undefined) return undefined;
  return {
    kind: 'Service',
    meta,
    type,
    clusterIP,
    clusterIPField,
    ports,
    ...(selector !== undefined && { selector }),
    sessionAffinity,
    ...(sessionAffinityTimeoutSeconds !== undefined && { sessionAffinityTimeoutSeconds }),
    ...(externalTrafficPolicy !== undefined && { externalTrafficPolicy }),
    ...(loadBalancerIP !== undefined && type === 'LoadBalancer' && { loadBalancerIP }),
    ...(loadBalancerSourceRanges.length > 0 && { loadBalancerSourceRanges }),
    ...(externalIPs.length > 0 && { externalIPs }),
    ...(healthCheckNodePort !== undefined && { healthCheckNodePort }),
    healthCheckNodePortField: healthField,
    allocateLoadBalancerNodePorts,
    ...(externalName !== undefined && { externalName }),
  };
}

/** The API server's ValidateNonSpecialIP: addresses that can never be a service's outside address. */
const SPECIAL_EXTERNAL_RANGES = [
  ['0.0.0.0/32', 'unspecified'],
  ['127.0.0.0/8', 'in the loopback range'],
  ['169.254.0.0/16', 'in the link-local range'],
  ['224.0.0.0/24', 'in the link-local multicast range'],
].map(([text, what]) => ({ text, what, cidr: parseCidr(text)! }));

function decodeExternalIPs(field: Field): number[] {
  const out: number[] = [];
  for (const item of field.list() ?? []) {
    const ip = decodeIpv4(item);
    if (ip === undefined) continue;
    const special = SPECIAL_EXTERNAL_RANGES.find((r) => cidrContains(r.cidr, ip));
    if (special !== undefined) {
      item.error(`may not be ${special.what} (${special.text})`);
      continue;
    }
    out.push(ip);
  }
  return out;
}

function decodeClusterIP(field: Field, type: ServiceType): number | 'None' | undefined {
  const text = field.string();
  if (text === undefined || text === '') return undefined;
  if (type === 'ExternalName') {
    field.error('must not be set when type is ExternalName');
    return undefined;
  }
  if (text === 'None') {
    if (type !== 'ClusterIP') field.error(`may not be None when type is ${type}`);
    return 'None';
  }
  return decodeIpv4(field);
}

function decodeServicePort(
  item: Field,
  type: ServiceType,
  nameRequired: boolean,
  names: Set<string>,
  portProtocols: Set<string>,
): ServicePortDecl | undefined {
  const m = item.itemMap();
  if (m === undefined) return undefined;
  const nameField = m.get('name');
  const name = nameRequired ? required(nameField, checkDnsLabel) : checked(nameField, checkDnsLabel);
  if (name !== undefined) claimUnique(names, name, nameField, 'port name');
  const protocol = decodeProtocol(m.get('protocol'));
  const portField = m.get('port');
  const port = portField.require() ? decodePortNumber(portField) : undefined;
  if (port !== undefined) claimUnique(portProtocols, `${port}/${protocol}`, portField, 'port and protocol');
  const targetPort = decodePortRef(m.get('targetPort')) ?? port;

  const nodePortField = m.get('nodePort');
  let nodePort: number | undefined;
  if (nodePortField.present) {
    if (type === 'NodePort' || type === 'LoadBalancer') {
      nodePort = nodePortField.integer(`must be an integer between ${NODE_PORT_MIN} and ${NODE_PORT_MAX} (the node port range)`, NODE_PORT_MIN, NODE_PORT_MAX);
    } else {
      nodePortField.error(`may not be used when type is ${type}`);
    }
  }
  if (port === undefined || targetPort === undefined) return undefined;
  return {
    port: { ...(name !== undefined && { name }), protocol, port, targetPort, ...(nodePort !== undefined && { nodePort }) },
    field: item,
    nodePortField,
  };
}

export function decodeEndpoints(root: FieldMap): EndpointsDecl | undefined {
  reportEndpointsFields(root);
  const meta = decodeMetadata(root, true, checkDnsSubdomain);
  const subsets: EndpointSubset[] = [];
  for (const item of root.get('subsets').list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) continue;
    const addresses = decodeEndpointAddresses(m.get('addresses'));
    const notReadyAddresses = decodeEndpointAddresses(m.get('notReadyAddresses'));
    const portItems = m.get('ports').list() ?? [];
    const names = new Set<string>();
    const ports: EndpointPort[] = [];
    for (const p of portItems) {
      const pm = p.itemMap();
      if (pm === undefined) continue;
      const nameField = pm.get('name');
      const name = portItems.length > 1 ? required(nameField, checkDnsLabel) : checked(nameField, checkDnsLabel);
      if (name !== undefined) claimUnique(names, name, nameField, 'port name');
      const portField = pm.get('port');
      const port = portField.require() ? decodePortNumber(portField) : undefined;
      const protocol = decodeProtocol(pm.get('protocol'));
      if (port !== undefined) ports.push({ ...(name !== undefined && { name }), port, protocol });
    }
    subsets.push({ addresses, notReadyAddresses, ports });
  }
  return meta && { kind: 'Endpoints', meta, subsets };
}

/** Kubernetes refuses endpoint addresses that could only ever reach the node itself or nothing. */
const FORBIDDEN_ENDPOINT_RANGES = [
  ['127.0.0.0/8', 'the loopback range'],
  ['169.254.0.0/16', 'the link-local range'],
  ['224.0.0.0/4', 'the multicast range'],
].map(([text, what]) => ({ text, what, cidr: parseCidr(text)! }));

function decodeEndpointAddresses(field: Field): EndpointAddress[] {
  const out: EndpointAddress[] = [];
  for (const item of field.list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) continue;
    const ipField = m.get('ip');
    const ip = ipField.require() ? decodeIpv4(ipField) : undefined;
    for (const range of FORBIDDEN_ENDPOINT_RANGES) {
      if (ip !== undefined && cidrContains(range.cidr, ip)) ipField.error(`may not be in ${range.what} (${range.text})`);
    }
    const hostname = checked(m.get('hostname'), checkDnsLabel);
    const nodeName = checked(m.get('nodeName'), checkDnsSubdomain);
    const targetRef = decodeObjectReference(m.get('targetRef'));
    if (ip !== undefined) {
      out.push({
        ip,
        ...(hostname !== undefined && { hostname }),
        ...(nodeName !== undefined && { nodeName }),
        ...(targetRef !== undefined && { targetRef }),
      });
    }
  }
  return out;
}

function decodeObjectReference(field: Field): ObjectReference | undefined {
  const m = field.map();
  if (m === undefined) return undefined;
  const kind = m.get('kind').string();
  const namespace = m.get('namespace').string();
  const name = m.get('name').string();
  return { ...(kind !== undefined && { kind }), ...(namespace !== undefined && { namespace }), ...(name !== undefined && { name }) };
}
