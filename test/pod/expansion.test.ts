import test from 'ava';
import fc from 'fast-check';
import { expand } from '../../src/pod/expansion.js';

// Cases of Kubernetes' third_party/forked/golang/expansion/expand_test.go.
const vars: Record<string, string> = { VAR_A: 'A', VAR_B: 'B', VAR_C: 'C', VAR_REF: '$(VAR_A)', VAR_EMPTY: '' };
const lookup = (name: string) => (Object.hasOwn(vars, name) ? vars[name] : undefined);

const cases: [string, string][] = [
  ['$(VAR_A)', 'A'],
  ['___$(VAR_B)___', '___B___'],
  ['$(VAR_A)-$(VAR_A)', 'A-A'],
  ['$(VAR_A)-1', 'A-1'],
  ['$(VAR_A)_$(VAR_B)_$(VAR_C)', 'A_B_C'],
  ['$$(VAR_B)_$(VAR_A)', '$(VAR_B)_A'],
  ['$$(VAR_A)$$(VAR_B)', '$(VAR_A)$(VAR_B)'],
  ['f000-$$VAR_A', 'f000-$VAR_A'],
  ['foo\\$(VAR_C)bar', 'foo\\Cbar'],
  ['foo\\\\$(VAR_C)bar', 'foo\\\\Cbar'],
  ['$(VAR_EMPTY)', ''],
  ['$(VAR_REF)', '$(VAR_A)'],
  ['$(VAR_DNE)', '$(VAR_DNE)'],
  ['$(VAR_A', '$(VAR_A'],
  ['$VAR_A', '$VAR_A'],
  ['$(VAR_A)$', 'A$'],
  ['$', '$'],
  ['$$', '$'],
  ['$(', '$('],
  ['$()', '$()'],
  ['$$$$(VAR_A)', '$$(VAR_A)'],
  ['', ''],
];

for (const [input, want] of cases) test(`expand ${JSON.stringify(input)}`, (t) => t.is(expand(input, lookup), want));

test('text without $ is left as it is, and expansion never reads past its input', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.string(), (s) => {
        const out = expand(s, () => 'X');
        return s.includes('$') || out === s;
      }),
    ),
  );
});
