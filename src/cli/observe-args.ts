/**
 * `podwire observe`'s arguments, read into what to ask the nodes and how to print: the
 * filters in the order their flags came (Hubble's filters, src/observe/filter.ts), which
 * flows (`--last`, `--since`, `--follow`, Hubble's default of the last 20), which nodes,
 * which output. Pure: argv in, a request or a UsageError out.
 */
import { COMMON_OPTIONS, parseCommandTokens, UsageError, checkedArgument } from './args.js';
import { checkDnsLabel } from '../cluster/names.js';
import { MAX_FLOW_CAPACITY } from '../datapath/flow-ring.js';
import { FilterBuilder, FilterError, type FlowFilters } from '../observe/filter.js';
import { OUTPUT_FORMATS, type OutputFormat, type PrintOptions } from '../observe/printer.js';
import { parseSince } from '../observe/since.js';

export const OBSERVE_USAGE =
  'podwire observe: usage: podwire observe [--name NAME] [--node NODE] [-f|--follow] [--last N] [--since DURATION|TIME] ' +
  '[--pod [NS/]POD] [--from-pod ...] [--to-pod ...] [-n NS] [--ip CIDR] [--port N] [--protocol tcp|udp|icmp|dns] ' +
  '[--verdict FORWARDED|DROPPED|TRANSLATED] [--type drop|policy-verdict|trace|trace-sock|l7] [--service NS/NAME] [--not] ' +
  '[-o compact|json|table|dict] [--print-node-name] [--print-policy-names]';

/** Hubble prints the last 20 flows when told neither how many nor since when nor to follow. */
export const DEFAULT_LAST = 20;

const FILTER_OPTIONS = {
  not: { type: 'boolean', multiple: true },
  pod: { type: 'string', multiple: true },
  'from-pod': { type: 'string', multiple: true },
  'to-pod': { type: 'string', multiple: true },
  namespace: { type: 'string', short: 'n', multiple: true },
  'from-namespace': { type: 'string', multiple: true },
  'to-namespace': { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  'from-ip': { type: 'string', multiple: true },
  'to-ip': { type: 'string', multiple: true },
  port: { type: 'string', multiple: true },
  'from-port': { type: 'string', multiple: true },
  'to-port': { type: 'string', multiple: true },
  service: { type: 'string', multiple: true },
  'from-service': { type: 'string', multiple: true },
  'to-service': { type: 'string', multiple: true },
  protocol: { type: 'string', multiple: true },
  verdict: { type: 'string', multiple: true },
  type: { type: 'string', short: 't', multiple: true },
  'drop-reason-desc': { type: 'string', multiple: true },
  'traffic-direction': { type: 'string', multiple: true },
  'node-name': { type: 'string', multiple: true },
} as const;

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...FILTER_OPTIONS,
  node: { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
  last: { type: 'string' },
  since: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'print-node-name': { type: 'boolean' },
  'print-policy-names': { type: 'boolean' },
} as const;

export interface ObserveRequest {
  readonly help: boolean;
  readonly values: { readonly name?: string; readonly 'state-dir'?: string };
  /** The one node to ask; undefined: every node of the cluster. */
  readonly node?: string;
  readonly filters: FlowFilters;
  readonly follow: boolean;
  readonly last?: number;
  /** µs since the epoch. */
  readonly since?: number;
  readonly output: OutputFormat;
  readonly print: PrintOptions;
}

function usageError(message: string): UsageError {
  return new UsageError(`podwire observe: ${message}`);
}

/** The filter flags, in the order given, as Hubble's filters. */
function filtersOf(tokens: readonly { kind: string; name?: string; value?: string | undefined }[]): FlowFilters {
  const builder = new FilterBuilder();
  try {
    for (const token of tokens) {
      if (token.kind === 'option' && token.name !== undefined && Object.hasOwn(FILTER_OPTIONS, token.name)) builder.set(token.name, token.value ?? '');
    }
    return builder.build();
  } catch (err) {
    if (err instanceof FilterError) throw usageError(err.message);
    throw err;
  }
}

export function parseObserveArgs(argv: string[], nowMs: number): ObserveRequest {
  const { values, positionals, tokens } = parseCommandTokens('observe', argv, OPTIONS);
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])} (observe takes options only; a node is chosen with --node NODE)\n${OBSERVE_USAGE}`);
  const filters = filtersOf(tokens);
  const output = values.output ?? 'compact';
  if (!OUTPUT_FORMATS.includes(output as OutputFormat)) throw usageError(`-o ${JSON.stringify(output)}: one of ${OUTPUT_FORMATS.join(', ')}`);
  let last: number | undefined;
  if (values.last !== undefined) {
    if (!/^\d+$/.test(values.last) || Number(values.last) > MAX_FLOW_CAPACITY) throw usageError(`--last ${JSON.stringify(values.last)}: a number of flows from 0 to ${MAX_FLOW_CAPACITY}`);
    last = Number(values.last);
  }
  let since: number | undefined;
  if (values.since !== undefined) {
    since = parseSince(values.since, nowMs);
    if (since === undefined) throw usageError(`--since ${JSON.stringify(values.since)}: a duration ago (30s, 5m, 1h30m) or an RFC 3339 time (2024-12-04T14:52:03Z)`);
  }
  const follow = values.follow === true;
  if (!follow && last === undefined && since === undefined) last = DEFAULT_LAST;
  const node = values.node === undefined ? undefined : checkedArgument('observe', '--node', values.node, checkDnsLabel);
  return {
    help: values.help === true,
    values: { ...(values.name !== undefined ? { name: values.name } : {}), ...(values['state-dir'] !== undefined ? { 'state-dir': values['state-dir'] } : {}) },
    ...(node !== undefined ? { node } : {}),
    filters,
    follow,
    ...(last !== undefined ? { last } : {}),
    ...(since !== undefined ? { since } : {}),
    output: output as OutputFormat,
    print: { nodeName: values['print-node-name'] === true, policyNames: values['print-policy-names'] === true },
  };
}
