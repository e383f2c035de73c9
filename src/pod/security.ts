/**
 * Who a container's process is, from the pod's and the container's securityContext, as the
 * kubelet and containerd settle it: the container's fields over the pod's, root when neither
 * says (an image without USER), containerd's default capabilities adjusted by add and drop,
 * no_new_privs exactly when allowPrivilegeEscalation is false.
 */
import { ALL, ALL_CAPABILITIES, capabilityNumber } from '../cluster/capabilities.js';
import type { Container, Pod } from '../cluster/model.js';

/** containerd's (and Docker's) default capability set for a container. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export interface Capability {
  readonly name: string;
  readonly number: number;
}

export interface ContainerSecurity {
  readonly uid: number;
  readonly gid: number;
  readonly supplementalGroups: readonly number[];
  /** The bounding set (and root's effective set), in number order. */
  readonly capabilities: readonly Capability[];
  readonly noNewPrivileges: boolean;
  readonly readOnlyRootFilesystem: boolean;
}

/** The pod as the kubelet's format.Pod names it in messages: name_namespace(uid). */
function podName(pod: Pod): string {
  return `${pod.name}_${pod.namespace}(${pod.uid})`;
}

/** containerd's order: add ALL, drop ALL, then the named adds, then the named drops. */
export function effectiveCapabilities(add: readonly string[], drop: readonly string[]): Capability[] {
  let set = new Set(add.includes(ALL) ? ALL_CAPABILITIES : DEFAULT_CAPABILITIES);
  if (drop.includes(ALL)) set = new Set();
  for (const name of add) if (name !== ALL) set.add(name);
  for (const name of drop) if (name !== ALL) set.delete(name);
  return [...set].map((name) => ({ name, number: capabilityNumber(name)! })).sort((a, b) => a.number - b.number);
}

export function containerSecurity(pod: Pod, container: Container): ContainerSecurity | { problem: string } {
  const c = container.securityContext;
  const p = pod.securityContext;
  const runAsUser = c.runAsUser ?? p.runAsUser;
  const runAsNonRoot = c.runAsNonRoot ?? p.runAsNonRoot ?? false;
  // kubelet's verifyRunAsNonRoot, in its words.
  if (runAsNonRoot && runAsUser === 0) return { problem: `container's runAsUser breaks non-root policy (pod: "${podName(pod)}", container: ${container.name})` };
  if (runAsNonRoot && runAsUser === undefined) return { problem: `container has runAsNonRoot and image will run as root (pod: "${podName(pod)}", container: ${container.name})` };
  return {
    uid: runAsUser ?? 0,
    gid: c.runAsGroup ?? p.runAsGroup ?? 0,
    supplementalGroups: p.supplementalGroups,
    capabilities: effectiveCapabilities(c.capabilities.add, c.capabilities.drop),
    noNewPrivileges: c.allowPrivilegeEscalation === false,
    readOnlyRootFilesystem: c.readOnlyRootFilesystem,
  };
}
