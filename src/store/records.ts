/**
 * The records node agents and the controller keep in the store, besides the applied
 * objects: what each is, who writes it, and the check a reader applies before using one.
 */
import type { Cidr } from '../packet/addr.js';
import type { Endpoint, ServicePortEndpoints } from '../cluster/endpoints.js';
import type { Labels, Pod, Protocol, Service } from '../cluster/model.js';
import { expectObject, missingFields } from './codec.js';

/** nodes/<node>, written by the node's agent when it joins; kept when it dies, so a rejoin finds its subnet. */
export interface NodeRegistration {
  readonly name: string;
  readonly labels: Labels;
  /** The machine's underlay address and the VTEP's UDP port there. */
  readonly underlay: number;
  readonly underlayPort: number;
  /** The host name of the machine the agent runs on. */
  readonly machine: string;
  readonly subnet: Cidr;
  readonly vtepMac: number;
  /** ms since the epoch, on the joining machine's clock. */
  readonly registeredAt: number;
}

/** subnets/<key>: flannel's lease record (PublicIP, BackendType, BackendData), held by the agent's etcd lease. */
export interface SubnetLease {
  readonly node: string;
  readonly publicIP: number;
  readonly underlayPort: number;
  readonly backendType: 'vxlan';
  readonly vni: number;
  readonly vtepMac: number;
}

/** heartbeats/<node>: rewritten every renewal, on the agent's etcd lease. */
export interface Heartbeat {
  readonly node: string;
  readonly renewTime: number;
  readonly leaseDurationSeconds: number;
  /**
   * The TCP port of the node's /metrics on its machine's loopback, as a Node's
   * status.daemonEndpoints names the kubelet's: absent until it is served (and in the
   * records of older agents).
   */
  readonly metricsPort?: number;
}

/** podstatus/<node>: readiness of that node's pods by "namespace/name", on the agent's etcd lease. */
export interface PodStatusRecord {
  readonly node: string;
  readonly pods: Readonly<Record<string, boolean>>;
  /** By pod: its containers' restarts and why one is not running (absent in records of older agents). */
  readonly containers?: Readonly<Record<string, PodContainersStatus>>;
}

/** What kubectl's RESTARTS and STATUS columns show of a pod's containers. */
export interface PodContainersStatus {
  readonly restarts: number;
  readonly reason?: string;
}

/** nodestatus/<node>: the controller's judgement. */
export interface NodeCondition {
  readonly node: string;
  readonly ready: boolean;
  /** ms since the epoch on the controller's clock: when it last changed. */
  readonly since: number;
  readonly reason: string;
}

/** endpoints/<ns>/<service>: the endpoints controller's result, one entry per service port. */
export interface EndpointsRecord {
  readonly namespace: string;
  readonly name: string;
  readonly ports: readonly { readonly name?: string; readonly port: number; readonly protocol: Protocol; readonly endpoints: readonly Endpoint[] }[];
}

export function endpointsRecords(all: readonly ServicePortEndpoints[]): EndpointsRecord[] {
  const byService = new Map<string, { namespace: string; name: string; ports: EndpointsRecord['ports'][number][] }>();
  for (const spe of all) {
    const key = `${spe.service.namespace}/${spe.service.name}`;
    let record = byService.get(key);
    if (record === undefined) byService.set(key, (record = { namespace: spe.service.namespace, name: spe.service.name, ports: [] }));
    record.ports.push({ ...(spe.servicePort.name !== undefined ? { name: spe.servicePort.name } : {}), port: spe.servicePort.port, protocol: spe.protocol, endpoints: spe.endpoints });
  }
  return [...byService.values()];
}

/** The stored endpoints joined with the services they belong to; a port the service no longer has is left out. */
export function joinEndpoints(services: readonly Service[], records: ReadonlyMap<string, EndpointsRecord>): ServicePortEndpoints[] {
  const out: ServicePortEndpoints[] = [];
  for (const service of services) {
    const record = records.get(`${service.namespace}/${service.name}`);
    for (const servicePort of service.ports) {
      const stored = record?.ports.find((p) => p.port === servicePort.port && p.protocol === servicePort.protocol && p.name === servicePort.name);
      out.push({ service, servicePort, protocol: servicePort.protocol, endpoints: stored?.endpoints ?? [] });
    }
  }
  return out;
}

type Check<T> = (value: unknown, name: string) => T | string;

function checker<T>(fields: Record<string, 'string' | 'number' | 'boolean' | 'object'>, extra?: (r: Record<string, unknown>, name: string) => string | undefined): Check<T> {
  return (value, name) => {
    const record = expectObject(value);
    if (typeof record === 'string') return record;
    const problem = missingFields(record, fields) ?? extra?.(record, name);
    return problem ?? (record as T);
  };
}

const namedFor = (field: string) => (r: Record<string, unknown>, name: string) => (r[field] !== name ? `names ${String(r[field])}, not ${name}` : undefined);

export const checkRegistration: Check<NodeRegistration> = checker(
  { name: 'string', labels: 'object', underlay: 'number', underlayPort: 'number', machine: 'string', subnet: 'object', vtepMac: 'number', registeredAt: 'number' },
  namedFor('name'),
);
export const checkSubnetLease: Check<SubnetLease> = checker({ node: 'string', publicIP: 'number', underlayPort: 'number', vni: 'number', vtepMac: 'number' });
export const checkHeartbeat: Check<Heartbeat> = checker({ node: 'string', renewTime: 'number', leaseDurationSeconds: 'number' }, namedFor('node'));
export const checkPodStatus: Check<PodStatusRecord> = checker({ node: 'string', pods: 'object' }, namedFor('node'));
export const checkNodeCondition: Check<NodeCondition> = checker({ node: 'string', ready: 'boolean', since: 'number', reason: 'string' }, namedFor('node'));
export const checkEndpoints: Check<EndpointsRecord> = checker({ namespace: 'string', name: 'string', ports: 'object' });
export const checkPod: Check<Pod> = checker(
  {
    namespace: 'string', name: 'string', uid: 'string', node: 'string', ip: 'number', mac: 'number', labels: 'object', containers: 'object', nodeSelector: 'object', dnsPolicy: 'string',
    // A record bound before the kubelet's fields were modelled is left out, and the controller binds the pod again.
    hostAliases: 'object', enableServiceLinks: 'boolean', restartPolicy: 'string', serviceAccountName: 'string', volumes: 'object', securityContext: 'object',
  },
  (r, name) => (`${String(r.namespace)}/${String(r.name)}` !== name ? `names ${String(r.namespace)}/${String(r.name)}, not ${name}` : undefined),
);
