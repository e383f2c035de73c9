/**
 * Names podwire gives the kernel objects and files of a cluster. Everything starts with
 * `pw` so it is recognisable (and removable) as podwire's; namespaces carry the cluster's
 * name so two clusters never collide; link names fit the kernel's 15 characters.
 */
import { join } from 'node:path';

export const DEFAULT_STATE_ROOT = '/run/podwire';

/** The longest path a Unix socket address holds (sun_path is 108 bytes with its NUL). */
export const UNIX_SOCKET_PATH_MAX = 107;

/** The network namespace that stands for a pod's pause container. */
export function podNamespaceName(cluster: string, podNamespace: string, podName: string): string {
  return `pw-${cluster}-${podNamespace}-${podName}`;
}

/** The namespace of a node's DNS-over-TCP relay (the agent's startDnsRelay). */
export function dnsRelayNamespaceName(cluster: string, node: string): string {
  return `pw-${cluster}-dns-${node}`;
}

/**
 * Every namespace of the cluster starts with this; so do those of a cluster whose name
 * extends this one's with '-' ("a" and "a-b"), which is why down tells them apart.
 */
export function clusterNamespacePrefix(cluster: string): string {
  return `pw-${cluster}-`;
}

/**
 * The TAP's name while it is still in the root namespace (it becomes eth0 inside the pod):
 * `pw` + cluster index (hex, 2) + node index (hex, 2) + pod sequence (hex, 4) = 10 chars.
 */
export function tapName(clusterIndex: number, nodeIndex: number, podSeq: number): string {
  const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
  return `pw${hex(clusterIndex, 2)}${hex(nodeIndex, 2)}${hex(podSeq, 4)}`;
}

/** Every root-namespace link of the cluster starts with this. */
export function clusterLinkPrefix(clusterIndex: number): string {
  return `pw${clusterIndex.toString(16).padStart(2, '0')}`;
}

export class StatePaths {
  constructor(readonly dir: string) {}

  static of(root: string, cluster: string): StatePaths {
    return new StatePaths(join(root, cluster));
  }

  /**
   * Held by `podwire up` while it starts the cluster. It lies next to the state directory,
   * not in it, because up clears the directory of a crashed run first.
   */
  get startLock(): string {
    return `${this.dir}.lock`;
  }
  get clusterFile(): string {
    return join(this.dir, 'cluster.json');
  }
  get logDir(): string {
    return join(this.dir, 'logs');
  }
  nodePid(node: string): string {
    return join(this.dir, `${node}.pid`);
  }
  nodeSocket(node: string): string {
    return join(this.dir, `${node}.sock`);
  }
  /** Where the node's DNS responder serves its relay (the agent names it so). */
  nodeDnsSocket(node: string): string {
    return join(this.dir, `${node}.dns.sock`);
  }
  nodeLog(node: string): string {
    return join(this.logDir, `${node}.log`);
  }
  /** A pod's sandbox files (src/sandbox/launcher.ts); pods cannot see the state directory. */
  podDir(podNamespace: string, pod: string): string {
    return join(this.dir, 'pods', `${podNamespace}_${pod}`);
  }
  containerLog(podNamespace: string, pod: string, container: string): string {
    return join(this.logDir, `${podNamespace}_${pod}_${container}.log`);
  }
}
