/**
 * The benchmark harness, as benchmark modules see it: what a module is, what a figure
 * is, and `runMicroSuite`, which times batches under benny. `runner.ts` runs modules and
 * `report.ts` records the run.
 *
 * Adding a benchmark is one file: `bench/<name>.bench.ts` whose default export is a
 * `BenchModule`. `bench/run.ts` imports every compiled `*.bench.js` beside it, so
 * nothing else needs editing. A module does no work when imported; `run` builds its
 * inputs, calls `runMicroSuite` for the timed parts and returns figures, plain ones
 * (bytes per entry, ratios) included:
 *
 *     const parse: BenchModule = {
 *       name: 'parse',
 *       async run(ctx) {
 *         const frame = buildFrame(64);
 *         return runMicroSuite(ctx, {
 *           name: 'parse', opsPerCall: 1024,
 *           cases: [{ name: 'parse: eth+ipv4+tcp, 64B', target: atMost(15), run: () => { ... } }],
 *         });
 *       },
 *     };
 *     export default parse;
 *
 * Rules that keep the figures honest:
 * - One call of a case's `run` does `opsPerCall` operations (a batch), so benchmark.js's
 *   per-call overhead is spread thin. The figure is the median sample divided by
 *   `opsPerCall`: on a shared machine the mean follows the neighbours' bursts.
 * - Inputs are generated before timing (typed arrays of keys, prebuilt frames).
 * - A batch folds its results into a local accumulator and stores it once into
 *   `sink`, so V8 cannot drop the work as dead code. Storing into a module-level `let`
 *   on every operation instead was measured to cost more than a cached table lookup.
 * - Correctness (every hit found, incremental equals full checksum) is checked before
 *   timing or counted during it and judged after, and a failure throws: a wrong
 *   benchmark is an error in the report, not a figure.
 * - benny calls `run` once more while registering a case; a batch must tolerate that.
 */
import b from 'benny';

/** A bound on a figure: `<=` for costs (ns/op), `>=` for rates. */
export interface Target {
  readonly op: '<=' | '>=';
  readonly value: number;
}

export function atMost(value: number): Target {
  return { op: '<=', value };
}

export function atLeast(value: number): Target {
  return { op: '>=', value };
}

/** Sampling statistics of a timed figure. */
export interface FigureStats {
  /** Samples benny (benchmark.js) took. */
  readonly samples: number;
  /** Relative margin of error of the mean, in percent. */
  readonly rme: number;
  /** Mean per operation, in the figure's unit. */
  readonly mean: number;
  /**
   * Fastest sample per operation. Interference from other work only ever adds time,
   * so this is the closest to what the code itself costs; the figure's value (the
   * median) is what a busy machine delivers, and targets are judged on that.
   */
  readonly min: number;
  /**
   * CPU time per operation (process.cpuUsage over every call benny made): what the code
   * cost while it ran, without the time a shared machine spent running something else.
   */
  readonly cpu?: number;
}

export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: Target;
  readonly stats?: FigureStats;
}

export interface Budget {
  /** Seconds benchmark.js may spend sampling one case (after `minSamples`). */
  readonly maxTime: number;
  readonly minSamples: number;
  /** Seconds one sample must last; benchmark.js picks 0.05 s when unset. */
  readonly minTime?: number;
}

/** Short enough for `npm run bench` to finish in a minute or two on two cores. */
export const DEFAULT_BUDGET: Budget = { maxTime: 3, minSamples: 5 };

export interface BenchContext {
  /** Where charts go (and, from the runner, latest.json and latest.md). */
  readonly outDir: string;
  readonly budget: Budget;
  /** Whether a figure of this name is wanted by the command-line filter. */
  selects(figureName: string): boolean;
  log(line: string): void;
}

export interface BenchModule {
  /** Short name: matched by filters, and the module column of the report. */
  readonly name: string;
  run(ctx: BenchContext): Promise<readonly Figure[]>;
}

export interface MicroCase {
  /** The figure's name, e.g. 'flow-table: lookup hit, 1M flows'. */
  readonly name: string;
  /** Does `opsPerCall` operations. Must return nothing (benny treats a returned function as setup). */
  readonly run: () => void;
  readonly target?: Target;
}

export interface MicroSuite {
  /** Also the chart's file name: `<name>.chart.html` in the output directory. */
  readonly name: string;
  /**
   * Operations per call of every case. One value per suite, so that benny's chart,
   * which plots calls per second, compares like with like.
   */
  readonly opsPerCall: number;
  readonly cases: readonly MicroCase[];
  /** Label of the figures' unit, some kind of nanoseconds per operation; 'ns/op' unless given. */
  readonly unit?: string;
}

/** Where batches store their accumulators; read by nobody, written so work stays live. */
export const sink = { value: 0 };

/**
 * Times the selected cases with benny and returns one ns/op figure per case, in order.
 * Saves a benny chart of the suite into `ctx.outDir`.
 */
export async function runMicroSuite(ctx: BenchContext, suite: MicroSuite): Promise<Figure[]> {
  const cases = suite.cases.filter((c) => ctx.selects(c.name));
  if (cases.length === 0) return [];
  const unit = suite.unit ?? 'ns/op';
  const { maxTime, minSamples, minTime } = ctx.budget;
  const cpu = new Map<string, { micros: number; calls: number }>();
  const timed = (c: MicroCase) => {
    const acc = { micros: 0, calls: 0 };
    cpu.set(c.name, acc);
    const run = c.run;
    return () => {
      const start = process.cpuUsage();
      run();
      const used = process.cpuUsage(start);
      acc.micros += used.user + used.system;
      acc.calls++;
    };
  };
  const summary = await b
    .suite(
      suite.name,
      b.configure({ cases: minTime === undefined ? { maxTime, minSamples } : { maxTime, minSamples, minTime } }),
      ...cases.map((c) => b.add(c.name, timed(c))),
      b.cycle((result) => {
        if (result.samples > 0) ctx.log(`  ${formatFigure(toFigure(result, cases, suite.opsPerCall, unit, cpu))}`);
        return undefined; // nothing for benny's live display: the line above is the output
      }),
      b.save({ file: suite.name, folder: ctx.outDir, format: 'chart.html' }),
    )
    .catch((event: unknown) => {
      throw caseError(suite.name, event);
    });
  return summary.results.map((result) => toFigure(result, cases, suite.opsPerCall, unit, cpu));
}

/** benny rejects with benchmark.js's error event; the thrown error hangs off its target. */
function caseError(suiteName: string, event: unknown): Error {
  const target = (event as { target?: { name?: unknown; error?: unknown } } | null)?.target;
  const cause = target?.error;
  const detail = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause ?? event);
  return new Error(`${suiteName}: case "${String(target?.name ?? '?')}" threw: ${detail}`);
}

interface BennyResult {
  readonly name: string;
  readonly samples: number;
  readonly details: { readonly min: number; readonly median: number; readonly mean: number; readonly relativeMarginOfError: number };
}

/** benny's seconds per call become nanoseconds per operation. */
function toFigure(result: BennyResult, cases: readonly MicroCase[], opsPerCall: number, unit: string, cpu: ReadonlyMap<string, { micros: number; calls: number }>): Figure {
  const perOp = (seconds: number): number => (seconds * 1e9) / opsPerCall;
  const target = cases.find((c) => c.name === result.name)?.target;
  const { details } = result;
  const used = cpu.get(result.name);
  const cpuPerOp = used !== undefined && used.calls > 0 && unit === 'ns/op' ? (used.micros * 1000) / (used.calls * opsPerCall) : undefined;
  const stats = {
    samples: result.samples,
    rme: details.relativeMarginOfError,
    mean: perOp(details.mean),
    min: perOp(details.min),
    ...(cpuPerOp !== undefined ? { cpu: cpuPerOp } : {}),
  };
  const figure = { name: result.name, value: perOp(details.median), unit, stats };
  return target === undefined ? figure : { ...figure, target };
}

/**
 * True when the figure meets its target; undefined when it has none. A cost with a CPU time
 * is judged on it: on a shared machine the wall-clock median also counts the time other
 * processes held the CPU, which says nothing about the code.
 */
export function meetsTarget(figure: Figure): boolean | undefined {
  const { target } = figure;
  if (target === undefined) return undefined;
  if (target.op === '<=') return (figure.stats?.cpu ?? figure.value) <= target.value;
  return figure.value >= target.value;
}

/** Three significant figures: enough for a benchmark, no false precision. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  return String(Number(value.toPrecision(3)));
}

export function formatTarget(target: Target): string {
  return `${target.op === '<=' ? '≤' : '≥'} ${formatNumber(target.value)}`;
}

export function formatFigure(figure: Figure): string {
  const { stats } = figure;
  const cpuPart = stats?.cpu === undefined ? '' : `, CPU ${formatNumber(stats.cpu)}`;
  const margin = stats === undefined ? '' : ` ±${stats.rme.toFixed(1)}% (best ${formatNumber(stats.min)}${cpuPart}, ${stats.samples} samples)`;
  const verdict = meetsTarget(figure);
  const target =
    figure.target === undefined ? '' : ` (target ${formatTarget(figure.target)}: ${verdict === true ? 'pass' : 'FAIL'})`;
  return `${figure.name}: ${formatNumber(figure.value)} ${figure.unit}${margin}${target}`;
}
