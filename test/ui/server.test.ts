/**
 * The web view's server against nodes that speak the real control protocol (serveControl
 * with the node's own argument checks) and answer with canned results: every route, its
 * 4xx answers, the SSE stream, a capture download and a node that does not answer.
 */
import test from 'ava';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { serveControl, type ControlHandlers } from '../../src/node/control.js';
import { NODE_OP_ARGS, type NodeOps } from '../../src/node/control-protocol.js';
import type { NodeStatus } from '../../src/node/agent.js';
import type { Flow } from '../../src/observe/flow.js';
import type { Cluster } from '../../src/cluster/model.js';
import { serveUi, type UiServer } from '../../src/ui/server.js';
import type { ClusterSnapshot } from '../../src/ui/source.js';
import { allReady, demoCluster } from './fixtures.js';

const cluster = demoCluster();
const client = cluster.pods.find((p) => p.name === 'client')!;
const backend = cluster.pods.find((p) => p.labels.app === 'webui' && p.node !== client.node)!;
const dir = mkdtempSync(join(tmpdir(), 'pw-ui-'));
const sockets = new Map(cluster.nodes.map((n) => [n.name, join(dir, `${n.name}.sock`)]));
let snapshot: ClusterSnapshot = { cluster, status: allReady(cluster) };
let ui: UiServer;
const closers: (() => void)[] = [];

const translated: Flow = {
  time: '2026-12-06T21:02:31.871470648Z',
  verdict: 'TRANSLATED',
  IP: { source: '10.244.2.3', destination: '10.244.1.3' },
  source: { namespace: 'default', pod_name: 'client' },
  destination: { namespace: 'default', pod_name: backend.name },
  destination_service: { name: 'clusterip-service', namespace: 'default' },
  Type: 'L3_L4',
  event_type: { type: 7 },
  is_reply: false,
  Summary: 'TCP Flags: SYN',
};
/** Whole 4-byte pieces a node's capture attaches to its chunks, in turn. */
const PCAP_CHUNKS = [Buffer.from('0a0b0c0a', 'hex'), Buffer.from('00000001', 'hex'), Buffer.from('00000002', 'hex')];

function fakeNode(name: string): ControlHandlers<NodeOps> {
  const never = () => {
    throw new Error('not asked of the web view');
  };
  return {
    status: () => ({ name, pods: [] }) as unknown as NodeStatus,
    rules: never,
    conntrack: never,
    exec: never,
    trace: (args) =>
      name === client.node
        ? { stages: [{ stage: 'service-nat', detail: [`DNAT to ${backend.ip}`] }], verdict: 'delivered', outcome: 'encapsulated', packet: { src: client.ip, dst: backend.ip, sport: args.sport ?? 40000, dport: 80 }, egress: `node ${backend.node}` }
        : { stages: [{ stage: 'decap', detail: [args.from] }], verdict: 'delivered', outcome: 'to pod', packet: { src: args.src ?? 0, dst: args.dst, sport: args.sport ?? 0, dport: args.dport }, egress: `pod default/${backend.name}` },
    observe: async (query, out) => {
      // The client's node saw the connection; both send watermarks while nothing happens.
      const flows = name === client.node && query.since === undefined ? [{ at: Date.now() * 1000, flow: { ...translated, node_name: name } }] : [];
      await out.send({ flows, watermark: Date.now() * 1000 });
      for (let i = 0; i < 600; i++) {
        await sleep(100);
        await out.send({ flows: [], watermark: Date.now() * 1000 });
      }
      return { shown: flows.length, lost: 0, recorded: 1, capacity: 4096, suppressed: {} };
    },
    capture: async (_args, out) => {
      for (let i = 0; i < 100; i++) {
        await out.send({ records: i + 1, dropped: 0 }, PCAP_CHUNKS[i % PCAP_CHUNKS.length]);
        await sleep(300);
      }
      return { records: 100, dropped: 0, reason: 'done' };
    },
  };
}

test.before(async () => {
  for (const node of cluster.nodes) {
    const server = await serveControl(sockets.get(node.name)!, NODE_OP_ARGS, fakeNode(node.name));
    closers.push(() => server.close());
  }
  ui = await serveUi(
    { name: 'pwuitest', snapshot: async () => snapshot, nodeSocket: (node) => sockets.get(node) },
    { port: 0, refreshMs: 100 },
  );
});

test.after.always(async () => {
  await ui?.close();
  for (const close of closers) close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: ui.port, path, method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function getJson(path: string, method = 'GET'): Promise<{ status: number; body: any }> {
  const a = await get(path, method);
  assertJson(a);
  return { status: a.status, body: JSON.parse(a.body.toString('utf8')) };
}

function assertJson(a: Answer): void {
  if (!String(a.headers['content-type']).startsWith('application/json')) throw new Error(`not JSON: ${a.headers['content-type']} ${a.body.toString('utf8').slice(0, 200)}`);
}

/** Reads a Server-Sent Events stream until `until` says it has seen enough (or 5 s pass). */
function events(until: (seen: { event: string; data: any }[]) => boolean): Promise<{ event: string; data: any }[]> {
  return new Promise((resolve, reject) => {
    const seen: { event: string; data: any }[] = [];
    let buffered = '';
    const req = request({ host: '127.0.0.1', port: ui.port, path: '/api/events' }, (res) => {
      if (res.headers['content-type'] !== 'text/event-stream; charset=utf-8') reject(new Error(`content-type ${res.headers['content-type']}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) seen.push({ event, data: JSON.parse(data) });
        }
        if (until(seen)) {
          req.destroy();
          resolve(seen);
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(seen);
    }, 5000);
    req.on('close', () => clearTimeout(timer));
    req.on('error', () => undefined);
    req.end();
  });
}

test.serial('the API lists its routes, and the map is the demo: two nodes, four pods, the Service', async (t) => {
  const api = await getJson('/api');
  t.is(api.status, 200);
  t.deepEqual(Object.keys(api.body.routes), ['/api', '/api/cluster', '/api/trace', '/api/flows', '/api/events', '/api/capture']);
  const map = await getJson('/api/cluster');
  t.is(map.status, 200);
  t.deepEqual(map.body.nodes.map((n: { name: string }) => n.name), ['node-1', 'node-2']);
  t.is(map.body.nodes.flatMap((n: { pods: unknown[] }) => n.pods).length, 4);
  t.is(map.body.services[0].clusterIP, '10.100.100.100');
});

test.serial('a bad request gets a 4xx with a message, never a crash', async (t) => {
  const cases: [string, string, number, RegExp][] = [
    ['GET', '/api/trace', 400, /from is required/],
    ['GET', '/api/trace?from=client&to=10.100.100.100', 400, /expected IP:PORT/],
    ['GET', '/api/trace?from=nobody&to=10.100.100.100:80', 404, /pod default\/nobody is not in the cluster/],
    ['GET', '/api/trace?from=outside:192.0.2.9&to=192.0.2.11:30080&node=node-9', 404, /node node-9 is not in the cluster/],
    ['GET', '/api/cluster?verbose=1', 400, /unknown parameter "verbose" \(takes none\)/],
    ['GET', '/api/capture', 400, /give pod=NS\/NAME or node=NAME/],
    ['GET', '/api/capture?pod=default/nobody', 404, /pod default\/nobody is not in the cluster/],
    ['GET', '/api/capture?node=node-7', 404, /node node-7 is not in the cluster/],
    ['GET', '/api/capture?pod=client&filter=port%20banana', 400, /filter: /],
    ['GET', '/api/flows?last=1000000', 400, /last must be an integer from 0 to 2000/],
    ['GET', '/api/nothing', 404, /no such page or route "\/api\/nothing"/],
    ['GET', '/api/%ff%fe', 404, /no such page or route/],
    ['GET', '/../../etc/passwd', 404, /no such page or route/],
    ['POST', '/api/trace?from=client&to=10.100.100.100:80', 405, /POST is not served: the API is GET only/],
    ['DELETE', '/api/cluster', 405, /DELETE is not served/],
  ];
  for (const [method, path, status, message] of cases) {
    const a = await getJson(path, method);
    t.is(a.status, status, `${method} ${path}`);
    t.regex(a.body.error, message, `${method} ${path}`);
  }
  // Not even HTTP: Node's parser answers 400 and the server goes on.
  const garbage = await new Promise<string>((resolve) => {
    const s = connect(ui.port, '127.0.0.1', () => s.end('\x16\x03\x01 not http at all\r\n\r\n'));
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text));
  });
  t.regex(garbage, /^HTTP\/1\.1 400/);
  t.is((await get('/api')).status, 200);
});

test.serial('the life of a packet: traced on the client node, then on the backend node from the overlay', async (t) => {
  const a = await getJson('/api/trace?from=default/client&to=10.100.100.100:80');
  t.is(a.status, 200);
  t.deepEqual(a.body.path, ['pod:default/client', `node:${client.node}`, 'svc:default/clusterip-service', `node:${backend.node}`, `pod:default/${backend.name}`]);
  t.deepEqual(a.body.hops.map((h: { node: string; from: string }) => [h.node, h.from]), [
    [client.node, 'client'],
    [backend.node, `node:${client.node}`],
  ]);
  t.is(a.body.hops[1].result.stages[0].detail[0], `node:${client.node}`);
  t.is(a.body.verdict, 'delivered');
});

test.serial('a node that does not answer is a 502 naming it, and the others still answer', async (t) => {
  const saved = sockets.get(backend.node)!;
  sockets.set(backend.node, join(dir, 'gone.sock'));
  try {
    const a = await getJson('/api/trace?from=client&to=10.100.100.100:80');
    t.is(a.status, 502);
    t.regex(a.body.error, new RegExp(`node ${backend.node} did not answer: .*ENOENT`));
  } finally {
    sockets.set(backend.node, saved);
  }
  t.is((await getJson('/api/cluster')).status, 200);
});

test.serial('the event stream sends the map, then the flows with the edges they light and their observe line', async (t) => {
  const seen = await events((s) => s.some((e) => e.event === 'cluster') && s.some((e) => e.event === 'flows' && e.data.length > 0));
  const map = seen.find((e) => e.event === 'cluster')!.data;
  t.is(map.nodes.length, 2);
  const flow = seen.filter((e) => e.event === 'flows').flatMap((e) => e.data)[0];
  t.is(flow.node, client.node);
  t.deepEqual(flow.edges.map((e: { key: string }) => e.key), ['pod:default/client>svc:default/clusterip-service', `svc:default/clusterip-service>pod:default/${backend.name}`]);
  t.regex(flow.line, /\[node-\d\]: default\/client \(unknown\) -> default\/deploy-nginx-\S+ \(unknown\) .*TRANSLATED \(TCP Flags: SYN\)/);
  const byEdge = await getJson(`/api/flows?edge=${encodeURIComponent('pod:default/client>svc:default/clusterip-service')}`);
  t.is(byEdge.body.flows.length, 1);
  t.is((await getJson('/api/flows?edge=pod:default/x>pod:default/y')).body.flows.length, 0);
});

test.serial('the map follows the cluster: a pod deleted leaves the stream\'s next map within a second', async (t) => {
  const gone = cluster.pods.find((p) => p.labels.app === 'webui')!;
  const next: Cluster = { ...cluster, pods: cluster.pods.filter((p) => p !== gone) };
  const seen = events((s) => s.some((e) => e.event === 'cluster' && e.data.nodes.flatMap((n: { pods: unknown[] }) => n.pods).length === 3));
  await sleep(100);
  snapshot = { cluster: next, status: allReady(next) };
  const changed = Date.now();
  try {
    const got = await seen;
    t.true(got.some((e) => e.event === 'cluster' && e.data.nodes.flatMap((n: { pods: unknown[] }) => n.pods).length === 3));
    t.true(Date.now() - changed < 1000, `${Date.now() - changed} ms`);
  } finally {
    snapshot = { cluster, status: allReady(cluster) };
  }
});

test.serial('a capture downloads the pcapng the node streams, whole chunks, for the seconds asked', async (t) => {
  const started = Date.now();
  const a = await get('/api/capture?pod=default/client&seconds=1');
  const took = Date.now() - started;
  t.is(a.status, 200);
  t.is(a.headers['content-type'], 'application/x-pcapng');
  t.is(a.headers['content-disposition'], 'attachment; filename="default_client.pcapng"');
  const chunks = PCAP_CHUNKS;
  t.true(a.body.length > 0 && a.body.length % 4 === 0);
  for (let i = 0; i < a.body.length / 4; i++) t.deepEqual(a.body.subarray(i * 4, i * 4 + 4), chunks[i % chunks.length]);
  t.true(took >= 1000 && took < 5000, `${took} ms`);
});

test.serial('the page and its scripts are served from the package', async (t) => {
  const page = await get('/');
  t.is(page.status, 200);
  t.regex(page.body.toString('utf8'), /<script type="module" src="\/app.js"><\/script>/);
  t.regex(String(page.headers['content-security-policy']), /^default-src 'self';/);
  for (const asset of ['/app.js', '/draw.js', '/style.css']) t.is((await get(asset)).status, 200, asset);
  t.is((await get('/favicon.ico')).status, 204);
});

test.serial("a loopback connection from another user's socket is closed unanswered; root's and the server's own are served", async (t) => {
  const asked: number[] = [];
  let owner = 1000;
  const guarded = await serveUi(
    { name: 'pwuitest', snapshot: async () => snapshot, nodeSocket: (node) => sockets.get(node) },
    {
      port: 0,
      refreshMs: 1000,
      socketOwner: async (_addr, clientPort, serverAddr, serverPort) => {
        asked.push(clientPort);
        t.is(serverAddr, 0x7f000001);
        t.is(serverPort, guarded?.port ?? serverPort);
        return owner;
      },
    },
  );
  const fetchStatus = () =>
    new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port: guarded.port, path: '/api', agent: false }, (res) => {
        res.resume();
        resolve(String(res.statusCode));
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      req.end();
    });
  try {
    t.is(await fetchStatus(), 'ECONNRESET');
    owner = 0;
    t.is(await fetchStatus(), '200');
    owner = process.getuid?.() ?? 0;
    t.is(await fetchStatus(), '200');
    t.is(asked.length, 3);
  } finally {
    await guarded.close();
  }
});

test.serial('a request naming another host is refused (DNS rebinding); 127.0.0.1 and localhost are the page', async (t) => {
  const rebound = await get('/api/cluster', 'GET', { host: `attacker.example:${ui.port}` });
  t.is(rebound.status, 403);
  t.regex(JSON.parse(rebound.body.toString('utf8')).error, /the page is served as http:\/\/127\.0\.0\.1:\d+\/ only \(Host "attacker\.example:\d+"\)/);
  t.is((await get('/api/cluster', 'GET', { host: `localhost:${ui.port}` })).status, 200);
  t.is((await get('/api/cluster', 'GET', { host: 'localhost' })).status, 403);
});

test.serial('captures and listening pages are bounded: one more is a 429 or 503 saying why', async (t) => {
  const running = Array.from({ length: 4 }, () => get('/api/capture?pod=default/client&seconds=2'));
  await sleep(300);
  const fifth = await getJson('/api/capture?pod=default/client&seconds=1');
  t.is(fifth.status, 429);
  t.regex(fifth.body.error, /4 captures are running already/);
  for (const r of await Promise.all(running)) t.is(r.status, 200);
  t.is((await get('/api/capture?pod=default/client&seconds=1')).status, 200, 'a capture that ended makes room');
  const streams = Array.from({ length: 32 }, () => request({ host: '127.0.0.1', port: ui.port, path: '/api/events', agent: false }).on('error', () => undefined));
  for (const s of streams) s.end();
  await sleep(500);
  try {
    const more = await getJson('/api/events');
    t.is(more.status, 503);
    t.regex(more.body.error, /32 pages are listening already/);
  } finally {
    for (const s of streams) s.destroy();
  }
});

test.serial("a source's change notice reaches the page at once, without waiting for the next poll", async (t) => {
  let changed: (() => void) | undefined;
  let current: ClusterSnapshot = { cluster, status: allReady(cluster) };
  const watched = await serveUi(
    { name: 'pwuitest', snapshot: async () => current, nodeSocket: (node) => sockets.get(node), watch: (f) => ((changed = f), () => (changed = undefined)) },
    { port: 0, refreshMs: 60_000, socketOwner: async () => 0 },
  );
  try {
    const stream = await new Promise<{ events: string[]; close: () => void }>((resolve) => {
      const events: string[] = [];
      const req = request({ host: '127.0.0.1', port: watched.port, path: '/api/events', agent: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (d: string) => events.push(d));
        resolve({ events, close: () => req.destroy() });
      });
      req.on('error', () => undefined);
      req.end();
    });
    await sleep(100);
    const next: Cluster = { ...cluster, pods: cluster.pods.slice(1) };
    current = { cluster: next, status: allReady(next) };
    const at = Date.now();
    changed!();
    while (!stream.events.join('').includes('"pods"') || stream.events.join('').split('event: cluster').length < 3) {
      if (Date.now() - at > 2000) break;
      await sleep(10);
    }
    t.true(Date.now() - at < 1000, `${Date.now() - at} ms`);
    stream.close();
  } finally {
    await watched.close();
  }
  t.is(changed, undefined, 'closing the server stops watching');
});
