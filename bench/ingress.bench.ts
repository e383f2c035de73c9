/**
 * The ingress controller against nginx: requests per second and p99 latency through
 * podwire's ingress proxy and through Debian's nginx configured as a reverse proxy, each in a
 * pod of the same one-node cluster, in front of the same two backend pods, reached the same
 * way (the backend Service's ClusterIP, across podwire's dataplane), with keep-alive and
 * without (`Connection: close` on every request). wrk runs in the proxy's own pod on
 * loopback (one thread, 16 connections), so the client hop costs neither proxy a dataplane
 * pass; nginx has one worker, the proxy is one Node process: one core each. Target: podwire
 * at least 0.5 of nginx's requests per second with keep-alive. Also each proxy's CPU time
 * per request, read from /proc for the processes in its pod's network namespace.
 *
 * `npm run bench -- ingress`, or alone: `node dist/bench/ingress.bench.js [--seconds S]`.
 * Needs root, /dev/net/tun, wrk and nginx; without them it logs why and returns no figures.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { atLeast, DEFAULT_BUDGET, formatFigure, type BenchContext, type BenchModule, type Figure } from './harness.js';
import { processCpu, run } from './dataplane/proc.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const NAME = 'pwbenching';
const BACKEND_IP = '10.96.50.50';
const HOST = 'bench.test';
const CONNECTIONS = 16;

const NGINX_CONF = `worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path /tmp/nginx-body;
  proxy_temp_path /tmp/nginx-proxy;
  fastcgi_temp_path /tmp/nginx-fastcgi;
  uwsgi_temp_path /tmp/nginx-uwsgi;
  scgi_temp_path /tmp/nginx-scgi;
  upstream backend { server ${BACKEND_IP}:5000; keepalive 32; }
  server {
    listen 8080;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-ID $request_id;
    }
  }
}
`;

function manifest(): string {
  const conf = NGINX_CONF.split('\n').map((l) => `    ${l}`).join('\n');
  return `apiVersion: podwire.dev/v1alpha1
kind: Cluster
metadata: {name: ${NAME}}
spec: {nodes: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend}
spec:
  replicas: 2
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 4000}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec: {clusterIP: ${BACKEND_IP}, selector: {app: backend}, ports: [{port: 5000, targetPort: 4000}]}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller}
spec:
  replicas: 1
  selector: {matchLabels: {app: controller}}
  template:
    metadata: {labels: {app: controller}}
    spec: {containers: [{name: controller, image: registry.k8s.io/ingress-nginx/controller:v1.10.1}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench}
spec:
  ingressClassName: nginx
  rules:
  - host: ${HOST}
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: backend, port: {number: 5000}}}}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: nginx-conf}
data:
  nginx.conf: |
${conf}
---
apiVersion: v1
kind: Pod
metadata: {name: nginx-proxy}
spec:
  volumes: [{name: conf, configMap: {name: nginx-conf}}]
  containers:
  - name: nginx
    image: nginx
    command: [nginx, -c, /etc/nginx-bench/nginx.conf, -g, "daemon off;"]
    ports: [{containerPort: 8080}]
    volumeMounts: [{name: conf, mountPath: /etc/nginx-bench}]
`;
}

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['wrk', 'nginx']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool} (scripts/setup.sh installs it)`;
    }
  }
  return undefined;
}

interface WrkResult {
  readonly rps: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly errors: number;
}

/** wrk's summary: Requests/sec, the 99% line of --latency, non-2xx and socket errors. */
export function parseWrk(text: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(text);
  const scale = p99?.[2] === 'us' ? 1e-3 : p99?.[2] === 's' ? 1e3 : 1;
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = non2xx + (socket === null ? 0 : socket.slice(1).reduce((n, x) => n + Number(x), 0));
  if (!Number.isFinite(rps) || p99 === null || !Number.isFinite(requests)) throw new Error(`wrk's output not understood:\n${text}`);
  return { rps, p99Ms: Number(p99[1]) * scale, requests, errors };
}

/** The processes in a network namespace whose command is `comm`: the proxy's, for its CPU time. */
function processesIn(netns: string, comm: string): number[] {
  const inode = statSync(`/run/netns/${netns}`).ino;
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) !== `net:[${inode}]`) continue;
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

function cpuUs(pids: readonly number[]): number {
  return pids.reduce((n, pid) => n + processCpu(pid).cpuUs, 0);
}

export async function runIngressBench(ctx: BenchContext, seconds: number): Promise<Figure[]> {
  const why = missing();
  if (why !== undefined) {
    ctx.log(`ingress: skipped, ${why}`);
    return [];
  }
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pw-bench-ingress-'));
  const podwire = (args: string[], timeoutMs = 120_000) => run([process.execPath, CLI, args[0], '--name', NAME, '--state-dir', stateDir, ...args.slice(1)], { timeoutMs });
  try {
    const file = path.join(stateDir, 'bench.yaml');
    writeFileSync(file, manifest());
    await podwire(['up', '-f', file, '--detach']);
    const status = JSON.parse(await podwire(['status', '--json'])) as { nodes: { detail?: { pods: { name: string; netns: string }[] } }[] };
    const pods = status.nodes.flatMap((n) => n.detail?.pods ?? []);
    const pod = (prefix: string) => {
      const found = pods.find((p) => p.name.startsWith(prefix));
      if (found === undefined) throw new Error(`no pod ${prefix}*`);
      return found;
    };
    const proxies = [
      { name: 'podwire', pod: pod('controller-'), port: 80, comm: 'node' },
      { name: 'nginx', pod: pod('nginx-proxy'), port: 8080, comm: 'nginx' },
    ];
    const figures: Figure[] = [];
    const results = new Map<string, WrkResult>();
    for (const mode of ['keep-alive', 'close'] as const) {
      for (const proxy of proxies) {
        const pids = processesIn(proxy.pod.netns, proxy.comm);
        const headers = ['-H', `Host: ${HOST}`, ...(mode === 'close' ? ['-H', 'Connection: close'] : [])];
        const wrk = (d: number) => podwire(['exec', proxy.pod.name, '--', 'wrk', '-t', '1', '-c', String(CONNECTIONS), '-d', `${d}s`, '--latency', ...headers, `http://127.0.0.1:${proxy.port}/`], (d + 30) * 1000);
        await wrk(1); // warm-up: JIT, connection pools
        const before = cpuUs(pids);
        const result = parseWrk(await wrk(seconds));
        const spent = cpuUs(pids) - before;
        if (result.errors > 0) throw new Error(`${proxy.name} (${mode}): ${result.errors} failed requests`);
        results.set(`${proxy.name} ${mode}`, result);
        ctx.log(`  ${proxy.name}, ${mode}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99Ms.toFixed(2)} ms, ${(spent / result.requests).toFixed(1)} µs CPU/request`);
        figures.push({ name: `ingress: ${proxy.name}, ${mode}, requests/s`, value: result.rps, unit: 'req/s' });
        figures.push({ name: `ingress: ${proxy.name}, ${mode}, p99 latency`, value: result.p99Ms, unit: 'ms' });
        figures.push({ name: `ingress: ${proxy.name}, ${mode}, proxy CPU per request`, value: spent / result.requests, unit: 'µs' });
      }
      const ratio = results.get(`podwire ${mode}`)!.rps / results.get(`nginx ${mode}`)!.rps;
      figures.push({ name: `ingress: podwire/nginx requests/s, ${mode}`, value: ratio, unit: 'x', ...(mode === 'keep-alive' ? { target: atLeast(0.5) } : {}) });
    }
    return figures;
  } finally {
    await podwire(['down'], 60_000).catch((err: Error) => ctx.log(`ingress: down: ${err.message}`));
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const ingress: BenchModule = {
  name: 'ingress',
  run: (ctx) => runIngressBench(ctx, 8),
};

export default ingress;

async function main(): Promise<number> {
  const at = process.argv.indexOf('--seconds');
  const seconds = at > 0 ? Number(process.argv[at + 1]) : 8;
  if (!Number.isInteger(seconds) || seconds <= 0) throw new Error('--seconds must be a positive integer');
  const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
  const ctx: BenchContext = { outDir, budget: DEFAULT_BUDGET, selects: () => true, log: (line) => console.log(line) };
  console.log('# ingress');
  const figures = await runIngressBench(ctx, seconds);
  if (figures.length > 0) console.log(`\n${figures.map(formatFigure).join('\n')}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exitCode = 1;
    },
  );
}
