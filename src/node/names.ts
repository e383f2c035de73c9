/**
 * Names podwire gives the kernel objects and files of a cluster. Everything starts with
 * `pw` so it is recognisable (and removable) as podwire's; namespaces carry the cluster's
 * name so two clusters never collide; link names fit the kernel's 15 characters.
 */
import { join } from 'node:path';

export const DEFAULT_STATE_ROOT = '/run/podwire';

/** The network namespace that stands for a pod's pause container. */
export function podNamespaceName(cluster: string, podNamespace: string, podName: string): string {
  return `pw-${cluster}-${podNamespace}-${podName}`;
}

/** Every namespace of the cluster starts with this. */
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
  nodeLog(node: string): string {
    return join(this.logDir, `${node}.log`);
  }
  containerLog(podNamespace: string, pod: string, container: string): string {
    return join(this.logDir, `${podNamespace}_${pod}_${container}.log`);
  }
}
