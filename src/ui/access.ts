/**
 * Who may reach the web view. The page shows every pod's traffic and downloads captures of
 * it, what only root may see through the nodes' control sockets (0600), yet 127.0.0.1 is
 * open to every local user. So a loopback connection is served only when the socket on
 * its other end is root's (or the server's own user's), as the node's DNS port does it
 * (src/node/dns-guard.ts): held unread until the kernel's TCP tables name its owner, then
 * handed to the HTTP server or closed. A connection from another address (--address) is
 * the user's choice to open the page to that network, and is served.
 *
 * And a request is answered only when it is addressed to the server by its own name: a
 * site that points its name at 127.0.0.1 (DNS rebinding) sends that name as its Host.
 */
import type { Server } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { parseIpv4 } from '../packet/addr.js';
import { TCP_TABLES, TcpPeerOwners } from '../io/socket-owner.js';
import { LOOPBACK_OWNER_GATE, TcpOwnerGate } from '../node/dns-guard.js';

/** The uid owning a client's socket, -1 when unknown. */
export type SocketOwnerReader = (clientAddr: number, clientPort: number, serverAddr: number, serverPort: number) => Promise<number>;

export interface RootOnlyListener {
  readonly port: number;
  close(): Promise<void>;
}


/**
 * Listens on host:port and hands `http` the connections whose client may see the page.
 * `owner` replaces the reading of the kernel's tables (tests).
 */
export async function listenForRoot(http: Server, host: string, port: number, log: (line: string) => void, owner?: SocketOwnerReader): Promise<RootOnlyListener> {
  const serverAddr = parseIpv4(host) ?? 0;
  let bound = port;
  const tables = new TcpPeerOwners(TCP_TABLES.slice(0, 1));
  const gate = new TcpOwnerGate({
    ...LOOPBACK_OWNER_GATE,
    read: async (peers) => (owner === undefined ? tables.lookup(peers, serverAddr, bound) : Int32Array.from(await Promise.all(peers.map((p) => owner(p.clientAddr, p.clientPort, serverAddr, bound))))),
  });
  const self = process.getuid?.() ?? 0;
  let refused = 0;
  const admit = (socket: Socket) => {
    http.emit('connection', socket);
    socket.resume();
  };
  const listener = createServer({ pauseOnConnect: true }, (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    const clientAddr = parseIpv4(socket.remoteAddress?.replace(/^::ffff:/, '') ?? '');
    if (clientAddr === undefined || clientAddr >>> 24 !== 127) return admit(socket);
    const uid = gate.ownerOf({ clientAddr, clientPort: socket.remotePort ?? 0 });
    if (uid === undefined) return void socket.destroy();
    void uid.then((found) => {
      if (socket.destroyed) return;
      if (found === 0 || found === self) return admit(socket);
      refused++;
      if (refused === 1 || refused % 100 === 0) log(`ui: refused ${refused} connection${refused === 1 ? '' : 's'} from local users other than root (the last from uid ${found})`);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (err: NodeJS.ErrnoException) => {
      gate.close();
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${host}:${port} is in use (choose another with --port, or 0 for any free one)`) : err);
    });
    listener.listen(port, host, () => resolve());
  });
  const address = listener.address();
  bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        gate.close();
        http.closeAllConnections();
        listener.close(() => resolve());
      }),
  };
}

/** Whether a request's Host names the server as it listens (`localhost` too, for loopback). */
export function addressedToUs(hostHeader: string | undefined, host: string, loopbackHost: string, port: number): boolean {
  const given = (hostHeader ?? '').toLowerCase();
  const names = [host, ...(host === loopbackHost ? ['localhost'] : [])];
  return names.some((name) => given === `${name}:${port}` || (port === 80 && given === name));
}
