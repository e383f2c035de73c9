/**
 * podwire's side: a one-node cluster started through the podwire command (`podwire up -f
 * FILE --name NAME --state-dir DIR --detach`) with the synthetic cluster's YAML, and
 * `podwire down` at the end.
 *
 * What podwire does and spends is read from outside its process, as the dataplane
 * benchmark does: CPU time and context switches from /proc/<pid> of the node process; frames
 * the node read from the client pods' TAPs (the pods' eth0 tx_packets) and frames the pods'
 * kernels dropped because the node had not read them in time (tx_dropped); the pipeline's
 * `serviceFlows` and drop counters from `podwire status --json`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { interfacePackets, processCpu, run, type RunOptions } from '../dataplane/proc.js';
import { silenceBackend } from './kernel.js';
import { BACKEND, CLIENT_COUNT, clientName, type SyntheticCluster } from './services.js';
import type { SynSource } from './tool.js';

/** dist/bench/newflow/podwire.js -> dist/src/cli/main.js */
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const POD_IF = 'eth0';

/** The parts of `podwire status --json` read here. */
interface StatusJson {
  running: boolean;
  nodes: {
    name: string;
    state: string;
    pid?: number;
    detail?: {
      pods: { name: string; ip: string; netns: string }[];
      counters: Record<string, number>;
      drops: Record<string, number>;
      tapBackend?: string;
    };
  }[];
}

interface PodHandle {
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  /** A process in the pod's namespace (its container), to read the pod's counters through /proc. */
  readonly pid: number;
}

/** What the node process has spent and the pods' kernels have counted so far, from /proc. */
export interface NodeUsageSnapshot {
  readonly cpuUs: number;
  readonly sysUs: number;
  readonly voluntary: number;
  readonly involuntary: number;
  /** Frames the node read from the client pods' TAPs. */
  readonly framesIn: number;
  /** Frames the client pods' kernels dropped: the node had not read its TAP in time. */
  readonly tapDropped: number;
  /** Frames the backend pod received (the node wrote them to its TAP). */
  readonly backendRx: number;
  /** Time the node's main thread (the event loop) spent runnable but waiting for a CPU (ns). */
  readonly runDelayNs: number;
}

/** The pipeline's own counters, from `podwire status --json`. */
export interface NodeCounters {
  readonly serviceFlows: number;
  readonly drops: Readonly<Record<string, number>>;
}

export class PodwireNode {
  private constructor(
    readonly cluster: SyntheticCluster,
    readonly name: string,
    readonly stateDir: string,
    readonly nodePid: number,
    readonly backend: PodHandle,
    readonly clients: readonly PodHandle[],
    /** e.g. "tap=addon": the node's TAP backend. */
    readonly tapBackend: string,
  ) {}

  get sources(): SynSource[] {
    return this.clients.map((c) => ({ netns: c.netns, ip: c.ip }));
  }

  /**
   * `podwire up` of the synthetic cluster, then the backend silenced like the kernel's.
   * On failure `podwire down` has run (by up itself, and again by the caller's teardown).
   */
  static async up(cluster: SyntheticCluster, name: string, stateDir: string): Promise<PodwireNode> {
    const file = path.join(stateDir, `${name}.yaml`);
    writeFileSync(file, cluster.yaml);
    await podwire(name, stateDir, ['up', '-f', file, '--detach'], { timeoutMs: 600_000 });
    const status = await readStatus(name, stateDir);
    const node = status.nodes[0];
    if (node?.state !== 'up' || node.pid === undefined || node.detail === undefined) throw new Error(`podwire ${name}: node-1 is ${node?.state ?? 'missing'}`);
    const pods = new Map(node.detail.pods.map((p) => [p.name, p]));
    const handle = async (podName: string): Promise<PodHandle> => {
      const pod = pods.get(podName);
      if (pod === undefined) throw new Error(`podwire ${name}: pod ${podName} not in the status`);
      return { name: podName, ip: pod.ip, netns: pod.netns, pid: await pidIn(pod.netns) };
    };
    const backend = await handle(BACKEND);
    const clients: PodHandle[] = [];
    for (let k = 0; k < CLIENT_COUNT; k++) clients.push(await handle(clientName(k)));
    await silenceBackend(backend.netns, clients.map((c) => c.ip));
    return new PodwireNode(cluster, name, stateDir, node.pid, backend, clients, `tap=${node.detail.tapBackend ?? '?'}`);
  }

  /** Reads /proc only: no process is started, the node is not disturbed. */
  usage(): NodeUsageSnapshot {
    const cpu = processCpu(this.nodePid);
    let framesIn = 0;
    let tapDropped = 0;
    for (const c of this.clients) {
      // Seen from the pod: tx is pod -> node (what the node read or the queue dropped).
      const tap = interfacePackets(c.pid, POD_IF);
      framesIn += tap.tx;
      tapDropped += tap.txDropped;
    }
    return {
      cpuUs: cpu.cpuUs,
      sysUs: cpu.sysUs,
      voluntary: cpu.voluntary,
      involuntary: cpu.involuntary,
      framesIn,
      tapDropped,
      backendRx: interfacePackets(this.backend.pid, POD_IF).rx,
      runDelayNs: runDelay(this.nodePid),
    };
  }

  /** Asks the node (`podwire status --json`): costs the node a control-socket answer. */
  async counters(): Promise<NodeCounters> {
    const detail = (await readStatus(this.name, this.stateDir)).nodes[0]?.detail;
    if (detail === undefined) throw new Error(`podwire ${this.name}: node-1 stopped answering`);
    return { serviceFlows: detail.counters.serviceFlows ?? 0, drops: detail.drops };
  }
}

/**
 * The second field of /proc/<pid>/schedstat: nanoseconds the main thread has spent on a run
 * queue waiting for a CPU (NaN where the kernel has no schedstat).
 */
function runDelay(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/)[1]);
  } catch {
    return NaN;
  }
}

/** Some process in `netns` (a pod's container: it lives as long as the cluster). */
async function pidIn(netns: string): Promise<number> {
  const pid = Number((await run(['ip', 'netns', 'pids', netns])).trim().split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`podwire: no process in ${netns}`);
  return pid;
}

function podwire(name: string, stateDir: string, args: string[], options: RunOptions = {}): Promise<string> {
  // Common flags right after the subcommand, as the CLI's own tests pass them.
  return run([process.execPath, CLI, args[0], '--name', name, '--state-dir', stateDir, ...args.slice(1)], options);
}

/**
 * `podwire status --json`, again after a failure: the CLI is loaded afresh on every call
 * from a dist/ that others on this machine may be rebuilding; the node is not affected.
 */
async function readStatus(name: string, stateDir: string): Promise<StatusJson> {
  for (let attempt = 1; ; attempt++) {
    try {
      const status = JSON.parse(await podwire(name, stateDir, ['status', '--json'])) as StatusJson;
      if (!status.running) throw new Error(`podwire: cluster ${name} is not running`);
      return status;
    } catch (err) {
      if (attempt === 3) throw err;
      await sleep(1000);
    }
  }
}
