import test from 'ava';
import type { LabelSelector, LabelSelectorRequirement, Labels } from '../../src/cluster/model.js';
import { equalitySelector, formatSelector, selectorMatches } from '../../src/cluster/selector.js';

const sel = (matchLabels: Labels, ...matchExpressions: LabelSelectorRequirement[]): LabelSelector => ({ matchLabels, matchExpressions });
const WEB = { app: 'web', tier: 'front' };

/** [selector, labels, matches]. */
const CASES: ReadonlyArray<readonly [LabelSelector, Labels, boolean]> = [
  [sel({}), {}, true], // the empty selector matches everything
  [sel({}), WEB, true],
  [sel({ app: 'web' }), WEB, true],
  [sel({ app: 'web', tier: 'back' }), WEB, false],
  [sel({ app: 'web' }), {}, false],
  [sel({ app: '' }), {}, false], // an empty value still needs the key
  [sel({ app: '' }), { app: '' }, true],
  [sel({}, { key: 'app', operator: 'In', values: ['web', 'api'] }), WEB, true],
  [sel({}, { key: 'app', operator: 'In', values: ['api'] }), WEB, false],
  [sel({}, { key: 'env', operator: 'In', values: ['prod'] }), WEB, false],
  [sel({}, { key: 'app', operator: 'NotIn', values: ['api'] }), WEB, true],
  [sel({}, { key: 'app', operator: 'NotIn', values: ['web'] }), WEB, false],
  [sel({}, { key: 'env', operator: 'NotIn', values: ['prod'] }), WEB, true], // a missing key is "not in"
  [sel({}, { key: 'tier', operator: 'Exists', values: [] }), WEB, true],
  [sel({}, { key: 'env', operator: 'Exists', values: [] }), WEB, false],
  [sel({}, { key: 'env', operator: 'DoesNotExist', values: [] }), WEB, true],
  [sel({}, { key: 'app', operator: 'DoesNotExist', values: [] }), WEB, false],
  [sel({ app: 'web' }, { key: 'tier', operator: 'In', values: ['front'] }, { key: 'env', operator: 'DoesNotExist', values: [] }), WEB, true],
  [sel({ app: 'web' }, { key: 'tier', operator: 'In', values: ['back'] }), WEB, false], // every part must hold
  [sel({ constructor: 'x' }), {}, false], // inherited properties are not labels
  [sel({}, { key: 'toString', operator: 'Exists', values: [] }), {}, false],
];

for (const [selector, labels, expected] of CASES) {
  test(`selector ${formatSelector(selector)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(labels)}`, (t) => {
    t.is(selectorMatches(selector, labels), expected);
  });
}

test('equalitySelector (Service selectors, nodeSelector) requires every label', (t) => {
  t.true(selectorMatches(equalitySelector({ app: 'web' }), WEB));
  t.false(selectorMatches(equalitySelector({ app: 'web', env: 'prod' }), WEB));
});

test('formatSelector writes kubectl notation', (t) => {
  t.is(
    formatSelector(
      sel(
        { app: 'web' },
        { key: 'tier', operator: 'In', values: ['a', 'b'] },
        { key: 'env', operator: 'NotIn', values: ['x'] },
        { key: 'canary', operator: 'Exists', values: [] },
        { key: 'legacy', operator: 'DoesNotExist', values: [] },
      ),
    ),
    'app=web,tier in (a,b),env notin (x),canary,!legacy',
  );
  t.is(formatSelector(sel({})), '<everything>');
});
