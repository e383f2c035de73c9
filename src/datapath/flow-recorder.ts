/**
 * The flow events of a node, written by the stages that decide (the Hubble of podwire):
 *
 * - a new connection, when source NAT confirms it in conntrack and the walk sends it on,
 *   with the NAT it got (a service's DNAT, masquerade) as an event of its own;
 * - NetworkPolicy's verdict on a new connection of an isolated pod, and every denial;
 * - a drop, with its reason and the stage that dropped;
 * - a connection's end: its first FIN or RST through conntrack, or its removal from the
 *   table (expired, evicted, destroyed), told by conntrack itself;
 * - pods' DNS queries to the cluster DNS address and the answers they get (L7).
 *
 * Events come per connection, per drop and per DNS message, never per forwarded packet:
 * an established connection's packets write nothing. Drops are rate-limited by a token
 * bucket per reason, and DNS messages by one of their own, so that a flood of one kind
 * cannot overwrite the ring (a flood of new connections is as many connections, and each
 * is news). What the buckets refuse is counted per reason.
 *
 * Hot path rules hold: numbers only, from the context's views and tuples and the tables'
 * rows; times from the clock cell; nothing allocated; a stage's name is an index.
 */
import { CtDir, refDir, refId, RemovalCause, type Conntrack, type ConntrackListener } from '../netfilter/conntrack.js';
import { hasPorts, IPPROTO_ICMP } from '../netfilter/conntrack-tuple.js';
import type { PolicyTables } from '../kube/policy.js';
import { ETHERNET_HEADER_LEN } from '../packet/ethernet.js';
import { IPPROTO, IPV4_HEADER_LEN, IPV4_OFFSET } from '../packet/ipv4.js';
import { UDP_OFFSET } from '../packet/udp.js';
import { DnsScan, scanDnsMessage } from '../dns/scan.js';
import { Parsed, type FrameContext } from './context.js';
import { DNS_FRAME_HEADERS } from './dns-frame.js';
import { Drop, DROP_REASONS } from './drops.js';
import { DEFAULT_FLOW_CAPACITY, DNS_ANSWERS, DNS_NAME_BYTES, EndCause, FlowFlag, FlowKind, FlowRing } from './flow-ring.js';
import { stageIndex, type StageName } from './recorder.js';
import { TokenBuckets } from './token-buckets.js';

export interface FlowOptions {
  /** Events the ring holds; default 4,096, as many as Hubble's default buffer. */
  readonly capacity?: number;
  /** Drop events written a second, per reason; default 100. */
  readonly dropRate?: number;
  /** Drop events of one reason written at once before the rate applies; default 200. */
  readonly dropBurst?: number;
  /** DNS events (queries and answers together) written a second; default 500. */
  readonly dnsRate?: number;
  readonly dnsBurst?: number;
}

export const DEFAULT_DROP_RATE = 100;
export const DEFAULT_DROP_BURST = 200;
export const DEFAULT_DNS_RATE = 500;
export const DEFAULT_DNS_BURST = 1000;

const STAGE_CONNTRACK = stageIndex('conntrack');
const STAGE_SOURCE_NAT = stageIndex('source-nat');

const END_OF_REMOVAL: readonly EndCause[] = (() => {
  const of: EndCause[] = [];
  of[RemovalCause.Expired] = EndCause.Expired;
  of[RemovalCause.Evicted] = EndCause.Evicted;
  of[RemovalCause.Destroyed] = EndCause.Destroyed;
  return of;
})();

// Where frameDnsAnswer puts the addresses and ports of a DNS answer for a pod.
const ANSWER_SRC = ETHERNET_HEADER_LEN + IPV4_OFFSET.SRC_ADDR;
const ANSWER_DST = ETHERNET_HEADER_LEN + IPV4_OFFSET.DST_ADDR;
const ANSWER_SPORT = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_OFFSET.SRC_PORT;
const ANSWER_DPORT = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_OFFSET.DST_PORT;
const UDP = IPPROTO.UDP;

export class FlowRecorder implements ConntrackListener {
  readonly ring: FlowRing;
  /** One bucket per drop reason (drops.ts); its `suppressed` counts what a flood did not write. */
  readonly drops: TokenBuckets;
  /** One bucket for DNS queries and answers. */
  readonly dns: TokenBuckets;
  private readonly scan = new DnsScan();
  /** The direction of the policy denial just recorded, for the drop event that follows it. */
  private deniedDirection = 0;

  /** Throws RangeError on a bad option: a configuration error. */
  constructor(
    /** The path's time cell (PathTables.clock): events and buckets read the time there. */
    clock: Float64Array,
    private readonly conntrack: Conntrack,
    options: FlowOptions = {},
  ) {
    this.ring = new FlowRing(options.capacity ?? DEFAULT_FLOW_CAPACITY, clock);
    this.drops = new TokenBuckets(DROP_REASONS.length, options.dropRate ?? DEFAULT_DROP_RATE, options.dropBurst ?? DEFAULT_DROP_BURST, clock);
    this.dns = new TokenBuckets(1, options.dnsRate ?? DEFAULT_DNS_RATE, options.dnsBurst ?? DEFAULT_DNS_BURST, clock);
  }

  // ---- what the walk and the stages tell ---------------------------------------------

  /** The walk ended in a drop at `stage`, for `ctx.drop`. */
  dropped(ctx: FrameContext, stage: StageName): void {
    const reason = ctx.drop;
    const direction = reason === Drop.PolicyDenied ? this.deniedDirection : 0;
    this.deniedDirection = 0;
    if (!this.drops.take(reason)) return;
    const r = this.ring;
    const i = r.claim(FlowKind.Drop);
    r.reason[i] = reason;
    r.stage[i] = stageIndex(stage);
    this.packet(i, ctx);
    r.flags[i] |= direction;
  }

  /** A new connection left by `stage` (its egress): conntrack holds it, its NAT is in the tuples. */
  connection(ctx: FrameContext, stage: StageName): void {
    const o = ctx.orig;
    const p = ctx.reply;
    const ports = hasPorts(o.proto);
    const dnat = p.src !== o.dst || (ports && p.sport !== o.dport);
    const snat = p.dst !== o.src || (ports ? p.dport !== o.sport : o.proto === IPPROTO_ICMP && p.sport !== o.sport);
    const nat = (dnat ? FlowFlag.Dnat : 0) | (snat ? FlowFlag.Snat : 0);
    const r = this.ring;
    if (nat !== 0) {
      const t = r.claim(FlowKind.Translation);
      this.newTuple(t, ctx, nat);
      r.stage[t] = STAGE_SOURCE_NAT;
    }
    const i = r.claim(FlowKind.Connection);
    this.newTuple(i, ctx, nat);
    r.stage[i] = stageIndex(stage);
  }

  /**
   * NetworkPolicy's verdict on the frame in `ctx` at `stage`: for `egress` of its source pod,
   * or ingress of its destination. Allowed connections are news only when new and when a
   * policy isolates the pod; a denial always is (within the policy-denied drop bucket).
   */
  policyVerdict(ctx: FrameContext, stage: StageName, tables: PolicyTables, egress: boolean, allowed: boolean): void {
    const direction = egress ? FlowFlag.Egress : FlowFlag.Ingress;
    if (allowed) {
      if (!ctx.isNew || !tables.isolated(egress ? 'egress' : 'ingress', egress ? ctx.ip.srcAddr : ctx.dstAddr)) return;
    } else {
      this.deniedDirection = direction;
      if (!this.drops.take(Drop.PolicyDenied)) return;
    }
    const r = this.ring;
    const i = r.claim(FlowKind.PolicyVerdict);
    r.stage[i] = stageIndex(stage);
    this.packet(i, ctx);
    r.flags[i] |= direction | (allowed ? FlowFlag.Allowed : 0);
    if (allowed) r.allowedVerdicts++;
  }

  /** A pod's UDP query to the cluster DNS address, in the frame in `ctx`. */
  dnsQuery(ctx: FrameContext): void {
    const udp = ctx.udp;
    const scan = this.scan;
    if (!scanDnsMessage(ctx.ip.buf, udp.payloadOffset, udp.payloadLength, scan) || scan.response) return;
    if (!this.dns.take(0)) return;
    const r = this.ring;
    const i = r.claim(FlowKind.DnsRequest);
    r.stage[i] = stageIndex('local');
    this.packet(i, ctx);
    r.flags[i] |= FlowFlag.ReplyKnown;
    this.dnsFields(i);
  }

  /** The DNS answer for a pod framed in `frame` (frameDnsAnswer's layout), `length` bytes of message. */
  dnsAnswer(frame: Uint8Array, length: number): void {
    const scan = this.scan;
    if (!scanDnsMessage(frame, DNS_FRAME_HEADERS, length, scan) || !scan.response) return;
    if (!this.dns.take(0)) return;
    const r = this.ring;
    const i = r.claim(FlowKind.DnsResponse);
    r.stage[i] = stageIndex('local');
    r.flags[i] = FlowFlag.Ip | FlowFlag.ReplyKnown | FlowFlag.Reply;
    r.proto[i] = UDP;
    r.src[i] = (frame[ANSWER_SRC] << 24) | (frame[ANSWER_SRC + 1] << 16) | (frame[ANSWER_SRC + 2] << 8) | frame[ANSWER_SRC + 3];
    r.dst[i] = (frame[ANSWER_DST] << 24) | (frame[ANSWER_DST + 1] << 16) | (frame[ANSWER_DST + 2] << 8) | frame[ANSWER_DST + 3];
    r.sport[i] = (frame[ANSWER_SPORT] << 8) | frame[ANSWER_SPORT + 1];
    r.dport[i] = (frame[ANSWER_DPORT] << 8) | frame[ANSWER_DPORT + 1];
    this.dnsFields(i);
  }

  /**
   * A FIN or RST of the tracked connection `ref` went through conntrack: its end, told
   * once (the entry is marked, so its later removal is no news).
   */
  closing(ctx: FrameContext, ref: number): void {
    const id = refId(ref);
    if (!this.conntrack.markReported(id)) return;
    const r = this.ring;
    const i = r.claim(FlowKind.ConnectionEnd);
    r.reason[i] = EndCause.Closed;
    r.stage[i] = STAGE_CONNTRACK;
    r.ingress[i] = ctx.ingress;
    r.slot[i] = ctx.inSlot;
    r.tcpFlags[i] = ctx.tcpFlags;
    this.entryTuple(i, id);
    r.flags[i] |= FlowFlag.ReplyKnown | (refDir(ref) === CtDir.Reply ? FlowFlag.Reply : 0);
  }

  /** Conntrack's word that connection `id` leaves the table (ConntrackListener). */
  removing(id: number, cause: RemovalCause): void {
    if (this.conntrack.isReported(id)) return;
    const r = this.ring;
    const i = r.claim(FlowKind.ConnectionEnd);
    r.reason[i] = END_OF_REMOVAL[cause];
    this.entryTuple(i, id);
    r.flags[i] |= FlowFlag.ReplyKnown;
  }

  // ---- filling an event ----------------------------------------------------------------

  /** The frame's own addresses and ports; a new flow's destination after DNAT, as policy judged it. */
  private packet(i: number, ctx: FrameContext): void {
    const r = this.ring;
    r.ingress[i] = ctx.ingress;
    r.egress[i] = ctx.egress;
    r.slot[i] = ctx.inSlot;
    if (ctx.parsed !== Parsed.Ipv4) {
      if (ctx.parsed === Parsed.Ethernet) {
        r.ethSrc[i] = ctx.eth.srcMac;
        r.ethDst[i] = ctx.eth.dstMac;
      }
      return;
    }
    const ip = ctx.ip;
    r.flags[i] = FlowFlag.Ip;
    r.proto[i] = ip.protocol;
    r.tcpFlags[i] = ctx.tcpFlags;
    if (ctx.isNew) {
      const o = ctx.orig;
      r.src[i] = o.src;
      r.sport[i] = o.sport;
      r.dst[i] = ctx.dstAddr;
      r.dport[i] = ctx.dstPort;
      if ((ctx.dstAddr | 0) !== o.dst || ctx.dstPort !== o.dport) {
        r.flags[i] |= FlowFlag.Dnat;
        r.origDst[i] = o.dst;
        r.origDport[i] = o.dport;
      }
      return;
    }
    r.src[i] = ip.srcAddr;
    r.dst[i] = ip.dstAddr;
    const l4 = ctx.l4;
    if (l4 === ctx.tcp || l4 === ctx.udp) {
      r.sport[i] = l4.srcPort;
      r.dport[i] = l4.dstPort;
    } else if (l4 === ctx.icmp) {
      r.dport[i] = (ctx.icmp.type << 8) | ctx.icmp.code;
    }
  }

  /** A new connection's tuples: the client, its destination after DNAT, the pre-DNAT one, the SNAT. */
  private newTuple(i: number, ctx: FrameContext, nat: number): void {
    const r = this.ring;
    const o = ctx.orig;
    const p = ctx.reply;
    const ports = hasPorts(o.proto);
    r.flags[i] = FlowFlag.Ip | FlowFlag.ReplyKnown | nat;
    r.ingress[i] = ctx.ingress;
    r.egress[i] = ctx.egress;
    r.slot[i] = ctx.inSlot;
    r.proto[i] = o.proto;
    r.tcpFlags[i] = ctx.tcpFlags;
    r.src[i] = o.src;
    r.sport[i] = o.sport;
    r.dst[i] = p.src;
    r.dport[i] = ports ? p.sport : o.dport;
    r.origDst[i] = o.dst;
    r.origDport[i] = o.dport;
    r.snatSrc[i] = p.dst;
    r.snatSport[i] = ports ? p.dport : p.sport;
  }

  /** A tracked connection's tuples, read from its conntrack row, in the original direction. */
  private entryTuple(i: number, id: number): void {
    const r = this.ring;
    const ct = this.conntrack;
    const proto = ct.protocol(id);
    const ports = hasPorts(proto);
    const src = ct.tupleSrc(id, CtDir.Original);
    const dst = ct.tupleDst(id, CtDir.Original);
    const sport = ct.tupleSport(id, CtDir.Original);
    const dport = ct.tupleDport(id, CtDir.Original);
    const replySrc = ct.tupleSrc(id, CtDir.Reply);
    const replyDst = ct.tupleDst(id, CtDir.Reply);
    const replySport = ct.tupleSport(id, CtDir.Reply);
    const replyDport = ct.tupleDport(id, CtDir.Reply);
    const dnat = replySrc !== dst || (ports && replySport !== dport);
    const snat = replyDst !== src || (ports ? replyDport !== sport : proto === IPPROTO_ICMP && replySport !== sport);
    r.flags[i] = FlowFlag.Ip | (dnat ? FlowFlag.Dnat : 0) | (snat ? FlowFlag.Snat : 0);
    r.proto[i] = proto;
    r.src[i] = src;
    r.sport[i] = sport;
    r.dst[i] = replySrc;
    r.dport[i] = ports ? replySport : dport;
    r.origDst[i] = dst;
    r.origDport[i] = dport;
    r.snatSrc[i] = replyDst;
    r.snatSport[i] = ports ? replyDport : replySport;
  }

  /** What the last scan read, into event `i`. */
  private dnsFields(i: number): void {
    const r = this.ring;
    const scan = this.scan;
    const name = scan.name;
    const length = name.length < DNS_NAME_BYTES ? name.length : DNS_NAME_BYTES;
    const at = i * DNS_NAME_BYTES;
    for (let k = 0; k < length; k++) r.dnsName[at + k] = name.bytes[k];
    r.dnsNameLength[i] = length;
    r.dnsQtype[i] = scan.qtype;
    r.dnsRcode[i] = scan.rcode;
    r.dnsTtl[i] = scan.ttl;
    const answersAt = i * DNS_ANSWERS;
    const addresses = scan.addressCount < DNS_ANSWERS ? scan.addressCount : DNS_ANSWERS;
    for (let k = 0; k < addresses; k++) r.dnsAddresses[answersAt + k] = scan.addresses[k];
    r.dnsAddressCount[i] = addresses;
    const types = scan.answerTypeCount < DNS_ANSWERS ? scan.answerTypeCount : DNS_ANSWERS;
    for (let k = 0; k < types; k++) r.dnsAnswerTypes[answersAt + k] = scan.answerTypes[k];
    r.dnsAnswerTypeCount[i] = types;
  }
}
