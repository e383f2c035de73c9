/**
 * A flow as Hubble's API carries it (cilium api/v1/flow/flow.proto), in the JSON form
 * `hubble observe -o json` prints: proto field names, enums by name, wrappers present
 * when set (is_reply false is printed), everything else left out when it is its zero
 * value, and fields in the order the proto declares them. Tools that read Hubble's JSON
 * read podwire's.
 *
 * Pure: building a flow from what a node recorded is build.ts; this is the shape and its
 * one JSON encoding.
 */
import { TCP_FLAG_FIELDS, type TcpFlagName, type VerdictName } from './hubble.js';

export interface Workload {
  readonly name: string;
  readonly kind: string;
}

export interface Endpoint {
  readonly ID?: number;
  readonly identity?: number;
  readonly namespace?: string;
  /** Cilium's label strings: `k8s:app=web`, `reserved:world`. */
  readonly labels?: readonly string[];
  readonly pod_name?: string;
  readonly workloads?: readonly Workload[];
}

export interface Service {
  readonly name: string;
  readonly namespace: string;
}

export interface Policy {
  readonly name: string;
  readonly namespace?: string;
  readonly kind: string;
}

export type TcpFlags = Partial<Record<TcpFlagName, true>>;

export interface Layer4 {
  readonly TCP?: { readonly source_port: number; readonly destination_port: number; readonly flags?: TcpFlags };
  readonly UDP?: { readonly source_port: number; readonly destination_port: number };
  readonly ICMPv4?: { readonly type?: number; readonly code?: number };
}

export interface Dns {
  readonly query: string;
  readonly ips?: readonly string[];
  readonly ttl?: number;
  readonly observation_source?: string;
  readonly rcode?: number;
  readonly qtypes?: readonly string[];
  readonly rrtypes?: readonly string[];
}

export interface Layer7 {
  readonly type: 'REQUEST' | 'RESPONSE';
  readonly dns?: Dns;
}

export interface Flow {
  /** RFC 3339, as protojson writes a Timestamp. */
  readonly time: string;
  readonly uuid?: string;
  readonly verdict: VerdictName;
  readonly drop_reason?: number;
  readonly ethernet?: { readonly source: string; readonly destination: string };
  readonly IP?: { readonly source: string; readonly destination: string; readonly ipVersion?: 'IPv4' };
  readonly l4?: Layer4;
  readonly source?: Endpoint;
  readonly destination?: Endpoint;
  readonly Type: 'L3_L4' | 'L7';
  readonly node_name?: string;
  readonly l7?: Layer7;
  /** Deprecated in Hubble, still printed when true. */
  readonly reply?: boolean;
  readonly event_type: { readonly type: number; readonly sub_type?: number };
  readonly source_service?: Service;
  readonly destination_service?: Service;
  readonly traffic_direction?: 'INGRESS' | 'EGRESS';
  readonly policy_match_type?: number;
  readonly trace_observation_point?: string;
  readonly drop_reason_desc?: string;
  readonly is_reply?: boolean;
  readonly sock_xlate_point?: string;
  readonly Summary?: string;
  readonly egress_allowed_by?: readonly Policy[];
  readonly ingress_allowed_by?: readonly Policy[];
  readonly egress_denied_by?: readonly Policy[];
  readonly ingress_denied_by?: readonly Policy[];
}

/** Hubble's notice that a reader missed events (observer.LostEvent). */
export interface LostEvents {
  readonly source: 'HUBBLE_RING_BUFFER';
  readonly num_events_lost: number;
}

// ---- the JSON encoding ---------------------------------------------------------------

type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };

/** Keeps `fields` of `value` that are set, in that order; zero values and empty lists are left out. */
function ordered(value: object | undefined, fields: readonly (readonly [string, ((v: never) => Json | undefined)?])[]): { [key: string]: Json } | undefined {
  if (value === undefined) return undefined;
  const source = value as { readonly [key: string]: unknown };
  const out: { [key: string]: Json } = {};
  for (const [key, encode] of fields) {
    const v = source[key];
    const encoded = encode === undefined ? scalar(v) : v === undefined ? undefined : encode(v as never);
    if (encoded !== undefined) out[key] = encoded;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** A scalar as protojson writes it: absent when it is the zero value. */
function scalar(v: unknown): Json | undefined {
  if (v === undefined || v === null || v === 0 || v === '' || v === false) return undefined;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return undefined;
}

function list<T>(encode: (item: T) => Json | undefined): (items: readonly T[]) => Json | undefined {
  return (items) => {
    const out = items.map(encode).filter((x): x is Json => x !== undefined);
    return out.length === 0 ? undefined : out;
  };
}

const strings = list<string>((s) => s);
const workload = (w: Workload) => ordered(w, [['name'], ['kind']]);
const endpoint = (e: Endpoint) => ordered(e, [['ID'], ['identity'], ['namespace'], ['labels', strings], ['pod_name'], ['workloads', list(workload)]]);
const service = (s: Service) => ordered(s, [['name'], ['namespace']]);
const policy = (p: Policy) => ordered(p, [['name'], ['namespace'], ['kind']]);
const tcpFlags = (f: TcpFlags) => ordered(f, TCP_FLAG_FIELDS.map((name) => [name] as const));
const ports = (p: { source_port: number; destination_port: number }) => ordered(p, [['source_port'], ['destination_port']]);
const layer4 = (l: Layer4) =>
  ordered(l, [
    ['TCP', (t: NonNullable<Layer4['TCP']>) => ordered(t, [['source_port'], ['destination_port'], ['flags', tcpFlags]])],
    ['UDP', ports],
    ['ICMPv4', (i: NonNullable<Layer4['ICMPv4']>) => ordered(i, [['type'], ['code']]) ?? {}],
  ]);
const dns = (d: Dns) => ordered(d, [['query'], ['ips', strings], ['ttl'], ['observation_source'], ['rcode'], ['qtypes', strings], ['rrtypes', strings]]);
const layer7 = (l: Layer7) => ordered(l, [['type'], ['dns', dns]]);
/** A BoolValue wrapper: printed whenever it is set, false included. */
const wrapped = (b: boolean) => b;
const policies = list(policy);

/** The flow's JSON object, as `hubble observe -o json` prints it (one per line). */
export function flowJson(flow: Flow): { [key: string]: Json } {
  return (
    ordered(flow, [
      ['time'],
      ['uuid'],
      ['verdict'],
      ['drop_reason'],
      ['ethernet', (e: NonNullable<Flow['ethernet']>) => ordered(e, [['source'], ['destination']])],
      ['IP', (ip: NonNullable<Flow['IP']>) => ordered(ip, [['source'], ['destination'], ['ipVersion']])],
      ['l4', layer4],
      ['source', (e: Endpoint) => endpoint(e) ?? {}],
      ['destination', (e: Endpoint) => endpoint(e) ?? {}],
      ['Type'],
      ['node_name'],
      ['l7', layer7],
      ['reply'],
      ['event_type', (t: Flow['event_type']) => ordered(t, [['type'], ['sub_type']]) ?? {}],
      ['source_service', service],
      ['destination_service', service],
      ['traffic_direction'],
      ['policy_match_type'],
      ['trace_observation_point'],
      ['drop_reason_desc'],
      ['is_reply', wrapped],
      ['sock_xlate_point'],
      ['Summary'],
      ['egress_allowed_by', policies],
      ['ingress_allowed_by', policies],
      ['egress_denied_by', policies],
      ['ingress_denied_by', policies],
    ]) ?? {}
  );
}

/** protojson's uint64: a string. */
export function lostEventsJson(lost: LostEvents): { [key: string]: Json } {
  return { source: lost.source, num_events_lost: String(lost.num_events_lost) };
}

// ---- time --------------------------------------------------------------------------

/** A point in time as protobuf's Timestamp holds it. */
export interface Timestamp {
  readonly seconds: number;
  readonly nanos: number;
}

/** protojson's Timestamp: UTC, with 0, 3, 6 or 9 fractional digits, whichever is exact. */
export function formatTimestamp(t: Timestamp): string {
  const base = new Date(t.seconds * 1000).toISOString().slice(0, 19);
  if (t.nanos === 0) return `${base}Z`;
  const digits = String(t.nanos).padStart(9, '0');
  const fraction = t.nanos % 1_000_000 === 0 ? digits.slice(0, 3) : t.nanos % 1000 === 0 ? digits.slice(0, 6) : digits;
  return `${base}.${fraction}Z`;
}

/** The inverse of formatTimestamp (RFC 3339 with a Z or an offset), or undefined. */
export function parseTimestamp(text: string): Timestamp | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (m === null) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return { seconds: Math.floor(ms / 1000), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

/**
 * A clock that starts at zero (the path's, in ns) as points in time, given where its zero
 * lies on the wall clock (ms since the epoch, fraction included): exact to the ns for 104
 * days of uptime, without the rounding of adding ns to 1.7e18.
 */
export function wallTime(originMs: number): (clockNs: number) => Timestamp {
  const originSeconds = Math.floor(originMs / 1000);
  const originNanos = Math.round((originMs - originSeconds * 1000) * 1e6);
  return (clockNs) => {
    const ns = originNanos + Math.round(clockNs);
    const carry = Math.floor(ns / 1e9);
    return { seconds: originSeconds + carry, nanos: ns - carry * 1e9 };
  };
}

/** Microseconds since the epoch: how flows from several nodes are put in time order. */
export function timestampMicros(t: Timestamp): number {
  return t.seconds * 1e6 + Math.floor(t.nanos / 1000);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Go's time.StampMilli of the UTC time ("Jan _2 15:04:05.000"), as Hubble's printer writes it. */
export function stampMilli(t: Timestamp): string {
  const d = new Date(t.seconds * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  const day = String(d.getUTCDate()).padStart(2, ' ');
  const millis = String(Math.floor(t.nanos / 1_000_000)).padStart(3, '0');
  return `${MONTHS[d.getUTCMonth()]} ${day} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}.${millis}`;
}
