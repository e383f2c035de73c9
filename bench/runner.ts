/**
 * Runs benchmark modules and records the run. `run.ts` is the command line over this;
 * the harness test drives it directly with a trivial module and a tiny budget.
 */
import { readdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_BUDGET, type BenchContext, type BenchModule, type Budget } from './harness.js';
import { buildReport, writeReport, type ModuleResult, type Report } from './report.js';

export interface RunOptions {
  readonly modules: readonly BenchModule[];
  readonly outDir: string;
  /** Case-insensitive substrings; a module or figure matching any of them runs. Empty: all. */
  readonly filter: readonly string[];
  readonly budget: Budget;
  readonly log?: (line: string) => void;
}

/**
 * Runs the modules in order, writes latest.json and latest.md into `outDir`, and
 * returns the report. A filter term that matches a module's name selects all of it;
 * otherwise it selects the figures whose names contain it.
 */
export async function runBenchmarks(options: RunOptions): Promise<Report> {
  const log = options.log ?? ((line: string) => console.log(line));
  const date = new Date();
  const loadAtStart = os.loadavg();
  const terms = options.filter.map((term) => term.toLowerCase());
  const matches = (name: string): boolean => terms.some((term) => name.toLowerCase().includes(term));
  const results: ModuleResult[] = [];
  for (const module of options.modules) {
    const whole = terms.length === 0 || matches(module.name);
    const ctx: BenchContext = {
      outDir: options.outDir,
      budget: options.budget,
      selects: (figureName) => whole || matches(figureName),
      log,
    };
    results.push(await runModule(module, ctx));
  }
  const report = buildReport(results, { filter: options.filter, budget: options.budget, date, loadAtStart });
  await writeReport(report, options.outDir);
  return report;
}

/** A module that throws is reported as an error, and the run goes on to the next. */
async function runModule(module: BenchModule, ctx: BenchContext): Promise<ModuleResult> {
  ctx.log(`# ${module.name}`);
  try {
    return { module: module.name, figures: await module.run(ctx) };
  } catch (err) {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    ctx.log(`! ${module.name} failed: ${message}`);
    return { module: module.name, figures: [], error: message };
  }
}

function isBenchModule(value: unknown): value is BenchModule {
  const m = value as Partial<BenchModule> | null;
  return typeof m === 'object' && m !== null && typeof m.name === 'string' && typeof m.run === 'function';
}

/**
 * Imports every `*.bench.js` in `dir`, in file-name order; each must default-export a
 * BenchModule. A file that fails to import, or exports something else, becomes a module
 * that fails when run: one broken benchmark is an error in the report, not a lost run.
 */
export async function discoverModules(dir: string): Promise<BenchModule[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.bench.js')).sort();
  return Promise.all(files.map((file) => importModule(path.join(dir, file))));
}

async function importModule(file: string): Promise<BenchModule> {
  const name = path.basename(file, '.bench.js');
  try {
    const imported = (await import(pathToFileURL(file).href)) as { default?: unknown };
    if (isBenchModule(imported.default)) return imported.default;
    return failing(name, new Error(`${file}: the default export is not a BenchModule`));
  } catch (err) {
    return failing(name, err);
  }
}

function failing(name: string, err: unknown): BenchModule {
  return { name, run: () => Promise.reject(err) };
}

export interface CommandLine {
  readonly filter: string[];
  readonly outDir: string | undefined;
  readonly budget: Budget;
  /** Exit non-zero when a figure misses its target, not only when a module fails. */
  readonly strict: boolean;
}

const USAGE = 'usage: run.js [--out DIR] [--max-time SECONDS] [--min-samples N] [--strict] [FILTER...]';

/**
 * Parses `[--out DIR] [--max-time S] [--min-samples N] [--strict] [filter...]`; options
 * also take the `--name=value` form. Throws with the usage on anything else.
 */
export function parseCommandLine(args: readonly string[]): CommandLine {
  const filter: string[] = [];
  let outDir: string | undefined;
  let budget: Budget = DEFAULT_BUDGET;
  let strict = false;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = splitFlag(args[i]);
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === '--out') outDir = value();
    else if (flag === '--max-time') budget = { ...budget, maxTime: positive(flag, value()) };
    else if (flag === '--min-samples') budget = { ...budget, minSamples: positive(flag, value(), true) };
    else if (flag === '--strict') strict = true;
    else if (flag.startsWith('-')) throw new Error(`unknown option ${flag}\n${USAGE}`);
    else filter.push(flag);
  }
  return { filter, outDir, budget, strict };
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=');
  return arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

function positive(flag: string, text: string, integer = false): number {
  const n = Number(text);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${text}\n${USAGE}`);
  return n;
}
