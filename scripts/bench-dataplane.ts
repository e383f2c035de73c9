/**
 * The dataplane benchmark alone (bench/dataplane/run.ts): podwire against the kernel's
 * bridge + vxlan, side by side in one run.
 *
 *   node dist/scripts/bench-dataplane.js [--quick] [--json] [FILTER...]
 *
 * --quick   2-second windows: checks that the benchmark works; the figures are rough
 * --json    print the figures as JSON after the table
 * FILTER    case-insensitive substrings of figure names, e.g. `TCP` or `ping`
 *
 * Needs root, /dev/net/tun, iperf3, gcc and iproute2. Exit 0 when it ran (targets missed
 * are figures, not failures), 1 when it could not run or failed, 2 on a usage error.
 * Under the harness: `npm run bench -- dataplane` (results in bench/results/latest.*).
 */
import { parseArgs } from 'node:util';
import { runDataplane, whyCannotRun } from '../bench/dataplane/run.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: bench-dataplane.js [--quick] [--json] [FILTER...]\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write('usage: bench-dataplane.js [--quick] [--json] [FILTER...]\n');
    return 0;
  }
  const reason = await whyCannotRun();
  if (reason !== undefined) {
    process.stderr.write(`bench-dataplane: ${reason}\n`);
    return 1;
  }
  const terms = positionals.map((t) => t.toLowerCase());
  const figures = await runDataplane({
    quick: values.quick === true,
    selects: (name) => terms.length === 0 || terms.some((t) => name.toLowerCase().includes(t)),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  if (values.json === true) process.stdout.write(`${JSON.stringify(figures, null, 1)}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench-dataplane: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
