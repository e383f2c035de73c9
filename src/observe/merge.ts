/**
 * Flows from several nodes, one stream each, merged into one in time order, as Hubble
 * Relay merges its nodes' streams. Each node's stream is in time order and comes with a
 * watermark: the node's clock when it last sent, before which it will send nothing more.
 * A flow goes out once every node still streaming has passed its time, so a busy node
 * cannot get ahead of a quiet one; an idle node's watermark still advances, because nodes
 * send it when they have nothing else to send.
 */
import type { Flow, LostEvents } from './flow.js';

export interface TimedItem {
  /** Microseconds since the epoch. */
  readonly at: number;
  readonly node: string;
  readonly flow?: Flow;
  readonly lost?: LostEvents;
}

export class FlowMerger {
  private readonly watermarks = new Map<string, number>();
  private pending: TimedItem[] = [];
  private arrivals = 0;
  private readonly order = new WeakMap<TimedItem, number>();

  constructor(nodes: readonly string[]) {
    for (const node of nodes) this.watermarks.set(node, -Infinity);
  }

  /** What `node` sent, with its new watermark (µs): it will send nothing older. */
  add(node: string, items: readonly TimedItem[], watermark: number): void {
    for (const item of items) {
      this.order.set(item, this.arrivals++);
      this.pending.push(item);
    }
    const last = this.watermarks.get(node);
    if (last !== undefined && watermark > last) this.watermarks.set(node, watermark);
  }

  /** `node`'s stream ended (or failed): it no longer holds the others back. */
  end(node: string): void {
    this.watermarks.delete(node);
  }

  /** What every streaming node has passed, in time order. */
  drain(): TimedItem[] {
    let until = Infinity;
    for (const w of this.watermarks.values()) until = Math.min(until, w);
    return this.take((item) => item.at <= until);
  }

  /** Everything held, in time order: when every stream is done. */
  flush(): TimedItem[] {
    return this.take(() => true);
  }

  private take(ready: (item: TimedItem) => boolean): TimedItem[] {
    const out = this.pending.filter(ready);
    if (out.length === 0) return out;
    this.pending = this.pending.filter((item) => !ready(item));
    return out.sort((a, b) => a.at - b.at || (this.order.get(a) ?? 0) - (this.order.get(b) ?? 0));
  }
}
