/**
 * `podwire observe`'s filters, with Hubble's meanings (hubble/cmd/observe/flows_filter.go
 * builds them, pkg/hubble/filters matches them):
 *
 * - A FlowFilter matches a flow when every field it sets matches; a field matches when any
 *   of its values does. So flags of one kind OR together, different kinds AND.
 * - A flag that names both ends (`--pod`, `--ip`, `--port`, `--service`) fills the source
 *   field of one filter and the destination field of a second: the flow matches either.
 *   Two such flags pair up by end (`--ip A --port 80`: A:80 as source or as destination).
 *   `--from-*` and `--to-*` fill one end in both.
 * - `-n NS` puts the pod and service names of either end into the namespace (`NS/` alone
 *   when none is named: every pod of it); `--from-namespace` and `--to-namespace` one end.
 * - `--not` sends the next filter to the blacklist: a flow matching any blacklisted filter
 *   is left out, whatever the whitelist says.
 * - Pod and service names match by prefix within their namespace, `default` when none is
 *   given (`--to-pod deploy-nginx` matches default/deploy-nginx-7d4f8-abcde).
 *
 * Pure: the CLI builds the filters from its arguments, a node checks them at its edge
 * (decodeFilters) and matches the flows it sends.
 */
import { cidrContains, parseCidr, parseIpv4 } from '../packet/addr.js';
import type { Flow } from './flow.js';
import { ciliumDropNames, EVENT_TYPE_NAMES, EventType, TRACE_POINT_NAMES, VERDICT_NAMES } from './hubble.js';

export interface EventTypeFilter {
  readonly type: number;
  readonly match_sub_type?: boolean;
  readonly sub_type?: number;
}

/** flow.FlowFilter, the fields podwire's flags set. */
export interface FlowFilter {
  source_ip?: string[];
  destination_ip?: string[];
  source_pod?: string[];
  destination_pod?: string[];
  source_service?: string[];
  destination_service?: string[];
  source_port?: string[];
  destination_port?: string[];
  protocol?: string[];
  verdict?: string[];
  event_type?: EventTypeFilter[];
  drop_reason_desc?: string[];
  traffic_direction?: string[];
  node_name?: string[];
}

export interface FlowFilters {
  readonly whitelist: readonly FlowFilter[];
  readonly blacklist: readonly FlowFilter[];
}

export const NO_FILTERS: FlowFilters = { whitelist: [], blacklist: [] };

/** A filter flag with a value Hubble would refuse: the message says which and why. */
export class FilterError extends Error {}

/** The protocols `--protocol` knows (Hubble's), L4 and L7. */
export const PROTOCOLS: readonly string[] = ['tcp', 'udp', 'icmp', 'icmpv4', 'icmpv6', 'sctp', 'dns', 'http', 'kafka'];

/** Every filter flag, long names; `-n` is `--namespace` and `-t` is `--type`. */
export const FILTER_FLAGS: readonly string[] = [
  'not',
  'pod',
  'from-pod',
  'to-pod',
  'namespace',
  'from-namespace',
  'to-namespace',
  'ip',
  'from-ip',
  'to-ip',
  'port',
  'from-port',
  'to-port',
  'service',
  'from-service',
  'to-service',
  'protocol',
  'verdict',
  'type',
  'drop-reason-desc',
  'traffic-direction',
  'node-name',
];

/** Flags that cannot be combined (the ones of flows_filter.go's list that podwire has). */
const CONFLICTS: readonly (readonly string[])[] = [
  ['from-ip', 'ip', 'from-namespace', 'namespace'],
  ['from-ip', 'ip', 'from-pod', 'pod'],
  ['to-ip', 'ip', 'to-namespace', 'namespace'],
  ['to-ip', 'ip', 'to-pod', 'pod'],
  ['to-pod', 'namespace'],
  ['from-pod', 'namespace'],
  ['to-service', 'namespace'],
  ['from-service', 'namespace'],
  ['service', 'from-service'],
  ['service', 'to-service'],
  ['port', 'to-port'],
  ['port', 'from-port'],
];

type ListField = Exclude<keyof FlowFilter, 'event_type'>;

function push(f: FlowFilter, field: ListField, value: string): void {
  (f[field] ??= []).push(value);
}

/** The filters of one list (white or black): two FlowFilters whose OR is the list's. */
class Tracker {
  left: FlowFilter | undefined;
  right: FlowFilter | undefined;
  readonly changed: string[] = [];
  readonly ns: string[] = [];
  readonly srcNs: string[] = [];
  readonly dstNs: string[] = [];

  both(update: (f: FlowFilter) => void): void {
    update((this.left ??= {}));
    update((this.right ??= {}));
  }

  either(onLeft: (f: FlowFilter) => void, onRight: (f: FlowFilter) => void): void {
    onLeft((this.left ??= {}));
    onRight((this.right ??= {}));
  }

  filters(): FlowFilter[] {
    if (this.left === undefined && this.right === undefined && this.ns.length + this.srcNs.length + this.dstNs.length === 0) return [];
    const left = (this.left ??= {});
    const right = (this.right ??= {});
    if (this.dstNs.length > 0) for (const f of [left, right]) inNamespaces(f, 'destination', this.dstNs);
    if (this.srcNs.length > 0) for (const f of [left, right]) inNamespaces(f, 'source', this.srcNs);
    if (this.ns.length > 0) {
      inNamespaces(left, 'source', this.ns);
      inNamespaces(right, 'destination', this.ns);
    }
    return JSON.stringify(left) === JSON.stringify(right) ? [left] : [left, right];
  }
}

/** namespaceModifier.applySrc / applyDest: names without a namespace are looked for in each of `namespaces`. */
function inNamespaces(f: FlowFilter, end: 'source' | 'destination', namespaces: readonly string[]): void {
  const podField = end === 'source' ? 'source_pod' : 'destination_pod';
  const serviceField = end === 'source' ? 'source_service' : 'destination_service';
  if ((f[podField]?.length ?? 0) === 0 && (f[serviceField]?.length ?? 0) === 0) f[podField] = [''];
  for (const field of [podField, serviceField] as const) {
    const names = f[field];
    if (names === undefined || names.length === 0) continue;
    f[field] = names.flatMap((name) => (name.includes('/') ? [name] : namespaces.map((ns) => `${ns}/${name}`)));
  }
}

function checkIp(flag: string, value: string): string {
  if (parseIpv4(value) === undefined && (value.includes('/') ? parseCidr(value, true) === undefined : true)) {
    throw new FilterError(`--${flag} ${JSON.stringify(value)}: not an IPv4 address or CIDR`);
  }
  return value;
}

function checkPort(flag: string, value: string): string {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 0xffff) throw new FilterError(`--${flag} ${JSON.stringify(value)}: not a port (0-65535)`);
  return String(Number(value));
}

function checkName(flag: string, value: string): string {
  const [ns, name] = namespaceName(value);
  if (ns === '' && name === '') throw new FilterError(`--${flag} ${JSON.stringify(value)}: must be [NAMESPACE/][NAME]`);
  return value;
}

/** The EventTypeFilter of `--type NAME[:SUBTYPE]` (names or numbers, trace points by name). */
export function parseEventType(value: string): EventTypeFilter {
  const [typeText, subText] = value.split(/:(.*)/s, 2);
  const named = Object.hasOwn(EVENT_TYPE_NAMES, typeText) ? EVENT_TYPE_NAMES[typeText] : undefined;
  const type = named ?? (/^\d+$/.test(typeText) ? Number(typeText) : undefined);
  if (type === undefined) throw new FilterError(`--type ${JSON.stringify(value)}: not a known type (${Object.keys(EVENT_TYPE_NAMES).join(', ')}) or a number`);
  if (subText === undefined) return { type };
  const point = type === EventType.Trace ? TRACE_POINT_NAMES.indexOf(subText) : -1;
  const sub = point >= 0 ? point : /^\d+$/.test(subText) ? Number(subText) : undefined;
  if (sub === undefined) throw new FilterError(`--type ${JSON.stringify(value)}: not a known sub-type${type === EventType.Trace ? ` (${TRACE_POINT_NAMES.join(', ')})` : ''} or a number`);
  return { type, match_sub_type: true, sub_type: sub };
}

/** Builds the filters flag by flag, in the order they were given (flowFilter.Set). */
export class FilterBuilder {
  private white: Tracker | undefined;
  private black: Tracker | undefined;
  private blacklisting = false;

  set(flag: string, value = ''): void {
    if (flag === 'not') {
      if (this.blacklisting) throw new FilterError('consecutive --not statements');
      this.blacklisting = true;
      return;
    }
    const t = this.blacklisting ? (this.black ??= new Tracker()) : (this.white ??= new Tracker());
    this.blacklisting = false;
    const first = !t.changed.includes(flag);
    if (first) t.changed.push(flag);
    for (const group of CONFLICTS) {
      if (!group.includes(flag)) continue;
      const other = group.find((g) => g !== flag && t.changed.includes(g));
      if (other !== undefined) throw new FilterError(`filters --${flag} and --${other} cannot be combined`);
    }
    this.apply(t, flag, value);
  }

  private apply(t: Tracker, flag: string, value: string): void {
    switch (flag) {
      case 'pod':
        checkName(flag, value);
        return t.either((f) => push(f, 'source_pod', value), (f) => push(f, 'destination_pod', value));
      case 'from-pod':
        checkName(flag, value);
        return t.both((f) => push(f, 'source_pod', value));
      case 'to-pod':
        checkName(flag, value);
        return t.both((f) => push(f, 'destination_pod', value));
      case 'namespace':
        t.ns.push(value);
        return;
      case 'from-namespace':
        t.srcNs.push(value);
        return;
      case 'to-namespace':
        t.dstNs.push(value);
        return;
      case 'ip':
        checkIp(flag, value);
        return t.either((f) => push(f, 'source_ip', value), (f) => push(f, 'destination_ip', value));
      case 'from-ip':
        return t.both((f) => push(f, 'source_ip', checkIp(flag, value)));
      case 'to-ip':
        return t.both((f) => push(f, 'destination_ip', checkIp(flag, value)));
      case 'port': {
        const port = checkPort(flag, value);
        return t.either((f) => push(f, 'source_port', port), (f) => push(f, 'destination_port', port));
      }
      case 'from-port':
        return t.both((f) => push(f, 'source_port', checkPort(flag, value)));
      case 'to-port':
        return t.both((f) => push(f, 'destination_port', checkPort(flag, value)));
      case 'service':
        checkName(flag, value);
        return t.either((f) => push(f, 'source_service', value), (f) => push(f, 'destination_service', value));
      case 'from-service':
        checkName(flag, value);
        return t.both((f) => push(f, 'source_service', value));
      case 'to-service':
        checkName(flag, value);
        return t.both((f) => push(f, 'destination_service', value));
      case 'protocol':
        if (!PROTOCOLS.includes(value.toLowerCase())) throw new FilterError(`--protocol ${JSON.stringify(value)}: one of ${PROTOCOLS.join(', ')}`);
        return t.both((f) => push(f, 'protocol', value.toLowerCase()));
      case 'verdict':
        if (!VERDICT_NAMES.includes(value)) throw new FilterError(`--verdict ${JSON.stringify(value)}: one of ${VERDICT_NAMES.slice(1).join(', ')}`);
        return t.both((f) => push(f, 'verdict', value));
      case 'type': {
        const type = parseEventType(value);
        return t.both((f) => (f.event_type ??= []).push(type));
      }
      case 'drop-reason-desc':
        if (!ciliumDropNames().includes(value)) throw new FilterError(`--drop-reason-desc ${JSON.stringify(value)}: one of ${ciliumDropNames().join(', ')}`);
        return t.both((f) => push(f, 'drop_reason_desc', value));
      case 'traffic-direction': {
        const d = value.toLowerCase();
        if (d !== 'ingress' && d !== 'egress') throw new FilterError(`--traffic-direction ${JSON.stringify(value)}: ingress or egress`);
        return t.both((f) => push(f, 'traffic_direction', d.toUpperCase()));
      }
      case 'node-name':
        return t.both((f) => push(f, 'node_name', value));
      default:
        throw new FilterError(`--${flag} is not a filter`);
    }
  }

  build(): FlowFilters {
    if (this.blacklisting) throw new FilterError('trailing --not: it must be followed by a filter');
    return { whitelist: this.white?.filters() ?? [], blacklist: this.black?.filters() ?? [] };
  }
}

// ---- matching -------------------------------------------------------------------------

/** k8s.ParseNamespaceName: `ns/name`, or a bare name in the default namespace. */
export function namespaceName(text: string): [string, string] {
  const slash = text.indexOf('/');
  if (slash >= 0) return [text.slice(0, slash), text.slice(slash + 1)];
  return text === '' ? ['', ''] : ['default', text];
}

function nameMatches(selectors: readonly string[], ns: string | undefined, name: string | undefined): boolean {
  if ((ns ?? '') === '' && (name ?? '') === '') return false;
  return selectors.some((s) => {
    const [wantNs, prefix] = namespaceName(s);
    return wantNs === (ns ?? '') && (name ?? '').startsWith(prefix);
  });
}

function ipMatches(values: readonly string[], ip: string | undefined): boolean {
  if (ip === undefined) return false;
  const addr = parseIpv4(ip);
  return values.some((v) => {
    if (!v.includes('/')) return v === ip;
    const cidr = parseCidr(v, true);
    return cidr !== undefined && addr !== undefined && cidrContains(cidr, addr);
  });
}

function portsOf(f: Flow): [number, number] | undefined {
  const l4 = f.l4;
  if (l4?.TCP !== undefined) return [l4.TCP.source_port, l4.TCP.destination_port];
  if (l4?.UDP !== undefined) return [l4.UDP.source_port, l4.UDP.destination_port];
  return undefined;
}

function protocolMatches(protocols: readonly string[], f: Flow): boolean {
  return protocols.some((p) => {
    switch (p) {
      case 'tcp':
        return f.l4?.TCP !== undefined;
      case 'udp':
        return f.l4?.UDP !== undefined;
      case 'icmp':
      case 'icmpv4':
        return f.l4?.ICMPv4 !== undefined;
      case 'dns':
        return f.l7?.dns !== undefined;
      default:
        return false;
    }
  });
}

function globMatches(patterns: readonly string[], value: string | undefined): boolean {
  return patterns.some((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(value ?? ''));
}

/** Whether every field `filter` sets matches `f`. */
export function filterMatches(filter: FlowFilter, f: Flow): boolean {
  const ports = portsOf(f);
  const checks: [readonly unknown[] | undefined, () => boolean][] = [
    [filter.source_ip, () => ipMatches(filter.source_ip!, f.IP?.source)],
    [filter.destination_ip, () => ipMatches(filter.destination_ip!, f.IP?.destination)],
    [filter.source_pod, () => nameMatches(filter.source_pod!, f.source?.namespace, f.source?.pod_name)],
    [filter.destination_pod, () => nameMatches(filter.destination_pod!, f.destination?.namespace, f.destination?.pod_name)],
    [filter.source_service, () => nameMatches(filter.source_service!, f.source_service?.namespace, f.source_service?.name)],
    [filter.destination_service, () => nameMatches(filter.destination_service!, f.destination_service?.namespace, f.destination_service?.name)],
    [filter.source_port, () => ports !== undefined && filter.source_port!.some((p) => Number(p) === ports[0])],
    [filter.destination_port, () => ports !== undefined && filter.destination_port!.some((p) => Number(p) === ports[1])],
    [filter.protocol, () => protocolMatches(filter.protocol!, f)],
    [filter.verdict, () => filter.verdict!.includes(f.verdict)],
    [
      filter.event_type,
      () => filter.event_type!.some((t) => t.type === f.event_type.type && (t.match_sub_type !== true || (t.sub_type ?? 0) === (f.event_type.sub_type ?? 0))),
    ],
    [filter.drop_reason_desc, () => f.drop_reason_desc !== undefined && filter.drop_reason_desc!.includes(f.drop_reason_desc)],
    [filter.traffic_direction, () => f.traffic_direction !== undefined && filter.traffic_direction!.includes(f.traffic_direction)],
    [filter.node_name, () => globMatches(filter.node_name!, f.node_name)],
  ];
  return checks.every(([values, check]) => values === undefined || values.length === 0 || check());
}

/** Whether `f` passes: in the whitelist (when there is one) and in no blacklisted filter. */
export function flowPasses(filters: FlowFilters, f: Flow): boolean {
  if (filters.whitelist.length > 0 && !filters.whitelist.some((w) => filterMatches(w, f))) return false;
  return !filters.blacklist.some((b) => filterMatches(b, f));
}

// ---- checking filters that arrive from elsewhere ----------------------------------------

const STRING_FIELDS: readonly ListField[] = [
  'source_ip',
  'destination_ip',
  'source_pod',
  'destination_pod',
  'source_service',
  'destination_service',
  'source_port',
  'destination_port',
  'protocol',
  'verdict',
  'drop_reason_desc',
  'traffic_direction',
  'node_name',
];

function decodeFilter(raw: unknown, where: string): FlowFilter {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FilterError(`${where} must be an object`);
  const out: FlowFilter = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'event_type') {
      if (!Array.isArray(value)) throw new FilterError(`${where}.event_type must be a list`);
      out.event_type = value.map((t: unknown, i) => {
        const e = t as { type?: unknown; match_sub_type?: unknown; sub_type?: unknown };
        if (typeof t !== 'object' || t === null || typeof e.type !== 'number' || (e.sub_type !== undefined && typeof e.sub_type !== 'number')) {
          throw new FilterError(`${where}.event_type[${i}] must be {type, match_sub_type?, sub_type?} of numbers`);
        }
        return { type: e.type, ...(e.match_sub_type === true ? { match_sub_type: true, sub_type: (e.sub_type as number | undefined) ?? 0 } : {}) };
      });
      continue;
    }
    if (!(STRING_FIELDS as readonly string[]).includes(key)) throw new FilterError(`${where}: unknown field ${JSON.stringify(key)}`);
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length <= 512)) throw new FilterError(`${where}.${key} must be a list of strings`);
    out[key as ListField] = [...(value as string[])];
  }
  return out;
}

/** Filters received as JSON (a node's control request), checked; throws FilterError. */
export function decodeFilters(raw: unknown): FlowFilters {
  if (raw === undefined) return NO_FILTERS;
  const r = raw as { whitelist?: unknown; blacklist?: unknown };
  if (typeof raw !== 'object' || raw === null || !Array.isArray(r.whitelist ?? []) || !Array.isArray(r.blacklist ?? [])) {
    throw new FilterError('filters must be {whitelist: [...], blacklist: [...]}');
  }
  const lists = [(r.whitelist ?? []) as unknown[], (r.blacklist ?? []) as unknown[]];
  if (lists[0].length + lists[1].length > 64) throw new FilterError('at most 64 filters');
  return {
    whitelist: lists[0].map((f, i) => decodeFilter(f, `whitelist[${i}]`)),
    blacklist: lists[1].map((f, i) => decodeFilter(f, `blacklist[${i}]`)),
  };
}
