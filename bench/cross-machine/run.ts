/**
 * The two runs of the cross-machine benchmark, each on an underlay of its own that it
 * destroys whatever happens:
 * - pod-to-pod TCP throughput and ping RTT across two machines, the kernel's flannel-style
 *   vxlan first, then podwire on the same two machines;
 * - time to program: on three podwire machines holding 1,000 Services, how long one more
 *   Service takes from the apply command to a 200 from its ClusterIP on every machine, and
 *   how long the other nodes keep a SIGKILLed agent as an overlay peer.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeUnderlay, type Underlay } from '../../test/helpers/machines.js';
import { buildKernelOverlay } from './kernel.js';
import { iperf3Between, pingBetween, type PingStats, type Throughput } from './measure.js';
import { startPodwire, until, type PodwireCluster } from '../../test/helpers/joined-cluster.js';

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

export const WEB_DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]}
`;

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
  /** Apply command started → every machine's pod has had a 200 from the new ClusterIP. */
  readonly programMs: number;
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

      const t0 = performance.now();
      const applied = cluster.apply(service('late', NEW_SERVICE_IP)).then(() => performance.now() - t0);
      const nodes = [...byNode];
      const times = await Promise.all(nodes.map(([, pod]) => firstOk(cluster.podNetns(pod), `http://${NEW_SERVICE_IP}/`, t0, 30_000)));
      const applyCommandMs = await applied;
      const perNodeMs = Object.fromEntries(nodes.map(([node], k) => [node, times[k]]));
      const programMs = Math.max(...times);
      log(`  new Service: apply exited after ${applyCommandMs.toFixed(0)} ms; 200 on every machine after ${programMs.toFixed(0)} ms (${JSON.stringify(perNodeMs, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))})`);

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
      return { programMs, perNodeMs, applyCommandMs, peerGoneSeconds, victim };
    }),
  );
}
