/**
 * The control protocol a node speaks on its control socket: every op, with the arguments it
 * takes, the result it answers and, for an op that streams, the chunks it sends first. The
 * node's handlers (agent.ts) and the CLI's calls (cli/commands) are both typed by `NodeOps`,
 * so neither end casts; the node checks each request's arguments here, at its edge, before
 * a handler sees them.
 *
 * On the wire (control.ts), newline-delimited JSON, a message a line:
 *
 *   -> {"id":1,"op":"conntrack","args":{"output":"text","filter":{"proto":6}}}
 *   <- {"id":1,"chunk":{"lines":["tcp      6 431999 ESTABLISHED src=..."]}}   streaming ops: 0 or more
 *   <- {"id":1,"ok":true,"result":{"shown":1}}                             then exactly one answer
 *   <- {"id":1,"ok":false,"error":"conntrack: unknown argument \"x\""}      or an error instead
 *
 * A chunk may carry bytes as they are (a capture's pcapng): its line says how many with
 * `"attached":N`, and exactly N raw bytes follow the newline, before the next message.
 *
 *   <- {"id":1,"chunk":{"records":812,"dropped":0},"attached":98304}\n<98304 bytes>
 *
 * Addresses travel as uint32 numbers and protocols as IP protocol numbers, as the tables
 * hold them; the CLI parses the user's text and this module judges the numbers.
 */
import type { IptablesBackend } from '../kube/iptables-save.js';
import type { NodeStatus } from './agent.js';
import type { TraceResult } from './trace.js';
import type { ConntrackEntry } from '../netfilter/conntrack.js';
import { conntrackFilterProblem, type ConntrackFilter } from '../netfilter/conntrack-filter.js';
import type { RuleSetJson } from '../kube/rules-json.js';
import { MAX_FLOW_CAPACITY } from '../datapath/flow-ring.js';
import { decodeFilters, FilterError, type FlowFilters } from '../observe/filter.js';
import type { Flow } from '../observe/flow.js';

/** One op: what a request carries, what its answer holds, what it streams before (never: nothing). */
export type OpSpec = { readonly args: object; readonly result: unknown; readonly chunk: unknown };
export type OpTable = { readonly [op: string]: OpSpec };

export type NoArgs = Record<string, never>;

export type RulesArgs = { readonly format: 'iptables' | 'json'; readonly backend: IptablesBackend };

/** What a `conntrack` request lists: entries as `conntrack -L` prints them, as JSON, or a count (`-C`). */
export type ConntrackQuery = { readonly output: 'text' | 'json' | 'count'; readonly filter: ConntrackFilter };
/** A slice of a listing: formatted lines for `text`, entries for `json`; `count` streams nothing. */
export type ConntrackChunk = { readonly lines: readonly string[] } | { readonly entries: readonly ConntrackEntry[] };
export type ConntrackListed = { readonly shown: number };

export type TraceArgs = {
  /** Where the packet enters: a pod of the node (`POD`), `outside:IP` or `node:NAME`. */
  readonly from: string;
  readonly namespace: string;
  readonly dst: number;
  readonly dport: number;
  /** The packet's source port; the node picks one from the ephemeral range when absent. */
  readonly sport?: number;
  /** With `node:NAME`, the inner source address (default: that node's overlay address). */
  readonly src?: number;
  readonly proto: 'tcp' | 'udp';
};

/**
 * A live capture (`podwire capture`): one pod's eth0 (`pod`, as namespace/name), or the
 * node's interfaces (all, or the one `iface` names), the frames `filter` matches (the
 * subset of pcap syntax in src/pcap/filter.ts).
 */
export type CaptureArgs = { readonly pod?: string; readonly iface?: string; readonly filter?: string; readonly snaplen?: number; readonly bufferBytes?: number };
/**
 * The counts so far, sent at least once a second; the piece of the pcapng stream taken
 * since the last chunk (whole blocks) is attached to it as raw bytes.
 */
export type CaptureChunk = { readonly records: number; readonly dropped: number };
/** Sent when the node ends the capture itself (the pod went away, the node stops). */
export type CaptureEnded = { readonly records: number; readonly dropped: number; readonly reason: string };

/** `podwire exec`: what to run in which container of a pod, and as whom (default the container's user). */
export type ExecArgs = {
  readonly namespace: string;
  readonly pod: string;
  readonly container?: string;
  readonly user?: { readonly uid: number; readonly gid?: number };
  readonly argv: readonly string[];
};

/** The command line the CLI runs (it enters the pod's namespaces itself) and its environment. */
export type ExecCommand = { readonly argv: readonly string[]; readonly env: Readonly<Record<string, string>> };

/** What an `observe` request asks for: Hubble's flow filters, and which flows of the ring. */
export type ObserveQuery = {
  readonly filters: FlowFilters;
  /** The newest N flows that pass (then the new ones, when following); absent: all held, or none when following. */
  readonly last?: number;
  /** Only flows at or after this time (µs since the epoch). */
  readonly since?: number;
  /** Go on sending flows as they happen, until the client goes. */
  readonly follow: boolean;
};
/** A flow with its time as a number (µs since the epoch), for merging nodes in time order. */
export type ObservedFlow = { readonly at: number; readonly flow: Flow };
/** Flows in time order; `lost`: events the reader fell too far behind to read; `watermark`: the node's clock (µs), before which nothing more comes. */
export type ObserveChunk = { readonly flows: readonly ObservedFlow[]; readonly lost?: number; readonly watermark: number };
export type ObserveSummary = {
  readonly shown: number;
  readonly lost: number;
  /** Events the node has recorded since it started, and how many its ring holds. */
  readonly recorded: number;
  readonly capacity: number;
  /** Events the rate limits did not write, by drop reason (and `dns`). */
  readonly suppressed: Readonly<Record<string, number>>;
};

export type NodeOps = {
  status: { args: NoArgs; result: NodeStatus; chunk: never };
  rules: { args: RulesArgs; result: string | RuleSetJson; chunk: never };
  conntrack: { args: ConntrackQuery; result: ConntrackListed; chunk: ConntrackChunk };
  trace: { args: TraceArgs; result: TraceResult; chunk: never };
  capture: { args: CaptureArgs; result: CaptureEnded; chunk: CaptureChunk };
  exec: { args: ExecArgs; result: ExecCommand; chunk: never };
  observe: { args: ObserveQuery; result: ObserveSummary; chunk: ObserveChunk };
};

/** Where a streaming op's handler sends its chunks; `send` resolves once the connection can take more. */
export interface ChunkSink<C> {
  /**
   * Resolves once the socket has taken it (or after 'drain'); `attached` goes as raw bytes
   * after it, and may be reused once this resolves (the socket has written it by then).
   */
  send(chunk: C, attached?: Uint8Array): Promise<void>;
}

/** A request whose arguments do not fit its op: answered with this message, never handled. */
export class ControlArgsError extends Error {}

/** Per op, the check that turns a request's `args` (anything JSON) into the op's arguments or throws ControlArgsError. */
export type ArgsValidators<Ops extends OpTable> = { readonly [Op in keyof Ops]: (raw: unknown) => Ops[Op]['args'] };

/** `raw` as an object holding only `allowed` keys; absent args are no args. */
function argsObject(op: string, raw: unknown, allowed: readonly string[]): { readonly [key: string]: unknown } {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlArgsError(`${op}: args must be an object`);
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) throw new ControlArgsError(`${op}: unknown argument ${JSON.stringify(key)}${allowed.length > 0 ? ` (takes ${allowed.join(', ')})` : ''}`);
  }
  return Object.fromEntries(Object.entries(raw));
}

function integer(op: string, name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ControlArgsError(`${op}: ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value) ?? 'nothing'}`);
  }
  return value;
}

function optionalInteger(op: string, name: string, value: unknown, min: number, max: number): number | undefined {
  return value === undefined ? undefined : integer(op, name, value, min, max);
}

function oneOf<T extends string>(op: string, name: string, value: unknown, choices: readonly T[]): T {
  const found = choices.find((c) => c === value);
  if (found === undefined) throw new ControlArgsError(`${op}: ${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(value) ?? 'nothing'}`);
  return found;
}

function text(op: string, name: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new ControlArgsError(`${op}: ${name} must be a string of 1 to ${maxLength} characters`);
  }
  return value;
}

function conntrackFilter(raw: unknown): ConntrackFilter {
  const f = argsObject('conntrack filter', raw, ['proto', 'src', 'dst', 'sport', 'dport']);
  const filter: ConntrackFilter = {
    proto: optionalInteger('conntrack', 'filter.proto', f.proto, 0, 255),
    src: optionalInteger('conntrack', 'filter.src', f.src, 0, 0xffffffff),
    dst: optionalInteger('conntrack', 'filter.dst', f.dst, 0, 0xffffffff),
    sport: optionalInteger('conntrack', 'filter.sport', f.sport, 0, 0xffff),
    dport: optionalInteger('conntrack', 'filter.dport', f.dport, 0, 0xffff),
  };
  const problem = conntrackFilterProblem(filter);
  if (problem !== undefined) throw new ControlArgsError(`conntrack: ${problem}`);
  return filter;
}

function flowFilters(raw: unknown): FlowFilters {
  try {
    return decodeFilters(raw);
  } catch (err) {
    if (err instanceof FilterError) throw new ControlArgsError(`observe: ${err.message}`);
    throw err;
  }
}

/** The node's checks, one per op of NodeOps. */
export const NODE_OP_ARGS: ArgsValidators<NodeOps> = {
  status: (raw) => {
    argsObject('status', raw, []);
    return {};
  },
  rules: (raw) => {
    const a = argsObject('rules', raw, ['format', 'backend']);
    // Older clients send no backend: they meant iptables-nft's order, the only one there was.
    const backend = a.backend === undefined ? 'nft' : oneOf('rules', 'backend', a.backend, ['nft', 'legacy'] as const);
    return { format: oneOf('rules', 'format', a.format, ['iptables', 'json'] as const), backend };
  },
  conntrack: (raw) => {
    const a = argsObject('conntrack', raw, ['output', 'filter']);
    return { output: oneOf('conntrack', 'output', a.output, ['text', 'json', 'count'] as const), filter: conntrackFilter(a.filter) };
  },
  capture: (raw) => {
    const a = argsObject('capture', raw, ['pod', 'iface', 'filter', 'snaplen', 'bufferBytes']);
    if (a.pod !== undefined && a.iface !== undefined) throw new ControlArgsError('capture: pod and iface exclude each other (a pod has one interface)');
    return {
      // namespace/name: two DNS labels or subdomains of 253 characters at most.
      ...(a.pod !== undefined ? { pod: text('capture', 'pod', a.pod, 507) } : {}),
      ...(a.iface !== undefined ? { iface: text('capture', 'iface', a.iface, 300) } : {}),
      ...(a.filter !== undefined ? { filter: typeof a.filter === 'string' && a.filter.length <= 4096 ? a.filter : text('capture', 'filter', a.filter, 4096) } : {}),
      ...(a.snaplen !== undefined ? { snaplen: integer('capture', 'snaplen', a.snaplen, 1, 262_144) } : {}),
      // The node holds this much per capture: 64 KiB to 64 MiB.
      ...(a.bufferBytes !== undefined ? { bufferBytes: integer('capture', 'bufferBytes', a.bufferBytes, 65_536, 64 << 20) } : {}),
    };
  },
  trace: (raw) => {
    const a = argsObject('trace', raw, ['from', 'namespace', 'dst', 'dport', 'sport', 'src', 'proto']);
    return {
      // Kubernetes object names are DNS subdomains: 253 characters at most, plus a `node:` or `outside:` prefix.
      from: text('trace', 'from', a.from, 261),
      namespace: text('trace', 'namespace', a.namespace, 253),
      dst: integer('trace', 'dst', a.dst, 0, 0xffffffff),
      dport: integer('trace', 'dport', a.dport, 1, 0xffff),
      sport: optionalInteger('trace', 'sport', a.sport, 1, 0xffff),
      src: optionalInteger('trace', 'src', a.src, 0, 0xffffffff),
      proto: oneOf('trace', 'proto', a.proto, ['tcp', 'udp'] as const),
    };
  },
  exec: (raw) => {
    const a = argsObject('exec', raw, ['namespace', 'pod', 'container', 'user', 'argv']);
    if (!Array.isArray(a.argv) || a.argv.length === 0 || a.argv.length > MAX_EXEC_ARGS) throw new ControlArgsError(`exec: argv must be a list of 1 to ${MAX_EXEC_ARGS} strings`);
    const argv = a.argv.map((arg, i) => {
      if (typeof arg !== 'string' || arg.length > MAX_EXEC_ARG_LENGTH || arg.includes('\0')) throw new ControlArgsError(`exec: argv[${i}] must be a string of at most ${MAX_EXEC_ARG_LENGTH} characters without NUL`);
      return arg;
    });
    let user: ExecArgs['user'];
    if (a.user !== undefined) {
      const u = argsObject('exec user', a.user, ['uid', 'gid']);
      const gid = optionalInteger('exec', 'user.gid', u.gid, 0, 0x7fffffff);
      user = { uid: integer('exec', 'user.uid', u.uid, 0, 0x7fffffff), ...(gid !== undefined ? { gid } : {}) };
    }
    return {
      namespace: text('exec', 'namespace', a.namespace, 253),
      pod: text('exec', 'pod', a.pod, 253),
      ...(a.container !== undefined ? { container: text('exec', 'container', a.container, 63) } : {}),
      ...(user !== undefined ? { user } : {}),
      argv,
    };
  },
  observe: (raw) => {
    const a = argsObject('observe', raw, ['filters', 'last', 'since', 'follow']);
    if (typeof a.follow !== 'boolean') throw new ControlArgsError('observe: follow must be true or false');
    const last = optionalInteger('observe', 'last', a.last, 0, MAX_FLOW_CAPACITY);
    const since = optionalInteger('observe', 'since', a.since, 0, Number.MAX_SAFE_INTEGER);
    return { filters: flowFilters(a.filters), follow: a.follow, ...(last !== undefined ? { last } : {}), ...(since !== undefined ? { since } : {}) };
  },
};

const MAX_EXEC_ARGS = 4096;
const MAX_EXEC_ARG_LENGTH = 128 * 1024;
