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
import { randomFillSync } from 'node:crypto';
import { readFileSync, watch } from 'node:fs';
import { Agent, createServer, request as httpRequest, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { DEFAULT_ROOT_LOCATION, INGRESS_CONFIG_FILE, type BackendConfig, type IngressProxyConfig } from '../../ingress/config.js';
import { IngressRouter, type Route } from '../../ingress/match.js';

/** RFC 9110's hop-by-hop fields. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);
/** The fields the proxy sets itself: a client's own are replaced (X-Request-ID is kept, below). */
const SET_BY_PROXY = new Set(['x-request-id', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-forwarded-scheme', 'x-scheme']);
const EMPTY_CONFIG: IngressProxyConfig = { servers: [], catchAll: { host: '_', locations: [DEFAULT_ROOT_LOCATION] }, certificates: {} };
/** The Server field of every answer: nginx puts its own in place of the backend's. */
const SERVER = 'podwire-ingress';
/** How often the configuration file is looked at besides the directory watch (which may miss a rename). */
const POLL_MS = 1000;

export interface ProxyCounters {
  upstreamErrors: number;
  badRequests: number;
}

type ServiceBackend = Extract<BackendConfig, { kind: 'service' }>;
type Target = NonNullable<ServiceBackend['target']>;

/** What a route comes to before any backend is asked: an answer of the proxy's own, or a backend to forward to. */
type Decision = { readonly status: number; readonly body: string; readonly location?: string } | { readonly backend: ServiceBackend; readonly target: Target };

/** The same for a plain request and for an Upgrade: the redirect to HTTPS, the default backend, a backend with no endpoints. */
function decide(route: Route, url: string, hostHeader: string | undefined, secure: boolean): Decision {
  const { location } = route;
  if (!secure && route.server.config.tls !== undefined && location.sslRedirect) {
    const host = (hostHeader ?? route.server.config.host).replace(/:\d+$/, '');
    return { status: 308, body: `Permanent Redirect: https://${host}${url}\n`, location: `https://${host}${url}` };
  }
  const backend = location.backend;
  if (backend.kind === 'default') return url === '/healthz' || url.startsWith('/healthz?') ? { status: 200, body: 'ok\n' } : { status: 404, body: 'default backend - 404\n' };
  if (backend.target === undefined || backend.ready === 0) return { status: 503, body: `503 Service Unavailable: ${backend.problem ?? `service ${backend.service} has no ready endpoints`}\n` };
  return { backend, target: backend.target };
}

/** The body of a 502 or 504: which Service, at which address, and what went wrong. */
function upstreamFailure(status: 502 | 504, backend: ServiceBackend, target: Target, why: string): string {
  return `${status === 502 ? '502 Bad Gateway' : '504 Gateway Timeout'}: ${backend.service} at ${target.address}:${target.port} ${why}\n`;
}

function connectFailure(err: NodeJS.ErrnoException): string {
  return err.code === 'ECONNREFUSED' ? 'refused the connection' : `failed: ${err.code ?? err.message}`;
}

/** One listening proxy: the lookup and certificates it holds now, and its upstream connection pool. */
export class IngressProxy {
  private router = new IngressRouter(EMPTY_CONFIG);
  private contexts = new Map<string, SecureContext>();
  private defaultContext: SecureContext | undefined;
  /** The default certificate's PEM, for clients that send no SNI (the server's own context). */
  defaultPem: { cert: string; key: string } | undefined;
  private configText = '';
  readonly counters: ProxyCounters = { upstreamErrors: 0, badRequests: 0 };
  /**
   * Upstream connections belong to the client connection they were opened for (HAProxy's
   * `http-reuse never`): kept alive as long as it is, and never shared with another client.
   * Each new client connection so makes a new connection to the ClusterIP, which kube-proxy's
   * rules send to a random endpoint: load is spread per connection, as a Service spreads it
   * (what ingress-nginx's service-upstream mode gives), not by a balancer of the proxy's own.
   * A new configuration retires them at the client's next request, so a client that stays
   * connected while a backend scales is placed again among the endpoints there are now.
   */
  private readonly agents = new WeakMap<Socket, { agent: Agent; generation: number }>();
  /** Counts configurations taken. */
  private generation = 0;

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

  handle(req: IncomingMessage, res: ServerResponse, secure: boolean): void {
    const url = req.url ?? '/';
    const host = rawField(req.rawHeaders, 'host');
    const route = this.router.route(host, url);
    const decision = decide(route, url, host, secure);
    if ('status' in decision) this.answer(res, decision.status, decision.body, decision.location !== undefined ? { location: decision.location } : {});
    else this.forward(req, res, route, decision.backend, decision.target, secure, false);
  }

  private forward(req: IncomingMessage, res: ServerResponse, route: Route, backend: ServiceBackend, target: Target, secure: boolean, retry: boolean): void {
    const { location } = route;
    const upstream = httpRequest({
      host: target.address,
      port: target.port,
      method: req.method,
      path: route.upstreamPath,
      headers: forwardedHeaders(req, secure),
      agent: this.agentOf(req.socket),
    });
    let answered = false;
    const fail = (status: 502 | 504, why: string) => {
      if (answered) return;
      answered = true;
      this.counters.upstreamErrors++;
      upstream.destroy();
      if (res.headersSent) res.destroy();
      else this.answer(res, status, upstreamFailure(status, backend, target, why));
    };
    upstream.on('socket', (socket: Socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => fail(504, `did not accept the connection within ${location.connectTimeoutMs} ms`), location.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    // Idle time between reads, as nginx's proxy_read_timeout.
    upstream.setTimeout(location.readTimeoutMs, () => fail(504, `sent nothing for ${location.readTimeoutMs} ms`));
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive connection the backend closed just as it was reused: nginx tries again (proxy_next_upstream error).
      const bodyless = req.method === 'GET' || req.method === 'HEAD';
      if (!answered && upstream.reusedSocket && err.code === 'ECONNRESET' && bodyless && !retry && !res.headersSent) {
        answered = true;
        this.forward(req, res, route, backend, target, secure, true);
        return;
      }
      fail(502, connectFailure(err));
    });
    upstream.on('response', (reply: IncomingMessage) => {
      if (answered) {
        reply.resume();
        return;
      }
      answered = true;
      res.writeHead(reply.statusCode ?? 502, reply.statusMessage, responseHeaders(reply.rawHeaders));
      reply.pipe(res);
      reply.on('error', () => res.destroy());
    });
    // The client went away before the answer was whole: so does the upstream request.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (retry) upstream.end();
    else req.pipe(upstream);
  }

  /**
   * An Upgrade request (WebSocket): routed as any request, then, once the backend's
   * connection is open, the request head is written to it and the two connections are
   * spliced, as nginx does with proxy_http_version 1.1 and the Upgrade fields passed on.
   */
  upgrade(req: IncomingMessage, client: Duplex, head: Buffer, secure: boolean): void {
    const url = req.url ?? '/';
    const host = rawField(req.rawHeaders, 'host');
    const route = this.router.route(host, url);
    const { location } = route;
    const refuse = (status: number, body: string, extra = '') => {
      client.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nserver: ${SERVER}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
    };
    const decision = decide(route, url, host, secure);
    if ('status' in decision) return refuse(decision.status, decision.body, decision.location !== undefined ? `location: ${decision.location}\r\n` : '');
    const { backend, target } = decision;
    const upstream = connect(target.port, target.address);
    let open = false;
    const timer = setTimeout(() => {
      upstream.destroy();
      refuse(504, upstreamFailure(504, backend, target, `did not accept the connection within ${location.connectTimeoutMs} ms`));
    }, location.connectTimeoutMs);
    upstream.once('connect', () => {
      clearTimeout(timer);
      open = true;
      const fields = forwardedHeaders(req, secure);
      fields.push('connection', 'upgrade', 'upgrade', rawField(req.rawHeaders, 'upgrade') ?? '');
      let text = `${req.method ?? 'GET'} ${route.upstreamPath} HTTP/1.1\r\n`;
      for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
      upstream.write(`${text}\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      this.counters.upstreamErrors++;
      if (open) client.destroy();
      else refuse(502, upstreamFailure(502, backend, target, connectFailure(err)));
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      clearTimeout(timer);
      upstream.destroy();
    });
    // Before it opened, the client is answered (refuse) and closes itself once that is written.
    upstream.on('close', () => {
      if (open) client.destroy();
    });
  }

  private agentOf(client: Socket): Agent {
    const held = this.agents.get(client);
    if (held !== undefined && held.generation === this.generation) return held.agent;
    // The client's previous request is done (one at a time on a connection): its idle connections can go.
    held?.agent.destroy();
    // One connection per backend at a time: a client connection carries one request at a time.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    if (held === undefined) client.once('close', () => this.agents.get(client)?.agent.destroy());
    this.agents.set(client, { agent, generation: this.generation });
    return agent;
  }

  private answer(res: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders = {}): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), server: SERVER, ...headers });
    res.end(body);
  }
}

/**
 * The request's fields as the backend sees them: the Host kept, hop-by-hop fields dropped,
 * and the X-Forwarded-* and X-Real-IP ingress-nginx sets (without use-forwarded-headers,
 * the client's own X-Forwarded-For is replaced); X-Request-ID is kept when the client sent
 * one, as nginx's $req_id.
 */
export function forwardedHeaders(req: IncomingMessage, secure: boolean): string[] {
  // The raw list, in the client's order and spelling, repeated fields kept: cheaper to pass
  // on than the parsed object (http.request validates an object's fields one by one), and
  // read here without `req.headers`, which Node builds from the raw list on first use.
  const raw = req.rawHeaders;
  const connection = rawFieldJoined(raw, 'connection');
  // The fields Connection names are hop-by-hop too; "keep-alive" and "close", the usual values, name none of the rest.
  const named = connection === undefined || HOP_BY_HOP.has(connection.toLowerCase()) ? undefined : new Set(connection.toLowerCase().split(',').map((t) => t.trim()));
  const out: string[] = [];
  let requestId: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === 'x-request-id') requestId ??= raw[i + 1];
    else if (name === 'host') host ??= raw[i + 1];
    if (HOP_BY_HOP.has(name) || SET_BY_PROXY.has(name) || named?.has(name) === true) continue;
    out.push(raw[i], raw[i + 1]);
  }
  const client = req.socket.remoteAddress ?? '';
  const proto = secure ? 'https' : 'http';
  out.push('x-request-id', requestId !== undefined && requestId !== '' ? requestId : newRequestId());
  out.push('x-real-ip', client, 'x-forwarded-for', client);
  if (host !== undefined) out.push('x-forwarded-host', host);
  // The port the client reached, after the Service's DNAT: the listener's, as nginx's $server_port.
  out.push('x-forwarded-port', String(req.socket.localPort ?? ''));
  out.push('x-forwarded-proto', proto, 'x-forwarded-scheme', proto, 'x-scheme', proto);
  return out;
}

/** The first value of a field in a raw header list (names in any case), or undefined. */
function rawField(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}

/** Every value of a list field (Connection may come more than once), joined as one list. */
function rawFieldJoined(raw: readonly string[], lowerName: string): string | undefined {
  let joined: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) joined = joined === undefined ? raw[i + 1] : `${joined}, ${raw[i + 1]}`;
  }
  return joined;
}

/** Random bytes for request IDs, drawn 256 IDs at a time: one getrandom per request cost 3% of the proxy. */
const idPool = Buffer.alloc(16 * 256);
let idNext = idPool.length;

/** 16 random bytes in hex, as nginx's $request_id. */
function newRequestId(): string {
  if (idNext === idPool.length) {
    randomFillSync(idPool);
    idNext = 0;
  }
  idNext += 16;
  return idPool.toString('hex', idNext - 16, idNext);
}

/** The backend's fields as it sent them, without hop-by-hop ones, with the proxy as the Server. */
function responseHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || name === 'server') continue;
    out.push(raw[i], raw[i + 1]);
  }
  out.push('server', SERVER);
  return out;
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
  readonly plain: Server;
  readonly tls: HttpsServer;
  readonly health: Server;
  /** After a configuration change: clients without SNI get the (new) default certificate. */
  refreshDefaultCertificate(): void;
  close(): Promise<void>;
}

/** The proxy's three listeners: HTTP, HTTPS (certificate by SNI) and /healthz. Port 0 picks one. */
export async function serveProxy(proxy: IngressProxy, ports: { http: number; https: number; healthz: number }, host = '0.0.0.0'): Promise<ProxyServers> {
  const onClientError = (err: NodeJS.ErrnoException, socket: Socket) => {
    proxy.counters.badRequests++;
    if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  };
  const plain = createServer((req, res) => proxy.handle(req, res, false));
  const tls = createHttpsServer({ SNICallback: (name, cb) => cb(null, proxy.secureContext(name)), ...proxy.defaultPem }, (req, res) => proxy.handle(req, res, true));
  for (const server of [plain, tls]) {
    server.keepAliveTimeout = 75_000; // nginx's keepalive_timeout
    server.headersTimeout = 60_000;
    server.on('clientError', onClientError);
  }
  plain.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxy.upgrade(req, socket, head, false));
  tls.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxy.upgrade(req, socket, head, true));
  const health = createServer((req, res) => {
    const ok = req.url === '/healthz';
    res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(ok ? 'ok\n' : 'not found\n');
  });
  const listen = (server: Server | HttpsServer, port: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
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
      for (const server of [plain, tls, health]) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
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
