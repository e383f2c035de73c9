/**
 * A container's environment as the kubelet makes it (pkg/kubelet/kubelet_pods.go
 * makeEnvironmentVariables, pkg/kubelet/envvars): the service links of the Services in the
 * pod's namespace that exist when the container starts, then envFrom, then env with its
 * `$(VAR)` references expanded and its valueFrom resolved. A missing ConfigMap, Secret or
 * key that is not optional stops the container from starting, with the kubelet's words.
 */
import { formatIpv4 } from '../packet/addr.js';
import type { ConfigMap, Container, EnvVarSource, Pod, Secret, Service } from '../cluster/model.js';
import { checkEnvVarName } from '../cluster/names.js';
import { expand } from './expansion.js';

export interface EnvironmentInput {
  readonly pod: Pod;
  readonly container: Container;
  /** The Services of the pod's namespace, as they are at the container's start. */
  readonly services: readonly Service[];
  readonly configMaps: readonly ConfigMap[];
  readonly secrets: readonly Secret[];
  readonly nodeName: string;
  /** The node's address (status.hostIP). */
  readonly hostIP: string;
  /** default/kubernetes's ClusterIP: the API server's Service, whose variables every pod gets. */
  readonly kubernetesServiceIP: number;
}

export interface Environment {
  /** In the order the process gets them; a name appears once. */
  readonly env: readonly (readonly [string, string])[];
  /** Why the container cannot start (empty when it can). */
  readonly problems: readonly string[];
  /** Told, not fatal: envFrom keys that are no variable names. */
  readonly warnings: readonly string[];
}

/** FOO-BAR -> FOO_BAR, as envvars.makeEnvVariableName. */
function variableName(name: string): string {
  return name.toUpperCase().replaceAll('-', '_');
}

interface LinkService {
  readonly name: string;
  readonly ip: string;
  readonly ports: readonly { readonly name?: string; readonly port: number; readonly protocol: string }[];
}

/** envvars.FromServices for one Service: FOO_SERVICE_HOST, _SERVICE_PORT(_NAME), and the docker-link FOO_PORT_... */
function serviceVariables(service: LinkService): [string, string][] {
  const prefix = variableName(service.name);
  const out: [string, string][] = [[`${prefix}_SERVICE_HOST`, service.ip]];
  if (service.ports.length === 0) return out;
  out.push([`${prefix}_SERVICE_PORT`, String(service.ports[0].port)]);
  for (const p of service.ports) {
    if (p.name !== undefined && p.name !== '') out.push([`${prefix}_SERVICE_PORT_${variableName(p.name)}`, String(p.port)]);
  }
  service.ports.forEach((p, i) => {
    const proto = p.protocol.toLowerCase();
    const url = `${proto}://${service.ip}:${p.port}`;
    if (i === 0) out.push([`${prefix}_PORT`, url]);
    const link = `${prefix}_PORT_${p.port}_${p.protocol.toUpperCase()}`;
    out.push([link, url], [`${link}_PROTO`, proto], [`${link}_PORT`, String(p.port)], [`${link}_ADDR`, service.ip]);
  });
  return out;
}

/**
 * The service links of getServiceEnvVarMap: every Service of the namespace with a ClusterIP
 * (not headless, not ExternalName) when enableServiceLinks is on, and the API server's
 * `kubernetes` Service always.
 */
export function serviceEnvironment(services: readonly Service[], enableServiceLinks: boolean, kubernetesServiceIP: number): [string, string][] {
  const links: LinkService[] = [{ name: 'kubernetes', ip: formatIpv4(kubernetesServiceIP), ports: [{ name: 'https', port: 443, protocol: 'TCP' }] }];
  if (enableServiceLinks) {
    for (const s of services) {
      if (s.clusterIP === undefined || s.headless || s.type === 'ExternalName') continue;
      if (s.namespace === 'default' && s.name === 'kubernetes') continue;
      links.push({ name: s.name, ip: formatIpv4(s.clusterIP), ports: s.ports });
    }
  }
  return links.flatMap(serviceVariables);
}

function fieldValue(source: Extract<EnvVarSource, { kind: 'fieldRef' }>, input: EnvironmentInput): string {
  const { pod } = input;
  switch (source.fieldPath) {
    case 'metadata.name':
      return pod.name;
    case 'metadata.namespace':
      return pod.namespace;
    case 'metadata.uid':
      return pod.uid;
    case 'metadata.labels':
      return source.key === undefined ? '' : (pod.labels[source.key] ?? '');
    case 'spec.nodeName':
      return input.nodeName;
    case 'spec.serviceAccountName':
      return pod.serviceAccountName;
    case 'status.podIP':
    case 'status.podIPs':
      return formatIpv4(pod.ip);
    case 'status.hostIP':
    case 'status.hostIPs':
      return input.hostIP;
  }
}

type Found = { value: string } | { missing: string } | undefined;

/** A key of a ConfigMap's data (binaryData is for volumes only) or of a Secret, or why there is none. */
function keyValue(source: Extract<EnvVarSource, { kind: 'configMapKeyRef' | 'secretKeyRef' }>, input: EnvironmentInput): Found {
  const ns = input.pod.namespace;
  if (source.kind === 'configMapKeyRef') {
    const cm = input.configMaps.find((c) => c.namespace === ns && c.name === source.name);
    if (cm === undefined) return source.optional ? undefined : { missing: `configmap "${source.name}" not found` };
    const data = Object.hasOwn(cm.data, source.key) && !cm.binaryKeys.includes(source.key) ? cm.data[source.key] : undefined;
    if (data === undefined) return source.optional ? undefined : { missing: `couldn't find key ${source.key} in ConfigMap ${ns}/${source.name}` };
    return { value: data.toString('utf8') };
  }
  const secret = input.secrets.find((s) => s.namespace === ns && s.name === source.name);
  if (secret === undefined) return source.optional ? undefined : { missing: `secret "${source.name}" not found` };
  const data = Object.hasOwn(secret.data, source.key) ? secret.data[source.key] : undefined;
  if (data === undefined) return source.optional ? undefined : { missing: `couldn't find key ${source.key} in Secret ${ns}/${source.name}` };
  return { value: data.toString('utf8') };
}

export function containerEnvironment(input: EnvironmentInput): Environment {
  const { pod, container } = input;
  const problems: string[] = [];
  const warnings: string[] = [];
  const serviceEnv = new Map(serviceEnvironment(input.services, pod.enableServiceLinks, input.kubernetesServiceIP));
  const declared = new Map<string, string>();

  for (const from of container.envFrom) {
    const object =
      from.kind === 'configMapRef'
        ? input.configMaps.find((c) => c.namespace === pod.namespace && c.name === from.name)
        : input.secrets.find((s) => s.namespace === pod.namespace && s.name === from.name);
    if (object === undefined) {
      if (!from.optional) problems.push(`${from.kind === 'configMapRef' ? 'configmap' : 'secret'} "${from.name}" not found`);
      continue;
    }
    const binary = 'binaryKeys' in object ? object.binaryKeys : [];
    const invalid: string[] = [];
    for (const [key, data] of Object.entries(object.data)) {
      if (binary.includes(key)) continue;
      const name = from.prefix + key;
      if (checkEnvVarName(name) !== undefined) invalid.push(name);
      else declared.set(name, data.toString('utf8'));
    }
    if (invalid.length > 0) {
      const what = from.kind === 'configMapRef' ? 'configMap' : 'secret';
      warnings.push(`Keys [${invalid.sort().join(', ')}] from the EnvFrom ${what} ${pod.namespace}/${from.name} were skipped since they are considered invalid environment variable names.`);
    }
  }

  for (const e of container.env) {
    if (e.valueFrom === undefined) {
      // Earlier variables of this container and the service links are what $(VAR) may name.
      declared.set(e.name, expand(e.value, (name) => declared.get(name) ?? serviceEnv.get(name)));
      continue;
    }
    const source = e.valueFrom;
    if (source.kind === 'fieldRef') {
      declared.set(e.name, fieldValue(source, input));
      continue;
    }
    const found = keyValue(source, input);
    if (found === undefined) continue;
    if ('missing' in found) problems.push(found.missing);
    else declared.set(e.name, found.value);
  }

  const env: [string, string][] = [...declared];
  for (const [name, value] of serviceEnv) if (!declared.has(name)) env.push([name, value]);
  return { env, problems, warnings };
}

/** The container's command and args with `$(VAR)` taken from its environment, as the kubelet expands them. */
export function expandCommand(argv: readonly string[], env: readonly (readonly [string, string])[]): string[] {
  const values = new Map(env);
  return argv.map((arg) => expand(arg, (name) => values.get(name)));
}
