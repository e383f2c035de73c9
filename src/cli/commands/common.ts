/** What several podwire commands share: asking a node, opening the store, printing a lot. */
import { existsSync } from 'node:fs';
import { UsageError } from '../args.js';
import { readCluster, statePaths } from '../state.js';
import type { Cluster } from '../../cluster/model.js';
import { FileStore } from '../../cluster/store.js';
import { callControl, streamControl } from '../../node/control.js';
import type { NodeOps } from '../../node/control-protocol.js';

type StateValues = { name?: string | undefined; 'state-dir'?: string | undefined };

/** The control socket of the node named on the command line, once the cluster and node are known. */
function nodeSocket(values: StateValues, node: string): string {
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) {
    // A node that joined a cluster in etcd keeps only its sockets and logs here.
    if (existsSync(paths.nodeSocket(node))) return paths.nodeSocket(node);
    throw new UsageError(`cluster ${name} has no node ${node} on this machine (state in ${paths.dir}); a node that joined from another machine answers there`);
  }
  if (!cluster.nodes.some((n) => n.name === node)) throw new UsageError(`node ${node} is not in cluster ${name} (nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`);
  return paths.nodeSocket(node);
}

/** One request to a node's control socket, with the node named on the command line. */
export async function askNode<Op extends keyof NodeOps>(values: StateValues, node: string, op: Op, args: NodeOps[Op]['args']): Promise<NodeOps[Op]['result']> {
  return callControl(nodeSocket(values, node), op, args, 10_000);
}

/** A streaming request to a node: `onChunk` per chunk, with 10 s at most between messages. */
export async function streamFromNode<Op extends keyof NodeOps>(
  values: StateValues,
  node: string,
  op: Op,
  args: NodeOps[Op]['args'],
  onChunk: (chunk: NodeOps[Op]['chunk'], attached?: Buffer) => void | Promise<void>,
): Promise<NodeOps[Op]['result']> {
  return streamControl(nodeSocket(values, node), op, args, onChunk, 10_000);
}

export function openStore(values: StateValues): { store: FileStore; cluster: Cluster } {
  const { name, paths } = statePaths(values);
  const store = new FileStore(paths.dir);
  const cluster = store.readDesired();
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  return { store, cluster };
}

/** The reader of our output went away (EPIPE): as `conntrack -L | head` ends conntrack. */
export class ReaderGone extends Error {}

/**
 * Writes to a stream as fast as its reader takes it: `write` waits for 'drain' when the
 * stream's buffer is full, `flush` until everything written has reached the kernel (a
 * pipe to a slow reader otherwise loses what is still buffered when the process exits).
 */
export class Printer {
  private failed: Error | undefined;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      this.failed = err.code === 'EPIPE' ? new ReaderGone('the reader of the output went away') : err;
    });
  }

  async write(text: string): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    if (this.out.write(text)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.out.off('drain', done);
        this.out.off('error', done);
        if (this.failed !== undefined) reject(this.failed);
        else resolve();
      };
      this.out.on('drain', done);
      this.out.on('error', done);
    });
  }

  async flush(): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    await new Promise<void>((resolve, reject) => this.out.write('', (err) => (err == null ? resolve() : reject(this.failed ?? err))));
  }
}
