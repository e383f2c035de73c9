/**
 * What each of a pod's volumes holds when its containers start: an emptyDir starts empty; a
 * configMap or secret volume holds one file per key (or per item, renamed and with its own
 * mode), as the kubelet's configmap and secret volume plugins project them. A missing object
 * or key that is not optional is a problem: the kubelet cannot mount the volume and the pod
 * does not start.
 */
import type { ConfigMap, DataMap, Pod, Secret, Volume } from '../cluster/model.js';

export interface VolumeFile {
  /** Relative to the volume's root. */
  readonly path: string;
  readonly data: Buffer;
  readonly mode: number;
}

export type VolumeContent = { readonly kind: 'emptyDir' } | { readonly kind: 'files'; readonly files: readonly VolumeFile[] };

export interface PodVolumes {
  readonly volumes: readonly (readonly [string, VolumeContent])[];
  /** By volume name: why it cannot be mounted. */
  readonly problems: ReadonlyMap<string, string>;
}

function projected(volume: Extract<Volume, { kind: 'configMap' | 'secret' }>, data: DataMap | undefined): { files: VolumeFile[] } | { problem: string } {
  const what = volume.kind === 'configMap' ? 'configmap' : 'secret';
  if (data === undefined) {
    // An optional volume of a missing object is mounted empty.
    return volume.optional ? { files: [] } : { problem: `${what} "${volume.objectName}" not found` };
  }
  if (volume.items.length === 0) {
    return { files: Object.entries(data).map(([key, bytes]) => ({ path: key, data: bytes, mode: volume.defaultMode })) };
  }
  const files: VolumeFile[] = [];
  for (const item of volume.items) {
    const bytes = Object.hasOwn(data, item.key) ? data[item.key] : undefined;
    if (bytes === undefined) {
      if (volume.optional) continue;
      return { problem: `${what} references non-existent ${volume.kind === 'configMap' ? 'config' : 'secret'} key: ${item.key}` };
    }
    files.push({ path: item.path, data: bytes, mode: item.mode ?? volume.defaultMode });
  }
  return { files };
}

export function volumeContents(pod: Pod, configMaps: readonly ConfigMap[], secrets: readonly Secret[]): PodVolumes {
  const volumes: [string, VolumeContent][] = [];
  const problems = new Map<string, string>();
  for (const volume of pod.volumes) {
    if (volume.kind === 'emptyDir') {
      volumes.push([volume.name, { kind: 'emptyDir' }]);
      continue;
    }
    const source =
      volume.kind === 'configMap'
        ? configMaps.find((c) => c.namespace === pod.namespace && c.name === volume.objectName)
        : secrets.find((s) => s.namespace === pod.namespace && s.name === volume.objectName);
    const result = projected(volume, source?.data);
    if ('problem' in result) problems.set(volume.name, result.problem);
    else volumes.push([volume.name, { kind: 'files', files: result.files }]);
  }
  return { volumes, problems };
}
