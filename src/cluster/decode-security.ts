/**
 * `securityContext` of pods and containers: the user, group and capabilities podwire runs
 * a container's processes with. Settings it cannot honour are warned about, and
 * `privileged: true` is refused: podwire runs pods as processes on the user's own machine
 * and never hands one the host's full capabilities, devices and filesystems.
 */

import { ALL, kernelCapabilityName } from './capabilities.js';
import type { Capabilities, ContainerSecurityContext, PodSecurityContext, RunAsSettings } from './model.js';
import type { Field, FieldMap } from './yaml-reader.js';

const MAX_ID = 2 ** 31 - 1;
const ID_RANGE = `must be between 0 and ${MAX_ID}, inclusive`;

/** Fields the API has and podwire does not apply: a warning each, so nobody relies on them unknowingly. */
const IGNORED_IN_CONTAINER = ['seLinuxOptions', 'windowsOptions', 'procMount', 'seccompProfile', 'appArmorProfile'];
const IGNORED_IN_POD = ['seLinuxOptions', 'windowsOptions', 'sysctls', 'fsGroupChangePolicy', 'seccompProfile', 'appArmorProfile', 'supplementalGroupsPolicy', 'seLinuxChangePolicy'];

export function decodeContainerSecurityContext(field: Field): ContainerSecurityContext | undefined {
  const m = field.mapOrEmpty();
  if (m === undefined) return undefined;
  const runAs = decodeRunAs(m);
  const capabilities = decodeCapabilities(m.get('capabilities'));
  const readOnlyRootFilesystem = m.get('readOnlyRootFilesystem').boolean() ?? false;
  const escalationField = m.get('allowPrivilegeEscalation');
  const allowPrivilegeEscalation = escalationField.boolean();
  const privileged = m.get('privileged');
  if (privileged.boolean() === true) {
    privileged.error("privileged containers are not supported by podwire: it runs pods as processes on this machine and never gives one the host's full capabilities, devices and filesystems (add the capabilities the container needs instead)");
  }
  if (allowPrivilegeEscalation === false && capabilities?.add.includes('CAP_SYS_ADMIN')) {
    escalationField.error('cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN');
  }
  warnIgnored(m, IGNORED_IN_CONTAINER);
  if (runAs === undefined || capabilities === undefined) return undefined;
  return { ...runAs, capabilities, readOnlyRootFilesystem, ...(allowPrivilegeEscalation !== undefined && { allowPrivilegeEscalation }) };
}

export function decodePodSecurityContext(field: Field): PodSecurityContext | undefined {
  const m = field.mapOrEmpty();
  if (m === undefined) return undefined;
  const runAs = decodeRunAs(m);
  const supplementalGroups: number[] = [];
  let groupsOk = true;
  for (const item of m.get('supplementalGroups').list() ?? []) {
    const gid = item.integer(ID_RANGE, 0, MAX_ID);
    if (gid === undefined) groupsOk = false;
    else supplementalGroups.push(gid);
  }
  if (m.has('fsGroup')) m.get('fsGroup').warn("not supported by podwire: volumes keep root's group and the containers do not get this group");
  warnIgnored(m, IGNORED_IN_POD);
  if (runAs === undefined || !groupsOk) return undefined;
  return { ...runAs, supplementalGroups };
}

function decodeRunAs(m: FieldMap): RunAsSettings | undefined {
  const userField = m.get('runAsUser');
  const groupField = m.get('runAsGroup');
  const runAsUser = userField.integer(ID_RANGE, 0, MAX_ID);
  const runAsGroup = groupField.integer(ID_RANGE, 0, MAX_ID);
  const runAsNonRoot = m.get('runAsNonRoot').boolean();
  if ((userField.present && runAsUser === undefined) || (groupField.present && runAsGroup === undefined)) return undefined;
  return {
    ...(runAsUser !== undefined && { runAsUser }),
    ...(runAsGroup !== undefined && { runAsGroup }),
    ...(runAsNonRoot !== undefined && { runAsNonRoot }),
  };
}

function decodeCapabilities(field: Field): Capabilities | undefined {
  const m = field.mapOrEmpty();
  if (m === undefined) return undefined;
  const add = decodeCapabilityList(m.get('add'));
  const drop = decodeCapabilityList(m.get('drop'));
  return add === undefined || drop === undefined ? undefined : { add, drop };
}

/** Kernel names (CAP_NET_RAW) or ALL; undefined when any name is unknown (reported). */
function decodeCapabilityList(field: Field): string[] | undefined {
  const out: string[] = [];
  let ok = true;
  for (const item of field.list() ?? []) {
    const name = item.present ? item.string() : item.invalid('must be a string');
    if (name === undefined) {
      ok = false;
      continue;
    }
    // containerd compares ALL without regard to case.
    const known = name.toUpperCase() === ALL ? ALL : kernelCapabilityName(name);
    if (known === undefined) {
      item.error(`unknown capability ${JSON.stringify(name)}: not one the kernel has (CAP_CHOWN to CAP_CHECKPOINT_RESTORE, see capabilities(7)), nor ALL`);
      ok = false;
    } else if (!out.includes(known)) out.push(known);
  }
  return ok ? out : undefined;
}

function warnIgnored(m: FieldMap, keys: readonly string[]): void {
  for (const key of keys) if (m.has(key)) m.get(key).warn('not supported by podwire: ignored');
}
