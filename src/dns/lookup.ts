/**
 * Lookups: a parsed request against the zone, returning generic records, as CoreDNS's
 * `Records` / `findServices` / `findPods` do. This is where NXDOMAIN and NODATA are told
 * apart, deliberately and in one place:
 *
 * - `exists: false` is NXDOMAIN: no such name, and nothing below it.
 * - `exists: true` with no records is an empty non-terminal (`svc.cluster.local`,
 *   `default.svc.cluster.local`): the name exists because names below it do (RFC 8020), so
 *   every type gets NODATA. `_tcp.web.default.svc.cluster.local` is not one: CoreDNS reads a
 *   single label below a service as an endpoint, finds none, and answers NXDOMAIN; so does
 *   podwire (request.ts).
 * - `exists: true` with records is a name that owns records; a type it lacks (AAAA in an IPv4
 *   cluster, TXT for a service) gets NODATA from the answer builder.
 *
 * A headless service without ready endpoints owns nothing and has nothing below it: NXDOMAIN,
 * as CoreDNS answers it. A cluster-IP service owns its address whatever its endpoints.
 */
import type { RecordRequest } from './request.js';
import type { Zone, ZoneRecord } from './zone.js';

export interface LookupResult {
  readonly exists: boolean;
  readonly records: readonly ZoneRecord[];
}

export const NO_SUCH_NAME: LookupResult = Object.freeze({ exists: false, records: Object.freeze([]) as readonly ZoneRecord[] });
export const EMPTY_NON_TERMINAL: LookupResult = Object.freeze({ exists: true, records: Object.freeze([]) as readonly ZoneRecord[] });

function found(records: readonly ZoneRecord[]): LookupResult {
  return records.length === 0 ? NO_SUCH_NAME : { exists: true, records };
}

export function lookup(zone: Zone, req: RecordRequest): LookupResult {
  switch (req.kind) {
    case 'apex':
      return EMPTY_NON_TERMINAL;
    case 'invalid':
      return NO_SUCH_NAME;
    case 'pod':
      return findPod(zone, req);
    case 'svc':
      return findService(zone, req);
  }
}

/**
 * `a-b-c-d.<namespace>.pod.<zone>` in CoreDNS's `pods insecure` mode: any well-formed
 * address in an existing namespace, without checking that such a pod exists.
 */
function findPod(zone: Zone, req: RecordRequest): LookupResult {
  if (req.namespace === '') return EMPTY_NON_TERMINAL;
  if (!zone.namespaces.has(req.namespace)) return NO_SUCH_NAME;
  if (req.service === '') return EMPTY_NON_TERMINAL;
  // Nothing lives below a pod name (CoreDNS ignores the extra labels and answers anyway).
  if (req.endpoint !== '' || req.port !== '') return NO_SUCH_NAME;
  const addr = parseDashedIpv4(req.service);
  if (addr < 0) return NO_SUCH_NAME;
  const name = `${req.service}.${req.namespace}.pod.${zone.domain}`;
  return { exists: true, records: [{ addr, target: '', port: -1, portName: '', protocol: '', name, endpoint: '' }] };
}

function findService(zone: Zone, req: RecordRequest): LookupResult {
  if (req.namespace === '') return EMPTY_NON_TERMINAL;
  if (!zone.namespaces.has(req.namespace)) return NO_SUCH_NAME;
  if (req.service === '') return EMPTY_NON_TERMINAL;
  const svc = zone.services.get(req.namespace)?.get(req.service);
  if (svc === undefined) return NO_SUCH_NAME;
  if (svc.kind === 'ExternalName') {
    // An alias owns only its CNAME: no endpoints, no ports below it.
    return req.endpoint === '' && req.port === '' ? found(svc.records) : NO_SUCH_NAME;
  }
  if (req.endpoint !== '') return found(svc.endpoints.filter((r) => r.endpoint === req.endpoint));
  if (req.port !== '') return found(svc.records.filter((r) => r.port >= 0 && r.portName === req.port && r.protocol === req.protocol));
  return found(svc.records);
}

/**
 * `10-244-1-5` as an address, or -1. Four decimal octets without leading zeros (Go's
 * net.ParseIP, which CoreDNS uses, refuses them too: `010` is octal to some parsers).
 */
export function parseDashedIpv4(label: string): number {
  let addr = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= label.length; i++) {
    const c = i === label.length ? 0x2d : label.charCodeAt(i);
    if (c === 0x2d) {
      if (digits === 0 || octet > 255) return -1;
      addr = addr * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
      continue;
    }
    if (c < 0x30 || c > 0x39) return -1;
    if (digits === 1 && octet === 0) return -1; // leading zero
    octet = octet * 10 + (c - 0x30);
    if (++digits > 3) return -1;
  }
  return parts === 4 ? addr : -1;
}
