/**
 * The Ingresses one controller serves, merged into servers as ingress-nginx merges them
 * (controller.go's createServers and getBackendServers), oldest Ingress first (podwire reads
 * declaration order as creation order):
 *
 * - one server per host; rules without a host go to the catch-all server `_`;
 * - each server starts with a root location `/` (Prefix) on the default backend: the
 *   defaultBackend of the first Ingress that brought the host, else the controller's 404;
 *   the catch-all's root is the defaultBackend of the first Ingress that has no rules;
 * - a rule's path replaces that root location, or is added; a path (and pathType) that an
 *   older Ingress already routes stays the older one's;
 * - a host's TLS is the first TLS entry naming it (its secretName, or the default certificate).
 *
 * Backends resolve to the Service's ClusterIP and port: the proxy's connection to a backend
 * then crosses the dataplane's service NAT like any pod's.
 */
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import type { Cluster, Ingress, IngressPath, IngressServiceBackend } from '../cluster/model.js';
import { formatIpv4 } from '../packet/addr.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_READ_TIMEOUT_MS, type BackendConfig, type CertificateConfig, type IngressProxyConfig, type LocationConfig, type LocationMatch, type ServerConfig } from './config.js';
import { serves, type ControllerFlags } from './controller.js';

const ANNOTATION = 'nginx.ingress.kubernetes.io/';
export const CATCH_ALL = '_';

const DEFAULT_BACKEND: BackendConfig = { kind: 'default' };

interface Draft {
  readonly host: string;
  readonly locations: LocationConfig[];
  /** The root location is still the default one, which a rule's `/` may replace. */
  rootIsDefault: boolean;
  tls?: { readonly secret?: string };
}

/** The options an Ingress's annotations set on each of its locations. */
interface LocationOptions {
  readonly ingress: string;
  readonly regex: boolean;
  readonly sslRedirect: boolean;
  readonly rewriteTarget?: string;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
}

export function proxyConfig(cluster: Cluster, endpoints: readonly ServicePortEndpoints[], flags: ControllerFlags): IngressProxyConfig {
  const served = cluster.ingresses.filter((i) => serves(flags, i, cluster.ingressClasses));
  const defaults = controllerDefaults(cluster, flags);
  const backend = (ing: Ingress, b: IngressServiceBackend) => resolveBackend(cluster, endpoints, ing.namespace, b);
  const servers = new Map<string, Draft>();
  const catchAll: Draft = { host: CATCH_ALL, locations: [], rootIsDefault: true };
  catchAll.locations.push(rootLocation(DEFAULT_BACKEND, defaults));
  servers.set(CATCH_ALL, catchAll);

  for (const ing of served) {
    const options = locationOptions(ing, defaults);
    const fallback = ing.defaultBackend !== undefined ? backend(ing, ing.defaultBackend) : DEFAULT_BACKEND;
    if (ing.defaultBackend !== undefined && ing.rules.length === 0 && catchAll.rootIsDefault) {
      catchAll.locations[0] = rootLocation(fallback, options);
      catchAll.rootIsDefault = false;
    }
    for (const rule of ing.rules) {
      const host = rule.host ?? CATCH_ALL;
      if (!servers.has(host)) servers.set(host, { host, locations: [rootLocation(fallback, options)], rootIsDefault: true });
    }
  }

  for (const ing of served) {
    const options = locationOptions(ing, defaults);
    for (const rule of ing.rules) {
      const server = servers.get(rule.host ?? CATCH_ALL)!;
      for (const path of rule.paths) addLocation(server, path, backend(ing, path.backend), options);
    }
  }

  const certificates: Record<string, CertificateConfig> = {};
  const useSecret = (namespace: string, name: string): string | undefined => {
    const key = `${namespace}/${name}`;
    const secret = cluster.secrets.find((s) => s.namespace === namespace && s.name === name);
    const cert = secret?.data['tls.crt'];
    const privateKey = secret?.data['tls.key'];
    if (cert === undefined || privateKey === undefined) return undefined;
    certificates[key] = { cert: cert.toString('utf8'), key: privateKey.toString('utf8') };
    return key;
  };
  for (const ing of served) {
    for (const entry of ing.tls) {
      const secret = entry.secretName !== undefined ? useSecret(ing.namespace, entry.secretName) : undefined;
      const hosts = entry.hosts.length > 0 ? entry.hosts : [CATCH_ALL];
      for (const host of hosts) {
        const server = servers.get(host);
        // A missing or unusable Secret falls back to the default certificate, as ingress-nginx does.
        if (server !== undefined && server.tls === undefined) server.tls = secret !== undefined ? { secret } : {};
      }
    }
  }
  const defaultSsl = flags.defaultSslCertificate?.split('/');
  const defaultCertificate = defaultSsl?.length === 2 ? useSecret(defaultSsl[0], defaultSsl[1]) : undefined;

  const finish = (d: Draft): ServerConfig => ({ host: d.host, locations: d.locations, ...(d.tls !== undefined ? { tls: d.tls } : {}) });
  return {
    servers: [...servers.values()].filter((d) => d !== catchAll).map(finish),
    catchAll: finish(catchAll),
    certificates,
    ...(defaultCertificate !== undefined ? { defaultCertificate } : {}),
  };
}

function addLocation(server: Draft, path: IngressPath, backend: BackendConfig, options: LocationOptions): void {
  const match: LocationMatch = options.regex ? 'Regex' : path.pathType === 'Exact' ? 'Exact' : 'Prefix';
  const text = match === 'Prefix' ? normalisePrefix(path.path) : path.path;
  const location = makeLocation(text, match, backend, options);
  if (match === 'Prefix' && text === '/' && server.rootIsDefault) {
    server.locations[0] = location;
    server.rootIsDefault = false;
    return;
  }
  if (server.locations.some((l) => l.path === text && l.match === match)) return; // an older Ingress routes it
  server.locations.push(location);
}

/** `/foo/` and `/foo` are one Prefix; ImplementationSpecific without regex is a Prefix too, and "" is `/`. */
export function normalisePrefix(path: string): string {
  if (path === '' || path === '/') return '/';
  return path.replace(/\/+$/, '') || '/';
}

function rootLocation(backend: BackendConfig, options: LocationOptions): LocationConfig {
  return makeLocation('/', 'Prefix', backend, { ...options, regex: false });
}

function makeLocation(path: string, match: LocationMatch, backend: BackendConfig, o: LocationOptions): LocationConfig {
  return {
    path,
    match,
    backend,
    ingress: o.ingress,
    sslRedirect: o.sslRedirect,
    ...(o.rewriteTarget !== undefined ? { rewriteTarget: o.rewriteTarget } : {}),
    connectTimeoutMs: o.connectTimeoutMs,
    readTimeoutMs: o.readTimeoutMs,
  };
}

/** Whole seconds above zero, in ms; anything else keeps the fallback, as ingress-nginx ignores a bad value. */
function seconds(text: string | undefined, fallbackMs: number): number {
  const n = Number(text);
  return text !== undefined && Number.isInteger(n) && n > 0 ? n * 1000 : fallbackMs;
}

/**
 * The controller's own defaults: ingress-nginx's, overridden by its `--configmap` (the keys
 * ssl-redirect, proxy-connect-timeout and proxy-read-timeout, as that ConfigMap spells them).
 */
export function controllerDefaults(cluster: Cluster, flags: ControllerFlags): LocationOptions {
  const [namespace, name] = flags.configMap?.split('/') ?? [];
  const data = cluster.configMaps.find((c) => c.namespace === namespace && c.name === name)?.data ?? {};
  const key = (k: string) => data[k]?.toString('utf8');
  return {
    ingress: '',
    regex: false,
    sslRedirect: key('ssl-redirect') !== 'false',
    connectTimeoutMs: seconds(key('proxy-connect-timeout'), DEFAULT_CONNECT_TIMEOUT_MS),
    readTimeoutMs: seconds(key('proxy-read-timeout'), DEFAULT_READ_TIMEOUT_MS),
  };
}

/** ingress-nginx's annotations that podwire's proxy honours, over the controller's defaults. */
export function locationOptions(ing: Ingress, defaults: LocationOptions): LocationOptions {
  const a = (name: string) => ing.annotations[ANNOTATION + name];
  const rewriteTarget = a('rewrite-target');
  const redirect = a('ssl-redirect');
  return {
    ingress: `${ing.namespace}/${ing.name}`,
    // ingress-nginx enforces regular expressions on an Ingress that rewrites.
    regex: a('use-regex') === 'true' || rewriteTarget !== undefined,
    sslRedirect: redirect === undefined ? defaults.sslRedirect : redirect !== 'false',
    ...(rewriteTarget !== undefined ? { rewriteTarget } : {}),
    connectTimeoutMs: seconds(a('proxy-connect-timeout'), defaults.connectTimeoutMs),
    readTimeoutMs: seconds(a('proxy-read-timeout'), defaults.readTimeoutMs),
  };
}

/** The Service port the Ingress names, at its ClusterIP, and how many endpoints are ready behind it. */
export function resolveBackend(cluster: Cluster, endpoints: readonly ServicePortEndpoints[], namespace: string, b: IngressServiceBackend): BackendConfig {
  const key = `${namespace}/${b.name}`;
  const base = { kind: 'service' as const, service: key, port: b.port };
  const service = cluster.services.find((s) => s.namespace === namespace && s.name === b.name);
  if (service === undefined) return { ...base, ready: 0, problem: `service ${key} does not exist` };
  const port = service.ports.find((p) => (typeof b.port === 'number' ? p.port === b.port : p.name === b.port));
  if (port === undefined) return { ...base, ready: 0, problem: `service ${key} has no port ${JSON.stringify(b.port)}` };
  if (service.clusterIP === undefined) return { ...base, ready: 0, problem: `service ${key} has no cluster IP (${service.type === 'ExternalName' ? 'ExternalName' : 'headless'})` };
  const ready = endpoints
    .filter((e) => e.service.namespace === namespace && e.service.name === b.name && e.servicePort.port === port.port && e.protocol === port.protocol)
    .reduce((n, e) => n + e.endpoints.filter((x) => x.ready).length, 0);
  return { ...base, target: { address: formatIpv4(service.clusterIP), port: port.port }, ready };
}
