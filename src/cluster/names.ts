/**
 * Name and label syntax, as Kubernetes' apimachinery validation defines it. Each check returns
 * `undefined` for a good value or the reason it is bad, worded to follow "field: ".
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export const DNS1123_LABEL_MAX = 63;
export const DNS1123_SUBDOMAIN_MAX = 253;

/**
 * Limits podwire adds to Kubernetes' own, because names become kernel and file names (see
 * src/node/names.ts). The kernel takes file names of at most 255 bytes (NAME_MAX), and a
 * network namespace name is one (/run/netns/NAME, /etc/netns/NAME).
 */
export const FILE_NAME_MAX = 255;
/** Every namespace name, state directory and socket path carries the cluster's name. */
export const CLUSTER_NAME_MAX = 32;
/**
 * A pod's network namespace is `pw-<cluster>-<namespace>-<pod>` and its container logs
 * `<namespace>_<pod>_<container>.log`; with the longest cluster name and namespace and
 * container names of 63, both fit FILE_NAME_MAX while the pod name has at most 123
 * characters (Kubernetes allows 253).
 */
export const POD_NAME_MAX = Math.min(
  FILE_NAME_MAX - 'pw-'.length - CLUSTER_NAME_MAX - '-'.length - DNS1123_LABEL_MAX - '-'.length,
  FILE_NAME_MAX - DNS1123_LABEL_MAX - '_'.length - '_'.length - DNS1123_LABEL_MAX - '.log'.length,
);

function tooLong(value: string, max: number): string | undefined {
  return value.length > max ? `must be at most ${max} characters, got ${value.length}` : undefined;
}

function shown(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 56)}...` : value);
}

/** Namespaces, container names, hostnames: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63. */
export function checkDnsLabel(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  return (
    tooLong(value, DNS1123_LABEL_MAX) ??
    (DNS1123_LABEL.test(value)
      ? undefined
      : `must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit), got ${shown(value)}`)
  );
}

/** Most object names: dot-separated DNS-1123 labels, at most 253. */
export function checkDnsSubdomain(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  return (
    tooLong(value, DNS1123_SUBDOMAIN_MAX) ??
    (DNS1123_SUBDOMAIN.test(value)
      ? undefined
      : `must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit), got ${shown(value)}`)
  );
}

/**
 * The one rule for a cluster's name, wherever it comes from (a Cluster document's
 * metadata.name, any command's --name): a DNS-1123 label of at most CLUSTER_NAME_MAX, since
 * it becomes part of namespace, file and directory names (so no '/', no '..').
 */
export function checkClusterName(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  if (value.length > CLUSTER_NAME_MAX) {
    return `must be at most ${CLUSTER_NAME_MAX} characters, got ${value.length} (the cluster's name is part of every namespace and file name it has)`;
  }
  return checkDnsLabel(value);
}

/** Pod names: a DNS-1123 subdomain short enough for the names podwire derives from it. */
export function checkPodName(value: string): string | undefined {
  const bad = checkDnsSubdomain(value);
  if (bad !== undefined) return bad;
  if (value.length > POD_NAME_MAX) {
    return `must be at most ${POD_NAME_MAX} characters in podwire, got ${value.length} (the pod's network namespace pw-<cluster>-<namespace>-<name> and its logs <namespace>_<name>_<container>.log must fit the kernel's ${FILE_NAME_MAX}-character file names)`;
  }
  return undefined;
}

/** Service names: a DNS-1123 label that starts with a letter, since it becomes a DNS name. */
export function checkDns1035Label(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  return (
    tooLong(value, DNS1123_LABEL_MAX) ??
    (DNS1035_LABEL.test(value)
      ? undefined
      : `must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter and ending with a letter or digit), got ${shown(value)}`)
  );
}

/** Named ports (IANA service names, RFC 6335): at most 15, a letter somewhere, no `--`. */
export function checkPortName(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  if (value.length > 15) return `must be at most 15 characters, got ${value.length}`;
  if (!IANA_SVC_NAME.test(value)) {
    return `must be an IANA service name (lowercase letters, digits and '-', starting and ending with a letter or digit), got ${shown(value)}`;
  }
  if (value.includes('--')) return `must not contain consecutive hyphens, got ${shown(value)}`;
  if (!/[a-z]/.test(value)) return `must contain at least one letter, got ${shown(value)}`;
  return undefined;
}

/** Label and selector keys: an optional DNS subdomain prefix and `/`, then a name of at most 63. */
export function checkLabelKey(value: string): string | undefined {
  const slash = value.indexOf('/');
  const name = slash < 0 ? value : value.slice(slash + 1);
  if (slash >= 0) {
    const prefix = value.slice(0, slash);
    const bad = checkDnsSubdomain(prefix);
    if (bad !== undefined) return `prefix ${bad}`;
  }
  if (name === '') return `must have a name${slash >= 0 ? ' after the prefix' : ''}`;
  if (name.length > 63) return `name part must be at most 63 characters, got ${name.length}`;
  if (!QUALIFIED_NAME.test(name)) {
    return `must be a qualified name (letters, digits, '-', '_' and '.', starting and ending with a letter or digit, optionally prefixed by a DNS subdomain and '/'), got ${shown(value)}`;
  }
  return undefined;
}

/** Label values: empty, or a name of at most 63 (letters, digits, `-_.`, alphanumeric ends). */
export function checkLabelValue(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63) return `must be at most 63 characters, got ${value.length}`;
  if (!QUALIFIED_NAME.test(value)) {
    return `must be a valid label value (letters, digits, '-', '_' and '.', starting and ending with a letter or digit), got ${shown(value)}`;
  }
  return undefined;
}

export function checkEnvVarName(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  if (!ENV_VAR_NAME.test(value)) {
    return `must be a valid environment variable name (letters, digits, '-', '_' and '.', not starting with a digit), got ${shown(value)}`;
  }
  return undefined;
}

const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * ConfigMap and Secret keys (apimachinery's IsConfigMapKey): letters, digits, '-', '_' and
 * '.', at most 253, and never '.', '..' or a name starting with '..' (each key becomes a file
 * name in a volume, next to the kubelet's own `..data` link).
 */
export function checkConfigMapKey(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  const long = tooLong(value, DNS1123_SUBDOMAIN_MAX);
  if (long !== undefined) return long;
  if (!CONFIG_MAP_KEY.test(value)) return `must consist of letters, digits, '-', '_' or '.' (e.g. "key.name", "KEY_NAME", "key-name"), got ${shown(value)}`;
  if (value === '.' || value === '..') return `must not be ${JSON.stringify(value)}`;
  if (value.startsWith('..')) return `must not start with '..', got ${shown(value)}`;
  return undefined;
}

/**
 * An envFrom prefix: printable ASCII without '=', as the API server allows variable names
 * since relaxed environment variable validation (a prefix such as "1_" is fine).
 */
export function checkEnvPrefix(value: string): string | undefined {
  return /^[\x20-\x3c\x3e-\x7e]*$/.test(value) ? undefined : `must consist of printable ASCII characters other than '=', got ${shown(value)}`;
}

/**
 * A path inside a volume (items[].path, subPath): relative, and no element is '..', so it
 * cannot leave the volume (the API server's validateLocalDescendingPath).
 */
export function checkRelativePath(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  if (value.startsWith('/')) return `must be a relative path, got ${shown(value)}`;
  if (value.split('/').includes('..')) return `must not contain '..', got ${shown(value)}`;
  return undefined;
}

/** A file a configMap or secret volume projects (items[].path): a relative path not starting with '..' (the kubelet's own `..data`). */
export function checkProjectedPath(value: string): string | undefined {
  return checkRelativePath(value) ?? (value.startsWith('..') ? `must not start with '..', got ${shown(value)}` : undefined);
}
