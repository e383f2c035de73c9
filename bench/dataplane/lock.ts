/**
 * One dataplane benchmark at a time on a machine: the kernel topology has fixed namespace
 * names (pwkbn1, pwkbn2, pwkbp-*), and two runs would also measure each other.
 *
 * The lock file names the run's pid and, once known, its podwire cluster and scratch
 * directory. A lock whose
 * pid is gone is stale: a run killed outright (SIGKILL, OOM) could not tear down, so the
 * next run removes what it left (its cluster, the fixed-name namespaces) before starting.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { destroyIoNamespace } from './io-figures.js';
import { destroyKernelTopology } from './kernel.js';
import { podwireDown } from './podwire.js';
import { commandName } from './proc.js';

const LOCK_FILE = path.join(tmpdir(), 'pwkb-dataplane.lock');

interface LockRecord {
  pid: number;
  cluster?: string;
  stateDir?: string;
  /** The compiled load generator's directory. */
  toolDir?: string;
}

export interface Lock {
  /** Adds to what the lock file says (the cluster, once it has a name). */
  record(more: Omit<LockRecord, 'pid'>): void;
  release(): void;
}

function read(): LockRecord | undefined {
  try {
    return JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as LockRecord;
  } catch {
    return undefined;
  }
}

/** A live node process holds it (not a reused pid running something else). */
function holderAlive(pid: number): boolean {
  return pid !== process.pid && commandName(pid) === 'node';
}

export async function acquireLock(log: (line: string) => void): Promise<Lock> {
  let current: LockRecord = { pid: process.pid };
  try {
    writeFileSync(LOCK_FILE, JSON.stringify(current), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const held = read();
    if (held !== undefined && holderAlive(held.pid)) {
      throw new Error(`another dataplane benchmark (pid ${held.pid}) is running; ${LOCK_FILE} is its lock`);
    }
    if (held?.cluster !== undefined && held.stateDir !== undefined) {
      log(`  removing what a killed run (pid ${held.pid}) left: cluster ${held.cluster}`);
      await podwireDown(held.cluster, held.stateDir);
      rmSync(held.stateDir, { recursive: true, force: true });
    }
    if (held?.toolDir !== undefined) rmSync(held.toolDir, { recursive: true, force: true });
    writeFileSync(LOCK_FILE, JSON.stringify(current));
  }
  // Whoever held the lock last may have left the fixed-name namespaces; nobody else makes them.
  for (const problem of await destroyKernelTopology()) log(`  stale kernel topology: ${problem}`);
  await destroyIoNamespace();
  return {
    record(more) {
      current = { ...current, ...more };
      writeFileSync(LOCK_FILE, JSON.stringify(current));
    },
    release() {
      if (read()?.pid === process.pid) rmSync(LOCK_FILE, { force: true });
    },
  };
}
