/**
 * NetworkPolicy `ports` compiled into port sets: what a rule allows by protocol and destination
 * port, checked without allocating.
 *
 * A `NetworkPolicyPort` is a protocol and, optionally, a port: a number, a number range
 * (`endPort`), or the name of a container port. No port means every port of the protocol. A
 * name is resolved against the pod that receives the connection, as Kubernetes (and the
 * upstream conformance tests) define it, and a name matches only a container port with that
 * name *and* the policy port's protocol:
 * - ingress: the receiver is the selected pod itself, known at compile time, so the name becomes
 *   a plain number (or nothing, if the pod declares no such port);
 * - egress: the receiver is whatever the connection goes to, so the name stays a name and is
 *   looked up per check, by the destination's pod number, in a column of that port's numbers.
 *   A destination that is not a pod, or a pod without that name, never matches it.
 *
 * An empty `ports` list (every port, every protocol, ICMP included) is not a port set: the
 * compiler gives it the id `ANY_PORT` and never asks here.
 */
import type { NetworkPolicyPort, Pod, Protocol } from '../cluster/model.js';
import { IPPROTO } from '../packet/ipv4.js';

/** IANA numbers of the protocols NetworkPolicy knows; checks take the IPv4 header's number. */
export const PROTOCOL_NUMBER: Readonly<Record<Protocol, number>> = { TCP: IPPROTO.TCP, UDP: IPPROTO.UDP, SCTP: IPPROTO.SCTP };

const MAX_PORT = 65535;

/** The protocol's name for messages: TCP, UDP, SCTP, ICMP or the number. */
export function protocolName(protocol: number): string {
  if (protocol === IPPROTO.ICMP) return 'ICMP';
  for (const [name, n] of Object.entries(PROTOCOL_NUMBER)) if (n === protocol) return name;
  return `protocol ${protocol}`;
}

/** A port set before it is built: plain ranges, and the names still to resolve per check. */
export interface PortSpec {
  /** [protocol number, first port, last port], both ends inclusive. */
  readonly ranges: readonly (readonly [number, number, number])[];
  readonly named: readonly { readonly protocol: number; readonly name: string }[];
}

/** An ingress rule's ports for one selected pod: names resolved against that pod's containers. */
export function ingressPortSpec(ports: readonly NetworkPolicyPort[], receiver: Pod): PortSpec {
  const ranges: [number, number, number][] = [];
  for (const p of ports) {
    const protocol = PROTOCOL_NUMBER[p.protocol];
    if (typeof p.port === 'string') {
      const number = containerPortNumber(receiver, p.port, p.protocol);
      if (number !== undefined) ranges.push([protocol, number, number]);
    } else {
      ranges.push(numericRange(p, protocol));
    }
  }
  return { ranges: normalizeRanges(ranges), named: [] };
}

/** An egress rule's ports: the receiver is not known until a packet names it. */
export function egressPortSpec(ports: readonly NetworkPolicyPort[]): PortSpec {
  const ranges: [number, number, number][] = [];
  const named = new Map<string, { protocol: number; name: string }>();
  for (const p of ports) {
    const protocol = PROTOCOL_NUMBER[p.protocol];
    if (typeof p.port === 'string') named.set(`${protocol}/${p.port}`, { protocol, name: p.port });
    else ranges.push(numericRange(p, protocol));
  }
  return { ranges: normalizeRanges(ranges), named: [...named.values()].sort((a, b) => a.protocol - b.protocol || a.name.localeCompare(b.name)) };
}

/** Equal specs give equal keys, so rules that allow the same ports share one set. */
export function portSpecKey(spec: PortSpec): string {
  return [...spec.ranges.map((r) => r.join(':')), ...spec.named.map((n) => `${n.protocol}/${n.name}`)].join(',');
}

function numericRange(p: NetworkPolicyPort, protocol: number): [number, number, number] {
  if (p.port === undefined) return [protocol, 0, MAX_PORT];
  const first = p.port as number;
  return [protocol, first, p.endPort ?? first];
}

/** Sorted by protocol and first port, overlapping or touching ranges merged: fewer compares per check. */
function normalizeRanges(ranges: [number, number, number][]): [number, number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last[0] === r[0] && r[1] <= last[2] + 1) last[2] = Math.max(last[2], r[2]);
    else out.push([r[0], r[1], r[2]]);
  }
  return out;
}

function containerPortNumber(pod: Pod, name: string, protocol: Protocol): number | undefined {
  for (const c of pod.containers) {
    for (const p of c.ports) if (p.name === name && p.protocol === protocol) return p.containerPort;
  }
  return undefined;
}

/** In a NamedPortIndex column: the pod declares no such port. */
const NO_SUCH_PORT = -1;

/**
 * For every (protocol, port name) some pod declares: a column over pod numbers (positions in
 * `cluster.pods`) holding that pod's number for the port, or NO_SUCH_PORT. Port names are
 * unique within a pod (the API server insists), so each pod has at most one.
 */
export class NamedPortIndex {
  private readonly columns: ReadonlyMap<string, Int32Array>;
  private readonly empty: Int32Array;

  constructor(pods: readonly Pod[]) {
    const columns = new Map<string, Int32Array>();
    pods.forEach((pod, n) => {
      for (const c of pod.containers) {
        for (const p of c.ports) {
          if (p.name === undefined) continue;
          const key = `${PROTOCOL_NUMBER[p.protocol]}/${p.name}`;
          let column = columns.get(key);
          if (column === undefined) columns.set(key, (column = new Int32Array(pods.length).fill(NO_SUCH_PORT)));
          column[n] = p.containerPort;
        }
      }
    });
    this.columns = columns;
    this.empty = new Int32Array(pods.length).fill(NO_SUCH_PORT);
  }

  /** Pod number → its port called `name` on `protocol`, NO_SUCH_PORT where it has none. */
  column(protocol: number, name: string): Int32Array {
    return this.columns.get(`${protocol}/${name}`) ?? this.empty;
  }
}

/** A named egress port being resolved: the destination's number for it, per destination pod. */
class NamedPortLookup {
  constructor(
    readonly protocol: number,
    readonly name: string,
    readonly numbers: Int32Array,
  ) {}
}

export class PortSet {
  /** [protocol, first, last] triples, flat, sorted, non-overlapping. */
  private readonly ranges: Int32Array;
  private readonly named: readonly NamedPortLookup[];

  constructor(spec: PortSpec, index: NamedPortIndex) {
    this.ranges = Int32Array.from(spec.ranges.flat());
    this.named = spec.named.map((n) => new NamedPortLookup(n.protocol, n.name, index.column(n.protocol, n.name)));
  }

  /**
   * Whether a connection on `protocol`/`port` to the pod numbered `receiver` (NOT_A_POD when
   * the destination is not a pod) is within the set.
   */
  matches(receiver: number, protocol: number, port: number): boolean {
    const ranges = this.ranges;
    for (let i = 0; i < ranges.length; i += 3) {
      if (ranges[i] === protocol && port >= ranges[i + 1] && port <= ranges[i + 2]) return true;
    }
    if (receiver < 0) return false;
    const named = this.named;
    for (let i = 0; i < named.length; i++) {
      const n = named[i];
      if (n.protocol === protocol && n.numbers[receiver] === port) return true;
    }
    return false;
  }

  /** Number of ranges and named lookups: the cost of `matches`. */
  get entryCount(): number {
    return this.ranges.length / 3 + this.named.length;
  }

  /** As policy YAML would say it: `TCP 80`, `UDP 5000-5010`, `TCP http` (for explanations). */
  describe(): string {
    const parts: string[] = [];
    for (let i = 0; i < this.ranges.length; i += 3) {
      const [protocol, first, last] = [this.ranges[i], this.ranges[i + 1], this.ranges[i + 2]];
      const span = first === 0 && last === MAX_PORT ? 'any port' : first === last ? `${first}` : `${first}-${last}`;
      parts.push(`${protocolName(protocol)} ${span}`);
    }
    for (const n of this.named) parts.push(`${protocolName(n.protocol)} ${n.name}`);
    return parts.length === 0 ? 'no port (named ports not declared by the pod)' : parts.join(', ');
  }
}
