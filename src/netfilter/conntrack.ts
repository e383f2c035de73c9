/**
 * Connection tracking: a bounded table of connections, each known by two tuples, the one
 * its first packet carried (original) and the one its replies carry (reply). The reply
 * tuple already reflects any NAT, so a reply is found by its own header and the entry says
 * how to translate it back (nat.ts).
 *
 * Contract
 * - Pure: no I/O, no clock, no random source. Every call that depends on time takes `now`
 *   in nanoseconds on any monotonic clock (the node pipeline's `now()`); only differences
 *   between values matter. Entries keep milliseconds internally (below).
 * - A lookup from either direction is one FlowTable probe and returns a *ref*:
 *   `id * 2 + dir`, with `dir` 0 for the original direction and 1 for the reply. `refId`
 *   and `refDir` take it apart; per-entry accessors take the id.
 * - `lookup`, `create`, `update`, `destroy` and `expire` allocate nothing and never throw;
 *   they cost a bounded amount of work whatever the table holds (`create` on a full
 *   table looks at `evictionCandidates` entries at most). `list` and `entry` allocate and
 *   are for tools.
 * - Bounded: `maxEntries` connections, all memory allocated in the constructor.
 *
 * Lifecycle, as in the kernel: a new flow's first packet is looked up and misses; the
 * caller decides on NAT (building the reply tuple with nat-port.ts) and calls `create`
 * with both tuples, which applies the first packet. Later packets are `lookup`ed and
 * `update`d: TCP state follows the kernel's table (conntrack-tcp.ts), timeouts are the
 * kernel's defaults (conntrack-timeouts.ts), and the verdict says whether the packet was
 * valid for the connection. Idle entries expire: lazily, when a lookup finds one past its
 * time, and through `expire(now, budget)`, which a dataplane calls every tick and which
 * walks a bounded number of entries per call.
 *
 * When the table is full, `create` makes room as the kernel's early_drop does: it looks at
 * a bounded number of entries (from a rotating position, as the kernel looks at a few hash
 * buckets) and drops the one nearest its expiry among those that are not ASSURED or are a
 * TCP connection already closing. An entry's expiry is its last packet plus its state's
 * timeout, so among entries of one kind that is the oldest. If none qualifies, the new flow
 * is refused and counted; established connections are never pushed out by new ones.
 *
 * Layout. Everything lives in one Int32Array, a row per entry id; there is no object per
 * entry. A row holds both tuples (6 words), the expiry, a word for protocol, TCP state and
 * status, the mark, and when a UDP flow counts as a stream: 40 bytes. With accounting it
 * also holds a packet count (32 bits) and a byte count (48 bits) per direction, both
 * wrapping: 60 bytes. A row rather than a column per field because a packet touches most
 * of them: in a table of a million entries each column cost its own cache miss, a row
 * costs one or two adjacent lines. The index is one FlowTable holding both tuples of
 * every entry, 18 bytes a slot at a load of at most 0.75: 48 to 96 bytes per connection
 * depending on how `2 * maxEntries` rounds up to a power of two of slots (72 at the
 * default 262,144). `bytesPerEntry` reports the total: 112 bytes at the default size
 * without accounting (the kernel's default, nf_conntrack_acct=0), 132 with.
 *
 * UDP as kernel 6.x tracks it (nf_conntrack_udp_packet): until a reply is seen, and for
 * the reply itself, the entry keeps the short timeout (`udp`, 30 s). A packet after the
 * reply earns the stream timeout (`udpStream`, 120 s) and ASSURED only once the flow is
 * two seconds old (the kernel's stream_ts): a query and its answers within two seconds
 * stay short-lived and evictable however many packets they take.
 *
 * Addresses are int32 on the packet path (see FlowTuple): pass them so (readPacketTuple
 * reads them so), since a uint32 above 2^31 handed across a call can cost an allocation.
 *
 * Time. Expiries are int32 milliseconds that wrap, compared by difference as the kernel
 * compares jiffies: exact while the distance is under 2^31 ms (24.8 days). An entry whose
 * remaining time is above the largest timeout must be a stale one seen after wrapping and
 * counts as expired, so only an entry neither looked up nor reaped for some 45 days could
 * come back; the reaper visits every entry long before that.
 */
import { FLOW_NOT_FOUND, FlowTable, MAX_FLOW_ENTRIES } from './flow-table.js';
import {
  tcpClosing,
  TcpEvent,
  tcpEvent,
  tcpFlagsValid,
  TcpState,
  tcpTransition,
  TCP_IGNORE,
  TCP_INVALID,
} from './conntrack-tcp.js';
import { resolveTimeouts, tcpTimeoutsMs, type ConntrackTimeouts } from './conntrack-timeouts.js';
import { FlowTuple, hasPorts, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, isIcmpQuery, readQuotedReplyTuple } from './conntrack-tuple.js';

export const CT_NOT_FOUND = -1;

export const CtDir = { Original: 0, Reply: 1 } as const;
export type CtDir = (typeof CtDir)[keyof typeof CtDir];

/** The entry id of a ref returned by `lookup` or `create`. */
export function refId(ref: number): number {
  return ref >>> 1;
}

/** The direction (CtDir) of a ref: which of the entry's tuples the packet matched. */
export function refDir(ref: number): CtDir {
  return (ref & 1) as CtDir;
}

/** Why `create` made no entry: negative, so that any ref (>= 0) is told apart at a glance. */
export const CreateError = {
  /** The table is full and nothing could be evicted: the flow is refused. */
  Full: -2,
  /** One of the tuples already belongs to a live connection. */
  Clash: -3,
  /** The first packet cannot open a connection (TCP flags, an ICMP type that is not a query). */
  Invalid: -4,
} as const;
export type CreateError = (typeof CreateError)[keyof typeof CreateError];

/** What `update` made of a packet. */
export const TrackVerdict = {
  Accept: 0,
  /** Out of state (or impossible flags): the entry is unchanged; kube-proxy drops ctstate INVALID. */
  Invalid: 1,
  /** Passed through without touching the entry (the kernel's "ignore"): treat as Accept. */
  Ignored: 2,
  /**
   * A SYN reopening a connection in TIME_WAIT or CLOSE. The old entry is gone: handle the
   * packet as a new flow (a new NAT decision, `create`).
   */
  Reopen: 3,
} as const;
export type TrackVerdict = (typeof TrackVerdict)[keyof typeof TrackVerdict];

/** Why an entry left the table, as told to a ConntrackListener. */
export const RemovalCause = {
  /** Past its timeout: found so by a lookup, the reaper or the search for room. */
  Expired: 0,
  /** Dropped to make room for a new connection (early_drop). */
  Evicted: 1,
  /** Removed by `destroy`, or by a SYN reopening a closed connection. */
  Destroyed: 2,
} as const;
export type RemovalCause = (typeof RemovalCause)[keyof typeof RemovalCause];

/**
 * Told about each connection as it leaves the table (the kernel's conntrack DESTROY
 * event), while its row can still be read; not for `flush`, which empties the table at once.
 */
export interface ConntrackListener {
  removing(id: number, cause: RemovalCause): void;
}

/** NAT an entry carries, read from its tuples: bit 1 source (SNAT), bit 2 destination (DNAT). */
export const NatKind = { None: 0, Snat: 1, Dnat: 2, Both: 3 } as const;
export type NatKind = (typeof NatKind)[keyof typeof NatKind];

export interface ConntrackOptions {
  /** Most connections held; default 262,144. */
  readonly maxEntries?: number;
  /** Hash seed for the index (any uint32); pick it from a secure random source per node. */
  readonly seed?: number;
  /** Per-protocol timeouts in seconds; unset ones are the kernel's defaults. */
  readonly timeouts?: Partial<ConntrackTimeouts>;
  /** Packet and byte counters per direction (the kernel's nf_conntrack_acct); default false, as the kernel's. */
  readonly accounting?: boolean;
  /** Entries examined to make room when the table is full; default 8, as the kernel's NF_CT_EVICTION_RANGE. */
  readonly evictionCandidates?: number;
  /**
   * A cell the owner writes the time into (ns) once per batch. `lookup`, `lookupTuple`
   * and `update` called without `now` read it there, so that a time above 2^31, a double,
   * never crosses a call per packet (each crossing would be a heap number).
   */
  readonly clock?: Float64Array;
}

export const DEFAULT_MAX_ENTRIES = 262_144;
const DEFAULT_EVICTION_CANDIDATES = 8;

export interface ConntrackStats {
  /** Connections created. */
  inserted: number;
  /** Dropped to make room for a new one. */
  evicted: number;
  /** New flows refused because the table was full and nothing could be evicted. */
  refusedFull: number;
  /** Removed at the end of their timeout, by a lookup or the reaper. */
  expired: number;
  /** Packets refused: impossible TCP flags, out-of-state segments, ICMP that opens nothing. */
  invalid: number;
  /** New flows refused because a tuple already belonged to a live connection. */
  clashed: number;
  /** Removed by `destroy`, `flush` or a reopening SYN. */
  destroyed: number;
}

export interface ConntrackTupleRecord {
  readonly src: number;
  readonly dst: number;
  /** ICMP: the identifier. */
  readonly sport: number;
  /** ICMP: `type << 8 | code`. */
  readonly dport: number;
}

export interface ConntrackCounters {
  readonly packets: number;
  readonly bytes: number;
}

/** A snapshot of one connection, for tools (`list`, `formatConntrack`). */
export interface ConntrackEntry {
  readonly id: number;
  readonly proto: number;
  readonly original: ConntrackTupleRecord;
  readonly reply: ConntrackTupleRecord;
  /** TCP only. */
  readonly tcpState?: TcpState;
  /** Whole seconds left, rounded down, as `conntrack -L` prints them. */
  readonly timeoutSeconds: number;
  readonly assured: boolean;
  readonly seenReply: boolean;
  readonly nat: NatKind;
  readonly mark: number;
  /** With accounting only. */
  readonly counters?: { readonly original: ConntrackCounters; readonly reply: ConntrackCounters };
}

// Row layout: one Int32Array row per entry, so that everything a packet touches (its
// tuples, expiry, state, counters) sits in one or two adjacent cache lines; with a column
// per field a packet of a large table cost a cache miss per column.
const ORIG_SRC = 0;
const ORIG_DST = 1;
/** sport << 16 | dport. */
const ORIG_PORTS = 2;
const REPLY_SRC = 3;
const REPLY_DST = 4;
const REPLY_PORTS = 5;
/** Words from a direction's tuple to the other's. */
const DIR_WORDS = 3;
/** Wrapping int32 milliseconds; doubles as the free-list link while the entry is free. */
const EXPIRES = 6;
/** protocol | TCP state << 8 | status << 16. */
const META = 7;
const MARK = 8;
/** UDP: the wrapping ms after which a flow seen both ways counts as a stream (the kernel's stream_ts). */
const STREAM_AT = 9;
/**
 * With accounting: packets per direction (uint32, wrapping), the low 32 bits of the bytes
 * per direction, and one word holding both directions' next 16 bits (original low half,
 * reply high half): 48-bit byte counts, 256 TiB per direction, for one word less than a
 * pair of 64-bit ones, which keeps the default table within 128 bytes a connection.
 */
const PACKETS = 10;
const BYTES_LOW = 12;
const BYTES_HIGH = 14;
const ROW_WORDS_PLAIN = 10;
const ROW_WORDS_ACCOUNTING = 15;
/** How long a UDP flow must have lived before replies make it a stream: the kernel's 2 * HZ. */
const UDP_STREAM_AFTER_MS = 2000;

const STATE_SHIFT = 8;
const STATUS_SHIFT = 16;
// Status bits.
const ALLOCATED = 1;
const SEEN_REPLY = 2;
const ASSURED = 4;
/** The kernel's IP_CT_TCP_SIMULTANEOUS_OPEN: lets the reply's ACK complete SYN_RECV. */
const SIMULTANEOUS_OPEN = 8;
/**
 * The reply tuple is not the original's plain inverse (IPS_NAT_MASK): set once at create,
 * so that the packet path can skip translation of the many connections that have none.
 */
const NATTED = 16;
/** An observer was told of this connection's end already (it closed): its removal is no news. */
const REPORTED = 32;

const NS_PER_MS = 1_000_000;
const TWO_POW_32 = 0x1_0000_0000;

/** `now` (ns) as wrapping int32 milliseconds. */
function msOf(now: number): number {
  return (now / NS_PER_MS) | 0;
}

function packPorts(sport: number, dport: number): number {
  return ((sport & 0xffff) << 16) | (dport & 0xffff);
}

export class Conntrack {
  readonly maxEntries: number;
  readonly accounting: boolean;
  readonly timeouts: ConntrackTimeouts;
  readonly stats: ConntrackStats = { inserted: 0, evicted: 0, refusedFull: 0, expired: 0, invalid: 0, clashed: 0, destroyed: 0 };
  /** Told of every removal but a flush (the flow recorder's connection ends). */
  listener: ConntrackListener | undefined = undefined;

  private readonly index: FlowTable;
  private readonly rows: Int32Array;
  /** For `lookupRelated`, so that it allocates nothing. */
  private readonly scratch = new FlowTuple();
  private readonly rowWords: number;

  private readonly tcpMs: Int32Array;
  private readonly tcpUnackMs: number;
  private readonly udpMs: number;
  private readonly udpStreamMs: number;
  private readonly icmpMs: number;
  private readonly genericMs: number;
  private readonly maxTimeoutMs: number;
  private readonly evictionCandidates: number;

  private readonly clock: Float64Array;
  private count = 0;
  /** Ids below this have been handed out at least once; those above never. */
  private highWater = 0;
  /** Head of the free list, threaded through the EXPIRES word of free entries; -1 when empty. */
  private freeHead = -1;
  private reapHand = 0;
  private evictHand = 0;

  /** Throws RangeError on a bad option: a configuration error, not a packet. */
  constructor(options: ConntrackOptions = {}) {
    this.clock = options.clock ?? new Float64Array(1);
    const max = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 1 || max > MAX_FLOW_ENTRIES / 2) {
      throw new RangeError(`conntrack maxEntries must be an integer from 1 to ${MAX_FLOW_ENTRIES / 2}, got ${max}`);
    }
    const candidates = options.evictionCandidates ?? DEFAULT_EVICTION_CANDIDATES;
    if (!Number.isInteger(candidates) || candidates < 0) {
      throw new RangeError(`conntrack evictionCandidates must be a non-negative integer, got ${candidates}`);
    }
    this.maxEntries = max;
    this.accounting = options.accounting ?? false;
    this.evictionCandidates = candidates;
    this.timeouts = resolveTimeouts(options.timeouts);

    // Both tuples of every entry: 2 * max keys.
    this.index = new FlowTable(2 * max, options.seed ?? 0);
    this.rowWords = this.accounting ? ROW_WORDS_ACCOUNTING : ROW_WORDS_PLAIN;
    this.rows = new Int32Array(max * this.rowWords);

    const t = this.timeouts;
    this.tcpMs = tcpTimeoutsMs(t);
    this.tcpUnackMs = t.tcpUnacknowledged * 1000;
    this.udpMs = t.udp * 1000;
    this.udpStreamMs = t.udpStream * 1000;
    this.icmpMs = t.icmp * 1000;
    this.genericMs = t.generic * 1000;
    this.maxTimeoutMs = Math.max(...Object.values(t)) * 1000;
  }

  /** Connections held, expired ones not yet reaped included. */
  get size(): number {
    return this.count;
  }

  /** Bytes of typed arrays behind the table and its index, all allocated up front. */
  get byteLength(): number {
    return this.index.byteLength + this.rows.byteLength;
  }

  /** `byteLength / maxEntries`: what each connection the table can hold costs, index included. */
  get bytesPerEntry(): number {
    return this.byteLength / this.maxEntries;
  }

  /** Bytes per connection spent on the index alone. */
  get indexBytesPerEntry(): number {
    return this.index.byteLength / this.maxEntries;
  }

  // ---- the packet path -----------------------------------------------------------------

  /**
   * The ref (id * 2 + dir) of the live connection one of whose tuples this is, or
   * CT_NOT_FOUND. An entry found past its timeout is removed (counted as expired) and
   * reported as not found. One index probe; allocates nothing.
   */
  lookup(src: number, dst: number, sport: number, dport: number, proto: number, now: number = this.clock[0]): number {
    const ref = this.index.lookup(src, dst, sport, dport, proto);
    if (ref === FLOW_NOT_FOUND) return CT_NOT_FOUND;
    const id = ref >>> 1;
    // msOf by hand: should the call not be inlined, the double `now` would cross it boxed.
    if (!this.isLive(id, (now / NS_PER_MS) | 0)) {
      this.remove(id, RemovalCause.Expired);
      this.stats.expired++;
      return CT_NOT_FOUND;
    }
    return ref;
  }

  lookupTuple(t: FlowTuple, now?: number): number {
    // An undefined `now` reaches lookup's default: no double crosses the call.
    return this.lookup(t.src, t.dst, t.sport, t.dport, t.proto, now);
  }

  /**
   * The connection an ICMP error is RELATED to, from the datagram it quotes at
   * `buf[at, at + available)` (the ICMP payload): the ref, whose direction is the one the
   * error travels in, or CT_NOT_FOUND when the quote is unusable or matches nothing.
   * `readPacketTuple` gives the same tuple for a whole packet. Allocates nothing.
   */
  lookupRelated(buf: Uint8Array, at: number, available: number, now: number): number {
    if (!readQuotedReplyTuple(buf, at, available, this.scratch)) return CT_NOT_FOUND;
    return this.lookupTuple(this.scratch, now);
  }

  /** True when a live connection holds `t` as either of its tuples: NAT must not pick it. */
  isTaken(t: FlowTuple, now: number): boolean {
    return this.lookupTuple(t, now) !== CT_NOT_FOUND;
  }

  /**
   * Creates the connection whose first packet (original direction, `length` bytes of IP,
   * TCP flags `tcpFlags`, ignored for other protocols) carried `orig`, and whose replies
   * will carry `reply` (after NAT; `reply.setReplyOf(orig)` when there is none), and
   * applies that packet. Returns the ref of the original direction (`id * 2`) or a
   * CreateError. Allocates nothing.
   */
  create(orig: FlowTuple, reply: FlowTuple, tcpFlags: number, length: number, now: number): number {
    const proto = orig.proto;
    if (reply.proto !== proto || !this.opensConnection(orig, tcpFlags)) {
      this.stats.invalid++;
      return CreateError.Invalid;
    }
    const same = orig.equals(reply);
    if (this.isTaken(orig, now) || (!same && this.isTaken(reply, now))) {
      this.stats.clashed++;
      return CreateError.Clash;
    }
    const t = msOf(now);
    const id = this.allocate(t);
    if (id < 0) {
      this.stats.refusedFull++;
      return CreateError.Full;
    }

    const rows = this.rows;
    const r = id * this.rowWords;
    rows[r + ORIG_SRC] = orig.src;
    rows[r + ORIG_DST] = orig.dst;
    rows[r + ORIG_PORTS] = packPorts(orig.sport, orig.dport);
    rows[r + REPLY_SRC] = reply.src;
    rows[r + REPLY_DST] = reply.dst;
    rows[r + REPLY_PORTS] = packPorts(reply.sport, reply.dport);
    rows[r + META] = proto | (TcpState.None << STATE_SHIFT) | (ALLOCATED << STATUS_SHIFT);
    if (this.natKind(id) !== NatKind.None) rows[r + META] |= NATTED << STATUS_SHIFT;
    rows[r + MARK] = 0;
    rows[r + STREAM_AT] = (t + UDP_STREAM_AFTER_MS) | 0;
    if (this.accounting) rows.fill(0, r + PACKETS, r + ROW_WORDS_ACCOUNTING);
    // Both keys were checked free above and the index has room for two per entry.
    this.index.insert(orig.src, orig.dst, orig.sport, orig.dport, proto, id * 2);
    if (!same) this.index.insert(reply.src, reply.dst, reply.sport, reply.dport, proto, id * 2 + 1);
    this.count++;
    this.stats.inserted++;
    this.track(id, CtDir.Original, tcpFlags, length, t);
    return id * 2;
  }

  /**
   * Applies a packet of `length` bytes (the IP total length, for accounting) travelling in
   * the direction of `ref`, with TCP flags `tcpFlags` (ignored for other protocols): the
   * TCP state, ASSURED, SEEN_REPLY, the timeout, the counters. Allocates nothing.
   */
  update(ref: number, tcpFlags: number, length: number, now: number = this.clock[0]): TrackVerdict {
    return this.track(ref >>> 1, ref & 1, tcpFlags, length, (now / NS_PER_MS) | 0);
  }

  /** Removes the connection `ref` (either direction) refers to. */
  destroy(ref: number): void {
    const id = ref >>> 1;
    if (id >= this.highWater || (this.status(id) & ALLOCATED) === 0) return;
    this.remove(id, RemovalCause.Destroyed);
    this.stats.destroyed++;
  }

  /** Removes every connection. */
  flush(): void {
    this.stats.destroyed += this.count;
    this.index.clear();
    for (let id = 0; id < this.highWater; id++) this.rows[id * this.rowWords + META] = 0;
    this.count = 0;
    this.highWater = 0;
    this.freeHead = -1;
    this.reapHand = 0;
    this.evictHand = 0;
  }

  /**
   * The reaper: examines the next `budget` entries (in id order, resuming where the last
   * call stopped) and removes those past their timeout. Returns how many it removed. A
   * dataplane calls it every tick with a budget that visits the whole table within a few
   * seconds to minutes. Allocates nothing.
   */
  expire(now: number, budget: number): number {
    const hw = this.highWater;
    if (hw === 0) return 0;
    const t = msOf(now);
    const steps = Math.min(budget, hw);
    let hand = this.reapHand;
    let removed = 0;
    for (let k = 0; k < steps; k++) {
      if (hand >= hw) hand = 0;
      if ((this.status(hand) & ALLOCATED) !== 0 && !this.isLive(hand, t)) {
        this.remove(hand, RemovalCause.Expired);
        removed++;
      }
      hand++;
    }
    this.reapHand = hand;
    this.stats.expired += removed;
    return removed;
  }

  // ---- per-entry reads (ids from refId; allocation-free) -------------------------------

  protocol(id: number): number {
    return this.rows[id * this.rowWords + META] & 0xff;
  }

  /** A tuple field of direction `dir`. Addresses as int32, as FlowTuple holds them (`>>> 0` for the uint32). */
  tupleSrc(id: number, dir: number): number {
    return this.rows[id * this.rowWords + dir * DIR_WORDS + ORIG_SRC];
  }
  tupleDst(id: number, dir: number): number {
    return this.rows[id * this.rowWords + dir * DIR_WORDS + ORIG_DST];
  }
  /** ICMP: the identifier. */
  tupleSport(id: number, dir: number): number {
    return this.rows[id * this.rowWords + dir * DIR_WORDS + ORIG_PORTS] >>> 16;
  }
  /** ICMP: `type << 8 | code`. */
  tupleDport(id: number, dir: number): number {
    return this.rows[id * this.rowWords + dir * DIR_WORDS + ORIG_PORTS] & 0xffff;
  }

  /** Copies the tuple of direction `dir` into `out`. */
  readTuple(id: number, dir: number, out: FlowTuple): FlowTuple {
    return out.set(this.tupleSrc(id, dir), this.tupleDst(id, dir), this.tupleSport(id, dir), this.tupleDport(id, dir), this.protocol(id));
  }

  /** TcpState; NONE for other protocols. */
  tcpState(id: number): number {
    return (this.rows[id * this.rowWords + META] >>> STATE_SHIFT) & 0xff;
  }

  isAssured(id: number): boolean {
    return (this.status(id) & ASSURED) !== 0;
  }

  seenReply(id: number): boolean {
    return (this.status(id) & SEEN_REPLY) !== 0;
  }

  /**
   * Marks that an observer has told of this connection's end; true the first time, false
   * when it was marked already. The mark lives as long as the entry.
   */
  markReported(id: number): boolean {
    const r = id * this.rowWords + META;
    if (((this.rows[r] >>> STATUS_SHIFT) & REPORTED) !== 0) return false;
    this.rows[r] |= REPORTED << STATUS_SHIFT;
    return true;
  }

  isReported(id: number): boolean {
    return (this.status(id) & REPORTED) !== 0;
  }

  mark(id: number): number {
    return this.rows[id * this.rowWords + MARK] >>> 0;
  }

  setMark(id: number, mark: number): void {
    this.rows[id * this.rowWords + MARK] = mark;
  }

  /** Packets seen in direction `dir` (a uint32 that wraps); 0 without accounting. */
  packets(id: number, dir: number): number {
    return this.accounting ? this.rows[id * this.rowWords + PACKETS + dir] >>> 0 : 0;
  }

  /** Bytes (IP total lengths) seen in direction `dir`, a 48-bit count that wraps; 0 without accounting. */
  bytes(id: number, dir: number): number {
    if (!this.accounting) return 0;
    const r = id * this.rowWords;
    const high = this.rows[r + BYTES_HIGH];
    return (dir === 0 ? high & 0xffff : high >>> 16) * TWO_POW_32 + (this.rows[r + BYTES_LOW + dir] >>> 0);
  }

  /** Milliseconds left before the entry expires (0 or less: expired). */
  remainingMs(id: number, now: number): number {
    return (this.rows[id * this.rowWords + EXPIRES] - msOf(now)) | 0;
  }

  /** Whether connection `id` translates anything (natKind not None), from its status. */
  natted(id: number): boolean {
    return ((this.rows[id * this.rowWords + META] >>> STATUS_SHIFT) & NATTED) !== 0;
  }

  natKind(id: number): NatKind {
    const rows = this.rows;
    const r = id * this.rowWords;
    const origPorts = rows[r + ORIG_PORTS];
    const replyPorts = rows[r + REPLY_PORTS];
    let snat = rows[r + ORIG_SRC] !== rows[r + REPLY_DST];
    let dnat = rows[r + ORIG_DST] !== rows[r + REPLY_SRC];
    const proto = rows[r + META] & 0xff;
    if (hasPorts(proto)) {
      // Ports swap between the directions: original sport is the reply's dport.
      snat ||= origPorts >>> 16 !== (replyPorts & 0xffff);
      dnat ||= (origPorts & 0xffff) !== replyPorts >>> 16;
    } else if (proto === IPPROTO_ICMP) {
      // The identifier sits in the sport slot both ways; SNAT is what changes it.
      snat ||= origPorts >>> 16 !== replyPorts >>> 16;
    }
    return ((snat ? NatKind.Snat : 0) | (dnat ? NatKind.Dnat : 0)) as NatKind;
  }

  // ---- tools ---------------------------------------------------------------------------

  /** A snapshot of the live connection `id`, or undefined. Allocates; not for the packet path. */
  entry(id: number, now: number): ConntrackEntry | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.highWater || (this.status(id) & ALLOCATED) === 0) return undefined;
    if (!this.isLive(id, msOf(now))) return undefined;
    const tuple = (dir: number): ConntrackTupleRecord => ({
      src: this.tupleSrc(id, dir) >>> 0,
      dst: this.tupleDst(id, dir) >>> 0,
      sport: this.tupleSport(id, dir),
      dport: this.tupleDport(id, dir),
    });
    const counters = (dir: number): ConntrackCounters => ({ packets: this.packets(id, dir), bytes: this.bytes(id, dir) });
    const proto = this.protocol(id);
    return {
      id,
      proto,
      original: tuple(CtDir.Original),
      reply: tuple(CtDir.Reply),
      ...(proto === IPPROTO_TCP ? { tcpState: this.tcpState(id) as TcpState } : {}),
      timeoutSeconds: Math.floor(this.remainingMs(id, now) / 1000),
      assured: this.isAssured(id),
      seenReply: this.seenReply(id),
      nat: this.natKind(id),
      mark: this.mark(id),
      ...(this.accounting ? { counters: { original: counters(CtDir.Original), reply: counters(CtDir.Reply) } } : {}),
    };
  }

  /** Every live connection, in id order. Allocates; for tools. */
  list(now: number): ConntrackEntry[] {
    const out: ConntrackEntry[] = [];
    for (let id = 0; id < this.highWater; id++) {
      const e = this.entry(id, now);
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  // ---- internals -----------------------------------------------------------------------

  private status(id: number): number {
    return (this.rows[id * this.rowWords + META] >>> STATUS_SHIFT) & 0xff;
  }

  /** Whether `orig`, carried by a first packet with `tcpFlags`, may open a connection. */
  private opensConnection(orig: FlowTuple, tcpFlags: number): boolean {
    if (orig.proto === IPPROTO_TCP) {
      if (!tcpFlagsValid(tcpFlags)) return false;
      const next = tcpTransition(CtDir.Original, tcpEvent(tcpFlags), TcpState.None);
      return next !== TCP_INVALID && next !== TCP_IGNORE;
    }
    if (orig.proto === IPPROTO_ICMP) return isIcmpQuery(orig.dport >>> 8);
    return true;
  }

  /**
   * The state machine and timeouts for one packet (the kernel's l4 `packet` handlers and
   * the SEEN_REPLY bookkeeping of nf_conntrack_in). `t` in wrapping milliseconds.
   */
  private track(id: number, dir: number, tcpFlags: number, length: number, t: number): TrackVerdict {
    const rows = this.rows;
    const r = id * this.rowWords;
    const meta = rows[r + META];
    const proto = meta & 0xff;
    let status = (meta >>> STATUS_SHIFT) & 0xff;
    let state = (meta >>> STATE_SHIFT) & 0xff;
    let timeout: number;
    if (proto === IPPROTO_TCP) {
      if (!tcpFlagsValid(tcpFlags)) {
        this.stats.invalid++;
        return TrackVerdict.Invalid;
      }
      const event = tcpEvent(tcpFlags);
      const old = state;
      let next = tcpTransition(dir, event, old);
      if (next === TCP_INVALID) {
        this.stats.invalid++;
        return TrackVerdict.Invalid;
      }
      if (next === TCP_IGNORE) return TrackVerdict.Ignored;
      if (next === TcpState.SynSent && (old === TcpState.TimeWait || old === TcpState.Close)) {
        // RFC 1122 lets a SYN reopen a closed connection; the new one may deserve a new
        // NAT decision, so the old entry goes and the caller starts afresh. (The kernel
        // ignores the SYN in one corner, a CLOSE reached by the peer's RST with no FIN
        // seen; podwire reopens there too rather than keep a stale 10-second entry.)
        this.remove(id, RemovalCause.Destroyed);
        this.stats.destroyed++;
        return TrackVerdict.Reopen;
      }
      if (next === TcpState.SynSent2) {
        status |= SIMULTANEOUS_OPEN;
      } else if (next === TcpState.SynRecv && dir === CtDir.Reply && event === TcpEvent.Ack && (status & SIMULTANEOUS_OPEN) !== 0) {
        // In a simultaneous open the last ACK comes from the reply side; the table alone cannot know.
        next = TcpState.Established;
      }
      state = next;
      timeout = this.tcpMs[next];
      if ((status & SEEN_REPLY) === 0) {
        if (event === TcpEvent.Rst) {
          // Only a RST back (connection refused) or an abort before any reply: the
          // connection never existed. The packet passes, translated by this entry; the
          // entry dies now and the next lookup or reap removes it.
          rows[r + EXPIRES] = t;
          this.finishPacket(r, dir, proto, state, status, length);
          return TrackVerdict.Accept;
        }
        if (event === TcpEvent.Syn && old === TcpState.SynSent) {
          // A retransmitted SYN does not extend the entry, or a client (or a NAT in front
          // of it) reusing the port could keep it, and its NAT binding, alive forever.
          this.finishPacket(r, dir, proto, state, status, length);
          return TrackVerdict.Accept;
        }
        // Picked up mid-stream from a lone ACK: no five-day timeout until the peer answers.
        if (next === TcpState.Established && timeout > this.tcpUnackMs) timeout = this.tcpUnackMs;
      } else if ((status & ASSURED) === 0 && (old === TcpState.SynRecv || old === TcpState.Established) && next === TcpState.Established) {
        status |= ASSURED;
      }
    } else if (proto === IPPROTO_UDP) {
      // Traffic both ways makes a stream once the flow is two seconds old: a packet after
      // the first reply (SEEN_REPLY is set once the reply itself has been handled) earns the
      // long timeout and ASSURED from then on. A DNS query and its answers stay short-lived
      // and evictable, as in the kernel.
      timeout = this.udpMs;
      if ((status & SEEN_REPLY) !== 0 && ((t - rows[r + STREAM_AT]) | 0) > 0) {
        timeout = this.udpStreamMs;
        status |= ASSURED;
      }
    } else if (proto === IPPROTO_ICMP) {
      timeout = this.icmpMs;
    } else {
      timeout = this.genericMs;
    }
    rows[r + EXPIRES] = (t + timeout) | 0;
    this.finishPacket(r, dir, proto, state, status, length);
    return TrackVerdict.Accept;
  }

  /** After the protocol's handling: SEEN_REPLY for a reply, the meta word written back, the counters. */
  private finishPacket(r: number, dir: number, proto: number, state: number, status: number, length: number): void {
    if (dir === CtDir.Reply) status |= SEEN_REPLY;
    const rows = this.rows;
    rows[r + META] = proto | (state << STATE_SHIFT) | (status << STATUS_SHIFT);
    if (this.accounting) {
      rows[r + PACKETS + dir]++;
      // The low word wraps on store; the carry goes into this direction's half of the high word.
      const low = r + BYTES_LOW + dir;
      const sum = (rows[low] >>> 0) + length;
      rows[low] = sum;
      if (sum >= TWO_POW_32) {
        const high = rows[r + BYTES_HIGH];
        rows[r + BYTES_HIGH] = dir === 0 ? (high & ~0xffff) | ((high + 1) & 0xffff) : high + 0x10000;
      }
    }
  }

  private isLive(id: number, t: number): boolean {
    const left = (this.rows[id * this.rowWords + EXPIRES] - t) | 0;
    return left > 0 && left <= this.maxTimeoutMs;
  }

  /** A free id, making room if the table is full; -1 when there is none. */
  private allocate(t: number): number {
    if (this.freeHead < 0) {
      if (this.highWater < this.maxEntries) return this.highWater++;
      if (!this.makeRoom(t)) return -1;
    }
    const id = this.freeHead;
    this.freeHead = this.rows[id * this.rowWords + EXPIRES];
    return id;
  }

  /**
   * The kernel's early_drop, over a bounded window of entries from a rotating hand: an
   * expired entry found there is reaped and ends the search; otherwise the evictable one
   * nearest its expiry goes. False when the window holds nothing evictable.
   */
  private makeRoom(t: number): boolean {
    const max = this.maxEntries;
    const rows = this.rows;
    let hand = this.evictHand;
    let victim = -1;
    let victimLeft = 0;
    for (let k = 0; k < this.evictionCandidates; k++) {
      if (hand >= max) hand = 0;
      const id = hand++;
      const r = id * this.rowWords;
      const meta = rows[r + META];
      const status = (meta >>> STATUS_SHIFT) & 0xff;
      if ((status & ALLOCATED) === 0) continue;
      if (!this.isLive(id, t)) {
        this.remove(id, RemovalCause.Expired);
        this.stats.expired++;
        this.evictHand = hand;
        return true;
      }
      const closingTcp = (meta & 0xff) === IPPROTO_TCP && tcpClosing((meta >>> STATE_SHIFT) & 0xff);
      if ((status & ASSURED) !== 0 && !closingTcp) continue;
      const left = (rows[r + EXPIRES] - t) | 0;
      if (victim < 0 || left < victimLeft) {
        victim = id;
        victimLeft = left;
      }
    }
    this.evictHand = hand;
    if (victim < 0) return false;
    this.remove(victim, RemovalCause.Evicted);
    this.stats.evicted++;
    return true;
  }

  /** Tells the listener, then unindexes entry `id` and puts it on the free list. */
  private remove(id: number, cause: RemovalCause): void {
    if (this.listener !== undefined) this.listener.removing(id, cause);
    const rows = this.rows;
    const r = id * this.rowWords;
    const proto = rows[r + META] & 0xff;
    const origPorts = rows[r + ORIG_PORTS];
    this.index.delete(rows[r + ORIG_SRC], rows[r + ORIG_DST], origPorts >>> 16, origPorts & 0xffff, proto);
    const replyPorts = rows[r + REPLY_PORTS];
    if (rows[r + REPLY_SRC] !== rows[r + ORIG_SRC] || rows[r + REPLY_DST] !== rows[r + ORIG_DST] || replyPorts !== origPorts) {
      this.index.delete(rows[r + REPLY_SRC], rows[r + REPLY_DST], replyPorts >>> 16, replyPorts & 0xffff, proto);
    }
    rows[r + META] = 0;
    rows[r + EXPIRES] = this.freeHead;
    this.freeHead = id;
    this.count--;
  }
}
