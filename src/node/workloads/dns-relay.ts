/**
 * The node's DNS-over-TCP endpoint: runs inside the node's DNS namespace, accepts TCP on
 * port 53 (pods reach it through the cluster DNS address, DNATed here like a kube-dns pod)
 * and splices each connection to the node process's DNS socket, a Unix stream socket in the
 * cluster's state directory. DNS over TCP frames every message with its length on both
 * sides, so the relay copies bytes and parses nothing.
 *
 *   node dns-relay.js UNIX_SOCKET_PATH
 */
import { createConnection, createServer } from 'node:net';

function main(): void {
  const path = process.argv[2];
  if (path === undefined) {
    process.stderr.write('usage: dns-relay UNIX_SOCKET_PATH\n');
    process.exit(2);
  }
  const server = createServer((client) => {
    const upstream = createConnection(path);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
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
