/**
 * Where a cluster lives in etcd: every key under `/podwire/<cluster>/`, values JSON a person
 * reads with `etcdctl get --prefix /podwire/<cluster>/` (addresses dotted, MACs in colons;
 * see codec.ts). STORE.md at the repository's root is the same map in prose.
 *
 *   cluster                           the Cluster document as applied
 *   objects/<kind>/<ns>/<name>        every other applied object, as its manifest (with the
 *                                     cluster IP and node ports it was given written in)
 *   objects/namespaces/<name>         namespaces are cluster-scoped
 *   nodes/<node>                      a node's registration: machine, underlay, labels, and
 *                                     the subnet it holds (kept, so a rejoin takes it back)
 *   subnets/<10.244.1.0-24>           flannel's subnet lease: the holder's VTEP, on its etcd lease
 *   heartbeats/<node>                 the agent's renewals, on the same etcd lease
 *   podstatus/<node>                  that node's pods' readiness, on the same etcd lease
 *   pods/<ns>/<name>                  a pod as the controller bound it: node, IP, MAC, uid
 *   nodestatus/<node>                 the controller's Ready or NotReady judgement
 *   endpoints/<ns>/<service>          the controller's endpoints of each Service port
 *   controller                        the controller's election (one agent holds it)
 */

/** The object kinds `apply` stores, by their lower-case plural (kubectl's resource names). */
export const OBJECT_KINDS = {
  Namespace: 'namespaces',
  Pod: 'pods',
  Deployment: 'deployments',
  Service: 'services',
  Endpoints: 'endpoints',
  NetworkPolicy: 'networkpolicies',
  ConfigMap: 'configmaps',
  Secret: 'secrets',
  Ingress: 'ingresses',
  IngressClass: 'ingressclasses',
} as const;

export type ObjectKind = keyof typeof OBJECT_KINDS;

/** Kinds without a namespace: their key has none either. */
export function isClusterScoped(kind: ObjectKind): boolean {
  return kind === 'Namespace' || kind === 'IngressClass';
}

export function isObjectKind(kind: string): kind is ObjectKind {
  return Object.hasOwn(OBJECT_KINDS, kind);
}

/** Every key of one cluster; `parse` tells which record a key is. */
export class ClusterKeys {
  readonly prefix: string;

  constructor(readonly cluster: string) {
    this.prefix = `/podwire/${cluster}/`;
  }

  get clusterDocument(): string {
    return `${this.prefix}cluster`;
  }
  object(kind: ObjectKind, namespace: string, name: string): string {
    return isClusterScoped(kind) ? `${this.prefix}objects/${OBJECT_KINDS[kind]}/${name}` : `${this.prefix}objects/${OBJECT_KINDS[kind]}/${namespace}/${name}`;
  }
  node(node: string): string {
    return `${this.prefix}nodes/${node}`;
  }
  subnet(subnetKey: string): string {
    return `${this.prefix}subnets/${subnetKey}`;
  }
  heartbeat(node: string): string {
    return `${this.prefix}heartbeats/${node}`;
  }
  podStatus(node: string): string {
    return `${this.prefix}podstatus/${node}`;
  }
  pod(namespace: string, name: string): string {
    return `${this.prefix}pods/${namespace}/${name}`;
  }
  nodeStatus(node: string): string {
    return `${this.prefix}nodestatus/${node}`;
  }
  endpoints(namespace: string, service: string): string {
    return `${this.prefix}endpoints/${namespace}/${service}`;
  }
  get controller(): string {
    return `${this.prefix}controller`;
  }

  /** What a key under the prefix names, or undefined for a key podwire does not write. */
  parse(key: string): StoreRecord | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const parts = key.slice(this.prefix.length).split('/');
    const [head, a, b, c] = parts;
    switch (head) {
      case 'cluster':
        return parts.length === 1 ? { type: 'cluster' } : undefined;
      case 'objects': {
        const kind = (Object.keys(OBJECT_KINDS) as ObjectKind[]).find((k) => OBJECT_KINDS[k] === a);
        if (kind === undefined) return undefined;
        if (isClusterScoped(kind)) return parts.length === 3 ? { type: 'object', kind, namespace: '', name: b } : undefined;
        return parts.length === 4 ? { type: 'object', kind, namespace: b, name: c } : undefined;
      }
      case 'nodes':
      case 'heartbeats':
      case 'podstatus':
      case 'nodestatus':
        return parts.length === 2 ? { type: head, node: a } : undefined;
      case 'subnets':
        return parts.length === 2 ? { type: 'subnets', subnet: a } : undefined;
      case 'pods':
      case 'endpoints':
        return parts.length === 3 ? { type: head, namespace: a, name: b } : undefined;
      case 'controller':
        return parts.length === 1 ? { type: 'controller' } : undefined;
      default:
        return undefined;
    }
  }
}

export type StoreRecord =
  | { readonly type: 'cluster' }
  | { readonly type: 'object'; readonly kind: ObjectKind; readonly namespace: string; readonly name: string }
  | { readonly type: 'nodes' | 'heartbeats' | 'podstatus' | 'nodestatus'; readonly node: string }
  | { readonly type: 'subnets'; readonly subnet: string }
  | { readonly type: 'pods' | 'endpoints'; readonly namespace: string; readonly name: string }
  | { readonly type: 'controller' };
