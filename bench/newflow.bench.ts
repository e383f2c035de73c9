/**
 * New flows per second through the cluster IP of the last of N services (N = 10, 1K, 10K):
 * podwire against the kernel with kube-proxy's iptables layout (KUBE-SERVICES, a linear
 * scan) and with its nftables layout (one verdict map), side by side. The work is in
 * bench/newflow/.
 *
 * `npm run bench -- newflow`, or alone: `node dist/bench/newflow.bench.js [--quick]`.
 * PODWIRE_NEWFLOW_QUICK=1 selects the quick variant under the harness too. Needs root,
 * /dev/net/tun, gcc, iptables and nft; skipped with the reason otherwise.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatFigure, type BenchModule } from './harness.js';
import { runNewflow } from './newflow/run.js';

const newflow: BenchModule = {
  name: 'newflow',
  run: (ctx) => runNewflow({ quick: process.env.PODWIRE_NEWFLOW_QUICK === '1', selects: ctx.selects, log: ctx.log }),
};

export default newflow;

/** Run directly: every figure, printed as the harness prints them. */
async function main(args: readonly string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--quick');
  if (unknown.length > 0) {
    console.error(`usage: node dist/bench/newflow.bench.js [--quick] (unknown: ${unknown.join(' ')})`);
    return 2;
  }
  const log = (line: string) => console.log(line);
  const figures = await runNewflow({ quick: args.includes('--quick') || process.env.PODWIRE_NEWFLOW_QUICK === '1', selects: () => true, log });
  if (figures.length > 0) log(`\n${figures.map(formatFigure).join('\n')}`);
  return 0;
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(path.resolve(invokedPath)).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exitCode = 1;
    },
  );
}
