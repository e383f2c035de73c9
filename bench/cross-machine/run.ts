/**
 * The two runs of the cross-machine benchmark, each on an underlay of its own that it
 * destroys whatever happens:
 * - pod-to-pod TCP throughput and ping RTT across two machines, the kernel's flannel-style
 *   vxlan first, then podwire on the same two machines;
 * - time to program: on three podwire machines holding 1,000 Services, how long one more
 *   Service takes from the apply command to a connection its ClusterIP accepts on every machine, and
 *   how long the other nodes keep a SIGKILLed agent as an overlay peer.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeUnderlay, runCommand, type Machine, type Underlay } from '../../test/helpers/machines.js';
import { buildKernelOverlay } from './kernel.js';
import { iperf3Between, pingBetween, type PingStats, type Throughput } from './measure.js';
import { startPodwire, until, WEB_DEPLOYMENT, type PodwireCluster } from '../../test/helpers/joined-cluster.js';
import { ClusterKeys } from '../../src/store/keys.js';

export const IPERF_SECONDS = 5;
export const PING_COUNT = 50;
export const SERVICE_COUNT = 1000;
export const LEASE_TTL_SECONDS = 6;
const POLL_EVERY_MS = 10;
/** Curls of one pod in flight at once: a poll that hangs on a not-yet-programmed address must not stop the next. */
const MAX_IN_FLIGHT = 20;

const underlayPrefix = () => `pwt-bx${randomBytes(2).toString('hex').slice(0, 3)}`;

async function withUnderlay<T>(machines: number, body: (u: Underlay) => Promise<T>): Promise<T> {
  const underlay = await makeUnderlay({ machines, prefix: underlayPrefix() });
  try {
    return await body(underlay);
  } finally {
    await underlay.destroy();
  }
}

async function withPodwire<T>(underlay: Underlay, machines: number, body: (c: PodwireCluster) => Promise<T>): Promise<T> {
  const cluster = await startPodwire(underlay, underlay.machines.slice(0, machines), `{subnetLeaseTTLSeconds: ${LEASE_TTL_SECONDS}}`, 'bx');
  try {
    return await body(cluster);
  } finally {
    await cluster.close();
  }
}

export interface PathResult {
  readonly tcp: Throughput;
  readonly ping: PingStats;
}

export interface DataplaneResults {
  readonly kernel: PathResult;
  readonly podwire: PathResult;
}

async function measurePath(clientNetns: string, serverNetns: string, serverIp: string): Promise<PathResult> {
  const tcp = await iperf3Between(clientNetns, serverNetns, serverIp, IPERF_SECONDS);
  const ping = await pingBetween(clientNetns, serverIp, PING_COUNT);
  return { tcp, ping };
}

const describe = (side: string, r: PathResult) =>
  `  ${side}: ${r.tcp.gbps.toFixed(2)} Gbit/s (${r.tcp.retransmits} retransmits), ping avg ${r.ping.avgMs} ms, p50 ${r.ping.p50 ?? '?'} ms, loss ${r.ping.lossPct}%`;

const PINNED_PODS = `apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-2, containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
`;

/** Kernel, then podwire, over the same two machines of one 1500-byte underlay. */
export function measureDataplane(log: (line: string) => void): Promise<DataplaneResults> {
  return withUnderlay(2, async (underlay) => {
    const [m1, m2] = underlay.machines;
    const overlay = await buildKernelOverlay(underlay, [m1, m2]);
    let kernel: PathResult;
    try {
      kernel = await measurePath(overlay.pods[0].netns, overlay.pods[1].netns, overlay.pods[1].ip);
    } finally {
      await overlay.destroy();
    }
    log(describe('kernel vxlan', kernel));
    const podwire = await withPodwire(underlay, 2, async (cluster) => {
      await cluster.apply(PINNED_PODS);
      const s = await cluster.podsReady(2);
      const b = s.pods.find((p) => p.name === 'b');
      if (b === undefined || s.pods.find((p) => p.name === 'a')?.node !== 'node-1' || b.node !== 'node-2') throw new Error(`pods not on their nodes: ${JSON.stringify(s.pods)}`);
      return measurePath(cluster.podNetns('a'), cluster.podNetns('b'), b.ip);
    });
    log(describe('podwire', podwire));
    return { kernel, podwire };
  });
}

/** ClusterIP of the i-th bulk Service: 10.96.10.1 onwards, 250 per /24, never .0 or .255. */
export function bulkClusterIp(i: number): string {
  return `10.96.${10 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}
export const NEW_SERVICE_IP = '10.96.200.1';

const service = (name: string, ip: string) => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec: {clusterIP: ${ip}, selector: {app: web}, ports: [{port: 80, targetPort: 80}]}
`;

/**
 * Services per apply: one apply is one etcd transaction, and etcd refuses more than its
 * --max-txn-ops (128 by default) operations in one; 1,000 Services in one apply fail so.
 */
export const SERVICES_PER_APPLY = 40;


/** The bulk Services [from, to) as one multi-document YAML. */
export function bulkServicesYaml(from: number, to: number): string {
  return Array.from({ length: to - from }, (_, k) => service(`svc-${from + k}`, bulkClusterIp(from + k))).join('---\n');
}

/**
 * Curls `url` from `netns` every POLL_EVERY_MS, without waiting for the previous curl,
 * until one answers 200; resolves with the ms from `t0` to that answer. Curls still
 * running then are killed by pid.
 */
function firstOk(netns: string, url: string, t0: number, timeoutMs: number): Promise<number> {
  const live = new Set<ChildProcess>();
  return new Promise<number>((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      for (const c of live) c.kill('SIGKILL');
      fn();
    };
    const timer = setInterval(() => {
      if (performance.now() - t0 > timeoutMs) return finish(() => reject(new Error(`${url} from ${netns}: no 200 within ${timeoutMs} ms`)));
      if (live.size >= MAX_IN_FLIGHT) return;
      const child = execFile('ip', ['netns', 'exec', netns, 'curl', '-s', '--connect-timeout', '1', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', url], { encoding: 'utf8' }, (_err, stdout) => {
        live.delete(child);
        if (stdout === '200') finish(() => resolve(performance.now() - t0));
      });
      live.add(child);
    }, POLL_EVERY_MS);
  });
}

export interface ProgrammingResults {
  /** Apply command started → a pod on every machine has had a connection to the new ClusterIP accepted. */
  readonly programMs: number;
  /**
   * The Service's write seen by an etcd watcher on machine 1 → the same on every machine:
   * kube-proxy's network_programming_duration, which counts from the object's change in
   * the API server, not from kubectl's start.
   */
  readonly fromWriteMs: number;
  readonly perNodeMs: Record<string, number>;
  /** Apply command started → it exited (a node process starting, parsing, writing to etcd). */
  readonly applyCommandMs: number;
  /** SIGKILL → no other node lists the victim in overlay.peers. */
  readonly peerGoneSeconds: number;
  readonly victim: string;
}

export function measureProgramming(log: (line: string) => void): Promise<ProgrammingResults> {
  return withUnderlay(3, (underlay) =>
    withPodwire(underlay, 3, async (cluster) => {
      const bulkStart = performance.now();
      await cluster.apply(WEB_DEPLOYMENT);
      for (let from = 0; from < SERVICE_COUNT; from += SERVICES_PER_APPLY) await cluster.apply(bulkServicesYaml(from, Math.min(SERVICE_COUNT, from + SERVICES_PER_APPLY)));
      const ready = await cluster.podsReady(3, 120_000);
      const web = ready.pods.filter((p) => p.name.startsWith('web-'));
      const byNode = new Map(web.map((p) => [p.node, p.name]));
      if (byNode.size !== 3) throw new Error(`web replicas not one per machine: ${web.map((p) => `${p.name}@${p.node}`).join(', ')}`);
      const last = `http://${bulkClusterIp(SERVICE_COUNT - 1)}/`;
      for (const [node, pod] of byNode) {
        await until(`${last} from ${node}`, 120_000, () => firstOk(cluster.podNetns(pod), last, performance.now(), 5000).then(() => true), 100);
      }
      log(`  ${SERVICE_COUNT} Services + web ready on 3 machines in ${((performance.now() - bulkStart) / 1000).toFixed(1)} s`);

      const written = watchForWrite(underlay.machines[0], cluster.etcd.endpoints, new ClusterKeys(cluster.name).object('Service', 'default', 'late'));
      await sleep(500); // the watcher connects before the write it waits for
      const nodes = [...byNode];
      // One prober per machine, started before the apply: the moment is when a connection to
      // the new ClusterIP is first accepted, with no process started per attempt.
      const probes = nodes.map(([, pod]) => firstConnect(cluster.podNetns(pod), NEW_SERVICE_IP, 80));
      await sleep(500);
      const t0 = performance.now();
      const applied = cluster.apply(service('late', NEW_SERVICE_IP)).then(() => performance.now() - t0);
      const times = (await Promise.all(probes)).map((at) => at - t0);
      const applyCommandMs = await applied;
      const writtenMs = (await written) - t0;
      const perNodeMs = Object.fromEntries(nodes.map(([node], k) => [node, times[k]]));
      const programMs = Math.max(...times);
      const fromWriteMs = programMs - writtenMs;
      log(`  new Service: written to etcd ${writtenMs.toFixed(0)} ms after the apply command started, which exited after ${applyCommandMs.toFixed(0)} ms; a connection accepted on every machine after ${programMs.toFixed(0)} ms, ${fromWriteMs.toFixed(0)} ms after the write (${JSON.stringify(perNodeMs, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))})`);

      const controller = (await cluster.status()).controller;
      const victim = [...cluster.nodes].reverse().find((n) => n !== controller)!;
      const others = cluster.nodes.filter((n) => n !== victim);
      for (const n of others) await until(`${n} has ${victim} as a peer`, 10_000, async () => ((await cluster.overlayPeers(n)).includes(victim) ? true : undefined));
      const pid = cluster.agentPid(victim);
      if (pid === undefined) throw new Error(`no pid file for ${victim}`);
      const killedAt = performance.now();
      process.kill(pid, 'SIGKILL');
      const stillListed = new Set(others);
      while (stillListed.size > 0) {
        if (performance.now() - killedAt > (LEASE_TTL_SECONDS * 5 + 10) * 1000) throw new Error(`${[...stillListed].join(', ')} still list ${victim} as a peer`);
        for (const n of [...stillListed]) if (!(await cluster.overlayPeers(n).catch(() => [victim])).includes(victim)) stillListed.delete(n);
        if (stillListed.size > 0) await sleep(50);
      }
      const peerGoneSeconds = (performance.now() - killedAt) / 1000;
      log(`  ${victim} SIGKILLed (controller ${controller ?? 'none'}): gone from every other node's overlay.peers after ${peerGoneSeconds.toFixed(2)} s (lease TTL ${LEASE_TTL_SECONDS} s)`);
      return { programMs, fromWriteMs, perNodeMs, applyCommandMs, peerGoneSeconds, victim };
    }),
  );
}

/**
 * Resolves with performance.now() when `etcdctl watch KEY`, run on `machine`, prints the
 * key's first event: the moment the write is visible to a watcher, as the node agents'
 * watches see it (up to a millisecond of delivery late).
 */
function watchForWrite(machine: Machine, endpoints: readonly string[], key: string): Promise<number> {
  const watcher = machine.spawn(['etcdctl', '--endpoints', endpoints.join(','), 'watch', key]);
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      watcher.kill('SIGKILL');
      reject(new Error(`etcdctl watch ${key}: no event within 60 s`));
    }, 60_000);
    watcher.stdout?.on('data', (chunk: Buffer) => {
      if (!chunk.toString().includes(key)) return;
      const at = performance.now();
      clearTimeout(timer);
      watcher.kill('SIGTERM');
      resolve(at);
    });
    watcher.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Python that opens a non-blocking TCP connection to HOST:PORT every 2 ms (each given 500 ms)
 * and prints the wall-clock ms at which the first one is established, then exits.
 */
const FIRST_CONNECT_PY = `
import select, socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.time() + float(sys.argv[3])
poller, pending = select.poll(), {}
next_at = 0.0
while time.time() < deadline:
    now = time.time()
    if now >= next_at:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.setblocking(False)
        s.connect_ex((host, port)); poller.register(s, select.POLLOUT); pending[s.fileno()] = (s, now + 0.5)
        next_at = now + 0.002
    for fd, _ in poller.poll(1):
        s, _ = pending.pop(fd); poller.unregister(fd)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            print(repr(time.time() * 1000), flush=True); sys.exit(0)
        s.close()
    for fd, (s, expires) in list(pending.items()):
        if expires < now: poller.unregister(fd); s.close(); del pending[fd]
sys.exit(1)
`;

/**
 * Resolves with performance.now() at the moment a pod in `netns` first got a TCP connection
 * to ip:port accepted (the prober's wall clock turned into this process's clock).
 */
async function firstConnect(netns: string, ip: string, port: number): Promise<number> {
  const out = await runCommand(['ip', 'netns', 'exec', netns, 'python3', '-c', FIRST_CONNECT_PY, ip, String(port), '60'], 70_000);
  return Number(out.trim()) - performance.timeOrigin;
}
