/**
 * The node's side of its ingress controller pods: each gets its routing, backends and TLS
 * certificates (src/ingress's proxyConfig) as `config.json` in a directory of its pod
 * directory, bound read-only into the controller's container. Rewritten (whole, by rename,
 * so the proxy never reads half a file) whenever the cluster's objects or the endpoints
 * change what it would say; the proxy picks it up without a restart.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import type { Cluster, Pod } from '../cluster/model.js';
import { controllerFlags, isControllerImage } from '../ingress/controller.js';
import { proxyConfig } from '../ingress/servers.js';
import { INGRESS_CONFIG_FILE } from '../ingress/config.js';


/** The configuration an ingress controller pod's proxy gets now; undefined for other pods. */
export function podIngressConfig(pod: Pod, cluster: Cluster, endpoints: readonly ServicePortEndpoints[]): string | undefined {
  const container = pod.containers.find((c) => isControllerImage(c.image));
  if (container === undefined) return undefined;
  const flags = controllerFlags(container, pod.namespace);
  if ('problem' in flags) return undefined;
  return `${JSON.stringify(proxyConfig(cluster, endpoints, flags), null, 1)}\n`;
}

export function isIngressControllerPod(pod: Pod): boolean {
  return pod.containers.some((c) => isControllerImage(c.image));
}

/** Writes each controller pod's configuration when it differs from what it last wrote. */
export class IngressConfigWriter {
  private readonly written = new Map<string, string>();
  /** One write at a time per directory, in order: the last state always lands last. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly log: (line: string) => void) {}

  /** Writes now (for a pod about to start): the proxy finds its routes at its first read. */
  async writeNow(dir: string, text: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    await this.write(dir, text);
  }

  /** Queues a write when the text changed since the last one. */
  update(dir: string, text: string): void {
    if (this.written.get(dir) === text) return;
    this.written.set(dir, text);
    const previous = this.chains.get(dir) ?? Promise.resolve();
    const next = previous.then(() => this.write(dir, text)).catch((err: Error) => this.log(`ingress configuration ${dir}: ${err.message}`));
    this.chains.set(dir, next);
  }

  forget(dir: string): void {
    this.written.delete(dir);
    this.chains.delete(dir);
  }

  private async write(dir: string, text: string): Promise<void> {
    this.written.set(dir, text);
    const file = join(dir, INGRESS_CONFIG_FILE);
    const temp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temp, text, { mode: 0o644 });
    await fs.rename(temp, file);
  }
}
