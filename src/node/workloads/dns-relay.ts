/**
 * The node's DNS-over-TCP endpoint: runs inside the node's DNS namespace, accepts TCP on
 * port 53 (pods reach it through the cluster DNS address, DNATed here like a kube-dns pod)
 * and splices each connection to the node process's DNS socket, a Unix stream socket in the
 * cluster's state directory. DNS over TCP frames every message with its length on both
 * sides, so the relay copies bytes and parses nothing.
 *
 * One pod may hold at most PER_POD_CONNECTIONS connections at once (the relay is the only
 * place that sees pods' addresses): a pod that opens more has the new ones reset, so it
 * cannot use up the node's pool of DNS connections for every other pod.
 *
 *   node dns-relay.js UNIX_SOCKET_PATH
 */
import { createConnection, createServer } from 'node:net';

/** As CoreDNS's per-client limits go: plenty for a resolver, few enough for a node's pool. */
export const PER_POD_CONNECTIONS = 32;

/** Open connections per pod address; a pod at its limit is refused. */
export class PodConnectionLimit {
  private readonly open = new Map<string, number>();
  constructor(readonly perPod = PER_POD_CONNECTIONS) {}

  /** Takes a slot for `addr`; false when it has `perPod` already. */
  take(addr: string): boolean {
    const n = this.open.get(addr) ?? 0;
    if (n >= this.perPod) return false;
    this.open.set(addr, n + 1);
    return true;
  }

  release(addr: string): void {
    const n = this.open.get(addr) ?? 0;
    if (n <= 1) this.open.delete(addr);
    else this.open.set(addr, n - 1);
  }
}

function main(): void {
  const path = process.argv[2];
  if (path === undefined) {
    process.stderr.write('usage: dns-relay UNIX_SOCKET_PATH\n');
    process.exit(2);
  }
  const limit = new PodConnectionLimit();
  const server = createServer((client) => {
    const addr = client.remoteAddress ?? '';
    if (!limit.take(addr)) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(path);
    client.pipe(upstream);
    upstream.pipe(client);
    let closed = false;
    const close = () => {
      if (!closed) limit.release(addr);
      closed = true;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  server.listen(53, '0.0.0.0');
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
