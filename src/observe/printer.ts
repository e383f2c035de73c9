/**
 * Flows printed as `hubble observe` prints them (hubble/pkg/printer/printer.go): compact
 * lines, the table, the dict, and JSON one object per line; with the same host names
 * (pod, then service, then address), identities, flow types, verdicts and the notice of
 * lost events. Pure: strings out; the command writes them.
 */
import { type Flow, flowJson, type LostEvents, lostEventsJson, parseTimestamp, type Policy, stampMilli } from './flow.js';
import { ciliumDropByCode, EventType, POLICY_MATCH_NAMES, RESERVED_IDENTITY_NAMES, TRACE_POINT_NAMES, XLATE_POINT_NAMES } from './hubble.js';

export type OutputFormat = 'compact' | 'json' | 'table' | 'dict';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['compact', 'json', 'table', 'dict'];

export interface PrintOptions {
  /** `--print-node-name`: the node each flow was seen on. */
  readonly nodeName?: boolean;
  /** `--print-policy-names`: the policies behind a policy verdict. */
  readonly policyNames?: boolean;
}

function ports(f: Flow): [string, string] {
  const l4 = f.l4;
  if (l4?.TCP !== undefined) return [String(l4.TCP.source_port), String(l4.TCP.destination_port)];
  if (l4?.UDP !== undefined) return [String(l4.UDP.source_port), String(l4.UDP.destination_port)];
  return ['', ''];
}

/** Printer.Hostname with IP translation on (the CLI's default): pod, else service, else the address. */
export function hostname(ip: string, port: string, namespace: string, pod: string, service: string): string {
  let host = ip;
  if (pod !== '') host = namespace === '' ? pod : `${namespace}/${pod}`;
  else if (service !== '') host = namespace === '' ? service : `${namespace}/${service}`;
  return port !== '' && port !== '0' ? `${host.includes(':') ? `[${host}]` : host}:${port}` : host;
}

/** GetHostNames: the source and destination as the printer names them. */
export function hostNames(f: Flow): [string, string] {
  if (f.IP === undefined) return f.ethernet === undefined ? ['', ''] : [f.ethernet.source, f.ethernet.destination];
  let srcNs = f.source?.namespace ?? '';
  let dstNs = f.destination?.namespace ?? '';
  const srcPod = f.source?.pod_name ?? '';
  const dstPod = f.destination?.pod_name ?? '';
  let srcSvc = '';
  let dstSvc = '';
  if (f.source_service !== undefined) {
    srcNs = f.source_service.namespace;
    srcSvc = f.source_service.name;
  }
  if (f.destination_service !== undefined) {
    dstNs = f.destination_service.namespace;
    dstSvc = f.destination_service.name;
  }
  const [sport, dport] = ports(f);
  return [hostname(f.IP.source, sport, srcNs, srcPod, srcSvc), hostname(f.IP.destination, dport, dstNs, dstPod, dstSvc)];
}

/** fmtIdentity: a reserved identity by name, any other by number. */
export function identityText(identity: number | undefined): string {
  const id = identity ?? 0;
  const reserved = RESERVED_IDENTITY_NAMES[id];
  return reserved === undefined ? `(ID:${id})` : `(${reserved})`;
}

/** GetFlowType. */
export function flowType(f: Flow): string {
  const l7 = f.l7;
  if (l7 !== undefined) {
    const type = l7.type.toLowerCase();
    return l7.dns !== undefined ? `dns-${type} ${l7.dns.observation_source ?? ''}` : `l7-${type}`;
  }
  const sub = f.event_type.sub_type ?? 0;
  switch (f.event_type.type) {
    case EventType.Trace:
      return TRACE_POINT_NAMES[sub] ?? String(sub);
    case EventType.Drop:
      return ciliumDropByCode(sub)?.text ?? `${sub}, 0`;
    case EventType.PolicyVerdict:
      return `policy-verdict:${POLICY_MATCH_NAMES[f.policy_match_type ?? 0] ?? 'unknown'} ${f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN'}`;
    case EventType.TraceSock:
      return XLATE_POINT_NAMES[sub] ?? String(sub);
    default:
      return 'UNKNOWN';
  }
}

/** formatPolicyNames: " BY name (kind), ..." for the policies that have both. */
function policyNames(policies: readonly Policy[] | undefined): string {
  const named = (policies ?? []).filter((p) => p.kind !== '' && p.name !== '');
  return named.length === 0 ? '' : ` BY ${named.map((p) => `${p.name} (${p.kind})`).join(', ')}`;
}

/** getVerdict: a policy verdict says ALLOWED, DENIED or AUDITED, and by which policies when asked. */
export function verdictText(f: Flow, options: PrintOptions = {}): string {
  const isPolicyVerdict = f.event_type.type === EventType.PolicyVerdict;
  if (!isPolicyVerdict) return f.verdict;
  const egress = f.traffic_direction === 'EGRESS';
  const ingress = f.traffic_direction === 'INGRESS';
  const by = (egressList: readonly Policy[] | undefined, ingressList: readonly Policy[] | undefined) =>
    options.policyNames === true ? policyNames(egress ? egressList : ingress ? ingressList : undefined) : '';
  switch (f.verdict) {
    case 'FORWARDED':
    case 'REDIRECTED':
      return `ALLOWED${by(f.egress_allowed_by, f.ingress_allowed_by)}`;
    case 'DROPPED':
    case 'ERROR':
      return `DENIED${by(f.egress_denied_by, f.ingress_denied_by)}`;
    case 'AUDIT':
      return `AUDITED${by(f.egress_denied_by, f.ingress_denied_by)}`;
    default:
      return f.verdict;
  }
}

/** fmtTimestamp: time.StampMilli, or N/A for a time that does not parse. */
function timestamp(f: Flow): string {
  const t = parseTimestamp(f.time);
  return t === undefined ? 'N/A' : stampMilli(t);
}

/** One compact line, newline included. */
export function formatCompact(f: Flow, options: PrintOptions = {}): string {
  let [src, dst] = hostNames(f);
  let srcId = identityText(f.source?.identity);
  let dstId = identityText(f.destination?.identity);
  let arrow = '->';
  if (f.is_reply === undefined) {
    arrow = '<>';
  } else if (f.is_reply) {
    [src, dst] = [dst, src];
    [srcId, dstId] = [dstId, srcId];
    arrow = '<-';
  }
  const node = options.nodeName === true ? ` [${f.node_name ?? ''}]` : '';
  return `${timestamp(f)}${node}: ${src} ${srcId} ${arrow} ${dst} ${dstId} ${flowType(f)} ${verdictText(f, options)} (${f.Summary ?? ''})\n`;
}

/** Go's json.Encoder writes <, > and & (and the line separators) escaped. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function formatJson(f: Flow): string {
  return `${goJson(flowJson(f))}\n`;
}

const DICT_SEPARATOR = '------------';

/** One dict block; `first` is false for every block after the first (they get a separator). */
export function formatDict(f: Flow, first: boolean, options: PrintOptions = {}): string {
  const [src, dst] = hostNames(f);
  const lines = [`  TIMESTAMP: ${timestamp(f)}`];
  if (options.nodeName === true) lines.push(`       NODE: ${f.node_name ?? ''}`);
  lines.push(`     SOURCE: ${src}`, `DESTINATION: ${dst}`, `       TYPE: ${flowType(f)}`, `    VERDICT: ${verdictText(f, options)}`, `    SUMMARY: ${f.Summary ?? ''}`);
  return `${first ? '' : `${DICT_SEPARATOR}\n`}${lines.join('\n')}\n`;
}

/** The table's cells of a flow (a row of TableWriter). */
export function tableRow(f: Flow, options: PrintOptions = {}): string[] {
  const [src, dst] = hostNames(f);
  return [timestamp(f), ...(options.nodeName === true ? [f.node_name ?? ''] : []), src, dst, flowType(f), verdictText(f, options), f.Summary ?? ''];
}

export function tableHeader(options: PrintOptions = {}): string[] {
  return ['TIMESTAMP', ...(options.nodeName === true ? ['NODE'] : []), 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'];
}

/** WriteLostEvent, in each output format. */
export function formatLostCompact(lost: LostEvents): string {
  return `EVENTS LOST: ${lost.source} CPU(0) ${lost.num_events_lost}\n`;
}

export function formatLostJson(lost: LostEvents): string {
  return `${goJson(lostEventsJson(lost))}\n`;
}

export function lostTableRow(lost: LostEvents, options: PrintOptions = {}): string[] {
  return ['', ...(options.nodeName === true ? [''] : []), lost.source, '', 'EVENTS LOST', '', `CPU(0) - ${lost.num_events_lost}`];
}

export function formatLostDict(lost: LostEvents, first: boolean, options: PrintOptions = {}): string {
  const lines = ['  TIMESTAMP: '];
  if (options.nodeName === true) lines.push('       NODE: ');
  lines.push(`     SOURCE: ${lost.source}`, '       TYPE: EVENTS LOST', '    VERDICT: ', `    SUMMARY: CPU(0) - ${lost.num_events_lost}`);
  return `${first ? '' : `${DICT_SEPARATOR}\n`}${lines.join('\n')}\n`;
}

/**
 * Go's text/tabwriter as Hubble configures it (minwidth 2, padding 3, spaces): each cell
 * but a line's last is padded to its column's widest cell plus 3. Rows are held until
 * `flush`, which aligns the rows written since the last flush.
 */
export class TableWriter {
  private rows: string[][] = [];

  add(cells: readonly string[]): void {
    this.rows.push([...cells]);
  }

  flush(): string {
    const rows = this.rows;
    this.rows = [];
    const widths: number[] = [];
    for (const row of rows) {
      for (let c = 0; c < row.length - 1; c++) widths[c] = Math.max(widths[c] ?? 2, [...row[c]].length + 3);
    }
    return rows.map((row) => `${row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c] + cell.length - [...cell].length))).join('')}\n`).join('');
  }
}

/** A flow or a notice of lost events, as a stream of output carries them. */
export interface OutputItem {
  readonly flow?: Flow;
  readonly lost?: LostEvents;
}

/**
 * A stream of flows in one output format: the table's header once and its rows aligned
 * per batch written (a follower's rows align within each batch it receives), the dict's
 * separators between blocks.
 */
export class FlowWriter {
  private first = true;
  private readonly table = new TableWriter();

  constructor(
    readonly format: OutputFormat,
    private readonly options: PrintOptions = {},
  ) {}

  /** The text of `items`, in order. */
  write(items: readonly OutputItem[]): string {
    if (items.length === 0) return '';
    let out = '';
    if (this.format === 'table' && this.first) this.table.add(tableHeader(this.options));
    for (const item of items) {
      out += this.one(item);
      this.first = false;
    }
    return this.format === 'table' ? this.table.flush() : out;
  }

  private one(item: OutputItem): string {
    const { flow, lost } = item;
    switch (this.format) {
      case 'compact':
        return flow !== undefined ? formatCompact(flow, this.options) : lost !== undefined ? formatLostCompact(lost) : '';
      case 'json':
        return flow !== undefined ? formatJson(flow) : lost !== undefined ? formatLostJson(lost) : '';
      case 'dict':
        return flow !== undefined ? formatDict(flow, this.first, this.options) : lost !== undefined ? formatLostDict(lost, this.first, this.options) : '';
      case 'table':
        if (flow !== undefined) this.table.add(tableRow(flow, this.options));
        else if (lost !== undefined) this.table.add(lostTableRow(lost, this.options));
        return '';
    }
  }
}
