/**
 * `podwire apply` against the store, as the API server takes `kubectl apply`: the new
 * documents join (or replace, by kind, namespace and name) the objects already stored,
 * the whole is loaded and checked as `podwire up` checks its files, and only an input that
 * loads without error is written, in one transaction. A Service keeps the cluster IP and
 * node ports it was given (a re-applied manifest that leaves them out gets them back), and
 * what is allocated is written into the stored manifest, so every reader resolves it the
 * same.
 *
 * Pure: the stored manifests come in, the keys to write go out.
 */
import { formatIpv4 } from '../packet/addr.js';
import { formatDiagnostic } from '../cluster/diagnostics.js';
import type { SourceFile } from '../cluster/documents.js';
import { loadCluster } from '../cluster/load.js';
import { canonicalJson } from '../cluster/naming.js';
import type { Cluster } from '../cluster/model.js';
import { seededRandom } from '../cluster/random.js';
import { documentValues } from '../cluster/yaml-reader.js';
import { isClusterScoped, isObjectKind, type ClusterKeys, type ObjectKind } from './keys.js';

export interface StoredManifest {
  readonly key: string;
  readonly kind: ObjectKind;
  readonly namespace: string;
  readonly name: string;
  readonly text: string;
}

export interface ApplyPlan {
  /** Set when the cluster is new: its Cluster document (the given one, or the defaults). */
  readonly clusterDocument?: string;
  readonly puts: readonly { readonly key: string; readonly value: string }[];
  /** kubectl's lines: "service/web created", "deployment.apps/web configured", "pod/x unchanged". */
  readonly lines: readonly string[];
  readonly warnings: readonly string[];
}

export type ApplyResult = { readonly ok: true; readonly plan: ApplyPlan } | { readonly ok: false; readonly errors: readonly string[]; readonly warnings: readonly string[] };

type Manifest = Record<string, unknown> & { metadata?: Record<string, unknown>; spec?: Record<string, unknown> };

interface Incoming {
  readonly kind: ObjectKind;
  readonly namespace: string;
  readonly name: string;
  readonly manifest: Manifest;
  readonly key: string;
}

/** kubectl's name for a kind in its output lines. */
const RESOURCE_NAMES: Record<ObjectKind, string> = {
  Namespace: 'namespace',
  Pod: 'pod',
  Deployment: 'deployment.apps',
  Service: 'service',
  Endpoints: 'endpoints',
  NetworkPolicy: 'networkpolicy.networking.k8s.io',
  ConfigMap: 'configmap',
  Secret: 'secret',
  Ingress: 'ingress.networking.k8s.io',
  IngressClass: 'ingressclass.networking.k8s.io',
};

export function planApply(input: { keys: ClusterKeys; existingCluster: string | undefined; existing: readonly StoredManifest[]; files: readonly SourceFile[]; now?: number }): ApplyResult {
  const { keys, existingCluster, existing, files } = input;
  // Load the new files on their own first: their errors are reported against their own lines.
  const alone = loadCluster(files, { random: seededRandom(1), placement: 'defer', name: keys.cluster });
  const warnings = alone.warnings.map((w) => `warning: ${formatDiagnostic(w)}`);
  if (!alone.ok) return { ok: false, errors: alone.errors.map(formatDiagnostic), warnings };

  let clusterDocument: string | undefined;
  const incoming: Incoming[] = [];
  for (const file of files) {
    for (const value of documentValues(file.text)) {
      if (typeof value !== 'object' || value === null) continue;
      const manifest = value as Manifest;
      const kind = String(manifest.kind);
      if (kind === 'Cluster') {
        clusterDocument = JSON.stringify({ ...manifest, metadata: { ...(manifest.metadata ?? {}), name: keys.cluster } });
        continue;
      }
      if (!isObjectKind(kind)) continue;
      const name = String(manifest.metadata?.name);
      const namespace = isClusterScoped(kind) ? '' : String(manifest.metadata?.namespace ?? 'default');
      incoming.push({ kind, namespace, name, manifest, key: keys.object(kind, namespace, name) });
    }
  }
  if (existingCluster !== undefined && clusterDocument !== undefined && !sameJson(existingCluster, clusterDocument)) {
    return { ok: false, errors: [`cluster ${keys.cluster} exists with another Cluster document: its network settings cannot change while it runs (podwire down --name ${keys.cluster} first)`], warnings };
  }
  const cluster = existingCluster ?? clusterDocument ?? JSON.stringify({ apiVersion: 'podwire.dev/v1alpha1', kind: 'Cluster', metadata: { name: keys.cluster } });

  const stored = new Map(existing.map((m) => [m.key, m]));
  for (const item of incoming) {
    const before = stored.get(item.key);
    if (item.kind === 'Service' && before !== undefined) keepAllocations(item.manifest, JSON.parse(before.text) as Manifest);
  }
  const incomingKeys = new Set(incoming.map((i) => i.key));
  const sources: SourceFile[] = [
    { path: keys.clusterDocument, text: cluster },
    ...existing.filter((m) => !incomingKeys.has(m.key)).map((m) => ({ path: m.key, text: m.text })),
    ...incoming.map((i) => ({ path: i.key, text: JSON.stringify(i.manifest) })),
  ];
  const whole = loadCluster(sources, { random: seededRandom(1), placement: 'defer', name: keys.cluster });
  if (!whole.ok) {
    return { ok: false, errors: whole.errors.map((d) => `${formatDiagnostic(d)} (with what cluster ${keys.cluster} already holds)`), warnings };
  }
  for (const item of incoming) if (item.kind === 'Service') writeAllocations(item.manifest, whole.cluster, item.namespace, item.name);

  const puts: { key: string; value: string }[] = [];
  const lines: string[] = [];
  for (const item of incoming) {
    const before = stored.get(item.key);
    // As the API server, the store stamps an object when it is created and keeps the stamp.
    const stamp = before !== undefined ? (JSON.parse(before.text) as Manifest).metadata?.creationTimestamp : new Date(input.now ?? Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    item.manifest.metadata = { ...(item.manifest.metadata ?? {}), ...(stamp !== undefined ? { creationTimestamp: stamp } : {}) };
    const value = JSON.stringify(item.manifest);
    const what = `${RESOURCE_NAMES[item.kind]}/${item.name}`;
    if (before !== undefined && sameJson(before.text, value)) {
      lines.push(`${what} unchanged`);
      continue;
    }
    puts.push({ key: item.key, value });
    lines.push(`${what} ${before === undefined ? 'created' : 'configured'}`);
  }
  return { ok: true, plan: { ...(existingCluster === undefined ? { clusterDocument: cluster } : {}), puts, lines, warnings } };
}

/** A re-applied Service without its cluster IP or node ports keeps those it was given. */
function keepAllocations(manifest: Manifest, before: Manifest): void {
  const spec = (manifest.spec ??= {});
  const old = before.spec ?? {};
  if (spec.clusterIP === undefined && typeof old.clusterIP === 'string') spec.clusterIP = old.clusterIP;
  if (spec.loadBalancerIP === undefined && typeof old.loadBalancerIP === 'string' && spec.type === old.type) spec.loadBalancerIP = old.loadBalancerIP;
  const stillLocal = spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local' && old.externalTrafficPolicy === 'Local';
  if (spec.healthCheckNodePort === undefined && typeof old.healthCheckNodePort === 'number' && stillLocal) spec.healthCheckNodePort = old.healthCheckNodePort;
  const ports = Array.isArray(spec.ports) ? (spec.ports as Record<string, unknown>[]) : [];
  const oldPorts = Array.isArray(old.ports) ? (old.ports as Record<string, unknown>[]) : [];
  for (const port of ports) {
    if (typeof port !== 'object' || port === null || port.nodePort !== undefined) continue;
    const match = oldPorts.find((p) => typeof p === 'object' && p !== null && p.port === port.port && (p.protocol ?? 'TCP') === (port.protocol ?? 'TCP'));
    if (match?.nodePort !== undefined && (spec.type === 'NodePort' || spec.type === 'LoadBalancer')) port.nodePort = match.nodePort;
  }
}

/** Writes what the load allocated (cluster IP, node ports, the LoadBalancer address) into the manifest. */
function writeAllocations(manifest: Manifest, cluster: Cluster, namespace: string, name: string): void {
  const service = cluster.services.find((s) => s.namespace === namespace && s.name === name);
  if (service === undefined) return;
  const spec = (manifest.spec ??= {});
  if (service.clusterIP !== undefined && spec.clusterIP === undefined) spec.clusterIP = formatIpv4(service.clusterIP);
  if (service.type === 'LoadBalancer' && service.loadBalancerIngress !== undefined && spec.loadBalancerIP === undefined) spec.loadBalancerIP = formatIpv4(service.loadBalancerIngress);
  if (service.healthCheckNodePort !== undefined && spec.healthCheckNodePort === undefined) spec.healthCheckNodePort = service.healthCheckNodePort;
  const ports = Array.isArray(spec.ports) ? (spec.ports as Record<string, unknown>[]) : [];
  ports.forEach((port, i) => {
    const resolved = service.ports[i];
    if (typeof port === 'object' && port !== null && port.nodePort === undefined && resolved?.nodePort !== undefined) port.nodePort = resolved.nodePort;
  });
}

function sameJson(a: string, b: string): boolean {
  return canonicalJson(JSON.parse(a)) === canonicalJson(JSON.parse(b));
}

