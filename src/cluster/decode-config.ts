/**
 * ConfigMaps and Secrets, checked as the API server checks them: key syntax, base64 where
 * the API carries bytes, no key twice, at most 1 MiB each, the keys a Secret's type
 * requires. The values become bytes here, so every reader (volumes, environment, an
 * Ingress's TLS) sees what the kubelet would.
 */

import { decodeMetadata, type ObjectMeta } from './decode-common.js';
import type { DataMap } from './model.js';
import { checkConfigMapKey, checkDnsSubdomain } from './names.js';
import type { Field, FieldMap } from './yaml-reader.js';

/** The API server's limit on a ConfigMap's or Secret's data (MaxSecretSize, and the ConfigMap limit). */
export const MAX_DATA_BYTES = 1024 * 1024;

/** Keys a Secret of each built-in type must hold, as ValidateSecret requires them. */
const REQUIRED_SECRET_KEYS: Readonly<Record<string, readonly string[]>> = {
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
};

export interface ConfigMapDecl {
  readonly kind: 'ConfigMap';
  readonly meta: ObjectMeta;
  readonly data: DataMap;
  readonly binaryKeys: readonly string[];
}

export interface SecretDecl {
  readonly kind: 'Secret';
  readonly meta: ObjectMeta;
  readonly type: string;
  readonly data: DataMap;
}

export function decodeConfigMap(root: FieldMap): ConfigMapDecl | undefined {
  const meta = decodeMetadata(root, true, checkDnsSubdomain);
  const text = decodeDataMap(root.get('data'), 'text');
  const binary = decodeDataMap(root.get('binaryData'), 'base64');
  root.get('immutable').boolean(); // honoured by nothing in podwire, but a wrong type is still wrong
  if (text === undefined || binary === undefined) return undefined;
  for (const key of Object.keys(binary.values)) {
    if (Object.hasOwn(text.values, key)) binary.fields.get(key)!.error(`duplicate of key ${JSON.stringify(key)} present in data`);
  }
  const data = { ...text.values, ...binary.values };
  if (!withinLimit(data, root.field, true)) return undefined;
  return meta && { kind: 'ConfigMap', meta, data, binaryKeys: Object.keys(binary.values) };
}

export function decodeSecret(root: FieldMap): SecretDecl | undefined {
  const meta = decodeMetadata(root, true, checkDnsSubdomain);
  const typeField = root.get('type');
  const type = typeField.string() || 'Opaque';
  const encoded = decodeDataMap(root.get('data'), 'base64');
  const plain = decodeDataMap(root.get('stringData'), 'text');
  root.get('immutable').boolean();
  if (encoded === undefined || plain === undefined) return undefined;
  // stringData is write-only convenience: the API server merges it over data.
  const data = { ...encoded.values, ...plain.values };
  const missing = (REQUIRED_SECRET_KEYS[type] ?? []).filter((key) => !Object.hasOwn(data, key));
  for (const key of missing) root.get('data').error(`a Secret of type ${type} must have the key ${JSON.stringify(key)}`);
  if (missing.length > 0 || !withinLimit(data, root.field, false)) return undefined;
  return meta && { kind: 'Secret', meta, type, data };
}

interface DataFields {
  readonly values: Record<string, Buffer>;
  readonly fields: ReadonlyMap<string, Field>;
}

/** A map of key to string, each value UTF-8 text or base64; undefined when any entry is bad (reported). */
function decodeDataMap(field: Field, encoding: 'text' | 'base64'): DataFields | undefined {
  const map = field.map();
  if (map === undefined) return field.present ? undefined : { values: {}, fields: new Map() };
  const values: Record<string, Buffer> = {};
  const fields = new Map<string, Field>();
  let ok = true;
  for (const [key, value] of map.entries) {
    const badKey = checkConfigMapKey(key);
    if (badKey !== undefined) {
      value.error(`key ${badKey}`);
      ok = false;
      continue;
    }
    // `key:` alone is null, which the API server reads as an empty value.
    const text = value.present ? value.string() : '';
    if (text === undefined) {
      ok = false;
      continue;
    }
    const bytes = encoding === 'text' ? Buffer.from(text, 'utf8') : decodeBase64(text);
    if (bytes === undefined) {
      value.error('must be base64 (as `base64 -w0` writes it): it is decoded into the bytes the key holds');
      ok = false;
      continue;
    }
    values[key] = bytes;
    fields.set(key, value);
  }
  return ok ? { values, fields } : undefined;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Standard base64 with padding, as Go's encoding/json reads []byte: line breaks are skipped,
 * anything else that is not the alphabet is refused (Buffer.from would quietly drop it).
 */
export function decodeBase64(text: string): Buffer | undefined {
  const joined = text.replace(/[\r\n]/g, '');
  return BASE64.test(joined) ? Buffer.from(joined, 'base64') : undefined;
}

/** The API server counts a ConfigMap's keys and values, a Secret's values only. */
function withinLimit(data: DataMap, root: Field, countKeys: boolean): boolean {
  const total = Object.entries(data).reduce((n, [key, value]) => n + (countKeys ? key.length : 0) + value.length, 0);
  if (total <= MAX_DATA_BYTES) return true;
  root.error(`data must be at most ${MAX_DATA_BYTES} bytes (${countKeys ? 'keys and values' : 'values'} together), got ${total}`);
  return false;
}
