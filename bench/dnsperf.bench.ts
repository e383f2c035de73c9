/**
 * Cluster DNS under load: dnsperf against podwire's loopback DNS listener and against
 * dnsmasq serving the same 10,000 service names, in one run (90% existing names, 10%
 * NXDOMAIN). Targets: podwire's max qps at least dnsmasq's and at least 50,000; p99 under
 * 1 ms at half of podwire's max. Also the Responder alone (no socket) and two stand-ins
 * (the Responder over the addon's batched UdpPort in a bare process, a node:dgram echo)
 * that show where the time goes. The work is in bench/dnsperf/ (run.ts has the steps).
 *
 * `npm run bench -- dnsperf`, or alone: `node dist/bench/dnsperf.bench.js [--quick]
 * [--rounds N] [--seconds S]`. Under the harness, PODWIRE_DNSPERF_QUICK=1 selects the
 * 3-second variant. Needs root, /dev/net/tun, dnsperf and dnsmasq; without them it logs
 * why and returns no figures.
 */
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_BUDGET, formatFigure, type BenchContext, type BenchModule } from './harness.js';
import { FULL, QUICK, runDnsperfBench, type DnsperfBenchOptions } from './dnsperf/run.js';

const dnsperf: BenchModule = {
  name: 'dnsperf',
  run: (ctx) => runDnsperfBench(ctx, process.env.PODWIRE_DNSPERF_QUICK === '1' ? QUICK : FULL),
};

export default dnsperf;

function positiveInteger(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got ${text}`);
  return n;
}

/** `node dist/bench/dnsperf.bench.js [--quick] [--rounds N] [--seconds S]`: this module alone. */
async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, rounds: { type: 'string' }, seconds: { type: 'string' } } });
  const base = values.quick === true ? QUICK : FULL;
  const seconds = positiveInteger('--seconds', values.seconds, base.seconds);
  const options: DnsperfBenchOptions = { ...base, rounds: positiveInteger('--rounds', values.rounds, base.rounds), seconds, latencySeconds: values.seconds === undefined ? base.latencySeconds : seconds };
  // dist/bench/dnsperf.bench.js -> bench/results, where `npm run bench` puts its charts.
  const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
  const ctx: BenchContext = { outDir, budget: DEFAULT_BUDGET, selects: () => true, log: (line) => console.log(line) };
  console.log('# dnsperf');
  const figures = await runDnsperfBench(ctx, options);
  if (figures.length > 0) console.log(`\n${figures.map(formatFigure).join('\n')}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exitCode = 1;
    },
  );
}
