/**
 * The renderer against the real thing: kube-proxy's text is restored with iptables-restore into
 * a scratch network namespace, and what iptables-save prints back must equal
 * renderIptablesSave's text for that backend byte for byte, the order of the tables included
 * (the "#" lines carry a clock and are left out). Runs for every backend installed (nf_tables and
 * legacy); skipped without root or iptables. Only the scratch namespace is touched, and it is
 * deleted whatever happens.
 */
import test from 'ava';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { kubeProxyRules } from '../../src/kube/kube-proxy.js';
import { renderIptablesSave, renderKubeProxyRestore } from '../../src/kube/iptables-save.js';
import { RuleSetBuilder, comment, jump, statistic, type RuleSet } from '../../src/kube/rules.js';
import { NODE, NODE_ADDRESS, goldenInputs, inputsFor, randomClusterArb } from './service-fixtures.js';

const NAMESPACE = `pwtest-ipt-${process.pid}`;

function available(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

const BACKENDS = [
  { restore: 'iptables-restore', save: 'iptables-save', name: 'nft' as const },
  { restore: 'iptables-legacy-restore', save: 'iptables-legacy-save', name: 'legacy' as const },
].filter((b) => available(b.restore) && available(b.save));

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  if (BACKENDS.length === 0) return 'needs iptables (apt-get install iptables)';
  if (spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status !== 0) return 'needs iproute2 with netns support';
  return undefined;
}

const reason = skipReason();

/** Tables of an iptables-save text by name, "#" lines dropped. */
function tables(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name = '';
  let lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    if (line.startsWith('*')) {
      name = line.slice(1);
      lines = [line];
    } else {
      lines.push(line);
      if (line === 'COMMIT') out.set(name, lines.join('\n'));
    }
  }
  return out;
}

/** Restores kube-proxy's text (with the built-in jumps) into a fresh namespace and returns iptables-save's text. */
function roundTrip(ruleSet: RuleSet, backend: (typeof BACKENDS)[number]): string {
  const input = renderKubeProxyRestore(ruleSet, { includeBuiltinChains: true });
  execFileSync('ip', ['netns', 'add', NAMESPACE]);
  try {
    execFileSync('ip', ['netns', 'exec', NAMESPACE, backend.restore, '--noflush', '--counters'], { input });
    return execFileSync('ip', ['netns', 'exec', NAMESPACE, backend.save], { encoding: 'utf8' });
  } finally {
    execFileSync('ip', ['netns', 'delete', NAMESPACE]);
  }
}

function assertSame(
  t: { deepEqual: (a: unknown, b: unknown, m?: string) => void },
  ruleSet: RuleSet,
  backend: (typeof BACKENDS)[number],
  tableNames: readonly string[] = ['filter', 'nat'],
): void {
  const actual = tables(roundTrip(ruleSet, backend));
  const expected = tables(renderIptablesSave(ruleSet));
  for (const table of tableNames) t.deepEqual(actual.get(table)?.split('\n'), expected.get(table)?.split('\n'), `${backend.save}, table ${table}`);
}

const maybe = reason === undefined ? test.serial : test.serial.skip;
if (reason !== undefined) test('iptables round trip', (t) => t.log(`skipped: ${reason}`) as unknown as void);

maybe('the named cluster: iptables-save prints what renderIptablesSave renders', (t) => {
  for (const backend of BACKENDS) assertSame(t, kubeProxyRules(goldenInputs()), backend);
});

/** iptables-save's text without its "#" lines. */
function withoutComments(text: string): string[] {
  return text.split('\n').filter((line) => !line.startsWith('#'));
}

maybe('each backend prints the tables in its own order, and renderIptablesSave --backend follows it', (t) => {
  const ruleSet = kubeProxyRules(goldenInputs());
  for (const backend of BACKENDS) t.deepEqual(withoutComments(roundTrip(ruleSet, backend)), withoutComments(renderIptablesSave(ruleSet, { backend: backend.name })), backend.save);
  t.deepEqual(
    renderIptablesSave(ruleSet, { backend: 'legacy' }).split('\n').filter((l) => l.startsWith('*')),
    ['*nat', '*filter'],
  );
  t.deepEqual(
    renderIptablesSave(ruleSet).split('\n').filter((l) => l.startsWith('*')),
    ['*filter', '*nat'],
  );
});

maybe('probabilities 1/k print as the kernel holds them', (t) => {
  const b = new RuleSetBuilder();
  b.chain('nat', 'PW-ODDS');
  b.chain('nat', 'PW-TARGET');
  for (const k of [2, 3, 5, 6, 7, 9, 10, 11, 13, 100, 999, 1000, 1001, 2048, 4096, 4097, 65536, 1e6]) {
    b.append('nat', 'PW-ODDS', [comment(`1/${k}`), statistic(1 / k)], jump('PW-TARGET'));
  }
  // Only nat: iptables creates no filter table for an empty one, where a node always has one.
  for (const backend of BACKENDS) assertSame(t, b.build(), backend, ['nat']);
});

maybe('random clusters round-trip too', (t) => {
  const backend = BACKENDS[0];
  fc.assert(
    fc.property(randomClusterArb, (cluster) => {
      const ruleSet = kubeProxyRules(inputsFor(cluster, NODE, NODE_ADDRESS));
      const actual = tables(roundTrip(ruleSet, backend));
      const expected = tables(renderIptablesSave(ruleSet));
      return actual.get('nat') === expected.get('nat') && actual.get('filter') === expected.get('filter');
    }),
    { numRuns: 15 },
  );
  t.pass();
});
