/**
 * What the CLI knows about a cluster on this machine: its state directory, the resolved
 * cluster it was started with, and which of its node processes are alive.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Cluster } from '../cluster/model.js';
import { DEFAULT_STATE_ROOT, StatePaths } from '../node/names.js';
import { checkClusterNameOption } from './args.js';
import { decodeClusterJson } from '../cluster/cluster-json.js';

export const DEFAULT_CLUSTER = 'podwire';

/** Every command finds its cluster here, so this is where --name is checked. */
export function statePaths(values: { name?: string | undefined; 'state-dir'?: string | undefined }): { name: string; paths: StatePaths } {
  const name = checkClusterNameOption(values.name ?? DEFAULT_CLUSTER);
  return { name, paths: StatePaths.of(values['state-dir'] ?? DEFAULT_STATE_ROOT, name) };
}

/**
 * The state directory holds the cluster's addresses, its logs and its control sockets: only
 * root reads it. Directories are 0700 and files 0600 whatever the umask, and a directory
 * left by an earlier run gets the same modes.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

export function makeStateDir(paths: StatePaths): void {
  for (const dir of [paths.dir, paths.logDir]) {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    chmodSync(dir, PRIVATE_DIR_MODE);
  }
}

export function writePrivateFile(path: string, text: string): void {
  writeFileSync(path, text, { mode: PRIVATE_FILE_MODE });
  chmodSync(path, PRIVATE_FILE_MODE);
}

/** A log file opened for appending, as a file descriptor to hand to a child process. */
export function openPrivateLog(path: string): number {
  const fd = openSync(path, 'a', PRIVATE_FILE_MODE);
  chmodSync(path, PRIVATE_FILE_MODE);
  return fd;
}

export function closeFd(fd: number): void {
  closeSync(fd);
}

export function readCluster(paths: StatePaths): Cluster | undefined {
  try {
    return decodeClusterJson(readFileSync(paths.clusterFile, 'utf8'));
  } catch {
    return undefined;
  }
}

export function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when `pid` is alive and is this cluster's node process: a pid alone could have been
 * reused by an unrelated process after a crash, and podwire ends only what it started.
 */
export function isNodeProcess(pid: number, paths: StatePaths, node: string): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const at = argv.indexOf('--state-dir');
    const nodeAt = argv.indexOf('--node');
    return argv.some((a) => a.endsWith('node/main.js')) && at >= 0 && argv[at + 1] === paths.dir && nodeAt >= 0 && argv[nodeAt + 1] === node;
  } catch {
    return false;
  }
}

/**
 * Every live node process of this cluster, found by its command line rather than by pid
 * files, so a cluster whose state directory was lost can still be brought down.
 */
export function findNodeProcesses(paths: StatePaths): { pid: number; node: string }[] {
  return findAllNodeProcesses()
    .filter((p) => p.stateDir === paths.dir)
    .map(({ pid, node }) => ({ pid, node }));
}

/** Every podwire node process on the machine, with the state directory it runs from. */
export function findAllNodeProcesses(): { pid: number; node: string; stateDir: string }[] {
  const found: { pid: number; node: string; stateDir: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    const at = argv.indexOf('--state-dir');
    const nodeAt = argv.indexOf('--node');
    if (at < 0 || nodeAt < 0 || argv[at + 1] === undefined || !argv.some((a) => a.endsWith('node/main.js'))) continue;
    found.push({ pid: Number(entry), node: argv[nodeAt + 1] ?? '', stateDir: argv[at + 1] });
  }
  return found;
}

/** Alive and not a zombie (a zombie still answers signal 0; its /proc status says Z). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export function nodePid(paths: StatePaths, node: string): number | undefined {
  const pid = readPid(paths.nodePid(node));
  return pid !== undefined && isNodeProcess(pid, paths, node) ? pid : undefined;
}
