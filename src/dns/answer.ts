/**
 * Authoritative answers from the zone: the kubernetes plugin's `ServeDNS`. Given a parsed
 * query it decides whether the name is the zone's (the cluster domain, or a reverse name
 * inside the pod and service CIDRs or above a known address) and, if so, writes the whole
 * response body: header, question, answer, authority (the SOA of negative answers) and
 * additional sections. The responder adds the OPT record and fits the size.
 *
 * The contract with the responder, like CoreDNS's "who writes the reply": `answer` returns
 * `NotOurs` without writing anything (the query goes on to the forwarder), `Answered` when
 * the message is written, and `Chase` when an ExternalName led outside the zone: the CNAME
 * records are written, `chaseTarget` names what the forwarder must resolve next.
 */
import { DNS_HEADER_LEN, FLAG, RCODE, TYPE } from './constants.js';
import { QNAME, writeA, writeCname, writeNs, writePtr, writeSoa, writeSrvInQuestionCase, writeTxt, type Owner } from './builders.js';
import { EMPTY_NON_TERMINAL, lookup, NO_SUCH_NAME, type LookupResult } from './lookup.js';
import type { Query } from './query.js';
import { parseRequest, relativeLabels } from './request.js';
import { Section, type MessageWriter } from './writer.js';
import { DNS_SCHEMA_VERSION, DNS_SCHEMA_VERSION_TTL, hasReverse, inReverseAuthority, reverseNames, reversePrefixKey, soaFor, srvWeight, type Soa, type Zone, type ZoneRecord } from './zone.js';

export const ZoneOutcome = { NotOurs: 0, Answered: 1, Chase: 2 } as const;
export type ZoneOutcome = (typeof ZoneOutcome)[keyof typeof ZoneOutcome];

/** `in-addr.arpa.` on the wire. */
const IN_ADDR_ARPA = Uint8Array.of(7, 0x69, 0x6e, 0x2d, 0x61, 0x64, 0x64, 0x72, 4, 0x61, 0x72, 0x70, 0x61, 0);
const REVERSE_APEX = 'in-addr.arpa';
/** Longest name below the apex the Kubernetes schema has: `_port._proto.service.namespace.svc`. */
const MAX_RELATIVE_LABELS = 5;
/** CoreDNS follows at most 8 CNAMEs inside its zone. */
const MAX_CHASE = 8;
const MAX_LABELS = 128;
/** SRV answers with more records than this give the rest of their glue a compressed owner (the zone's case). */
const MAX_SRV_TARGETS = 1024;

const Place = { None: 0, Zone: 1, Reverse: 2 } as const;
type Place = (typeof Place)[keyof typeof Place];

export class ZoneResponder {
  /** The rcode of the message written by the last `answer`. */
  rcode = 0;
  /** After `Chase`: the name outside the zone that the last CNAME points to. */
  chaseTarget = '';
  private zoneSoa: Soa;
  private reverseSoa: Soa;
  private readonly labelStarts = new Int16Array(MAX_LABELS + 1);
  private labelCount = 0;
  private readonly labels: string[] = [];
  /** Labels in the cluster domain (2 for cluster.local). */
  private zoneLabels: number;
  /** Per record of an SRV answer: where its target was written (writeServices), -1 when it was not. */
  private readonly targetAt = new Int32Array(MAX_SRV_TARGETS);

  constructor(private zone: Zone) {
    this.zoneSoa = soaFor(zone, zone.domain);
    this.reverseSoa = soaFor(zone, REVERSE_APEX);
    this.zoneLabels = labelCount(zone.domainWire);
  }

  get currentZone(): Zone {
    return this.zone;
  }

  setZone(zone: Zone): void {
    this.zone = zone;
    this.zoneSoa = soaFor(zone, zone.domain);
    this.reverseSoa = soaFor(zone, REVERSE_APEX);
    this.zoneLabels = labelCount(zone.domainWire);
  }

  /** Writes the answer to `q` (read from `msg`) into `w`, or returns `NotOurs` having written nothing. */
  answer(msg: Uint8Array, q: Query, w: MessageWriter): ZoneOutcome {
    const place = this.place(q);
    if (place === Place.None) return ZoneOutcome.NotOurs;
    this.rcode = RCODE.NOERROR;
    // Authoritative, and never RA: the kubernetes plugin answers its zone without recursing,
    // so dig on a real node warns "recursion requested but not available".
    w.header(q.id, FLAG.QR | FLAG.AA | (q.flags & (FLAG.RD | FLAG.CD)), 1);
    w.question(msg, q.nameOffset, q.name.length, q.qtype, q.qclass);
    w.startSection(Section.Answer);
    const outcome = place === Place.Zone ? this.answerZone(q, w) : this.answerReverse(q, w);
    if (outcome === ZoneOutcome.Answered) w.startSection(Section.Additional);
    if (this.rcode !== RCODE.NOERROR) w.setFlags(this.rcode);
    return outcome;
  }

  /** Splits the question name into label starts and says where it belongs. */
  private place(q: Query): Place {
    const name = q.name.bytes;
    let n = 0;
    for (let p = 0; name[p] !== 0 && n < MAX_LABELS; p += name[p] + 1) this.labelStarts[n++] = p;
    this.labelCount = n;
    this.labelStarts[n] = q.name.length - 1;
    if (this.endsWith(q, this.zone.domainWire)) return Place.Zone;
    if (this.endsWith(q, IN_ADDR_ARPA) && this.reverseIsOurs(q)) return Place.Reverse;
    return Place.None;
  }

  /**
   * Whether the question name ends with the wire name `suffix` at a label boundary. Both are
   * lower case: parseQuery folded the question, zone names are lower case.
   */
  private endsWith(q: Query, suffix: Uint8Array): boolean {
    const at = q.name.length - suffix.length;
    if (at < 0) return false;
    let boundary = false;
    for (let i = 0; i <= this.labelCount && !boundary; i++) boundary = this.labelStarts[i] === at;
    if (!boundary) return false;
    const name = q.name.bytes;
    for (let i = 0; i < suffix.length; i++) if (name[at + i] !== suffix[i]) return false;
    return true;
  }

  /** Labels below a suffix of `suffixLabels` labels, as strings (at most MAX_RELATIVE_LABELS + 1 are built). */
  private relative(q: Query, suffixLabels: number): number {
    const count = this.labelCount - suffixLabels;
    const built = Math.min(count, MAX_RELATIVE_LABELS + 1);
    const name = q.name.bytes;
    this.labels.length = built;
    for (let i = 0; i < built; i++) {
      const start = this.labelStarts[i];
      let label = '';
      for (let j = 1; j <= name[start]; j++) label += String.fromCharCode(name[start + j]);
      this.labels[i] = label;
    }
    return count;
  }

  private answerZone(q: Query, w: MessageWriter): ZoneOutcome {
    const zone = this.zone;
    const count = this.relative(q, this.zoneLabels);
    if (count > MAX_RELATIVE_LABELS) return this.negative(w, RCODE.NXDOMAIN, this.zoneSoa);
    const labels = this.labels;
    const qtype = q.qtype;
    // Records only the apex and the plugin's own names hold.
    if (count === 0 && qtype === TYPE.SOA) {
      writeSoa(w, this.zoneSoa);
      return ZoneOutcome.Answered;
    }
    if (count === 0 && qtype === TYPE.NS) {
      // The DNS service's name and address, as CoreDNS finds itself among its Service's endpoints.
      writeNs(w, QNAME, zone.ttl, zone.nameserver);
      w.startSection(Section.Additional);
      writeA(w, zone.nameserver, zone.ttl, zone.dnsIP);
      return ZoneOutcome.Answered;
    }
    if (count === 1 && labels[0] === 'dns-version' && qtype === TYPE.TXT) {
      writeTxt(w, QNAME, DNS_SCHEMA_VERSION_TTL, DNS_SCHEMA_VERSION);
      return ZoneOutcome.Answered;
    }
    return this.emit(w, QNAME, resolveLabels(zone, labels), qtype, 0);
  }

  /**
   * Writes the records of one name for `qtype`, following an ExternalName's CNAME inside the
   * zone. `owner` is the name the records belong to (QNAME, or a CNAME target).
   */
  private emit(w: MessageWriter, owner: Owner, result: LookupResult, qtype: number, depth: number): ZoneOutcome {
    const zone = this.zone;
    if (!result.exists) return this.negative(w, RCODE.NXDOMAIN, this.zoneSoa);
    const records = result.records;
    if (records.length > 0 && records[0].addr < 0) {
      const target = records[0].target;
      writeCname(w, owner, zone.ttl, target);
      if (qtype === TYPE.CNAME || qtype === TYPE.ANY) return ZoneOutcome.Answered;
      // RFC 1034 §3.6.2: the server restarts the query at the alias's target.
      const labels = relativeLabels(target, zone.domain);
      if (labels === undefined) {
        this.chaseTarget = target;
        return ZoneOutcome.Chase;
      }
      if (depth + 1 >= MAX_CHASE) return ZoneOutcome.Answered;
      return this.emit(w, target, resolveLabels(zone, labels), qtype, depth + 1);
    }
    let written = 0;
    if (qtype === TYPE.A) written = writeAddresses(w, owner, zone.ttl, records);
    else if (qtype === TYPE.SRV) written = this.writeServices(w, owner, records);
    return written > 0 ? ZoneOutcome.Answered : this.negative(w, RCODE.NOERROR, this.zoneSoa);
  }

  /** NXDOMAIN, or NODATA (NOERROR, no answer), with the zone's SOA for negative caching (RFC 2308). */
  private negative(w: MessageWriter, rcode: number, soa: Soa): ZoneOutcome {
    this.rcode = rcode;
    w.startSection(Section.Authority);
    writeSoa(w, soa);
    return ZoneOutcome.Answered;
  }

  /**
   * Reverse names: `d.c.b.a.in-addr.arpa` for an address the zone knows gets its PTR records;
   * shorter names above a known address are empty non-terminals; anything else inside the pod
   * or service CIDR is NXDOMAIN. Names outside are not ours: they go upstream.
   */
  private reverseIsOurs(q: Query): boolean {
    const parsed = this.parseReverse(q);
    if (parsed.octets === 0) return false;
    const { addr, octets, extra } = parsed;
    if (extra === 0 && octets === 4 && hasReverse(this.zone, addr)) return true;
    if (extra === 0 && octets < 4 && this.zone.reversePrefixes.has(reversePrefixKey(addr, octets))) return true;
    return inReverseAuthority(this.zone, addr, octets * 8);
  }

  private readonly reverseParse = { addr: 0, octets: 0, extra: 0 };

  /** The octets of a reverse name, read from the right: how many, the address they make, and labels left over. */
  private parseReverse(q: Query): { addr: number; octets: number; extra: number } {
    const name = q.name.bytes;
    const below = this.labelCount - 2;
    let addr = 0;
    let octets = 0;
    for (let i = below - 1; i >= 0 && octets < 4; i--) {
      const value = decimalLabel(name, this.labelStarts[i]);
      if (value < 0) break;
      addr = addr * 256 + value;
      octets++;
    }
    const r = this.reverseParse;
    r.addr = octets === 0 ? 0 : (addr * 2 ** (8 * (4 - octets))) >>> 0;
    r.octets = octets;
    r.extra = below - octets;
    return r;
  }

  private answerReverse(q: Query, w: MessageWriter): ZoneOutcome {
    const { addr, octets, extra } = this.parseReverse(q);
    const zone = this.zone;
    if (extra === 0 && octets === 4) {
      const names = reverseNames(zone, addr);
      if (names === undefined) return this.negative(w, RCODE.NXDOMAIN, this.reverseSoa);
      if (q.qtype !== TYPE.PTR) return this.negative(w, RCODE.NOERROR, this.reverseSoa);
      for (const name of names) writePtr(w, QNAME, zone.ttl, name);
      return ZoneOutcome.Answered;
    }
    if (extra === 0 && zone.reversePrefixes.has(reversePrefixKey(addr, octets))) return this.negative(w, RCODE.NOERROR, this.reverseSoa);
    return this.negative(w, RCODE.NXDOMAIN, this.reverseSoa);
  }

  /**
   * SRV records, priority 0 and the weight shared out as CoreDNS does, each target's address
   * in the additional section (plugin/backend_lookup.go `SRV`). Records without a port (-1)
   * make no SRV. Duplicates (same target and port) are written once. Targets end in the zone
   * as the question spelled it (`svc1.testns.svc.cLuStEr.LoCaL.`), as CoreDNS builds them from
   * the query's own zone; the additional records' owners point at those targets, so they too.
   */
  private writeServices(w: MessageWriter, owner: Owner, records: readonly ZoneRecord[]): number {
    const ttl = this.zone.ttl;
    let withPort = 0;
    for (const r of records) if (r.port >= 0) withPort++;
    if (withPort === 0) return 0;
    const weight = srvWeight(withPort);
    const apexStart = this.labelStarts[this.labelCount - this.zoneLabels];
    const apexLength = this.labelStarts[this.labelCount] + 1 - apexStart;
    const domainLength = this.zone.domain.length;
    const targetAt = this.targetAt;
    let written = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (i < targetAt.length) targetAt[i] = -1;
      if (r.port < 0 || duplicate(records, i, (a, b) => a.name === b.name && a.port === b.port)) continue;
      // Every SRV target is a name of the zone: `<relative>.<domain>`.
      const at = writeSrvInQuestionCase(w, owner, ttl, 0, weight, r.port, r.name, r.name.length - domainLength - 1, DNS_HEADER_LEN + apexStart, apexLength);
      if (i < targetAt.length) targetAt[i] = at;
      written++;
    }
    w.startSection(Section.Additional);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (r.port < 0 || duplicate(records, i, (a, b) => b.port >= 0 && a.name === b.name && a.addr === b.addr)) continue;
      // Owned by the target exactly as written: compression, which ignores case, might
      // otherwise point into the question and give the owner the client's case throughout.
      const target = this.targetOf(records, i);
      writeA(w, target >= 0 ? target : r.name, ttl, r.addr);
    }
    return written;
  }

  /** Where the SRV target of the first record named as `records[i]` was written (see writeServices), or -1. */
  private targetOf(records: readonly ZoneRecord[], i: number): number {
    const name = records[i].name;
    for (let j = 0; j <= i && j < this.targetAt.length; j++) {
      if (records[j].port >= 0 && records[j].name === name && this.targetAt[j] >= 0) return this.targetAt[j];
    }
    return -1;
  }
}

/**
 * What a name below the apex holds, special names of the plugin included: the apex,
 * `dns-version` (TXT only) and `dns` own no address; `ns.dns` is the DNS service's address.
 */
export function resolveLabels(zone: Zone, labels: readonly string[]): LookupResult {
  if (labels.length === 0) return EMPTY_NON_TERMINAL;
  if (labels.length === 1 && (labels[0] === 'dns' || labels[0] === 'dns-version')) return EMPTY_NON_TERMINAL;
  if (labels.length === 2 && labels[0] === 'ns' && labels[1] === 'dns') {
    const name = `ns.dns.${zone.domain}`;
    return { exists: true, records: [{ addr: zone.dnsIP, target: '', port: -1, portName: '', protocol: '', name, endpoint: '' }] };
  }
  if (labels.length > MAX_RELATIVE_LABELS) return NO_SUCH_NAME;
  return lookup(zone, parseRequest(labels));
}

/** A records for every distinct address (a headless service lists an endpoint once per port). */
function writeAddresses(w: MessageWriter, owner: Owner, ttl: number, records: readonly ZoneRecord[]): number {
  let written = 0;
  for (let i = 0; i < records.length; i++) {
    const addr = records[i].addr;
    let seen = false;
    for (let j = 0; j < i && !seen; j++) seen = records[j].addr === addr;
    if (seen) continue;
    writeA(w, owner, ttl, addr);
    written++;
  }
  return written;
}

function duplicate(records: readonly ZoneRecord[], i: number, same: (a: ZoneRecord, b: ZoneRecord) => boolean): boolean {
  for (let j = 0; j < i; j++) if (same(records[i], records[j])) return true;
  return false;
}

function labelCount(wire: Uint8Array): number {
  let n = 0;
  for (let p = 0; wire[p] !== 0; p += wire[p] + 1) n++;
  return n;
}

/** A label of 1 to 3 decimal digits without a leading zero, as its value; -1 otherwise. */
function decimalLabel(name: Uint8Array, start: number): number {
  const len = name[start];
  if (len < 1 || len > 3 || (len > 1 && name[start + 1] === 0x30)) return -1;
  let value = 0;
  for (let i = 1; i <= len; i++) {
    const c = name[start + i];
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  return value > 255 ? -1 : value;
}
