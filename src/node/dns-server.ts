/**
 * The node's cluster DNS, the I/O around src/dns's pure responder:
 *
 * - queries from local pods to the cluster DNS address arrive as frames in the pipeline,
 *   which calls `fromPod` and sends the answer frame itself (no kernel socket in between);
 * - tools ask on loopback, UDP and TCP on one port (`dig @127.0.0.1 -p PORT`), and only
 *   root's tools get an answer there (dns-guard.ts says why and how);
 * - pods' DNS over TCP arrives through the relay on a Unix socket only root can open, with
 *   a pool of connections of its own, so nothing on the loopback port can crowd it out;
 * - names outside the cluster domain go to the upstream resolvers (the host's resolv.conf
 *   by default) over UDP, and over TCP when an upstream truncates.
 *
 * Answers to forwarded queries come back later; `token` tells where the client is: a pod
 * (answered through the pipeline), the loopback UDP socket, or a loopback TCP connection.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { chmod, rename, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { formatIpv4, parseIpv4, type Cidr } from '../packet/addr.js';
import type { ServicePortEndpoints, Readiness } from '../cluster/endpoints.js';
import type { Cluster } from '../cluster/model.js';
import { DNS_HEADER_LEN } from '../dns/constants.js';
import { buildZone, clientPolicy, Responder, type DnsResult, type DnsStatus } from '../dns/index.js';
import { openOverlaySocket } from '../io/open.js';
import type { DatagramBatch, DatagramPort } from '../port/port.js';
import { TCP_TABLES, TcpPeerOwners, UdpPortOwners } from '../io/socket-owner.js';
import { ConnectionLimits, LOOPBACK_OWNER_GATE, TcpOwnerGate, type PeerOwnerReader } from './dns-guard.js';

/** Where the client of a query is, carried through forwarding as the token. */
const TOKEN_POD = 1;
const TOKEN_LOOPBACK_UDP = 2;
const FIRST_TCP_TOKEN = 16;
/**
 * A TCP connection must bring a whole message this soon after it opened, after its last
 * message or after its last answer, or it is closed: a per-message read deadline as
 * CoreDNS's server keeps (8 s idle), BIND's tcp-idle-timeout, not a timer that any byte
 * resets, which a client trickling a byte at a time would hold open for ever.
 */
const TCP_IDLE_MS = 10_000;
/** Root's tools on the loopback port: a few at a time, per uid and in all. */
const LOOPBACK_TCP_TOTAL = 64;
const LOOPBACK_TCP_PER_CLIENT = 32;
/** Pods' TCP DNS through the relay: one Unix connection per pod connection. */
const RELAY_TCP_TOTAL = 1024;
/** The relay is one client; it may use the whole pool. */
const RELAY_CLIENT = 0;
/**
 * How long a read of the UDP tables is believed for a port it showed as root's. Each read
 * walks the kernel's whole UDP hash (100-200 us on this 2-core machine under load), and
 * reading per batch doubled the server's CPU per query at 20k paced queries/s (11 -> 25 us,
 * dnsperf -Q 20000). The cost of believing: if root's socket closes and another user binds
 * the same port within these milliseconds, that user's queries are answered until the next
 * read. An exact per-datagram check needs sock_diag over netlink (what `ss` uses), which
 * Node cannot speak without an addon.
 */
const UDP_OWNERS_FRESH_MS = 5;
/** Kernel-chosen UDP ports tried before giving up on finding one free for TCP too. */
const LOOPBACK_PORT_ATTEMPTS = 16;
/** A client that does not read its answers: past this many unsent bytes we stop reading its queries. */
const MAX_UNSENT = 256 << 10;
const MAX_MESSAGE = 65535;
const LOOPBACK = '127.0.0.1';
const LOOPBACK_ADDR = 0x7f000001;

export interface DnsServerOptions {
  /** Upstream resolvers (addresses as text); default: the nameservers of the host's resolv.conf. */
  upstreams: string[];
  /** Who may ask besides loopback: the pod CIDR. */
  clients: Cidr[];
  /** Record TTL; default: the cluster's `dnsTTLSeconds`. */
  ttl?: number;
  /** Loopback port for tools; 0 picks a free one. */
  port?: number;
  /** Delivers an answer to a forwarded pod query through the pipeline. */
  toPod: (clientAddr: number, clientPort: number, message: Uint8Array, length: number) => void;
  log: (line: string) => void;
  /** TCP read deadline per message in ms (default 10 s, TCP_IDLE_MS). */
  tcpIdleMs?: number;
  /** Connection pools (defaults above): root's tools on loopback, and pods through the relay. */
  tcpLimits?: { loopbackTotal?: number; loopbackPerClient?: number; relayTotal?: number };
  /** Owners of loopback client sockets; default: read from /proc/net (src/io/socket-owner.ts). */
  socketOwners?: { udp: UdpOwners; tcp: PeerOwnerReader };
}

/** What the loopback UDP listener asks of src/io/socket-owner.ts `UdpPortOwners`. */
type UdpOwners = Pick<UdpPortOwners, 'refresh' | 'saw' | 'isRootOnly'>;

/** One TCP client: its socket and its read deadline. */
interface TcpClient {
  readonly socket: Socket;
  readonly deadline: NodeJS.Timeout;
}

/** What the guards turned away or closed, for `podwire status --json`. */
export interface DnsGuardStatus {
  /** Queries and connections on the loopback port from sockets not root's: never answered. */
  localUsersRefused: { udp: number; tcp: number };
  /** Datagrams on the upstream socket from anything but port 53 of an upstream: dropped. */
  notFromUpstream: number;
  tcp: {
    loopbackOpen: number;
    relayOpen: number;
    awaitingOwner: number;
    /** Turned away: a pool full, a client's share of it full, too many loopback connections waiting for their owner. */
    refusedFull: number;
    refusedPerClient: number;
    ownerQueueFull: number;
    ownerReads: number;
    idleClosed: number;
    /** Closed for a length prefix shorter than a DNS header. */
    badFraming: number;
    /** Times a client stopped reading its answers long enough for us to stop reading its queries. */
    backpressured: number;
  };
}

export class DnsServer {
  readonly responder: Responder;
  private readonly out = Buffer.alloc(MAX_MESSAGE + 2);
  /** The loopback UDP listener: the addon's batched socket (recvmmsg/sendmmsg) where built. */
  private udp: DatagramPort | undefined;
  private tcp: Server | undefined;
  private unix: Server | undefined;
  private upstreamSocket: UdpSocket | undefined;
  private readonly upstreams: number[];
  private readonly tcpClients = new Map<number, TcpClient>();
  private readonly loopbackPool: ConnectionLimits;
  private readonly relayPool: ConnectionLimits;
  private readonly ownerGate: TcpOwnerGate;
  private readonly udpOwners: UdpOwners;
  private readonly awaitingOwner = new Set<Socket>();
  private readonly idleMs: number;
  private udpOwnersReadAt = -Infinity;
  private readonly guard = { udpRefused: 0, tcpRefused: 0, idleClosed: 0, badFraming: 0, backpressured: 0, notFromUpstream: 0 };
  private nextTcpToken = FIRST_TCP_TOKEN;
  private timer: NodeJS.Timeout | undefined;
  private readonly t0 = process.hrtime.bigint();
  /** One query context reused for every loopback UDP query: nothing allocated per query. */
  private readonly udpContext = { clientAddr: 0, clientPort: 0, transport: 'udp' as const, now: 0, token: TOKEN_LOOPBACK_UDP };
  port = 0;

  constructor(
    cluster: Cluster,
    private readonly options: DnsServerOptions,
  ) {
    this.upstreams = options.upstreams.map((a) => parseIpv4(a)).filter((a): a is number => a !== undefined);
    this.idleMs = options.tcpIdleMs ?? TCP_IDLE_MS;
    const limits = options.tcpLimits ?? {};
    this.loopbackPool = new ConnectionLimits(limits.loopbackTotal ?? LOOPBACK_TCP_TOTAL, limits.loopbackPerClient ?? LOOPBACK_TCP_PER_CLIENT);
    const relayTotal = limits.relayTotal ?? RELAY_TCP_TOTAL;
    this.relayPool = new ConnectionLimits(relayTotal, relayTotal);
    this.udpOwners = options.socketOwners?.udp ?? new UdpPortOwners();
    // /proc/net/tcp alone: the listener is IPv4, and a client on an IPv4-mapped IPv6 socket
    // (listed in tcp6 only) is simply not found, so refused; skipping tcp6 halves the cost of a
    // lookup, which walks the kernel's whole connection hash.
    const tcpOwners = new TcpPeerOwners(TCP_TABLES.slice(0, 1));
    const readTcpOwners = options.socketOwners?.tcp ?? ((peers) => tcpOwners.lookup(peers, LOOPBACK_ADDR, this.port));
    this.ownerGate = new TcpOwnerGate({ ...LOOPBACK_OWNER_GATE, read: readTcpOwners });
    this.responder = new Responder({
      zone: buildZone(cluster, [], { ttl: options.ttl }),
      policy: clientPolicy(options.clients),
      forwarder: { upstreams: this.upstreams.length, random: Math.random },
      // Room for a zone of tens of thousands of names: a direct-mapped cache smaller than
      // the names asked for misses most of the time (measured: 28% hits at 4,096 slots
      // for 11,000 names, 87% at 65,536, halving the responder's cost per query).
      answerCache: { slots: 65_536 },
    });
  }

  /** Milliseconds on a monotonic clock, as the responder wants them. */
  private now(): number {
    return Number(process.hrtime.bigint() - this.t0) / 1e6;
  }

  async start(): Promise<void> {
    await this.listenLoopback();
    this.upstreamSocket = createSocket('udp4');
    this.upstreamSocket.on('message', (msg, rinfo) => this.fromUpstream(msg, rinfo.address, rinfo.port));
    this.upstreamSocket.on('error', (err) => this.options.log(`dns upstream: ${err.message}`));
    await new Promise<void>((resolve) => this.upstreamSocket!.bind(0, () => resolve()));
    this.timer = setInterval(() => this.pollForwarder(), 100);
    this.timer.unref();
  }

  /**
   * UDP and TCP on one loopback port, as a DNS server is found at one port for both. With
   * no port given, the kernel picks a free UDP port, and its number may be taken for TCP
   * by another program (a listener, or a connection's ephemeral port): then another pick.
   */
  private async listenLoopback(): Promise<void> {
    const chosen = this.options.port ?? 0;
    for (let attempt = 1; ; attempt++) {
      // A modest receive buffer: under a burst, queries beyond it are dropped and retried by
      // the client instead of queueing behind a stall and being answered seconds late.
      const udp = await openOverlaySocket(LOOPBACK_ADDR, chosen, { bufferBytes: 256 << 10 });
      const tcp = createServer((socket) => this.acceptLoopbackTcp(socket));
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(udp.port, LOOPBACK, () => resolve());
        });
      } catch (err) {
        udp.close();
        if (chosen !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === LOOPBACK_PORT_ATTEMPTS) throw err;
        continue;
      }
      this.udp = udp;
      this.tcp = tcp;
      this.port = udp.port;
      udp.start((batch) => this.fromLoopbackUdp(batch));
      return;
    }
  }

  /**
   * DNS over TCP framing on a Unix socket, for the relay that brings pods' TCP queries here.
   * Its clients count as local (loopback) for the client policy: the relay is ours. Only
   * root may connect (mode 0600): the socket is bound under a temporary name, narrowed, and
   * only then renamed to `path`, so there is no moment when another user could open it.
   */
  async serveUnix(path: string): Promise<void> {
    const binding = `${path}.${process.pid}.new`;
    await rm(binding, { force: true });
    this.unix = createServer((socket) => this.serveTcp(socket, this.relayPool, RELAY_CLIENT, LOOPBACK_ADDR));
    await new Promise<void>((resolve, reject) => {
      this.unix!.once('error', reject);
      this.unix!.listen(binding, () => resolve());
    });
    await chmod(binding, 0o600);
    await rename(binding, path);
  }

  /** Rebuilds the zone from the cluster state (cheap: 10,000 services in well under 100 ms). */
  setCluster(cluster: Cluster, endpoints: readonly ServicePortEndpoints[], readiness: Readiness): void {
    this.responder.setZone(buildZone(cluster, endpoints, { ttl: this.options.ttl, readiness, serial: Math.floor(Date.now() / 1000) }));
  }

  /**
   * A query from a local pod, as the pipeline found it in a frame. The answer (when there
   * is one now) is written into `out` at `outOffset`; a forwarded query is answered later
   * through `toPod`.
   */
  fromPod(query: Uint8Array, offset: number, length: number, clientAddr: number, clientPort: number, out: Uint8Array, outOffset: number): DnsResult {
    const result = this.responder.respond(query, offset, length, { clientAddr, clientPort, transport: 'udp', now: this.now(), token: TOKEN_POD }, out, outOffset);
    if (result.action === 'forward') this.sendUpstream(result, out, outOffset);
    else this.timeAnswer(result);
    return result;
  }

  /** A batch of queries from tools on loopback: answered in one pass, sent in one flush. */
  private fromLoopbackUdp(batch: DatagramBatch): void {
    const ctx = this.udpContext;
    ctx.now = this.now();
    // A port not root's in the last read of the UDP tables gets a fresh read before it is
    // refused, and one more if that read did not see the port at all (a line can be skipped
    // while sockets come and go); a port that was root's is believed for UDP_OWNERS_FRESH_MS
    // (why: at the constant). A flood from other users' ports costs two reads per batch at most.
    const owners = this.udpOwners;
    let freshReads = 0;
    if (ctx.now - this.udpOwnersReadAt > UDP_OWNERS_FRESH_MS) freshReads = this.readUdpOwners(ctx.now);
    for (let i = 0; i < batch.count; i++) {
      const port = batch.ports[i];
      if (!owners.isRootOnly(port)) {
        while (!owners.isRootOnly(port) && freshReads < 2 && (freshReads === 0 || !owners.saw(port))) freshReads += this.readUdpOwners(ctx.now);
        if (!owners.isRootOnly(port)) {
          this.guard.udpRefused++;
          continue;
        }
      }
      ctx.clientAddr = batch.addrs[i];
      ctx.clientPort = batch.ports[i];
      const result = this.responder.respond(batch.buf, batch.offsets[i], batch.lengths[i], ctx, this.out, 0);
      this.dispatch(result, this.out, 0);
    }
    this.udp?.flush();
  }

  private readUdpOwners(now: number): number {
    this.udpOwners.refresh();
    this.udpOwnersReadAt = now;
    return 1;
  }

  /**
   * A connection to the loopback port: held, unread, until the TCP tables say whose socket
   * the client end is; served only when it is root's, closed without a byte otherwise.
   */
  private acceptLoopbackTcp(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    const clientAddr = parseIpv4(socket.remoteAddress ?? '');
    const owner = clientAddr === undefined ? undefined : this.ownerGate.ownerOf({ clientAddr, clientPort: socket.remotePort ?? 0 });
    if (owner === undefined) return turnAway(socket);
    this.awaitingOwner.add(socket);
    socket.once('close', () => this.awaitingOwner.delete(socket));
    void owner.then((uid) => {
      this.awaitingOwner.delete(socket);
      if (socket.destroyed) return;
      if (uid !== 0) {
        this.guard.tcpRefused++;
        return turnAway(socket);
      }
      this.serveTcp(socket, this.loopbackPool, uid);
    });
  }

  /** Serves DNS over TCP (RFC 1035 4.2.2 framing) on a connection, if `pool` has room for `clientKey`. */
  private serveTcp(socket: Socket, pool: ConnectionLimits, clientKey: number, fixedClient?: number): void {
    socket.on('error', () => socket.destroy());
    if (!pool.admit(clientKey)) return turnAway(socket);
    const token = this.nextTcpToken++;
    const deadline = setTimeout(() => {
      this.guard.idleClosed++;
      socket.destroy();
    }, this.idleMs);
    this.tcpClients.set(token, { socket, deadline });
    socket.once('close', () => {
      clearTimeout(deadline);
      this.tcpClients.delete(token);
      pool.release(clientKey);
    });
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // Each message is preceded by its length in two bytes.
      while (pending.length >= 2 && !socket.destroyed) {
        const length = pending.readUInt16BE(0);
        if (length < DNS_HEADER_LEN) {
          // Not even a header: the framing is lost, and empty messages would hold the deadline off.
          this.guard.badFraming++;
          socket.destroy();
          return;
        }
        if (pending.length < 2 + length) break;
        deadline.refresh();
        const client = fixedClient ?? parseIpv4(socket.remoteAddress ?? '') ?? 0;
        const result = this.responder.respond(pending, 2, length, { clientAddr: client, clientPort: socket.remotePort ?? 0, transport: 'tcp', now: this.now(), token }, this.out, 2);
        this.dispatch(result, this.out, 2);
        pending = pending.subarray(2 + length);
      }
      // A client that sends queries and reads no answers would have them pile up here:
      // stop reading until it takes them; its deadline keeps running meanwhile.
      if (socket.writableLength > MAX_UNSENT && !socket.isPaused()) {
        this.guard.backpressured++;
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
  }

  /** Counts how long an answer took from its query's arrival (coredns_dns_request_duration_seconds). */
  private timeAnswer(result: DnsResult): void {
    if (result.action === 'answer') this.responder.counters.observeDuration(result.qtype, Math.max(0, this.now() - result.startedAt) / 1000);
  }

  /** Sends an answer to whoever asked, or a query upstream. */
  private dispatch(result: DnsResult, out: Buffer, outOffset: number): void {
    if (result.action === 'forward') return this.sendUpstream(result, out, outOffset);
    if (result.action !== 'answer') return;
    this.timeAnswer(result);
    const token = result.token;
    if (token === TOKEN_POD) return this.options.toPod(result.clientAddr, result.clientPort, out.subarray(outOffset, outOffset + result.length), result.length);
    if (token === TOKEN_LOOPBACK_UDP) {
      this.udp?.send(out, outOffset, result.length, result.clientAddr, result.clientPort);
      return;
    }
    const client = this.tcpClients.get(token);
    if (client === undefined) return;
    const framed = Buffer.alloc(2 + result.length);
    framed.writeUInt16BE(result.length, 0);
    out.copy(framed, 2, outOffset, outOffset + result.length);
    client.deadline.refresh();
    client.socket.write(framed);
  }

  private sendUpstream(result: DnsResult, out: Uint8Array, outOffset: number): void {
    const upstream = result.upstream;
    const addr = this.upstreams[upstream];
    if (addr === undefined) return;
    const message = Buffer.from(out.subarray(outOffset, outOffset + result.length));
    if (result.transport === 'udp') {
      this.upstreamSocket?.send(message, 53, formatIpv4(addr));
      return;
    }
    // A truncated upstream answer: ask again over TCP, one connection per query.
    const socket = createConnection(53, formatIpv4(addr));
    let pending: Buffer = Buffer.alloc(0);
    socket.setTimeout(5000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('connect', () => {
      const framed = Buffer.alloc(2 + message.length);
      framed.writeUInt16BE(message.length, 0);
      message.copy(framed, 2);
      socket.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length < 2 || pending.length < 2 + pending.readUInt16BE(0)) return;
      socket.end();
      const reply = this.responder.upstreamReply(pending, 2, pending.readUInt16BE(0), upstream, this.now(), this.out, 2);
      this.dispatch(reply, this.out, 2);
      this.udp?.flush();
    });
  }

  /**
   * A datagram on the upstream socket. Only one from port 53 of an upstream counts: an
   * upstream on loopback (systemd-resolved's 127.0.0.53, a local dnsmasq) shares its address
   * with every local user, who can bind any other port on it and flood forged answers at
   * our socket; port 53 is privileged, so only the resolver itself sends from there.
   */
  private fromUpstream(msg: Buffer, address: string, port: number): void {
    const index = port === 53 ? this.upstreams.indexOf(parseIpv4(address) ?? -1) : -1;
    if (index < 0) {
      this.guard.notFromUpstream++;
      return;
    }
    const result = this.responder.upstreamReply(msg, 0, msg.length, index, this.now(), this.out, 2);
    this.dispatch(result, this.out, 2);
    this.udp?.flush();
  }

  /** Retries and timeouts of forwarded queries. */
  private pollForwarder(): void {
    const now = this.now();
    const deadline = this.responder.nextDeadline();
    if (deadline === undefined || deadline > now) return;
    for (let r = this.responder.poll(now, this.out, 2); r !== undefined; r = this.responder.poll(now, this.out, 2)) this.dispatch(r, this.out, 2);
    this.udp?.flush();
  }

  /** The upstream resolvers, in the order forwarded queries name them by index. */
  get upstreamAddresses(): string[] {
    return this.upstreams.map(formatIpv4);
  }

  status(): DnsStatus & DnsGuardStatus & { port: number; upstreams: string[] } {
    const g = this.guard;
    const pools = [this.loopbackPool, this.relayPool];
    return {
      ...this.responder.status(),
      port: this.port,
      upstreams: this.upstreams.map(formatIpv4),
      localUsersRefused: { udp: g.udpRefused, tcp: g.tcpRefused },
      notFromUpstream: g.notFromUpstream,
      tcp: {
        loopbackOpen: this.loopbackPool.open,
        relayOpen: this.relayPool.open,
        awaitingOwner: this.awaitingOwner.size,
        refusedFull: pools.reduce((n, p) => n + p.refusedTotal, 0),
        refusedPerClient: pools.reduce((n, p) => n + p.refusedPerClient, 0),
        ownerQueueFull: this.ownerGate.turnedAway,
        ownerReads: this.ownerGate.reads,
        idleClosed: g.idleClosed,
        badFraming: g.badFraming,
        backpressured: g.backpressured,
      },
    };
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.udp?.close();
    this.tcp?.close();
    this.unix?.close();
    this.ownerGate.close();
    for (const s of this.awaitingOwner) s.destroy();
    for (const c of this.tcpClients.values()) c.socket.destroy();
    this.upstreamSocket?.close();
  }
}

/**
 * Closes a connection we will not serve. A TCP one with a reset: closing it cleanly would
 * leave our end in TIME_WAIT for a minute, a line in /proc/net/tcp per refused connection,
 * and a user opening thousands of them would make every owner lookup slower.
 */
function turnAway(socket: Socket): void {
  if (socket.remoteAddress !== undefined && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

/** The nameservers of a resolv.conf, in order. */
export function nameserversOf(resolvConf: string): string[] {
  return resolvConf
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[0] === 'nameserver' && f[1] !== undefined && parseIpv4(f[1]) !== undefined)
    .map((f) => f[1]);
}
