/**
 * A pod's `volumes` and its containers' `volumeMounts`. podwire gives pods emptyDir,
 * configMap and secret volumes; any other type is warned about and left out, so that a
 * container mounting it is an error rather than a pod silently missing its files.
 */

import { checked, claimUnique, required } from './decode-common.js';
import type { KeyToPath, ObjectVolumeSource, Volume, VolumeMount } from './model.js';
import { checkConfigMapKey, checkDnsLabel, checkDnsSubdomain, checkProjectedPath, checkRelativePath } from './names.js';
import { parseByteQuantity } from './quantity.js';
import type { Field } from './yaml-reader.js';

/** The files' default permission bits, 0644, as the API server defaults defaultMode. */
export const DEFAULT_VOLUME_FILE_MODE = 0o644;
const MAX_FILE_MODE = 0o777;
const MODE_RANGE = 'must be a number between 0 and 0777 (octal), both inclusive';

/** Volume types of the v1 VolumeSource besides the three podwire mounts. */
const OTHER_VOLUME_TYPES = [
  'hostPath', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'nfs', 'iscsi', 'glusterfs',
  'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc',
  'azureFile', 'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected',
  'portworxVolume', 'scaleIO', 'storageos', 'csi', 'ephemeral', 'image',
];
const SUPPORTED_VOLUME_TYPES = ['emptyDir', 'configMap', 'secret'] as const;
const VOLUME_TYPES = [...SUPPORTED_VOLUME_TYPES, ...OTHER_VOLUME_TYPES];

export interface DecodedVolumes {
  readonly volumes: Volume[];
  /** Declared but left out: the volume's name and its type, for mounts to be refused with. */
  readonly leftOut: ReadonlyMap<string, string>;
}

export function decodeVolumes(field: Field): DecodedVolumes {
  const volumes: Volume[] = [];
  const leftOut = new Map<string, string>();
  const names = new Set<string>();
  for (const item of field.list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) continue;
    const nameField = m.get('name');
    const name = required(nameField, checkDnsLabel);
    if (name !== undefined && !claimUnique(names, name, nameField, 'volume name')) continue;
    const types = VOLUME_TYPES.filter((t) => m.has(t));
    if (types.length > 1) {
      item.error(`may not specify more than 1 volume type, got ${types.join(', ')}`);
      continue;
    }
    // The API server makes a volume with no source an emptyDir.
    const type = types[0] ?? 'emptyDir';
    if (!(SUPPORTED_VOLUME_TYPES as readonly string[]).includes(type)) {
      m.get(type).warn(`${type} volumes are not supported by podwire (it mounts emptyDir, configMap and secret volumes): the volume is left out`);
      if (name !== undefined) leftOut.set(name, type);
      continue;
    }
    const volume = decodeSource(m.get(type), type as (typeof SUPPORTED_VOLUME_TYPES)[number], name);
    if (volume !== undefined) volumes.push(volume);
  }
  return { volumes, leftOut };
}

function decodeSource(field: Field, kind: (typeof SUPPORTED_VOLUME_TYPES)[number], name: string | undefined): Volume | undefined {
  if (kind === 'emptyDir') return decodeEmptyDir(field, name);
  const source = decodeObjectVolume(field, kind === 'configMap' ? 'name' : 'secretName');
  return source === undefined || name === undefined ? undefined : { name, kind, ...source };
}

function decodeEmptyDir(field: Field, name: string | undefined): Volume | undefined {
  const m = field.mapOrEmpty();
  if (m === undefined) return undefined;
  const mediumField = m.get('medium');
  const medium = mediumField.string() ?? '';
  let ok = true;
  if (medium.startsWith('HugePages')) {
    mediumField.error('HugePages is not supported by podwire: use "" (the disk) or Memory (a tmpfs)');
    ok = false;
  } else if (medium !== '' && medium !== 'Memory') {
    mediumField.invalid('must be "" (the node\'s disk) or Memory');
    ok = false;
  }
  const sizeLimitBytes = decodeSizeLimit(m.get('sizeLimit'));
  if (!ok || name === undefined || sizeLimitBytes === null) return undefined;
  return { name, kind: 'emptyDir', medium: medium as '' | 'Memory', ...(sizeLimitBytes !== undefined && { sizeLimitBytes }) };
}

/** Bytes; undefined when absent, null when bad (reported). */
function decodeSizeLimit(field: Field): number | undefined | null {
  const value = field.intOrString();
  if (value === undefined) return field.present ? null : undefined;
  const parsed = parseByteQuantity(String(value));
  if (!parsed.ok) {
    field.error(parsed.reason);
    return null;
  }
  return parsed.bytes;
}

function decodeObjectVolume(field: Field, nameKey: 'name' | 'secretName'): ObjectVolumeSource | undefined {
  const m = field.mapOrEmpty();
  if (m === undefined) return undefined;
  const objectName = required(m.get(nameKey), checkDnsSubdomain);
  const items = decodeItems(m.get('items'));
  const defaultModeField = m.get('defaultMode');
  const defaultMode = defaultModeField.present ? defaultModeField.integer(MODE_RANGE, 0, MAX_FILE_MODE) : DEFAULT_VOLUME_FILE_MODE;
  const optional = m.get('optional').boolean() ?? false;
  if (objectName === undefined || items === undefined || defaultMode === undefined) return undefined;
  return { objectName, items, defaultMode, optional };
}

function decodeItems(field: Field): KeyToPath[] | undefined {
  const items: KeyToPath[] = [];
  let ok = true;
  for (const item of field.list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) {
      ok = false;
      continue;
    }
    const key = required(m.get('key'), checkConfigMapKey);
    const path = required(m.get('path'), checkProjectedPath);
    const modeField = m.get('mode');
    const mode = modeField.present ? modeField.integer(MODE_RANGE, 0, MAX_FILE_MODE) : undefined;
    if (key === undefined || path === undefined || (modeField.present && mode === undefined)) ok = false;
    else items.push({ key, path, ...(mode !== undefined && { mode }) });
  }
  return ok ? items : undefined;
}

/** `volumeMounts` of one container; `volumes` as decodeVolumes gave them. */
export function decodeVolumeMounts(field: Field, volumes: DecodedVolumes): VolumeMount[] {
  const declared = new Set(volumes.volumes.map((v) => v.name));
  const paths = new Set<string>();
  const mounts: VolumeMount[] = [];
  for (const item of field.list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) continue;
    const name = decodeMountName(m.get('name'), declared, volumes.leftOut);
    const pathField = m.get('mountPath');
    const mountPath = required(pathField, checkMountPath);
    const unique = mountPath === undefined || claimUnique(paths, mountPath, pathField, 'mountPath');
    const readOnly = m.get('readOnly').boolean() ?? false;
    const subPathField = m.get('subPath');
    const subPath = subPathField.string() === '' ? undefined : checked(subPathField, checkRelativePath);
    if (m.has('subPathExpr')) m.get('subPathExpr').error('not supported by podwire: use subPath');
    if (name === undefined || mountPath === undefined || !unique || (subPathField.present && subPathField.string() !== '' && subPath === undefined)) continue;
    mounts.push({ name, mountPath, readOnly, ...(subPath !== undefined && { subPath }) });
  }
  return mounts;
}

function decodeMountName(field: Field, declared: ReadonlySet<string>, leftOut: ReadonlyMap<string, string>): string | undefined {
  const name = required(field);
  if (name === undefined) return undefined;
  if (declared.has(name)) return name;
  const type = leftOut.get(name);
  field.error(
    type !== undefined
      ? `volume ${JSON.stringify(name)} is a ${type} volume, which podwire does not support, so it cannot be mounted`
      : `volume ${JSON.stringify(name)} is not one of spec.volumes`,
  );
  return undefined;
}

function checkMountPath(value: string): string | undefined {
  if (!value.startsWith('/')) return `must be an absolute path, got ${JSON.stringify(value)}`;
  if (value.split('/').includes('..')) return `must not contain '..', got ${JSON.stringify(value)}`;
  return undefined;
}
