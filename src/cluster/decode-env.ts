/**
 * A container's environment as the manifest declares it: `env` (values, and valueFrom's
 * downward API fields, ConfigMap and Secret keys) and `envFrom`. What the variables hold
 * is worked out when the container starts (src/pod/env.ts); here the declarations are
 * checked as the API server checks them.
 */

import { checked, required } from './decode-common.js';
import type { EnvFromSource, EnvVar, EnvVarSource, PodFieldPath } from './model.js';
import { checkConfigMapKey, checkDnsSubdomain, checkEnvPrefix, checkEnvVarName, checkLabelKey } from './names.js';
import type { Field, FieldMap } from './yaml-reader.js';

/** The fieldPaths an environment variable may name, as the API server lists them (labels by key). */
const PLAIN_FIELD_PATHS: readonly PodFieldPath[] = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.podIP',
  'status.podIPs',
  'status.hostIP',
  'status.hostIPs',
];
const SUPPORTED_FIELD_PATHS = ['metadata.name', 'metadata.namespace', 'metadata.uid', "metadata.labels['<KEY>']", ...PLAIN_FIELD_PATHS.slice(3)].join(', ');

const SUBSCRIPTED = /^metadata\.(labels|annotations)\['(.*)'\]$/;

/** valueFrom's sources: the two podwire cannot resolve are warned about and leave the variable out. */
const VALUE_SOURCES = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef', 'fileKeyRef'] as const;
const UNSUPPORTED_SOURCES: ReadonlySet<string> = new Set(['resourceFieldRef', 'fileKeyRef']);

export function decodeEnv(field: Field): EnvVar[] {
  const env: EnvVar[] = [];
  for (const item of field.list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) continue;
    const name = required(m.get('name'), checkEnvVarName);
    const value = m.get('value').string() ?? '';
    const valueFromField = m.get('valueFrom');
    if (!valueFromField.present) {
      if (name !== undefined) env.push({ name, value });
      continue;
    }
    if (value !== '') {
      valueFromField.error('may not be specified when `value` is not empty');
      continue;
    }
    const valueFrom = decodeValueFrom(valueFromField);
    if (name !== undefined && valueFrom !== undefined) env.push({ name, value: '', valueFrom });
  }
  return env;
}

function decodeValueFrom(field: Field): EnvVarSource | undefined {
  const m = field.map();
  if (m === undefined) return undefined;
  const given = VALUE_SOURCES.filter((k) => m.has(k));
  if (given.length === 0) {
    field.error('must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`');
    return undefined;
  }
  if (given.length > 1) {
    field.error(`may not have more than one field specified at a time, got ${given.join(', ')}`);
    return undefined;
  }
  const source = given[0];
  if (UNSUPPORTED_SOURCES.has(source)) {
    m.get(source).warn('not supported by podwire: the variable is left out');
    return undefined;
  }
  if (source === 'fieldRef') return decodeFieldRef(m.get(source));
  const ref = m.get(source).map();
  if (ref === undefined) return undefined;
  const name = required(ref.get('name'), checkDnsSubdomain);
  const key = required(ref.get('key'), checkConfigMapKey);
  const optional = ref.get('optional').boolean() ?? false;
  if (name === undefined || key === undefined) return undefined;
  return { kind: source === 'configMapKeyRef' ? 'configMapKeyRef' : 'secretKeyRef', name, key, optional };
}

function decodeFieldRef(field: Field): EnvVarSource | undefined {
  const m = field.map();
  if (m === undefined) return undefined;
  const apiVersionField = m.get('apiVersion');
  const apiVersion = apiVersionField.string();
  if (apiVersion !== undefined && apiVersion !== 'v1') {
    apiVersionField.invalid('must be "v1", the version the downward API serves pod fields in');
    return undefined;
  }
  const pathField = m.get('fieldPath');
  const path = required(pathField);
  if (path === undefined) return undefined;
  if ((PLAIN_FIELD_PATHS as readonly string[]).includes(path)) return { kind: 'fieldRef', fieldPath: path as PodFieldPath };
  const sub = SUBSCRIPTED.exec(path);
  if (sub?.[1] === 'annotations') {
    pathField.error('metadata.annotations is not modelled by podwire (it keeps no annotations): use a label or a value instead');
    return undefined;
  }
  if (sub?.[1] === 'labels') {
    const badKey = checkLabelKey(sub[2]);
    if (badKey !== undefined) {
      pathField.error(`label key ${badKey}`);
      return undefined;
    }
    return { kind: 'fieldRef', fieldPath: 'metadata.labels', key: sub[2] };
  }
  pathField.error(`must be one of ${SUPPORTED_FIELD_PATHS}, got ${JSON.stringify(path)}`);
  return undefined;
}

export function decodeEnvFrom(field: Field): EnvFromSource[] {
  const out: EnvFromSource[] = [];
  for (const item of field.list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) continue;
    const source = decodeEnvFromSource(item, m);
    const prefix = checked(m.get('prefix'), checkEnvPrefix) ?? '';
    if (source !== undefined) out.push({ ...source, prefix });
  }
  return out;
}

function decodeEnvFromSource(item: Field, m: FieldMap): Omit<EnvFromSource, 'prefix'> | undefined {
  const hasConfigMap = m.has('configMapRef');
  const hasSecret = m.has('secretRef');
  if (hasConfigMap === hasSecret) {
    item.error(hasConfigMap ? 'may not have more than one field specified at a time: `configMapRef` or `secretRef`' : 'must specify one of: `configMapRef` or `secretRef`');
    return undefined;
  }
  const kind = hasConfigMap ? 'configMapRef' : 'secretRef';
  const ref = m.get(kind).map();
  if (ref === undefined) return undefined;
  const name = required(ref.get('name'), checkDnsSubdomain);
  const optional = ref.get('optional').boolean() ?? false;
  return name === undefined ? undefined : { kind, name, optional };
}
