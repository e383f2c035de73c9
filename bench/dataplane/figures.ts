/**
 * Figure names, the figures made from the results, and the side-by-side table.
 *
 * Names are functions of the path and the side so that the runner can ask the harness's
 * filter whether a measurement is wanted before running it.
 */
import { atLeast, atMost, formatNumber, formatTarget, meetsTarget, type Figure, type Target } from '../harness.js';
import type { WakeResult } from './flood.js';
import type { PingResult, TcpResult, UdpResult } from './measure.js';
import type { Usage } from './topology.js';

export type PathKind = 'cross' | 'same';
export type Side = 'podwire' | 'kernel';
export const SIDES: readonly Side[] = ['podwire', 'kernel'];
export const PATHS: readonly PathKind[] = ['cross', 'same'];
/** The UDP payload: 64-byte datagrams (106-byte frames on the pod's interface). */
export const UDP_PAYLOAD = 64;
/** The paced flood's rate: the 300k packets/s through each node process. */
export const UDP_PACED_PPS = 300_000;
/**
 * The share of a paced flood that may be lost while the path still counts as carrying
 * it: FD.io CSIT's partial drop rate (PDR) allows 0.5%. Zero loss (their NDR) on a shared
 * VM measures the neighbours: one 4 ms stall of the host is 1200 datagrams at 300k pps.
 */
export const UDP_PACED_LOSS_ALLOWED = 0.005;
/** The watched flood's rate: the observe issue's 200k packets/s. */
export const WATCHED_PPS = 200_000;
/** Plain and watched windows, alternated. */
export const WATCHED_ROUNDS = 2;
const NODES = ['node-1', 'node-2'] as const;

/** What watched the flood: nothing, observe following, observe following and a capture of cli1. */
export type Watching = 'plain' | 'observed' | 'captured';
const WATCHINGS: readonly Watching[] = ['plain', 'observed', 'captured'];
const WATCHING: Readonly<Record<Watching, string>> = {
  plain: 'nothing watching',
  observed: 'observe --follow',
  captured: 'observe --follow and capture --pod cli1',
};


const WHERE: Readonly<Record<PathKind, string>> = { cross: 'cross-node', same: 'same-node' };

export const TARGETS = {
  tcpRatio: { cross: atLeast(0.5), same: atLeast(0.7) } as Readonly<Record<PathKind, Target>>,
  pingRatio: { cross: atMost(2) } as Readonly<Partial<Record<PathKind, Target>>>,
  /**
   * 300k pps paced through both node processes, so each forwards them all. The unpaced
   * flood has no target: its sender takes a core of the two, and how much of the rest the
   * nodes get is the scheduler's call, not the dataplane's.
   */
  udpPacedDelivered: { cross: atLeast(UDP_PACED_PPS * (1 - UDP_PACED_LOSS_ALLOWED)) } as Readonly<Partial<Record<PathKind, Target>>>,
  /** Observe following adds at most 5% node CPU per frame (the observe issue's bound). */
  observedRatio: atMost(1.05),
};

export const NAMES = {
  tcp: (p: PathKind, s: Side) => `dataplane: TCP ${WHERE[p]}, ${s}`,
  tcpRatio: (p: PathKind) => `dataplane: TCP ${WHERE[p]}, podwire / kernel`,
  tcpCpuFrame: (p: PathKind) => `dataplane: TCP ${WHERE[p]}, podwire node CPU per frame`,
  tcpCpuGbit: (p: PathKind) => `dataplane: TCP ${WHERE[p]}, podwire node CPU per Gbit`,
  tcpDrops: (p: PathKind) => `dataplane: TCP ${WHERE[p]}, podwire frames dropped`,
  tcpSys: (p: PathKind) => `dataplane: TCP ${WHERE[p]}, podwire node CPU in the kernel`,
  tcpBatch: (p: PathKind) => `dataplane: TCP ${WHERE[p]}, podwire frames per node wake-up`,
  pingMedian: (p: PathKind, s: Side) => `dataplane: ping RTT ${WHERE[p]}, median, ${s}`,
  pingP99: (p: PathKind, s: Side) => `dataplane: ping RTT ${WHERE[p]}, p99, ${s}`,
  pingRatio: (p: PathKind) => `dataplane: ping RTT ${WHERE[p]}, median, podwire / kernel`,
  udpOffered: (p: PathKind, s: Side) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, offered, ${s}`,
  udpDelivered: (p: PathKind, s: Side) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, delivered to the pod, ${s}`,
  udpReceived: (p: PathKind, s: Side) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, read by the receiver, ${s}`,
  udpRatio: (p: PathKind) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, delivered, podwire / kernel`,
  udpCpuFrame: (p: PathKind) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, podwire node CPU per frame`,
  udpDrops: (p: PathKind) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, podwire frames dropped`,
  udpSys: (p: PathKind) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, podwire node CPU in the kernel`,
  udpBatch: (p: PathKind) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, podwire frames per node wake-up`,
  udpNodeRate: (p: PathKind, node: string) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, podwire ${node} frames/s`,
  udpNodeCores: (p: PathKind, node: string) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]}, podwire ${node} CPU`,
  udpPacedDelivered: (p: PathKind, s: Side) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]} paced at ${UDP_PACED_PPS / 1000}k pps, delivered, ${s}`,
  udpPacedLoss: (p: PathKind, s: Side) => `dataplane: UDP ${UDP_PAYLOAD} B ${WHERE[p]} paced at ${UDP_PACED_PPS / 1000}k pps, lost, ${s}`,
  watchedCpuFrame: (w: Watching) => `dataplane: UDP ${UDP_PAYLOAD} B cross-node at ${WATCHED_PPS / 1000}k pps, podwire node CPU per frame, ${WATCHING[w]}`,
  watchedRatio: (w: Exclude<Watching, 'plain'>) => `dataplane: UDP ${UDP_PAYLOAD} B cross-node at ${WATCHED_PPS / 1000}k pps, node CPU per frame, ${WATCHING[w]} / nothing watching`,
  watchedLoss: (w: Watching) => `dataplane: UDP ${UDP_PAYLOAD} B cross-node at ${WATCHED_PPS / 1000}k pps, lost, ${WATCHING[w]}`,
  watchedCaptureDropped: `dataplane: UDP ${UDP_PAYLOAD} B cross-node at ${WATCHED_PPS / 1000}k pps, packets the capture's reader was too slow for`,
  wakeMedian: 'dataplane: process wake-up latency, median',
  wakeP99: 'dataplane: process wake-up latency, p99',
};

/** Every name a measurement can produce, to decide whether it is wanted at all. */
export const STEP_NAMES = {
  tcp: (p: PathKind) => [...SIDES.map((s) => NAMES.tcp(p, s)), NAMES.tcpRatio(p), NAMES.tcpCpuFrame(p), NAMES.tcpCpuGbit(p), NAMES.tcpDrops(p), NAMES.tcpSys(p), NAMES.tcpBatch(p)],
  ping: (p: PathKind) => [...SIDES.flatMap((s) => [NAMES.pingMedian(p, s), NAMES.pingP99(p, s)]), NAMES.pingRatio(p)],
  wake: [NAMES.wakeMedian, NAMES.wakeP99],
  udp: (p: PathKind) => [
    ...SIDES.flatMap((s) => [NAMES.udpOffered(p, s), NAMES.udpDelivered(p, s), NAMES.udpReceived(p, s)]),
    NAMES.udpRatio(p),
    NAMES.udpCpuFrame(p),
    NAMES.udpDrops(p),
    NAMES.udpSys(p),
    NAMES.udpBatch(p),
    ...NODES.flatMap((n) => [NAMES.udpNodeRate(p, n), NAMES.udpNodeCores(p, n)]),
  ],
  udpPaced: (p: PathKind) => SIDES.flatMap((s) => [NAMES.udpPacedDelivered(p, s), NAMES.udpPacedLoss(p, s)]),
  watched: [
    ...WATCHINGS.flatMap((w) => [NAMES.watchedCpuFrame(w), NAMES.watchedLoss(w)]),
    NAMES.watchedRatio('observed'),
    NAMES.watchedRatio('captured'),
    NAMES.watchedCaptureDropped,
  ],
};

export type Pair<T> = Readonly<Record<Side, T>>;

export interface Results {
  tcp: Partial<Record<PathKind, Pair<TcpResult>>>;
  ping: Partial<Record<PathKind, Pair<PingResult>>>;
  udp: Partial<Record<PathKind, Pair<UdpResult>>>;
  /** The same flood paced at UDP_PACED_PPS. */
  udpPaced: Partial<Record<PathKind, Pair<UdpResult>>>;
  /** How late a sleeping process wakes here: each hop through a node process pays it. */
  wake?: WakeResult;
  /** podwire only: the flood at WATCHED_PPS with and without observe and capture running. */
  watched?: WatchedResult;
}

export interface WatchedResult extends Readonly<Record<Watching, readonly UdpResult[]>> {
  /** What each captured window's capture reported. */
  readonly captures: readonly { captured: number; dropped: number; bytes: number }[];
}

/** Node CPU per frame over several windows: their CPU summed over their frames summed. */
function pooledCpuPerFrame(results: readonly UdpResult[]): number {
  let cpuUs = 0;
  let frames = 0;
  for (const r of results) {
    cpuUs += r.usage?.cpuUs ?? NaN;
    frames += r.usage?.frames ?? NaN;
  }
  return frames > 0 ? cpuUs / frames : NaN;
}

function pooledLossPercent(results: readonly UdpResult[]): number {
  const sent = results.reduce((s, r) => s + r.sent, 0);
  const delivered = results.reduce((s, r) => s + Math.min(r.sent, r.delivered), 0);
  return sent > 0 ? (100 * (sent - delivered)) / sent : NaN;
}

function fig(name: string, value: number, unit: string, target?: Target): Figure {
  const rounded = Number.isFinite(value) ? Number(value.toPrecision(4)) : value;
  return target === undefined ? { name, value: rounded, unit } : { name, value: rounded, unit, target };
}

/** Percent of the datagrams sent that never reached the receiving pod's interface. */
function lossPercent(u: UdpResult): number {
  return u.sent > 0 ? (100 * Math.max(0, u.sent - u.delivered)) / u.sent : NaN;
}

/** µs of node CPU per frame a node handled (a frame crossing two nodes counts twice). */
function cpuPerFrame(u: Usage): number {
  return u.frames > 0 ? u.cpuUs / u.frames : NaN;
}

/**
 * Where podwire's time went, as far as /proc tells from outside: the share of node CPU
 * spent in the kernel (TAP and UDP syscalls), how many frames one wake-up of the event
 * loop handled (small batches mean per-wake-up costs dominate), and what was dropped.
 */
function nodeFigures(u: Usage, names: { sys: string; batch: string; drops: string }): Figure[] {
  return [
    fig(names.sys, u.cpuUs > 0 ? (100 * u.sysUs) / u.cpuUs : NaN, '%'),
    fig(names.batch, u.wakeups > 0 ? u.frames / u.wakeups : NaN, 'frames'),
    fig(names.drops, u.drops + u.tapDropsIn + u.tapDropsOut, 'frames'),
  ];
}

export function buildFigures(r: Results): Figure[] {
  const out: Figure[] = [];
  if (r.wake !== undefined) {
    out.push(fig(NAMES.wakeMedian, r.wake.medianUs, 'µs'));
    out.push(fig(NAMES.wakeP99, r.wake.p99Us, 'µs'));
  }
  for (const p of PATHS) {
    const tcp = r.tcp[p];
    if (tcp !== undefined) {
      for (const s of SIDES) out.push(fig(NAMES.tcp(p, s), tcp[s].gbps, 'Gbit/s'));
      out.push(fig(NAMES.tcpRatio(p), tcp.podwire.gbps / tcp.kernel.gbps, 'x', TARGETS.tcpRatio[p]));
      const u = tcp.podwire.usage;
      if (u !== undefined) {
        out.push(fig(NAMES.tcpCpuFrame(p), cpuPerFrame(u), 'µs/frame'));
        // CPU milliseconds both nodes spent per gigabit delivered.
        const gbit = tcp.podwire.gbps * u.seconds;
        out.push(fig(NAMES.tcpCpuGbit(p), gbit > 0 ? u.cpuUs / 1000 / gbit : NaN, 'ms/Gbit'));
        out.push(...nodeFigures(u, { sys: NAMES.tcpSys(p), batch: NAMES.tcpBatch(p), drops: NAMES.tcpDrops(p) }));
      }
    }
    const ping = r.ping[p];
    if (ping !== undefined) {
      for (const s of SIDES) {
        out.push(fig(NAMES.pingMedian(p, s), ping[s].medianUs, 'µs'));
        out.push(fig(NAMES.pingP99(p, s), ping[s].p99Us, 'µs'));
      }
      out.push(fig(NAMES.pingRatio(p), ping.podwire.medianUs / ping.kernel.medianUs, 'x', TARGETS.pingRatio[p]));
    }
    const udp = r.udp[p];
    if (udp !== undefined) {
      for (const s of SIDES) {
        out.push(fig(NAMES.udpOffered(p, s), udp[s].offeredPps, 'packets/s'));
        out.push(fig(NAMES.udpDelivered(p, s), udp[s].deliveredPps, 'packets/s'));
        out.push(fig(NAMES.udpReceived(p, s), udp[s].receivedPps, 'packets/s'));
      }
      out.push(fig(NAMES.udpRatio(p), udp.podwire.deliveredPps / udp.kernel.deliveredPps, 'x'));
      const u = udp.podwire.usage;
      if (u !== undefined) {
        out.push(fig(NAMES.udpCpuFrame(p), cpuPerFrame(u), 'µs/frame'));
        out.push(...nodeFigures(u, { sys: NAMES.udpSys(p), batch: NAMES.udpBatch(p), drops: NAMES.udpDrops(p) }));
        // A node the path does not cross (node-2, same-node) would only add zeros.
        for (const n of u.nodes.filter((x) => x.frames > 0)) {
          // Over the sender's window: the frames (and nearly all the CPU) fall inside it.
          out.push(fig(NAMES.udpNodeRate(p, n.name), n.frames / udp.podwire.sendSeconds, 'frames/s'));
          out.push(fig(NAMES.udpNodeCores(p, n.name), n.cpuUs / 1e6 / udp.podwire.sendSeconds, 'cores'));
        }
      }
    }
    const paced = r.udpPaced[p];
    if (paced !== undefined) {
      for (const s of SIDES) {
        out.push(fig(NAMES.udpPacedDelivered(p, s), paced[s].deliveredPps, 'packets/s', s === 'podwire' ? TARGETS.udpPacedDelivered[p] : undefined));
        out.push(fig(NAMES.udpPacedLoss(p, s), lossPercent(paced[s]), '%'));
      }
    }
  }
  const w = r.watched;
  if (w !== undefined) {
    for (const watching of WATCHINGS) {
      out.push(fig(NAMES.watchedCpuFrame(watching), pooledCpuPerFrame(w[watching]), 'µs/frame'));
      out.push(fig(NAMES.watchedLoss(watching), pooledLossPercent(w[watching]), '%'));
    }
    const plain = pooledCpuPerFrame(w.plain);
    out.push(fig(NAMES.watchedRatio('observed'), pooledCpuPerFrame(w.observed) / plain, 'x', TARGETS.observedRatio));
    out.push(fig(NAMES.watchedRatio('captured'), pooledCpuPerFrame(w.captured) / plain, 'x'));
    out.push(fig(NAMES.watchedCaptureDropped, w.captures.reduce((s, c) => s + c.dropped, 0), 'packets'));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The table

function pad(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

const fmt = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : formatNumber(v));

function verdict(f: Figure | undefined): string {
  if (f?.target === undefined) return '';
  return `${formatTarget(f.target)} ${meetsTarget(f) === true ? 'pass' : 'FAIL'}`;
}

/**
 * The side-by-side table: podwire, kernel, their ratio and the ratio's target per row,
 * then podwire's CPU figures and whatever else (the io benchmark's) was measured.
 */
export function renderTable(r: Results, figures: readonly Figure[]): string {
  const byName = new Map(figures.map((f) => [f.name, f]));
  const rows: string[][] = [['measurement', 'podwire', 'kernel', 'podwire/kernel', 'target']];
  const row = (label: string, pw: number | undefined, k: number | undefined, ratioFigure?: Figure, valueFigure?: Figure) => {
    const ratio = ratioFigure?.value ?? (pw !== undefined && k !== undefined ? pw / k : undefined);
    rows.push([label, fmt(pw), fmt(k), fmt(ratio), verdict(ratioFigure ?? valueFigure)]);
  };
  for (const p of PATHS) {
    const t = r.tcp[p];
    if (t !== undefined) row(`TCP ${WHERE[p]} (Gbit/s)`, t.podwire.gbps, t.kernel.gbps, byName.get(NAMES.tcpRatio(p)));
  }
  for (const p of PATHS) {
    const g = r.ping[p];
    if (g === undefined) continue;
    row(`ping RTT ${WHERE[p]} median (µs)`, g.podwire.medianUs, g.kernel.medianUs, byName.get(NAMES.pingRatio(p)));
    row(`ping RTT ${WHERE[p]} p99 (µs)`, g.podwire.p99Us, g.kernel.p99Us);
  }
  for (const p of PATHS) {
    const u = r.udp[p];
    if (u === undefined) continue;
    row(`UDP ${UDP_PAYLOAD} B ${WHERE[p]} offered (pps)`, u.podwire.offeredPps, u.kernel.offeredPps);
    row(`UDP ${UDP_PAYLOAD} B ${WHERE[p]} delivered (pps)`, u.podwire.deliveredPps, u.kernel.deliveredPps);
    row(`UDP ${UDP_PAYLOAD} B ${WHERE[p]} read by receiver (pps)`, u.podwire.receivedPps, u.kernel.receivedPps);
  }
  for (const p of PATHS) {
    const u = r.udpPaced[p];
    if (u === undefined) continue;
    const label = `UDP ${UDP_PAYLOAD} B ${WHERE[p]} at ${UDP_PACED_PPS / 1000}k pps`;
    row(`${label} delivered (pps)`, u.podwire.deliveredPps, u.kernel.deliveredPps, undefined, byName.get(NAMES.udpPacedDelivered(p, 'podwire')));
    row(`${label} lost (%)`, lossPercent(u.podwire), lossPercent(u.kernel));
  }
  const shown = new Set<string>([
    ...PATHS.flatMap((p) => [...STEP_NAMES.tcp(p).slice(0, 3), ...STEP_NAMES.ping(p)]),
    ...PATHS.flatMap((p) => [...SIDES.flatMap((s) => [NAMES.udpOffered(p, s), NAMES.udpDelivered(p, s), NAMES.udpReceived(p, s)]), NAMES.udpRatio(p)]),
    ...PATHS.flatMap((p) => STEP_NAMES.udpPaced(p)),
  ]);
  const rest = figures.filter((f) => !shown.has(f.name));
  const restRows = [['other figures', 'value', 'unit', 'target'], ...rest.map((f) => [f.name.replace(/^dataplane: /, ''), fmt(f.value), f.unit, verdict(f)])];
  return `${pad(rows)}\n\n${rest.length > 0 ? pad(restRows) : ''}`;
}
