/**
 * Who may use the node's DNS listeners, and how much of them.
 *
 * The loopback port (UDP and TCP on 127.0.0.1) is reachable by every user of the machine,
 * and its answers include recursion to the upstream resolvers: left open it is an open
 * resolver for local users, and their TCP connections compete with the pods'. It serves
 * only root, the node's own tools (`podwire dns`, dig and dnsperf run by the operator). The
 * owner of the sending socket is read from /proc/net (src/io/socket-owner.ts) because
 * nothing else tells a loopback TCP or UDP server who is on the other end, and on loopback
 * the source port cannot be forged without CAP_NET_RAW, which is root's anyway. Binding the
 * port inside a namespace of its own would keep users out too, but then every tool would
 * need `ip netns exec`; a firewall owner match would mean rules in the machine's root
 * namespace, which podwire never touches. What remains open: a UDP port read as root's is
 * believed for a few milliseconds (dns-server.ts UDP_OWNERS_FRESH_MS says why), and under
 * a flood of connections from another user root's own TCP connections on the loopback port
 * may be turned away with the flood (the owner lookups are shared); UDP and the relay are not.
 *
 * Pods' DNS over TCP never meets local users: the relay reaches the node over a Unix socket
 * that only root can open (0600), with a pool of connections of its own.
 */
import type { TcpPeer } from '../io/socket-owner.js';

/** Counts connections per client and in all; `admit` says whether one more fits. */
export class ConnectionLimits {
  private readonly perKey = new Map<number, number>();
  private count = 0;
  refusedTotal = 0;
  refusedPerClient = 0;

  constructor(
    readonly maxTotal: number,
    readonly maxPerClient: number,
  ) {
    if (!(maxTotal >= 1 && maxPerClient >= 1)) throw new RangeError(`connection limits must be at least 1 (total ${maxTotal}, per client ${maxPerClient})`);
  }

  get open(): number {
    return this.count;
  }

  /** Takes a place for `client`, or says no (counted) when the pool or the client's share is full. */
  admit(client: number): boolean {
    if (this.count >= this.maxTotal) {
      this.refusedTotal++;
      return false;
    }
    const held = this.perKey.get(client) ?? 0;
    if (held >= this.maxPerClient) {
      this.refusedPerClient++;
      return false;
    }
    this.perKey.set(client, held + 1);
    this.count++;
    return true;
  }

  /** Gives back a place `admit` granted. */
  release(client: number): void {
    const held = this.perKey.get(client);
    if (held === undefined) return;
    if (held <= 1) this.perKey.delete(client);
    else this.perKey.set(client, held - 1);
    this.count--;
  }
}

/** Reads the owners of the client ends of connections to our listener, all at once (src/io/socket-owner.ts `tcpPeerOwners`). */
export type PeerOwnerReader = (peers: readonly TcpPeer[]) => Promise<Int32Array>;

export interface OwnerGateOptions {
  /** Connections waiting for their owner at most; more are turned away at once. */
  maxPending: number;
  /** At least this long between two reads of the tables, so that a flood of connections costs one read per interval. */
  minIntervalMs: number;
  /**
   * Reads a connection may go unfound in before it counts as unknown (-1). /proc/net/tcp
   * comes a page per read() and the kernel resumes its walk by position, so while other
   * connections come and go a line can be skipped: a miss is asked again, a match is final.
   */
  attempts: number;
  read: PeerOwnerReader;
}

interface Waiting extends TcpPeer {
  resolve: (uid: number) => void;
  tries: number;
}

/**
 * Asks for the owner of each new loopback TCP connection, batching the questions: whoever
 * arrives while a read is running or during the pause after it is answered by the next
 * read. A read that fails answers -1 (unknown owner) for everyone in it.
 */
/**
 * The bounds a loopback listener checks its clients' owners with: connections waiting for
 * their owner, at most; the pause between two reads of /proc/net/tcp; reads per connection.
 */
export const LOOPBACK_OWNER_GATE = { maxPending: 512, minIntervalMs: 20, attempts: 3 } as const;

export class TcpOwnerGate {
  private waiting: Waiting[] = [];
  private running = false;
  private lastRead = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  turnedAway = 0;
  reads = 0;

  constructor(private readonly options: OwnerGateOptions) {}

  get pending(): number {
    return this.waiting.length;
  }

  /** The uid owning the client end `peer`, -1 when unknown; undefined when too many are already waiting (counted). */
  ownerOf(peer: TcpPeer): Promise<number> | undefined {
    if (this.waiting.length >= this.options.maxPending) {
      this.turnedAway++;
      return undefined;
    }
    const answer = new Promise<number>((resolve) => this.waiting.push({ ...peer, resolve, tries: 0 }));
    this.schedule();
    return answer;
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiting.splice(0)) w.resolve(-1);
  }

  private schedule(): void {
    if (this.running || this.timer !== undefined || this.waiting.length === 0) return;
    const wait = Math.max(0, this.lastRead + this.options.minIntervalMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.readNow();
    }, wait);
  }

  private async readNow(): Promise<void> {
    const batch = this.waiting.splice(0);
    if (batch.length === 0) return;
    this.running = true;
    this.reads++;
    let uids: Int32Array | undefined;
    try {
      uids = await this.options.read(batch);
    } catch {
      uids = undefined;
    }
    this.lastRead = performance.now();
    this.running = false;
    batch.forEach((w, i) => {
      const uid = uids?.[i] ?? -1;
      if (uid === -1 && ++w.tries < this.options.attempts) this.waiting.push(w);
      else w.resolve(uid);
    });
    this.schedule();
  }
}
