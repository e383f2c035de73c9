/**
 * `podwire ui`: the web view's server, on Node's own http, loopback only unless told
 * otherwise. It serves the page (built from web/ at build time, nothing from elsewhere)
 * and its API (documented in README.md, "The web view"):
 *
 *   GET /api              the routes below, as JSON
 *   GET /api/cluster      the map: nodes with their pods, bridge and VTEP, Services with endpoints
 *   GET /api/trace        the life of a packet: ?from=NS/POD|outside:IP&to=IP:PORT[/udp]|NAME:PORT
 *   GET /api/flows        recent flows: ?last=N&edge=FROM>TO
 *   GET /api/events       Server-Sent Events: `cluster` (the map, when it changes), `flows`, `nodes`
 *   GET /api/capture      pcapng of the next N seconds: ?pod=NS/NAME|node=NAME[&iface=][&filter=][&seconds=N]
 *
 * Every answer to a bad request is a 4xx with `{"error": "..."}`; a node that fails to
 * answer is a 502 with its message. Nothing a request carries can make the server throw:
 * each handler's failure is caught and answered.
 *
 * Only root's loopback connections and requests addressed to the server reach the routes
 * (access.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatIpv4, parseIpv4 } from '../packet/addr.js';
import { callControl, ControlError, ControlUnreachable, streamControl } from '../node/control.js';
import { addressedToUs, listenForRoot, type SocketOwnerReader } from './access.js';
import type { NodeOps } from '../node/control-protocol.js';
import { buildClusterMap, type ClusterMap } from './map.js';
import { FlowHub, type HubFlow } from './flow-hub.js';
import { ApiError, noParameters, parseCaptureQuery, parseFlowsQuery, parseTraceQuery, RECENT_FLOWS, type TraceQuery } from './requests.js';
import { tracePath } from './trace-path.js';
import { searchCandidates } from './search.js';
import { podResolverConfig, type PodDnsSettings } from '../cluster/resolv.js';
import type { ClusterSnapshot, ClusterSource } from './source.js';

export const UI_HOST = '127.0.0.1';

export interface UiServerOptions {
  readonly port: number;
  readonly address?: string;
  /** How often the map is read again (ms): a change reaches the page within this and a round trip. */
  readonly refreshMs?: number;
  readonly log?: (line: string) => void;
  /**
   * Who may connect over loopback (access.ts): the uid owning the client's socket, read
   * from the kernel's TCP tables unless a test gives its own reader.
   */
  readonly socketOwner?: SocketOwnerReader;
}

export interface UiServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** The package's root: this file runs as dist/src/ui/server.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The page's files: what the browser asks for, and where the package holds it. */
const ASSETS: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'web/static/index.html', type: 'text/html; charset=utf-8' },
  '/style.css': { file: 'web/static/style.css', type: 'text/css; charset=utf-8' },
  '/app.js': { file: 'dist/web/app.js', type: 'text/javascript; charset=utf-8' },
  '/draw.js': { file: 'dist/web/draw.js', type: 'text/javascript; charset=utf-8' },
};

const ROUTES = {
  '/api': 'this list',
  '/api/cluster': 'the cluster map',
  '/api/trace': 'the life of a packet: from=NS/POD|outside:IP, to=IP:PORT[/tcp|udp]|NAME:PORT[/tcp|udp], node=NAME (where an outside packet enters), sport=N',
  '/api/flows': 'recent flows: last=N (default 100), edge=FROM>TO',
  '/api/events': 'Server-Sent Events: cluster, flows, nodes',
  '/api/capture': 'pcapng of the next seconds: pod=NS/NAME or node=NAME, iface=IFACE, filter=EXPR, seconds=N (1 to 60, default 5)',
};

/** Captures at once: each holds one of a node's 16 control connections and up to 4 MiB of its memory. */
const MAX_CAPTURES = 4;
/** Pages listening at once; each costs a copy of every flow event written to it. */
const MAX_EVENT_STREAMS = 32;

/** How often the map is read while no page listens: the flows of a node that came or went are followed this late. */
const IDLE_REFRESH_MS = 5000;

/** A stream of the capture or SSE ended because its reader went away, or its time is up. */
class StreamDone extends Error {}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) }).end(text);
}

export async function serveUi(source: ClusterSource, options: UiServerOptions): Promise<UiServer> {
  const host = options.address ?? UI_HOST;
  const log = options.log ?? (() => undefined);
  const refreshMs = options.refreshMs ?? 400;
  /** The port bound (options.port may be 0): requests must name it. */
  let port = options.port;
  const hub = new FlowHub((node, query, onChunk) => {
    const socket = source.nodeSocket(node);
    if (socket === undefined) return Promise.reject(new ControlError(`node ${node} does not run on this machine`));
    return streamControl(socket, 'observe', query, onChunk, 10_000);
  }, RECENT_FLOWS);
  const sse = new Set<ServerResponse>();
  let map: ClusterMap | undefined;
  /** The map as last sent ('' before the first read). */
  let mapText = '';
  let snapshot: ClusterSnapshot | undefined;

  /** Pages that lost an event because they did not keep up: their next write starts with the whole map again. */
  const behind = new WeakSet<ServerResponse>();
  const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const sendFrame = (res: ServerResponse, event: string, text: string): void => {
    if (res.writableNeedDrain) {
      behind.add(res);
      return;
    }
    if (behind.delete(res) && event !== 'cluster') res.write(`event: cluster\ndata: ${mapText || 'null'}\n\n`);
    res.write(text);
  };
  const send = (res: ServerResponse, event: string, data: unknown): void => sendFrame(res, event, frame(event, data));
  /** Encoded once for every page listening. */
  const broadcast = (event: string, data: unknown): void => {
    if (sse.size === 0) return;
    const text = frame(event, data);
    for (const res of sse) sendFrame(res, event, text);
  };
  hub.subscribe((flows: readonly HubFlow[]) => broadcast('flows', flows));

  const refresh = async (): Promise<ClusterSnapshot | undefined> => {
    const next = await source.snapshot();
    snapshot = next;
    const nextMap = next === undefined ? undefined : buildClusterMap(source.name, next.cluster, next.status);
    const text = JSON.stringify(nextMap ?? null);
    if (text !== mapText) {
      mapText = text;
      map = nextMap;
      broadcast('cluster', map ?? null);
    }
    hub.follow(next === undefined ? [] : next.status.nodes.filter((n) => n.state === 'up' && source.nodeSocket(n.name) !== undefined).map((n) => n.name));
    return next;
  };
  /** The read under way: the timer, the watch and requests all wait for the same one. */
  let reading: Promise<ClusterSnapshot | undefined> | undefined;
  /** A change was seen while a read was under way: read again after it. */
  let again = false;
  let refreshedAt = 0;
  const refreshOnce = (): Promise<ClusterSnapshot | undefined> => {
    if (reading !== undefined) return reading;
    refreshedAt = Date.now();
    reading = refresh().finally(() => {
      reading = undefined;
      if (again) {
        again = false;
        refreshNow();
      }
    });
    return reading;
  };
  const refreshNow = (): void => {
    if (reading !== undefined) {
      again = true;
      return;
    }
    refreshOnce().catch((err: Error) => log(`ui: reading the cluster failed: ${err.message}`));
  };
  const timer = setInterval(() => {
    // With no page listening, the nodes are asked only often enough to keep following the right ones.
    if (sse.size === 0 && Date.now() - refreshedAt < IDLE_REFRESH_MS) return;
    if (reading === undefined) refreshNow();
  }, refreshMs);
  const unwatch = source.watch?.(refreshNow);
  await refresh().catch((err: Error) => log(`ui: reading the cluster failed: ${err.message}`));

  const current = async (): Promise<ClusterSnapshot> => {
    const fresh = snapshot !== undefined && (sse.size > 0 || Date.now() - refreshedAt < refreshMs);
    const s = fresh ? snapshot : await refreshOnce();
    if (s === undefined) throw new ApiError(503, `cluster ${source.name} is not running`);
    return s;
  };

  const socketOf = (node: string): string => {
    const socket = source.nodeSocket(node);
    if (socket === undefined) throw new ApiError(404, `node ${node} is not reachable from this machine`);
    return socket;
  };

  /** A node's refusal is the request's fault (400); a node that cannot be reached, the server's (502). */
  const nodeFailure = (node: string, socket: string, err: unknown): unknown => {
    if (err instanceof ControlUnreachable) return new ApiError(502, `node ${node} did not answer: ${err.message.startsWith(socket) ? err.message.slice(socket.length + 2) : err.message}`);
    return err instanceof ControlError ? new ApiError(400, `node ${node}: ${err.message}`) : err;
  };

  const call = async <Op extends keyof NodeOps>(node: string, op: Op, args: NodeOps[Op]['args']): Promise<NodeOps[Op]['result']> => {
    const socket = socketOf(node);
    try {
      return await callControl(socket, op, args, 10_000);
    } catch (err) {
      throw nodeFailure(node, socket, err);
    }
  };

  /** A DNS name as the source pod's resolver takes it (its resolv.conf's search list and ndots), asked of the cluster DNS. */
  const resolveName = async (s: ClusterSnapshot, name: string, pod: PodDnsSettings, node: string): Promise<number> => {
    const status = await call(node, 'status', {});
    if (status.dns === undefined) throw new ApiError(502, `node ${node} serves no DNS`);
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${status.dns.port}`]);
    const candidates = searchCandidates(name, podResolverConfig(pod, s.cluster.settings));
    for (const candidate of candidates) {
      const found = await resolver.resolve4(candidate).catch(() => [] as string[]);
      const addr = found.length > 0 ? parseIpv4(found[0]) : undefined;
      if (addr !== undefined) return addr;
    }
    throw new ApiError(404, `${name}: the cluster DNS has no address for it (asked ${candidates.join(', ')})`);
  };

  const trace = async (query: TraceQuery) => {
    const s = await current();
    const namespace = query.from.kind === 'pod' ? query.from.namespace : 'default';
    const entry = query.from.kind === 'pod' ? s.cluster.pods.find((p) => p.namespace === namespace && p.name === (query.from as { name: string }).name)?.node : (query.node ?? s.cluster.nodes[0]?.name);
    if (entry === undefined) throw new ApiError(404, query.from.kind === 'pod' ? `pod ${namespace}/${query.from.name} is not in the cluster` : 'the cluster has no node');
    // An outside client has no resolv.conf of the cluster's: it is asked as a pod of the default namespace would ask.
    const asker = (query.from.kind === 'pod' ? s.cluster.pods.find((p) => p.namespace === namespace && p.name === (query.from as { name: string }).name) : undefined) ?? { namespace, dnsPolicy: 'ClusterFirst' as const };
    const dst = query.to.kind === 'ip' ? query.to.ip : await resolveName(s, query.to.name, asker, entry);
    return tracePath(
      s.cluster,
      {
        from: query.from,
        dst,
        port: query.port,
        proto: query.proto,
        ...(query.sport !== undefined ? { sport: query.sport } : {}),
        ...(query.node !== undefined ? { node: query.node } : {}),
        ...(query.to.kind === 'name' ? { toText: `${query.to.name.replace(/\.$/, '')} (${formatIpv4(dst)})` } : {}),
        underlayPorts: new Map(s.status.nodes.flatMap((n) => (n.underlayPort !== undefined ? [[n.name, n.underlayPort] as const] : []))),
      },
      (node, args) => (source.nodeSocket(node) === undefined ? Promise.resolve(undefined) : call(node, 'trace', args)),
    );
  };

  let capturing = 0;
  const capture = async (req: IncomingMessage, res: ServerResponse, params: URLSearchParams): Promise<void> => {
    const query = parseCaptureQuery(params);
    // Each capture holds a connection to its node and a buffer there: the nodes' sockets stay free for the CLI.
    if (capturing >= MAX_CAPTURES) throw new ApiError(429, `${MAX_CAPTURES} captures are running already: wait for one to end`);
    capturing++;
    try {
      await captureFor(req, res, query);
    } finally {
      capturing--;
    }
  };

  const captureFor = async (req: IncomingMessage, res: ServerResponse, query: ReturnType<typeof parseCaptureQuery>): Promise<void> => {
    const s = await current();
    let node = query.node;
    if (query.pod !== undefined) {
      const [namespace, name] = query.pod.split('/');
      node = s.cluster.pods.find((p) => p.namespace === namespace && p.name === name)?.node;
      if (node === undefined) throw new ApiError(404, `pod ${query.pod} is not in the cluster`);
    } else if (!s.cluster.nodes.some((n) => n.name === node)) {
      throw new ApiError(404, `node ${node} is not in the cluster`);
    }
    const socket = socketOf(node!);
    const deadline = Date.now() + query.seconds * 1000;
    let gone = false;
    req.on('close', () => (gone = true));
    const fileName = `${(query.pod ?? `${node}${query.iface !== undefined ? `-${query.iface}` : ''}`).replace(/[^A-Za-z0-9._-]+/g, '_')}.pcapng`;
    try {
      await streamControl(
        socket,
        'capture',
        { ...(query.pod !== undefined ? { pod: query.pod } : {}), ...(query.iface !== undefined ? { iface: query.iface } : {}), ...(query.filter !== undefined ? { filter: query.filter } : {}) },
        async (_counts, data) => {
          if (gone) throw new StreamDone();
          if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-pcapng', 'content-disposition': `attachment; filename="${fileName}"`, 'cache-control': 'no-store' });
          if (data !== undefined && data.length > 0 && !res.write(data)) await new Promise((r) => res.once('drain', r));
          // The node sends at least once a second: the capture ends on a whole chunk within a second of its time.
          if (Date.now() >= deadline) throw new StreamDone();
        },
        10_000,
      );
    } catch (err) {
      if (!(err instanceof StreamDone)) {
        if (!res.headersSent) throw nodeFailure(node!, socket, err);
        log(`ui: capture on ${node} ended: ${(err as Error).message}`);
      }
    }
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-pcapng', 'content-disposition': `attachment; filename="${fileName}"` });
    res.end();
  };

  const events = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (sse.size >= MAX_EVENT_STREAMS) throw new ApiError(503, `${MAX_EVENT_STREAMS} pages are listening already: close one`);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    sse.add(res);
    const beat = setInterval(() => {
      send(res, 'nodes', { unavailable: Object.fromEntries(hub.unavailable) });
    }, 5000);
    req.on('close', () => {
      clearInterval(beat);
      sse.delete(res);
    });
    send(res, 'cluster', map ?? null);
    send(res, 'flows', hub.recent(RECENT_FLOWS));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // A page of another site whose name it points at 127.0.0.1 (DNS rebinding) reaches the server with its own name as Host.
    if (!addressedToUs(req.headers.host, host, UI_HOST, port)) {
      throw new ApiError(403, `the page is served as http://${host}:${port}/ only (Host ${JSON.stringify((req.headers.host ?? '').slice(0, 100))})`);
    }
    const url = new URL(req.url ?? '/', 'http://ui.invalid');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new ApiError(405, `${req.method} is not served: the API is GET only`);
    }
    const asset = Object.hasOwn(ASSETS, url.pathname) ? ASSETS[url.pathname] : undefined;
    if (asset !== undefined) {
      const body = await readFile(join(ROOT, asset.file)).catch(() => undefined);
      if (body === undefined) throw new ApiError(500, `${asset.file} is missing from the package: build it with npm run build`);
      // The page runs its own scripts only and talks to this server only, whatever a name or a flow line holds.
      res
        .writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', 'content-length': body.length, 'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", 'x-content-type-options': 'nosniff' })
        .end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const params = url.searchParams;
    switch (url.pathname) {
      case '/favicon.ico':
        res.writeHead(204).end();
        return;
      case '/api':
        noParameters(params);
        return json(res, 200, { cluster: source.name, routes: ROUTES });
      case '/api/cluster': {
        noParameters(params);
        await current();
        return json(res, 200, map ?? null);
      }
      case '/api/trace':
        return json(res, 200, await trace(parseTraceQuery(params)));
      case '/api/flows': {
        const q = parseFlowsQuery(params);
        return json(res, 200, { flows: hub.recent(q.last, q.edge), unavailable: Object.fromEntries(hub.unavailable) });
      }
      case '/api/events':
        noParameters(params);
        return events(req, res);
      case '/api/capture':
        return capture(req, res, params);
      default:
        throw new ApiError(404, `no such page or route ${JSON.stringify(url.pathname.slice(0, 100))} (the API is under /api)`);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (err instanceof ApiError) return json(res, err.status, { error: err.message });
      log(`ui: ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      json(res, 500, { error: (err as Error).message ?? String(err) });
    });
  });
  server.keepAliveTimeout = 5000;
  const listener = await listenForRoot(server, host, options.port, log, options.socketOwner).catch((err: Error) => {
    clearInterval(timer);
    unwatch?.();
    hub.close();
    throw err;
  });
  port = listener.port;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () =>
      new Promise<void>((resolveClose) => {
        clearInterval(timer);
        unwatch?.();
        hub.close();
        for (const res of sse) res.end();
        void listener.close().then(resolveClose);
      }),
  };
}
