/**
 * A rule set as JSON for tools (`podwire trace --json`, the control socket): the model's own
 * shape with addresses as text ("10.96.0.10", "10.244.0.0/16") and each rule also carrying
 * its iptables-save line, so a reader needs neither uint32 arithmetic nor the renderer.
 */
import { formatCidr, formatIpv4 } from '../packet/addr.js';
import { saveRuleArgs, DEFAULT_INTERFACE_NAMES, type InterfaceNames } from './iptables-save.js';
import { TABLE_NAMES, type AddressMatch, type Match, type Rule, type RuleSet, type TableName, type Target } from './rules.js';

export type MatchJson =
  | Exclude<Match, AddressMatch>
  | { readonly kind: AddressMatch['kind']; readonly cidr: string; readonly negate: boolean };

export type TargetJson =
  | Exclude<Target, { kind: 'dnat' } | { kind: 'snat' }>
  | { readonly kind: 'dnat'; readonly address: string; readonly port?: number }
  | { readonly kind: 'snat'; readonly address: string; readonly port?: number; readonly randomFully: boolean };

export interface RuleJson {
  readonly chain: string;
  readonly matches: readonly MatchJson[];
  readonly target: TargetJson;
  /** The rule as iptables-save prints it. */
  readonly text: string;
}

export interface TableJson {
  readonly chains: readonly string[];
  readonly rules: readonly RuleJson[];
}

export type RuleSetJson = Readonly<Record<TableName, TableJson>>;

export function matchToJson(m: Match): MatchJson {
  return isAddressMatch(m) ? { kind: m.kind, cidr: formatCidr(m.cidr), negate: m.negate } : m;
}

function isAddressMatch(m: Match): m is AddressMatch {
  return m.kind === 'source' || m.kind === 'destination';
}

export function targetToJson(t: Target): TargetJson {
  if (t.kind === 'dnat' || t.kind === 'snat') return { ...t, address: formatIpv4(t.address) };
  return t;
}

export function ruleToJson(rule: Rule, names: InterfaceNames = DEFAULT_INTERFACE_NAMES): RuleJson {
  return {
    chain: rule.chain,
    matches: rule.matches.map(matchToJson),
    target: targetToJson(rule.target),
    text: `-A ${rule.chain} ${saveRuleArgs(rule, names)}`,
  };
}

export function ruleSetToJson(ruleSet: RuleSet, names: InterfaceNames = DEFAULT_INTERFACE_NAMES): RuleSetJson {
  const out = {} as Record<TableName, TableJson>;
  for (const table of TABLE_NAMES) {
    out[table] = { chains: [...ruleSet[table].chains], rules: ruleSet[table].rules.map((r) => ruleToJson(r, names)) };
  }
  return out;
}
