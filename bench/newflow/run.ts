/**
 * The new-flow benchmark: how many new connections per second a node sets up through the
 * cluster IP of the last of N services, podwire against the kernel with kube-proxy's
 * iptables layout and with its nftables layout, for N = 10, 1,000 and 10,000.
 *
 * Nine dataplanes stay up for the whole run: for each N a podwire cluster (one node, the
 * backend pod and CLIENT_COUNT client pods) and two kernel nodes (kernel.ts). Each round
 * measures all nine, one after the other, in an order rotated from round to round; every
 * figure is a median over rounds and every ratio the median of the ratios within rounds,
 * so that both halves of a ratio ran seconds apart on this shared machine, not minutes.
 *
 * One trial: the C sender (tool.ts) sends SYNs to the target for a fixed window, each from
 * a (client address, source port) pair not used before in the run, paced to at most
 * OFFERED_RATE per second; the SYNs that reach the backend within the window, over the
 * window, are the rate. The backend answers nothing (blackhole routes), so a flow is
 * exactly one packet through the dataplane: the figure is the cost of setting up a flow
 * (conntrack miss, service lookup, DNAT, conntrack insert), not of carrying one.
 *
 * Connection tables: every SYN leaves a SYN_SENT entry behind (120 s). The kernel nodes'
 * tables are flushed after every trial (a namespace cannot raise nf_conntrack_max above the
 * host's 262,144; one trial stays far below it). podwire's is sized by the Cluster
 * document's `conntrackMax` (CONNTRACK_MAX) to hold every tuple a run can use, so it never
 * fills; nothing flushes it, so a later round runs with the earlier rounds' entries in it.
 * The tuples' source ports are split between a warm-up and the rounds, so no tuple (and no
 * reply tuple: every flow DNATs to the same backend:port) is ever used twice.
 *
 * Everything is torn down in `finally`, on a signal, and, should a run have been killed
 * outright, by the next run (namespaces and state directories carry the run's pid).
 */
import { accessSync, constants, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Figure } from '../harness.js';
import { podwireDown } from '../dataplane/podwire.js';
import { abortAll, commandName, run } from '../dataplane/proc.js';
import { ALL_NAMES, buildFigures, describeTrial, renderTable, SIDES, SIZES, type NodeUsage, type Rounds, type Side, type SizeLabel, type Trial } from './figures.js';
import { BACKEND_IF, deleteNamespaces, KernelNode, namespacesWithPrefix, NETNS_PREFIX, type Layout } from './kernel.js';
import { pickClusterNames } from '../cluster-names.js';
import { PodwireNode, POD_IF } from './podwire.js';
import { CLIENT_COUNT, SERVICE_PORT, syntheticCluster, type SyntheticCluster } from './services.js';
import { requireSystemTool, systemTool } from './system.js';
import { buildTool, sendSyns, type SynRequest, type SynResult, type SynSource } from './tool.js';

export interface NewflowOptions {
  /** One round of half-second windows: checks that everything works, figures are rough. */
  readonly quick: boolean;
  /** Whether a figure of this name is wanted (the harness's filter). */
  selects(name: string): boolean;
  log(line: string): void;
}

interface Durations {
  readonly rounds: number;
  /** The sending window of a trial (s). */
  readonly windowS: number;
  /** Each of WARM_PASSES warm-up trials (s). */
  readonly warmS: number;
}

/**
 * Five rounds of 0.75 s: more, shorter rounds give steadier medians on a shared machine than
 * fewer long ones. A window must fit in a round's tuples (16 sources × 12,083 ports last
 * 0.77 s at OFFERED_RATE) and in a kernel node's connection table (250k/s × 0.75 s = 187,500
 * entries, below the 262,144 a namespace may have).
 */
const FULL: Durations = { rounds: 5, windowS: 0.75, warmS: 0.6 };
const QUICK: Durations = { rounds: 1, windowS: 0.5, warmS: 0.6 };
/**
 * A podwire node's first tens of thousands of new flows cost it several times the later
 * ones (the JIT, and the first touch of its connection table's pages): two passes, so that
 * the rounds measure the steady state on every dataplane.
 */
const WARM_PASSES = 2;

/**
 * The sender's pace, SYNs per second: above what the dataplanes manage here (a kernel side
 * keeps pace with its sender by construction, its processing runs in the sender's system
 * calls; podwire's node takes from its TAPs what it can and the pods' kernels drop the
 * rest), within what the tuples allow over a window. A figure close to it means the sender,
 * not the dataplane, was the limit; the log says so.
 */
const OFFERED_RATE = 250_000;
const WARM_RATE = 50_000;
const FIRST_PORT = 1024;
const PORT_SPACE = 65536 - FIRST_PORT;
/** Source ports of each warm-up pass; the rest are shared out between the rounds. */
const WARM_PORTS = 2048;
/** Frames still queued in a dataplane when the sender stops, before the counters are read. */
const DRAIN_MS = 300;
/** podwire's connection table: at least every tuple a run can use, CLIENT_COUNT × PORT_SPACE. */
const CONNTRACK_MAX = 1 << 20;

const STATE_PREFIX = 'pwnf-state-';
const TOOLS_PREFIX = 'pwnf-tools-';

/** Why this machine cannot run the benchmark, or undefined. */
export async function whyCannotRun(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, TAPs, veths, iptables in scratch namespaces)';
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return 'needs /dev/net/tun';
  }
  const tools: [string, string[], RegExp, string][] = [
    ['ip', ['-V'], /iproute2/, 'iproute2'],
    ['bridge', ['-V'], /bridge utility/, 'iproute2'],
    ['gcc', ['--version'], /./, 'gcc'],
    ['sysctl', ['--version'], /./, 'procps'],
    ['iptables-restore', ['--version'], /iptables/, 'iptables (apt-get install iptables)'],
    ['nft', ['--version'], /nftables/, 'nft (apt-get install nftables)'],
  ];
  for (const [name, args, expected, what] of tools) {
    const found = systemTool(name);
    const out = found === undefined ? '' : await run([found, ...args]).catch(() => '');
    if (!expected.test(out)) return `needs ${what}`;
  }
  return undefined;
}

/** Runs the benchmark and returns its figures; [] (with a log line) when the machine cannot. */
export async function runNewflow(opts: NewflowOptions): Promise<Figure[]> {
  const { log } = opts;
  if (!ALL_NAMES.some((n) => opts.selects(n))) return [];
  const reason = await whyCannotRun();
  if (reason !== undefined) {
    log(`  (no newflow figures: ${reason})`);
    return [];
  }
  const d = opts.quick ? QUICK : FULL;
  const load = () => loadavg()[0].toFixed(1);
  const iptablesVersion = (await run([requireSystemTool('iptables-restore'), '--version'])).trim();
  const nftVersion = (await run([requireSystemTool('nft'), '--version'])).trim();
  log(`  ${cpus().length} CPUs, load average ${load()} at start, kernel ${release()}, ${iptablesVersion}, ${nftVersion}`);
  log(`  ${opts.quick ? 'quick variant' : 'full run'}: ${d.rounds} round(s) of ${d.windowS} s windows, SYNs paced to at most ${OFFERED_RATE / 1000}k/s from ${CLIENT_COUNT} client addresses`);

  const owned = new Owned(log);
  // Ctrl-C or a kill mid-run: tear down, then leave as the signal would have.
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n  ${signal}: tearing down`);
    void abortAll()
      .then(() => owned.release())
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await removeStale(log);
    const rounds = await measure(d, owned, log);
    const figures = buildFigures(rounds).filter((f) => opts.selects(f.name));
    log(`  load average ${load()} at the end: on a shared machine read the ratios, each measured side by side`);
    log(`\n${renderTable(rounds, figures)}`);
    return figures;
  } finally {
    await owned.release();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/**
 * Everything a run has made, so that teardown removes exactly that, once, whichever step
 * failed: the podwire clusters and their state directory, the kernel nodes' namespaces
 * (all named after this run's pid), the compiled tool.
 */
class Owned {
  toolDir: string | undefined;
  stateDir: string | undefined;
  readonly clusters: string[] = [];
  private released: Promise<void> | undefined;

  constructor(private readonly log: (line: string) => void) {}

  /** Idempotent; never throws (problems are logged). */
  release(): Promise<void> {
    return (this.released ??= (async () => {
      if (this.stateDir !== undefined) {
        for (const name of this.clusters) {
          const problem = await podwireDown(name, this.stateDir);
          if (problem !== undefined) this.log(`  teardown: podwire down ${name}: ${problem}`);
        }
        rmSync(this.stateDir, { recursive: true, force: true });
      }
      const namespaces = await namespacesWithPrefix(`${NETNS_PREFIX}${process.pid}-`);
      for (const problem of await deleteNamespaces(namespaces)) this.log(`  teardown: ${problem}`);
      if (this.toolDir !== undefined) rmSync(this.toolDir, { recursive: true, force: true });
    })());
  }
}

/** The pid a name carries, when the process is still a live node (a run of this benchmark). */
function ownerAlive(pid: number): boolean {
  return pid !== process.pid && commandName(pid) === 'node';
}

/** Removes what runs killed outright left behind: their namespaces, clusters and tool directories. */
async function removeStale(log: (line: string) => void): Promise<void> {
  const pidOf = (name: string, prefix: string) => Number(new RegExp(`^${prefix}(\\d+)-`).exec(name)?.[1]);
  const isStale = (name: string, prefix: string) => {
    const pid = pidOf(name, prefix);
    return Number.isInteger(pid) && !ownerAlive(pid);
  };
  const stale = (await namespacesWithPrefix(NETNS_PREFIX)).filter((ns) => isStale(ns, NETNS_PREFIX));
  if (stale.length > 0) log(`  removing ${stale.length} namespace(s) a killed run left`);
  for (const problem of await deleteNamespaces(stale)) log(`  stale namespace: ${problem}`);
  for (const entry of readdirSync(tmpdir())) {
    const dir = path.join(tmpdir(), entry);
    if (isStale(entry, STATE_PREFIX)) {
      // podwire keeps a cluster's state in <state-dir>/<name>/.
      for (const name of readdirSync(dir).filter((n) => statSync(path.join(dir, n)).isDirectory())) {
        log(`  removing cluster ${name}, left by a killed run`);
        const problem = await podwireDown(name, dir);
        if (problem !== undefined) log(`  stale cluster ${name}: ${problem}`);
      }
      rmSync(dir, { recursive: true, force: true });
    } else if (isStale(entry, TOOLS_PREFIX)) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** One of the nine dataplanes, as a trial sees it. */
interface Target {
  readonly size: SizeLabel;
  readonly side: Side;
  trial(tool: string, window: Window): Promise<Trial>;
}

type Window = Pick<SynRequest, 'seconds' | 'maxRate' | 'firstPort' | 'ports'>;

function synRequest(cluster: SyntheticCluster, window: Window, countNetns: string, countIf: string, sources: readonly SynSource[]): SynRequest {
  return { ...window, dst: cluster.targetIp, dport: SERVICE_PORT, countNetns, countIf, sources };
}

function kernelTarget(size: SizeLabel, node: KernelNode): Target {
  return {
    size,
    side: node.layout,
    async trial(tool, window) {
      const syn = await sendSyns(tool, synRequest(node.cluster, window, node.backend, BACKEND_IF, node.sources));
      await sleep(DRAIN_MS);
      // The table was flushed after the last trial: every entry is a new flow of this one.
      const translated = await node.conntrackCount();
      await node.flushConntrack();
      return { side: node.layout, size, ...fromSyn(syn, window), translated, conntrackLimit: node.conntrackLimit };
    },
  };
}

function podwireTarget(size: SizeLabel, node: PodwireNode): Target {
  return {
    size,
    side: 'podwire',
    async trial(tool, window) {
      // The node's CPU is read after the first status answer and before the second, so that
      // answering `podwire status` is not counted.
      const c0 = await node.counters();
      const u0 = node.usage();
      const syn = await sendSyns(tool, synRequest(node.cluster, window, node.backend.netns, POD_IF, node.sources));
      await sleep(DRAIN_MS);
      const u1 = node.usage();
      const c1 = await node.counters();
      const drops: Record<string, number> = {};
      for (const [reason, n] of Object.entries(c1.drops)) {
        const delta = n - (c0.drops[reason] ?? 0);
        if (delta !== 0) drops[reason] = delta;
      }
      const usage: NodeUsage = {
        cpuUs: u1.cpuUs - u0.cpuUs,
        sysUs: u1.sysUs - u0.sysUs,
        wakeups: u1.voluntary - u0.voluntary,
        preempted: u1.involuntary - u0.involuntary,
        framesIn: u1.framesIn - u0.framesIn,
        tapDropped: u1.tapDropped - u0.tapDropped,
        waitedUs: (u1.runDelayNs - u0.runDelayNs) / 1000,
        delivered: u1.backendRx - u0.backendRx,
        serviceFlows: c1.serviceFlows - c0.serviceFlows,
        drops,
      };
      return { side: 'podwire', size, ...fromSyn(syn, window), translated: usage.serviceFlows, node: usage };
    },
  };
}

function fromSyn(syn: SynResult, window: Window): Pick<Trial, 'sent' | 'seconds' | 'refused' | 'arrived' | 'senderCpuUs' | 'pace'> {
  return { sent: syn.sent, seconds: syn.seconds, refused: syn.refused, arrived: syn.arrived, senderCpuUs: syn.cpuUs, pace: window.maxRate };
}

/** Port slices: the warm-up passes', then one per round. */
function windows(d: Durations): { warm: Window[]; rounds: Window[] } {
  const warmPorts = WARM_PASSES * WARM_PORTS;
  const perRound = Math.floor((PORT_SPACE - warmPorts) / d.rounds);
  return {
    warm: Array.from({ length: WARM_PASSES }, (_, p) => ({ seconds: d.warmS, maxRate: WARM_RATE, firstPort: FIRST_PORT + p * WARM_PORTS, ports: WARM_PORTS })),
    rounds: Array.from({ length: d.rounds }, (_, r) => ({
      seconds: d.windowS,
      maxRate: OFFERED_RATE,
      firstPort: FIRST_PORT + warmPorts + r * perRound,
      ports: perRound,
    })),
  };
}

async function measure(d: Durations, owned: Owned, log: (line: string) => void): Promise<Rounds> {
  const pid = process.pid;
  owned.toolDir = mkdtempSync(path.join(tmpdir(), `${TOOLS_PREFIX}${pid}-`));
  const tool = await buildTool(owned.toolDir);
  owned.stateDir = mkdtempSync(path.join(tmpdir(), `${STATE_PREFIX}${pid}-`));
  const names = pickClusterNames(SIZES.map((s) => `pwnf${pid}n${s.label.toLowerCase()}`));

  const targets: Target[] = [];
  const clusters = SIZES.map((s, i) => ({ size: s.label, name: names[i], cluster: syntheticCluster(names[i], s.n, CONNTRACK_MAX) }));
  log('  kernel nodes: pwnf-<pid>-<ipt|nft>-<N>-{c,r,b} (clients, node, backend), bridge and veths');
  for (const { size, cluster } of clusters) {
    for (const layout of ['iptables', 'nftables'] as Layout[]) {
      const node = await KernelNode.create(layout, cluster, tool, owned.toolDir);
      targets.push(kernelTarget(size, node));
      const loader = layout === 'iptables' ? 'iptables-restore' : 'nft -f';
      log(`    ${size.padStart(3)} services, ${layout}: rules loaded by ${loader} in ${(node.loadMs / 1000).toFixed(2)} s; nf_conntrack_max ${node.conntrackLimit}`);
    }
  }
  for (const { size, name, cluster } of clusters) {
    owned.clusters.push(name); // before `up`, so that teardown removes a half-started cluster
    const started = performance.now();
    const node = await PodwireNode.up(cluster, name, owned.stateDir);
    log(
      `  podwire up --name ${name}: ${cluster.services} services, ${CLIENT_COUNT + 1} pods, conntrackMax ${CONNTRACK_MAX} ` +
        `(${((performance.now() - started) / 1000).toFixed(1)} s; node pid ${node.nodePid}, ${node.tapBackend})`,
    );
    const modelIps = [cluster.backendIp, ...cluster.clientIps].join(' ');
    const podIps = [node.backend.ip, ...node.clients.map((c) => c.ip)].join(' ');
    if (modelIps !== podIps) log(`    note: podwire gave the pods ${podIps}; the kernel nodes use the model's ${modelIps}`);
    targets.push(podwireTarget(size, node));
  }

  const w = windows(d);
  log(`  warm-up: ${WARM_PASSES} × ${d.warmS} s at ${WARM_RATE / 1000}k SYN/s into each dataplane (ARP, JIT, first touch of the tables)`);
  for (const t of targets) {
    const passes: Trial[] = [];
    for (const window of w.warm) passes.push(await t.trial(tool, window));
    log(`    ${t.size.padStart(3)} ${t.side.padEnd(8)} ${passes.map(describeWarmUp).join('; ')}`);
    checkWarmUp(t, passes[passes.length - 1]);
  }

  const rounds: Partial<Record<SizeLabel, Partial<Record<Side, Trial>>>>[] = [];
  for (let r = 0; r < d.rounds; r++) {
    log(`  round ${r + 1} of ${d.rounds}: source ports ${w.rounds[r].firstPort}-${w.rounds[r].firstPort + w.rounds[r].ports - 1}`);
    const round: Partial<Record<SizeLabel, Partial<Record<Side, Trial>>>> = {};
    const order = SIDES.map((_, i) => SIDES[(i + r) % SIDES.length]);
    for (const { label } of SIZES) {
      for (const side of order) {
        const target = targets.find((t) => t.size === label && t.side === side);
        if (target === undefined) continue;
        const trial = await target.trial(tool, w.rounds[r]);
        (round[label] ??= {})[side] = trial;
        log(`    ${label.padStart(3)} ${side.padEnd(8)} ${describeTrial(trial)}${checkTrial(trial)}`);
      }
    }
    rounds.push(round);
  }
  return rounds;
}

function describeWarmUp(t: Trial): string {
  const delivered = t.node?.delivered ?? t.arrived;
  return `${delivered} of ${t.sent} SYNs delivered${t.node === undefined ? '' : `, ${t.node.cpuUs > 0 && delivered > 0 ? (t.node.cpuUs / delivered).toFixed(1) : '-'} µs node CPU each`}`;
}

/**
 * A warm-up pass far below every dataplane's capacity gets nearly every SYN through; one
 * that gets less than half through has a broken path (rules not loaded, a route or a
 * neighbour missing), and the rounds would measure nothing.
 */
function checkWarmUp(t: Target, last: Trial): void {
  const delivered = last.node?.delivered ?? last.arrived;
  if (delivered < 0.5 * last.sent || last.translated < 0.5 * last.sent) {
    throw new Error(
      `${t.side}, ${t.size} services: only ${delivered} of ${last.sent} warm-up SYNs reached the backend (${last.translated} new flows counted by the dataplane); the path is broken`,
    );
  }
}

/** What looks wrong about a trial, as a suffix for its log line. */
function checkTrial(t: Trial): string {
  const notes: string[] = [];
  // The dataplane's own count includes what it translated after the window closed.
  const total = t.node?.delivered ?? t.arrived;
  if (Math.abs(t.translated - total) > Math.max(10, 0.01 * total)) notes.push(`the dataplane counted ${t.translated} new flows, the backend ${total}`);
  if (t.arrived >= 0.95 * t.sent && t.sent >= 0.95 * t.pace * t.seconds) notes.push(`${t.side} kept up with the sender's pace: its capacity is at least this`);
  if (t.conntrackLimit !== undefined && t.translated >= 0.9 * t.conntrackLimit) notes.push('the kernel connection table was nearly full');
  return notes.length === 0 ? '' : `\n             note: ${notes.join('; ')}`;
}
