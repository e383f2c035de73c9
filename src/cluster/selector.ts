/**
 * Label selector evaluation, with Kubernetes' semantics: every matchLabels entry and every
 * expression must hold, so the empty selector matches everything. (An *absent* selector, which
 * matches nothing, is the caller's `undefined` and never reaches here.)
 */

import type { LabelSelector, LabelSelectorRequirement, Labels } from './model.js';

export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  for (const key of Object.keys(selector.matchLabels)) {
    if (!Object.hasOwn(labels, key) || labels[key] !== selector.matchLabels[key]) return false;
  }
  return selector.matchExpressions.every((r) => requirementMatches(r, labels));
}

function requirementMatches(r: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && r.values.includes(labels[r.key]);
    case 'NotIn':
      // As in Kubernetes, a missing key is "not in" any set.
      return !has || !r.values.includes(labels[r.key]);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** The selector that Service selectors and nodeSelectors mean: every label must be equal. */
export function equalitySelector(labels: Labels): LabelSelector {
  return { matchLabels: labels, matchExpressions: [] };
}

/** kubectl's notation, for messages: `app=web,tier in (a,b),!legacy`. Empty renders as `<everything>`. */
export function formatSelector(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels).map(([k, v]) => `${k}=${v}`);
  for (const r of selector.matchExpressions) {
    switch (r.operator) {
      case 'In':
        parts.push(`${r.key} in (${r.values.join(',')})`);
        break;
      case 'NotIn':
        parts.push(`${r.key} notin (${r.values.join(',')})`);
        break;
      case 'Exists':
        parts.push(r.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${r.key}`);
        break;
    }
  }
  return parts.length === 0 ? '<everything>' : parts.join(',');
}
