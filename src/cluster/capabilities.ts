/**
 * Linux capabilities by name and number, as include/uapi/linux/capability.h defines them
 * (Linux 6.x: CAP_CHOWN is 0, CAP_CHECKPOINT_RESTORE, the last, is 40). A container's
 * securityContext.capabilities names them with or without the CAP_ prefix, in any case, as
 * containerd accepts them; the model keeps the kernel's spelling.
 */

/** Index = capability number. */
const KERNEL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

const NUMBERS = new Map(KERNEL_CAPABILITIES.map((name, i) => [name, i]));

/** Every capability the kernel knows, in number order: what `add: [ALL]` grants. */
export const ALL_CAPABILITIES: readonly string[] = KERNEL_CAPABILITIES;

/** `drop: [ALL]` and `add: [ALL]` name every capability at once. */
export const ALL = 'ALL';

/** The kernel's name of a capability written as `NET_RAW`, `net_raw` or `CAP_NET_RAW`; undefined if there is none. */
export function kernelCapabilityName(name: string): string | undefined {
  const upper = name.toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  return NUMBERS.has(full) ? full : undefined;
}

/** The capability's number (CAP_NET_RAW is 13), with or without the CAP_ prefix; undefined for a name the kernel lacks. */
export function capabilityNumber(name: string): number | undefined {
  const full = kernelCapabilityName(name);
  return full === undefined ? undefined : NUMBERS.get(full);
}
