/**
 * The web view's API requests, judged at the edge: each query string is turned into the
 * request it means, or an ApiError with the HTTP status and a message that says what was
 * wrong. Nothing past this module sees a raw parameter. Pure.
 */
import { parseIpv4 } from '../packet/addr.js';
import { checkDnsLabel, checkDnsSubdomain, checkPodName } from '../cluster/names.js';
import { compileFilter, FilterError } from '../pcap/filter.js';
import { MAX_FLOW_CAPACITY } from '../datapath/flow-ring.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type TraceFrom = { readonly kind: 'pod'; readonly namespace: string; readonly name: string } | { readonly kind: 'outside'; readonly ip: number };
export type TraceTo = { readonly kind: 'ip'; readonly ip: number } | { readonly kind: 'name'; readonly name: string };

export interface TraceQuery {
  readonly from: TraceFrom;
  readonly to: TraceTo;
  readonly port: number;
  readonly proto: 'tcp' | 'udp';
  /** Where an outside packet enters (default: the node whose address it is sent to, else the first). */
  readonly node?: string;
  readonly sport?: number;
}

export interface CaptureQuery {
  /** `NS/NAME` of the pod whose eth0 to capture, or the node whose interfaces. */
  readonly pod?: string;
  readonly node?: string;
  readonly iface?: string;
  readonly filter?: string;
  readonly seconds: number;
}

export interface FlowsQuery {
  readonly last: number;
  /** Only the flows of this edge (`FROM>TO`, flows.ts). */
  readonly edge?: string;
}

/** The longest capture the page can ask for: long enough to catch a retry, short enough for a download. */
export const MAX_CAPTURE_SECONDS = 60;
/** Flows the server keeps for the page (its own ring, filled from the nodes' streams). */
export const RECENT_FLOWS = 2000;

function only(params: URLSearchParams, allowed: readonly string[]): void {
  for (const key of new Set(params.keys())) {
    if (!allowed.includes(key)) throw new ApiError(400, `unknown parameter ${JSON.stringify(key)}${allowed.length > 0 ? ` (takes ${allowed.join(', ')})` : ' (takes none)'}`);
    if (params.getAll(key).length > 1) throw new ApiError(400, `parameter ${key} given more than once`);
  }
}

function required(params: URLSearchParams, key: string, form: string): string {
  const value = params.get(key);
  if (value === null || value === '') throw new ApiError(400, `${key} is required: ${form}`);
  return value;
}

function integer(key: string, text: string | null, min: number, max: number, fallback?: number): number {
  if (text === null && fallback !== undefined) return fallback;
  if (text === null || !/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new ApiError(400, `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(text) ?? 'nothing'}`);
  }
  return Number(text);
}

function checked(key: string, value: string, check: (v: string) => string | undefined): string {
  const bad = check(value);
  if (bad !== undefined) throw new ApiError(400, `${key} ${JSON.stringify(value.length > 60 ? `${value.slice(0, 56)}...` : value)}: ${bad}`);
  return value;
}

/** `NS/NAME` or `NAME` (namespace default). */
export function podRef(key: string, text: string): { namespace: string; name: string } {
  const slash = text.indexOf('/');
  const namespace = slash >= 0 ? text.slice(0, slash) : 'default';
  const name = slash >= 0 ? text.slice(slash + 1) : text;
  checked(`${key} namespace`, namespace, checkDnsLabel);
  checked(`${key} pod`, name, checkPodName);
  return { namespace, name };
}

const TRACE_FORMS = {
  from: 'NS/POD, POD or outside:IP',
  to: 'IP:PORT[/tcp|udp] or NAME:PORT[/tcp|udp] (a DNS name the cluster DNS answers)',
};

export function parseTraceQuery(params: URLSearchParams): TraceQuery {
  only(params, ['from', 'to', 'node', 'sport']);
  const fromText = required(params, 'from', TRACE_FORMS.from);
  let from: TraceFrom;
  if (fromText.startsWith('outside:')) {
    const ip = parseIpv4(fromText.slice('outside:'.length));
    if (ip === undefined) throw new ApiError(400, `from ${JSON.stringify(fromText)}: not an IPv4 address after outside:`);
    from = { kind: 'outside', ip };
  } else {
    from = { kind: 'pod', ...podRef('from', fromText) };
  }
  const toText = required(params, 'to', TRACE_FORMS.to);
  const m = /^([^:/\s]+):(\d{1,5})(?:\/(tcp|udp))?$/.exec(toText);
  if (m === null) throw new ApiError(400, `to ${JSON.stringify(toText.slice(0, 80))}: expected ${TRACE_FORMS.to}`);
  const port = integer('to port', m[2], 1, 65535);
  const ip = /^\d+\.\d+\.\d+\.\d+$/.test(m[1]) ? parseIpv4(m[1]) : undefined;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(m[1]) && ip === undefined) throw new ApiError(400, `to ${JSON.stringify(m[1])}: not an IPv4 address`);
  // A name may end in a dot (fully qualified: no search list), as a resolver takes it.
  if (ip === undefined) checked('to name', m[1].replace(/\.$/, ''), checkDnsSubdomain);
  const to: TraceTo = ip !== undefined ? { kind: 'ip', ip } : { kind: 'name', name: m[1] };
  const node = params.get('node');
  const sport = params.get('sport');
  return {
    from,
    to,
    port,
    proto: m[3] === 'udp' ? 'udp' : 'tcp',
    ...(node !== null ? { node: checked('node', node, checkDnsLabel) } : {}),
    ...(sport !== null ? { sport: integer('sport', sport, 1, 65535) } : {}),
  };
}

export function parseCaptureQuery(params: URLSearchParams): CaptureQuery {
  only(params, ['pod', 'node', 'iface', 'filter', 'seconds']);
  const pod = params.get('pod');
  const node = params.get('node');
  const iface = params.get('iface');
  if ((pod === null) === (node === null)) throw new ApiError(400, 'give pod=NS/NAME or node=NAME (one of them)');
  if (iface !== null && pod !== null) throw new ApiError(400, 'iface is for node=; a pod has one interface, its eth0');
  if (iface !== null && (iface === '' || iface.length > 300)) throw new ApiError(400, 'iface must be 1 to 300 characters');
  const filter = params.get('filter');
  if (filter !== null && filter !== '') {
    try {
      compileFilter(filter);
    } catch (err) {
      if (err instanceof FilterError) throw new ApiError(400, `filter: ${err.message}`);
      throw err;
    }
  }
  const ref = pod !== null ? podRef('pod', pod) : undefined;
  return {
    ...(ref !== undefined ? { pod: `${ref.namespace}/${ref.name}` } : {}),
    ...(node !== null ? { node: checked('node', node, checkDnsLabel) } : {}),
    ...(iface !== null ? { iface } : {}),
    ...(filter !== null && filter !== '' ? { filter } : {}),
    seconds: integer('seconds', params.get('seconds'), 1, MAX_CAPTURE_SECONDS, 5),
  };
}

export function parseFlowsQuery(params: URLSearchParams): FlowsQuery {
  only(params, ['last', 'edge']);
  const edge = params.get('edge');
  if (edge !== null && !/^[a-z]+:[^>\s]{1,520}>[a-z]+:[^>\s]{1,520}$/.test(edge)) throw new ApiError(400, `edge ${JSON.stringify(edge.slice(0, 80))}: expected FROM>TO as the stream names edges (pod:NS/NAME>svc:NS/NAME)`);
  return { last: integer('last', params.get('last'), 0, Math.min(RECENT_FLOWS, MAX_FLOW_CAPACITY), 100), ...(edge !== null ? { edge } : {}) };
}

/** For the requests that take nothing. */
export function noParameters(params: URLSearchParams): void {
  only(params, []);
}
