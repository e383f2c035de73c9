/**
 * The cluster's state store on one machine: a directory that plays the API server's part.
 * The desired state (the resolved Cluster) lives in cluster.json, written by the podwire
 * command; every node publishes the readiness of its own pods in ready/<node>.json; every
 * node watches both and reconciles, as kubelets and kube-proxies watch the API server.
 * Every node also renews its lease in leases/<node>.json (see node-lifecycle.ts); the watch
 * leaves leases out, since a renewal is not a change to reconcile: agents read them on
 * their lifecycle timer.
 *
 * Writes are atomic (write a temporary file, then rename), so a reader sees the old state
 * or the new one, never half of one. Watching uses fs.watch for promptness and a slow
 * poll as a safety net, since inotify events can be coalesced or missed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { decodeClusterJson, encodeClusterJson } from './cluster-json.js';
import type { Cluster } from './model.js';
import type { Readiness } from './endpoints.js';
import { parseLease, type NodeLease } from './node-lifecycle.js';

const DESIRED = 'cluster.json';
const READY_DIR = 'ready';
const LEASE_DIR = 'leases';
const POLL_MS = 1000;
const DEBOUNCE_MS = 30;

export class FileStore {
  constructor(readonly dir: string) {}

  get desiredPath(): string {
    return join(this.dir, DESIRED);
  }

  readDesired(): Cluster | undefined {
    try {
      return decodeClusterJson(readFileSync(this.desiredPath, 'utf8'));
    } catch {
      return undefined;
    }
  }

  writeDesired(cluster: Cluster): void {
    atomicWrite(this.desiredPath, encodeClusterJson(cluster, 1));
  }

  publishReadiness(node: string, pods: ReadonlyMap<string, boolean>): void {
    const dir = join(this.dir, READY_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    atomicWrite(join(dir, `${node}.json`), JSON.stringify(Object.fromEntries(pods)));
  }

  /** Every node's published readiness, merged ("namespace/name" -> ready). */
  readReadiness(): Readiness {
    const merged = new Map<string, boolean>();
    for (const pods of this.readReadinessByNode().values()) for (const [pod, ready] of pods) merged.set(pod, ready);
    return merged;
  }

  /** Each node's published readiness, by the node that published it. */
  readReadinessByNode(): Map<string, Readiness> {
    const byNode = new Map<string, Readiness>();
    for (const [node, text] of readRecords(join(this.dir, READY_DIR))) {
      try {
        const entries = JSON.parse(text) as Record<string, boolean>;
        byNode.set(node, new Map(Object.entries(entries).map(([pod, ready]) => [pod, ready === true])));
      } catch {
        // Being replaced right now; the rename will trigger another read.
      }
    }
    return byNode;
  }

  renewLease(lease: NodeLease): void {
    const dir = join(this.dir, LEASE_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    atomicWrite(join(dir, `${lease.node}.json`), JSON.stringify(lease));
  }

  /**
   * Every node's lease; a record that is not a lease is left out (its node is then not
   * Ready) and said why in `problems`.
   */
  readLeases(): { leases: NodeLease[]; problems: string[] } {
    const leases: NodeLease[] = [];
    const problems: string[] = [];
    for (const [node, text] of readRecords(join(this.dir, LEASE_DIR))) {
      const lease = parseLease(node, text);
      if (typeof lease === 'string') problems.push(lease);
      else leases.push(lease);
    }
    return { leases, problems };
  }

  /** Calls `onChange` (debounced) whenever the desired state or any readiness changes. */
  watch(onChange: () => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let last = this.fingerprint();
    const fire = () => {
      if (timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        const now = this.fingerprint();
        if (now === last) return;
        last = now;
        onChange();
      }, DEBOUNCE_MS);
    };
    mkdirSync(join(this.dir, READY_DIR), { recursive: true, mode: 0o700 });
    const watchers: FSWatcher[] = [];
    for (const path of [this.dir, join(this.dir, READY_DIR)]) {
      try {
        watchers.push(watch(path, fire));
      } catch {
        // The poll below still notices.
      }
    }
    const poll = setInterval(fire, POLL_MS);
    poll.unref();
    return () => {
      for (const w of watchers) w.close();
      clearInterval(poll);
      if (timer !== undefined) clearTimeout(timer);
    };
  }

  /** What the watch compares: the content of the files it cares about. */
  private fingerprint(): string {
    let text = '';
    try {
      text += readFileSync(this.desiredPath, 'utf8');
    } catch {
      // Not written yet.
    }
    const dir = join(this.dir, READY_DIR);
    if (existsSync(dir)) {
      for (const file of readdirSync(dir).sort()) {
        try {
          text += `\0${file}\0${readFileSync(join(dir, file), 'utf8')}`;
        } catch {
          // Mid-rename.
        }
      }
    }
    return text;
  }
}

/** The `<node>.json` records of a directory, as (node, text); none when it does not exist yet. */
function readRecords(dir: string): [string, string][] {
  if (!existsSync(dir)) return [];
  const out: [string, string][] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json')) continue;
    try {
      out.push([file.slice(0, -'.json'.length), readFileSync(join(dir, file), 'utf8')]);
    } catch {
      // Removed between the listing and the read.
    }
  }
  return out;
}

function atomicWrite(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  // Private like the state directory that holds it: cluster state is root's alone.
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}
