/**
 * kube-proxy's iptables proxier, as rules: the same chains, the same rules in the same order
 * and the same chain names a real node would get from `syncProxyRules` for this node's view of
 * the cluster. Pure: the cluster, the endpoints (computeEndpoints output), the node's name and
 * its address on the outside network come in; a validated RuleSet comes out.
 *
 * Two steps, so that the compiled service table is built from exactly the same decisions:
 * - `planServicePorts` decides, per service port, what kube-proxy decides before it writes a
 *   line: which endpoints are usable (ready, deduplicated by "ip:port" and sorted as kube-proxy's
 *   endpoint cache sorts them: `EndpointSelection`), which are on this node, the traffic policy
 *   and affinity (`loadBalancerIPsOf`, `nodePortOf`, `externalPolicyLocalOf`,
 *   `affinitySecondsOf`). service-table.ts calls the same functions, without the plan objects.
 * - `kubeProxyRules` writes the plan as kube-proxy writes it, plus podwire's own masquerade
 *   for pod traffic leaving the cluster, in flannel's `--ip-masq` style.
 *
 * What kube-proxy does that podwire does not model, and so is left out: internalTrafficPolicy
 * Local and topology hints (the fields that ask for them get a load-time warning), and
 * terminating endpoints (a condition of EndpointSlices, which podwire does not read). Two choices a real
 * node makes by its host are made here as a node without them would:
 * - localhost NodePorts: a podwire node has no host network stack, so nothing on it can
 *   connect to 127.0.0.1 and no packet to 127.0.0.0/8 ever reaches its rules; the rules are
 *   those of `--iptables-localhost-nodeports=false` (`! -d 127.0.0.0/8` on the NodePort
 *   jump, no KUBE-FIREWALL "block incoming localnet connections" rule, which only guards
 *   the route_localnet that localhost NodePorts need);
 * - `-m nfacct --nfacct-name ct_state_invalid_dropped_pkts` on the INVALID drop: kube-proxy
 *   writes it only when the kernel's nfacct counter exists, and iptables-restore refuses the
 *   rule without it; podwire counts those drops itself (conntrack-invalid).
 */
import { createHash, hash } from 'node:crypto';
import { formatIpv4, type Cidr } from '../packet/addr.js';
import type { Cluster, Service, ServicePort } from '../cluster/model.js';
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import {
  ACCEPT,
  DROP,
  NO_TARGET,
  REJECT,
  RETURN,
  addrTypeLocal,
  cidrMatches,
  comment,
  ctstate,
  destination,
  destinationPort,
  dnat,
  hostCidr,
  jump,
  markMatch,
  masquerade,
  orMark,
  protocol,
  recentCheck,
  recentSet,
  source,
  statistic,
  xorMark,
  RuleSetBuilder,
  type L4Protocol,
  type Match,
  type RuleSet,
  type Target,
} from './rules.js';

// ---------------------------------------------------------------------------------------------
// kube-proxy's fixed chains and mark.

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';

/** kube-proxy's default `--iptables-masquerade-bit` 14. */
export const MASQUERADE_MARK = 0x4000;

/** podwire's egress masquerade chain, named like flannel's FLANNEL-POSTRTG. */
export const PODWIRE_POSTRTG = 'PODWIRE-POSTRTG';
export const PODWIRE_MASQ_COMMENT = 'podwire masq';
const MULTICAST: Cidr = { base: 0xe0000000, prefix: 4 };
const LOOPBACK: Cidr = { base: 0x7f000000, prefix: 8 };

/**
 * Above this many endpoints kube-proxy drops the per-endpoint comments to keep
 * iptables-restore input small (largeClusterEndpointsThreshold).
 */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

// ---------------------------------------------------------------------------------------------
// Chain names: a prefix and the first 16 characters of base32(sha256(...)), identical on every
// node, so `podwire` chains can be compared with a real node's. The hashed strings are
// kube-proxy's: the ServicePortName ("ns/name" or "ns/name:port"), the lower-case protocol, and
// for endpoint chains the endpoint as "ip:port".

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 of the first `chars * 5` bits of `bytes` (no padding: never reached for 16 of 32 bytes). */
function base32Prefix(bytes: Uint8Array, chars: number): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = 0; out.length < chars; i++) {
    acc = ((acc << 8) | bytes[i]) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** SHA-256, one-shot where Node has crypto.hash (20.12 and later): a third of the cost of createHash. */
function sha256(text: string): Uint8Array {
  return typeof hash === 'function' ? hash('sha256', text, 'buffer') : createHash('sha256').update(text).digest();
}

function hash16(text: string): string {
  return base32Prefix(sha256(text), 16);
}

/** kube-proxy's ServicePortName.String(): "ns/name", with ":port" when the port is named. */
export function servicePortName(namespace: string, name: string, portName: string | undefined): string {
  return portName === undefined || portName === '' ? `${namespace}/${name}` : `${namespace}/${name}:${portName}`;
}

/** portProtoHash(servicePortName, protocol). */
export function portProtoHash(spName: string, proto: L4Protocol): string {
  return hash16(spName + proto);
}

/** KUBE-SVC-…: the service port's chain for Cluster traffic policy. */
export function servicePortPolicyClusterChain(spName: string, proto: L4Protocol): string {
  return `KUBE-SVC-${portProtoHash(spName, proto)}`;
}

/** KUBE-SVL-…: the chain of node-local endpoints, for Local traffic policy. */
export function servicePortPolicyLocalChain(spName: string, proto: L4Protocol): string {
  return `KUBE-SVL-${portProtoHash(spName, proto)}`;
}

/** KUBE-EXT-…: where NodePort and load-balancer traffic goes first. */
export function serviceExternalChain(spName: string, proto: L4Protocol): string {
  return `KUBE-EXT-${portProtoHash(spName, proto)}`;
}

/** KUBE-FW-…: loadBalancerSourceRanges filtering of the load-balancer addresses. */
export function serviceFirewallChain(spName: string, proto: L4Protocol): string {
  return `KUBE-FW-${portProtoHash(spName, proto)}`;
}

/** KUBE-SEP-…: one endpoint of a service port; `endpoint` is "ip:port". */
export function servicePortEndpointChain(spName: string, proto: L4Protocol, endpoint: string): string {
  return `KUBE-SEP-${hash16(spName + proto + endpoint)}`;
}

// ---------------------------------------------------------------------------------------------
// Inputs and the plan.

export interface ServiceRuleInputs {
  /** Read for the pod and service CIDRs and this node's gateway address. */
  readonly cluster: Cluster;
  /** computeEndpoints output: one entry per port of every service except ExternalName ones. */
  readonly endpoints: readonly ServicePortEndpoints[];
  readonly nodeName: string;
  /** The node's address on the outside network, where NodePorts are reached. */
  readonly nodeAddress: number;
}

export interface PlannedEndpoint {
  readonly ip: number;
  readonly port: number;
  /** On this node: Local traffic policy sends external traffic only to these. */
  readonly local: boolean;
}

/** What kube-proxy knows about a service port when it writes its rules. */
export interface ServicePortPlan {
  /** "namespace/name": the unit of change for incremental updates. */
  readonly serviceKey: string;
  /** kube-proxy's ServicePortName string, used in comments and chain names. */
  readonly name: string;
  readonly protocol: L4Protocol;
  readonly clusterIP: number;
  readonly port: number;
  readonly nodePort?: number;
  /** spec.externalIPs, in the spec's order. */
  readonly externalIPs: readonly number[];
  /** spec.healthCheckNodePort: the filter table accepts it, and the node's health server answers there. */
  readonly healthCheckNodePort?: number;
  readonly loadBalancerIPs: readonly number[];
  /** spec.loadBalancerSourceRanges: with any, the load-balancer addresses go through KUBE-FW-. */
  readonly loadBalancerSourceRanges: readonly Cidr[];
  /** externalTrafficPolicy Local on an externally reachable service. */
  readonly externalPolicyLocal: boolean;
  /** sessionAffinity ClientIP: the timeout in seconds; undefined without affinity. */
  readonly affinitySeconds?: number;
  /** Ready endpoints, deduplicated and in kube-proxy's order: the KUBE-SVC chain's. */
  readonly endpoints: readonly PlannedEndpoint[];
  /** The subset on this node, in the same order: the KUBE-SVL chain's. */
  readonly localEndpoints: readonly PlannedEndpoint[];
  /** Every distinct endpoint, ready or not (kube-proxy's large-cluster count). */
  readonly endpointCount: number;
}

export function hasEndpoints(plan: ServicePortPlan): boolean {
  return plan.endpoints.length > 0;
}

export function externallyAccessible(plan: ServicePortPlan): boolean {
  return plan.nodePort !== undefined || plan.loadBalancerIPs.length > 0 || plan.externalIPs.length > 0;
}

/** kube-proxy's usesFWChain: load-balancer addresses with source ranges, and endpoints to protect. */
export function usesFirewallChain(plan: ServicePortPlan): boolean {
  return hasEndpoints(plan) && plan.loadBalancerIPs.length > 0 && plan.loadBalancerSourceRanges.length > 0;
}

/** Endpoints that external traffic may reach: all of them (Cluster) or this node's (Local). */
export function hasExternalEndpoints(plan: ServicePortPlan): boolean {
  return plan.externalPolicyLocal ? plan.localEndpoints.length > 0 : plan.endpoints.length > 0;
}

/** Headless and ExternalName services get no rules: kube-proxy skips a service without a cluster IP. */
export function isProxied(service: Service): boolean {
  return service.type !== 'ExternalName' && !service.headless && service.clusterIP !== undefined;
}

export function serviceKey(service: Pick<Service, 'namespace' | 'name'>): string {
  return `${service.namespace}/${service.name}`;
}

function l4(protocolName: ServicePort['protocol']): L4Protocol {
  return protocolName === 'TCP' ? 'tcp' : protocolName === 'UDP' ? 'udp' : 'sctp';
}

/** "a.b.c.d:port", kube-proxy's endpoint string. */
export function endpointText(ip: number, port: number): string {
  return `${formatIpv4(ip)}:${port}`;
}

/**
 * kube-proxy orders endpoints by their "a.b.c.d:port" strings, compared byte by byte, so
 * 10.244.1.10 comes before 10.244.1.2. The same order without building the strings: each
 * octet's decimal digits as a number in base 11, where the character after the digits ranks
 * below every digit ('.' and the end of the string) or above them (':' after the last octet).
 */
function octetKey(octet: number, endRanksHigh: boolean): number {
  const digits = String(octet);
  let key = 0;
  for (let i = 0; i < 3; i++) {
    const d = i < digits.length ? digits.charCodeAt(i) - 48 : -1;
    key = key * 11 + (d >= 0 ? (endRanksHigh ? d : d + 1) : endRanksHigh ? 10 : 0);
  }
  return key;
}

const OCTET_BEFORE_DOT = Array.from({ length: 256 }, (_, i) => octetKey(i, false));
const OCTET_BEFORE_COLON = Array.from({ length: 256 }, (_, i) => octetKey(i, true));

/** The address part of the order: below 11^12, an exact double. */
function addressOrder(ip: number): number {
  return ((OCTET_BEFORE_DOT[ip >>> 24] * 1331 + OCTET_BEFORE_DOT[(ip >>> 16) & 0xff]) * 1331 + OCTET_BEFORE_DOT[(ip >>> 8) & 0xff]) * 1331 + OCTET_BEFORE_COLON[ip & 0xff];
}

/** The port part: its digits in base 11, the end of the string below every digit. */
function portOrder(port: number): number {
  let divisor = 10000;
  while (divisor > 1 && port < divisor) divisor /= 10;
  let key = 0;
  for (let i = 0; i < 5; i++) {
    key = key * 11 + (divisor >= 1 ? (Math.floor(port / divisor) % 10) + 1 : 0);
    divisor /= 10;
  }
  return key;
}

/** Compares two endpoints as kube-proxy compares their "ip:port" strings. */
export function compareEndpoints(a: { readonly ip: number; readonly port: number }, b: { readonly ip: number; readonly port: number }): number {
  const byAddress = addressOrder(a.ip >>> 0) - addressOrder(b.ip >>> 0);
  return byAddress !== 0 ? byAddress : portOrder(a.port) - portOrder(b.port);
}

/**
 * kube-proxy's endpoint cache for one service port, in reusable scratch arrays, so that the
 * compiled table can be filled without an object per endpoint: one endpoint per "ip:port" (a
 * copy on this node wins, readiness included), the ready ones in kube-proxy's order. The rule
 * generator and the compiler both choose endpoints through `select`, so they cannot disagree.
 */
export class EndpointSelection {
  /** Ready endpoints selected by the last `select`, in order: [0, count). */
  count = 0;
  /** Distinct endpoints, ready or not (kube-proxy's large-cluster count). */
  distinct = 0;
  private ips = new Int32Array(16);
  private ports = new Int32Array(16);
  private locals = new Uint8Array(16);
  private readies = new Uint8Array(16);
  private order = new Int32Array(16);
  private addressKeys = new Float64Array(16);
  private portKeys = new Float64Array(16);
  private out = { ips: new Int32Array(16), ports: new Int32Array(16), locals: new Uint8Array(16) };

  /** The i-th selected endpoint's address (uint32). */
  ip(i: number): number {
    return this.out.ips[i] >>> 0;
  }

  port(i: number): number {
    return this.out.ports[i];
  }

  isLocal(i: number): boolean {
    return this.out.locals[i] === 1;
  }

  /** Selects the endpoints of `entry` for `nodeName`; returns `count`. */
  select(entry: ServicePortEndpoints, nodeName: string): number {
    const all = entry.endpoints;
    this.reserve(all.length);
    const { ips, ports, locals, readies } = this;
    // Few endpoints: a scan finds duplicates; many: a Map keyed by ip * 2^16 + port.
    const byKey = all.length > 16 ? new Map<number, number>() : undefined;
    let n = 0;
    for (let k = 0; k < all.length; k++) {
      const e = all[k];
      if (e.ip === 0 || e.port <= 0) continue; // kube-proxy ignores empty addresses and port 0
      const ip = e.ip | 0;
      const local = e.node !== undefined && e.node === nodeName;
      let seen = -1;
      if (byKey !== undefined) seen = byKey.get((ip >>> 0) * 0x10000 + e.port) ?? -1;
      else for (let i = 0; i < n && seen < 0; i++) if (ips[i] === ip && ports[i] === e.port) seen = i;
      if (seen < 0) {
        ips[n] = ip;
        ports[n] = e.port;
        locals[n] = local ? 1 : 0;
        readies[n] = e.ready ? 1 : 0;
        byKey?.set((ip >>> 0) * 0x10000 + e.port, n);
        n++;
      } else if (local) {
        locals[seen] = 1;
        readies[seen] = e.ready ? 1 : 0;
      }
    }
    this.distinct = n;
    this.sortIndices(n);
    const out = this.out;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const j = this.order[i];
      if (readies[j] === 0) continue;
      out.ips[count] = ips[j];
      out.ports[count] = ports[j];
      out.locals[count] = locals[j];
      count++;
    }
    this.count = count;
    return count;
  }

  /** `order` = 0..n-1 sorted as kube-proxy sorts "ip:port" strings. */
  private sortIndices(n: number): void {
    const { order, addressKeys, portKeys } = this;
    for (let i = 0; i < n; i++) {
      order[i] = i;
      addressKeys[i] = addressOrder(this.ips[i] >>> 0);
      portKeys[i] = portOrder(this.ports[i]);
    }
    if (n > 32) {
      const byKey = (a: number, b: number) => addressKeys[a] - addressKeys[b] || portKeys[a] - portKeys[b];
      order.set(Array.from(order.subarray(0, n)).sort(byKey));
      return;
    }
    // Insertion sort: a service has a handful of endpoints, often already in order.
    for (let i = 1; i < n; i++) {
      const x = order[i];
      let j = i - 1;
      while (j >= 0 && (addressKeys[x] < addressKeys[order[j]] || (addressKeys[x] === addressKeys[order[j]] && portKeys[x] < portKeys[order[j]]))) {
        order[j + 1] = order[j];
        j--;
      }
      order[j + 1] = x;
    }
  }

  private reserve(n: number): void {
    if (n <= this.ips.length) return;
    let size = this.ips.length;
    while (size < n) size *= 2;
    this.ips = new Int32Array(size);
    this.ports = new Int32Array(size);
    this.locals = new Uint8Array(size);
    this.readies = new Uint8Array(size);
    this.order = new Int32Array(size);
    this.addressKeys = new Float64Array(size);
    this.portKeys = new Float64Array(size);
    this.out = { ips: new Int32Array(size), ports: new Int32Array(size), locals: new Uint8Array(size) };
  }
}

// What kube-proxy's ServicePort info holds, from the model: shared by the plan and the compiler.

const NO_ADDRESSES: readonly number[] = [];
const NO_RANGES: readonly Cidr[] = [];

/** The address a LoadBalancer service got (spec.loadBalancerIP, or one from the pool), as status.loadBalancer.ingress. */
export function loadBalancerIPsOf(service: Service): readonly number[] {
  const ingressIP = service.loadBalancerIngress ?? service.loadBalancerIP;
  return service.type === 'LoadBalancer' && ingressIP !== undefined ? [ingressIP] : NO_ADDRESSES;
}

/** spec.externalIPs (kube-proxy's ExternalIPs()). */
export function externalIPsOf(service: Service): readonly number[] {
  return service.externalIPs ?? NO_ADDRESSES;
}

/** spec.loadBalancerSourceRanges, read (as kube-proxy reads it) for LoadBalancer services only. */
export function sourceRangesOf(service: Service): readonly Cidr[] {
  return service.type === 'LoadBalancer' && service.loadBalancerSourceRanges !== undefined ? service.loadBalancerSourceRanges : NO_RANGES;
}

export function nodePortOf(service: Service, servicePort: ServicePort): number | undefined {
  return (service.type === 'NodePort' || service.type === 'LoadBalancer') && servicePort.nodePort !== undefined ? servicePort.nodePort : undefined;
}

/** externalTrafficPolicy Local on a service reachable from outside (kube-proxy's ExternalPolicyLocal). */
export function externalPolicyLocalOf(service: Service, servicePort: ServicePort): boolean {
  const reachable = nodePortOf(service, servicePort) !== undefined || loadBalancerIPsOf(service).length > 0 || externalIPsOf(service).length > 0;
  return reachable && service.externalTrafficPolicy === 'Local';
}

/** The ClientIP affinity timeout (kube-proxy's StickyMaxAgeSeconds), or undefined without affinity. */
export function affinitySecondsOf(service: Service): number | undefined {
  return service.sessionAffinity === 'ClientIP' ? (service.sessionAffinityTimeoutSeconds ?? 10800) : undefined;
}

export function protocolOf(servicePort: ServicePort): L4Protocol {
  return l4(servicePort.protocol);
}

/** One service port's plan, or undefined when kube-proxy writes nothing for it. */
export function planServicePort(entry: ServicePortEndpoints, nodeName: string, selection = new EndpointSelection()): ServicePortPlan | undefined {
  const { service, servicePort } = entry;
  if (!isProxied(service)) return undefined;
  const count = selection.select(entry, nodeName);
  const endpoints: PlannedEndpoint[] = [];
  const localEndpoints: PlannedEndpoint[] = [];
  for (let i = 0; i < count; i++) {
    const planned: PlannedEndpoint = { ip: selection.ip(i), port: selection.port(i), local: selection.isLocal(i) };
    endpoints.push(planned);
    if (planned.local) localEndpoints.push(planned);
  }
  // Every property always present (undefined when absent): one object shape for every plan.
  return {
    serviceKey: serviceKey(service),
    name: servicePortName(service.namespace, service.name, servicePort.name),
    protocol: l4(servicePort.protocol),
    clusterIP: service.clusterIP!,
    port: servicePort.port,
    nodePort: nodePortOf(service, servicePort),
    externalIPs: externalIPsOf(service),
    healthCheckNodePort: service.healthCheckNodePort,
    loadBalancerIPs: loadBalancerIPsOf(service),
    loadBalancerSourceRanges: sourceRangesOf(service),
    externalPolicyLocal: externalPolicyLocalOf(service, servicePort),
    affinitySeconds: affinitySecondsOf(service),
    endpoints,
    localEndpoints,
    endpointCount: selection.distinct,
  };
}


/** Plans of every proxied service port, in the order of `inputs.endpoints`. */
export function planServicePorts(inputs: Pick<ServiceRuleInputs, 'endpoints' | 'nodeName'>): ServicePortPlan[] {
  const plans: ServicePortPlan[] = [];
  const selection = new EndpointSelection();
  for (const entry of inputs.endpoints) {
    const plan = planServicePort(entry, inputs.nodeName, selection);
    if (plan !== undefined) plans.push(plan);
  }
  return plans;
}

/**
 * The node's own addresses, what `-m addrtype --dst-type LOCAL` matches: its address on the
 * outside network and its bridge (gateway) address.
 */
export function nodeLocalAddresses(inputs: Pick<ServiceRuleInputs, 'cluster' | 'nodeName' | 'nodeAddress'>): number[] {
  const out = [inputs.nodeAddress >>> 0];
  const node = inputs.cluster.nodes.find((n) => n.name === inputs.nodeName);
  if (node !== undefined && node.gateway >>> 0 !== inputs.nodeAddress >>> 0) out.push(node.gateway >>> 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The rules.

export interface KubeProxyRuleOptions {
  /** Add podwire's PODWIRE-POSTRTG egress masquerade (default true). */
  readonly egressMasquerade?: boolean;
}

/** The jump rules kube-proxy (and podwire) install in the built-in chains, in their final order. */
function writeBuiltinJumps(b: RuleSetBuilder, egressMasquerade: boolean): void {
  const isNew = ctstate(['NEW']);
  // kube-proxy inserts each of these at the top of its chain, so on a node they appear in the
  // reverse of the order kube-proxy lists them: the load-balancer firewall ends up first.
  b.append('filter', 'INPUT', [isNew, comment('kubernetes load balancer firewall')], jump(KUBE_PROXY_FIREWALL));
  b.append('filter', 'INPUT', [comment('kubernetes health check service ports')], jump(KUBE_NODEPORTS));
  b.append('filter', 'INPUT', [isNew, comment('kubernetes externally-visible service portals')], jump(KUBE_EXTERNAL_SERVICES));
  b.append('filter', 'FORWARD', [isNew, comment('kubernetes load balancer firewall')], jump(KUBE_PROXY_FIREWALL));
  b.append('filter', 'FORWARD', [comment('kubernetes forwarding rules')], jump(KUBE_FORWARD));
  b.append('filter', 'FORWARD', [isNew, comment('kubernetes service portals')], jump(KUBE_SERVICES));
  b.append('filter', 'FORWARD', [isNew, comment('kubernetes externally-visible service portals')], jump(KUBE_EXTERNAL_SERVICES));
  b.append('filter', 'OUTPUT', [isNew, comment('kubernetes load balancer firewall')], jump(KUBE_PROXY_FIREWALL));
  b.append('filter', 'OUTPUT', [isNew, comment('kubernetes service portals')], jump(KUBE_SERVICES));
  b.append('nat', 'PREROUTING', [comment('kubernetes service portals')], jump(KUBE_SERVICES));
  b.append('nat', 'OUTPUT', [comment('kubernetes service portals')], jump(KUBE_SERVICES));
  b.append('nat', 'POSTROUTING', [comment('kubernetes postrouting rules')], jump(KUBE_POSTROUTING));
  if (egressMasquerade) b.append('nat', 'POSTROUTING', [comment(PODWIRE_MASQ_COMMENT)], jump(PODWIRE_POSTRTG));
}

/**
 * The rule set kube-proxy would install on `inputs.nodeName`, in kube-proxy's order: the
 * built-in chain jumps first (kube-proxy ensures them with `iptables -I` before it restores),
 * then, table by table, its iptables-restore input, then podwire's egress masquerade.
 */
export function kubeProxyRules(inputs: ServiceRuleInputs, options: KubeProxyRuleOptions = {}): RuleSet {
  const egressMasquerade = options.egressMasquerade ?? true;
  const plans = planServicePorts(inputs);
  const { podCIDR, serviceCIDR } = inputs.cluster.settings;
  const b = new RuleSetBuilder();
  writeBuiltinJumps(b, egressMasquerade);

  for (const chain of [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL]) b.chain('filter', chain);
  for (const chain of [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]) b.chain('nat', chain);

  // Masquerade what KUBE-MARK-MASQ marked, clearing the mark so that a packet that goes round
  // the stack again is not masqueraded twice.
  b.append('nat', KUBE_POSTROUTING, [markMatch(MASQUERADE_MARK, MASQUERADE_MARK, true)], RETURN);
  b.append('nat', KUBE_POSTROUTING, [], xorMark(MASQUERADE_MARK));
  b.append('nat', KUBE_POSTROUTING, [comment('kubernetes service traffic requiring SNAT')], masquerade(true));
  b.append('nat', KUBE_MARK_MASQ, [], orMark(MASQUERADE_MARK));

  const totalEndpoints = plans.reduce((n, p) => n + p.endpointCount, 0);
  const writer = new ServicePortWriter(b, podCIDR, inputs.nodeAddress, totalEndpoints > LARGE_CLUSTER_ENDPOINTS);
  for (const plan of plans) writer.write(plan);

  // Last in KUBE-SERVICES: anything addressed to the node itself may be a NodePort, but not
  // at 127.0.0.0/8 (kube-proxy with --iptables-localhost-nodeports=false; see the module comment).
  b.append('nat', KUBE_SERVICES, [comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain'), addrTypeLocal('destination'), destination(LOOPBACK, true)], jump(KUBE_NODEPORTS));

  b.append('filter', KUBE_FORWARD, [ctstate(['INVALID'])], DROP);
  b.append('filter', KUBE_FORWARD, [comment('kubernetes forwarding rules'), markMatch(MASQUERADE_MARK, MASQUERADE_MARK)], ACCEPT);
  b.append('filter', KUBE_FORWARD, [comment('kubernetes forwarding conntrack rule'), ctstate(['RELATED', 'ESTABLISHED'])], ACCEPT);

  if (egressMasquerade) writeEgressMasquerade(b, podCIDR, serviceCIDR);
  return b.build();
}

/**
 * podwire's addition, in the manner of flannel's `--ip-masq`: pod traffic to anywhere outside
 * the pod and service CIDRs leaves with the node's address, since the outside world has no
 * route back to pod addresses. What kube-proxy marked is its business (flannel skips it too).
 */
function writeEgressMasquerade(b: RuleSetBuilder, podCIDR: Cidr, serviceCIDR: Cidr): void {
  const note = comment(PODWIRE_MASQ_COMMENT);
  b.chain('nat', PODWIRE_POSTRTG);
  b.append('nat', PODWIRE_POSTRTG, [markMatch(MASQUERADE_MARK, MASQUERADE_MARK), note], RETURN);
  b.append('nat', PODWIRE_POSTRTG, [source(podCIDR), destination(podCIDR), note], RETURN);
  b.append('nat', PODWIRE_POSTRTG, [source(podCIDR), destination(serviceCIDR), note], RETURN);
  b.append('nat', PODWIRE_POSTRTG, [source(podCIDR), destination(MULTICAST, true), note], masquerade(true));
}

interface EndpointNames {
  /** "ip:port" */
  readonly text: string;
  /** KUBE-SEP-… */
  readonly chain: string;
}

function endpointNames(plan: ServicePortPlan, ep: PlannedEndpoint): EndpointNames {
  const text = endpointText(ep.ip, ep.port);
  return { text, chain: servicePortEndpointChain(plan.name, plan.protocol, text) };
}

/** Writes one service port's rules the way syncProxyRules' loop body does. */
class ServicePortWriter {
  constructor(
    private readonly b: RuleSetBuilder,
    /** kube-proxy's LocalTrafficDetector by cluster CIDR. */
    private readonly podCIDR: Cidr,
    /** The node's address, which a source range may contain (kube-proxy's allowFromNode). */
    private readonly nodeAddress: number,
    private readonly largeCluster: boolean,
  ) {}

  write(plan: ServicePortPlan): void {
    const { b } = this;
    const proto = protocol(plan.protocol);
    // One hash names the SVC, SVL and EXT chains (the functions above, without hashing thrice).
    const portHash = portProtoHash(plan.name, plan.protocol);
    const svcChain = `KUBE-SVC-${portHash}`;
    const localChain = `KUBE-SVL-${portHash}`;
    const extChain = `KUBE-EXT-${portHash}`;
    const fwChain = `KUBE-FW-${portHash}`;
    const firewalled = usesFirewallChain(plan);
    const anyEndpoints = hasEndpoints(plan);
    const externalEndpoints = hasExternalEndpoints(plan);
    // Without endpoints anywhere the filter table rejects; with none for Local external
    // traffic it drops what the EXT chain did not short-circuit.
    const externalFilterTarget: Target = anyEndpoints ? DROP : REJECT;
    const externalFilterComment = anyEndpoints ? `${plan.name} has no local endpoints` : `${plan.name} has no endpoints`;
    const clusterIP = destination(hostCidr(plan.clusterIP));
    const port = destinationPort(plan.port);

    // Capture the cluster IP.
    if (anyEndpoints) {
      b.append('nat', KUBE_SERVICES, [comment(`${plan.name} cluster IP`), proto, clusterIP, port], jump(svcChain));
    } else {
      b.append('filter', KUBE_SERVICES, [comment(`${plan.name} has no endpoints`), proto, clusterIP, port], REJECT);
    }
    // Capture external IPs.
    for (const externalIP of plan.externalIPs) {
      if (anyEndpoints) b.append('nat', KUBE_SERVICES, [comment(`${plan.name} external IP`), proto, destination(hostCidr(externalIP)), port], jump(extChain));
      if (!externalEndpoints) {
        b.append('filter', KUBE_EXTERNAL_SERVICES, [comment(externalFilterComment), proto, destination(hostCidr(externalIP)), port], externalFilterTarget);
      }
    }
    // Capture load-balancer IPs: through the firewall chain when source ranges limit them.
    for (const lbIP of plan.loadBalancerIPs) {
      if (anyEndpoints) b.append('nat', KUBE_SERVICES, [comment(`${plan.name} loadbalancer IP`), proto, destination(hostCidr(lbIP)), port], jump(firewalled ? fwChain : extChain));
      // What the firewall chain did not send on was not translated: it still has the LB address.
      if (firewalled) b.append('filter', KUBE_PROXY_FIREWALL, [comment(`${plan.name} traffic not accepted by ${fwChain}`), proto, destination(hostCidr(lbIP)), port], DROP);
    }
    if (!externalEndpoints) {
      for (const lbIP of plan.loadBalancerIPs) {
        b.append('filter', KUBE_EXTERNAL_SERVICES, [comment(externalFilterComment), proto, destination(hostCidr(lbIP)), port], externalFilterTarget);
      }
    }
    // Capture the node port.
    if (plan.nodePort !== undefined) {
      if (anyEndpoints) b.append('nat', KUBE_NODEPORTS, [comment(plan.name), proto, destinationPort(plan.nodePort)], jump(extChain));
      if (!externalEndpoints) {
        b.append('filter', KUBE_EXTERNAL_SERVICES, [comment(externalFilterComment), addrTypeLocal('destination'), proto, destinationPort(plan.nodePort)], externalFilterTarget);
      }
    }
    // Accept the health check node port whether or not this node has endpoints: the answer says which.
    if (plan.healthCheckNodePort !== undefined) {
      b.append('filter', KUBE_NODEPORTS, [comment(`${plan.name} health check node port`), protocol('tcp'), destinationPort(plan.healthCheckNodePort)], ACCEPT);
    }
    if (!anyEndpoints) return;

    // Off-cluster traffic to the cluster IP may have been routed here by anyone: masquerade it,
    // since the reply may leave through another node.
    b.append('nat', svcChain, [comment(`${plan.name} cluster IP`), proto, clusterIP, port, source(this.podCIDR, true)], jump(KUBE_MARK_MASQ));

    if (externallyAccessible(plan)) this.writeExternalChain(plan, extChain, svcChain, localChain, externalEndpoints);
    if (firewalled) this.writeFirewallChain(plan, fwChain, extChain);

    b.chain('nat', svcChain);
    const names = new Map(plan.endpoints.map((ep) => [ep, endpointNames(plan, ep)] as const));
    this.writeEndpointDispatch(plan, svcChain, plan.endpoints, names);
    if (plan.externalPolicyLocal && plan.localEndpoints.length > 0) {
      b.chain('nat', localChain);
      this.writeEndpointDispatch(plan, localChain, plan.localEndpoints, names);
    }
    for (const ep of plan.endpoints) this.writeEndpointChain(plan, ep, names.get(ep)!.chain);
  }

  private writeExternalChain(plan: ServicePortPlan, extChain: string, svcChain: string, localChain: string, externalEndpoints: boolean): void {
    const { b } = this;
    b.chain('nat', extChain);
    if (!plan.externalPolicyLocal) {
      // Cluster policy may cross nodes: masquerade so that the reply comes back this way.
      b.append('nat', extChain, [comment(`masquerade traffic for ${plan.name} external destinations`)], jump(KUBE_MARK_MASQ));
    } else {
      // Pods reaching an external address are treated as if they had gone out to the load
      // balancer and back: any endpoint, source kept.
      b.append('nat', extChain, [comment(`pod traffic for ${plan.name} external destinations`), source(this.podCIDR)], jump(svcChain));
      // The node itself must be masqueraded: its source would be the external address itself.
      b.append('nat', extChain, [comment(`masquerade LOCAL traffic for ${plan.name} external destinations`), addrTypeLocal('source')], jump(KUBE_MARK_MASQ));
      b.append('nat', extChain, [comment(`route LOCAL traffic for ${plan.name} external destinations`), addrTypeLocal('source')], jump(svcChain));
    }
    if (externalEndpoints) b.append('nat', extChain, [], jump(plan.externalPolicyLocal ? localChain : svcChain));
  }

  /**
   * KUBE-FW-: sources in the ranges go on to the external chain; the rest fall through,
   * untranslated, to KUBE-PROXY-FIREWALL's DROP. When a range holds the node itself, its
   * own connections to the address (which come from the address) are let through too.
   */
  private writeFirewallChain(plan: ServicePortPlan, fwChain: string, extChain: string): void {
    const { b } = this;
    b.chain('nat', fwChain);
    const note = comment(`${plan.name} loadbalancer IP`);
    let allowFromNode = false;
    for (const range of plan.loadBalancerSourceRanges) {
      b.append('nat', fwChain, [note, source(range)], jump(extChain));
      if (cidrMatches(range, this.nodeAddress)) allowFromNode = true;
    }
    if (allowFromNode) for (const lbIP of plan.loadBalancerIPs) b.append('nat', fwChain, [note, source(hostCidr(lbIP))], jump(extChain));
    b.append('nat', fwChain, [comment(`other traffic to ${plan.name} will be dropped by KUBE-PROXY-FIREWALL`)], NO_TARGET);
  }

  /** writeServiceToEndpointRules: affinity checks first, then 1/(n-i) probabilities, the last unconditional. */
  private writeEndpointDispatch(plan: ServicePortPlan, chain: string, endpoints: readonly PlannedEndpoint[], names: ReadonlyMap<PlannedEndpoint, EndpointNames>): void {
    const { b } = this;
    if (plan.affinitySeconds !== undefined) {
      for (const ep of endpoints) {
        const { text, chain: sep } = names.get(ep)!;
        b.append('nat', chain, [...this.comment(`${plan.name} -> ${text}`), recentCheck(sep, plan.affinitySeconds)], jump(sep));
      }
    }
    const n = endpoints.length;
    endpoints.forEach((ep, i) => {
      const { text, chain: sep } = names.get(ep)!;
      const chance: Match[] = i < n - 1 ? [statistic(1 / (n - i))] : [];
      b.append('nat', chain, [...this.comment(`${plan.name} -> ${text}`), ...chance], jump(sep));
    });
  }

  private writeEndpointChain(plan: ServicePortPlan, ep: PlannedEndpoint, sep: string): void {
    const { b } = this;
    b.chain('nat', sep);
    const note = this.comment(plan.name);
    // Hairpin: an endpoint reaching itself through the service must see the reply come from
    // the service, so its own packets are masqueraded.
    b.append('nat', sep, [...note, source(hostCidr(ep.ip))], jump(KUBE_MARK_MASQ));
    const affinity = plan.affinitySeconds !== undefined ? [recentSet(sep)] : [];
    b.append('nat', sep, [...note, ...affinity, protocol(plan.protocol)], dnat(ep.ip, ep.port));
  }

  /** appendServiceCommentLocked: no per-endpoint comments in a large cluster. */
  private comment(text: string): Match[] {
    return this.largeCluster ? [] : [comment(text)];
  }
}
