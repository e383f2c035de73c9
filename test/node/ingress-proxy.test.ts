/**
 * The ingress proxy on its own, on loopback, against backends of the test's making: the
 * headers a backend sees, keep-alive on both sides (one upstream connection per client
 * connection), bodies streamed both ways, its own answers (404, /healthz, 503, 502, 504,
 * the 308 to HTTPS), a configuration swapped under a request in flight, TLS by SNI with a
 * Secret's certificate and the default one otherwise, and bad requests answered 400.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { BackendConfig, IngressProxyConfig, LocationConfig } from '../../src/ingress/config.js';
import { fakeCertificate, IngressProxy, serveProxy, type ProxyServers } from '../../src/node/workloads/ingress-proxy.js';

interface Backend {
  readonly server: Server;
  readonly port: number;
  /** Each request's client port, method, url and headers, in order. */
  readonly seen: { port: number; url: string; headers: IncomingMessage['headers'] }[];
}

async function backend(handler: (req: IncomingMessage, res: ServerResponse) => void = echo): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const server = createServer((req, res) => {
    seen.push({ port: req.socket.remotePort ?? 0, url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function echo(req: IncomingMessage, res: ServerResponse): void {
  const body = `${req.method} ${req.url}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-backend': 'echo' });
  res.end(body);
}

function service(name: string, port: number, ready = 1): BackendConfig {
  return { kind: 'service', service: `default/${name}`, port: 80, target: { address: '127.0.0.1', port }, ready };
}

function location(path: string, backend: BackendConfig, extra: Partial<LocationConfig> = {}): LocationConfig {
  return { path, match: 'Prefix', backend, ingress: 'default/i', sslRedirect: true, connectTimeoutMs: 2000, readTimeoutMs: 5000, ...extra };
}

function config(locations: LocationConfig[], extra: Partial<IngressProxyConfig> = {}): IngressProxyConfig {
  return {
    // A server always has a root location, as servers.ts makes them.
    servers: [{ host: 'app.test', locations: locations.some((l) => l.path === '/') ? locations : [location('/', { kind: 'default' }, { ingress: '' }), ...locations] }],
    catchAll: { host: '_', locations: [location('/', { kind: 'default' }, { ingress: '' })] },
    certificates: {},
    ...extra,
  };
}

async function start(cfg: IngressProxyConfig, fake?: { cert: string; key: string }): Promise<{ proxy: IngressProxy; servers: ProxyServers; http: number; https: number }> {
  const proxy = new IngressProxy(fake);
  proxy.configure(JSON.stringify(cfg));
  const servers = await serveProxy(proxy, { http: 0, https: 0, healthz: 0 }, '127.0.0.1');
  servers.refreshDefaultCertificate();
  return { proxy, servers, http: (servers.plain.address() as AddressInfo).port, https: (servers.tls.address() as AddressInfo).port };
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  socket: Socket;
}

function get(port: number, path: string, headers: Record<string, string> = {}, agent?: Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: 'app.test', ...headers }, agent: agent ?? false }, (res) => {
      const socket = res.socket;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, socket }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the backend sees the Host kept, the X-Forwarded-* and X-Real-IP set, hop-by-hop fields dropped, a client X-Request-ID kept', async (t) => {
  const b = await backend();
  const { servers, http } = await start(config([location('/', service('web', b.port))]));
  t.teardown(async () => {
    await servers.close();
    b.server.close();
  });
  const r = await get(http, '/a?b=1', { 'x-forwarded-for': '6.6.6.6', 'keep-alive': 'timeout=5', 'x-custom': 'yes', connection: 'x-custom' });
  t.is(r.status, 200);
  t.is(r.body, 'GET /a?b=1\n');
  t.is(r.headers['x-backend'], 'echo', "the backend's own fields come back");
  t.is(r.headers.server, 'podwire-ingress', 'with the proxy as the Server, as nginx answers');
  const h = b.seen[0].headers;
  t.is(h.host, 'app.test');
  t.is(h['x-forwarded-for'], '127.0.0.1', "the client as the proxy saw it, not what it claimed");
  t.is(h['x-real-ip'], '127.0.0.1');
  t.is(h['x-forwarded-host'], 'app.test');
  t.is(h['x-forwarded-port'], String(http));
  t.is(h['x-forwarded-proto'], 'http');
  t.regex(String(h['x-request-id']), /^[0-9a-f]{32}$/);
  t.is(h['keep-alive'], undefined);
  t.is(h['x-custom'], undefined, 'a field the Connection header names is hop-by-hop too');
  await get(http, '/', { 'x-request-id': 'abc-123' });
  t.is(b.seen[1].headers['x-request-id'], 'abc-123');
});

test('keep-alive on both sides: one client connection keeps one backend connection (until the configuration changes); another client gets its own', async (t) => {
  const b = await backend();
  const { proxy, servers, http } = await start(config([location('/', service('web', b.port))]));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await servers.close();
    b.server.close();
  });
  const first = await get(http, '/1', {}, agent);
  const second = await get(http, '/2', {}, agent);
  t.is(first.socket.localPort, second.socket.localPort, 'the client connection was kept');
  t.is(b.seen[0].port, b.seen[1].port, 'and so was its backend connection');
  await get(http, '/3');
  t.not(b.seen[2].port, b.seen[0].port, 'a new client connection is a new connection to the Service, for kube-proxy to place');
  proxy.configure(JSON.stringify(config([location('/', service('web', b.port)), location('/new', service('web', b.port))])));
  await get(http, '/4', {}, agent);
  t.not(b.seen[3].port, b.seen[0].port, 'after a change, the kept client connection gets a new backend connection, placed among the endpoints of now');
  t.is((await get(http, '/5', {}, agent)).socket.localPort, first.socket.localPort, 'the client connection itself is kept');
  t.is(b.seen[4].port, b.seen[3].port);
});

test('bodies stream both ways: the backend reads the first chunk of an upload before the client has sent the rest, and the client the first part of the answer', async (t) => {
  let firstChunk: () => void = () => undefined;
  const gotFirst = new Promise<void>((resolve) => (firstChunk = resolve));
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const b = await backend((req, res) => {
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      firstChunk();
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(`got ${total}\n`);
      void released.then(() => res.end('done\n'));
    });
  });
  const { servers, http } = await start(config([location('/', service('up', b.port))]));
  t.teardown(async () => {
    await servers.close();
    b.server.close();
  });
  const req = request({ host: '127.0.0.1', port: http, method: 'POST', path: '/upload', headers: { host: 'app.test', 'transfer-encoding': 'chunked' }, agent: false });
  req.write(Buffer.alloc(64 * 1024, 1));
  await gotFirst; // never resolves if the proxy buffered the upload until its end
  req.end(Buffer.alloc(1000, 2));
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const [part] = (await once(res, 'data')) as [Buffer];
  t.is(part.toString(), `got ${64 * 1024 + 1000}\n`, 'the first part arrives while the backend still holds the rest');
  release();
  let rest = '';
  for await (const c of res) rest += String(c);
  t.is(rest, 'done\n');
});

test("the controller's own answers: 404 and /healthz from the default backend, 503 without endpoints or Service, 502 refused, 504 on a silent backend", async (t) => {
  const closed = await backend();
  const closedPort = closed.port;
  await new Promise((r) => closed.server.close(r));
  const silent = await backend(() => undefined);
  const { proxy, servers, http } = await start(
    config([
      location('/empty', service('empty', 1, 0)),
      location('/missing', { kind: 'service', service: 'default/missing', port: 80, ready: 0, problem: 'service default/missing does not exist' }),
      location('/refused', service('gone', closedPort)),
      location('/silent', service('silent', silent.port), { readTimeoutMs: 300 }),
    ]),
  );
  t.teardown(async () => {
    await servers.close();
    silent.server.closeAllConnections();
    silent.server.close();
  });
  t.deepEqual(await status(http, '/', 'unknown.test'), [404, 'default backend - 404\n']);
  t.deepEqual(await status(http, '/healthz', 'unknown.test'), [200, 'ok\n']);
  t.deepEqual(await status(http, '/empty'), [503, '503 Service Unavailable: service default/empty has no ready endpoints\n']);
  t.deepEqual(await status(http, '/missing'), [503, '503 Service Unavailable: service default/missing does not exist\n']);
  t.deepEqual(await status(http, '/refused'), [502, `502 Bad Gateway: default/gone at 127.0.0.1:${closedPort} refused the connection\n`]);
  t.deepEqual(await status(http, '/silent'), [504, `504 Gateway Timeout: default/silent at 127.0.0.1:${silent.port} sent nothing for 300 ms\n`]);
  t.is(proxy.counters.upstreamErrors, 2);
  const health = await get((servers.health.address() as AddressInfo).port, '/healthz');
  t.is(health.status, 200);
});

async function status(port: number, path: string, host = 'app.test'): Promise<[number, string]> {
  const r = await get(port, path, { host });
  return [r.status, r.body];
}

test('a new configuration takes over for new requests while a request in flight finishes on its old route', async (t) => {
  let finish: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (finish = resolve));
  const old = await backend((req, res) => void held.then(() => echo(req, res)));
  const fresh = await backend((_req, res) => {
    res.writeHead(200, { 'content-length': 6 });
    res.end('fresh\n');
  });
  const { proxy, servers, http } = await start(config([location('/', service('old', old.port))]));
  t.teardown(async () => {
    await servers.close();
    old.server.close();
    fresh.server.close();
  });
  const inFlight = get(http, '/slow');
  while (old.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
  t.true(proxy.configure(JSON.stringify(config([location('/', service('fresh', fresh.port))]))));
  t.false(proxy.configure(JSON.stringify(config([location('/', service('fresh', fresh.port))]))), 'the same text again changes nothing');
  t.false(proxy.configure('{"servers": ['), 'a half-written file keeps the current configuration');
  t.is((await get(http, '/')).body, 'fresh\n');
  finish();
  const r = await inFlight;
  t.deepEqual([r.status, r.body], [200, 'GET /slow\n']);
});

function openssl(dir: string, name: string): { cert: string; key: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
}

function tlsGet(port: number, servername: string | undefined, host: string): Promise<{ status: number; body: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', headers: { host }, rejectUnauthorized: false, agent: false, ...(servername !== undefined ? { servername } : {}) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, subject: String((res.socket as TLSSocket).getPeerCertificate().subject.CN) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test("TLS: the Secret's certificate for its host by SNI, the default one otherwise; plain HTTP to a TLS host gets 308 unless ssl-redirect is off", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-ingress-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const app = openssl(dir, 'app.test');
  const fake = fakeCertificate(() => undefined);
  t.not(fake, undefined, 'openssl makes the fake certificate');
  const b = await backend();
  const cfg: IngressProxyConfig = {
    servers: [
      { host: 'app.test', tls: { secret: 'default/app-tls' }, locations: [location('/', service('web', b.port))] },
      { host: 'open.test', tls: {}, locations: [location('/', service('web', b.port), { sslRedirect: false })] },
    ],
    catchAll: { host: '_', locations: [location('/', { kind: 'default' }, { ingress: '' })] },
    certificates: { 'default/app-tls': app },
  };
  const { servers, http, https } = await start(cfg, fake);
  t.teardown(async () => {
    await servers.close();
    b.server.close();
  });
  const secure = await tlsGet(https, 'app.test', 'app.test');
  t.deepEqual(secure, { status: 200, body: 'GET /\n', subject: 'app.test' });
  t.is(b.seen[0].headers['x-forwarded-proto'], 'https');
  t.is((await tlsGet(https, 'other.test', 'other.test')).subject, 'Kubernetes Ingress Controller Fake Certificate');
  t.is((await tlsGet(https, undefined, 'other.test')).subject, 'Kubernetes Ingress Controller Fake Certificate', 'no SNI: the default certificate');
  const redirect = await get(http, '/x?y=1', { host: 'app.test' });
  t.is(redirect.status, 308);
  t.is(redirect.headers.location, 'https://app.test/x?y=1');
  t.is((await get(http, '/', { host: 'open.test' })).status, 200, 'ssl-redirect "false"');
});

test('a request that is not HTTP is answered 400 and counted', async (t) => {
  const { proxy, servers, http } = await start(config([]));
  t.teardown(() => servers.close());
  const socket = connect(http, '127.0.0.1');
  socket.end('NOT HTTP AT ALL\r\n\r\n');
  let text = '';
  for await (const c of socket) text += String(c);
  t.regex(text, /^HTTP\/1\.1 400 Bad Request/);
  t.is(proxy.counters.badRequests, 1);
});

test('an Upgrade (WebSocket) request is routed, gets the forwarded fields, and its connection is spliced both ways; without a backend it is answered and closed', async (t) => {
  const b = await backend();
  b.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    b.seen.push({ port: req.socket.remotePort ?? 0, url: req.url ?? '', headers: req.headers });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: Upgrade\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  const { servers, http } = await start(config([location('/ws', service('ws', b.port))]));
  t.teardown(async () => {
    await servers.close();
    b.server.closeAllConnections();
    b.server.close();
  });
  const req = request({ host: '127.0.0.1', port: http, path: '/ws/chat', headers: { host: 'app.test', connection: 'Upgrade', upgrade: 'echo' }, agent: false });
  req.end();
  const [res, socket] = (await once(req, 'upgrade')) as [IncomingMessage, Socket];
  t.is(res.statusCode, 101);
  socket.write('ping');
  const [echoed] = (await once(socket, 'data')) as [Buffer];
  t.is(echoed.toString(), 'ping');
  socket.destroy();
  t.like(b.seen[0], { url: '/ws/chat', headers: { upgrade: 'echo', connection: 'upgrade', host: 'app.test', 'x-forwarded-for': '127.0.0.1' } });
  const lost = request({ host: '127.0.0.1', port: http, path: '/elsewhere', headers: { host: 'app.test', connection: 'Upgrade', upgrade: 'echo' }, agent: false });
  lost.end();
  const [answer] = (await once(lost, 'response')) as [IncomingMessage];
  t.is(answer.statusCode, 404);
});
