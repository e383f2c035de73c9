/**
 * `podwire observe`'s arguments: Hubble's default of the last 20, the filters in the order
 * given, and every bad argument a usage error naming it (exit 2 through main, shown once
 * end to end: no node is asked).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UsageError } from '../../src/cli/args.js';
import { DEFAULT_LAST, parseObserveArgs } from '../../src/cli/observe-args.js';
import { CLI } from '../helpers/cluster.js';

const NOW = Date.UTC(2024, 11, 4, 15, 0, 0);

test('defaults: the last 20, compact; following starts from now', (t) => {
  t.like(parseObserveArgs([], NOW), { last: DEFAULT_LAST, follow: false, output: 'compact', filters: { whitelist: [], blacklist: [] } });
  const f = parseObserveArgs(['-f'], NOW);
  t.is(f.last, undefined);
  t.true(f.follow);
  t.is(parseObserveArgs(['--since', '5m'], NOW).last, undefined, '--since replaces the default');
});

test('the seed\'s command line: follow, to a Deployment\'s pods by prefix', (t) => {
  const r = parseObserveArgs(['--follow', '--to-pod', 'default/deploy-nginx', '-o', 'json', '--node', 'node-2', '--print-node-name'], NOW);
  t.like(r, { follow: true, node: 'node-2', output: 'json', print: { nodeName: true, policyNames: false } });
  t.deepEqual(r.filters.whitelist, [{ destination_pod: ['default/deploy-nginx'] }]);
});

test('order matters for --not; -n and -t are --namespace and --type', (t) => {
  const r = parseObserveArgs(['-n', 'kube-system', '--not', '-t', 'drop', '--verdict', 'DROPPED'], NOW);
  t.deepEqual(r.filters.blacklist, [{ event_type: [{ type: 1 }] }]);
  t.deepEqual(r.filters.whitelist, [
    { verdict: ['DROPPED'], source_pod: ['kube-system/'] },
    { verdict: ['DROPPED'], destination_pod: ['kube-system/'] },
  ]);
});

test('--since: a Go duration ago or an RFC 3339 time, in µs', (t) => {
  t.is(parseObserveArgs(['--since', '1h30m'], NOW).since, (NOW - 5_400_000) * 1000);
  t.is(parseObserveArgs(['--since', '250ms'], NOW).since, (NOW - 250) * 1000);
  t.is(parseObserveArgs(['--since', '2024-12-04T14:52:03.118Z'], NOW).since, Date.UTC(2024, 11, 4, 14, 52, 3, 118) * 1000);
});

test('bad arguments are usage errors that say which and why', (t) => {
  const bad: [string[], RegExp][] = [
    [['--last', 'ten'], /--last "ten": a number of flows/],
    [['--since', 'yesterday'], /--since "yesterday": a duration ago/],
    [['-o', 'yaml'], /-o "yaml": one of compact, json, table, dict/],
    [['--protocol', 'sctp6'], /--protocol "sctp6": one of/],
    [['--verdict', 'DENIED'], /--verdict "DENIED"/],
    [['--type', 'trace:sideways'], /not a known sub-type/],
    [['--ip', '10.1'], /--ip "10.1": not an IPv4 address or CIDR/],
    [['--pod', 'a', '--ip', '10.0.0.1'], /filters --ip and --pod cannot be combined/],
    [['--not'], /trailing --not/],
    [['--node', 'Node_1'], /--node "Node_1"/],
    [['node-1'], /unexpected argument "node-1"/],
    [['--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [argv, message] of bad) {
    const err = t.throws(() => parseObserveArgs(argv, NOW), { instanceOf: UsageError }, argv.join(' '));
    t.regex(err?.message ?? '', message, argv.join(' '));
    t.true(err?.message.startsWith('podwire observe: '), argv.join(' '));
  }
});

test('through the command: a usage error exits 2 before any node is asked', async (t) => {
  const r = await promisify(execFile)(process.execPath, [CLI, 'observe', '--verdict', 'nope', '--name', 'nosuch', '--state-dir', '/nonexistent']).catch((e: { code: number; stderr: string }) => e);
  t.is((r as { code: number }).code, 2);
  t.regex((r as { stderr: string }).stderr, /^podwire observe: --verdict "nope"/);
});
