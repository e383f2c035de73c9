/**
 * `--metrics-port N` on up, join and restart-node: the loopback port of the first node's
 * /metrics; up gives each further node the next port (node i: N + i), and 0 lets the
 * kernel pick a free port for every node (what `podwire status` then shows).
 */
import { UsageError } from './args.js';

export const METRICS_PORT_OPTION = { 'metrics-port': { type: 'string' } } as const;

export function parseMetricsPort(command: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`podwire ${command}: --metrics-port ${text}: not a TCP port (0 to 65535; 0 picks a free one)`);
  return port;
}

/** Node `index`'s port when the first is `first`; throws when the last node's would pass 65535. */
export function nodeMetricsPort(command: string, first: number, index: number, nodes: number): number {
  if (first === 0) return 0;
  if (first + nodes - 1 > 65535) throw new UsageError(`podwire ${command}: --metrics-port ${first}: ${nodes} nodes need ports ${first} to ${first + nodes - 1}, past 65535`);
  return first + index;
}
