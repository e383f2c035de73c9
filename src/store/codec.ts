/**
 * Store values as JSON a person can read: the model keeps addresses as uint32 and MACs as
 * 48-bit integers (the dataplane keys its tables with them); in etcd they are dotted, in
 * colons and in CIDR notation, so `etcdctl get` shows 10.244.1.5 rather than 183763205.
 * Which fields hold what is fixed by name, as the model names them.
 *
 * A value read back is checked for the shape its reader needs (`decodeRecord` with a
 * check); a record that fails is reported and left out, never half used.
 */
import { formatCidr, formatIpv4, formatMac, parseCidr, parseIpv4, parseMac, type Cidr } from '../packet/addr.js';

const IPV4_FIELDS = new Set(['ip', 'clusterIP', 'loadBalancerIP', 'loadBalancerIngress', 'underlay', 'gateway', 'externalIP', 'kubernetesIP', 'dnsIP', 'externalGateway', 'publicIP']);
const MAC_FIELDS = new Set(['mac', 'gatewayMac', 'vtepMac', 'externalMac']);
/** Fields that hold a CIDR, or (except) a list of them. */
const CIDR_FIELDS = new Set(['podCIDR', 'serviceCIDR', 'externalCIDR', 'loadBalancerCIDR', 'cidr', 'subnet']);
const CIDR_LIST_FIELDS = new Set(['except']);

function isCidr(value: unknown): value is Cidr {
  if (typeof value !== 'object' || value === null) return false;
  const keys = Object.keys(value);
  return keys.length === 2 && typeof (value as Cidr).base === 'number' && typeof (value as Cidr).prefix === 'number';
}

export function encodeRecord(value: unknown): string {
  return JSON.stringify(value, function replace(this: unknown, key: string, v: unknown) {
    if (typeof v === 'number') {
      if (IPV4_FIELDS.has(key) && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return formatIpv4(v);
      if (MAC_FIELDS.has(key) && Number.isInteger(v) && v >= 0) return formatMac(v);
    }
    if (isCidr(v)) return formatCidr(v);
    return v;
  });
}

/** The record a value holds, or why it is not one (not JSON, or a field that does not parse). */
export function decodeRecord(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  const bad: string[] = [];
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => {
      if (typeof v !== 'string') {
        if (CIDR_LIST_FIELDS.has(key) && Array.isArray(v)) return v.map((item) => (typeof item === 'string' ? cidrOf(key, item, bad) : item));
        return v;
      }
      if (IPV4_FIELDS.has(key)) {
        const addr = parseIpv4(v);
        if (addr === undefined) bad.push(`${key}: ${JSON.stringify(v)} is not an IPv4 address`);
        return addr;
      }
      if (MAC_FIELDS.has(key)) {
        const mac = parseMac(v);
        if (mac === undefined) bad.push(`${key}: ${JSON.stringify(v)} is not a MAC address`);
        return mac;
      }
      if (CIDR_FIELDS.has(key)) return cidrOf(key, v, bad);
      return v;
    });
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  if (bad.length > 0) return { ok: false, reason: bad.join('; ') };
  return { ok: true, value };
}

function cidrOf(key: string, text: string, bad: string[]): Cidr | undefined {
  const cidr = parseCidr(text);
  if (cidr === undefined) bad.push(`${key}: ${JSON.stringify(text)} is not a CIDR`);
  return cidr;
}

/** Small shape checks for records read back, each returning why the value is not one. */
export function expectObject(value: unknown): Record<string, unknown> | string {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : 'not an object';
}

export function missingFields(record: Record<string, unknown>, fields: Record<string, 'string' | 'number' | 'boolean' | 'object'>): string | undefined {
  const wrong = Object.entries(fields)
    .filter(([name, type]) => (type === 'object' ? typeof record[name] !== 'object' || record[name] === null : typeof record[name] !== type))
    .map(([name, type]) => `${name} (${type})`);
  return wrong.length > 0 ? `missing or mistyped: ${wrong.join(', ')}` : undefined;
}
