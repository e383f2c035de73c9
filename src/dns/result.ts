/**
 * What the caller passes with each query and gets back: the responder's side of the
 * contract with the node's I/O (which owns the sockets, the clock and the timers).
 */

export type Transport = 'udp' | 'tcp';

/**
 * - `answer`: `out[offset, offset + length)` is a response for the client named in the result.
 * - `forward`: `out[offset, offset + length)` is a query for upstream resolver `upstream`, over
 *   `transport`; its reply goes to `upstreamReply`.
 * - `drop`: send nothing (a counter says why).
 */
export type DnsAction = 'answer' | 'forward' | 'drop';

export interface QueryContext {
  /** The client's IPv4 address as a uint32 (src/packet/addr.ts). */
  readonly clientAddr: number;
  /** The client's port; carried into results for replies that come later (forwarded queries). */
  readonly clientPort?: number;
  readonly transport: Transport;
  /** Milliseconds on the caller's clock (any monotonic origin). */
  readonly now: number;
  /** The caller's own handle for the client (a TCP connection's id, say), carried like the port. */
  readonly token?: number;
}

/**
 * One mutable result per responder, overwritten by every call: read it before the next call.
 * Returning the same object keeps the per-query path free of allocation.
 */
export class DnsResult {
  action: DnsAction = 'drop';
  length = 0;
  /** The response's rcode (extended rcodes included), -1 when nothing is answered. */
  rcode = -1;
  /** For `forward`: which upstream (an index into the caller's list). */
  upstream = -1;
  /** For `answer`: the client's transport; for `forward`: the upstream's. */
  transport: Transport = 'udp';
  /** For `answer`: who gets it (from the context, or remembered for forwarded queries). */
  clientAddr = 0;
  clientPort = 0;
  token = 0;
  /** Whether the answer was truncated to its question with TC set. */
  truncated = false;
  /** For `answer`: the question's type, or -1 when the query had none that could be read. */
  qtype = -1;
  /** For `answer`: when the client's query arrived (the context's `now`), to time the answer by. */
  startedAt = 0;

  reset(): this {
    this.action = 'drop';
    this.length = 0;
    this.rcode = -1;
    this.upstream = -1;
    this.transport = 'udp';
    this.clientAddr = 0;
    this.clientPort = 0;
    this.token = 0;
    this.truncated = false;
    this.qtype = -1;
    this.startedAt = 0;
    return this;
  }
}
