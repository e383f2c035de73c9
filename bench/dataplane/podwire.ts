/**
 * The podwire side: a two-node cluster started through the podwire command, as a user
 * would (`podwire up -f FILE --name NAME --state-dir DIR --detach`), with the same three
 * busybox pods as the kernel topology, and `podwire down` at the end.
 *
 * What podwire spends is read from outside its processes, so nothing has to be restarted
 * or instrumented: CPU time (user + system, every thread) from /proc/<pid>/stat of each
 * node process; frames from the kernel's counters of the pods' TAPs (a pod's eth0 is the
 * TAP its node reads: its tx_packets are the frames the node read) plus the pipeline's
 * `decapsulated` counter from `podwire status --json` for frames arriving over the
 * overlay. The pipeline counters alone would miss bridged frames (pod to pod on one
 * node is an FDB lookup, which counts nothing). With TSO offload on the TAPs, a 64 KiB
 * super-frame counts as one frame: compare CPU per Gbit across offload settings, not
 * CPU per frame.
 */
import { rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describeBackends } from '../../src/cli/status.js';
import { Background, interfacePackets, processCpu, run, waitUntil, type RunOptions } from './proc.js';
import type { NodeUsage, PodRef, PodRole, Topology, UsageSnapshot } from './topology.js';

/** dist/bench/dataplane/podwire.js -> dist/src/cli/main.js */
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const PLACEMENT: Readonly<Record<PodRole, string>> = { srv1: 'node-1', cli1: 'node-1', srv2: 'node-2' };
const POD_IF = 'eth0';

function clusterYaml(name: string): string {
  const pods = (Object.keys(PLACEMENT) as PodRole[]).map(
    (role) => `---
apiVersion: v1
kind: Pod
metadata:
  name: ${role}
spec:
  nodeName: ${PLACEMENT[role]}
  containers:
    - name: main
      image: busybox
`,
  );
  // The Cluster document's name wins over --name, so it must be the name teardown uses.
  return `# podwire dataplane benchmark: srv1 and cli1 on node-1, srv2 on node-2; busybox pods sleep.
apiVersion: podwire.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}
spec:
  nodes: 2
${pods.join('')}`;
}

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
      tapBackend: string;
      overlay: { backend: string; udpOffload?: boolean };
    };
  }[];
}

export class PodwireCluster implements Topology {
  readonly label = 'podwire';

  private constructor(
    readonly name: string,
    readonly stateDir: string,
    readonly pods: Readonly<Record<PodRole, PodRef>>,
    readonly nodePids: ReadonlyMap<string, number>,
    /** A process living in each pod's namespace (its container), to read the pod's counters through /proc. */
    private readonly podPids: ReadonlyMap<PodRole, number>,
    /** e.g. "tap=addon udp=addon+gso": which I/O backends the nodes run on. */
    readonly backends: string,
  ) {}

  /** `podwire up`; on failure `podwire down` has run (by up itself, and again by the caller's teardown). */
  static async up(name: string, stateDir: string): Promise<PodwireCluster> {
    const file = path.join(stateDir, 'dataplane.yaml');
    writeFileSync(file, clusterYaml(name));
    await podwire(name, stateDir, ['up', '-f', file, '--detach'], { timeoutMs: 180_000 });
    const status = await readStatus(name, stateDir);
    const pods = {} as Record<PodRole, PodRef>;
    const pids = new Map<string, number>();
    for (const node of status.nodes) {
      if (node.state !== 'up' || node.pid === undefined || node.detail === undefined) throw new Error(`podwire: node ${node.name} is ${node.state}`);
      pids.set(node.name, node.pid);
      for (const pod of node.detail.pods) {
        if (pod.name in PLACEMENT) pods[pod.name as PodRole] = { role: pod.name as PodRole, netns: pod.netns, ip: pod.ip, ifName: POD_IF };
      }
    }
    for (const role of Object.keys(PLACEMENT) as PodRole[]) {
      if (pods[role] === undefined) throw new Error(`podwire: pod ${role} not in the status`);
    }
    const podPids = new Map<PodRole, number>();
    for (const role of Object.keys(PLACEMENT) as PodRole[]) podPids.set(role, await pidIn(pods[role].netns));
    const first = status.nodes[0].detail!;
    return new PodwireCluster(name, stateDir, pods, pids, podPids, describeBackends(first));
  }

  /**
   * What a user watching the cluster runs beside it: `podwire observe --follow -o json`,
   * and with `captured` also `podwire capture --pod ROLE -w FILE`, started as a user
   * starts them and running until stopped. Resolves once observe has had its first answer
   * from every node and the capture's file has its first chunk.
   */
  async watch(captured?: PodRole): Promise<Watchers> {
    const file = captured === undefined ? undefined : path.join(this.stateDir, `watch-${captured}.pcapng`);
    const cli = (args: string[]) => new Background([process.execPath, CLI, ...args, '--name', this.name, '--state-dir', this.stateDir]);
    const observe = cli(['observe', '--follow', '-o', 'json']);
    const capture = file === undefined ? undefined : cli(['capture', '--pod', captured!, '-w', file]);
    const watchers = new Watchers(observe, capture, file);
    try {
      // Following starts with the flows so far (the pings of bring-up, earlier rounds'):
      // once they are printed, observe is connected to every node.
      await waitUntil('podwire observe --follow printing', () => observe.output.length > 0, 20_000);
      if (file !== undefined) await waitUntil(`podwire capture --pod ${captured} writing ${file}`, () => fileSize(file) > 0, 20_000);
    } catch (err) {
      await watchers.stop();
      throw new Error(`${(err as Error).message}: ${capture?.errorOutput.trim() || observe.errorOutput.trim()}`);
    }
    return watchers;
  }

  async snapshot(): Promise<UsageSnapshot> {
    const status = await readStatus(this.name, this.stateDir);
    const atMs = performance.now();
    const nodes = [...this.nodePids].map(([name, pid]): NodeUsage => {
      const detail = status.nodes.find((n) => n.name === name)?.detail;
      if (detail === undefined) throw new Error(`podwire: node ${name} stopped answering`);
      let frames = detail.counters.decapsulated ?? 0;
      let tapDropsIn = 0;
      let tapDropsOut = 0;
      for (const [role, podPid] of this.podPids) {
        if (PLACEMENT[role] !== name) continue;
        // Seen from the pod: tx is pod -> node (what the node read), rx is node -> pod.
        const tap = interfacePackets(podPid, POD_IF);
        frames += tap.tx;
        tapDropsIn += tap.txDropped;
        tapDropsOut += tap.rxDropped;
      }
      const drops = Object.values(detail.drops).reduce((s, n) => s + n, 0);
      const cpu = processCpu(pid);
      return { name, cpuUs: cpu.cpuUs, sysUs: cpu.sysUs, wakeups: cpu.voluntary, preempted: cpu.involuntary, frames, drops, tapDropsIn, tapDropsOut };
    });
    return { atMs, nodes };
  }
}

/** What a capture of `PodwireCluster.watch` reported when it ended. */
export interface CaptureReport {
  readonly captured: number;
  /** Packets the node dropped because the reader was slow. */
  readonly dropped: number;
  readonly bytes: number;
}

/** The observe and capture commands of `PodwireCluster.watch`. */
export class Watchers {
  constructor(
    private readonly observe: Background,
    private readonly capture: Background | undefined,
    private readonly file: string | undefined,
  ) {}

  /** Ends them as Ctrl-C would and removes the capture's file; returns the capture's report. */
  async stop(): Promise<CaptureReport | undefined> {
    const bytes = this.file === undefined ? 0 : fileSize(this.file);
    await Promise.all([this.observe.stop(), this.capture?.stop()]);
    if (this.capture === undefined || this.file === undefined) return undefined;
    rmSync(this.file, { force: true });
    const report = this.capture.errorOutput;
    const count = (re: RegExp) => Number(re.exec(report)?.[1] ?? NaN);
    return { captured: count(/^(\d+) packets captured/m), dropped: count(/^(\d+) packets dropped by the node/m), bytes };
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Some process in `netns` (a pod's container: it lives as long as the cluster). */
async function pidIn(netns: string): Promise<number> {
  const pid = Number((await run(['ip', 'netns', 'pids', netns])).trim().split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`podwire: no process in ${netns}`);
  return pid;
}

function podwire(name: string, stateDir: string, args: string[], options: RunOptions = {}): Promise<string> {
  return run([process.execPath, CLI, ...args, '--name', name, '--state-dir', stateDir], options);
}

/**
 * Runs an idempotent podwire command, again after a failure. The CLI is loaded afresh on
 * every call from a dist/ that others on this machine rebuild while a run goes on, and a
 * call that lands mid-rebuild fails to import; the node processes are not affected.
 */
async function podwireRetrying(name: string, stateDir: string, args: string[], options: RunOptions = {}): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await podwire(name, stateDir, args, options);
    } catch (err) {
      if (attempt === 3) throw err;
      await sleep(1000);
    }
  }
}

async function readStatus(name: string, stateDir: string): Promise<StatusJson> {
  const status = JSON.parse(await podwireRetrying(name, stateDir, ['status', '--json'])) as StatusJson;
  if (!status.running) throw new Error(`podwire: cluster ${name} is not running`);
  return status;
}

/** `podwire down`; never throws (it runs in teardown), returns what went wrong. */
export async function podwireDown(name: string, stateDir: string): Promise<string | undefined> {
  try {
    await podwireRetrying(name, stateDir, ['down'], { teardown: true });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
