/**
 * The start lock of a cluster: `podwire up` holds it from the moment it knows the cluster's
 * name until the cluster is ready or torn down, so two ups of one name cannot both clear and
 * start it. The lock is a file holding the holder's pid, put in place with link(2), which
 * fails if the file exists and never shows a half-written file. A lock whose holder is dead
 * (an up killed by SIGKILL) is stale and taken over.
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { StatePaths } from '../node/names.js';
import { PRIVATE_FILE_MODE, processAlive } from './state.js';

export class ClusterBusyError extends Error {}

export interface StartLock {
  release(): void;
}

export function takeStartLock(paths: StatePaths, name: string): StartLock {
  const lock = paths.startLock;
  const mine = `${process.pid}\n`;
  const draft = join(dirname(lock), `.${name}.lock.${process.pid}`);
  writeFileSync(draft, mine, { mode: PRIVATE_FILE_MODE });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(draft, lock);
        return {
          release: () => {
            if (readText(lock) === mine) rmSync(lock, { force: true });
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = readText(lock);
      const holder = held === undefined ? undefined : Number(held.trim());
      if (holder !== undefined && Number.isInteger(holder) && holder > 0 && isPodwireUp(holder)) {
        throw new ClusterBusyError(`cluster ${name} is being started (by podwire up, pid ${holder}); wait for it, or stop it with podwire down --name ${name}`);
      }
      // Stale: remove it unless another up took it over since it was read.
      if (readText(lock) === held) rmSync(lock, { force: true });
    }
    throw new ClusterBusyError(`cluster ${name} is being started (the lock ${lock} keeps changing hands)`);
  } finally {
    rmSync(draft, { force: true });
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A pid reused by another program after a crash does not hold the lock: only a podwire command does. */
function isPodwireUp(pid: number): boolean {
  if (!processAlive(pid)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('cli/main.js'));
  } catch {
    return false;
  }
}
