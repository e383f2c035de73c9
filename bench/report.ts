/**
 * The record of a benchmark run: `latest.json` for tools and diffs, `latest.md` for
 * people. A figure means little without the machine it came from, so the machine and
 * the runtime are part of the record.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatNumber, formatTarget, meetsTarget, type Budget, type Figure, type FigureStats, type Target } from './harness.js';

export const REPORT_SCHEMA = 'podwire-bench/1';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryBytes: number;
  /** `os.type()`, e.g. 'Linux'. */
  readonly os: string;
  /** `os.release()`: the kernel version on Linux. */
  readonly kernel: string;
  readonly arch: string;
}

/** One figure as recorded: absent target and stats are null, so every record has every key. */
export interface FigureRecord {
  readonly module: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target: Target | null;
  /** Against the target; null when the figure has none. */
  readonly pass: boolean | null;
  readonly stats: FigureStats | null;
}

export interface Report {
  readonly schema: typeof REPORT_SCHEMA;
  /** ISO 8601, UTC. */
  readonly date: string;
  readonly machine: Machine;
  /**
   * 1, 5 and 15 minute load averages when the run started and ended. Above the core
   * count, other work shared the CPUs and every figure is inflated by it.
   */
  readonly load: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly node: string;
  readonly v8: string;
  readonly filter: readonly string[];
  readonly budget: Budget;
  readonly figures: readonly FigureRecord[];
  /** Modules that threw: their figures are missing, and the run should be read as failed. */
  readonly errors: readonly { readonly module: string; readonly message: string }[];
  readonly summary: { readonly figures: number; readonly withTarget: number; readonly passed: number; readonly failed: number };
}

export interface ModuleResult {
  readonly module: string;
  readonly figures: readonly Figure[];
  readonly error?: string;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    os: os.type(),
    kernel: os.release(),
    arch: os.arch(),
  };
}

/** Four significant digits in the JSON: the noise is larger than that. */
function round(value: number): number {
  return Number.isFinite(value) ? Number(value.toPrecision(4)) : value;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function toRecord(module: string, figure: Figure): FigureRecord {
  const s = figure.stats;
  const stats = s === undefined ? null : { samples: s.samples, rme: round(s.rme), mean: round(s.mean), min: round(s.min), ...(s.cpu !== undefined ? { cpu: round(s.cpu) } : {}) };
  return {
    module,
    name: figure.name,
    value: round(figure.value),
    unit: figure.unit,
    target: figure.target ?? null,
    pass: meetsTarget(figure) ?? null,
    stats,
  };
}

export function buildReport(
  results: readonly ModuleResult[],
  run: { readonly filter: readonly string[]; readonly budget: Budget; readonly date: Date; readonly loadAtStart: readonly number[] },
): Report {
  const figures = results.flatMap((r) => r.figures.map((f) => toRecord(r.module, f)));
  const judged = figures.filter((f) => f.pass !== null);
  return {
    schema: REPORT_SCHEMA,
    date: run.date.toISOString(),
    machine: describeMachine(),
    load: { start: run.loadAtStart.map(round2), end: os.loadavg().map(round2) },
    node: process.version,
    v8: process.versions.v8,
    filter: run.filter,
    budget: run.budget,
    figures,
    errors: results.flatMap((r) => (r.error === undefined ? [] : [{ module: r.module, message: r.error }])),
    summary: {
      figures: figures.length,
      withTarget: judged.length,
      passed: judged.filter((f) => f.pass === true).length,
      failed: judged.filter((f) => f.pass === false).length,
    },
  };
}

function verdictCell(record: FigureRecord): string {
  if (record.pass === null) return '';
  return record.pass ? 'pass' : '**FAIL**';
}

function valueCell(record: FigureRecord): string {
  const margin = record.stats === null ? '' : ` ±${record.stats.rme.toFixed(1)}%`;
  return `${formatNumber(record.value)} ${record.unit}${margin}`;
}

function bestCell(record: FigureRecord): string {
  return record.stats === null ? '' : `${formatNumber(record.stats.min)} ${record.unit}`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const gib = (m.memoryBytes / 2 ** 30).toFixed(1);
  const lines = [
    '# podwire benchmarks',
    '',
    `${report.date} · ${m.cpu}, ${m.cores} cores, ${gib} GiB · ${m.os} ${m.kernel} ${m.arch} · Node ${report.node}`,
    '',
    `Load average (1 min) ${report.load.start[0] ?? '?'} at start, ${report.load.end[0] ?? '?'} at end, on ${m.cores} cores.` +
      (Math.max(report.load.start[0] ?? 0, report.load.end[0] ?? 0) > m.cores
        ? ' **Other work was competing for the CPUs: every timed figure is inflated.**'
        : ''),
    '',
    `${report.summary.figures} figures; ${report.summary.passed} of ${report.summary.withTarget} targets met.` +
      (report.filter.length > 0 ? ` Filter: ${report.filter.join(', ')}.` : ''),
    '',
    'Value is the median sample (wall clock), ± the relative margin of error of the mean; best is the fastest sample; CPU is CPU time per operation, on which cost targets are judged (a shared machine inflates wall-clock time with other processes\' turns).',
    '',
    '| Benchmark | Value | Best | CPU | Target | Result |',
    '|---|---:|---:|---:|---:|---|',
    ...report.figures.map(
      (f) =>
        `| ${escapeCell(f.name)} | ${valueCell(f)} | ${bestCell(f)} | ${f.stats?.cpu === undefined ? '' : `${formatNumber(f.stats.cpu)} ${f.unit}`} | ${f.target === null ? '' : `${formatTarget(f.target)} ${f.unit}`} | ${verdictCell(f)} |`,
    ),
  ];
  for (const e of report.errors) lines.push('', `**${e.module} failed:** ${e.message.split('\n')[0]}`);
  return `${lines.join('\n')}\n`;
}

/** Writes latest.json and latest.md into `outDir`, creating it. */
export async function writeReport(report: Report, outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(outDir, 'latest.md'), renderMarkdown(report));
}
