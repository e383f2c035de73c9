/**
 * The dataplane benchmark: podwire and the kernel side by side, in one run, on the same
 * pod layout (srv1 and cli1 on node-1, srv2 on node-2):
 *
 *   iperf3 TCP      cli1 -> srv2 (cross-node), cli1 -> srv1 (same-node)
 *   ping RTT        the same two paths
 *   UDP flood       64-byte datagrams from a C sendmmsg() loop, the same two paths
 *   watched         podwire alone: the flood cross-node at 200k pps with nothing, observe
 *                   --follow, and observe and capture --pod cli1 running (watched.ts)
 *   TAP I/O         the io benchmark's read/write rates of the tuntap2 fork and the addon
 *
 * Each measurement runs on podwire and then at once on the kernel, rather than all of
 * podwire's and then all of the kernel's: this machine is shared, and neighbours' load
 * drifts over minutes, so a ratio is only honest when its two halves ran side by side.
 *
 * Both topologies stay up for the whole run (an idle podwire node costs nothing
 * measurable) and are torn down in `finally`, on a signal, and, should a run have been
 * killed outright, by the next run (see lock.ts).
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Figure } from '../harness.js';
import { buildFigures, PATHS, renderTable, SIDES, STEP_NAMES, UDP_PACED_PPS, UDP_PAYLOAD, type Pair, type PathKind, type Results, type Side } from './figures.js';
import { buildFlood, parseWake } from './flood.js';
import { destroyIoNamespace, IO_FIGURES, ioFigureName, ioFigures } from './io-figures.js';
import { destroyKernelTopology, KernelTopology } from './kernel.js';
import { acquireLock, type Lock } from './lock.js';
import { ping, tcp, udpFlood } from './measure.js';
import { pickClusterNames } from '../cluster-names.js';
import { PodwireCluster, podwireDown } from './podwire.js';
import { measureWatched } from './watched.js';
import { abortAll, inNetns, run, stopAllBackground } from './proc.js';
import type { PodRef, Topology, Usage } from './topology.js';

export interface DataplaneOptions {
  /** 2-second variant: checks that everything works, figures are rough. */
  readonly quick: boolean;
  /** Whether a figure of this name is wanted (the harness's filter). */
  selects(name: string): boolean;
  log(line: string): void;
}

interface Durations {
  readonly tcpSeconds: number;
  readonly pingCount: number;
  readonly udpSeconds: number;
  readonly ioSeconds: number;
}

const FULL: Durations = { tcpSeconds: 10, pingCount: 200, udpSeconds: 5, ioSeconds: 2 };
const QUICK: Durations = { tcpSeconds: 2, pingCount: 50, udpSeconds: 2, ioSeconds: 1 };

/** Why this machine cannot run the benchmark, or undefined. */
export async function whyCannotRun(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, TAPs, veths)';
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return 'needs /dev/net/tun';
  }
  for (const tool of [['iperf3', '--version'], ['gcc', '--version'], ['ping', '-V'], ['bridge', '-V'], ['ip', '-V']]) {
    try {
      await run(tool);
    } catch {
      return `needs ${tool[0]}`;
    }
  }
  return undefined;
}

/** The two pods of a path: always from cli1 on node-1. */
function endpoints(topo: Topology, p: PathKind): { from: PodRef; to: PodRef } {
  return { from: topo.pods.cli1, to: p === 'cross' ? topo.pods.srv2 : topo.pods.srv1 };
}

/** Runs `measure` on podwire, then on the kernel, and logs both. */
async function sideBySide<T>(
  topologies: Readonly<Record<Side, Topology>>,
  measure: (topo: Topology) => Promise<T>,
  describe: (r: T) => string,
  log: (line: string) => void,
): Promise<Pair<T>> {
  const out = {} as Record<Side, T>;
  for (const side of SIDES) {
    out[side] = await measure(topologies[side]);
    log(`    ${side.padEnd(7)} ${describe(out[side])}`);
  }
  return out;
}

async function measureAll(topologies: Readonly<Record<Side, Topology>>, flood: string, d: Durations, opts: DataplaneOptions): Promise<Results> {
  const { log, selects } = opts;
  const wanted = (names: string[]) => names.some((n) => selects(n));
  const results: Results = { tcp: {}, ping: {}, udp: {}, udpPaced: {} };
  const cpu = (u: Usage | undefined) => (u === undefined ? '' : `\n${describeUsage(u)}`);

  if (wanted(STEP_NAMES.wake)) {
    // At ping's pace: what one hop through a sleeping node process costs before any work.
    results.wake = parseWake(await run([flood, 'wake', String(d.pingCount), '10000']));
    log(`  process wake-up latency at 10 ms intervals: median ${results.wake.medianUs.toFixed(0)} µs, p99 ${results.wake.p99Us.toFixed(0)} µs`);
  }

  for (const p of PATHS) {
    if (!wanted(STEP_NAMES.tcp(p))) continue;
    log(`  iperf3 TCP ${p}-node, ${d.tcpSeconds} s`);
    results.tcp[p] = await sideBySide(
      topologies,
      (t) => tcp(t, endpoints(t, p).from, endpoints(t, p).to, d.tcpSeconds),
      (r) => `${r.gbps.toFixed(2)} Gbit/s, ${r.retransmits} retransmits${cpu(r.usage)}`,
      log,
    );
  }
  for (const p of PATHS) {
    if (!wanted(STEP_NAMES.ping(p))) continue;
    log(`  ping ${p}-node, ${d.pingCount} echoes at 10 ms`);
    results.ping[p] = await sideBySide(
      topologies,
      (t) => ping(endpoints(t, p).from, endpoints(t, p).to, d.pingCount),
      (r) => `median ${r.medianUs.toFixed(0)} µs, p99 ${r.p99Us.toFixed(0)} µs, min ${r.minUs.toFixed(0)} µs, ${r.received}/${r.sent} replies`,
      log,
    );
  }
  for (const p of PATHS) {
    if (!wanted(STEP_NAMES.udp(p))) continue;
    log(`  UDP ${UDP_PAYLOAD} B flood ${p}-node, ${d.udpSeconds} s`);
    results.udp[p] = await sideBySide(
      topologies,
      (t) => udpFlood(t, flood, endpoints(t, p).from, endpoints(t, p).to, d.udpSeconds, UDP_PAYLOAD),
      (r) =>
        `offered ${Math.round(r.offeredPps)} pps, delivered ${Math.round(r.deliveredPps)} pps, read ${Math.round(r.receivedPps)} pps${cpu(r.usage)}`,
      log,
    );
  }
  for (const p of PATHS) {
    if (!wanted(STEP_NAMES.udpPaced(p))) continue;
    log(`  UDP ${UDP_PAYLOAD} B ${p}-node paced at ${UDP_PACED_PPS} pps, ${d.udpSeconds} s`);
    results.udpPaced[p] = await sideBySide(
      topologies,
      (t) => udpFlood(t, flood, endpoints(t, p).from, endpoints(t, p).to, d.udpSeconds, UDP_PAYLOAD, UDP_PACED_PPS),
      (r) => `offered ${Math.round(r.offeredPps)} pps, delivered ${Math.round(r.deliveredPps)} pps, lost ${Math.max(0, r.sent - r.delivered)} of ${r.sent}${cpu(r.usage)}`,
      log,
    );
  }
  return results;
}

/** MTU, queue length and offloads of a pod's interface: what shapes what its kernel sends. */
async function describeInterface(pod: PodRef): Promise<string> {
  const [link] = JSON.parse(await run(['ip', '-n', pod.netns, '-j', 'link', 'show', 'dev', pod.ifName])) as { mtu: number; txqlen: number }[];
  const features = await run(inNetns(pod.netns, ['ethtool', '-k', pod.ifName])).catch(() => '');
  const feature = (key: string) => new RegExp(`^${key}: (\\S+)`, 'm').exec(features)?.[1] ?? '?';
  return `${pod.ifName} mtu ${link.mtu} qlen ${link.txqlen}, TSO ${feature('tcp-segmentation-offload')}, GSO ${feature('generic-segmentation-offload')}, tx checksum ${feature('tx-checksumming')}`;
}

/** podwire's side of a measurement, per node, for the log. */
function describeUsage(u: Usage): string {
  return u.nodes
    .map(
      (n) =>
        `            ${n.name}: ${(n.cpuUs / 1e6 / u.seconds).toFixed(2)} cores (${n.cpuUs > 0 ? ((100 * n.sysUs) / n.cpuUs).toFixed(0) : '-'}% system), ` +
        `${n.frames} frames in, ${n.frames > 0 ? (n.cpuUs / n.frames).toFixed(2) : '-'} µs/frame, ${n.wakeups} wake-ups, ${n.preempted} preemptions, ` +
        `dropped: ${n.drops} pipeline, ${n.tapDropsIn} pod->node TAP queue, ${n.tapDropsOut} node->pod TAP write`,
    )
    .join('\n');
}

/** Runs the benchmark and returns its figures; [] (with a log line) when the machine cannot. */
export async function runDataplane(opts: DataplaneOptions): Promise<Figure[]> {
  const { log } = opts;
  const d = opts.quick ? QUICK : FULL;
  const wantMeasurements =
    [...STEP_NAMES.wake, ...STEP_NAMES.watched].some((n) => opts.selects(n)) || PATHS.some((p) => [...STEP_NAMES.tcp(p), ...STEP_NAMES.ping(p), ...STEP_NAMES.udp(p), ...STEP_NAMES.udpPaced(p)].some((n) => opts.selects(n)));
  const wantIo = IO_FIGURES.some((n) => opts.selects(ioFigureName(n)));
  if (!wantMeasurements && !wantIo) return [];
  const reason = await whyCannotRun();
  if (reason !== undefined) {
    log(`  (no dataplane figures: ${reason})`);
    return [];
  }

  const load = () => loadavg()[0].toFixed(1);
  log(`  ${cpus().length} CPUs, load average ${load()} at start; ${opts.quick ? 'quick (2 s) variant' : 'full run'}`);
  const owned = new Owned(await acquireLock(log), log);
  // Ctrl-C or a kill mid-run: tear down, then leave as the signal would have.
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n  ${signal}: tearing down`);
    void abortAll()
      .then(() => owned.releaseAll())
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let results: Results = { tcp: {}, ping: {}, udp: {}, udpPaced: {} };
    if (wantMeasurements) {
      try {
        results = await measureBothSides(opts, d, owned);
      } finally {
        await owned.releaseTopologies();
      }
    }
    const figures = buildFigures(results).filter((f) => opts.selects(f.name));
    // After the topologies are gone: the io benchmark gets the CPUs as it would alone.
    if (wantIo) {
      log(`  io bench: TAP read/write, addon and tuntap2 fork, ${d.ioSeconds} s windows`);
      figures.push(...(await ioFigures(d.ioSeconds, log)).filter((f) => opts.selects(f.name)));
    }
    log(`  load average ${load()} at the end: on a shared machine read the ratios, each measured side by side`);
    log(`\n${renderTable(results, figures)}`);
    return figures;
  } finally {
    await owned.releaseAll();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/**
 * Everything a run has made, so that teardown removes exactly that, once, whichever
 * step failed: background processes, the podwire cluster and its state directory, the
 * kernel topology, the io namespace, the compiled tools, and last the lock.
 */
class Owned {
  toolDir: string | undefined;
  cluster: { readonly name: string; readonly stateDir: string } | undefined;
  private topologiesReleased: Promise<void> | undefined;
  private allReleased: Promise<void> | undefined;

  constructor(
    readonly lock: Lock,
    private readonly log: (line: string) => void,
  ) {}

  /** Idempotent; never throws (problems are logged). */
  releaseTopologies(): Promise<void> {
    return (this.topologiesReleased ??= (async () => {
      await stopAllBackground();
      if (this.cluster !== undefined) {
        const problem = await podwireDown(this.cluster.name, this.cluster.stateDir);
        if (problem !== undefined) this.log(`  teardown: podwire down: ${problem}`);
        rmSync(this.cluster.stateDir, { recursive: true, force: true });
      }
      for (const problem of await destroyKernelTopology()) this.log(`  teardown: ${problem}`);
    })());
  }

  /** Idempotent; never throws (problems are logged). */
  releaseAll(): Promise<void> {
    return (this.allReleased ??= (async () => {
      await this.releaseTopologies();
      await stopAllBackground(); // the io driver, when a signal cut it short
      await destroyIoNamespace();
      if (this.toolDir !== undefined) rmSync(this.toolDir, { recursive: true, force: true });
      this.lock.release();
    })());
  }
}

async function measureBothSides(opts: DataplaneOptions, d: Durations, owned: Owned): Promise<Results> {
  const { log } = opts;
  owned.toolDir = mkdtempSync(path.join(tmpdir(), 'pwkb-dataplane-tools-'));
  owned.lock.record({ toolDir: owned.toolDir });
  const flood = await buildFlood(owned.toolDir);

  const [name] = pickClusterNames([`pwkb${process.pid}`]);
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pwkb-dataplane-state-'));
  // Recorded before `up`, so that teardown (or the next run, after a crash) removes it.
  owned.cluster = { name, stateDir };
  owned.lock.record({ cluster: name, stateDir });
  log(`  podwire up --name ${name} (2 nodes: srv1, cli1 on node-1; srv2 on node-2)`);
  const podwire = await PodwireCluster.up(name, stateDir);
  log(`    node pids ${[...podwire.nodePids].map(([n, pid]) => `${n}=${pid}`).join(' ')}, ${podwire.backends}`);
  log('  kernel topology: pwkbn1/pwkbn2, bridge pwkbbr0, vxlan pwkbvx, veth underlay');
  const kernel = await KernelTopology.create();
  const topologies: Record<Side, Topology> = { podwire, kernel };
  for (const side of SIDES) log(`    ${side} pod interface: ${await describeInterface(topologies[side].pods.cli1)}`);

  // Both sides must carry both paths before anything is timed.
  for (const side of SIDES) {
    for (const p of PATHS) {
      const { from, to } = endpoints(topologies[side], p);
      await run(inNetns(from.netns, ['ping', '-c', '3', '-i', '0.1', '-W', '2', to.ip])).catch((err: Error) => {
        throw new Error(`${side}: ${from.role} cannot reach ${to.role} (${to.ip}): ${err.message}`);
      });
    }
  }
  const results = await measureAll(topologies, flood, d, opts);
  if (STEP_NAMES.watched.some((n) => opts.selects(n))) results.watched = await measureWatched(podwire, flood, d.udpSeconds, log);
  return results;
}
