/**
 * The new-flow benchmark's figures and its side-by-side table.
 *
 * A rate is the median over rounds of new flows per second arriving at the backend. A ratio
 * is the median over rounds of the ratio within a round: its two halves ran a few seconds
 * apart, so the drift of a shared machine's load over minutes cancels out of it.
 */
import { atLeast, formatNumber, formatTarget, meetsTarget, type Figure, type Target } from '../harness.js';

export const SIZES = [
  { n: 10, label: '10' },
  { n: 1_000, label: '1K' },
  { n: 10_000, label: '10K' },
] as const;
export type SizeLabel = (typeof SIZES)[number]['label'];

export const SIDES = ['podwire', 'iptables', 'nftables'] as const;
export type Side = (typeof SIDES)[number];

const SIDE_NAMES: Readonly<Record<Side, string>> = { podwire: 'podwire', iptables: 'kernel iptables', nftables: 'kernel nftables' };

export const NAMES = {
  rate: (side: Side, size: SizeLabel) => `newflow: ${SIDE_NAMES[side]}, ${size} services`,
  podwireOverIptables: 'newflow: podwire / iptables, 10K services',
  podwireOverNftables: 'newflow: podwire / nftables, 10K services',
  podwireFlat: 'newflow: podwire 10K / 10 services',
  iptablesFlat: 'newflow: iptables 10K / 10 services',
  nftablesFlat: 'newflow: nftables 10K / 10 services',
  cpuPerFlow: (size: SizeLabel) => `newflow: podwire node CPU per new flow, ${size} services`,
  cores: (size: SizeLabel) => `newflow: podwire node cores, ${size} services`,
  waited: (size: SizeLabel) => `newflow: podwire node waiting for a CPU, ${size} services`,
  kernelCpuPerFlow: (side: Exclude<Side, 'podwire'>, size: SizeLabel) => `newflow: kernel ${side} CPU per new flow (sender and path), ${size} services`,
} as const;

const TARGETS = {
  podwireOverIptables: atLeast(10),
  podwireOverNftables: atLeast(1),
  podwireFlat: atLeast(0.8),
} as const;

/** Every figure name the benchmark can produce: what the harness's filter is asked about. */
export const ALL_NAMES: readonly string[] = [
  ...SIZES.flatMap((s) => SIDES.map((side) => NAMES.rate(side, s.label))),
  NAMES.podwireOverIptables,
  NAMES.podwireOverNftables,
  NAMES.podwireFlat,
  NAMES.iptablesFlat,
  NAMES.nftablesFlat,
  ...SIZES.flatMap((s) => [NAMES.cpuPerFlow(s.label), NAMES.cores(s.label), NAMES.waited(s.label)]),
  NAMES.kernelCpuPerFlow('iptables', '10K'),
  NAMES.kernelCpuPerFlow('nftables', '10K'),
];

/** The node process over one trial, from /proc and its counters. */
export interface NodeUsage {
  readonly cpuUs: number;
  readonly sysUs: number;
  /** The main thread went to sleep and was woken: one per wait for I/O. */
  readonly wakeups: number;
  /** The main thread was preempted while runnable: CPU contention. */
  readonly preempted: number;
  readonly framesIn: number;
  readonly tapDropped: number;
  /** The main thread was runnable but waiting for a CPU (µs): what other work took from it. */
  readonly waitedUs: number;
  readonly serviceFlows: number;
  /** Pipeline drops by reason, the non-zero ones. */
  readonly drops: Readonly<Record<string, number>>;
  /** Frames written to the backend's TAP, including those still queued when the window closed. */
  readonly delivered: number;
}

export interface Trial {
  readonly side: Side;
  readonly size: SizeLabel;
  /** SYNs the sender's sockets took, and the sending window (s). */
  readonly sent: number;
  readonly seconds: number;
  /** SYNs refused by a full queue at the sender (ENOBUFS). */
  readonly refused: number;
  /** The sender's pace limit (SYNs/s). */
  readonly pace: number;
  /**
   * The sender's CPU time over the window (µs). On a kernel side the whole path (the node's
   * rules, conntrack, the backend's receive) runs in the sender's system calls and is in it.
   */
  readonly senderCpuUs: number;
  /** SYNs that arrived at the backend within the window: the new flows the dataplane set up. */
  readonly arrived: number;
  /**
   * The dataplane's own count of the new flows it set up: the kernel node's connection
   * count after the trial (its table is flushed before each), podwire's serviceFlows.
   */
  readonly translated: number;
  /** Kernel: nf_conntrack_max in the node's namespace. */
  readonly conntrackLimit?: number;
  readonly node?: NodeUsage;
}

export const rateOf = (t: Trial): number => t.arrived / t.seconds;
/** µs of the sender's CPU per flow that arrived: a kernel path's whole cost per new flow. */
export const senderCpuPerFlow = (t: Trial): number => (t.arrived > 0 ? t.senderCpuUs / t.arrived : NaN);
export const offeredOf = (t: Trial): number => t.sent / t.seconds;

/** µs of node CPU per new flow it delivered (the backlog it drained after the window included). */
export const cpuPerFlow = (u: NodeUsage): number => (u.delivered > 0 ? u.cpuUs / u.delivered : NaN);

/** The share of the window the node's event loop was runnable but not running, in percent. */
export const waitedShare = (u: NodeUsage, t: Trial): number => (100 * u.waitedUs) / 1e6 / t.seconds;

/** Results by round: `rounds[r][size][side]`. */
export type Rounds = ReadonlyArray<Partial<Record<SizeLabel, Partial<Record<Side, Trial>>>>>;

function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function fig(name: string, value: number, unit: string, target?: Target): Figure {
  const rounded = Number.isFinite(value) ? Number(value.toPrecision(4)) : value;
  return target === undefined ? { name, value: rounded, unit } : { name, value: rounded, unit, target };
}

function trials(rounds: Rounds, size: SizeLabel, side: Side): Trial[] {
  return rounds.map((r) => r[size]?.[side]).filter((t): t is Trial => t !== undefined);
}

/** Median over rounds of a per-round value of (a, b) trials; rounds missing either are skipped. */
function pairedMedian(rounds: Rounds, a: [SizeLabel, Side], b: [SizeLabel, Side], value: (x: Trial, y: Trial) => number): number {
  const values: number[] = [];
  for (const r of rounds) {
    const x = r[a[0]]?.[a[1]];
    const y = r[b[0]]?.[b[1]];
    if (x !== undefined && y !== undefined) values.push(value(x, y));
  }
  return median(values);
}

const ratio = (x: Trial, y: Trial) => rateOf(x) / rateOf(y);

export function medianRate(rounds: Rounds, size: SizeLabel, side: Side): number {
  return median(trials(rounds, size, side).map(rateOf));
}

export function buildFigures(rounds: Rounds): Figure[] {
  const out: Figure[] = [];
  for (const { label } of SIZES) {
    for (const side of SIDES) {
      const rate = medianRate(rounds, label, side);
      if (Number.isFinite(rate)) out.push(fig(NAMES.rate(side, label), rate, 'flows/s'));
    }
  }
  const add = (name: string, value: number, unit: string, target?: Target) => {
    if (Number.isFinite(value)) out.push(fig(name, value, unit, target));
  };
  add(NAMES.podwireOverIptables, pairedMedian(rounds, ['10K', 'podwire'], ['10K', 'iptables'], ratio), 'x', TARGETS.podwireOverIptables);
  add(NAMES.podwireFlat, pairedMedian(rounds, ['10K', 'podwire'], ['10', 'podwire'], ratio), 'x', TARGETS.podwireFlat);
  add(NAMES.podwireOverNftables, pairedMedian(rounds, ['10K', 'podwire'], ['10K', 'nftables'], ratio), 'x', TARGETS.podwireOverNftables);
  add(NAMES.iptablesFlat, pairedMedian(rounds, ['10K', 'iptables'], ['10', 'iptables'], ratio), 'x');
  add(NAMES.nftablesFlat, pairedMedian(rounds, ['10K', 'nftables'], ['10', 'nftables'], ratio), 'x');
  for (const { label } of SIZES) {
    const usages = trials(rounds, label, 'podwire').flatMap((t) => (t.node === undefined ? [] : [{ t, u: t.node }]));
    add(NAMES.cpuPerFlow(label), median(usages.map(({ u }) => cpuPerFlow(u))), 'µs/flow');
    add(NAMES.cores(label), median(usages.map(({ t, u }) => u.cpuUs / 1e6 / t.seconds)), 'cores');
    add(NAMES.waited(label), median(usages.map(({ t, u }) => waitedShare(u, t))), '% of the window');
  }
  for (const side of ['iptables', 'nftables'] as const) {
    add(NAMES.kernelCpuPerFlow(side, '10K'), median(trials(rounds, '10K', side).map(senderCpuPerFlow)), 'µs/flow');
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The log and the table

const k = (v: number): string => (!Number.isFinite(v) ? '-' : v >= 1000 ? `${formatNumber(v / 1000)}k` : formatNumber(v));

/** One trial as a log line. */
export function describeTrial(t: Trial): string {
  const head = `${rateOf(t) >= 0 ? k(rateOf(t)) : '-'} new flows/s (offered ${k(offeredOf(t))}/s over ${t.seconds.toFixed(2)} s, ${t.arrived} arrived`;
  const refused = t.refused > 0 ? `, ${t.refused} refused at the sender` : '';
  const sender = `sender ${(t.senderCpuUs / 1e6 / t.seconds).toFixed(2)} cores`;
  if (t.node === undefined) {
    return `${head}, ${t.translated} new conntrack entries${refused}; ${sender}, ${senderCpuPerFlow(t).toFixed(2)} µs/flow for the send and the whole path)`;
  }
  const u = t.node;
  const drops = Object.entries(u.drops)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  return (
    `${head}, serviceFlows ${u.serviceFlows}${refused}; ${sender})\n` +
    `             node: ${(u.cpuUs / 1e6 / t.seconds).toFixed(2)} cores (${u.cpuUs > 0 ? ((100 * u.sysUs) / u.cpuUs).toFixed(0) : '-'}% system), ` +
    `${k(u.framesIn / t.seconds)} frames/s read, ${cpuPerFlow(u).toFixed(2)} µs/flow, ` +
    `${u.wakeups > 0 ? (u.framesIn / u.wakeups).toFixed(0) : '-'} frames/wake-up, ${u.preempted} preemptions, ` +
    `waited for a CPU ${waitedShare(u, t).toFixed(0)}% of the window, ` +
    `${u.tapDropped} dropped in the clients' TAP queues${drops === '' ? '' : `, pipeline drops: ${drops}`}`
  );
}

function pad(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

function verdict(figures: readonly Figure[], name: string): string {
  const f = figures.find((x) => x.name === name);
  if (f === undefined) return '';
  const v = `${formatNumber(f.value)}x`;
  return f.target === undefined ? v : `${v} (${formatTarget(f.target)} ${meetsTarget(f) === true ? 'pass' : 'FAIL'})`;
}

/** Rates by size and side, the node's cost, then the ratios with their targets. */
export function renderTable(rounds: Rounds, figures: readonly Figure[]): string {
  const rows: string[][] = [
    ['new flows/s (median)', 'podwire', 'iptables', 'nftables', 'podwire/iptables', 'podwire/nftables', 'node cores', 'node µs/flow', 'node waiting for a CPU', 'nftables µs/flow'],
  ];
  for (const { label } of SIZES) {
    const rate = (side: Side) => medianRate(rounds, label, side);
    const f = (name: string) => figures.find((x) => x.name === name)?.value ?? NaN;
    rows.push([
      `${label} services`,
      k(rate('podwire')),
      k(rate('iptables')),
      k(rate('nftables')),
      formatNumber(pairedMedian(rounds, [label, 'podwire'], [label, 'iptables'], ratio)),
      formatNumber(pairedMedian(rounds, [label, 'podwire'], [label, 'nftables'], ratio)),
      formatNumber(f(NAMES.cores(label))),
      formatNumber(f(NAMES.cpuPerFlow(label))),
      `${formatNumber(f(NAMES.waited(label)))}%`,
      formatNumber(median(trials(rounds, label, 'nftables').map(senderCpuPerFlow))),
    ]);
  }
  const ratios = [
    ['ratios (median of per-round ratios)', ''],
    ['podwire / iptables, 10K services', verdict(figures, NAMES.podwireOverIptables)],
    ['podwire 10K / 10 services', verdict(figures, NAMES.podwireFlat)],
    ['podwire / nftables, 10K services', verdict(figures, NAMES.podwireOverNftables)],
    ['iptables 10K / 10 services', verdict(figures, NAMES.iptablesFlat)],
    ['nftables 10K / 10 services', verdict(figures, NAMES.nftablesFlat)],
  ];
  const notes = [
    'node µs/flow: the podwire node\'s CPU per new flow it delivered (/proc/<pid>/stat), its TAP system calls included;',
    'nftables µs/flow: the sender\'s CPU per new flow on the kernel side, where the send and the whole path run in its system calls.',
  ];
  return `${pad(rows)}\n${notes.join('\n')}\n\n${pad(ratios)}`;
}
