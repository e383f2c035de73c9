/**
 * What a controller pod's proxy is told: the servers (one per host, and the catch-all) with
 * their locations, each location's backend resolved to the Service's ClusterIP and port, and
 * the TLS certificates those servers use. The node writes it as JSON into the pod's directory
 * (servers.ts makes it, match.ts compiles it into the proxy's lookup); nothing here does I/O.
 */

/** The file the node writes and the proxy reads, in the directory bound into the controller's pod. */
export const INGRESS_CONFIG_FILE = 'config.json';

/** ingress-nginx's defaults: proxy-connect-timeout 5 s, proxy-read-timeout 60 s. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_READ_TIMEOUT_MS = 60_000;

/** Where a location sends its requests. */
export type BackendConfig =
  | {
      readonly kind: 'service';
      /** `namespace/name`. */
      readonly service: string;
      /** As the Ingress names it: a port number or a port name. */
      readonly port: number | string;
      /** The Service's ClusterIP and port; undefined with `problem`. */
      readonly target?: { readonly address: string; readonly port: number };
      /** Ready endpoints behind that port: none answers 503, as ingress-nginx does. */
      readonly ready: number;
      /** Why there is no target: no such Service, no such port, headless or ExternalName. */
      readonly problem?: string;
    }
  /** The controller's own default backend: 404 for everything, 200 for /healthz. */
  | { readonly kind: 'default' };

/** `Regex`: an ImplementationSpecific (or any) path of an Ingress with use-regex or rewrite-target. */
export type LocationMatch = 'Exact' | 'Prefix' | 'Regex';

export interface LocationConfig {
  readonly path: string;
  readonly match: LocationMatch;
  readonly backend: BackendConfig;
  /** The Ingress it came from, `namespace/name`; "" for the controller's default location. */
  readonly ingress: string;
  /** A server with TLS redirects plain HTTP to HTTPS unless the Ingress says ssl-redirect "false". */
  readonly sslRedirect: boolean;
  /** nginx.ingress.kubernetes.io/rewrite-target, with $1...$9 from a Regex location's groups. */
  readonly rewriteTarget?: string;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
}

export interface ServerConfig {
  /** `microservice1.com`, `*.foo.com`, or `_` for the catch-all server. */
  readonly host: string;
  /** In no particular order: match.ts ranks them. Always holds a root location (`/`, Prefix). */
  readonly locations: readonly LocationConfig[];
  /** The server speaks TLS: with this Secret's certificate (`namespace/name`), or the default one when undefined. */
  readonly tls?: { readonly secret?: string };
}

export interface CertificateConfig {
  /** PEM, as the kubernetes.io/tls Secret holds it. */
  readonly cert: string;
  readonly key: string;
}

export interface IngressProxyConfig {
  /** The host servers; the catch-all is separate. */
  readonly servers: readonly ServerConfig[];
  readonly catchAll: ServerConfig;
  /** By `namespace/name`: only the Secrets the servers use. */
  readonly certificates: Readonly<Record<string, CertificateConfig>>;
  /** `--default-ssl-certificate=NS/NAME`, when it names a usable Secret. */
  readonly defaultCertificate?: string;
}

/** The controller's own root location: every path no Ingress takes goes to its default backend. */
export const DEFAULT_ROOT_LOCATION: LocationConfig = {
  path: '/',
  match: 'Prefix',
  backend: { kind: 'default' },
  ingress: '',
  sslRedirect: false,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  readTimeoutMs: DEFAULT_READ_TIMEOUT_MS,
};
