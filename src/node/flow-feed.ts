/**
 * `podwire observe` on a node: the flow ring read for a control client, filtered, made into
 * Hubble flows slice by slice, and, when following, read again where it was left every
 * tick. The path never waits for a reader: a reader that falls more than a ring behind
 * (its socket full, its terminal slow) is told how many events it lost, and goes on from
 * the oldest event still held.
 *
 * Slices take turns with every other listing of the node (conntrack-listing.ts's
 * nextTurn): a millisecond's sleep, then the event loop's check phase, so frames that
 * arrived meanwhile are forwarded first. An idle follower sends the node's clock now and
 * then (the watermark), so that a CLI merging several nodes in time order is not held back
 * by the quiet one, and so that a client gone away is noticed.
 */
import type { FlowRing } from '../datapath/flow-ring.js';
import { DROP_REASONS } from '../datapath/drops.js';
import type { FlowRecorder } from '../datapath/flow-recorder.js';
import { buildFlow, type BuildContext } from '../observe/build.js';
import { flowPasses } from '../observe/filter.js';
import { parseTimestamp, timestampMicros } from '../observe/flow.js';
import type { ChunkSink, ObserveChunk, ObservedFlow, ObserveQuery, ObserveSummary } from './control-protocol.js';
import { nextTurn } from './conntrack-listing.js';

export interface FeedLimits {
  /** Events made into flows per slice. */
  readonly eventsPerTurn: number;
  /** Flows in one chunk at most. */
  readonly flowsPerChunk: number;
  /** How often a follower looks for new events (ms). */
  readonly pollMs: number;
  /** How long a follower with nothing to send waits before it sends the watermark alone (ms). */
  readonly heartbeatMs: number;
}

export const DEFAULT_FEED_LIMITS: FeedLimits = { eventsPerTurn: 512, flowsPerChunk: 256, pollMs: 100, heartbeatMs: 500 };

export class FlowFeed {
  private stopped = false;
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly recorder: FlowRecorder,
    /** Names and time for the flows, the node's view now. */
    private readonly context: () => BuildContext,
    /** The path's clock now (ns). */
    private readonly clock: () => number,
    private readonly limits: FeedLimits = DEFAULT_FEED_LIMITS,
    private readonly turn: () => Promise<void> = nextTurn,
  ) {}

  /** Ends every stream at its next step (the node is stopping). */
  close(): void {
    this.stopped = true;
    for (const wake of this.wakers) wake();
  }

  /** What the recorder wrote and what its rate limits held back, for `status`. */
  stats(): Pick<ObserveSummary, 'recorded' | 'capacity' | 'suppressed'> {
    const suppressed: Record<string, number> = {};
    this.recorder.drops.suppressed.forEach((n, reason) => {
      if (n > 0) suppressed[DROP_REASONS[reason].name] = n;
    });
    if (this.recorder.dns.suppressed[0] > 0) suppressed.dns = this.recorder.dns.suppressed[0];
    return { recorded: this.recorder.ring.written, capacity: this.recorder.ring.capacity, suppressed };
  }

  private summary(shown: number, lost: number): ObserveSummary {
    return { shown, lost, ...this.stats() };
  }

  async stream(query: ObserveQuery, sink: ChunkSink<ObserveChunk>): Promise<ObserveSummary> {
    const ring = this.recorder.ring;
    const reader = new Reader(ring, query, this.limits.flowsPerChunk);
    if (query.follow && query.last === undefined && query.since === undefined) {
      reader.seq = ring.written;
    } else {
      await this.scan(reader, ring.written, query.last !== undefined, sink);
      if (query.last !== undefined) await reader.sendLast(query.last, sink, this.watermark());
    }
    if (!query.follow) return this.summary(reader.shown, reader.lost);
    let quietSince = Date.now();
    while (!this.stopped) {
      await this.sleep(this.limits.pollMs);
      const sent = await this.scan(reader, ring.written, false, sink);
      if (sent || Date.now() - quietSince >= this.limits.heartbeatMs) {
        if (!sent) await sink.send({ flows: [], watermark: this.watermark() });
        quietSince = Date.now();
      }
    }
    return this.summary(reader.shown, reader.lost);
  }

  /** The node's clock as the flows' time base (µs since the epoch). */
  private watermark(): number {
    return timestampMicros(this.context().time(this.clock()));
  }

  /**
   * Reads events up to `end` slice by slice; kept for `sendLast` when `hold`, else sent.
   * True when a chunk went out.
   */
  private async scan(reader: Reader, end: number, hold: boolean, sink: ChunkSink<ObserveChunk>): Promise<boolean> {
    let sent = false;
    while (reader.seq < end && !this.stopped) {
      await this.turn();
      const ctx = this.context();
      const sliceEnd = Math.min(end, reader.seq + this.limits.eventsPerTurn);
      reader.read(sliceEnd, ctx);
      while (!hold && reader.full()) {
        await sink.send(reader.chunk(this.watermark()));
        sent = true;
      }
    }
    while (!hold && reader.pending()) {
      await sink.send(reader.chunk(this.watermark()));
      sent = true;
    }
    return sent;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }
}

/** One client's place in the ring and what it has read but not sent. */
class Reader {
  seq: number;
  shown = 0;
  lost = 0;
  pendingLost = 0;
  private flows: ObservedFlow[] = [];
  private readonly since: number | undefined;

  constructor(
    private readonly ring: FlowRing,
    private readonly query: ObserveQuery,
    private readonly perChunk: number,
  ) {
    this.seq = ring.oldest;
    this.since = query.since;
  }

  /** Makes the events up to `end` into flows, the ones that pass kept; a gap overwritten is counted lost. */
  read(end: number, ctx: BuildContext): void {
    const oldest = this.ring.oldest;
    if (this.seq < oldest) {
      this.pendingLost += oldest - this.seq;
      this.lost += oldest - this.seq;
      this.seq = oldest;
    }
    for (; this.seq < end; this.seq++) {
      const flow = buildFlow(this.ring, this.seq, ctx);
      if (flow === undefined || !flowPasses(this.query.filters, flow)) continue;
      const at = timestampMicros(parseTimestamp(flow.time)!);
      if (this.since !== undefined && at < this.since) continue;
      this.flows.push({ at, flow });
    }
  }

  /** A whole chunk is waiting. */
  full(): boolean {
    return this.flows.length >= this.perChunk;
  }

  /** Something is waiting to be sent: flows, or the count of lost ones. */
  pending(): boolean {
    return this.flows.length > 0 || this.pendingLost > 0;
  }

  chunk(watermark: number): ObserveChunk {
    const flows = this.flows.splice(0, this.perChunk);
    this.shown += flows.length;
    const lost = this.pendingLost;
    this.pendingLost = 0;
    return { flows, ...(lost > 0 ? { lost } : {}), watermark };
  }

  /** The newest `n` of what was read, in chunks. */
  async sendLast(n: number, sink: ChunkSink<ObserveChunk>, watermark: number): Promise<void> {
    this.flows = n === 0 ? [] : this.flows.slice(-n);
    this.pendingLost = 0;
    while (this.flows.length > 0) await sink.send(this.chunk(watermark));
  }
}
