import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { atLeast, atMost, runMicroSuite, sink, type BenchModule, type Budget } from '../../bench/harness.js';
import type { Report } from '../../bench/report.js';
import { discoverModules, parseCommandLine, runBenchmarks } from '../../bench/runner.js';

/** Enough for benchmark.js to take two short samples per case, and no more. */
const TINY: Budget = { maxTime: 0.01, minSamples: 2, minTime: 0.005 };

/** A trivial module: one timed case with a target it meets, one plain figure with a target it misses. */
const trivial: BenchModule = {
  name: 'trivial',
  async run(ctx) {
    const data = new Int32Array(64).map((_, i) => i);
    const timed = await runMicroSuite(ctx, {
      name: 'trivial-suite',
      opsPerCall: 64,
      cases: [
        {
          name: 'trivial: sum',
          target: atMost(1e9),
          run: () => {
            let acc = 0;
            for (let i = 0; i < data.length; i++) acc = (acc + data[i]) | 0;
            sink.value ^= acc;
          },
        },
      ],
    });
    const plain = ctx.selects('trivial: answer') ? [{ name: 'trivial: answer', value: 41, unit: 'things', target: atLeast(42) }] : [];
    return [...timed, ...plain];
  },
};

const broken: BenchModule = {
  name: 'broken',
  run() {
    return Promise.reject(new Error('verification failed'));
  },
};

/** A timed case that throws mid-run, as a failed in-benchmark check would. */
const explodes: BenchModule = {
  name: 'explodes',
  run(ctx) {
    let calls = 0;
    const run = (): void => {
      if (++calls > 3) throw new Error('boom');
    };
    return runMicroSuite(ctx, { name: 'explodes-suite', opsPerCall: 1, cases: [{ name: 'explodes: case', run }] });
  },
};

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'podwire-bench-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const quiet = (): void => {};

test('a run writes latest.json with the machine, the runtime and judged figures', async (t) => {
  await withTempDir(async (dir) => {
    const returned = await runBenchmarks({ modules: [trivial], outDir: dir, filter: [], budget: TINY, log: quiet });
    const report = JSON.parse(await readFile(path.join(dir, 'latest.json'), 'utf8')) as Report;
    t.deepEqual(report, JSON.parse(JSON.stringify(returned)));

    t.is(report.schema, 'podwire-bench/1');
    t.false(Number.isNaN(Date.parse(report.date)));
    t.is(typeof report.machine.cpu, 'string');
    t.true(report.machine.cores >= 1);
    t.true(report.machine.memoryBytes > 0);
    t.is(typeof report.machine.os, 'string');
    t.is(typeof report.machine.kernel, 'string');
    t.is(report.load.start.length, 3);
    t.is(report.load.end.length, 3);
    t.is(report.node, process.version);
    t.deepEqual(report.errors, []);

    t.is(report.figures.length, 2);
    const [timed, plain] = report.figures;
    t.like(timed, { module: 'trivial', name: 'trivial: sum', unit: 'ns/op', target: { op: '<=', value: 1e9 }, pass: true });
    t.true(timed.value > 0 && Number.isFinite(timed.value));
    t.true(timed.stats !== null && timed.stats.samples >= 2 && timed.stats.min <= timed.value);
    t.deepEqual(plain, {
      module: 'trivial',
      name: 'trivial: answer',
      value: 41,
      unit: 'things',
      target: { op: '>=', value: 42 },
      pass: false,
      stats: null,
    });
    t.deepEqual(report.summary, { figures: 2, withTarget: 2, passed: 1, failed: 1 });
  });
});

test('a run writes the markdown summary and a benny chart', async (t) => {
  await withTempDir(async (dir) => {
    await runBenchmarks({ modules: [trivial], outDir: dir, filter: [], budget: TINY, log: quiet });
    const md = await readFile(path.join(dir, 'latest.md'), 'utf8');
    t.regex(md, /\| Benchmark \| Value \| Best \| CPU \| Target \| Result \|/);
    t.regex(md, /\| trivial: sum \| [\d.]+ ns\/op ±[\d.]+% \| [\d.]+ ns\/op \| [\d.]+ ns\/op \| ≤ 1000000000 ns\/op \| pass \|/);
    t.regex(md, /\| trivial: answer \| 41 things \|  \|  \| ≥ 42 things \| \*\*FAIL\*\* \|/);
    t.true(existsSync(path.join(dir, 'trivial-suite.chart.html')));
  });
});

test('a filter selects modules and figures by name; a module or case that throws is reported, not fatal', async (t) => {
  await withTempDir(async (dir) => {
    const byFigure = await runBenchmarks({ modules: [trivial, broken], outDir: dir, filter: ['ANSWER'], budget: TINY, log: quiet });
    t.deepEqual(
      byFigure.figures.map((f) => f.name),
      ['trivial: answer'],
    );
    t.is(byFigure.errors.length, 1);
    t.is(byFigure.errors[0].module, 'broken');
    t.regex(byFigure.errors[0].message, /verification failed/);

    const thrown = await runBenchmarks({ modules: [explodes, trivial], outDir: dir, filter: [], budget: TINY, log: quiet });
    t.is(thrown.errors.length, 1);
    t.regex(thrown.errors[0].message, /case "explodes: case" threw: Error: boom/);
    t.is(thrown.figures.length, 2, 'the modules after a failed one still run');

    const none = await runBenchmarks({ modules: [trivial], outDir: dir, filter: ['nothing-matches'], budget: TINY, log: quiet });
    t.deepEqual(none.figures, []);
  });
});

test('discovery imports *.bench.js in name order; a broken file becomes an error in the report', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(path.join(dir, 'b-good.bench.js'), "export default { name: 'good', run: async () => [{ name: 'good: one', value: 1, unit: 'x' }] };\n");
    await writeFile(path.join(dir, 'a-throws.bench.js'), "throw new Error('cannot load');\n");
    await writeFile(path.join(dir, 'c-wrong.bench.js'), 'export default 42;\n');
    await writeFile(path.join(dir, 'helper.js'), "throw new Error('not a benchmark, never imported');\n");
    const modules = await discoverModules(dir);
    t.deepEqual(
      modules.map((m) => m.name),
      ['a-throws', 'good', 'c-wrong'],
    );
    const report = await runBenchmarks({ modules, outDir: path.join(dir, 'out'), filter: [], budget: TINY, log: quiet });
    t.deepEqual(
      report.figures.map((f) => f.name),
      ['good: one'],
    );
    t.deepEqual(
      report.errors.map((e) => e.module),
      ['a-throws', 'c-wrong'],
    );
    t.regex(report.errors[0].message, /cannot load/);
    t.regex(report.errors[1].message, /not a BenchModule/);
  });
});

test('the command line: filters, output directory, budget', (t) => {
  t.deepEqual(parseCommandLine(['flow', '--out', '/tmp/x', '--max-time=0.5', '--min-samples', '3', 'rewrite']), {
    filter: ['flow', 'rewrite'],
    outDir: '/tmp/x',
    budget: { maxTime: 0.5, minSamples: 3 },
    strict: false,
  });
  t.true(parseCommandLine(['--strict']).strict);
  t.throws(() => parseCommandLine(['--max-time']), { message: /needs a value/ });
  t.throws(() => parseCommandLine(['--min-samples', '1.5']), { message: /positive integer/ });
  t.throws(() => parseCommandLine(['--frobnicate']), { message: /unknown option/ });
});
