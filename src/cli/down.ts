/**
 * `podwire down`: removes every namespace, TAP, process and state file of a cluster. Safe to
 * run twice, and it cleans up after a crash: whatever the state directory still says, it
 * also sweeps the kernel for namespaces and links carrying the cluster's prefix.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { clusterIndex } from '../cluster/ipam.js';
import { clusterLinkPrefix, clusterNamespacePrefix, type StatePaths } from '../node/names.js';
import { destroyNamespace, ip, listNamespaces } from '../node/netns.js';
import { findNodeProcesses } from './state.js';

const STOP_GRACE_MS = 5000;

export interface DownReport {
  processes: number;
  namespaces: number;
  links: number;
  stateDir: boolean;
}

export async function downCluster(name: string, paths: StatePaths): Promise<DownReport> {
  const report: DownReport = { processes: 0, namespaces: 0, links: 0, stateDir: false };
  const stops = findNodeProcesses(paths).map(async ({ pid }) => {
    await stopProcess(pid);
    report.processes++;
  });
  await Promise.all(stops);
  for (const netns of await listNamespaces(clusterNamespacePrefix(name))) {
    await destroyNamespace(netns);
    report.namespaces++;
  }
  // TAPs vanish with their process; one caught between creation and its move into a pod
  // namespace is deleted here.
  const prefix = clusterLinkPrefix(clusterIndex(name));
  const links = (await ip('-o', 'link', 'show'))
    .split('\n')
    .map((line) => line.split(': ')[1]?.split('@')[0])
    .filter((l): l is string => l !== undefined && l.startsWith(prefix) && l.length === 10);
  for (const link of links) {
    await ip('link', 'del', link).catch(() => undefined);
    report.links++;
  }
  try {
    await fs.access(paths.dir);
    await fs.rm(paths.dir, { recursive: true, force: true });
    report.stateDir = true;
  } catch {
    // No state directory: nothing to remove.
  }
  return report;
}

async function stopProcess(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_GRACE_MS;
  while (Date.now() < deadline) {
    if (!alive(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Exited at the last moment.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers signal 0; its /proc status says Z.
    return !/^State:\s+Z/m.test(readStatus(pid));
  } catch {
    return false;
  }
}

function readStatus(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
}
