/**
 * A connection table as a busy node holds it, for the tests and measurements of tools that
 * read the whole table: `count` connections from 16 pods to one server, a quarter UDP
 * (port 53), most TCP (port 80, SYN_SENT) and every eighth an ICMP echo. Connection i
 * comes from `fillSource(i)` with source port (ICMP: identifier) `fillSourcePort(i)`.
 */
import { Conntrack } from '../../src/netfilter/conntrack.js';
import { FlowTuple, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../src/netfilter/conntrack-tuple.js';
import { TCP_SYN } from '../../src/packet/tcp.js';

export const FILL_SERVER = 0x0af40202; // 10.244.2.2
const FILL_SOURCES = 0x0af40110; // 10.244.1.16 and up
const ECHO_REQUEST = 8 << 8;

export function fillSource(i: number): number {
  return FILL_SOURCES + (i >>> 14);
}

export function fillSourcePort(i: number): number {
  return 1024 + (i & 0x3fff);
}

export function fillProtocol(i: number): number {
  return i % 8 === 0 ? IPPROTO_ICMP : i % 4 === 1 ? IPPROTO_UDP : IPPROTO_TCP;
}

export function fillConntrack(ct: Conntrack, count: number, now: number): void {
  if (count > 16 << 14) throw new RangeError(`fillConntrack makes at most ${16 << 14} distinct connections`);
  const orig = new FlowTuple();
  const reply = new FlowTuple();
  for (let i = 0; i < count; i++) {
    const proto = fillProtocol(i);
    const dport = proto === IPPROTO_ICMP ? ECHO_REQUEST : proto === IPPROTO_UDP ? 53 : 80;
    orig.set(fillSource(i), FILL_SERVER, fillSourcePort(i), dport, proto);
    reply.setReplyOf(orig);
    const ref = ct.create(orig, reply, proto === IPPROTO_TCP ? TCP_SYN : 0, 60, now);
    if (ref < 0) throw new Error(`fillConntrack: create ${i} failed (${ref})`);
  }
}
