/**
 * `podwire up`: validates the input, then starts one node process per node and waits until
 * every pod is ready. Nothing is started when the input has an error.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeSync, openSync, promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic } from '../cluster/diagnostics.js';
import { demoFiles } from '../cluster/demo.js';
import { readSourceFiles } from '../cluster/files.js';
import { loadCluster } from '../cluster/load.js';
import type { Cluster } from '../cluster/model.js';
import { seededRandom } from '../cluster/random.js';
import type { StatePaths } from '../node/names.js';
import { UsageError } from './args.js';
import { createOutside } from '../node/outside.js';
import { downCluster } from './down.js';
import { nodePid } from './state.js';
import { clusterStatus, type ClusterStatus } from './status.js';

const NODE_MAIN = fileURLToPath(new URL('../node/main.js', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface UpOptions {
  files: string[];
  name: string | undefined;
  paths: (name: string) => StatePaths;
  pcapDir: string | undefined;
  seed: number | undefined;
  out: (line: string) => void;
}

export class UpError extends Error {}

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

export async function upCluster(opts: UpOptions): Promise<{ cluster: Cluster; paths: StatePaths; status: ClusterStatus }> {
  const seed = opts.seed ?? randomInt(2 ** 31);
  const cluster = await loadInput(opts.files, opts.name, seed);
  const name = cluster.settings.name;
  const paths = opts.paths(name);
  const running = cluster.nodes.map((n) => nodePid(paths, n.name)).filter((p) => p !== undefined);
  if (running.length > 0) throw new UsageError(`cluster ${name} is already running (podwire down --name ${name} first)`);
  // Whatever a crashed run left behind goes first.
  await downCluster(name, paths);
  await fs.mkdir(paths.logDir, { recursive: true });
  await fs.writeFile(paths.clusterFile, JSON.stringify(cluster, null, 1));
  opts.out(`cluster ${name}: ${cluster.nodes.length} nodes, ${cluster.pods.length} pods (state in ${paths.dir})`);
  try {
    await createOutside(name, cluster.settings.externalCIDR, cluster.settings.externalGateway);
    for (const node of cluster.nodes) {
      const log = openSync(paths.nodeLog(node.name), 'a');
      const args = [NODE_MAIN, '--state-dir', paths.dir, '--node', node.name, ...(opts.pcapDir !== undefined ? ['--pcap', opts.pcapDir] : [])];
      const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
      closeSync(log);
      child.unref();
      await fs.writeFile(paths.nodePid(node.name), `${child.pid}\n`);
      opts.out(`  started ${node.name} (pid ${child.pid}), pods ${cluster.pods.filter((p) => p.node === node.name).length}`);
    }
    const status = await waitReady(name, paths, cluster, opts.out);
    return { cluster, paths, status };
  } catch (err) {
    await downCluster(name, paths);
    throw err;
  }
}

async function waitReady(name: string, paths: StatePaths, cluster: Cluster, out: (line: string) => void): Promise<ClusterStatus> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastReady = -1;
  for (;;) {
    const status = await clusterStatus(name, paths, cluster);
    for (const node of cluster.nodes) {
      if (nodePid(paths, node.name) === undefined) {
        const log = await fs.readFile(paths.nodeLog(node.name), 'utf8').catch(() => '');
        throw new UpError(`node ${node.name} exited while starting:\n${log.trim().split('\n').slice(-10).join('\n')}`);
      }
    }
    const ready = status.pods.filter((p) => p.ready).length;
    if (ready !== lastReady) {
      out(`  ${ready}/${status.pods.length} pods ready`);
      lastReady = ready;
    }
    if (status.nodes.every((n) => n.state === 'up') && ready === status.pods.length) return status;
    if (Date.now() > deadline) {
      const waiting = status.pods.filter((p) => !p.ready).map((p) => `${p.namespace}/${p.name}`);
      throw new UpError(`not ready after ${READY_TIMEOUT_MS / 1000} s: ${waiting.join(', ')} (logs in ${paths.logDir})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
