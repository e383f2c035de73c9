/**
 * Field decoders shared by several kinds: metadata, labels, selectors, ports, addresses.
 * Each reads a `Field`, reports what is wrong through it and returns `undefined` (or a safe
 * default) so that the caller carries on and finds the next problem too.
 */

import { parseCidr, parseIpv4, type Cidr } from '../packet/addr.js';
import type { LabelSelector, LabelSelectorRequirement, Labels, Protocol, SelectorOperator } from './model.js';
import { checkDnsLabel, checkLabelKey, checkLabelValue, checkPortName } from './names.js';
import type { Field, FieldMap } from './yaml-reader.js';

export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  /** `metadata.namespace`, for reporting a namespace that does not exist. */
  readonly namespaceField: Field;
  /** `metadata.name`, for reporting duplicates. */
  readonly nameField: Field;
}

/** Runs a syntax check on a string field, reporting a failure; returns the string if good. */
export function checked(field: Field, check: (value: string) => string | undefined): string | undefined {
  const value = field.string();
  if (value === undefined) return undefined;
  const bad = check(value);
  if (bad !== undefined) {
    field.error(bad);
    return undefined;
  }
  return value;
}

/**
 * Like `checked`, for a value that must be there but may be empty: in a map or list, `key:` and
 * `- ` are null, not strings, and are refused rather than read as absent.
 */
export function checkedValue(field: Field, check: (value: string) => string | undefined): string | undefined {
  return field.present ? checked(field, check) : field.invalid('must be a string');
}

/** A list of strings, each checked; bad items are reported and left out. */
export function checkedStrings(field: Field, check: (value: string) => string | undefined = () => undefined): string[] {
  const out: string[] = [];
  for (const item of field.list() ?? []) {
    const value = checkedValue(item, check);
    if (value !== undefined) out.push(value);
  }
  return out;
}

/** Like `checked`, and reports `required` when the field is absent. */
export function required(field: Field, check: (value: string) => string | undefined = () => undefined): string | undefined {
  return field.require() ? checked(field, check) : undefined;
}

/**
 * `metadata` of an object. Cluster-scoped kinds pass `namespaced: false` and get namespace "";
 * namespaced ones default to "default", as kubectl does without `-n`.
 */
export function decodeMetadata(
  root: FieldMap,
  namespaced: boolean,
  checkName: (value: string) => string | undefined,
): ObjectMeta | undefined {
  const meta = root.get('metadata').mapOrEmpty();
  if (meta === undefined) return undefined;
  const nameField = meta.get('name');
  const namespaceField = meta.get('namespace');
  const name = required(nameField, checkName);
  const namespace = namespaced ? (namespaceField.present ? checked(namespaceField, checkDnsLabel) : 'default') : '';
  const labels = decodeLabels(meta.get('labels'));
  if (name === undefined || namespace === undefined) return undefined;
  return { name, namespace, labels, namespaceField, nameField };
}

/** A string-to-string map whose keys and values are label syntax (labels, nodeSelector, selector). */
export function decodeLabels(field: Field): Labels {
  return decodeLabelMap(field).labels;
}

/** The labels that are valid, and whether all were (a selector with a bad part must not be used). */
function decodeLabelMap(field: Field): { labels: Labels; valid: boolean } {
  const map = field.map();
  if (map === undefined) return { labels: {}, valid: !field.present };
  const entries: Array<[string, string]> = [];
  for (const [key, value] of map.entries) {
    const badKey = checkLabelKey(key);
    if (badKey !== undefined) {
      value.error(`key ${badKey}`);
      continue;
    }
    const text = checkedValue(value, checkLabelValue);
    if (text !== undefined) entries.push([key, text]);
  }
  return { labels: Object.fromEntries(entries), valid: entries.length === map.entries.length };
}

/**
 * A metav1.LabelSelector: matchLabels and matchExpressions. `undefined` when absent or when any
 * part is invalid (already reported), so that callers do not go on to match with half of it.
 */
export function decodeLabelSelector(field: Field): LabelSelector | undefined {
  const map = field.map();
  if (map === undefined) return undefined;
  const { labels: matchLabels, valid } = decodeLabelMap(map.get('matchLabels'));
  let ok = valid;
  const matchExpressions: LabelSelectorRequirement[] = [];
  for (const item of map.get('matchExpressions').list() ?? []) {
    const expr = item.itemMap();
    if (expr === undefined) {
      ok = false;
      continue;
    }
    const key = required(expr.get('key'), checkLabelKey);
    const opField = expr.get('operator');
    const operator = opField.require() ? opField.oneOf(OPERATORS) : undefined;
    const valuesField = expr.get('values');
    const values = checkedStrings(valuesField, checkLabelValue);
    const given = valuesField.list()?.length ?? 0;
    if (valuesField.shape === 'scalar' || valuesField.shape === 'map') ok = false; // reported as not a list
    else if (operator === 'In' || operator === 'NotIn') {
      if (given === 0) valuesField.error(`must be non-empty when operator is ${operator}`);
    } else if (operator !== undefined && given > 0) {
      valuesField.error(`must be empty when operator is ${operator}`);
    }
    if (key === undefined || operator === undefined || values.length !== given) ok = false;
    else matchExpressions.push({ key, operator, values });
  }
  return ok ? { matchLabels, matchExpressions } : undefined;
}

export function decodeProtocol(field: Field): Protocol {
  return field.oneOf(PROTOCOLS) ?? 'TCP';
}

export function decodePortNumber(field: Field): number | undefined {
  return field.integer('must be an integer between 1 and 65535', 1, 65535);
}

/** An IntOrString port: a number 1-65535, or the name of a container port. */
export function decodePortRef(field: Field): number | string | undefined {
  const value = field.intOrString();
  if (typeof value === 'number') return decodePortNumber(field);
  if (typeof value === 'string') return checked(field, checkPortName);
  return undefined;
}

export function decodeIpv4(field: Field): number | undefined {
  const text = field.string();
  if (text === undefined) return undefined;
  const ip = parseIpv4(text);
  if (ip === undefined) return field.invalid('must be an IPv4 address');
  return ip;
}

/** A CIDR; with `allowHostBits`, `10.0.0.1/24` is read as 10.0.0.0/24 (as Kubernetes does for ipBlock). */
export function decodeCidr(field: Field, allowHostBits: boolean): Cidr | undefined {
  const text = field.string();
  if (text === undefined) return undefined;
  const cidr = parseCidr(text, allowHostBits);
  if (cidr === undefined) {
    const hostBits = parseCidr(text, true) !== undefined;
    return field.invalid(hostBits ? 'must be a network address (host bits zero)' : 'must be an IPv4 CIDR such as 10.0.0.0/16');
  }
  return cidr;
}

/** Reports a duplicate within one object ("duplicate port name "http""); returns whether it was new. */
export function claimUnique(seen: Set<string>, value: string, field: Field, what: string): boolean {
  if (seen.has(value)) {
    field.error(`duplicate ${what} ${JSON.stringify(value)}`);
    return false;
  }
  seen.add(value);
  return true;
}
