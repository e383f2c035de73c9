/**
 * Which connections a `conntrack -L` listing shows: the filters of conntrack-tools
 * (`-p`, `-s`, `-d`, `--sport`, `--dport`), all of them on the original tuple as the real
 * tool applies them. A filter is judged from the table's own rows through its accessors,
 * so a listing skips what it does not show without building an entry for it.
 *
 * Addresses are uint32; a field left out matches everything. As with conntrack-tools,
 * ports only mean something with `-p tcp` or `-p udp` (`conntrackFilterProblem` says so):
 * ICMP keeps its identifier and type in the port slots, and a `--dport 2048` must not
 * quietly match echo requests.
 */
import { CtDir, type Conntrack } from './conntrack.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from './conntrack-tuple.js';

export interface ConntrackFilter {
  /** IP protocol number: 6, 17 or 1. */
  readonly proto?: number;
  readonly src?: number;
  readonly dst?: number;
  readonly sport?: number;
  readonly dport?: number;
}

/** The protocols `-p` takes, by the names conntrack-tools gives them. */
export const CONNTRACK_PROTOCOLS: Readonly<Record<string, number>> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, icmp: IPPROTO_ICMP };

function isUint(value: number | undefined, max: number): boolean {
  return value === undefined || (Number.isInteger(value) && value >= 0 && value <= max);
}

/** Why `filter` cannot be applied, or undefined when it can. */
export function conntrackFilterProblem(filter: ConntrackFilter): string | undefined {
  const { proto } = filter;
  if (proto !== undefined && !Object.values(CONNTRACK_PROTOCOLS).includes(proto)) return `protocol ${proto}: one of tcp, udp, icmp`;
  if (!isUint(filter.src, 0xffffffff)) return `source ${filter.src}: not an IPv4 address`;
  if (!isUint(filter.dst, 0xffffffff)) return `destination ${filter.dst}: not an IPv4 address`;
  if (!isUint(filter.sport, 0xffff)) return `source port ${filter.sport}: not a port (0-65535)`;
  if (!isUint(filter.dport, 0xffff)) return `destination port ${filter.dport}: not a port (0-65535)`;
  if ((filter.sport !== undefined || filter.dport !== undefined) && proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) {
    return 'ports need a protocol with ports: -p tcp or -p udp';
  }
  return undefined;
}

/** Whether row `id` passes `filter`. Reads a row that may be free: the caller still checks liveness. */
export function matchesConntrackFilter(ct: Conntrack, id: number, filter: ConntrackFilter): boolean {
  if (filter.proto !== undefined && ct.protocol(id) !== filter.proto) return false;
  if (filter.src !== undefined && ct.tupleSrc(id, CtDir.Original) >>> 0 !== filter.src) return false;
  if (filter.dst !== undefined && ct.tupleDst(id, CtDir.Original) >>> 0 !== filter.dst) return false;
  if (filter.sport !== undefined && ct.tupleSport(id, CtDir.Original) !== filter.sport) return false;
  if (filter.dport !== undefined && ct.tupleDport(id, CtDir.Original) !== filter.dport) return false;
  return true;
}
