/**
 * A podwire cluster across test machines (network namespaces on a veth underlay, see
 * machines.ts): etcd in the underlay's namespace, the Cluster document applied, a node
 * agent joined on each machine with `podwire join` run under nsenter. What the several-
 * machine tests and the cross-machine benchmark ask of it: the podwire command, status,
 * pods' namespaces, an agent's pid and control socket, joining again. close() tears down
 * everything it made, whatever state it is in.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, type Machine, type Underlay } from './machines.js';
import { startEtcd, type EtcdCluster } from './etcd.js';
import { clusterNamespacePrefix, podNamespaceName } from '../../src/node/names.js';
import { destroyNamespace, listNamespaces } from '../../src/node/netns.js';
import { callControl } from '../../src/node/control.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface StatusJson {
  controller?: string;
  nodes: { name: string; machine: string; subnet: string; ready: boolean; lease: string; metrics?: string }[];
  pods: { namespace: string; name: string; ip: string; node: string; ready: boolean }[];
}

export interface PodwireCluster {
  readonly name: string;
  readonly store: string;
  readonly nodes: readonly string[];
  readonly etcd: EtcdCluster;
  /** The directory files to apply and the machines' state directories live in. */
  readonly dir: string;
  /** `podwire join --detach` of `node` on its machine (again, after it was killed). */
  join(node: string): Promise<string>;
  /** A node's log, as its agent wrote it. */
  nodeLog(node: string): string;
  /** Runs argv in a pod's network namespace (namespace default). */
  inPod(pod: string, argv: string[], timeoutMs?: number): Promise<string>;
  /** `podwire <args>` run on the first machine; resolves with stdout. */
  podwire(args: string[], timeoutMs?: number): Promise<string>;
  /** Writes `yaml` to a file and applies it. */
  apply(yaml: string, timeoutMs?: number): Promise<string>;
  status(): Promise<StatusJson>;
  /** Waits until exactly `count` pods exist and all are ready. */
  podsReady(count: number, timeoutMs?: number): Promise<StatusJson>;
  podNetns(pod: string): string;
  agentPid(node: string): number | undefined;
  /** The peers a node's overlay holds, from its control socket. */
  overlayPeers(node: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Three nginx replicas labelled app=web: the backends the several-machine tests and benchmark use. */
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

/** Polls `probe` every `everyMs` until it gives a value; the last error is in the timeout's message. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last !== undefined ? ` (${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

const killQuietly = (pid: number) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
};

/**
 * etcd in the underlay's namespace, `clusterSpec` applied as the Cluster doc's spec, and
 * node-K joined on machines[K-1]. The cluster is named `namePrefix` and 3 random hex
 * characters. On failure everything made so far is removed.
 */
export async function startPodwire(underlay: Underlay, machines: readonly Machine[], clusterSpec: string, namePrefix = 'pc'): Promise<PodwireCluster> {
  const name = `${namePrefix}${randomBytes(2).toString('hex').slice(0, 3)}`;
  const nodes = machines.map((_, k) => `node-${k + 1}`);
  const dir = mkdtempSync(join(tmpdir(), `pwt-${namePrefix}-`));
  let etcd: EtcdCluster | undefined;
  let store = '';
  let applies = 0;
  const stateDir = (node: string) => join(dir, node);

  const podwire = (args: string[], timeoutMs = 60_000) => runCommand(['ip', 'netns', 'exec', machines[0].netns, process.execPath, CLI, ...args], timeoutMs);
  const apply = (yaml: string, timeoutMs = 60_000) => {
    const file = join(dir, `apply-${++applies}.yaml`);
    writeFileSync(file, yaml);
    return podwire(['apply', '-f', file, '--name', name, '--store', store], timeoutMs);
  };
  const status = async () => JSON.parse(await podwire(['status', '--name', name, '--store', store, '--json'])) as StatusJson;
  const joinNode = (node: string) => {
    const machine = machines[nodes.indexOf(node)];
    return runCommand(['nsenter', `--net=/run/netns/${machine.netns}`, process.execPath, CLI, 'join', '--name', name, '--store', store, '--node', node, '--state-dir', stateDir(node), '--detach'], 120_000);
  };
  const agentPid = (node: string) => {
    try {
      return Number(readFileSync(join(stateDir(node), name, `${node}.pid`), 'utf8').trim());
    } catch {
      return undefined;
    }
  };

  const close = async () => {
    if (store !== '') await podwire(['down', '--name', name, '--store', store], 20_000).catch(() => undefined);
    // `down` lets agents exit on their own; whatever has not within the grace is killed.
    const deadline = Date.now() + 15_000;
    for (const node of nodes) {
      const pid = agentPid(node);
      if (pid === undefined) continue;
      while (Date.now() < deadline && existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/status`, 'utf8').includes('State:\tZ')) await sleep(200);
      killQuietly(pid);
    }
    // What a killed agent left: its pods' namespaces and the processes in them.
    for (const ns of await listNamespaces(clusterNamespacePrefix(name)).catch(() => [])) await destroyNamespace(ns).catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };

  const cluster: PodwireCluster = {
    name,
    get store() {
      return store;
    },
    get etcd() {
      if (etcd === undefined) throw new Error('etcd is not running');
      return etcd;
    },
    dir,
    nodes,
    join: joinNode,
    nodeLog: (node) => readFileSync(join(stateDir(node), name, 'logs', `${node}.log`), 'utf8'),
    inPod: (pod, argv, timeoutMs = 20_000) => runCommand(['ip', 'netns', 'exec', podNamespaceName(name, 'default', pod), ...argv], timeoutMs),
    podwire,
    apply,
    status,
    podsReady: (count, timeoutMs = 90_000) =>
      until(`${count} pods ready`, timeoutMs, async () => {
        const s = await status();
        return s.pods.length === count && s.pods.every((p) => p.ready) ? s : undefined;
      }),
    podNetns: (pod) => podNamespaceName(name, 'default', pod),
    agentPid,
    overlayPeers: async (node) => {
      const answer = await callControl(join(stateDir(node), name, `${node}.sock`), 'status', {}, 2000);
      return answer.overlay.peers;
    },
    close,
  };

  try {
    etcd = await startEtcd({ netns: underlay.netns, host: underlay.bridgeAddress });
    store = `etcd://${etcd.endpoints.join(',')}`;
    await apply(`apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nmetadata: {name: ${name}}\nspec: ${clusterSpec}\n`);
    for (const node of nodes) await joinNode(node);
  } catch (err) {
    await close();
    throw err;
  }
  return cluster;
}
