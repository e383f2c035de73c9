/**
 * A node's bounded ring of flow events, as Hubble keeps one per node: the newest
 * `capacity` events, the oldest overwritten. Storage is columns of typed arrays allocated
 * in the constructor, one element per slot, so that writing an event is a handful of
 * stores and allocates nothing; names (pods, services, policies) are not stored, only the
 * numbers the path decided on (addresses, ports, stage, reason), and a reader makes them
 * into Hubble flows (src/observe) when it asks.
 *
 * Every event has a sequence number: `written` counts the events ever written, and the
 * ring holds sequences [oldest, written). A reader keeps the sequence it reached; when it
 * falls behind by more than the ring holds, what it missed is `oldest - its sequence`.
 * Node.js runs the path and the readers on one thread, so a reader never sees an event
 * half written.
 */

/** What happened. */
export const FlowKind = {
  /** A new connection confirmed in conntrack and sent on, once per connection. */
  Connection: 1,
  /** The NAT a new connection got (a service's DNAT, masquerade), once per connection. */
  Translation: 2,
  Drop: 3,
  /** NetworkPolicy's verdict on a new connection of an isolated pod. */
  PolicyVerdict: 4,
  /** A tracked connection ended: closed (FIN, RST), expired, evicted or destroyed. */
  ConnectionEnd: 5,
  DnsRequest: 6,
  DnsResponse: 7,
} as const;
export type FlowKind = (typeof FlowKind)[keyof typeof FlowKind];

/** How a connection ended (FlowKind.ConnectionEnd's reason). */
export const EndCause = {
  /** A FIN or RST went through: the connection is closing. */
  Closed: 0,
  Expired: 1,
  Evicted: 2,
  Destroyed: 3,
} as const;
export type EndCause = (typeof EndCause)[keyof typeof EndCause];

/** Bits of `flags`. */
export const FlowFlag = {
  /** src, dst, ports and protocol hold an IPv4 packet's (else only the MACs and the slot do). */
  Ip: 1,
  /** Whether the event is about a reply is known, and `Reply` says it. */
  ReplyKnown: 2,
  Reply: 4,
  /** `origDst`/`origDport` hold the destination before a service's DNAT. */
  Dnat: 8,
  /** `snatSrc`/`snatSport` hold the source after masquerade or a port remap. */
  Snat: 16,
  /** The policy direction of a verdict or a policy drop: egress of the source pod... */
  Egress: 32,
  /** ...or ingress of the destination pod. */
  Ingress: 64,
  /** A policy verdict that allowed. */
  Allowed: 128,
} as const;

/** No stage recorded (a connection removed by the reaper). */
export const NO_STAGE = 0xff;
/** Bytes of a DNS name in wire form, root label included: RFC 1035's 255. */
export const DNS_NAME_BYTES = 255;
/** Answers kept per DNS response. */
export const DNS_ANSWERS = 8;

export const DEFAULT_FLOW_CAPACITY = 4096;
export const MAX_FLOW_CAPACITY = 1 << 20;

export class FlowRing {
  readonly capacity: number;
  /** Events recorded since the start, by FlowKind (what hubble_flows_processed_total counts). */
  readonly recordedByKind = new Float64Array(8);
  /** Of them, policy verdicts that allowed. */
  allowedVerdicts = 0;
  /** Events ever written: the sequence number the next one gets. */
  written = 0;
  private head = 0;

  /** The path's clock (ns) when the event happened. */
  readonly time: Float64Array;
  readonly kind: Uint8Array;
  /** Drop: the Drop reason; ConnectionEnd: the EndCause. */
  readonly reason: Uint8Array;
  /** Index in STAGE_NAMES of the stage that decided, or NO_STAGE. */
  readonly stage: Uint8Array;
  /** Where the frame came in (Ingress) and where it was going (Egress). */
  readonly ingress: Uint8Array;
  readonly egress: Uint8Array;
  readonly flags: Uint8Array;
  readonly proto: Uint8Array;
  /** Addresses as int32 (`>>> 0` for the uint32). */
  readonly src: Int32Array;
  readonly dst: Int32Array;
  /** TCP and UDP: the ports. ICMP: the identifier and `type << 8 | code`. */
  readonly sport: Uint16Array;
  readonly dport: Uint16Array;
  /** TCP flags of the packet. */
  readonly tcpFlags: Uint16Array;
  readonly origDst: Int32Array;
  readonly origDport: Uint16Array;
  readonly snatSrc: Int32Array;
  readonly snatSport: Uint16Array;
  /** The pod port it came in on, or -1. */
  readonly slot: Int16Array;
  /** Ethernet addresses, for events without an IPv4 header. */
  readonly ethSrc: Float64Array;
  readonly ethDst: Float64Array;

  // ---- DNS (DnsRequest, DnsResponse) -------------------------------------------------
  /** The question name in wire form, DNS_NAME_BYTES a slot. */
  readonly dnsName: Uint8Array;
  readonly dnsNameLength: Uint8Array;
  readonly dnsQtype: Uint16Array;
  readonly dnsRcode: Uint8Array;
  readonly dnsTtl: Float64Array;
  /** A records' addresses, DNS_ANSWERS a slot. */
  readonly dnsAddresses: Int32Array;
  readonly dnsAddressCount: Uint8Array;
  /** Answer record types, DNS_ANSWERS a slot. */
  readonly dnsAnswerTypes: Uint16Array;
  readonly dnsAnswerTypeCount: Uint8Array;

  /** Throws RangeError on a bad capacity: a configuration error. */
  constructor(
    capacity = DEFAULT_FLOW_CAPACITY,
    /** The path's time (ns) in element 0, as PathTables.clock holds it: an event's time is read there. */
    private readonly clock: Float64Array = new Float64Array(1),
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_FLOW_CAPACITY) {
      throw new RangeError(`flow ring capacity must be an integer from 1 to ${MAX_FLOW_CAPACITY}, got ${capacity}`);
    }
    this.capacity = capacity;
    this.time = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.reason = new Uint8Array(capacity);
    this.stage = new Uint8Array(capacity);
    this.ingress = new Uint8Array(capacity);
    this.egress = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.proto = new Uint8Array(capacity);
    this.src = new Int32Array(capacity);
    this.dst = new Int32Array(capacity);
    this.sport = new Uint16Array(capacity);
    this.dport = new Uint16Array(capacity);
    this.tcpFlags = new Uint16Array(capacity);
    this.origDst = new Int32Array(capacity);
    this.origDport = new Uint16Array(capacity);
    this.snatSrc = new Int32Array(capacity);
    this.snatSport = new Uint16Array(capacity);
    this.slot = new Int16Array(capacity);
    this.ethSrc = new Float64Array(capacity);
    this.ethDst = new Float64Array(capacity);
    this.dnsName = new Uint8Array(capacity * DNS_NAME_BYTES);
    this.dnsNameLength = new Uint8Array(capacity);
    this.dnsQtype = new Uint16Array(capacity);
    this.dnsRcode = new Uint8Array(capacity);
    this.dnsTtl = new Float64Array(capacity);
    this.dnsAddresses = new Int32Array(capacity * DNS_ANSWERS);
    this.dnsAddressCount = new Uint8Array(capacity);
    this.dnsAnswerTypes = new Uint16Array(capacity * DNS_ANSWERS);
    this.dnsAnswerTypeCount = new Uint8Array(capacity);
  }

  /** The oldest sequence number still held. */
  get oldest(): number {
    return this.written > this.capacity ? this.written - this.capacity : 0;
  }

  /** Bytes of typed arrays behind the ring, all allocated up front. */
  get byteLength(): number {
    let total = 0;
    for (const value of Object.values(this)) if (ArrayBuffer.isView(value) && value !== this.clock) total += value.byteLength;
    return total;
  }

  /** The slot of sequence `seq` (meaningful while oldest <= seq < written). */
  slotOf(seq: number): number {
    return seq % this.capacity;
  }

  /**
   * The slot for a new event, which gets sequence `written`; its fields are the caller's
   * to fill before anything else runs. The common fields are reset so that an event never
   * shows what the slot's previous one held.
   */
  claim(kind: FlowKind): number {
    const i = this.head;
    this.head = i + 1 === this.capacity ? 0 : i + 1;
    this.written++;
    this.recordedByKind[kind]++;
    // From the cell, not an argument: a time above 2^31 passed in would be a heap number.
    this.time[i] = this.clock[0];
    this.kind[i] = kind;
    this.reason[i] = 0;
    this.stage[i] = NO_STAGE;
    this.ingress[i] = 0;
    this.egress[i] = 0;
    this.flags[i] = 0;
    this.proto[i] = 0;
    this.src[i] = 0;
    this.dst[i] = 0;
    this.sport[i] = 0;
    this.dport[i] = 0;
    this.tcpFlags[i] = 0;
    this.slot[i] = -1;
    this.dnsNameLength[i] = 0;
    this.dnsAddressCount[i] = 0;
    this.dnsAnswerTypeCount[i] = 0;
    return i;
  }
}
