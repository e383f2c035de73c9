/**
 * DNS numbers (RFC 1035, 2782, 6891, 3596): header layout, types, classes, opcodes,
 * response codes. Enumerations stay open, as in src/packet: a type or rcode podwire has
 * no name for is a number carried through, never a reason to throw.
 */

export const DNS_HEADER_LEN = 12;
/** A name on the wire is at most 255 bytes, root label included (RFC 1035 §2.3.4). */
export const MAX_NAME_LEN = 255;
export const MAX_LABEL_LEN = 63;
/** Without EDNS0 a UDP answer is at most 512 bytes (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/**
 * What podwire advertises in its OPT record and asks upstreams for: the DNS flag day 2020
 * value, which fits in every common path MTU without IP fragmentation.
 */
export const ADVERTISED_UDP_SIZE = 1232;
/** A DNS message over TCP is framed by a 16-bit length. */
export const MAX_MESSAGE_LEN = 65535;

/** Header field offsets. */
export const HDR = {
  ID: 0,
  FLAGS: 2,
  QDCOUNT: 4,
  ANCOUNT: 6,
  NSCOUNT: 8,
  ARCOUNT: 10,
} as const;

/** Bits of the 16-bit flags word. */
export const FLAG = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  /** The one reserved bit left (RFC 6840 took AD and CD). */
  Z: 0x0040,
  AD: 0x0020,
  CD: 0x0010,
} as const;

export const OPCODE_SHIFT = 11;
export const OPCODE_MASK = 0xf;
export const RCODE_MASK = 0xf;

export const OPCODE = {
  QUERY: 0,
  IQUERY: 1,
  STATUS: 2,
  NOTIFY: 4,
  UPDATE: 5,
} as const;

/** Response codes; those above 15 travel in the OPT record's extended-rcode byte. */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  HTTPS: 65,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const CLASS = {
  IN: 1,
  CH: 3,
  HS: 4,
  NONE: 254,
  ANY: 255,
} as const;

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([name, value]) => [value, name]));
const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([name, value]) => [value, name]));

/** `A`, `SRV`, or RFC 3597's `TYPE65280` for a type without a mnemonic here. */
export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

export function rcodeName(rcode: number): string {
  return RCODE_NAMES.get(rcode) ?? `RCODE${rcode}`;
}

/** Query types counted by name in the statistics; every other type is counted as `other`. */
export const COUNTED_TYPES: readonly number[] = [
  TYPE.A,
  TYPE.AAAA,
  TYPE.SRV,
  TYPE.PTR,
  TYPE.CNAME,
  TYPE.TXT,
  TYPE.SOA,
  TYPE.NS,
  TYPE.MX,
  TYPE.HTTPS,
  TYPE.ANY,
];
