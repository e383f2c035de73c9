/**
 * `podwire observe`: the nodes' flows as `hubble observe` prints them. Every node of the
 * cluster is asked (or the one `--node` names), each filters its own flows, and the
 * streams are merged in time order, also when following (src/observe/merge.ts). A node
 * that does not answer is reported on stderr and the others are shown; when none answers
 * the command fails. Output goes at the pace stdout takes it; a reader that goes away
 * ends the command as SIGPIPE ends a tool (141).
 */
import { UsageError } from '../args.js';
import { findNodeProcesses, readCluster, statePaths } from '../state.js';
import { parseObserveArgs } from '../observe-args.js';
import { FlowMerger, type TimedItem } from '../../observe/merge.js';
import { FlowWriter } from '../../observe/printer.js';
import type { ObserveQuery } from '../../node/control-protocol.js';
import { Printer, ReaderGone, streamFromNode } from './common.js';
import { usage } from './usage.js';

/** The nodes of the cluster this machine runs: from its state, or from its node processes (joined machines). */
function clusterNodes(values: { name?: string; 'state-dir'?: string }): string[] {
  const { name, paths } = statePaths(values);
  const nodes = readCluster(paths)?.nodes.map((n) => n.name) ?? [...new Set(findNodeProcesses(paths).map((p) => p.node))];
  if (nodes.length === 0) throw new UsageError(`podwire observe: cluster ${name} has no node on this machine (state in ${paths.dir})`);
  return nodes;
}

export async function observeCommand(argv: string[]): Promise<number> {
  const req = parseObserveArgs(argv, Date.now());
  if (req.help) return usage();
  const nodes = req.node !== undefined ? [req.node] : clusterNodes(req.values);
  const query: ObserveQuery = {
    filters: req.filters,
    follow: req.follow,
    ...(req.last !== undefined ? { last: req.last } : {}),
    ...(req.since !== undefined ? { since: req.since } : {}),
  };
  const out = new Printer();
  const writer = new FlowWriter(req.output, req.print);
  const merger = new FlowMerger(nodes);
  const print = async (items: readonly TimedItem[]) => {
    const text = writer.write(items);
    if (text !== '') await out.write(text);
  };
  let unavailable = 0;
  try {
    await Promise.all(
      nodes.map(async (node) => {
        try {
          await streamFromNode(req.values, node, 'observe', query, async (chunk) => {
            const items: TimedItem[] = chunk.flows.map((f) => ({ at: f.at, node, flow: f.flow }));
            if (chunk.lost !== undefined) items.unshift({ at: items[0]?.at ?? chunk.watermark, node, lost: { source: 'HUBBLE_RING_BUFFER', num_events_lost: chunk.lost } });
            merger.add(node, items, chunk.watermark);
            if (req.follow) await print(merger.drain());
          });
        } catch (err) {
          if (err instanceof ReaderGone || err instanceof UsageError) throw err;
          unavailable++;
          process.stderr.write(`podwire observe: node ${node} is unavailable: ${(err as Error).message}\n`);
        } finally {
          merger.end(node);
        }
        if (req.follow) await print(merger.drain());
      }),
    );
    let rest = merger.flush();
    if (!req.follow && req.last !== undefined) {
      // Each node sent its newest N; of them all, the newest N overall.
      const flows = rest.filter((i) => i.flow !== undefined);
      const keep = new Set(flows.slice(Math.max(0, flows.length - req.last)));
      rest = rest.filter((i) => i.flow === undefined || keep.has(i));
    }
    await print(rest);
    await out.flush();
  } catch (err) {
    if (err instanceof ReaderGone) return 141;
    throw err;
  }
  return unavailable === nodes.length ? 1 : 0;
}
