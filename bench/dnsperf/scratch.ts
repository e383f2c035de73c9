/**
 * The run's scratch directory (the YAML, the hosts file, the query file, podwire's state
 * directory) and its owner record, `owner.json`: the run's pid, its cluster, and the
 * server processes it started. Teardown in `finally` and on a signal removes all of it; a
 * run killed outright (SIGKILL, OOM) cannot, so the next run removes what such a run left:
 * its cluster (`podwire down`), its servers (by pid, only if the process's command line
 * still names that scratch directory, i.e. it is that process and not a reused pid), and
 * the directory.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { commandName } from '../dataplane/proc.js';
import { podwireDown } from './servers.js';

const PREFIX = 'pwdnsperf-';
const OWNER = 'owner.json';

interface OwnerRecord {
  pid: number;
  cluster?: string;
  stateDir?: string;
  /** Servers started by the run (dnsmasq, proto-servers). */
  pids: number[];
}

export class Scratch {
  readonly dir: string;
  private record: OwnerRecord = { pid: process.pid, pids: [] };

  constructor() {
    this.dir = mkdtempSync(path.join(tmpdir(), PREFIX));
    // dnsmasq drops to user nobody and then reads its hosts file: the files here are public
    // benchmark data, readable by all (mkdtemp makes the directory 0700).
    chmodSync(this.dir, 0o755);
    this.save();
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  write(name: string, text: string): string {
    const file = this.file(name);
    writeFileSync(file, text, { mode: 0o644 });
    return file;
  }

  noteCluster(cluster: string, stateDir: string): void {
    this.record = { ...this.record, cluster, stateDir };
    this.save();
  }

  notePid(pid: number): void {
    this.record = { ...this.record, pids: [...this.record.pids, pid] };
    this.save();
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private save(): void {
    writeFileSync(path.join(this.dir, OWNER), JSON.stringify(this.record));
  }
}

function readOwner(dir: string): OwnerRecord | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, OWNER), 'utf8')) as OwnerRecord;
  } catch {
    return undefined;
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Removes what runs killed outright left behind; never touches a live run's directory. */
export async function removeStale(log: (line: string) => void): Promise<void> {
  const dirs = readdirSync(tmpdir())
    .filter((name) => name.startsWith(PREFIX))
    .map((name) => path.join(tmpdir(), name));
  for (const dir of dirs) {
    const owner = readOwner(dir);
    if (owner === undefined) continue; // not (yet) a run's: leave it alone
    if (owner.pid === process.pid || commandName(owner.pid) === 'node') continue; // a live run
    log(`  removing what a killed run (pid ${owner.pid}) left in ${dir}`);
    for (const pid of owner.pids) {
      if (!commandLine(pid).includes(dir)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    if (owner.cluster !== undefined && owner.stateDir !== undefined) {
      const problem = await podwireDown(owner.cluster, owner.stateDir);
      if (problem !== undefined) log(`  podwire down ${owner.cluster}: ${problem}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
