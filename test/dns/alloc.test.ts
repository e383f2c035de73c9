/**
 * The precompiled answer path allocates nothing per query, also where it patches SRV targets
 * to the client's letter case (test/helpers/dns-alloc-measure.ts, in a child process with a
 * young generation large enough for the whole run).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MEASURE = fileURLToPath(new URL('../helpers/dns-alloc-measure.js', import.meta.url));

test('precompiled answers allocate nothing per query: an A answer, and SRV targets patched to each query case', (t) => {
  const out = execFileSync(process.execPath, ['--min-semi-space-size=128', '--max-semi-space-size=128', MEASURE], { encoding: 'utf8' });
  const { a, srv } = JSON.parse(out) as { a: number; srv: number };
  t.log(`heap bytes per query: A ${a.toFixed(2)}, SRV in 16 cases ${srv.toFixed(2)}`);
  // One small object per query would be 16 bytes or more.
  t.true(a < 2, `A: ${a.toFixed(2)} bytes a query`);
  t.true(srv < 2, `SRV: ${srv.toFixed(2)} bytes a query`);
});
