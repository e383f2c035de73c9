/**
 * What names an etcd to talk to and the errors of talking to it, apart from the client
 * (etcd.ts, which loads etcd3 and gRPC): the podwire command parses `--store` and tells its
 * errors apart without loading either, so a command that never reaches etcd starts as fast
 * as before.
 */

export interface EtcdConnection {
  /** "host:port" each; a 3-member etcd gives three. */
  readonly endpoints: readonly string[];
  /** Client TLS as etcdctl names the files: --cacert, --cert, --key (paths). With it the endpoints are https. */
  readonly tls?: { readonly cacert: string; readonly cert?: string; readonly key?: string };
}

/** etcd could not be reached (refused, dropped, or no answer before the call's deadline). */
export class StoreUnreachable extends Error {
  constructor(endpoints: readonly string[], why: string) {
    super(`store unreachable: ${endpoints.join(',')}: ${why}`);
    this.name = 'StoreUnreachable';
  }
}

/** The store refused a change as given (an apply with errors, a pod or deployment that is not there). */
export class StoreRefused extends Error {}

const HOSTNAME_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** "etcd://h:p[,h:p...]" -> ["h:p", ...]; throws an Error saying what is wrong with anything else. */
export function parseEtcdUrl(url: string): string[] {
  const scheme = 'etcd://';
  if (!url.startsWith(scheme)) throw new Error(`etcd URL "${url}": must start with ${scheme} (etcd://host:port[,host:port...])`);
  const rest = url.slice(scheme.length);
  if (rest === '') throw new Error(`etcd URL "${url}": no endpoints (etcd://host:port[,host:port...])`);
  const endpoints = rest.split(',').map((endpoint, i) => parseEndpoint(url, endpoint, i + 1));
  const seen = new Set<string>();
  for (const endpoint of endpoints) {
    if (seen.has(endpoint)) throw new Error(`etcd URL "${url}": endpoint ${endpoint} is given twice`);
    seen.add(endpoint);
  }
  return endpoints;
}

function parseEndpoint(url: string, endpoint: string, n: number): string {
  const bad = (why: string) => new Error(`etcd URL "${url}": endpoint ${n} "${endpoint}" ${why}`);
  if (endpoint === '') throw bad('is empty');
  const colon = endpoint.lastIndexOf(':');
  if (colon < 0) throw bad('has no port (want host:port)');
  const host = endpoint.slice(0, colon);
  const port = endpoint.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw bad(`has a bad port "${port}" (want 1-65535)`);
  if (host === '') throw bad('has no host');
  if (host.startsWith('[')) {
    if (!/^\[[0-9a-f:.]+\]$/i.test(host) || !host.includes(':')) throw bad(`has a bad IPv6 host "${host}"`);
  } else if (/^[0-9.]+$/.test(host)) {
    const octets = host.split('.');
    if (octets.length !== 4 || octets.some((o) => !/^(0|[1-9][0-9]{0,2})$/.test(o) || Number(o) > 255)) throw bad(`has a bad IPv4 host "${host}"`);
  } else if (host.length > 253 || !host.split('.').every((label) => HOSTNAME_LABEL.test(label))) {
    throw bad(`has a bad host name "${host}"`);
  }
  return `${host}:${port}`;
}
