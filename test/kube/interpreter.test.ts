import test from 'ava';
import fc from 'fast-check';
import { RecentLists, evaluateHook, traverse, type Environment, type PacketMeta } from '../../src/kube/interpreter.js';
import {
  ACCEPT,
  DRAW_RANGE,
  DROP,
  REJECT,
  RETURN,
  RuleSetBuilder,
  comment,
  ctstate,
  destination,
  destinationPort,
  dnat,
  goTo,
  hostCidr,
  inInterface,
  jump,
  markMatch,
  masquerade,
  orMark,
  protocol,
  recentCheck,
  recentSet,
  source,
  statistic,
  xorMark,
} from '../../src/kube/rules.js';
import { ip } from './service-fixtures.js';

const PACKET: PacketMeta = {
  src: ip('10.244.1.2'),
  dst: ip('10.96.0.10'),
  proto: 6,
  sport: 40000,
  dport: 80,
  mark: 0,
  ctstate: 'NEW',
  srcLocal: false,
  dstLocal: false,
  inRole: 'pod',
};

function env(overrides: Partial<Environment> = {}): Environment {
  return { random: () => 0.5, now: 0, recent: new RecentLists(), ...overrides };
}

test('jump returns after the calling rule; goto returns to the chain that jumped; RETURN in a built-in chain is its policy', (t) => {
  const b = new RuleSetBuilder();
  for (const c of ['A', 'B', 'C']) b.chain('filter', c);
  b.append('filter', 'FORWARD', [], jump('A'));
  b.append('filter', 'FORWARD', [comment('after A')], orMark(0x1));
  b.append('filter', 'A', [], goTo('B'));
  b.append('filter', 'A', [comment('skipped: goto does not come back here')], orMark(0x100));
  b.append('filter', 'B', [], orMark(0x2));
  b.append('filter', 'B', [], RETURN);
  b.append('filter', 'B', [comment('never reached')], DROP);
  const result = evaluateHook(b.build(), 'FORWARD', PACKET, env());
  t.is(result.verdict, 'ACCEPT');
  t.is(result.mark, 0x3);
  t.deepEqual(
    result.hits.map((h) => `${h.chain}#${h.position}`),
    ['FORWARD#1', 'A#1', 'B#1', 'B#2', 'FORWARD#2'],
  );

  const early = new RuleSetBuilder();
  early.append('filter', 'INPUT', [], RETURN);
  early.append('filter', 'INPUT', [], DROP);
  t.is(evaluateHook(early.build(), 'INPUT', PACKET, env()).verdict, 'ACCEPT');
});

test('MARK is --set-xmark; the mark match compares under its mask', (t) => {
  const b = new RuleSetBuilder();
  b.append('filter', 'FORWARD', [], orMark(0x4000));
  b.append('filter', 'FORWARD', [markMatch(0x4000, 0x4000, true)], DROP);
  b.append('filter', 'FORWARD', [], xorMark(0x4001));
  b.append('filter', 'FORWARD', [markMatch(0x0001, 0x4001)], REJECT);
  const result = evaluateHook(b.build(), 'FORWARD', { ...PACKET, mark: 0x10000 }, env());
  t.is(result.verdict, 'REJECT');
  t.is(result.rejectWith, 'icmp-port-unreachable');
  t.is(result.mark, 0x10001);
});

test('the nat table only sees a connection\'s first packet', (t) => {
  const b = new RuleSetBuilder();
  b.append('nat', 'PREROUTING', [], dnat(ip('10.244.2.2'), 8080));
  const rules = b.build();
  t.deepEqual(evaluateHook(rules, 'PREROUTING', PACKET, env()).nat, { kind: 'dnat', address: ip('10.244.2.2'), port: 8080 });
  t.is(evaluateHook(rules, 'PREROUTING', { ...PACKET, ctstate: 'ESTABLISHED' }, env()).nat, undefined);
});

test('at OUTPUT the filter table sees the destination nat rewrote', (t) => {
  const b = new RuleSetBuilder();
  b.append('nat', 'OUTPUT', [], dnat(ip('10.244.2.2'), 8080));
  b.append('filter', 'OUTPUT', [destination(hostCidr(ip('10.244.2.2'))), protocol('tcp'), destinationPort(8080)], REJECT);
  t.is(evaluateHook(b.build(), 'OUTPUT', { ...PACKET, inRole: undefined }, env()).verdict, 'REJECT');
});

test('header fields are tested before match modules, whatever the order written', (t) => {
  const b = new RuleSetBuilder();
  // kube-proxy writes `-m recent --set -m tcp -p tcp`: a UDP packet must not be recorded.
  b.append('nat', 'PREROUTING', [recentSet('LIST'), protocol('tcp')], ACCEPT);
  const recent = new RecentLists();
  evaluateHook(b.build(), 'PREROUTING', { ...PACKET, proto: 17 }, env({ recent }));
  t.is(recent.lastSeen('LIST', PACKET.src), undefined);
  evaluateHook(b.build(), 'PREROUTING', PACKET, env({ recent, now: 7 }));
  t.is(recent.lastSeen('LIST', PACKET.src), 7);
});

test('interfaces, conntrack states and negations', (t) => {
  const b = new RuleSetBuilder();
  b.append('filter', 'FORWARD', [inInterface('uplink')], orMark(0x1));
  b.append('filter', 'FORWARD', [inInterface('uplink', true)], orMark(0x2));
  b.append('filter', 'FORWARD', [ctstate(['RELATED', 'ESTABLISHED'])], orMark(0x4));
  b.append('filter', 'FORWARD', [ctstate(['INVALID'], true)], orMark(0x8));
  b.append('filter', 'FORWARD', [source({ base: ip('10.244.0.0'), prefix: 16 }, true)], orMark(0x10));
  t.is(evaluateHook(b.build(), 'FORWARD', PACKET, env()).mark, 0x2 | 0x8);
  t.is(evaluateHook(b.build(), 'FORWARD', { ...PACKET, inRole: 'uplink', ctstate: 'ESTABLISHED', src: ip('192.0.2.7') }, env()).mark, 0x1 | 0x4 | 0x8 | 0x10);
});

test('recent: rcheck within --seconds inclusive, reap forgets the stale, lists die with their rules', (t) => {
  const recent = new RecentLists();
  recent.set('A', 1, 100);
  recent.set('A', 2, 50);
  t.true(recent.check('A', 1, 110, 10));
  t.false(recent.check('A', 1, 110.5, 10));
  t.true(recent.check('A', 1, 1e9, undefined));
  t.false(recent.check('B', 1, 100, 10));
  recent.reap('A', 100, 10);
  t.is(recent.lastSeen('A', 2), undefined);
  t.is(recent.lastSeen('A', 1), 100);
  const b = new RuleSetBuilder();
  b.append('nat', 'PREROUTING', [recentCheck('A', 60)], ACCEPT);
  recent.set('GONE', 1, 0);
  recent.retainReferenced(b.build());
  t.deepEqual(recent.names(), ['A']);
});

/** n rules with probabilities 1/n, 1/(n-1), ..., the last unconditional, DNATing to 10.0.0.i. */
function probabilityChain(n: number) {
  const b = new RuleSetBuilder();
  for (let i = 0; i < n; i++) b.append('nat', 'PREROUTING', i < n - 1 ? [statistic(1 / (n - i))] : [], dnat(ip(`10.0.0.${i}`), 80));
  return b.build();
}

test('the 1/(n-i) chain picks endpoint floor(draw * n / 2^32), exactly, boundaries included', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: DRAW_RANGE - 1 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: -1, max: 1 }), (n, anyDraw, k, nudge) => {
      // Half the cases sit on (or next to) the boundary between two endpoints.
      const onBoundary = Math.min(DRAW_RANGE - 1, Math.max(0, Math.ceil(((k % n) * DRAW_RANGE) / n) + nudge));
      for (const draw of [anyDraw, onBoundary]) {
        const result = evaluateHook(probabilityChain(n), 'PREROUTING', PACKET, env({ random: () => draw / DRAW_RANGE }));
        const picked = (result.nat as { address: number }).address & 0xff;
        if (picked !== Math.floor((draw * n) / DRAW_RANGE)) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('each rule of the chain takes its share of draws evenly over a grid', (t) => {
  const n = 7;
  const counts = new Array<number>(n).fill(0);
  const steps = 7000;
  for (let s = 0; s < steps; s++) {
    const result = evaluateHook(probabilityChain(n), 'PREROUTING', PACKET, env({ random: () => (s + 0.5) / steps }));
    counts[(result.nat as { address: number }).address & 0xff]++;
  }
  t.deepEqual(counts, new Array<number>(n).fill(steps / n));
});

test('one random number per hook at most, and none when no statistic rule is reached', (t) => {
  let calls = 0;
  const random = () => {
    calls++;
    return 0.99;
  };
  evaluateHook(probabilityChain(5), 'PREROUTING', PACKET, env({ random }));
  t.is(calls, 1);
  evaluateHook(probabilityChain(1), 'PREROUTING', PACKET, env({ random }));
  t.is(calls, 1);
});

test('a faulty random source is clamped, not trusted', (t) => {
  for (const [u, expected] of [[Number.NaN, 0], [-3, 0], [1, 3], [7, 3]] as const) {
    const result = evaluateHook(probabilityChain(4), 'PREROUTING', PACKET, env({ random: () => u }));
    t.is((result.nat as { address: number }).address & 0xff, expected, `random() = ${u}`);
  }
});

test('traverse: PREROUTING, routing on the rewritten destination, FORWARD, POSTROUTING; or INPUT', (t) => {
  const b = new RuleSetBuilder();
  b.append('nat', 'PREROUTING', [destination(hostCidr(ip('10.96.0.10'))), protocol('tcp'), destinationPort(80)], dnat(ip('10.244.2.2'), 8080));
  b.append('filter', 'FORWARD', [destination(hostCidr(ip('10.244.2.2')))], orMark(0x20));
  b.append('nat', 'POSTROUTING', [markMatch(0x20, 0x20)], masquerade(true));
  b.append('filter', 'INPUT', [protocol('tcp'), destinationPort(22)], DROP);
  const rules = b.build();
  const isLocalAddress = (a: number) => a === ip('192.0.2.11');
  const forwarded = traverse(rules, PACKET, env(), { origin: 'arriving', isLocalAddress });
  t.is(forwarded.verdict, 'ACCEPT');
  t.is(forwarded.delivery, 'forward');
  t.deepEqual(forwarded.dnat, { address: ip('10.244.2.2'), port: 8080 });
  t.deepEqual(forwarded.snat, { kind: 'masquerade', randomFully: true });
  t.deepEqual(forwarded.steps.map((s) => s.hook), ['PREROUTING', 'FORWARD', 'POSTROUTING']);
  const ssh = traverse(rules, { ...PACKET, dst: ip('192.0.2.11'), dport: 22 }, env(), { origin: 'arriving', isLocalAddress });
  t.is(ssh.verdict, 'DROP');
  t.is(ssh.delivery, 'local');
  t.deepEqual(ssh.steps.map((s) => s.hook), ['PREROUTING', 'INPUT']);
  const sent = traverse(rules, { ...PACKET, inRole: undefined }, env(), { origin: 'local', isLocalAddress });
  t.deepEqual(sent.steps.map((s) => s.hook), ['OUTPUT', 'POSTROUTING']);
});
