/**
 * Which edges of the map a flow lights: from its client to its server, whichever way the
 * packet went (a reply lights the edge of the connection it answers). A flow the service
 * table translated lights the client's edge to the Service and the Service's edge to the
 * backend it chose; any other flow lights the client's edge to the server. Pure.
 *
 * Ends are the map's ids (map.ts): a pod, a Service, or the bare address of anything else
 * (the outside world, a node's own address).
 */
import type { Endpoint, Flow, Service } from '../observe/flow.js';
import { podId, serviceId } from './map.js';

export interface FlowEdge {
  /** `FROM>TO`: what the page keys its edges by. */
  readonly key: string;
  readonly from: string;
  readonly to: string;
}

/** Multicast and broadcast (IGMP reports, DHCP): to a group, not to anyone the map shows. */
function toGroup(ip: string): boolean {
  const first = Number(ip.split('.')[0]);
  return (first >= 224 && first <= 239) || ip === '255.255.255.255';
}

function end(endpoint: Endpoint | undefined, ip: string | undefined): string | undefined {
  if (endpoint?.pod_name !== undefined && endpoint.pod_name !== '') return podId(endpoint.namespace ?? 'default', endpoint.pod_name);
  return ip === undefined || toGroup(ip) ? undefined : `ip:${ip}`;
}

function edge(from: string, to: string): FlowEdge {
  return { key: `${from}>${to}`, from, to };
}

export function flowEdges(flow: Flow): FlowEdge[] {
  const reply = flow.is_reply === true;
  // The connection's client and server: a reply's source is the server.
  const client = reply ? end(flow.destination, flow.IP?.destination) : end(flow.source, flow.IP?.source);
  const server = reply ? end(flow.source, flow.IP?.source) : end(flow.destination, flow.IP?.destination);
  if (client === undefined || server === undefined) return [];
  const service: Service | undefined = reply ? flow.source_service : flow.destination_service;
  if (service === undefined) return [edge(client, server)];
  const svc = serviceId(service.namespace, service.name);
  // No pod behind it (the cluster DNS answers at the Service's own address): the Service is the server.
  if (server.startsWith('ip:')) return [edge(client, svc)];
  return [edge(client, svc), edge(svc, server)];
}

/** The policies a dropped flow names, as `namespace/name`. */
export function deniedBy(flow: Flow): string[] {
  return [...(flow.egress_denied_by ?? []), ...(flow.ingress_denied_by ?? [])].map((p) => (p.namespace !== undefined && p.namespace !== '' ? `${p.namespace}/${p.name}` : p.name));
}
