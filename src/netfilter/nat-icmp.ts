/**
 * NAT for ICMP errors RELATED to a connection, as the kernel's nf_nat_icmp_reply_translation
 * does it. An error (port unreachable, fragmentation needed, TTL exceeded) quotes the
 * datagram that caused it, as that datagram looked where it failed: after NAT. The error
 * travels the other way, in direction `dir` of the connection (which `Conntrack.lookup` of
 * the tuple `readPacketTuple` gives for an error reports), and must arrive looking like an
 * error about the packet its receiver actually sent:
 * - the quoted datagram becomes the other direction's tuple again (addresses, ports or
 *   echo identifier), with the quoted IP header checksum and the quoted transport checksum
 *   patched (TCP's only when its checksum field was quoted, as the kernel does);
 * - the outer IP header gets the addresses a reply to that datagram would carry;
 * - the ICMP checksum, which covers the quote, is patched word by word for every change,
 *   so that it equals a full recompute without summing the message again.
 *
 * Each half runs only if the connection has the NAT it undoes, as in the kernel: an error
 * from a router along the way keeps that router as its source, and only the destination
 * (say, the masqueraded client) is translated.
 *
 * A quote is truncated by nature, so it is read through offsets here (see
 * `quotedHeaderLength`), not through an Ipv4View, which would refuse its length field.
 */
import { readU16, writeU16, writeU32 } from '../packet/bytes.js';
import { checksumAdjust16, checksumAdjust32 } from '../packet/checksum.js';
import { ICMP_OFFSET, type IcmpView } from '../packet/icmp.js';
import { IPPROTO, IPV4_OFFSET, type Ipv4View } from '../packet/ipv4.js';
import { TCP_OFFSET } from '../packet/tcp.js';
import { UDP_OFFSET } from '../packet/udp.js';
import { NatKind, type Conntrack } from './conntrack.js';
import { hasPorts, quotedHeaderLength, readI32 } from './conntrack-tuple.js';
import { NatManip, setIpDst, setIpSrc, udpChecksumAdjust16, udpChecksumAdjust32 } from './nat.js';

// Local consts of src/packet's constants, which V8 folds into per-packet code (see IPPROTO in ipv4.ts).
const IP_SRC = IPV4_OFFSET.SRC_ADDR;
const IP_DST = IPV4_OFFSET.DST_ADDR;
const IP_CHECKSUM = IPV4_OFFSET.CHECKSUM;
const IP_PROTOCOL = IPV4_OFFSET.PROTOCOL;
const UDP_CHECKSUM = UDP_OFFSET.CHECKSUM;
const TCP_CHECKSUM = TCP_OFFSET.CHECKSUM;
const ICMP_CHECKSUM = ICMP_OFFSET.CHECKSUM;
const ICMP_IDENTIFIER = ICMP_OFFSET.IDENTIFIER;
const IPPROTO_ICMP = IPPROTO.ICMP;
const IPPROTO_TCP = IPPROTO.TCP;
const IPPROTO_UDP = IPPROTO.UDP;

// Addresses in the outer IPv4 header are read as int32 (see readI32). The quoted datagram's
// fields are found by the packet modules' offsets from the quoted headers' starts. A TCP or
// UDP quote's ports sit at the same offsets in both protocols.
const Q_SRC_PORT = UDP_OFFSET.SRC_PORT;
const Q_DST_PORT = UDP_OFFSET.DST_PORT;

/**
 * Translates an ICMP error of connection `ref` in place. `ip` and `icmp` are the checked
 * outer views (`icmp` over the whole ICMP message). Returns true when anything changed;
 * false too when the quote is unusable, which cannot happen for an error whose related
 * connection was found through `readPacketTuple`. Allocates nothing.
 */
export function natIcmpError(ct: Conntrack, ref: number, ip: Ipv4View, icmp: IcmpView, manip: NatManip = NatManip.Both): boolean {
  const id = ref >>> 1;
  const dir = ref & 1;
  const other = dir ^ 1;
  const buf = icmp.buf;
  const inner = icmp.payloadOffset;
  const headerLength = quotedHeaderLength(buf, inner, icmp.payloadLength);
  if (headerLength < 0) return false;
  const l4 = inner + headerLength;
  const l4Length = icmp.payloadLength - headerLength;
  const proto = buf[inner + IP_PROTOCOL];

  const nat = ct.natKind(id);
  // The NAT each half undoes (or, for an error in the original direction, applies).
  const destinationNat = dir === 0 ? NatKind.Dnat : NatKind.Snat;
  const sourceNat = dir === 0 ? NatKind.Snat : NatKind.Dnat;
  let changed = false;

  if ((manip & NatManip.Destination) !== 0 && (nat & destinationNat) !== 0) {
    // The error goes to whoever sent the quoted datagram, which is made to show it as sent.
    const sender = ct.tupleSrc(id, other);
    const to = readI32(ip.buf, ip.offset + IP_DST);
    if (to !== sender) {
      setIpDst(ip, to, sender);
      changed = true;
    }
    changed = setQuotedAddress(icmp, inner, IP_SRC, sender, l4, l4Length, proto) || changed;
    changed = setQuotedPort(icmp, l4, l4Length, proto, Q_SRC_PORT, ct.tupleSport(id, other)) || changed;
    changed = setQuotedIdentifier(icmp, l4, proto, ct.tupleSport(id, other)) || changed;
  }
  if ((manip & NatManip.Source) !== 0 && (nat & sourceNat) !== 0) {
    // It comes from where the quoted datagram was addressed.
    const addressee = ct.tupleDst(id, other);
    const from = readI32(ip.buf, ip.offset + IP_SRC);
    if (from !== addressee) {
      setIpSrc(ip, from, addressee);
      changed = true;
    }
    changed = setQuotedAddress(icmp, inner, IP_DST, addressee, l4, l4Length, proto) || changed;
    changed = setQuotedPort(icmp, l4, l4Length, proto, Q_DST_PORT, ct.tupleDport(id, other)) || changed;
    changed = setQuotedIdentifier(icmp, l4, proto, ct.tupleSport(id, other)) || changed;
  }
  return changed;
}

// The helpers below take the quote's layout as plain numbers (no record per packet):
// `inner` is the offset of the quoted IP header in the buffer, `l4` that of the quoted
// transport header, `l4Length` how many of its bytes are there (8 or more), `proto` its
// protocol.

/** Writes a 16-bit word inside the ICMP message and patches the ICMP checksum for it. */
function writeQuoted16(icmp: IcmpView, at: number, value: number): void {
  const old = readU16(icmp.buf, at);
  if (old === value) return;
  writeU16(icmp.buf, at, value);
  icmp.checksum = checksumAdjust16(icmp.checksum, old, value);
}

function setQuotedAddress(icmp: IcmpView, inner: number, field: number, addr: number, l4: number, l4Length: number, proto: number): boolean {
  const buf = icmp.buf;
  const at = inner + field;
  const old = readI32(buf, at);
  if (old === addr) return false;
  writeU32(buf, at, addr);
  icmp.checksum = checksumAdjust32(icmp.checksum, old, addr);
  const ipChecksumAt = inner + IP_CHECKSUM;
  writeQuoted16(icmp, ipChecksumAt, checksumAdjust32(readU16(buf, ipChecksumAt), old, addr));
  // The transport checksum covers the address through its pseudo-header.
  if (proto === IPPROTO_TCP && l4Length >= TCP_CHECKSUM + 2) {
    const at16 = l4 + TCP_CHECKSUM;
    writeQuoted16(icmp, at16, checksumAdjust32(readU16(buf, at16), old, addr));
  } else if (proto === IPPROTO_UDP) {
    const at16 = l4 + UDP_CHECKSUM;
    writeQuoted16(icmp, at16, udpChecksumAdjust32(readU16(buf, at16), old, addr));
  }
  return true;
}

function setQuotedPort(icmp: IcmpView, l4: number, l4Length: number, proto: number, field: number, port: number): boolean {
  if (!hasPorts(proto)) return false;
  const buf = icmp.buf;
  const at = l4 + field;
  const old = readU16(buf, at);
  if (old === port) return false;
  writeQuoted16(icmp, at, port);
  if (proto === IPPROTO_TCP && l4Length >= TCP_CHECKSUM + 2) {
    const at16 = l4 + TCP_CHECKSUM;
    writeQuoted16(icmp, at16, checksumAdjust16(readU16(buf, at16), old, port));
  } else if (proto === IPPROTO_UDP) {
    const at16 = l4 + UDP_CHECKSUM;
    writeQuoted16(icmp, at16, udpChecksumAdjust16(readU16(buf, at16), old, port));
  }
  return true;
}

/** A quoted echo (or other query) carries the identifier SNAT may have changed. */
function setQuotedIdentifier(icmp: IcmpView, l4: number, proto: number, identifier: number): boolean {
  if (proto !== IPPROTO_ICMP) return false;
  const buf = icmp.buf;
  const at = l4 + ICMP_IDENTIFIER;
  const old = readU16(buf, at);
  if (old === identifier) return false;
  writeQuoted16(icmp, at, identifier);
  const sumAt = l4 + ICMP_CHECKSUM;
  writeQuoted16(icmp, sumAt, checksumAdjust16(readU16(buf, sumAt), old, identifier));
  return true;
}
