/**
 * Node processes as the CLI starts them: `podwire up` for every node, `podwire restart-node`
 * for one, both through `startNodeProcess`, and both wait through `waitReady`.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Cluster, Node } from '../cluster/model.js';
import type { StatePaths } from '../node/names.js';
import { closeFd, nodePid, openPrivateLog, writePrivateFile } from './state.js';
import { clusterStatus, type ClusterStatus } from './status.js';

const NODE_MAIN = fileURLToPath(new URL('../node/main.js', import.meta.url));
export const READY_TIMEOUT_MS = 60_000;

/** A failure to report as it is, without the "podwire COMMAND:" prefix. */
export class UpError extends Error {}

/** Ctrl-C (or SIGTERM) while starting: what was started has been torn down. */
export class Interrupted extends UpError {}

/**
 * Starts the node's process, detached (its own process group, so the terminal's Ctrl-C
 * reaches only podwire, which tears down in order), logging to its log file.
 */
export async function startNodeProcess(paths: StatePaths, node: Node, pcapDir: string | undefined, metricsPort?: number): Promise<number> {
  const log = openPrivateLog(paths.nodeLog(node.name));
  const args = [
    NODE_MAIN, '--state-dir', paths.dir, '--node', node.name,
    ...(pcapDir !== undefined ? ['--pcap', pcapDir] : []),
    ...(metricsPort !== undefined ? ['--metrics-port', String(metricsPort)] : []),
  ];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
  closeFd(log);
  child.unref();
  if (child.pid === undefined) throw new UpError(`node ${node.name} could not be started (see ${paths.nodeLog(node.name)})`);
  writePrivateFile(paths.nodePid(node.name), `${child.pid}\n`);
  return child.pid;
}

/** Waits until `nodes` answer and their pods are ready; a node that exits is an error. */
export async function waitReady(
  paths: StatePaths,
  cluster: Cluster,
  out: (line: string) => void,
  signal: AbortSignal | undefined,
  nodes: readonly Node[] = cluster.nodes,
): Promise<ClusterStatus> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const names = new Set(nodes.map((n) => n.name));
  let lastReady = -1;
  for (;;) {
    throwIfInterrupted(signal);
    const status = await clusterStatus(cluster.settings.name, paths, cluster);
    for (const node of nodes) {
      if (nodePid(paths, node.name) === undefined) {
        const log = await fs.readFile(paths.nodeLog(node.name), 'utf8').catch(() => '');
        throw new UpError(`node ${node.name} exited while starting:\n${log.trim().split('\n').slice(-10).join('\n')}`);
      }
    }
    const pods = status.pods.filter((p) => names.has(p.node));
    const ready = pods.filter((p) => p.ready).length;
    if (ready !== lastReady) {
      out(`  ${ready}/${pods.length} pods ready`);
      lastReady = ready;
    }
    const settled = pods.filter((p) => !p.ready && staysNotReady(cluster, p));
    if (status.nodes.every((n) => !names.has(n.name) || n.state === 'up') && ready + settled.length === pods.length) {
      for (const p of settled) out(`  ${p.namespace}/${p.name} is not ready and will not be without a change: ${p.reason} (logs in ${paths.logDir})`);
      return status;
    }
    if (Date.now() > deadline) {
      const waiting = pods.filter((p) => !p.ready).map((p) => `${p.namespace}/${p.name}`);
      throw new UpError(`not ready after ${READY_TIMEOUT_MS / 1000} s: ${waiting.join(', ')} (logs in ${paths.logDir})`);
    }
    await pause(200, signal);
  }
}

/**
 * A pod that no waiting makes ready: a container the kubelet cannot create from its
 * manifest (runAsNonRoot as root, a missing ConfigMap key), or one that ended and whose
 * restartPolicy does not start it again.
 */
function staysNotReady(cluster: Cluster, pod: ClusterStatus['pods'][number]): boolean {
  if (pod.reason === 'CreateContainerConfigError') return true;
  const policy = cluster.pods.find((p) => p.namespace === pod.namespace && p.name === pod.name)?.restartPolicy;
  return (policy === 'Never' && (pod.reason === 'Completed' || pod.reason === 'Error')) || (policy === 'OnFailure' && pod.reason === 'Completed');
}

export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new Interrupted('interrupted');
}

/** Sleeps `ms`, or less when `signal` fires. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
