/**
 * `podwire down`: removes every namespace, TAP, process and state file of a cluster. Safe to
 * run twice, and it cleans up after a crash: whatever the state directory still says, it
 * also sweeps the kernel for namespaces and links carrying the cluster's prefix.
 */
import { promises as fs, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { clusterIndex } from '../cluster/ipam.js';
import type { Cluster } from '../cluster/model.js';
import { clusterLinkPrefix, clusterNamespacePrefix, dnsRelayNamespaceName, podNamespaceName, StatePaths } from '../node/names.js';
import { outsideNamespaceName } from '../node/outside.js';
import { destroyNamespace, ip, listNamespaces } from '../node/netns.js';
import { findAllNodeProcesses, findNodeProcesses, processAlive, readCluster } from './state.js';

const STOP_GRACE_MS = 5000;

export interface DownReport {
  processes: number;
  namespaces: number;
  links: number;
  stateDir: boolean;
}

export async function downCluster(name: string, paths: StatePaths): Promise<DownReport> {
  const report: DownReport = { processes: 0, namespaces: 0, links: 0, stateDir: false };
  // The underlay index up chose is in cluster.json; the hash of the name is where its
  // search started, and all there is when the file was lost.
  const cluster = readCluster(paths);
  const index = cluster?.settings?.clusterIndex ?? clusterIndex(name);
  const ownedElsewhere = namespacesOfLongerNames(name, paths, cluster);
  const stops = findNodeProcesses(paths).map(async ({ pid }) => {
    await stopProcess(pid);
    report.processes++;
  });
  await Promise.all(stops);
  // A step that fails (an `ip` killed by the terminal's Ctrl-C meant for podwire, a
  // namespace still busy) is tried again once the rest is gone, then reported.
  let failed: Error[] = [];
  for (let round = 0; round < 3; round++) {
    failed = await sweepKernel(name, index, ownedElsewhere, report);
    if (failed.length === 0) break;
  }
  if (failed.length > 0) throw new Error(`could not remove everything of cluster ${name}: ${failed.map((e) => e.message).join('; ')}`);
  try {
    await fs.access(paths.dir);
    await fs.rm(paths.dir, { recursive: true, force: true });
    report.stateDir = true;
  } catch {
    // No state directory: nothing to remove.
  }
  return report;
}

/**
 * The prefix sweep finds what a crashed run left, but `pw-a-` also begins every namespace of
 * a cluster named "a-b". Returns a test for the namespaces to leave alone: those under the
 * prefix of a running cluster whose name extends this one's, unless this cluster's own
 * cluster.json names them.
 */
function namespacesOfLongerNames(name: string, paths: StatePaths, cluster: Cluster | undefined): (netns: string) => boolean {
  const own = new Set<string>([outsideNamespaceName(name)]);
  for (const pod of cluster?.pods ?? []) own.add(podNamespaceName(name, pod.namespace, pod.name));
  for (const node of cluster?.nodes ?? []) own.add(dnsRelayNamespaceName(name, node.name));
  const mine = clusterNamespacePrefix(name);
  const longer = new Set<string>();
  // Running clusters of any state root, and those this state root still holds.
  const root = dirname(paths.dir);
  const dirs = new Set(findAllNodeProcesses().map((p) => p.stateDir));
  for (const entry of safeReaddir(root)) dirs.add(join(root, entry));
  for (const dir of dirs) {
    if (dir === paths.dir) continue;
    const other = readCluster(new StatePaths(dir))?.settings?.name;
    if (other !== undefined && other !== name && clusterNamespacePrefix(other).startsWith(mine)) longer.add(clusterNamespacePrefix(other));
  }
  return (netns) => !own.has(netns) && [...longer].some((prefix) => netns.startsWith(prefix));
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Removes the cluster's namespaces and root-namespace links; returns what failed. */
async function sweepKernel(name: string, index: number, ownedElsewhere: (netns: string) => boolean, report: DownReport): Promise<Error[]> {
  const failed: Error[] = [];
  try {
    for (const netns of await listNamespaces(clusterNamespacePrefix(name))) {
      if (ownedElsewhere(netns)) continue;
      try {
        await destroyNamespace(netns);
        report.namespaces++;
      } catch (err) {
        failed.push(err as Error);
      }
    }
    // TAPs vanish with their process; one caught between creation and its move into a pod
    // namespace is deleted here.
    const prefix = clusterLinkPrefix(index);
    const links = (await ip('-o', 'link', 'show'))
      .split('\n')
      .map((line) => line.split(': ')[1]?.split('@')[0])
      .filter((l): l is string => l !== undefined && l.startsWith(prefix) && l.length === 10);
    for (const link of links) {
      await ip('link', 'del', link).catch(() => undefined);
      report.links++;
    }
  } catch (err) {
    failed.push(err as Error);
  }
  return failed;
}

async function stopProcess(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_GRACE_MS;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Exited at the last moment.
  }
}
