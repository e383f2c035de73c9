/**
 * `npm run bench [-- options] [filter...]`: runs every bench/*.bench.ts module (or the
 * ones matching a filter, e.g. `npm run bench -- flow`), then writes latest.json,
 * latest.md and benny charts into bench/results/, or into --out DIR or
 * $PODWIRE_BENCH_OUT. Exits 1 when a module fails (and, with --strict, when a figure
 * misses its target).
 */
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { renderMarkdown } from './report.js';
import { discoverModules, parseCommandLine, runBenchmarks } from './runner.js';

/** This file runs as dist/bench/run.js; results belong in the source tree's bench/results. */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_OUT = path.resolve(HERE, '..', '..', 'bench', 'results');

async function main(): Promise<number> {
  const cli = parseCommandLine(process.argv.slice(2));
  const outDir = path.resolve(cli.outDir ?? process.env.PODWIRE_BENCH_OUT ?? DEFAULT_OUT);
  const modules = await discoverModules(HERE);
  const started = Date.now();
  const report = await runBenchmarks({ modules, outDir, filter: cli.filter, budget: cli.budget });
  console.log(`\n${renderMarkdown(report)}`);
  console.log(`${((Date.now() - started) / 1000).toFixed(0)} s; results in ${outDir}`);
  if (report.errors.length > 0) return 1;
  return cli.strict && report.summary.failed > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  },
);
