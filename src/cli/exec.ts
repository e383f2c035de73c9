/** Running a command with the terminal attached: `podwire exec` in a pod, `podwire outside` in the outside network. */
import { spawn } from 'node:child_process';
import type { Cluster, Pod } from '../cluster/model.js';
import { signalNumber } from '../node/pod-runtime.js';
import { UsageError } from './args.js';

export function findPod(cluster: Cluster, namespace: string, pod: string): Pod {
  const found = cluster.pods.find((p) => p.namespace === namespace && p.name === pod);
  if (found === undefined) {
    const names = cluster.pods.filter((p) => p.namespace === namespace).map((p) => p.name);
    throw new UsageError(`pod ${namespace}/${pod} not found in cluster ${cluster.settings.name}${names.length > 0 ? ` (pods in ${namespace}: ${names.join(', ')})` : ''}`);
  }
  return found;
}

/** Runs argv with the terminal attached; resolves to its exit code (128+N when killed by signal N, as a shell says). */
export function runAttached(argv: readonly string[], env?: Readonly<Record<string, string>>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', ...(env !== undefined ? { env } : {}) });
    child.on('error', (err) => {
      process.stderr.write(`podwire: ${argv[0]}: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal !== null ? 128 + signalNumber(signal) : 1)));
  });
}

/** Runs argv in a network namespace (`ip netns exec` binds /etc/netns/<ns>/resolv.conf over /etc/resolv.conf). */
export function runInNamespace(netns: string, argv: string[]): Promise<number> {
  return runAttached(['ip', 'netns', 'exec', netns, ...argv]);
}
