/**
 * The cluster zone: what CoreDNS's kubernetes plugin would find in its informer caches,
 * indexed for the lookups in lookup.ts. Built from the cluster model and the endpoints the
 * endpoints controller computed (src/cluster/endpoints.ts), rebuilt whole whenever either
 * changes, so there is no incremental update to get wrong.
 *
 * A build is one pass over services, endpoints and pods that makes few objects: at 10,000
 * services the cost is allocation and garbage collection, not lookups (see bench/dns.bench.ts).
 * So per-endpoint records are made when a name of that service is first asked for, and
 * remembered; the reverse index points at services and pods instead of holding name strings.
 * Neither is visible to callers: a zone never changes once built.
 *
 * Records are generic, as CoreDNS's `msg.Service` is: an address or a target name, a port,
 * and the record's own name. The builders (builders.ts) turn them into A, SRV, PTR and CNAME
 * answers. Only ready endpoints are published, as CoreDNS publishes only `Addresses`.
 */
import { cidrContains, formatIpv4, parseIpv4, type Cidr } from '../packet/addr.js';
import type { ServicePortEndpoints, Readiness } from '../cluster/endpoints.js';
import type { Cluster, Protocol, Service, ServicePort } from '../cluster/model.js';
import { equalitySelector, selectorMatches } from '../cluster/selector.js';
import { textToWire } from './name.js';

/** The Kubernetes DNS schema version CoreDNS reports at `dns-version.<zone>` (TXT). */
export const DNS_SCHEMA_VERSION = '1.1.0';
/** CoreDNS gives that TXT record a TTL of its own, whatever the zone's: 8 hours. */
export const DNS_SCHEMA_VERSION_TTL = 28800;
/** The cluster DNS Service every cluster has (kubeadm's CoreDNS keeps the kube-dns name). */
export const DNS_SERVICE_NAMESPACE = 'kube-system';
export const DNS_SERVICE_NAME = 'kube-dns';

export interface ZoneRecord {
  /** IPv4 address as a uint32, or -1 when the record is a name (an ExternalName's CNAME). */
  readonly addr: number;
  /** CNAME target (no trailing dot, lower case), '' for address records. */
  readonly target: string;
  /** The port (service port for a cluster IP, target port for an endpoint); -1 when none. */
  readonly port: number;
  /** Port name ('' when unnamed) and protocol in lower case, matched by `_port._proto` names. */
  readonly portName: string;
  readonly protocol: string;
  /** The record's own name: the service, or `<endpoint>.<service>...`; the SRV target. */
  readonly name: string;
  /** The endpoint label (hostname or dashed address), '' for service-level records. */
  readonly endpoint: string;
}

export type ServiceKind = 'ClusterIP' | 'Headless' | 'ExternalName';

/** Ready endpoints of one service port, as the endpoints controller lists them. */
type ReadyPort = Pick<ServicePortEndpoints, 'servicePort' | 'protocol' | 'endpoints'>;

/**
 * A service as the zone serves it. Its records are made when first asked for and then kept:
 * the build only indexes services (see the module comment).
 */
export class ZoneService {
  private fqdnMemo: string | undefined;
  private ownMemo: readonly ZoneRecord[] | undefined;
  private endpointsMemo: readonly ZoneRecord[] | undefined;

  constructor(
    readonly namespace: string,
    readonly name: string,
    readonly kind: ServiceKind,
    /** The cluster IP, -1 for headless and ExternalName services. */
    readonly clusterIP: number,
    private readonly domain: string,
    /** Service ports (ClusterIP) or the CNAME target (ExternalName). */
    private readonly ports: readonly ServicePort[],
    private readonly target: string,
    /** Ready endpoints: `ready[readyStart, readyEnd)`, one entry per service port. */
    private readonly ready: readonly ReadyPort[],
    private readonly readyStart: number,
    private readonly readyEnd: number,
    /** Records known at build time instead (port-less headless services, kube-dns). */
    eager?: readonly ZoneRecord[],
  ) {
    if (kind === 'Headless') this.endpointsMemo = eager;
    else this.ownMemo = eager;
  }

  /** `web.default.svc.cluster.local` */
  get fqdn(): string {
    if (this.fqdnMemo === undefined) this.fqdnMemo = `${this.name}.${this.namespace}.svc.${this.domain}`;
    return this.fqdnMemo;
  }

  /**
   * What the service name answers: the cluster IP once per port (ClusterIP), every ready
   * endpoint once per port (Headless), the CNAME (ExternalName).
   */
  get records(): readonly ZoneRecord[] {
    if (this.kind === 'Headless') return this.endpoints;
    if (this.ownMemo === undefined) this.ownMemo = this.own();
    return this.ownMemo;
  }

  /** Ready endpoints once per port, named `<endpoint>.<service>...`; what endpoint names answer. */
  get endpoints(): readonly ZoneRecord[] {
    if (this.endpointsMemo === undefined) this.endpointsMemo = this.materialize();
    return this.endpointsMemo;
  }

  /** Ready endpoint addresses (each once per port), without making records: for the reverse index. */
  forEachReadyAddress(f: (addr: number) => void): void {
    if (this.endpointsMemo !== undefined) {
      for (const r of this.endpointsMemo) f(r.addr);
      return;
    }
    for (let i = this.readyStart; i < this.readyEnd; i++) for (const e of this.ready[i].endpoints) if (e.ready) f(e.ip);
  }

  private own(): ZoneRecord[] {
    const fqdn = this.fqdn;
    if (this.kind === 'ExternalName') return [record(-1, this.target, -1, '', '', fqdn, '')];
    const ip = this.clusterIP;
    if (this.ports.length === 0) return [record(ip, '', -1, '', '', fqdn, '')];
    return this.ports.map((p) => record(ip, '', p.port, p.name ?? '', protocolLabel(p.protocol), fqdn, ''));
  }

  private materialize(): ZoneRecord[] {
    const out: ZoneRecord[] = [];
    const fqdn = this.fqdn;
    for (let i = this.readyStart; i < this.readyEnd; i++) {
      const spe = this.ready[i];
      const portName = spe.servicePort.name ?? '';
      const protocol = protocolLabel(spe.protocol);
      for (const e of spe.endpoints) {
        if (!e.ready) continue;
        const endpoint = e.hostname ?? dashedIpv4(e.ip);
        out.push(record(e.ip, '', e.port, portName, protocol, `${endpoint}.${fqdn}`, endpoint));
      }
    }
    return out;
  }
}

export interface ZoneOptions {
  /** TTL of every record; the cluster's `dnsTTLSeconds` by default. */
  readonly ttl?: number;
  /** The cluster domain, `cluster.settings.clusterDomain` by default. */
  readonly domain?: string;
  /**
   * The SOA serial. CoreDNS uses the time of the last change in its caches; pass the rebuild
   * time in seconds to do the same (buildZone reads no clock). 1 by default.
   */
  readonly serial?: number;
  /**
   * Readiness, for headless services without ports: the endpoints controller lists endpoints
   * per service port, so a port-less headless service has none there, yet Kubernetes DNS
   * publishes its ready pods. Without it those services answer NXDOMAIN.
   */
  readonly readiness?: Readiness;
  /**
   * Publish `kube-dns.kube-system.svc` at the cluster DNS address (ports dns/53/UDP and
   * dns-tcp/53/TCP), as every cluster has it, unless the YAML declares it. True by default.
   */
  readonly builtinDns?: boolean;
}

export interface Zone {
  /** `cluster.local`: lower case, no trailing dot. */
  readonly domain: string;
  /** The domain's wire form, lower case. */
  readonly domainWire: Uint8Array;
  readonly ttl: number;
  readonly serial: number;
  /** The cluster DNS service address: `ns.dns.<domain>` and the NS glue. */
  readonly dnsIP: number;
  /**
   * The apex NS target, `kube-dns.kube-system.svc.<domain>`: CoreDNS names itself by the
   * Service whose endpoint it is (plugin/kubernetes/ns.go), and in a cluster that is kube-dns.
   */
  readonly nameserver: string;
  readonly namespaces: ReadonlySet<string>;
  /** By namespace, then name. */
  readonly services: ReadonlyMap<string, ReadonlyMap<string, ZoneService>>;
  /**
   * Who an address belongs to, for PTR: the service whose cluster IP it is, else every service
   * it is a ready endpoint of (see `reverseNames`).
   */
  readonly reverseOwners: ReadonlyMap<number, ZoneService | readonly ZoneService[]>;
  /** Pods that are no service's endpoint, by address: their namespace (`a-b-c-d.<ns>.pod.<zone>`). */
  readonly podNamespaces: ReadonlyMap<number, string>;
  /** Every /8, /16 and /24 above a PTR address (see `reversePrefixKey`): the reverse zone's empty non-terminals. */
  readonly reversePrefixes: ReadonlySet<number>;
  /** Pod and service CIDRs: reverse names inside them are answered here (NXDOMAIN when unknown), not forwarded. */
  readonly reverseAuthority: readonly Cidr[];
  /** Services in build order, for listings. */
  readonly serviceList: readonly ZoneService[];
}

/** `10-244-1-5`: an address as one DNS label, as CoreDNS names endpoints without a hostname and pods. */
export function dashedIpv4(addr: number): string {
  return `${(addr >>> 24) & 0xff}-${(addr >>> 16) & 0xff}-${(addr >>> 8) & 0xff}-${addr & 0xff}`;
}

/**
 * Key of an address prefix of `octets` whole octets (1 to 3) in `Zone.reversePrefixes`: the
 * octet count above the prefix bits, under 2^27, so a small integer (a Set of doubles would
 * allocate a heap number per key).
 */
export function reversePrefixKey(addr: number, octets: number): number {
  return (octets << 25) | (addr >>> (32 - 8 * octets));
}

function normalizeDomain(domain: string): string {
  return domain.toLowerCase().replace(/\.$/, '');
}

function protocolLabel(protocol: Protocol): string {
  return protocol.toLowerCase();
}

/** A ready endpoint of a port-less headless service (see `ZoneOptions.readiness`). */
interface PortlessEndpoint {
  readonly ip: number;
  readonly hostname: string | undefined;
}

/**
 * The zone for `cluster` and its endpoints (from `computeEndpoints`). Pure: no clock, no
 * I/O; the same inputs give the same zone.
 */
export function buildZone(cluster: Cluster, endpoints: readonly ServicePortEndpoints[], options: ZoneOptions = {}): Zone {
  const domain = normalizeDomain(options.domain ?? cluster.settings.clusterDomain);
  const domainWire = textToWire(domain);
  if (domainWire === undefined) throw new Error(`buildZone: bad cluster domain ${JSON.stringify(domain)}`);
  const ttl = options.ttl ?? cluster.settings.dnsTTLSeconds;
  const dnsIP = cluster.settings.dnsIP;

  const namespaces = new Set<string>();
  for (const n of cluster.namespaces) namespaces.add(n.name);
  const services = new Map<string, Map<string, ZoneService>>();
  const serviceList: ZoneService[] = [];
  const reverseOwners = new Map<number, ZoneService | ZoneService[]>();
  const add = (s: ZoneService): void => {
    namespaces.add(s.namespace);
    let byName = services.get(s.namespace);
    if (byName === undefined) services.set(s.namespace, (byName = new Map()));
    if (byName.has(s.name)) return;
    byName.set(s.name, s);
    serviceList.push(s);
    indexOwner(reverseOwners, s);
  };

  // computeEndpoints lists services in the cluster's order, each one's ports together: walk
  // both lists in step, and fall back to grouping by service when a caller's list is not so.
  const inStep = walksInStep(cluster.services, endpoints);
  const groups = inStep ? undefined : groupByService(endpoints);
  let j = 0;
  for (const service of cluster.services) {
    let list: readonly ReadyPort[] = endpoints;
    let start = j;
    let end = j;
    if (groups === undefined) {
      while (end < endpoints.length && endpoints[end].service === service) end++;
      j = end;
    } else {
      list = groups.get(service) ?? NO_PORTS;
      start = 0;
      end = list.length;
    }
    const zs = zoneService(cluster, service, list, start, end, options.readiness, domain);
    if (zs !== undefined) add(zs);
  }
  if (options.builtinDns !== false && services.get(DNS_SERVICE_NAMESPACE)?.has(DNS_SERVICE_NAME) !== true) add(kubeDns(dnsIP, domain));

  const podNamespaces = new Map<number, string>();
  for (const pod of cluster.pods) {
    namespaces.add(pod.namespace);
    if (!reverseOwners.has(pod.ip)) podNamespaces.set(pod.ip, pod.namespace);
  }
  return {
    domain,
    domainWire,
    ttl,
    serial: options.serial ?? 1,
    dnsIP,
    nameserver: `${DNS_SERVICE_NAME}.${DNS_SERVICE_NAMESPACE}.svc.${domain}`,
    namespaces,
    services,
    reverseOwners,
    podNamespaces,
    reversePrefixes: prefixesOf([reverseOwners.keys(), podNamespaces.keys()]),
    reverseAuthority: [cluster.settings.podCIDR, cluster.settings.serviceCIDR],
    serviceList,
  };
}

const NO_PORTS: readonly ServicePortEndpoints[] = [];

function walksInStep(services: readonly Service[], endpoints: readonly ServicePortEndpoints[]): boolean {
  let j = 0;
  for (const service of services) while (j < endpoints.length && endpoints[j].service === service) j++;
  return j === endpoints.length;
}

function groupByService(endpoints: readonly ServicePortEndpoints[]): Map<Service, ServicePortEndpoints[]> {
  const groups = new Map<Service, ServicePortEndpoints[]>();
  for (const spe of endpoints) {
    const list = groups.get(spe.service);
    if (list === undefined) groups.set(spe.service, [spe]);
    else list.push(spe);
  }
  return groups;
}

function record(addr: number, target: string, port: number, portName: string, protocol: string, name: string, endpoint: string): ZoneRecord {
  return { addr, target, port, portName, protocol, name, endpoint };
}

function zoneService(
  cluster: Cluster,
  service: Service,
  ready: readonly ReadyPort[],
  start: number,
  end: number,
  readiness: Readiness | undefined,
  domain: string,
): ZoneService | undefined {
  const { namespace, name } = service;
  if (service.type === 'ExternalName') {
    const target = normalizeDomain(service.externalName ?? '');
    // As CoreDNS: only a name becomes a CNAME; an address written as externalName is ignored.
    if (target === '' || parseIpv4(target) !== undefined) return undefined;
    return new ZoneService(namespace, name, 'ExternalName', -1, domain, NO_SERVICE_PORTS, target, NO_PORTS, 0, 0);
  }
  if (service.headless || service.clusterIP === undefined) {
    const eager = service.ports.length === 0 ? portless(cluster, service, readiness, domain) : undefined;
    return new ZoneService(namespace, name, 'Headless', -1, domain, NO_SERVICE_PORTS, '', ready, start, end, eager);
  }
  return new ZoneService(namespace, name, 'ClusterIP', service.clusterIP, domain, service.ports, '', ready, start, end);
}

const NO_SERVICE_PORTS: readonly ServicePort[] = [];

/**
 * Indexes `s` under its cluster IP and its ready endpoints' addresses: a cluster IP belongs
 * to its service alone (CoreDNS's `serviceRecordForIP` stops there), an endpoint address to
 * every service it is ready in.
 */
function indexOwner(owners: Map<number, ZoneService | ZoneService[]>, s: ZoneService): void {
  if (s.clusterIP >= 0) {
    const held = owners.get(s.clusterIP);
    if (held === undefined || !(held instanceof ZoneService) || held.clusterIP !== s.clusterIP) owners.set(s.clusterIP, s);
  }
  s.forEachReadyAddress((addr) => addOwner(owners, addr, s));
}

function addOwner(owners: Map<number, ZoneService | ZoneService[]>, addr: number, s: ZoneService): void {
  const held = owners.get(addr);
  if (held === undefined) owners.set(addr, s);
  else if (held === s) return;
  else if (held instanceof ZoneService) {
    if (held.clusterIP === addr) return; // a cluster IP is its service's alone
    owners.set(addr, [held, s]);
  } else if (!held.includes(s)) held.push(s);
}

/** Prefix keys of every address; consecutive addresses mostly share them, so most adds are skipped. */
function prefixesOf(lists: Iterable<number>[]): Set<number> {
  const prefixes = new Set<number>();
  let last = -1;
  for (const list of lists) {
    for (const addr of list) {
      const key24 = reversePrefixKey(addr, 3);
      if (key24 === last) continue;
      last = key24;
      prefixes.add(key24);
      prefixes.add(reversePrefixKey(addr, 2));
      prefixes.add(reversePrefixKey(addr, 1));
    }
  }
  return prefixes;
}

/**
 * PTR targets of `addr`, as CoreDNS's `serviceRecordForIP` finds them: a cluster IP names its
 * service; an endpoint address names itself in every service it is ready in
 * (`<endpoint>.<service>...`). Pods that are no service's endpoint get their pod name
 * (`a-b-c-d.<ns>.pod.<zone>`), which CoreDNS leaves to the upstream: podwire answers for every
 * address it assigned. Undefined when the address is unknown.
 */
export function reverseNames(zone: Zone, addr: number): string[] | undefined {
  const owners = zone.reverseOwners.get(addr);
  if (owners === undefined) {
    const namespace = zone.podNamespaces.get(addr);
    return namespace === undefined ? undefined : [`${dashedIpv4(addr)}.${namespace}.pod.${zone.domain}`];
  }
  const names: string[] = [];
  for (const s of owners instanceof ZoneService ? [owners] : owners) {
    if (s.clusterIP === addr) {
      names.push(s.fqdn);
      continue;
    }
    for (const r of s.endpoints) if (r.addr === addr && !names.includes(r.name)) names.push(r.name);
  }
  return names;
}

/** Whether the zone has PTR records for `addr`. */
export function hasReverse(zone: Zone, addr: number): boolean {
  return zone.reverseOwners.has(addr) || zone.podNamespaces.has(addr);
}

/** Ready addresses of a headless service without ports (see `ZoneOptions.readiness`). */
function portless(cluster: Cluster, service: Service, readiness: Readiness | undefined, domain: string): ZoneRecord[] {
  const found: PortlessEndpoint[] = [];
  if (service.selector !== undefined) {
    if (readiness === undefined) return [];
    const selector = equalitySelector(service.selector);
    for (const pod of cluster.pods) {
      if (pod.namespace !== service.namespace || !selectorMatches(selector, pod.labels)) continue;
      if (readiness.get(`${pod.namespace}/${pod.name}`) !== true) continue;
      found.push({ ip: pod.ip, hostname: pod.hostname !== undefined && pod.subdomain === service.name ? pod.hostname : undefined });
    }
  } else {
    const declared = cluster.endpoints.find((e) => e.namespace === service.namespace && e.name === service.name);
    for (const subset of declared?.subsets ?? []) for (const a of subset.addresses) found.push({ ip: a.ip, hostname: a.hostname });
  }
  const fqdn = `${service.name}.${service.namespace}.svc.${domain}`;
  return found.map((f) => {
    const endpoint = f.hostname ?? dashedIpv4(f.ip);
    return record(f.ip, '', -1, '', '', `${endpoint}.${fqdn}`, endpoint);
  });
}

function kubeDns(dnsIP: number, domain: string): ZoneService {
  const fqdn = `${DNS_SERVICE_NAME}.${DNS_SERVICE_NAMESPACE}.svc.${domain}`;
  const port = (portName: string, protocol: string): ZoneRecord => record(dnsIP, '', 53, portName, protocol, fqdn, '');
  return new ZoneService(DNS_SERVICE_NAMESPACE, DNS_SERVICE_NAME, 'ClusterIP', dnsIP, domain, NO_SERVICE_PORTS, '', NO_PORTS, 0, 0, [port('dns', 'udp'), port('dns-tcp', 'tcp')]);
}

/** Whether `addr` lies in a CIDR the zone answers reverse names for. */
export function inReverseAuthority(zone: Zone, addr: number, prefix: number): boolean {
  for (const cidr of zone.reverseAuthority) {
    // The name's block must sit inside the CIDR: at least as long a prefix, and the address in it.
    if (prefix >= cidr.prefix && cidrContains(cidr, addr)) return true;
  }
  return false;
}

/** The SOA every negative answer carries (plugin/backend_lookup.go `SOA`). */
export interface Soa {
  /** Owner: the zone apex, no trailing dot. */
  readonly zone: string;
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
  /** min(ttl, 300), as CoreDNS. */
  readonly ttl: number;
}

/** CoreDNS's SOA for `apex`: ns.dns.<apex> hostmaster.<apex> serial 7200 1800 86400 ttl. */
export function soaFor(zone: Zone, apex: string): Soa {
  return {
    zone: apex,
    mname: `ns.dns.${apex}`,
    rname: `hostmaster.${apex}`,
    serial: zone.serial,
    refresh: 7200,
    retry: 1800,
    expire: 86400,
    minimum: zone.ttl,
    ttl: Math.min(zone.ttl, 300),
  };
}

/**
 * The zone as zone-file lines, in the order of a transfer (CoreDNS's transfer.go): SOA, NS
 * and its glue, then per service its address, SRV and CNAME records and its endpoints, then
 * the PTR records. For `podwire dns` and for reading a zone in a test.
 */
export function zoneLines(zone: Zone): string[] {
  const ttl = zone.ttl;
  const d = zone.domain;
  const soa = soaFor(zone, d);
  const lines = [
    `${d}. ${soa.ttl} IN SOA ${soa.mname}. ${soa.rname}. ${soa.serial} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}`,
    `${d}. ${ttl} IN NS ${zone.nameserver}.`,
    `${zone.nameserver}. ${ttl} IN A ${formatIpv4(zone.dnsIP)}`,
    `ns.dns.${d}. ${ttl} IN A ${formatIpv4(zone.dnsIP)}`,
    `dns-version.${d}. ${DNS_SCHEMA_VERSION_TTL} IN TXT "${DNS_SCHEMA_VERSION}"`,
  ];
  for (const s of zone.serviceList) {
    if (s.kind === 'ExternalName') {
      lines.push(`${s.fqdn}. ${ttl} IN CNAME ${s.records[0].target}.`);
      continue;
    }
    const addrs = new Set<number>();
    for (const r of s.records) {
      if (!addrs.has(r.addr)) lines.push(`${s.fqdn}. ${ttl} IN A ${formatIpv4(r.addr)}`);
      addrs.add(r.addr);
    }
    // Weights as a query for that port name would get them: shared among its records.
    const perPort = new Map<string, number>();
    for (const r of s.records) if (r.port >= 0 && r.portName !== '') perPort.set(`_${r.portName}._${r.protocol}`, (perPort.get(`_${r.portName}._${r.protocol}`) ?? 0) + 1);
    for (const r of s.records) {
      const owner = `_${r.portName}._${r.protocol}`;
      if (r.port >= 0 && r.portName !== '') lines.push(`${owner}.${s.fqdn}. ${ttl} IN SRV 0 ${srvWeight(perPort.get(owner) ?? 1)} ${r.port} ${r.name}.`);
    }
    const names = new Set<string>();
    for (const e of s.endpoints) {
      if (!names.has(e.name)) lines.push(`${e.name}. ${ttl} IN A ${formatIpv4(e.addr)}`);
      names.add(e.name);
    }
  }
  const addrs = [...zone.reverseOwners.keys(), ...zone.podNamespaces.keys()].sort((a, b) => a - b);
  for (const addr of addrs) {
    for (const name of reverseNames(zone, addr) ?? []) lines.push(`${reverseName(addr)}. ${ttl} IN PTR ${name}.`);
  }
  return lines;
}

/** `5.1.244.10.in-addr.arpa` */
export function reverseName(addr: number): string {
  return `${addr & 0xff}.${(addr >>> 8) & 0xff}.${(addr >>> 16) & 0xff}.${addr >>> 24}.in-addr.arpa`;
}

/**
 * SRV weight of each of `n` records of one priority, as CoreDNS's `plugin.SRV`: 100 shared
 * out, floored, never below 1.
 */
export function srvWeight(n: number): number {
  return n <= 0 ? 100 : Math.max(1, Math.floor(100 / n));
}
