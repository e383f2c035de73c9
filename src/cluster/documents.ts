/**
 * From file text to declarations: splits each file into YAML documents, picks the decoder for
 * each document's apiVersion and kind, and collects every error and warning with its place.
 * A document with any error yields no declaration, so later stages only see valid objects.
 */

import { decodeCluster, type ClusterDecl } from './decode-cluster.js';
import { decodeMetadata, type ObjectMeta } from './decode-common.js';
import { decodeConfigMap, decodeSecret, type ConfigMapDecl, type SecretDecl } from './decode-config.js';
import { decodeIngress, decodeIngressClass, type IngressClassDecl, type IngressDecl } from './decode-ingress.js';
import { decodeNetworkPolicy, type NetworkPolicyDecl } from './decode-policy.js';
import { decodeDeployment, decodePod, type DeploymentDecl, type PodDecl } from './decode-pod.js';
import { decodeEndpoints, decodeService, type EndpointsDecl, type ServiceDecl } from './decode-service.js';
import type { Diagnostic } from './diagnostics.js';
import type { Origin } from './model.js';
import { checkDnsLabel } from './names.js';
import { parseYamlStream, type Field, type FieldMap, type Sink } from './yaml-reader.js';

export interface SourceFile {
  /** Shown in messages as given. */
  readonly path: string;
  readonly text: string;
}

export interface NamespaceDecl {
  readonly kind: 'Namespace';
  readonly meta: ObjectMeta;
}

export type Decl = NamespaceDecl | PodDecl | DeploymentDecl | ServiceDecl | EndpointsDecl | NetworkPolicyDecl | ConfigMapDecl | SecretDecl | IngressDecl | IngressClassDecl | ClusterDecl;

export interface Declared {
  readonly decl: Decl;
  readonly origin: Origin;
  /** The document as a whole, for problems found later that no single field is to blame for. */
  readonly root: Field;
}

export interface ReadResult {
  readonly declared: readonly Declared[];
  /** Shared with the declarations' fields: later stages report into the same lists. */
  readonly errors: Diagnostic[];
  readonly warnings: Diagnostic[];
  /** A Cluster document was there but invalid: the node and network settings are unknown. */
  readonly clusterInvalid: boolean;
  /**
   * Names of namespaces whose Namespace document is invalid: they are meant to exist, so
   * objects in them must not also be told that their namespace does not.
   */
  readonly invalidNamespaces: ReadonlySet<string>;
}

interface KindSpec {
  readonly apiVersion: string;
  readonly decode: (root: FieldMap) => Decl | undefined;
}

export const CLUSTER_API_VERSION = 'podwire.dev/v1alpha1';

const KINDS: Readonly<Record<string, KindSpec>> = {
  Namespace: { apiVersion: 'v1', decode: decodeNamespace },
  Pod: { apiVersion: 'v1', decode: decodePod },
  Deployment: { apiVersion: 'apps/v1', decode: decodeDeployment },
  Service: { apiVersion: 'v1', decode: decodeService },
  Endpoints: { apiVersion: 'v1', decode: decodeEndpoints },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', decode: decodeNetworkPolicy },
  ConfigMap: { apiVersion: 'v1', decode: decodeConfigMap },
  Secret: { apiVersion: 'v1', decode: decodeSecret },
  Ingress: { apiVersion: 'networking.k8s.io/v1', decode: decodeIngress },
  IngressClass: { apiVersion: 'networking.k8s.io/v1', decode: decodeIngressClass },
  Cluster: { apiVersion: CLUSTER_API_VERSION, decode: decodeCluster },
};

function decodeNamespace(root: FieldMap): NamespaceDecl | undefined {
  const meta = decodeMetadata(root, false, checkDnsLabel);
  return meta && { kind: 'Namespace', meta };
}

/** Collects one document's diagnostics, labelled with the object once its kind and name are known. */
class DocumentSink implements Sink {
  object: string | undefined;
  errorCount = 0;

  constructor(
    private readonly file: string,
    private readonly document: number,
    private readonly errors: Diagnostic[],
    private readonly warnings: Diagnostic[],
  ) {}

  error(line: number | undefined, path: string, reason: string): void {
    this.errorCount++;
    this.errors.push(this.diagnostic(line, path, reason));
  }

  warn(line: number | undefined, path: string, reason: string): void {
    this.warnings.push(this.diagnostic(line, path, reason));
  }

  private diagnostic(line: number | undefined, path: string, reason: string): Diagnostic {
    return {
      file: this.file,
      document: this.document,
      ...(this.object !== undefined && { object: this.object }),
      ...(line !== undefined && { line }),
      path,
      reason,
    };
  }
}

export function readDocuments(files: readonly SourceFile[]): ReadResult {
  const errors: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const declared: Declared[] = [];
  /** First occurrence and count of each kind podwire does not model, keyed `apiVersion kind`. */
  const unknown = new Map<string, { first: Diagnostic; count: number }>();
  let clusterInvalid = false;
  const invalidNamespaces = new Set<string>();

  for (const file of files) {
    for (const doc of parseYamlStream(file.text)) {
      const sink = new DocumentSink(file.path, doc.index, errors, warnings);
      if (doc.syntaxErrors.length > 0) {
        for (const e of doc.syntaxErrors) sink.error(e.line, '', e.reason);
        continue;
      }
      const root = doc.root(sink);
      if (root === undefined) continue; // an empty document, as kubectl skips them
      if (root.shape !== 'map') {
        root.invalid('a Kubernetes object must be a map');
        continue;
      }
      const map = root.map()!;
      const apiVersion = map.get('apiVersion').peekString();
      const kind = map.get('kind').peekString();
      const metadata = map.get('metadata');
      const name = metadata.shape === 'map' ? metadata.map()?.get('name').peekString() : undefined;
      if (kind !== undefined) sink.object = name === undefined ? kind : `${kind} ${name}`;

      const apiVersionOk = map.get('apiVersion').require() && map.get('apiVersion').string() !== undefined;
      const kindOk = map.get('kind').require() && map.get('kind').string() !== undefined;
      if (!apiVersionOk || !kindOk || apiVersion === undefined || kind === undefined) continue;

      const spec = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
      if (spec === undefined) {
        const key = `${apiVersion} ${kind}`;
        const seen = unknown.get(key);
        if (seen !== undefined) seen.count++;
        else unknown.set(key, { first: { file: file.path, document: doc.index, object: sink.object ?? kind, line: doc.line, path: '', reason: `${apiVersion} ${kind}` }, count: 1 });
        continue;
      }
      if (apiVersion !== spec.apiVersion) {
        // kubectl fails here too ("no matches for kind"); silently skipping would hide a typo.
        map.get('apiVersion').error(`${kind} is served as ${spec.apiVersion}, got ${JSON.stringify(apiVersion)}`);
        if (kind === 'Cluster') clusterInvalid = true;
        continue;
      }
      const before = sink.errorCount;
      const decl = spec.decode(map);
      if (sink.errorCount > before || decl === undefined) {
        if (kind === 'Cluster') clusterInvalid = true;
        if (kind === 'Namespace' && name !== undefined) invalidNamespaces.add(name);
        continue;
      }
      declared.push({ decl, origin: { file: file.path, document: doc.index, line: doc.line }, root });
    }
  }

  for (const { first, count } of unknown.values()) {
    const times = count === 1 ? '' : ` (${count} documents)`;
    warnings.push({ ...first, reason: `kind ${first.reason} is not modelled by podwire: skipped${times}` });
  }
  return { declared, errors, warnings, clusterInvalid, invalidNamespaces };
}
