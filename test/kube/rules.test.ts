import test from 'ava';
import {
  ACCEPT,
  REJECT,
  RuleSetBuilder,
  RuleSetError,
  applyMark,
  destination,
  destinationPort,
  dnat,
  goTo,
  jump,
  kernelProbability,
  masquerade,
  protocol,
  recentCheck,
  statistic,
  statisticFraction,
  validateRuleSet,
  type RuleSet,
} from '../../src/kube/rules.js';

function problems(build: (b: RuleSetBuilder) => void): string[] {
  const b = new RuleSetBuilder();
  build(b);
  try {
    b.build();
    return [];
  } catch (err) {
    if (!(err instanceof RuleSetError)) throw err;
    return [...err.problems];
  }
}

test('a valid rule set builds; chains keep declaration order, rules generation order', (t) => {
  const b = new RuleSetBuilder();
  b.chain('nat', 'B').chain('nat', 'A').chain('nat', 'B');
  b.append('nat', 'PREROUTING', [], jump('A'));
  b.append('nat', 'A', [protocol('tcp'), destinationPort(80)], jump('B'));
  b.append('nat', 'B', [], dnat(0x0a000001, 8080));
  const rules = b.build();
  t.deepEqual(rules.nat.chains, ['B', 'A']);
  t.deepEqual(rules.nat.rules.map((r) => r.chain), ['PREROUTING', 'A', 'B']);
  t.deepEqual(validateRuleSet(rules), []);
});

test('what iptables-restore and the kernel refuse is refused', (t) => {
  t.regex(problems((b) => b.append('nat', 'NOPE', [], ACCEPT)).join(), /chain NOPE is not declared/);
  t.regex(problems((b) => b.append('nat', 'PREROUTING', [], jump('MISSING'))).join(), /target chain MISSING does not exist/);
  t.regex(problems((b) => b.append('nat', 'PREROUTING', [], jump('OUTPUT'))).join(), /cannot jump to built-in chain OUTPUT/);
  t.regex(problems((b) => b.chain('nat', 'X'.repeat(29))).join(), /1 to 28 characters/);
  t.regex(problems((b) => b.append('filter', 'FORWARD', [], dnat(1, 2))).join(), /DNAT is only valid in the nat table/);
  t.regex(problems((b) => b.append('nat', 'PREROUTING', [], REJECT)).join(), /REJECT is only valid in the filter table/);
  t.regex(problems((b) => b.append('nat', 'PREROUTING', [], masquerade(true))).join(), /MASQUERADE in chain PREROUTING is reachable from PREROUTING/);
  t.regex(
    problems((b) => {
      b.chain('nat', 'SHARED');
      b.append('nat', 'POSTROUTING', [], jump('SHARED'));
      b.append('nat', 'SHARED', [], dnat(1, 2));
    }).join(),
    /DNAT in chain SHARED is reachable from POSTROUTING/,
  );
  t.regex(problems((b) => b.append('filter', 'INPUT', [destinationPort(80)], ACCEPT)).join(), /destinationPort needs a protocol match/);
  t.regex(problems((b) => b.append('filter', 'INPUT', [destination({ base: 0x0a000001, prefix: 8 })], ACCEPT)).join(), /host bits/);
  t.regex(problems((b) => b.append('filter', 'INPUT', [statistic(1.5)], ACCEPT)).join(), /outside \[0, 1\]/);
  t.regex(problems((b) => b.append('filter', 'INPUT', [recentCheck('', 10)], ACCEPT)).join(), /recent name/);
  t.regex(problems((b) => b.append('filter', 'INPUT', [protocol('tcp'), protocol('udp')], ACCEPT)).join(), /more than one protocol/);
});

test('loops are found, through goto as well as jump', (t) => {
  const found = problems((b) => {
    b.chain('filter', 'A').chain('filter', 'B').chain('filter', 'C');
    b.append('filter', 'FORWARD', [], jump('A'));
    b.append('filter', 'A', [], jump('B'));
    b.append('filter', 'B', [], goTo('C'));
    b.append('filter', 'C', [], jump('A'));
  });
  t.regex(found.join(), /loop through chains A -> B -> C -> A/);
});

test('validateRuleSet also checks rule sets not made by the builder', (t) => {
  const handMade: RuleSet = {
    filter: { chains: ['INPUT'], rules: [] },
    nat: { chains: [], rules: [{ chain: 'PREROUTING', matches: [], target: { kind: 'mark', value: -1, mask: 0 } }] },
  };
  const found = validateRuleSet(handMade).join('\n');
  t.regex(found, /declared twice or shadows a built-in chain/);
  t.regex(found, /MARK value and mask must be uint32/);
});

test('MARK arithmetic and the kernel\'s 31-bit probabilities', (t) => {
  t.is(applyMark(0x1, { value: 0x4000, mask: 0x4000 }), 0x4001);
  t.is(applyMark(0x4001, { value: 0x4000, mask: 0 }), 0x1);
  t.is(applyMark(0xffffffff, { value: 0, mask: 0xffffffff }), 0);
  t.is(kernelProbability(1 / 3), 715827883);
  t.is(kernelProbability(1), 0x80000000);
});

test('statistic probabilities of the form 1/k are taken as exact fractions', (t) => {
  t.deepEqual(statisticFraction(1 / 3), { numerator: 1n, denominator: 3n });
  t.deepEqual(statisticFraction(1 / 1000), { numerator: 1n, denominator: 1000n });
  t.deepEqual(statisticFraction(0.75), { numerator: 3n, denominator: 4n });
  t.deepEqual(statisticFraction(0), { numerator: 0n, denominator: 1n });
  t.deepEqual(statisticFraction(1), { numerator: 1n, denominator: 1n });
  const { numerator, denominator } = statisticFraction(0.3);
  t.is(Number(numerator) / Number(denominator), 0.3);
});
