/**
 * One process's copy of a cluster held in etcd, as a Kubernetes informer keeps one: fed
 * by the watch (a snapshot, then events in revision order), read synchronously. Node
 * agents forward from it and the controller decides from it, so a store that goes away
 * leaves both working with the state they last saw.
 *
 * Applied objects are stored as manifests; each is resolved into the model once, when it
 * changes (with the Cluster document and the namespaces it may need), so a change to one
 * Service costs one Service's resolution, not the cluster's.
 */
import { cidrAddress } from '../packet/addr.js';
import { EXTERNAL_NODE_OFFSET } from '../cluster/decode-cluster.js';
import type { SourceFile } from '../cluster/documents.js';
import { gatewayAddress, podMac } from '../cluster/ipam.js';
import { loadCluster } from '../cluster/load.js';
import type { Cluster, ClusterSettings, ConfigMap, Deployment, Endpoints, Ingress, IngressClass, Namespace, NetworkPolicy, Node, Pod, Secret, Service } from '../cluster/model.js';
import { formatDiagnostic } from '../cluster/diagnostics.js';
import { seededRandom } from '../cluster/random.js';
import { decodeRecord } from './codec.js';
import type { KeyValue, WatchEvent } from './etcd.js';
import { ClusterKeys, isClusterScoped, type ObjectKind } from './keys.js';
import {
  checkEndpoints,
  checkHeartbeat,
  checkNodeCondition,
  checkPod,
  checkPodStatus,
  checkRegistration,
  checkSubnetLease,
  type EndpointsRecord,
  type Heartbeat,
  type NodeCondition,
  type NodeRegistration,
  type PodContainersStatus,
  type PodStatusRecord,
  type SubnetLease,
} from './records.js';

type Resolved = Namespace | Pod | Deployment | Service | Endpoints | NetworkPolicy | ConfigMap | Secret | Ingress | IngressClass;

interface StoredObject {
  readonly kind: ObjectKind;
  readonly namespace: string;
  readonly name: string;
  readonly text: string;
  resolved: Resolved | undefined;
}

/** What changed in one batch, so readers redo only what depends on it. */
export interface ViewChange {
  readonly cluster: boolean;
  readonly objects: boolean;
  readonly nodes: boolean;
  readonly subnets: boolean;
  readonly heartbeats: boolean;
  readonly podStatus: boolean;
  readonly nodeConditions: boolean;
  readonly pods: boolean;
  readonly endpoints: boolean;
  /** The cluster document was deleted: `podwire down`. */
  readonly removed: boolean;
}

export class ClusterView {
  revision = 0;
  private clusterText: string | undefined;
  private base: Cluster | undefined;
  private readonly objects = new Map<string, StoredObject>();
  readonly registrations = new Map<string, NodeRegistration>();
  /** By subnet key ("10.244.1.0-24"). */
  readonly subnets = new Map<string, SubnetLease>();
  readonly heartbeats = new Map<string, Heartbeat & { readonly modRevision: number }>();
  readonly podStatus = new Map<string, PodStatusRecord>();
  readonly nodeConditions = new Map<string, NodeCondition>();
  readonly pods = new Map<string, Pod>();
  /** When the controller bound each pod (ms since the epoch, its clock). */
  readonly podCreatedAt = new Map<string, number>();
  readonly endpointRecords = new Map<string, EndpointsRecord>();
  /** Each endpoints record as stored, so its writer can tell an unchanged one by its text. */
  readonly endpointTexts = new Map<string, string>();
  private assembled: Cluster | undefined;
  /** Records that failed their check, by key: said once each, then left out. */
  readonly problems = new Map<string, string>();

  constructor(
    readonly keys: ClusterKeys,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Replaces everything with a full listing (start, or after a compaction). */
  applySnapshot(kvs: readonly KeyValue[], revision: number): ViewChange {
    const had = this.clusterText !== undefined;
    this.clusterText = undefined;
    this.base = undefined;
    this.objects.clear();
    this.registrations.clear();
    this.subnets.clear();
    this.heartbeats.clear();
    this.podStatus.clear();
    this.nodeConditions.clear();
    this.pods.clear();
    this.podCreatedAt.clear();
    this.endpointRecords.clear();
    this.endpointTexts.clear();
    this.problems.clear();
    const events: WatchEvent[] = kvs.map((kv) => ({ type: 'put', kv }));
    const change = this.applyEvents(events, revision);
    return { ...ALL_CHANGED, removed: had && this.clusterText === undefined, cluster: change.cluster || had };
  }

  applyEvents(events: readonly WatchEvent[], revision: number): ViewChange {
    const change = { ...NOTHING_CHANGED };
    const touchedObjects: StoredObject[] = [];
    for (const event of events) {
      const key = event.type === 'put' ? event.kv.key : event.key;
      const record = this.keys.parse(key);
      if (record === undefined) continue;
      const value = event.type === 'put' ? event.kv.value : undefined;
      // A record that is gone has no problem left; a new value is judged by its check.
      if (value === undefined) this.problems.delete(key);
      switch (record.type) {
        case 'cluster':
          this.clusterText = value;
          this.base = undefined;
          change.cluster = true;
          if (value === undefined) change.removed = true;
          break;
        case 'object': {
          if (value === undefined) this.objects.delete(key);
          else {
            const stored: StoredObject = { kind: record.kind, namespace: record.namespace, name: record.name, text: value, resolved: undefined };
            this.objects.set(key, stored);
            touchedObjects.push(stored);
          }
          change.objects = true;
          break;
        }
        case 'nodes':
          this.putChecked(this.registrations, record.node, key, value, checkRegistration);
          change.nodes = true;
          break;
        case 'subnets':
          this.putChecked(this.subnets, record.subnet, key, value, checkSubnetLease);
          change.subnets = true;
          break;
        case 'heartbeats': {
          const checked = value === undefined ? undefined : this.checked(key, value, checkHeartbeat, record.node);
          if (checked === undefined) this.heartbeats.delete(record.node);
          else this.heartbeats.set(record.node, { ...checked, modRevision: event.type === 'put' ? event.kv.modRevision : 0 });
          change.heartbeats = true;
          break;
        }
        case 'podstatus':
          this.putChecked(this.podStatus, record.node, key, value, checkPodStatus);
          change.podStatus = true;
          break;
        case 'nodestatus':
          this.putChecked(this.nodeConditions, record.node, key, value, checkNodeCondition);
          change.nodeConditions = true;
          break;
        case 'pods': {
          const name = `${record.namespace}/${record.name}`;
          const checked = value === undefined ? undefined : this.checked(key, value, checkPod, name);
          if (checked === undefined) {
            this.pods.delete(name);
            this.podCreatedAt.delete(name);
          } else {
            // The binding's creation time is the store's, not the pod's spec.
            const { createdAt, ...pod } = checked as Pod & { createdAt?: unknown };
            this.pods.set(name, pod);
            if (typeof createdAt === 'number') this.podCreatedAt.set(name, createdAt);
          }
          change.pods = true;
          break;
        }
        case 'endpoints':
          this.putChecked(this.endpointRecords, `${record.namespace}/${record.name}`, key, value, checkEndpoints);
          if (value === undefined || !this.endpointRecords.has(`${record.namespace}/${record.name}`)) this.endpointTexts.delete(`${record.namespace}/${record.name}`);
          else this.endpointTexts.set(`${record.namespace}/${record.name}`, value);
          change.endpoints = true;
          break;
        case 'controller':
          break;
      }
    }
    this.revision = Math.max(this.revision, revision);
    const namespacesChanged = touchedObjects.some((o) => o.kind === 'Namespace') || events.some((e) => e.type === 'delete' && e.key.includes('/objects/namespaces/'));
    if (change.cluster || namespacesChanged) {
      // Every object may read the cluster's settings or a namespace: resolve them all again.
      for (const stored of this.objects.values()) stored.resolved = undefined;
    }
    if (change.cluster || change.objects || change.nodes || change.pods) this.assembled = undefined;
    return change;
  }

  private checked<T>(key: string, text: string, check: (value: unknown, name: string) => T | string, name: string): T | undefined {
    const decoded = decodeRecord(text);
    const result = decoded.ok ? check(decoded.value, name) : decoded.reason;
    if (typeof result === 'string') {
      if (this.problems.get(key) !== result) this.log(`store record ${key} left out: ${result}`);
      this.problems.set(key, result);
      return undefined;
    }
    this.problems.delete(key);
    return result;
  }

  private putChecked<T>(map: Map<string, T>, name: string, key: string, text: string | undefined, check: (value: unknown, name: string) => T | string): void {
    const checked = text === undefined ? undefined : this.checked(key, text, check, name);
    if (checked === undefined) map.delete(name);
    else map.set(name, checked);
  }

  /** The cluster exists in the store (its document is there). */
  get exists(): boolean {
    return this.clusterText !== undefined;
  }

  get clusterDocument(): string | undefined {
    return this.clusterText;
  }

  /** The Cluster document resolved on its own: settings and the built-in namespaces. */
  private baseCluster(): Cluster | undefined {
    if (this.clusterText === undefined) return undefined;
    if (this.base === undefined) {
      const result = loadCluster([{ path: this.keys.clusterDocument, text: this.clusterText }], { random: seededRandom(1), placement: 'defer', name: this.keys.cluster });
      if (!result.ok) {
        this.log(`the cluster document in the store does not load: ${result.errors.map(formatDiagnostic).join('; ')}`);
        return undefined;
      }
      this.base = result.cluster;
    }
    return this.base;
  }

  settings(): ClusterSettings | undefined {
    return this.baseCluster()?.settings;
  }

  /** Every stored manifest as a source file (for apply's validation of the whole). */
  manifests(): { key: string; kind: ObjectKind; namespace: string; name: string; text: string }[] {
    return [...this.objects].map(([key, o]) => ({ key, kind: o.kind, namespace: o.namespace, name: o.name, text: o.text }));
  }

  private resolve(stored: StoredObject): Resolved | undefined {
    if (stored.resolved !== undefined) return stored.resolved;
    if (this.clusterText === undefined) return undefined;
    const sources: SourceFile[] = [{ path: this.keys.clusterDocument, text: this.clusterText }];
    for (const [key, other] of this.objects) {
      if (other.kind === 'Namespace' && other !== stored) sources.push({ path: key, text: other.text });
    }
    const key = this.keys.object(stored.kind, stored.namespace, stored.name);
    sources.push({ path: key, text: stored.text });
    const result = loadCluster(sources, { random: seededRandom(1), placement: 'defer', name: this.keys.cluster });
    if (!result.ok) {
      const reason = result.errors.map(formatDiagnostic).join('; ');
      if (this.problems.get(key) !== reason) this.log(`store object ${key} left out: ${reason}`);
      this.problems.set(key, reason);
      return undefined;
    }
    this.problems.delete(key);
    const c = result.cluster;
    const same = (o: { namespace?: string; name: string }) => o.name === stored.name && (isClusterScoped(stored.kind) || o.namespace === stored.namespace);
    const found: Resolved | undefined =
      stored.kind === 'Namespace' ? c.namespaces.find(same)
      : stored.kind === 'Pod' ? c.pods.find(same)
      : stored.kind === 'Deployment' ? c.deployments.find(same)
      : stored.kind === 'Service' ? c.services.find(same)
      : stored.kind === 'Endpoints' ? c.endpoints.find(same)
      : stored.kind === 'ConfigMap' ? c.configMaps.find(same)
      : stored.kind === 'Secret' ? c.secrets.find(same)
      : stored.kind === 'Ingress' ? c.ingresses.find(same)
      : stored.kind === 'IngressClass' ? c.ingressClasses.find(same)
      : c.networkPolicies.find(same);
    stored.resolved = found;
    return found;
  }

  private resolvedOf<K extends ObjectKind>(kind: K): Resolved[] {
    const out: Resolved[] = [];
    const sorted = [...this.objects.entries()].filter(([, o]) => o.kind === kind).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [, o] of sorted) {
      const r = this.resolve(o);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  /** The applied workloads as declared: deployments and standalone pods (unbound). */
  declaredWorkloads(): { deployments: Deployment[]; pods: Pod[] } {
    return { deployments: this.resolvedOf('Deployment') as Deployment[], pods: this.resolvedOf('Pod') as Pod[] };
  }

  /** The nodes the controller last judged Ready. */
  readyNodes(): Set<string> {
    return new Set([...this.nodeConditions.values()].filter((c) => c.ready).map((c) => c.node));
  }

  /**
   * Each bound pod's readiness as the node it is bound to reported it ("namespace/name" ->
   * ready): false when that node is not in `readyNodes`, absent while it has not reported
   * the pod. A record on another node (the pod moved) does not count.
   */
  podReadiness(readyNodes: ReadonlySet<string>): Map<string, boolean> {
    const readiness = new Map<string, boolean>();
    for (const [key, pod] of this.pods) {
      const reported = this.podStatus.get(pod.node)?.pods[key];
      if (reported !== undefined) readiness.set(key, reported === true && readyNodes.has(pod.node));
    }
    return readiness;
  }

  /** Each bound pod's containers (restarts, why one is not running) as its node reported them. */
  podContainers(): Map<string, PodContainersStatus> {
    const out = new Map<string, PodContainersStatus>();
    for (const [key, pod] of this.pods) {
      const reported = this.podStatus.get(pod.node)?.containers?.[key];
      if (reported !== undefined) out.set(key, reported);
    }
    return out;
  }

  /** The registered nodes as the model's nodes, in subnet order. */
  nodes(): Node[] {
    const settings = this.settings();
    if (settings === undefined) return [];
    return [...this.registrations.values()]
      .map((reg) => nodeFromRegistration(reg, settings))
      .sort((a, b) => a.index - b.index || (a.name < b.name ? -1 : 1));
  }

  /** The whole cluster as an agent runs it: settings, registered nodes, bound pods, every object. */
  cluster(): Cluster | undefined {
    if (this.assembled !== undefined) return this.assembled;
    const base = this.baseCluster();
    if (base === undefined) return undefined;
    const pods = [...this.pods.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
    const deployments = (this.resolvedOf('Deployment') as Deployment[]).map((d) => ({
      ...d,
      pods: pods.filter((p) => p.namespace === d.namespace && p.owner?.kind === 'Deployment' && p.owner.name === d.name).map((p) => p.name),
    }));
    const declaredNamespaces = this.resolvedOf('Namespace') as Namespace[];
    const namespaces = [...base.namespaces.filter((n) => !declaredNamespaces.some((d) => d.name === n.name)), ...declaredNamespaces];
    this.assembled = {
      settings: base.settings,
      nodes: this.nodes(),
      namespaces,
      pods,
      deployments,
      services: this.resolvedOf('Service') as Service[],
      endpoints: this.resolvedOf('Endpoints') as Endpoints[],
      networkPolicies: this.resolvedOf('NetworkPolicy') as NetworkPolicy[],
      configMaps: this.resolvedOf('ConfigMap') as ConfigMap[],
      secrets: this.resolvedOf('Secret') as Secret[],
      ingresses: this.resolvedOf('Ingress') as Ingress[],
      ingressClasses: this.resolvedOf('IngressClass') as IngressClass[],
    };
    return this.assembled;
  }
}

/** A registered node as the model's Node: its /24's position in the pod CIDR is its index. */
export function nodeFromRegistration(reg: NodeRegistration, settings: ClusterSettings): Node {
  const index = Math.max(0, Math.floor((reg.subnet.base - settings.podCIDR.base) / 256));
  const gateway = gatewayAddress(reg.subnet);
  const externalIP = cidrAddress(settings.externalCIDR, (EXTERNAL_NODE_OFFSET + index) % 256);
  return {
    name: reg.name,
    index,
    labels: { 'kubernetes.io/hostname': reg.name, 'kubernetes.io/os': 'linux', ...reg.labels },
    podCIDR: reg.subnet,
    gateway,
    gatewayMac: podMac(gateway),
    underlay: reg.underlay,
    vtepMac: reg.vtepMac,
    externalIP,
    externalMac: podMac(externalIP),
  };
}

const NOTHING_CHANGED: { -readonly [K in keyof ViewChange]: boolean } = {
  cluster: false,
  objects: false,
  nodes: false,
  subnets: false,
  heartbeats: false,
  podStatus: false,
  nodeConditions: false,
  pods: false,
  endpoints: false,
  removed: false,
};
const ALL_CHANGED: ViewChange = { ...NOTHING_CHANGED, objects: true, nodes: true, subnets: true, heartbeats: true, podStatus: true, nodeConditions: true, pods: true, endpoints: true };
