/**
 * IPv4 fragment reassembly before connection tracking, in the manner of the kernel's
 * nf_defrag_ipv4 / ip_fragment.c: fragments are held per datagram until the whole
 * datagram is there, and the rest of the pipeline (conntrack, service NAT, policy,
 * masquerade) sees only whole datagrams. On output the datagram is cut again to the
 * largest fragment size its sender used (`maxFragmentSize`, the kernel's
 * IPCB(skb)->frag_max_size) by `fragmentIpv4` in src/packet/ipv4-fragment.ts.
 *
 * Contract
 * - Pure: no I/O, no clock, no random source. Time comes in as `nowNs` (nanoseconds on
 *   any monotonic clock; only differences count).
 * - `insert(buf, ipOffset, nowNs)` takes one fragment (its IPv4 header checked by the
 *   caller's parse stage for checksum; bounds and version are checked here again) and
 *   returns a DefragResult: Held (kept, waiting for the rest), Complete (the datagram is
 *   whole: it lies at `completeBuffer[completeOffset, completeOffset + completeLength)`
 *   with a correct header) or Dropped (`lastDrop` says why). The completed bytes live in
 *   the table's own memory and stay valid until the next `insert` or `expire`.
 * - `insert` and `expire` never throw, and allocate nothing but the one subarray view
 *   through which a fragment's payload is copied (see `insert`). Their cost is bounded
 *   by `maxFragments` and by the fragment's size, never by how many datagrams are held.
 * - Bounded: `maxDatagrams` slots of `maxDatagramSize` bytes each, all memory allocated
 *   in the constructor; `byteLength` (indexes and metadata included) never exceeds
 *   `memoryLimit`. The default of 4 MiB is the kernel's ipfrag_high_thresh; since every
 *   slot can hold a 64 KiB datagram, that is 63 datagrams in progress at once (the
 *   kernel counts the skbs it holds, so its 4 MiB takes more small datagrams). A larger
 *   `memoryLimit`, or a smaller `maxDatagramSize` (9000: 428 slots), buys more.
 *
 * Keying. A datagram is (source, destination, protocol, identification), RFC 791's
 * reassembly key and the kernel's ipq key. The index is a seeded FlowTable.
 *
 * What is refused, and what each refusal costs (DefragDrop):
 * - A fragment alone (the datagram it belongs to, if any, is kept): Malformed,
 *   NotFragment, BadLength when a fragment with MF carries no payload or a payload that
 *   is not a multiple of 8 bytes (RFC 791: the kernel trims such a fragment; podwire
 *   drops it, since a correct sender never sends one), TinyFragment when the first
 *   fragment does not hold the whole transport header (RFC 1858: TCP 20 bytes or its
 *   data offset, UDP 8, ICMP 8), Duplicate when every byte of it is already held (as
 *   the kernel's IPFRAG_DUP: the copy is ignored, the first one's bytes count).
 * - The whole datagram, with the fragment that showed it bad: Overlap (a fragment that
 *   overlaps held data without lying inside it: RFC 5722's rule, which Linux applies to
 *   IPv4 since 2018 (CVE-2018-5391); no overlap is ever resolved by picking bytes),
 *   BadLength when lengths contradict (two last fragments with different ends, data past
 *   the last fragment's end), TooManyFragments (more than `maxFragments`, default 64),
 *   TooBig (more than `maxDatagramSize`, at most 65535, once reassembled: ping of death),
 *   EcnMismatch (ECN-capable and not-ECT fragments mixed, as the kernel's
 *   ip_frag_ecn_table refuses).
 * - A datagram not completed `timeoutSeconds` (default 30, ipfrag_time) after its first
 *   fragment arrived is Timeout: removed by `expire(nowNs, budget)`, or lazily when a
 *   fragment for it arrives late (that fragment then starts a new datagram). The timer
 *   is not restarted by later fragments, as the kernel's is not.
 * - Table full: the oldest datagram is evicted (Evicted) to make room for the new one.
 *   The kernel refuses new datagrams above ipfrag_high_thresh instead; with a few dozen
 *   slots that would let one pod that sends 64 first fragments every 30 seconds stop
 *   every fragmented datagram on the node, while evicting the oldest makes it outrun
 *   the time a real datagram takes to arrive (microseconds to milliseconds) instead.
 *   Creation order is expiry order (one timeout for all), so the oldest is the list head.
 * - Per source: one source address holds at most `maxDatagramsPerSource` datagrams in
 *   progress (default a quarter of the slots); a new one from a source at its quota
 *   pushes out that source's own oldest (SourceLimit), never another's. A pod flooding
 *   first fragments (its source is fixed by anti-spoofing before this stage) so churns
 *   only its own quarter, and every other pod's datagrams complete. Not a refusal: a
 *   source whose fragments are lost now and then must not be shut out for 30 seconds.
 *
 * The reassembled header is the first fragment's (its options included, as RFC 791 and
 * the kernel keep them), with the total length set, MF and the offset cleared, DF set
 * only when the largest fragment carried DF (the kernel's max_df_size rule, so the
 * datagram is not forwarded larger than its sender allowed), CE set when any fragment was
 * CE-marked, and the header checksum summed again.
 *
 * Layout. Slot data is one Buffer: each slot has `headroom` bytes for the caller, 60 for
 * the header, then room for the payload; the header is copied to end where the payload
 * begins, so the datagram is contiguous with at least `headroom` bytes free before it.
 * Per-slot metadata is one Int32Array row; the held byte ranges ("runs", merged when
 * adjacent, sorted by start) are at most `maxFragments` pairs a slot. Live slots form a
 * doubly linked list in creation order (oldest first); free ones a stack.
 */
import { writeU16 } from '../packet/bytes.js';
import { internetChecksum } from '../packet/checksum.js';
import { PacketOk } from '../packet/errors.js';
import { IPPROTO, IPV4_OFFSET, Ipv4View, IPV4_HEADER_LEN, IPV4_MAX_HEADER_LEN } from '../packet/ipv4.js';
import { TCP_OFFSET } from '../packet/tcp.js';
import { FLOW_NOT_FOUND, FlowTable, MAX_LOAD_FACTOR } from './flow-table.js';

/** What `insert` did with a fragment. */
export const DefragResult = {
  /** Kept: its datagram is not whole yet. */
  Held: 0,
  /** The datagram is whole: see `completeBuffer`, `completeOffset`, `completeLength`. */
  Complete: 1,
  /** Refused: `lastDrop` says why (and whether its datagram went with it, module comment). */
  Dropped: 2,
} as const;
export type DefragResult = (typeof DefragResult)[keyof typeof DefragResult];

/**
 * Why a fragment was dropped or a datagram discarded: small integers, so counters are a
 * typed array indexed by reason. The module comment says which ones take the datagram.
 */
export const DefragDrop = {
  /** The IPv4 header fails its bounds checks or is not version 4. */
  Malformed: 0,
  /** Neither MF nor an offset: a whole packet, nothing to reassemble. */
  NotFragment: 1,
  /** No payload, a non-last payload not a multiple of 8, or lengths that contradict each other. */
  BadLength: 2,
  /** The first fragment does not hold the whole transport header (RFC 1858). */
  TinyFragment: 3,
  /** Every byte of the fragment is already held: ignored, its datagram kept. */
  Duplicate: 4,
  /** The fragment overlaps held data: the datagram is discarded (RFC 5722). */
  Overlap: 5,
  /** More fragments than `maxFragments` for one datagram. */
  TooManyFragments: 6,
  /** The datagram would be longer than `maxDatagramSize` (65535 at most). */
  TooBig: 7,
  /** ECN-capable and not-ECT fragments in one datagram. */
  EcnMismatch: 8,
  /** Not whole `timeoutSeconds` after its first fragment arrived. */
  Timeout: 9,
  /** The oldest datagram, pushed out by a new one when every slot was taken. */
  Evicted: 10,
  /** A source's oldest datagram, pushed out by a newer one from it when it held `maxDatagramsPerSource`. */
  SourceLimit: 11,
} as const;
export type DefragDrop = (typeof DefragDrop)[keyof typeof DefragDrop];

/** One more than the largest reason: the length of a per-reason counter array. */
export const DEFRAG_DROP_COUNT = 12;

export const DEFRAG_DROP_NAMES: readonly string[] = [
  'frag-malformed',
  'frag-not-fragment',
  'frag-bad-length',
  'frag-tiny',
  'frag-duplicate',
  'frag-overlap',
  'frag-too-many',
  'frag-too-big',
  'frag-ecn-mismatch',
  'frag-timeout',
  'frag-evicted',
  'frag-source-limit',
];

export function defragDropName(reason: number): string {
  return DEFRAG_DROP_NAMES[reason] ?? `unknown-${reason}`;
}

export interface DefragOptions {
  /** Longest datagram reassembled, header included: 576 to 65535; default 65535. */
  readonly maxDatagramSize?: number;
  /** Bound on `byteLength`, everything included; default 4 MiB (ipfrag_high_thresh). */
  readonly memoryLimit?: number;
  /** Datagrams held at once; default as many as `memoryLimit` allows. */
  readonly maxDatagrams?: number;
  /** Fragments per datagram; default 64. */
  readonly maxFragments?: number;
  /** Datagrams one source address may have in progress; default a quarter of `maxDatagrams` (at least 1). */
  readonly maxDatagramsPerSource?: number;
  /** From a datagram's first fragment to its discard; default 30 (ipfrag_time). */
  readonly timeoutSeconds?: number;
  /** Hash seed for the index (any uint32); pick it from a secure random source per node. */
  readonly seed?: number;
  /**
   * Bytes reserved before every completed datagram, which the caller may overwrite, up
   * to 256; default 64: room for an Ethernet header, or a whole VXLAN encapsulation
   * (outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14), written in place.
   */
  readonly headroom?: number;
}

export const DEFAULT_MAX_DATAGRAM_SIZE = 65_535;
export const DEFAULT_MEMORY_LIMIT = 4 * 1024 * 1024;
export const DEFAULT_MAX_FRAGMENTS = 64;
export const DEFAULT_TIMEOUT_SECONDS = 30;
export const DEFAULT_HEADROOM = 64;
/** The smallest datagram every IPv4 host must reassemble (RFC 791). */
const MIN_DATAGRAM_SIZE = 576;

export interface DefragStats {
  /** `insert` calls. */
  fragments: number;
  /** Fragments kept (Held results). */
  held: number;
  /** Datagrams completed (Complete results). */
  reassembled: number;
  /** Datagrams started (a slot taken). */
  datagrams: number;
  /** Fragments refused (Dropped results), by DefragDrop. */
  readonly dropped: Float64Array;
  /** Datagrams discarded with every fragment they held, by DefragDrop. */
  readonly discarded: Float64Array;
  /** Fragments that were Held and left with a discarded datagram. */
  discardedFragments: number;
}

// Slot metadata, one Int32Array row per slot.
const SRC = 0;
const DST = 1;
/** identification << 8 | protocol. */
const ID_PROTO = 2;
/** Payload length once the last fragment (MF clear) has been seen; -1 until then. */
const END = 3;
/** Payload bytes held: with no overlaps, the datagram is whole when this equals END. */
const RECEIVED = 4;
const FRAGMENTS = 5;
/** The first fragment's header length; 0 until it arrives. */
const HEADER_LEN = 6;
/** Largest fragment's IP total length, and the largest that carried DF. */
const MAX_SIZE = 7;
const MAX_DF_SIZE = 8;
/** Bit 1 << ecn for every ECN codepoint seen (the kernel's IPFRAG_ECN_* bits). */
const ECN_SEEN = 9;
const RUN_COUNT = 10;
/** Neighbours in the creation-order list (live) or the next free slot (free); -1 for none. */
const PREV = 11;
const NEXT = 12;
/** The slot's source record, and its neighbours in that source's list (creation order). */
const SOURCE = 13;
const SOURCE_PREV = 14;
const SOURCE_NEXT = 15;
const META_WORDS = 16;

// Source records, one Int32Array row each: how many datagrams a source has in progress,
// its oldest and newest slot. OLDEST doubles as the free-list link of a free record.
const SRC_COUNT = 0;
const SRC_OLDEST = 1;
const SRC_NEWEST = 2;
const SRC_WORDS = 3;
/** Keeps the source index's hash unlike the datagram index's under the same seed. */
const SOURCE_SEED_SALT = 0x5bd1e995;

/** Bytes of a FlowTable built for `n` entries: its power-of-two slots of 16 + 2 bytes. */
function flowTableBytes(n: number): number {
  let slots = 8;
  while (slots * MAX_LOAD_FACTOR < n) slots *= 2;
  return slots * 18;
}

const ECN_NOT_ECT = 1 << 0;
const ECN_CE_BIT = 1 << 3;
const ECN_CE = 3;

const NONE = -1;
// Offsets from src/packet, as local consts (a module-level const read is free per call).
const TOTAL_LENGTH = IPV4_OFFSET.TOTAL_LENGTH;
const DSCP_ECN = IPV4_OFFSET.DSCP_ECN;
const FLAGS_FRAGMENT = IPV4_OFFSET.FLAGS_FRAGMENT;
const CHECKSUM = IPV4_OFFSET.CHECKSUM;
const FLAG_DF = 0x4000;
const TCP_DATA_OFFSET = TCP_OFFSET.DATA_OFFSET;
const TCP_MIN_HEADER = 20;
const UDP_HEADER = 8;
const ICMP_HEADER = 8;

/** Bytes of transport header the first fragment must hold, from its payload (RFC 1858). */
function transportHeaderLength(protocol: number, buf: Uint8Array, at: number, available: number): number {
  if (protocol === IPPROTO.TCP) {
    if (available <= TCP_DATA_OFFSET) return TCP_MIN_HEADER;
    return Math.max(TCP_MIN_HEADER, (buf[at + TCP_DATA_OFFSET] >>> 4) * 4);
  }
  if (protocol === IPPROTO.UDP) return UDP_HEADER;
  if (protocol === IPPROTO.ICMP) return ICMP_HEADER;
  return 1;
}

export class Defrag {
  readonly maxDatagramSize: number;
  readonly memoryLimit: number;
  readonly maxDatagrams: number;
  readonly maxFragments: number;
  readonly maxDatagramsPerSource: number;
  readonly timeoutNs: number;
  /** Bytes before every completed datagram that are the caller's to write (see DefragOptions.headroom). */
  readonly headroom: number;
  readonly stats: DefragStats;

  /** After a Dropped result: why. */
  lastDrop: DefragDrop = DefragDrop.Malformed;
  /**
   * After a Complete result: where the datagram lies (valid until the next insert or
   * expire). `completeBuffer[completeOffset - headroom, completeOffset)` is free for the
   * caller to write headers into, so the datagram can go on as a frame without a copy.
   */
  completeBuffer: Buffer;
  completeOffset = 0;
  completeLength = 0;
  /** After a Complete result: the largest fragment's IP length, to cut the datagram to again on output. */
  maxFragmentSize = 0;

  private readonly ip = new Ipv4View();
  private readonly index: FlowTable;
  private readonly data: Buffer;
  private readonly slotBytes: number;
  private readonly meta: Int32Array;
  private readonly createdNs: Float64Array;
  /** Per slot, maxFragments pairs (start, end) of held payload, sorted, adjacent ones merged. */
  private readonly runs: Int32Array;
  /** Source address -> source record: every source with a datagram in progress. */
  private readonly sourceIndex: FlowTable;
  private readonly sources: Int32Array;
  private freeSource = NONE;
  private count = 0;
  private heldBytes = 0;
  private oldest = NONE;
  private newest = NONE;
  private freeHead = NONE;

  /** Throws RangeError on a bad option: a configuration error, not a packet. */
  constructor(options: DefragOptions = {}) {
    const maxDatagramSize = options.maxDatagramSize ?? DEFAULT_MAX_DATAGRAM_SIZE;
    const memoryLimit = options.memoryLimit ?? DEFAULT_MEMORY_LIMIT;
    const maxFragments = options.maxFragments ?? DEFAULT_MAX_FRAGMENTS;
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    if (!Number.isInteger(maxDatagramSize) || maxDatagramSize < MIN_DATAGRAM_SIZE || maxDatagramSize > 0xffff) {
      throw new RangeError(`defrag maxDatagramSize must be an integer from ${MIN_DATAGRAM_SIZE} to 65535, got ${maxDatagramSize}`);
    }
    // 8 bytes a fragment at least: more fragments than that cannot make a datagram.
    if (!Number.isInteger(maxFragments) || maxFragments < 2 || maxFragments > 8192) {
      throw new RangeError(`defrag maxFragments must be an integer from 2 to 8192, got ${maxFragments}`);
    }
    if (!(timeoutSeconds > 0) || !Number.isFinite(timeoutSeconds)) {
      throw new RangeError(`defrag timeoutSeconds must be a positive number, got ${timeoutSeconds}`);
    }
    if (!Number.isSafeInteger(memoryLimit) || memoryLimit < 1) throw new RangeError(`defrag memoryLimit must be a positive integer, got ${memoryLimit}`);
    const headroom = options.headroom ?? DEFAULT_HEADROOM;
    if (!Number.isInteger(headroom) || headroom < 0 || headroom > 256) throw new RangeError(`defrag headroom must be an integer from 0 to 256, got ${headroom}`);
    // Headroom, the header's room, then a payload of at most maxDatagramSize less the smallest header.
    const slotBytes = headroom + IPV4_MAX_HEADER_LEN + maxDatagramSize - IPV4_HEADER_LEN;
    // Data, metadata, creation time, runs and source record per slot, then the two indexes.
    const perSlot = slotBytes + META_WORDS * 4 + 8 + maxFragments * 8 + SRC_WORDS * 4;
    const bytesFor = (n: number): number => n * perSlot + 2 * flowTableBytes(n);
    let fits = Math.floor(memoryLimit / perSlot);
    while (fits > 0 && bytesFor(fits) > memoryLimit) fits--;
    const maxDatagrams = options.maxDatagrams ?? fits;
    if (!Number.isInteger(maxDatagrams) || maxDatagrams < 1) {
      throw new RangeError(
        options.maxDatagrams === undefined
          ? `defrag memoryLimit ${memoryLimit} holds no datagram of ${maxDatagramSize} bytes`
          : `defrag maxDatagrams must be a positive integer, got ${maxDatagrams}`,
      );
    }
    if (maxDatagrams > fits) {
      throw new RangeError(`defrag: ${maxDatagrams} datagrams of ${maxDatagramSize} bytes need more than memoryLimit ${memoryLimit}; at most ${fits} fit`);
    }
    this.maxDatagramSize = maxDatagramSize;
    this.memoryLimit = memoryLimit;
    this.maxDatagrams = maxDatagrams;
    this.maxFragments = maxFragments;
    const perSource = options.maxDatagramsPerSource ?? Math.max(1, Math.floor(maxDatagrams / 4));
    if (!Number.isInteger(perSource) || perSource < 1) throw new RangeError(`defrag maxDatagramsPerSource must be a positive integer, got ${perSource}`);
    this.maxDatagramsPerSource = perSource;
    this.timeoutNs = timeoutSeconds * 1e9;
    this.slotBytes = slotBytes;
    this.headroom = headroom;
    this.index = new FlowTable(maxDatagrams, options.seed ?? 0);
    this.sourceIndex = new FlowTable(maxDatagrams, (options.seed ?? 0) ^ SOURCE_SEED_SALT);
    this.sources = new Int32Array(maxDatagrams * SRC_WORDS);
    this.data = Buffer.alloc(maxDatagrams * slotBytes);
    this.completeBuffer = this.data;
    this.meta = new Int32Array(maxDatagrams * META_WORDS);
    this.createdNs = new Float64Array(maxDatagrams);
    this.runs = new Int32Array(maxDatagrams * maxFragments * 2);
    this.stats = {
      fragments: 0,
      held: 0,
      reassembled: 0,
      datagrams: 0,
      dropped: new Float64Array(DEFRAG_DROP_COUNT),
      discarded: new Float64Array(DEFRAG_DROP_COUNT),
      discardedFragments: 0,
    };
    // Every slot and source record starts on its free stack, lowest id on top.
    for (let s = maxDatagrams - 1; s >= 0; s--) {
      this.meta[s * META_WORDS + NEXT] = this.freeHead;
      this.freeHead = s;
      this.sources[s * SRC_WORDS + SRC_OLDEST] = this.freeSource;
      this.freeSource = s;
    }
  }

  /** Datagrams held (expired ones not yet reaped included). */
  get size(): number {
    return this.count;
  }

  /** Payload bytes held in unfinished datagrams. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Bytes of buffers and typed arrays behind the table, all allocated up front; at most `memoryLimit`. */
  get byteLength(): number {
    return (
      this.data.byteLength +
      this.meta.byteLength +
      this.createdNs.byteLength +
      this.runs.byteLength +
      this.sources.byteLength +
      this.index.byteLength +
      this.sourceIndex.byteLength
    );
  }

  // ---- the packet path -----------------------------------------------------------------

  /**
   * Takes the fragment whose IPv4 header is at `buf[ipOffset, ...)`, in at most
   * `available` bytes (the rest of its frame, padding included). Allocates nothing but
   * the view its payload is copied through.
   */
  insert(buf: Uint8Array, ipOffset: number, nowNs: number, available = buf.length - ipOffset): DefragResult {
    this.stats.fragments++;
    const ip = this.ip;
    if (!Number.isInteger(ipOffset) || ip.check(buf, ipOffset, available) !== PacketOk || ip.version !== 4) return this.dropFragment(DefragDrop.Malformed);
    if (!ip.isFragment) return this.dropFragment(DefragDrop.NotFragment);
    const headerLength = ip.headerLength;
    const fragmentLength = ip.totalLength;
    const length = fragmentLength - headerLength;
    const start = ip.fragmentOffsetBytes;
    const end = start + length;
    const more = ip.moreFragments;
    if (length === 0 || (more && (length & 7) !== 0)) return this.dropFragment(DefragDrop.BadLength);
    const protocol = ip.protocol;
    if (start === 0 && length < transportHeaderLength(protocol, buf, ip.payloadOffset, length)) return this.dropFragment(DefragDrop.TinyFragment);

    // As int32: a uint32 above 2^31 handed across a call can be a heap number (see conntrack.ts).
    const src = ip.srcAddr | 0;
    const dst = ip.dstAddr | 0;
    const id = ip.identification;
    let slot = this.find(src, dst, id, protocol, nowNs);
    // Past the largest payload any header allows: ping of death, or a bound set lower.
    if (end > this.maxDatagramSize - IPV4_HEADER_LEN) {
      if (slot !== NONE) this.discard(slot, DefragDrop.TooBig);
      return this.dropFragment(DefragDrop.TooBig);
    }
    if (slot === NONE) slot = this.open(src, dst, id, protocol, nowNs);

    const meta = this.meta;
    const m = slot * META_WORDS;
    if (meta[m + FRAGMENTS] >= this.maxFragments) return this.dropWithDatagram(slot, DefragDrop.TooManyFragments);
    const knownEnd = meta[m + END];
    if (!more) {
      // A second last fragment must agree, and nothing held may lie past the end.
      if ((knownEnd !== NONE && end !== knownEnd) || this.heldEnd(slot) > end) return this.dropWithDatagram(slot, DefragDrop.BadLength);
    } else if (knownEnd !== NONE && end > knownEnd) {
      return this.dropWithDatagram(slot, DefragDrop.BadLength);
    }

    const placed = this.addRun(slot, start, end);
    if (placed === DefragDrop.Duplicate) return this.dropFragment(DefragDrop.Duplicate);
    if (placed === DefragDrop.Overlap) return this.dropWithDatagram(slot, DefragDrop.Overlap);

    const base = slot * this.slotBytes + this.headroom + IPV4_MAX_HEADER_LEN;
    const data = this.data;
    // JavaScript has no ranged copy between two arrays that allocates nothing: the view
    // here is one short-lived object per fragment (the pipeline's transmit makes one per
    // frame too). The header, at most 60 bytes, is copied by hand, which is also faster.
    data.set(buf.subarray(ip.payloadOffset, ip.payloadOffset + length), base + start);
    if (start === 0) {
      const headerAt = base - headerLength;
      for (let i = 0; i < headerLength; i++) data[headerAt + i] = buf[ipOffset + i];
      meta[m + HEADER_LEN] = headerLength;
    }
    if (!more) meta[m + END] = end;
    meta[m + RECEIVED] += length;
    meta[m + FRAGMENTS]++;
    this.heldBytes += length;
    if (fragmentLength > meta[m + MAX_SIZE]) meta[m + MAX_SIZE] = fragmentLength;
    if (ip.dontFragment && fragmentLength > meta[m + MAX_DF_SIZE]) meta[m + MAX_DF_SIZE] = fragmentLength;
    meta[m + ECN_SEEN] |= 1 << ip.ecn;

    if (meta[m + RECEIVED] !== meta[m + END]) {
      this.stats.held++;
      return DefragResult.Held;
    }
    return this.complete(slot);
  }

  /**
   * Discards up to `budget` datagrams whose time ran out (oldest first, counted as
   * Timeout); returns how many. Call it every tick, as conntrack's `expire`.
   */
  expire(nowNs: number, budget: number): number {
    let removed = 0;
    while (removed < budget && this.oldest !== NONE && this.isExpired(this.oldest, nowNs)) {
      this.discard(this.oldest, DefragDrop.Timeout);
      removed++;
    }
    return removed;
  }

  // ---- internals -----------------------------------------------------------------------

  private dropFragment(reason: DefragDrop): DefragResult {
    this.lastDrop = reason;
    this.stats.dropped[reason]++;
    return DefragResult.Dropped;
  }

  private dropWithDatagram(slot: number, reason: DefragDrop): DefragResult {
    this.discard(slot, reason);
    return this.dropFragment(reason);
  }

  /** The live slot for the key, or NONE; one found past its time is discarded as Timeout. */
  private find(src: number, dst: number, id: number, protocol: number, nowNs: number): number {
    const slot = this.index.lookup(src, dst, id, 0, protocol);
    if (slot === FLOW_NOT_FOUND) return NONE;
    if (this.isExpired(slot, nowNs)) {
      this.discard(slot, DefragDrop.Timeout);
      return NONE;
    }
    return slot;
  }

  private isExpired(slot: number, nowNs: number): boolean {
    return nowNs - this.createdNs[slot] >= this.timeoutNs;
  }

  /**
   * Takes a slot for a new datagram and indexes it. A source at its quota first loses its
   * own oldest datagram; otherwise, with no slot free, the oldest of all goes.
   */
  private open(src: number, dst: number, id: number, protocol: number, nowNs: number): number {
    const sources = this.sources;
    let record = this.sourceIndex.lookup(src, 0, 0, 0, 0);
    if (record !== FLOW_NOT_FOUND && sources[record * SRC_WORDS + SRC_COUNT] >= this.maxDatagramsPerSource) {
      const own = sources[record * SRC_WORDS + SRC_OLDEST];
      this.discard(own, this.isExpired(own, nowNs) ? DefragDrop.Timeout : DefragDrop.SourceLimit);
    } else if (this.freeHead === NONE) {
      this.discard(this.oldest, this.isExpired(this.oldest, nowNs) ? DefragDrop.Timeout : DefragDrop.Evicted);
    }
    // Either discard may have freed the source's record.
    record = this.sourceIndex.lookup(src, 0, 0, 0, 0);
    if (record === FLOW_NOT_FOUND) {
      record = this.freeSource;
      this.freeSource = sources[record * SRC_WORDS + SRC_OLDEST];
      sources[record * SRC_WORDS + SRC_COUNT] = 0;
      sources[record * SRC_WORDS + SRC_OLDEST] = NONE;
      sources[record * SRC_WORDS + SRC_NEWEST] = NONE;
      this.sourceIndex.insert(src, 0, 0, 0, 0, record);
    }
    const meta = this.meta;
    const slot = this.freeHead;
    const m = slot * META_WORDS;
    this.freeHead = meta[m + NEXT];
    meta[m + SRC] = src;
    meta[m + DST] = dst;
    meta[m + ID_PROTO] = (id << 8) | protocol;
    meta[m + END] = NONE;
    meta[m + RECEIVED] = 0;
    meta[m + FRAGMENTS] = 0;
    meta[m + HEADER_LEN] = 0;
    meta[m + MAX_SIZE] = 0;
    meta[m + MAX_DF_SIZE] = 0;
    meta[m + ECN_SEEN] = 0;
    meta[m + RUN_COUNT] = 0;
    meta[m + PREV] = this.newest;
    meta[m + NEXT] = NONE;
    if (this.newest === NONE) this.oldest = slot;
    else meta[this.newest * META_WORDS + NEXT] = slot;
    this.newest = slot;
    const r = record * SRC_WORDS;
    meta[m + SOURCE] = record;
    meta[m + SOURCE_PREV] = sources[r + SRC_NEWEST];
    meta[m + SOURCE_NEXT] = NONE;
    if (sources[r + SRC_NEWEST] === NONE) sources[r + SRC_OLDEST] = slot;
    else meta[sources[r + SRC_NEWEST] * META_WORDS + SOURCE_NEXT] = slot;
    sources[r + SRC_NEWEST] = slot;
    sources[r + SRC_COUNT]++;
    this.createdNs[slot] = nowNs;
    // Room for every slot is reserved, so the index cannot be full.
    this.index.insert(src, dst, id, 0, protocol, slot);
    this.count++;
    this.stats.datagrams++;
    return slot;
  }

  /** Counts the datagram discarded for `reason` and frees its slot. */
  private discard(slot: number, reason: DefragDrop): void {
    const m = slot * META_WORDS;
    this.stats.discarded[reason]++;
    this.stats.discardedFragments += this.meta[m + FRAGMENTS];
    this.heldBytes -= this.meta[m + RECEIVED];
    this.release(slot);
  }

  /** Unindexes the slot, unlinks it from its lists (its source's too) and pushes it on the free stack. */
  private release(slot: number): void {
    const meta = this.meta;
    const m = slot * META_WORDS;
    const idProto = meta[m + ID_PROTO];
    this.index.delete(meta[m + SRC], meta[m + DST], idProto >>> 8, 0, idProto & 0xff);
    const sources = this.sources;
    const record = meta[m + SOURCE];
    const r = record * SRC_WORDS;
    const sourcePrev = meta[m + SOURCE_PREV];
    const sourceNext = meta[m + SOURCE_NEXT];
    if (sourcePrev === NONE) sources[r + SRC_OLDEST] = sourceNext;
    else meta[sourcePrev * META_WORDS + SOURCE_NEXT] = sourceNext;
    if (sourceNext === NONE) sources[r + SRC_NEWEST] = sourcePrev;
    else meta[sourceNext * META_WORDS + SOURCE_PREV] = sourcePrev;
    if (--sources[r + SRC_COUNT] === 0) {
      this.sourceIndex.delete(meta[m + SRC], 0, 0, 0, 0);
      sources[r + SRC_OLDEST] = this.freeSource;
      this.freeSource = record;
    }
    const prev = meta[m + PREV];
    const next = meta[m + NEXT];
    if (prev === NONE) this.oldest = next;
    else meta[prev * META_WORDS + NEXT] = next;
    if (next === NONE) this.newest = prev;
    else meta[next * META_WORDS + PREV] = prev;
    meta[m + NEXT] = this.freeHead;
    this.freeHead = slot;
    this.count--;
  }

  /** Where the held payload ends: the last run's end, or 0. */
  private heldEnd(slot: number): number {
    const n = this.meta[slot * META_WORDS + RUN_COUNT];
    return n === 0 ? 0 : this.runs[(slot * this.maxFragments + n - 1) * 2 + 1];
  }

  /**
   * Records [start, end) among the slot's runs: 0 when placed, Duplicate
   * when it lies inside one run (all its bytes held), Overlap when it meets held bytes
   * otherwise. Runs stay sorted and adjacent ones merge, so "inside one run" is the same
   * as "every byte held" (the kernel's rule, over its fragment runs).
   */
  private addRun(slot: number, start: number, end: number): number {
    const runs = this.runs;
    const first = slot * this.maxFragments * 2;
    const m = slot * META_WORDS;
    const n = this.meta[m + RUN_COUNT];
    // The first run that does not end before `start`.
    let i = 0;
    while (i < n && runs[first + i * 2 + 1] <= start) i++;
    if (i < n && runs[first + i * 2] < end) {
      return runs[first + i * 2] <= start && end <= runs[first + i * 2 + 1] ? DefragDrop.Duplicate : DefragDrop.Overlap;
    }
    const joinsPrev = i > 0 && runs[first + (i - 1) * 2 + 1] === start;
    const joinsNext = i < n && runs[first + i * 2] === end;
    if (joinsPrev && joinsNext) {
      // The new bytes close the gap: the previous run swallows the next.
      runs[first + (i - 1) * 2 + 1] = runs[first + i * 2 + 1];
      runs.copyWithin(first + i * 2, first + (i + 1) * 2, first + n * 2);
      this.meta[m + RUN_COUNT] = n - 1;
    } else if (joinsPrev) {
      runs[first + (i - 1) * 2 + 1] = end;
    } else if (joinsNext) {
      runs[first + i * 2] = start;
    } else {
      // A run of its own; there is room, since runs never outnumber fragments.
      runs.copyWithin(first + (i + 1) * 2, first + i * 2, first + n * 2);
      runs[first + i * 2] = start;
      runs[first + i * 2 + 1] = end;
      this.meta[m + RUN_COUNT] = n + 1;
    }
    return 0;
  }

  /** The datagram is whole: fix its header, free the slot and say where it lies. */
  private complete(slot: number): DefragResult {
    const meta = this.meta;
    const m = slot * META_WORDS;
    const headerLength = meta[m + HEADER_LEN];
    const total = headerLength + meta[m + END];
    if (total > this.maxDatagramSize) return this.dropWithDatagram(slot, DefragDrop.TooBig);
    const ecnSeen = meta[m + ECN_SEEN];
    if ((ecnSeen & ECN_NOT_ECT) !== 0 && ecnSeen !== ECN_NOT_ECT) return this.dropWithDatagram(slot, DefragDrop.EcnMismatch);

    const data = this.data;
    const at = slot * this.slotBytes + this.headroom + IPV4_MAX_HEADER_LEN - headerLength;
    writeU16(data, at + TOTAL_LENGTH, total);
    if ((ecnSeen & ECN_CE_BIT) !== 0) data[at + DSCP_ECN] |= ECN_CE;
    const maxSize = meta[m + MAX_SIZE];
    writeU16(data, at + FLAGS_FRAGMENT, meta[m + MAX_DF_SIZE] === maxSize ? FLAG_DF : 0);
    writeU16(data, at + CHECKSUM, 0);
    writeU16(data, at + CHECKSUM, internetChecksum(data, at, headerLength));

    this.completeBuffer = data;
    this.completeOffset = at;
    this.completeLength = total;
    this.maxFragmentSize = maxSize;
    this.heldBytes -= meta[m + RECEIVED];
    this.release(slot);
    this.stats.reassembled++;
    return DefragResult.Complete;
  }
}

