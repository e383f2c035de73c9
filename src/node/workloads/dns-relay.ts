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
import { parseIpv4 } from '../../packet/addr.js';
import { ConnectionLimits } from '../dns-guard.js';

/** As CoreDNS's per-client limits go: plenty for a resolver, few enough for a node's pool. */
export const PER_POD_CONNECTIONS = 32;
/** The node's DNS server holds this many relay connections (dns-server.ts RELAY_TCP_TOTAL). */
export const RELAY_CONNECTIONS = 1024;

/** The relay's bounds, keyed by the pod's address (dns-guard's ConnectionLimits, as the server's). */
export function relayLimits(): ConnectionLimits {
  return new ConnectionLimits(RELAY_CONNECTIONS, PER_POD_CONNECTIONS);
}

function main(): void {
  const path = process.argv[2];
  if (path === undefined) {
    process.stderr.write('usage: dns-relay UNIX_SOCKET_PATH\n');
    process.exit(2);
  }
  const limits = relayLimits();
  const server = createServer((client) => {
    const addr = parseIpv4(client.remoteAddress ?? '') ?? 0;
    if (!limits.admit(addr)) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(path);
    client.pipe(upstream);
    upstream.pipe(client);
    let closed = false;
    const close = () => {
      if (!closed) limits.release(addr);
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
