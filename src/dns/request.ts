/**
 * A query name inside the cluster zone, parsed into what it asks for: the counterpart of
 * CoreDNS's `parseRequest` (plugin/kubernetes/parse.go). Pure: labels in, a request record
 * out, nothing looked up.
 *
 * The shapes, read from the right of the zone (cluster.local):
 *
 *     <service>.<namespace>.svc                         a service
 *     <endpoint>.<service>.<namespace>.svc              one endpoint (hostname or dashed IP)
 *     _<port>._<proto>.<service>.<namespace>.svc        a named port (SRV)
 *     <a-b-c-d>.<namespace>.pod                         a pod by address ("pods insecure")
 *     <namespace>.svc, svc, pod, the apex               empty non-terminals: they exist
 *
 * A two-label prefix is a port and a protocol with or without the underscores the Kubernetes
 * DNS specification writes: `http.tcp.web...` asks what `_http._tcp.web...` asks, as CoreDNS's
 * parser strips an underscore where it finds one (plugin/kubernetes/parse.go). Kept because a
 * client that drops the underscores gets the same answer from a real cluster; a label that is
 * only an underscore names no port, and is `invalid`. A one-label prefix is an endpoint, even
 * `_tcp`: no endpoint is called that, so `_tcp.web...` is NXDOMAIN, as CoreDNS answers it
 * (not the empty non-terminal RFC 8020 would make of it). Longer prefixes are `invalid`,
 * which lookup answers with NXDOMAIN.
 */

export type RequestKind = 'apex' | 'svc' | 'pod' | 'invalid';

export interface RecordRequest {
  readonly kind: RequestKind;
  /** '' when the name stops above the namespace (`svc.cluster.local`). */
  readonly namespace: string;
  /** The service, or for `pod` names the dashed address; '' when absent. */
  readonly service: string;
  /** An endpoint label (`web-0`, `10-244-1-5`); '' when absent. */
  readonly endpoint: string;
  /** Port name and protocol without their underscores; '' when absent. */
  readonly port: string;
  readonly protocol: string;
}

export const SVC = 'svc';
export const POD = 'pod';

const EMPTY = '';

function request(kind: RequestKind, namespace = EMPTY, service = EMPTY, endpoint = EMPTY, port = EMPTY, protocol = EMPTY): RecordRequest {
  return { kind, namespace, service, endpoint, port, protocol };
}

const APEX = request('apex');
const INVALID = request('invalid');

/**
 * Parses the labels of a name below the zone apex, left to right and already lower-cased
 * (`['_http', '_tcp', 'web', 'default', 'svc']` for `_http._tcp.web.default.svc.cluster.local`).
 */
export function parseRequest(labels: readonly string[]): RecordRequest {
  let last = labels.length - 1;
  if (last < 0) return APEX;
  const podOrSvc = labels[last];
  if (podOrSvc !== SVC && podOrSvc !== POD) return INVALID;
  const kind: RequestKind = podOrSvc;
  if (--last < 0) return request(kind);
  const namespace = labels[last];
  if (--last < 0) return request(kind, namespace);
  const service = labels[last];
  if (--last < 0) return request(kind, namespace, service);
  if (last === 0) return request(kind, namespace, service, labels[0]);
  if (last === 1) {
    const port = stripUnderscore(labels[0]);
    const protocol = stripUnderscore(labels[1]);
    if (port !== EMPTY && protocol !== EMPTY) return request(kind, namespace, service, EMPTY, port, protocol);
  }
  // Longer names, or two labels that name no port: nothing can live there.
  return INVALID;
}

function stripUnderscore(label: string): string {
  return label.charCodeAt(0) === 0x5f ? label.slice(1) : label;
}

/**
 * The labels of `name` below `zone` (both presentation text, trailing dots optional, compared
 * case-insensitively), lower-cased; undefined when the name is not inside the zone. For tests
 * and cold paths; the responder splits the wire name without building the whole text.
 */
export function relativeLabels(name: string, zone: string): string[] | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  const z = zone.toLowerCase().replace(/\.$/, '');
  if (n === z) return [];
  if (!n.endsWith(`.${z}`)) return undefined;
  return n.slice(0, n.length - z.length - 1).split('.');
}
