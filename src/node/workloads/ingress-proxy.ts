/**
 * The built-in ingress controller's proxy, which stands in for ingress-nginx's nginx in a
 * controller pod: HTTP on one port, HTTPS on another (the certificate of the Secret the
 * SNI host's server names, else the default one), /healthz on a third, every request routed
 * by src/ingress's lookup to a Service's ClusterIP, so the hop to the backend crosses the
 * node's service NAT, conntrack and NetworkPolicy like any pod's traffic.
 *
 *   node ingress-proxy.js HTTP_PORT HTTPS_PORT HEALTHZ_PORT CONFIG_DIR
 *
 * CONFIG_DIR/config.json is written by the node (ingress-configs.ts) and replaced whole on
 * every change of an Ingress, Service, Endpoints or Secret; the proxy reads it again and
 * swaps its lookup, so requests in flight finish on the route they took.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, watch } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, createServer as createTlsServer, type SecureContext, type Server as TlsServer } from 'node:tls';
import { DEFAULT_ROOT_LOCATION, INGRESS_CONFIG_FILE, type IngressProxyConfig } from '../../ingress/config.js';
import { IngressRouter } from '../../ingress/match.js';
import { ProxyConnection, type Decision, type ProxyCounters, type Routing } from './ingress-exchange.js';

export type { ProxyCounters } from './ingress-exchange.js';

const EMPTY_CONFIG: IngressProxyConfig = { servers: [], catchAll: { host: '_', locations: [DEFAULT_ROOT_LOCATION] }, certificates: {} };
/** How often the configuration file is looked at besides the directory watch (which may miss a rename). */
const POLL_MS = 1000;

/** One listening proxy: the lookup and certificates it holds now. Its connections are ingress-exchange.ts's. */
export class IngressProxy implements Routing {
  private router = new IngressRouter(EMPTY_CONFIG);
  private contexts = new Map<string, SecureContext>();
  private defaultContext: SecureContext | undefined;
  /** The default certificate's PEM, for clients that send no SNI (the server's own context). */
  defaultPem: { cert: string; key: string } | undefined;
  private configText = '';
  readonly counters: ProxyCounters = { upstreamErrors: 0, badRequests: 0 };
  /** Counts configurations taken. */
  generation = 0;

  /** The fake certificate's context, made once: the default when no Secret is chosen. */
  private readonly fakeContext: SecureContext | undefined;

  constructor(
    private readonly fakeCertificate: { cert: string; key: string } | undefined,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.fakeContext = fakeCertificate !== undefined ? createSecureContext(fakeCertificate) : undefined;
    this.defaultContext = this.fakeContext;
    this.defaultPem = fakeCertificate;
  }

  /** Takes a new configuration (the file's text); a text that does not parse keeps the current one. */
  configure(text: string): boolean {
    if (text === this.configText) return false;
    let config: IngressProxyConfig;
    try {
      config = JSON.parse(text) as IngressProxyConfig;
    } catch (err) {
      this.log(`ingress configuration does not parse, keeping the previous one: ${(err as Error).message}`);
      return false;
    }
    const router = new IngressRouter(config);
    for (const problem of router.problems) this.log(problem);
    const contexts = new Map<string, SecureContext>();
    for (const [key, pem] of Object.entries(config.certificates)) {
      try {
        contexts.set(key, createSecureContext({ cert: pem.cert, key: pem.key }));
      } catch (err) {
        this.log(`certificate ${key} cannot be used: ${(err as Error).message}`);
      }
    }
    this.router = router;
    this.contexts = contexts;
    const chosen = config.defaultCertificate !== undefined ? contexts.get(config.defaultCertificate) : undefined;
    this.defaultContext = chosen ?? this.fakeContext;
    this.defaultPem = chosen !== undefined ? config.certificates[config.defaultCertificate!] : this.fakeCertificate;
    this.configText = text;
    this.generation++;
    return true;
  }

  /** The TLS context for an SNI name: its server's Secret, else the default certificate. */
  secureContext(servername: string): SecureContext | undefined {
    const tls = this.router.server(servername).config.tls;
    return (tls?.secret !== undefined ? this.contexts.get(tls.secret) : undefined) ?? this.defaultContext;
  }

  /** The redirect to HTTPS, the default backend, a backend with no endpoints, or the Service's address to forward to. */
  decide(hostHeader: string | undefined, url: string, secure: boolean): Decision {
    const route = this.router.route(hostHeader, url);
    const { location } = route;
    if (!secure && route.server.config.tls !== undefined && location.sslRedirect) {
      const host = (hostHeader ?? route.server.config.host).replace(/:\d+$/, '');
      return { answer: 308, body: `Permanent Redirect: https://${host}${url}\n`, location: `https://${host}${url}` };
    }
    const backend = location.backend;
    if (backend.kind === 'default') return url === '/healthz' || url.startsWith('/healthz?') ? { answer: 200, body: 'ok\n' } : { answer: 404, body: 'default backend - 404\n' };
    if (backend.target === undefined || backend.ready === 0) return { answer: 503, body: `503 Service Unavailable: ${backend.problem ?? `service ${backend.service} has no ready endpoints`}\n` };
    return {
      service: backend.service,
      address: backend.target.address,
      port: backend.target.port,
      path: route.upstreamPath,
      connectTimeoutMs: location.connectTimeoutMs,
      readTimeoutMs: location.readTimeoutMs,
    };
  }
}

/**
 * ingress-nginx's "Kubernetes Ingress Controller Fake Certificate" (RSA 2048, as its), made
 * with openssl when it is there. RSA matters: the server's own context keeps its key's slot
 * when SNI switches to a Secret's context, and OpenSSL prefers an ECDSA slot, so an ECDSA
 * default certificate would shadow every RSA Secret.
 */
export function fakeCertificate(log: (line: string) => void): { cert: string; key: string } | undefined {
  try {
    const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '-', '-out', '-', '-days', '365', '-subj', '/O=Acme Co/CN=Kubernetes Ingress Controller Fake Certificate'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(pem)?.[0];
    const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(pem)?.[0];
    return key !== undefined && cert !== undefined ? { cert, key } : undefined;
  } catch (err) {
    log(`no default certificate (openssl: ${(err as Error).message}): HTTPS answers only hosts with a Secret of their own`);
    return undefined;
  }
}

export interface ProxyServers {
  readonly plain: NetServer;
  readonly tls: TlsServer;
  readonly health: Server;
  /** After a configuration change: clients without SNI get the (new) default certificate. */
  refreshDefaultCertificate(): void;
  close(): Promise<void>;
}

/** The proxy's three listeners: HTTP, HTTPS (certificate by SNI) and /healthz. Port 0 picks one. */
export async function serveProxy(proxy: IngressProxy, ports: { http: number; https: number; healthz: number }, host = '0.0.0.0'): Promise<ProxyServers> {
  const open = new Set<ProxyConnection>();
  const accept = (socket: Socket, secure: boolean) => {
    const connection = new ProxyConnection(socket, secure, proxy);
    open.add(connection);
    socket.once('close', () => open.delete(connection));
  };
  // Half-open allowed: a client may shut its side after the request and still read the answer.
  const plain = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => accept(socket, false));
  const tls = createTlsServer({ allowHalfOpen: true, ALPNProtocols: ['http/1.1'], SNICallback: (name, cb) => cb(null, proxy.secureContext(name)), ...proxy.defaultPem }, (socket) => accept(socket, true));
  tls.on('tlsClientError', () => undefined); // a failed handshake is the client's
  const health = createServer((req, res) => {
    const ok = req.url === '/healthz';
    res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(ok ? 'ok\n' : 'not found\n');
  });
  const listen = (server: NetServer, port: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  await listen(plain, ports.http);
  await listen(tls, ports.https);
  await listen(health, ports.healthz);
  return {
    plain,
    tls,
    health,
    refreshDefaultCertificate: () => {
      if (proxy.defaultPem !== undefined) tls.setSecureContext(proxy.defaultPem);
    },
    close: async () => {
      for (const connection of open) connection.destroy();
      health.closeAllConnections();
      for (const server of [plain, tls, health]) await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function main(): Promise<void> {
  const [http, https, healthz] = process.argv.slice(2, 5).map(Number);
  const dir = process.argv[5];
  if (dir === undefined || [http, https, healthz].some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    process.stderr.write('usage: ingress-proxy HTTP_PORT HTTPS_PORT HEALTHZ_PORT CONFIG_DIR\n');
    process.exit(2);
  }
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const proxy = new IngressProxy(fakeCertificate(log), log);
  const file = join(dir, INGRESS_CONFIG_FILE);
  let servers: ProxyServers | undefined;
  const reload = () => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // not written yet: the empty configuration answers 404
    }
    if (!proxy.configure(text)) return;
    log(`configuration loaded (${text.length} bytes)`);
    servers?.refreshDefaultCertificate();
  };
  reload();
  servers = await serveProxy(proxy, { http, https, healthz });
  servers.refreshDefaultCertificate();
  try {
    watch(dir, () => reload()).on('error', () => undefined);
  } catch {
    // Polling alone then.
  }
  setInterval(reload, POLL_MS).unref();
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
