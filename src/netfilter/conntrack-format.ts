/**
 * One connection as `conntrack -L` prints it (libnetfilter_conntrack's default output):
 *
 *   tcp      6 431999 ESTABLISHED src=10.244.1.3 dst=10.96.0.10 sport=40000 dport=80 \
 *     src=10.244.2.2 dst=10.244.1.3 sport=8080 dport=40000 [ASSURED] mark=0 use=1
 *
 * Protocol name padded to 8 and number, seconds left, the TCP state, the original tuple,
 * [UNREPLIED] while no reply has been seen, the reply tuple, [ASSURED], the mark and the
 * use count (always 1 here: nothing else holds references). With accounting, each tuple
 * is followed by `packets=N bytes=N`, as with `nf_conntrack_acct=1`. ICMP tuples print
 * type, code and identifier instead of ports; protocols podwire tracks by address alone
 * print as the kernel prints a protocol it has no tracker for: `unknown`, addresses only.
 */
import { formatIpv4 } from '../packet/addr.js';
import type { ConntrackCounters, ConntrackEntry, ConntrackTupleRecord } from './conntrack.js';
import { TCP_STATE_NAMES } from './conntrack-tcp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from './conntrack-tuple.js';

function protocolName(proto: number): string {
  switch (proto) {
    case IPPROTO_TCP:
      return 'tcp';
    case IPPROTO_UDP:
      return 'udp';
    case IPPROTO_ICMP:
      return 'icmp';
    default:
      return 'unknown';
  }
}

function formatTuple(proto: number, t: ConntrackTupleRecord): string {
  const addrs = `src=${formatIpv4(t.src)} dst=${formatIpv4(t.dst)} `;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) return `${addrs}sport=${t.sport} dport=${t.dport} `;
  if (proto === IPPROTO_ICMP) return `${addrs}type=${t.dport >>> 8} code=${t.dport & 0xff} id=${t.sport} `;
  return addrs;
}

function formatCounters(c: ConntrackCounters | undefined): string {
  return c === undefined ? '' : `packets=${c.packets} bytes=${c.bytes} `;
}

/**
 * `conntrack -L -o extended`: the layer-3 protocol's name (padded to 8) and number in
 * front of the line, as conntrack-tools prints them (`ipv4     2 tcp      6 ...`).
 */
export function extendedConntrackLine(line: string): string {
  return `ipv4     2 ${line}`;
}

export function formatConntrack(entry: ConntrackEntry): string {
  const { proto } = entry;
  let line = `${protocolName(proto).padEnd(8)} ${proto} ${entry.timeoutSeconds} `;
  if (entry.tcpState !== undefined) line += `${TCP_STATE_NAMES[entry.tcpState] ?? 'NONE'} `;
  line += formatTuple(proto, entry.original) + formatCounters(entry.counters?.original);
  if (!entry.seenReply) line += '[UNREPLIED] ';
  line += formatTuple(proto, entry.reply) + formatCounters(entry.counters?.reply);
  if (entry.assured) line += '[ASSURED] ';
  return `${line}mark=${entry.mark} use=1`;
}
