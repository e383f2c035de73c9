/** `podwire exec POD -- CMD...`: runs CMD in the pod's namespace with the pod's resolv.conf. */
import { spawn } from 'node:child_process';
import type { Cluster } from '../cluster/model.js';
import { podNamespaceName } from '../node/names.js';
import { UsageError } from './args.js';

export function findPodNamespace(cluster: Cluster, namespace: string, pod: string): string {
  const found = cluster.pods.find((p) => p.namespace === namespace && p.name === pod);
  if (found === undefined) {
    const names = cluster.pods.filter((p) => p.namespace === namespace).map((p) => p.name);
    throw new UsageError(`pod ${namespace}/${pod} not found in cluster ${cluster.settings.name}${names.length > 0 ? ` (pods in ${namespace}: ${names.join(', ')})` : ''}`);
  }
  return podNamespaceName(cluster.settings.name, namespace, pod);
}

/** Runs argv in the namespace with the terminal attached; resolves to its exit code. */
export function runInNamespace(netns: string, argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    // `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: 'inherit' });
    child.on('error', (err) => {
      process.stderr.write(`podwire exec: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal !== null ? 128 + (signalNumber(signal) ?? 0) : 1)));
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
  return numbers[signal];
}
