/**
 * The flows the web view shows: every node's `observe` stream, followed as `podwire
 * observe -f` follows it (the same op, the same merge in time order), kept in a bounded
 * ring of recent flows and handed to every page that listens. Each flow comes with the
 * edges of the map it lights (edges.ts), its `observe` line, and the policies a drop
 * names.
 *
 * A node's stream that fails (the node restarts, goes away) is taken up again a second
 * later from just after the last flow it sent. The set of nodes follows the cluster: when
 * it changes, every stream starts again after what was shown, with a merger for the new
 * set.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Flow } from '../observe/flow.js';
import { NO_FILTERS } from '../observe/filter.js';
import { FlowMerger, type TimedItem } from '../observe/merge.js';
import { formatCompact } from '../observe/printer.js';
import type { ObserveChunk, ObserveQuery, ObserveSummary } from '../node/control-protocol.js';
import { deniedBy, flowEdges, type FlowEdge } from './edges.js';

export type ObserveStream = (node: string, query: ObserveQuery, onChunk: (chunk: ObserveChunk) => void | Promise<void>) => Promise<ObserveSummary>;

export interface HubFlow {
  /** µs since the epoch. */
  readonly at: number;
  readonly node: string;
  readonly verdict: Flow['verdict'];
  readonly edges: readonly FlowEdge[];
  /** The line `podwire observe --print-node-name --print-policy-names` prints for it. */
  readonly line: string;
  /** For a drop: its reason as Hubble names it, and the policies that denied it. */
  readonly dropReason?: string;
  readonly deniedBy?: readonly string[];
  readonly flow: Flow;
}

/** Flows the first connection to a node asks for: the recent past, so a fresh page is not empty. */
const HISTORY = 500;
const RETRY_MS = 1000;

class Stopped extends Error {}

export function hubFlow(item: TimedItem & { flow: Flow }): HubFlow {
  const denied = deniedBy(item.flow);
  return {
    at: item.at,
    node: item.node,
    verdict: item.flow.verdict,
    edges: flowEdges(item.flow),
    line: formatCompact(item.flow, { nodeName: true, policyNames: true }).trimEnd(),
    ...(item.flow.drop_reason_desc !== undefined ? { dropReason: item.flow.drop_reason_desc } : {}),
    ...(denied.length > 0 ? { deniedBy: denied } : {}),
    flow: item.flow,
  };
}

export class FlowHub {
  private readonly ring: HubFlow[] = [];
  private readonly listeners = new Set<(flows: readonly HubFlow[]) => void>();
  private nodes: readonly string[] = [];
  private generation = 0;
  /** The newest flow shown, per node (µs): a stream taken up again starts after it. */
  private readonly lastAt = new Map<string, number>();
  private closed = false;
  /** Streams that failed, by node, with the last reason: the page shows which nodes it cannot hear. */
  readonly unavailable = new Map<string, string>();

  constructor(
    private readonly stream: ObserveStream,
    private readonly capacity: number,
  ) {}

  /** Follows exactly these nodes from now on. */
  follow(nodes: readonly string[]): void {
    const sorted = [...nodes].sort();
    if (this.closed || sorted.join('\n') === this.nodes.join('\n')) return;
    this.nodes = sorted;
    const generation = ++this.generation;
    const merger = new FlowMerger(sorted);
    for (const node of sorted) void this.followNode(node, generation, merger);
  }

  subscribe(listener: (flows: readonly HubFlow[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The newest `last` flows held, oldest first; only those lighting `edge` when given. */
  recent(last: number, edge?: string): HubFlow[] {
    const pool = edge === undefined ? this.ring : this.ring.filter((f) => f.edges.some((e) => e.key === edge));
    return pool.slice(Math.max(0, pool.length - last));
  }

  close(): void {
    this.closed = true;
    this.generation++;
    this.listeners.clear();
  }

  private current(generation: number): boolean {
    return !this.closed && generation === this.generation;
  }

  private async followNode(node: string, generation: number, merger: FlowMerger): Promise<void> {
    while (this.current(generation)) {
      const after = this.lastAt.get(node);
      const query: ObserveQuery = { filters: NO_FILTERS, follow: true, ...(after !== undefined ? { since: after + 1 } : { last: HISTORY }) };
      try {
        await this.stream(node, query, (chunk) => {
          // A stream of an older set of nodes ends at its next chunk (the client then closes it).
          if (!this.current(generation)) throw new Stopped();
          this.unavailable.delete(node);
          const items: TimedItem[] = chunk.flows.map((f) => ({ at: f.at, node, flow: f.flow }));
          merger.add(node, items, chunk.watermark);
          this.publish(merger.drain());
        });
      } catch (err) {
        if (err instanceof Stopped || !this.current(generation)) return;
        this.unavailable.set(node, (err as Error).message);
        // A node that is away does not hold the others' flows back; its own, when it is back, go out as they come.
        merger.end(node);
        this.publish(merger.drain());
      }
      await sleep(RETRY_MS);
    }
  }

  private publish(items: readonly TimedItem[]): void {
    const flows: HubFlow[] = [];
    for (const item of items) {
      if (item.flow === undefined) continue;
      const f = hubFlow(item as TimedItem & { flow: Flow });
      if (f.at > (this.lastAt.get(f.node) ?? -Infinity)) this.lastAt.set(f.node, f.at);
      flows.push(f);
    }
    if (flows.length === 0) return;
    this.ring.push(...flows);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    for (const listener of this.listeners) listener(flows);
  }
}
