/**
 * How long an idle connection is kept, per protocol and TCP state: the kernel's defaults for
 * the `net.netfilter.nf_conntrack_*_timeout*` sysctls, in seconds, under the same names.
 */
import { TcpState } from './conntrack-tcp.js';

export interface ConntrackTimeouts {
  readonly tcpSynSent: number;
  readonly tcpSynRecv: number;
  readonly tcpEstablished: number;
  readonly tcpFinWait: number;
  readonly tcpCloseWait: number;
  readonly tcpLastAck: number;
  readonly tcpTimeWait: number;
  readonly tcpClose: number;
  readonly tcpSynSent2: number;
  /**
   * The cap on ESTABLISHED while no reply has been seen (a connection picked up mid-stream
   * from a lone ACK), `nf_conntrack_tcp_timeout_unacknowledged`.
   */
  readonly tcpUnacknowledged: number;
  /** UDP before the connection counts as a stream. */
  readonly udp: number;
  /** UDP once traffic has been seen both ways: `nf_conntrack_udp_timeout_stream`. */
  readonly udpStream: number;
  readonly icmp: number;
  /** Protocols tracked by address only. */
  readonly generic: number;
}

export const DEFAULT_TIMEOUTS: ConntrackTimeouts = {
  tcpSynSent: 120,
  tcpSynRecv: 60,
  tcpEstablished: 432000,
  tcpFinWait: 120,
  tcpCloseWait: 60,
  tcpLastAck: 30,
  tcpTimeWait: 120,
  tcpClose: 10,
  tcpSynSent2: 120,
  tcpUnacknowledged: 300,
  udp: 30,
  udpStream: 120,
  icmp: 30,
  generic: 600,
};

/**
 * What a node running kube-proxy has: kube-proxy sets nf_conntrack_tcp_timeout_established
 * to its `conntrack.tcpEstablishedTimeout` (24h by default) and
 * nf_conntrack_tcp_timeout_close_wait to `conntrack.tcpCloseWaitTimeout` (1h) at start, and
 * leaves the rest as the kernel has them (its UDP settings default to "do not change").
 */
export const KUBE_PROXY_TIMEOUTS: ConntrackTimeouts = { ...DEFAULT_TIMEOUTS, tcpEstablished: 86400, tcpCloseWait: 3600 };

/**
 * Entries keep their expiry as an int32 count of milliseconds that wraps (see conntrack.ts),
 * so no timeout may come near 2^31 ms (24.8 days); the kernel's largest default is 5 days.
 */
export const MAX_TIMEOUT_SECONDS = 10 * 86400;

/** Timeouts with `overrides` applied; throws RangeError on a value that is not a whole number of seconds in range. */
export function resolveTimeouts(overrides: Partial<ConntrackTimeouts> = {}): ConntrackTimeouts {
  const resolved = { ...DEFAULT_TIMEOUTS, ...overrides };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_SECONDS) {
      throw new RangeError(`conntrack timeout ${name} must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}, got ${value}`);
    }
  }
  return resolved;
}

/** Milliseconds per TCP state, indexed by TcpState (NONE is never a resting state; it gets SYN_SENT's). */
export function tcpTimeoutsMs(t: ConntrackTimeouts): Int32Array {
  const ms = new Int32Array(10);
  ms[TcpState.None] = t.tcpSynSent * 1000;
  ms[TcpState.SynSent] = t.tcpSynSent * 1000;
  ms[TcpState.SynRecv] = t.tcpSynRecv * 1000;
  ms[TcpState.Established] = t.tcpEstablished * 1000;
  ms[TcpState.FinWait] = t.tcpFinWait * 1000;
  ms[TcpState.CloseWait] = t.tcpCloseWait * 1000;
  ms[TcpState.LastAck] = t.tcpLastAck * 1000;
  ms[TcpState.TimeWait] = t.tcpTimeWait * 1000;
  ms[TcpState.Close] = t.tcpClose * 1000;
  ms[TcpState.SynSent2] = t.tcpSynSent2 * 1000;
  return ms;
}
