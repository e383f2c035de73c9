/**
 * The node's live captures (the control socket's `capture` op): each one a LiveCapture on
 * the forwarding path's tap, beside the file capture of `--pcap` when there is one, and a
 * loop off the forwarding path that takes what it buffered and streams it to the client.
 *
 * The loop sends a chunk every STREAM_MS when there are records, and at least once a
 * second (the counts, and a sign of life the client's idle timeout waits for). It awaits
 * each send: while the client is slow to read, the capture's buffer fills and frames are
 * dropped and counted there, and the forwarding path never waits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Peer } from '../overlay/peers.js';
import type { FrameContext, Verdict } from '../datapath/context.js';
import type { FrameTap, Pipeline } from '../datapath/pipeline.js';
import { compileFilter, FilterError } from '../pcap/filter.js';
import { SplitClock } from '../pcap/pcapng.js';
import type { CaptureNode } from './capture.js';
import { ControlArgsError, type CaptureArgs, type CaptureChunk, type CaptureEnded, type ChunkSink } from './control-protocol.js';
import { LiveCapture, type LivePod } from './live-capture.js';

/** How often a capture's buffer is taken and sent. */
const STREAM_MS = 20;
const HEARTBEAT_MS = 1000;
/** Live captures a node runs at once: each holds a buffer and a control connection. */
export const MAX_LIVE_CAPTURES = 8;

/** Several taps as one: the pipeline holds one, and pays for the fan-out only while captures run. */
class TapSet implements FrameTap {
  constructor(private readonly taps: readonly FrameTap[]) {}

  podFrame(slot: number, buf: Uint8Array, offset: number, length: number): void {
    for (const t of this.taps) t.podFrame(slot, buf, offset, length);
  }

  uplinkFrame(buf: Uint8Array, offset: number, length: number): void {
    for (const t of this.taps) t.uplinkFrame(buf, offset, length);
  }

  overlayFrame(peer: Peer, outbound: boolean, frame: Uint8Array, offset: number, length: number): void {
    for (const t of this.taps) t.overlayFrame(peer, outbound, frame, offset, length);
  }

  verdict(ctx: FrameContext, verdict: Verdict): void {
    for (const t of this.taps) t.verdict?.(ctx, verdict);
  }
}

export class LiveCaptures {
  private readonly live = new Set<LiveCapture>();
  private stopped = false;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly node: CaptureNode,
    /** The `--pcap` file capture, which keeps its place on the tap. */
    private readonly fileTap: FrameTap | undefined,
    /** Where the pipeline's clock (ns) reads 0, in ms since the epoch: records are stamped with the batch's time. */
    private readonly clockZeroEpochMs: number,
  ) {}

  get running(): number {
    return this.live.size;
  }

  /** Every running capture ends (its stream gets its result); the node is stopping. */
  stop(): void {
    this.stopped = true;
  }

  async stream(args: CaptureArgs, out: ChunkSink<CaptureChunk>): Promise<CaptureEnded> {
    let matcher;
    try {
      matcher = compileFilter(args.filter ?? '');
    } catch (err) {
      if (err instanceof FilterError) throw new ControlArgsError(`capture: ${err.message}`);
      throw err;
    }
    if (args.pod !== undefined && !this.pods().some((p) => p.name === args.pod)) {
      throw new ControlArgsError(`capture: pod ${args.pod} does not run on ${this.node.name} (its pods: ${this.pods().map((p) => p.name).join(', ') || 'none'})`);
    }
    if (args.iface !== undefined && !this.interfaceNames().includes(args.iface)) {
      throw new ControlArgsError(`capture: ${this.node.name} has no interface ${args.iface} (it has: ${this.interfaceNames().join(', ')})`);
    }
    if (this.live.size >= MAX_LIVE_CAPTURES) throw new ControlArgsError(`capture: ${this.node.name} already runs ${MAX_LIVE_CAPTURES} live captures; end one first`);
    const capture = new LiveCapture({
      node: this.node,
      selection: args.pod !== undefined ? { pod: args.pod } : { iface: args.iface },
      podAt: (slot) => this.podAt(slot),
      matcher,
      clock: new SplitClock(BigInt(Math.round(this.clockZeroEpochMs * 1e6)), () => this.pipeline.tables.clock[0]),
      ...(args.snaplen !== undefined ? { snaplen: args.snaplen } : {}),
      ...(args.bufferBytes !== undefined ? { bufferBytes: args.bufferBytes } : {}),
    });
    this.live.add(capture);
    this.retap();
    try {
      let sentAt = 0;
      for (;;) {
        await sleep(STREAM_MS);
        const reason = this.stopped ? `${this.node.name} is stopping` : args.pod !== undefined && !this.pods().some((p) => p.name === args.pod) ? `pod ${args.pod} is gone from ${this.node.name}` : undefined;
        const data = capture.take();
        const now = performance.now();
        if (data.length > 0 || now - sentAt >= HEARTBEAT_MS || reason !== undefined) {
          await out.send(capture.stats, data);
          sentAt = now;
        }
        if (reason !== undefined) return { ...capture.stats, reason };
      }
    } finally {
      this.live.delete(capture);
      this.retap();
    }
  }

  private retap(): void {
    const taps: FrameTap[] = [...(this.fileTap !== undefined ? [this.fileTap] : []), ...this.live];
    this.pipeline.tap = taps.length === 0 ? undefined : taps.length === 1 ? taps[0] : new TapSet(taps);
  }

  /** The slot table's own object: nothing is made per frame. */
  private podAt(slot: number): LivePod | undefined {
    return this.pipeline.tables.slots[slot];
  }

  private pods(): readonly LivePod[] {
    return this.pipeline.pods();
  }

  /** What `--iface` takes: pods by name or TAP, each peer's VXLAN, the uplink. */
  private interfaceNames(): string[] {
    return [
      ...this.pods().flatMap((p) => [p.name, p.port.name]),
      ...this.pipeline.peers.all().map((p) => `vxlan:${p.node}`),
      ...(this.node.uplink !== undefined ? [`uplink:${this.node.name}`, 'uplink'] : []),
    ];
  }
}
