/**
 * What an observer wants of a DNS message, read without allocating: the question (name,
 * type), and of a response its rcode, the IPv4 addresses it answers with, the types of its
 * answer records and their smallest TTL. The flow recorder reads pods' queries and the
 * answers they get through it, as Cilium's DNS proxy fills Hubble's L7 DNS record.
 *
 * Same defences as the responder's own parse (name.ts): every read is bounded by the
 * message's end, compression pointers only go backwards. A message whose header or
 * question is unreadable is refused (false); answers past a malformed record are simply
 * not read, since what was read before it is still true.
 */
import { DNS_HEADER_LEN, FLAG, HDR, RCODE_MASK, TYPE } from './constants.js';
import { NameReader, skipName } from './name.js';

/** Answer records kept per message: enough for a Service's endpoints in a flow line. */
export const SCAN_MAX_ANSWERS = 8;
/** The TTL reported when a response has no answer record: the largest uint32, as Cilium's proxy reports it. */
export const NO_ANSWER_TTL = 0xffffffff;

const RECORD_FIXED = 10;

export class DnsScan {
  id = 0;
  response = false;
  rcode = 0;
  qtype = 0;
  /** The question name, as sent (case kept). */
  readonly name = new NameReader();
  /** IPv4 addresses of the A records among the answers, int32, at most SCAN_MAX_ANSWERS. */
  readonly addresses = new Int32Array(SCAN_MAX_ANSWERS);
  addressCount = 0;
  /** Types of the answer records, in order, at most SCAN_MAX_ANSWERS. */
  readonly answerTypes = new Uint16Array(SCAN_MAX_ANSWERS);
  answerTypeCount = 0;
  /** The smallest TTL among the answers; NO_ANSWER_TTL without any. */
  ttl = NO_ANSWER_TTL;
}

function u16(msg: Uint8Array, at: number): number {
  return (msg[at] << 8) | msg[at + 1];
}

/** Reads `msg[start, start + length)` into `out`; false when no question can be read from it. */
export function scanDnsMessage(msg: Uint8Array, start: number, length: number, out: DnsScan): boolean {
  const end = start + length;
  out.addressCount = 0;
  out.answerTypeCount = 0;
  out.ttl = NO_ANSWER_TTL;
  if (length < DNS_HEADER_LEN || end > msg.length) return false;
  out.id = u16(msg, start + HDR.ID);
  const flags = u16(msg, start + HDR.FLAGS);
  out.response = (flags & FLAG.QR) !== 0;
  out.rcode = flags & RCODE_MASK;
  if (u16(msg, start + HDR.QDCOUNT) === 0) return false;
  if (out.name.read(msg, start, end, start + DNS_HEADER_LEN, false) !== 0) return false;
  let pos = out.name.end;
  if (pos + 4 > end) return false;
  out.qtype = u16(msg, pos);
  pos += 4;
  if (!out.response) return true;
  // A second question (RFC 9619 forbids it) would have to be skipped before the answers.
  for (let q = u16(msg, start + HDR.QDCOUNT) - 1; q > 0; q--) {
    pos = skipName(msg, start, end, pos);
    if (pos < 0 || pos + 4 > end) return true;
    pos += 4;
  }
  const answers = u16(msg, start + HDR.ANCOUNT);
  for (let a = 0; a < answers; a++) {
    pos = skipName(msg, start, end, pos);
    if (pos < 0 || pos + RECORD_FIXED > end) return true;
    const type = u16(msg, pos);
    const ttl = u16(msg, pos + 4) * 0x10000 + u16(msg, pos + 6);
    const rdLength = u16(msg, pos + 8);
    pos += RECORD_FIXED;
    if (pos + rdLength > end) return true;
    if (out.answerTypeCount < SCAN_MAX_ANSWERS) out.answerTypes[out.answerTypeCount++] = type;
    if (ttl < out.ttl) out.ttl = ttl;
    if (type === TYPE.A && rdLength === 4 && out.addressCount < SCAN_MAX_ANSWERS) {
      out.addresses[out.addressCount++] = (msg[pos] << 24) | (msg[pos + 1] << 16) | (msg[pos + 2] << 8) | msg[pos + 3];
    }
    pos += rdLength;
  }
  return true;
}
