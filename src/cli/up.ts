/**
 * `podwire up`: validates the input, then starts one node process per node and waits until
 * every pod is ready. Nothing is started when the input has an error, and whatever goes
 * wrong once starting began (a node that dies, Ctrl-C at any moment) tears down what was
 * started before up returns.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatDiagnostic } from '../cluster/diagnostics.js';
import { demoFiles } from '../cluster/demo.js';
import { readSourceFiles } from '../cluster/files.js';
import { loadCluster } from '../cluster/load.js';
import type { Cluster } from '../cluster/model.js';
import { seededRandom } from '../cluster/random.js';
import { UNIX_SOCKET_PATH_MAX, type StatePaths } from '../node/names.js';
import { UsageError } from './args.js';
import { createOutside, outsideNamespaceName } from '../node/outside.js';
import { downCluster } from './down.js';
import { ClusterBusyError, takeStartLock } from './lock.js';
import { startNodeProcess, throwIfInterrupted, UpError, waitReady } from './node-process.js';
import { makeStateDir, nodePid, writePrivateFile } from './state.js';
import { type ClusterStatus } from './status.js';
import { chooseClusterIndex } from './underlay.js';
import { nodeMetricsPort } from './metrics-port.js';
import { encodeClusterJson } from '../cluster/cluster-json.js';

export { Interrupted, UpError } from './node-process.js';

export interface UpOptions {
  files: string[];
  name: string | undefined;
  paths: (name: string) => StatePaths;
  pcapDir: string | undefined;
  seed: number | undefined;
  /** The first node's /metrics port; each next node takes the next (0 or absent: any free port). */
  metricsPort?: number;
  out: (line: string) => void;
  /** Aborted by Ctrl-C: up stops starting, tears down and throws Interrupted. */
  signal?: AbortSignal;
}

/** Loads and validates the input; throws UpError with every problem found. */
export async function loadInput(files: string[], name: string | undefined, seed: number): Promise<Cluster> {
  let sources;
  try {
    sources = files.length > 0 ? await readSourceFiles(files) : demoFiles();
  } catch (err) {
    throw new UpError(`podwire up: ${(err as Error).message}`);
  }
  const result = loadCluster(sources, { random: seededRandom(seed), ...(name !== undefined ? { name } : {}) });
  const warnings = result.warnings.map((w) => `warning: ${formatDiagnostic(w)}`);
  if (!result.ok) {
    throw new UpError([...warnings, ...result.errors.map(formatDiagnostic), `podwire up: ${result.errors.length} error(s); nothing was started`].join('\n'));
  }
  for (const w of warnings) process.stderr.write(`${w}\n`);
  return result.cluster;
}

/** A node's control and DNS sockets must fit a Unix socket address, which --state-dir can break. */
export function checkSocketPaths(paths: StatePaths, cluster: Cluster): void {
  for (const node of cluster.nodes) {
    for (const socket of [paths.nodeSocket(node.name), paths.nodeDnsSocket(node.name)]) {
      const bytes = Buffer.byteLength(socket);
      if (bytes > UNIX_SOCKET_PATH_MAX) {
        throw new UsageError(
          `--state-dir ${dirname(paths.dir)}: node ${node.name}'s socket ${socket} would be ${bytes} bytes, a Unix socket path holds at most ${UNIX_SOCKET_PATH_MAX}; choose a shorter --state-dir, cluster name or node name`,
        );
      }
    }
  }
}

export async function upCluster(opts: UpOptions): Promise<{ cluster: Cluster; paths: StatePaths; status: ClusterStatus }> {
  const seed = opts.seed ?? randomInt(2 ** 31);
  const loaded = await loadInput(opts.files, opts.name, seed);
  const name = loaded.settings.name;
  const paths = opts.paths(name);
  checkSocketPaths(paths, loaded);
  throwIfInterrupted(opts.signal);
  mkdirSync(dirname(paths.dir), { recursive: true });
  let lock;
  try {
    lock = takeStartLock(paths, name);
  } catch (err) {
    if (err instanceof ClusterBusyError) throw new UpError(err.message);
    throw err;
  }
  try {
    const down = loaded.nodes.filter((n) => nodePid(paths, n.name) === undefined);
    if (down.length < loaded.nodes.length) {
      const restart = down.length > 0 ? `; ${down.map((n) => n.name).join(', ')} ${down.length === 1 ? 'is' : 'are'} down: podwire restart-node --name ${name} NODE starts ${down.length === 1 ? 'it' : 'one'} again` : '';
      throw new UsageError(`cluster ${name} is already running (podwire down --name ${name} first)${restart}`);
    }
    try {
      // Whatever a crashed run left behind goes first.
      await downCluster(name, paths);
      const indexed = await chooseClusterIndex(loaded, paths);
      const passed = indexed.passed;
      const cluster = opts.seed === undefined ? indexed.cluster : { ...indexed.cluster, settings: { ...indexed.cluster.settings, dataplaneSeed: opts.seed } };
      for (const p of passed) opts.out(`cluster ${name}: underlay 127.77.${p.index}.0/24 is held by ${p.holder}; trying the next`);
      makeStateDir(paths);
      writePrivateFile(paths.clusterFile, encodeClusterJson(cluster, 1));
      opts.out(`cluster ${name}: ${cluster.nodes.length} nodes, ${cluster.pods.length} pods (state in ${paths.dir})`);
      throwIfInterrupted(opts.signal);
      await createOutside(outsideNamespaceName(name), cluster.settings.externalCIDR, cluster.settings.externalGateway);
      for (const [index, node] of cluster.nodes.entries()) {
        throwIfInterrupted(opts.signal);
        const metricsPort = opts.metricsPort === undefined ? undefined : nodeMetricsPort('up', opts.metricsPort, index, cluster.nodes.length);
        const pid = await startNodeProcess(paths, node, opts.pcapDir, metricsPort);
        opts.out(`  started ${node.name} (pid ${pid}), pods ${cluster.pods.filter((p) => p.node === node.name).length}`);
      }
      const status = await waitReady(paths, cluster, opts.out, opts.signal);
      throwIfInterrupted(opts.signal);
      return { cluster, paths, status };
    } catch (err) {
      await downCluster(name, paths);
      // A terminal's Ctrl-C also reaches the `ip` commands up runs, which then fail: the
      // interrupt is what happened, not their failure.
      throwIfInterrupted(opts.signal);
      throw err;
    }
  } finally {
    lock.release();
  }
}
