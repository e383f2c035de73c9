import test from 'ava';
import {
  leaseAgeSeconds,
  nodeTransitions,
  parseLease,
  readinessOnReadyNodes,
  readyNodes,
  renewIntervalMs,
  type NodeLease,
} from '../../src/cluster/node-lifecycle.js';

const T0 = 1_800_000_000_000; // ms since the epoch, any fixed instant
const lease = (node: string, renewTime: number): NodeLease => ({ node, renewTime, leaseDurationSeconds: 20 });

test('a node is Ready while its lease is younger than the grace period, NotReady after', (t) => {
  const leases = [lease('a', T0), lease('b', T0 - 5000), lease('c', T0 - 19_999), lease('d', T0 - 20_000), lease('e', T0 - 20_001)];
  t.deepEqual([...readyNodes(leases, T0, 20)].sort(), ['a', 'b', 'c', 'd']);
  // The same leases, judged later: the judgement is the time passed in, nothing else.
  t.deepEqual([...readyNodes(leases, T0 + 15_000, 20)].sort(), ['a', 'b']);
  t.deepEqual([...readyNodes(leases, T0 + 60_000, 20)], []);
  // A shorter grace period makes the same ages stale sooner.
  t.deepEqual([...readyNodes(leases, T0, 3)].sort(), ['a']);
});

test('a node without a lease is not Ready', (t) => {
  t.deepEqual([...readyNodes([lease('a', T0)], T0, 20)], ['a']);
  t.false(readyNodes([lease('a', T0)], T0, 20).has('b'));
  t.deepEqual([...readyNodes([], T0, 20)], []);
});

test('a renewal stamped in the future is trusted for the grace period only, not until the clock catches up', (t) => {
  // The clock stepped back 5 s after the renewal: still Ready.
  t.true(readyNodes([lease('a', T0 + 5000)], T0, 20).has('a'));
  // Stepped back an hour and the holder died: it must not stay Ready for that hour.
  t.false(readyNodes([lease('a', T0 + 3_600_000)], T0, 20).has('a'));
});

test('lease age in seconds, never negative', (t) => {
  t.is(leaseAgeSeconds(lease('a', T0 - 2500), T0), 2.5);
  t.is(leaseAgeSeconds(lease('a', T0 + 1000), T0), 0);
});

test('renewal every quarter of the grace period, never faster than 10 per second', (t) => {
  t.is(renewIntervalMs(20), 5000);
  t.is(renewIntervalMs(3), 750);
  t.is(renewIntervalMs(0.1), 100);
});

test("only Ready nodes' readiness records count: a NotReady node's pods are not ready", (t) => {
  const byNode = new Map([
    ['node-1', new Map([['default/web-a', true], ['default/web-b', false]])],
    ['node-2', new Map([['default/web-c', true]])],
  ]);
  t.deepEqual([...readinessOnReadyNodes(byNode, new Set(['node-1', 'node-2']))].sort(), [
    ['default/web-a', true],
    ['default/web-b', false],
    ['default/web-c', true],
  ]);
  const withoutNode2 = readinessOnReadyNodes(byNode, new Set(['node-1']));
  t.is(withoutNode2.get('default/web-c'), undefined, 'absent, hence not ready (Readiness semantics)');
  t.deepEqual([...withoutNode2].sort(), [['default/web-a', true], ['default/web-b', false]]);
  t.is(readinessOnReadyNodes(byNode, new Set()).size, 0);
});

test('transitions between two judgements', (t) => {
  t.deepEqual(nodeTransitions(new Set(['a', 'b']), new Set(['b', 'c'])), [['c'], ['a']]);
  t.deepEqual(nodeTransitions(new Set(['a']), new Set(['a'])), [[], []]);
  t.deepEqual(nodeTransitions(new Set(), new Set(['b', 'a'])), [['a', 'b'], []]);
});

test('a lease record parses, and every kind of bad record says why', (t) => {
  t.deepEqual(parseLease('node-1', JSON.stringify({ node: 'node-1', renewTime: T0, leaseDurationSeconds: 20 })), {
    node: 'node-1',
    renewTime: T0,
    leaseDurationSeconds: 20,
  });
  const bad: [string, RegExp][] = [
    ['{"node": "node-1", "renewTime": 1', /not JSON/],
    ['null', /not an object/],
    ['[1]', /names holder undefined/],
    [JSON.stringify({ node: 'node-2', renewTime: T0, leaseDurationSeconds: 20 }), /names holder "node-2"/],
    [JSON.stringify({ node: 'node-1', renewTime: 'now', leaseDurationSeconds: 20 }), /no numeric renewTime/],
    [JSON.stringify({ node: 'node-1', renewTime: T0, leaseDurationSeconds: 0 }), /no positive leaseDurationSeconds/],
    [JSON.stringify({ node: 'node-1', renewTime: T0 }), /no positive leaseDurationSeconds/],
  ];
  for (const [text, why] of bad) {
    const r = parseLease('node-1', text);
    t.is(typeof r, 'string', text);
    t.regex(r as string, why, text);
  }
});
