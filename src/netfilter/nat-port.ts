/**
 * NAT decisions for a new connection, made on its reply tuple before `Conntrack.create`:
 * DNAT says where replies come from (the endpoint a service chose), SNAT where they go
 * (the node's address and a port on it). Start from `reply.setReplyOf(orig)`.
 *
 * SNAT needs a port that makes the reply tuple unique, or two connections would share
 * one reply key and replies could not be told apart. `chooseSnatPort` does what the
 * kernel's nf_nat_l4proto_unique_tuple does: keep the original port if that tuple is free
 * (unless `randomFully`, as with `MASQUERADE --random-fully`, which kube-proxy uses when it
 * can), otherwise probe ports from a random offset within the range, first up to 128 of
 * them, then rounds of half as many from new random offsets. For ICMP the echo identifier
 * plays the port. Allocation-free; randomness is passed in.
 */
import type { Conntrack } from './conntrack.js';
import { FlowTuple, hasPorts, IPPROTO_ICMP } from './conntrack-tuple.js';

/** A uniformly distributed number in [0, 1), like `Math.random` (which fits). */
export type RandomSource = () => number;

/** An inclusive range of ports (or ICMP identifiers). */
export interface PortRange {
  readonly min: number;
  readonly max: number;
}

/**
 * The kernel's default source-port ranges for MASQUERADE/SNAT without `--to-ports`: a
 * privileged port stays privileged, as some servers demand, the rest go anywhere above.
 */
export const SNAT_LOW_PORTS: PortRange = { min: 1, max: 511 };
export const SNAT_RESERVED_PORTS: PortRange = { min: 600, max: 1023 };
export const SNAT_EPHEMERAL_PORTS: PortRange = { min: 1024, max: 65535 };
/** ICMP identifiers: the whole space. */
export const SNAT_ICMP_IDS: PortRange = { min: 0, max: 65535 };

/** The range `chooseSnatPort` should draw from for a connection whose original source port (or ICMP id) is `port`. */
export function defaultSnatRange(proto: number, port: number): PortRange {
  if (proto === IPPROTO_ICMP) return SNAT_ICMP_IDS;
  if (port < 512) return SNAT_LOW_PORTS;
  if (port < 1024) return SNAT_RESERVED_PORTS;
  return SNAT_EPHEMERAL_PORTS;
}

/** First round of probes; the kernel's cap. */
const MAX_ATTEMPTS = 128;
/** Rounds stop once they would be shorter than this. */
const MIN_ATTEMPTS = 16;

/** DNAT: replies will come from `addr:port` (for ICMP, from `addr`; `port` is ignored). */
export function setReplySource(reply: FlowTuple, addr: number, port: number): void {
  reply.src = addr | 0;
  if (hasPorts(reply.proto)) reply.sport = port & 0xffff;
}

/** SNAT: replies will go to `addr:port` (for ICMP the port is the identifier, in the sport slot). */
export function setReplyDestination(reply: FlowTuple, addr: number, port: number): void {
  reply.dst = addr | 0;
  setSnatPort(reply, port);
}

/** The port (ICMP: identifier) SNAT controls in a reply tuple. */
export function snatPortOf(reply: FlowTuple): number {
  if (reply.proto === IPPROTO_ICMP) return reply.sport;
  return hasPorts(reply.proto) ? reply.dport : 0;
}

function setSnatPort(reply: FlowTuple, port: number): void {
  if (reply.proto === IPPROTO_ICMP) reply.sport = port & 0xffff;
  else if (hasPorts(reply.proto)) reply.dport = port & 0xffff;
}

/**
 * SNAT to `addr`: sets `reply.dst` and picks the port, writing it into `reply`. The
 * original port (the one `reply` holds on entry) is kept when it lies in `range` and the
 * tuple is free, unless `randomFully`. Returns false, leaving the original port in
 * `reply`, when no free port was found: the kernel drops such a packet.
 * Protocols without ports have nothing to vary: the address alone must be free.
 */
export function chooseSnatPort(
  ct: Conntrack,
  reply: FlowTuple,
  addr: number,
  range: PortRange,
  random: RandomSource,
  now: number,
  randomFully = false,
): boolean {
  reply.dst = addr | 0;
  const original = snatPortOf(reply);
  if (!hasPorts(reply.proto) && reply.proto !== IPPROTO_ICMP) return !ct.isTaken(reply, now);
  const size = range.max - range.min + 1;
  if (!randomFully && original >= range.min && original <= range.max && !ct.isTaken(reply, now)) return true;

  let attempts = Math.min(size, MAX_ATTEMPTS);
  for (;;) {
    let offset = Math.floor(random() * size) % size;
    for (let i = 0; i < attempts; i++) {
      setSnatPort(reply, range.min + offset);
      if (!ct.isTaken(reply, now)) return true;
      if (++offset === size) offset = 0;
    }
    if (attempts >= size || attempts < MIN_ATTEMPTS) break;
    attempts >>>= 1;
  }
  setSnatPort(reply, original);
  return false;
}
