/**
 * The compiled service table: what the dataplane consults for every new flow instead of
 * walking kube-proxy's chains. In the spirit of kube-proxy's nftables mode, one map keyed by
 * (destination address, protocol, port) names the service port, so a lookup costs one hash
 * probe whatever the number of services; a second map keyed by (protocol, port) holds the
 * NodePorts. Everything the per-flow decision reads is in typed arrays; `classify` allocates
 * nothing.
 *
 * The table makes kube-proxy's decisions, not its rules: `classify` returns the verdict and
 * rewrite that walking the rules of kube-proxy.ts would (the property tests hold it to the
 * interpreter on random clusters and packets, with the same random number and clock):
 * - cluster IP: DNAT to one of the ready endpoints, masquerading off-cluster sources;
 * - NodePort and load-balancer IP, policy Cluster: DNAT to any endpoint, masquerade;
 *   policy Local: this node's endpoints with the source kept, except for pods and the node
 *   itself, which reach every endpoint (the node masqueraded), and DROP when there is no local
 *   endpoint;
 * - a load-balancer IP with loadBalancerSourceRanges: DROP for a source outside the ranges
 *   (KUBE-FW- lets it fall through to KUBE-PROXY-FIREWALL), judged on a prefix table;
 * - external IPs: as load-balancer IPs, without source ranges;
 * - no ready endpoint at all: REJECT;
 * - hairpin: an endpoint reaching itself is masqueraded;
 * - no service: pod traffic leaving the pod and service CIDRs is masqueraded (PODWIRE-POSTRTG).
 *
 * The endpoint is chosen with one injected random draw, 32 random bits x as the kernel's
 * get_random_u32() gives them (a number u in [0, 1) converts with rules.ts drawFromUnit):
 * endpoint floor(x * n / 2^32) of n. The probability chain kube-proxy writes (1/n, 1/(n-1),
 * ..., 1) picks the same endpoint for the same draw, as the interpreter computes it. The draw
 * is an integer, not a fraction, for a reason besides the kernel's: an int32 crosses a call
 * without being boxed, where a double allocates a heap number in every call V8 does not
 * inline. For the same reason the clock is not an argument: ClientIP affinity keeps, per
 * (service port, client), the endpoints last chosen, in a bounded `AffinityTable` whose time
 * is set (`setTime`) once per batch of packets.
 *
 * Building: `compileServiceTable` builds from the same inputs as kube-proxy.ts, choosing
 * endpoints through the same routine (kube-proxy.ts EndpointSelection) straight into the
 * arrays: no object per service port or endpoint, since at 10K services the garbage collector
 * copying such objects was most of the cost. `LiveServiceTable.update` chooses endpoints
 * again only for the services that changed and copies the others' from the table in place
 * (as kube-proxy's partial sync rewrites the changed services' chains, and KUBE-SERVICES in
 * full), into new arrays, and only then swaps the table the dataplane reads; whatever goes
 * wrong, it rebuilds everything from the inputs.
 */
import { cidrContains, prefixMask } from '../packet/addr.js';
import { CidrSet } from './policy-cidrs.js';
import { IPPROTO } from '../packet/ipv4.js';
import {
  EndpointSelection,
  affinitySecondsOf,
  externalIPsOf,
  externalPolicyLocalOf,
  isProxied,
  loadBalancerIPsOf,
  nodeLocalAddresses,
  nodePortOf,
  planServicePort,
  protocolOf,
  serviceKey,
  sourceRangesOf,
  type ServicePortPlan,
  type ServiceRuleInputs,
} from './kube-proxy.js';
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import { DRAW_RANGE, type L4Protocol } from './rules.js';

/** What `classify` decided for a new flow. */
export const FlowVerdict = {
  /** Not addressed to a service: no DNAT (the egress masquerade may still apply). */
  NoService: 0,
  /** Rewrite the destination to `dnatAddress:dnatPort`. */
  Dnat: 1,
  /** A service without ready endpoints: answer with ICMP port unreachable. */
  Reject: 2,
  /** External traffic to a Local-policy service with no endpoint on this node. */
  Drop: 3,
  /** A load-balancer IP reached from outside its loadBalancerSourceRanges (KUBE-PROXY-FIREWALL). */
  Firewall: 4,
} as const;
export type FlowVerdict = (typeof FlowVerdict)[keyof typeof FlowVerdict];

/** The per-flow answer, written into a caller-owned object so that `classify` allocates nothing. */
export class FlowDecision {
  verdict: FlowVerdict = FlowVerdict.NoService;
  /** Index of the service port in the table (for `plan`), or -1. */
  servicePort = -1;
  /** Index of the endpoint in the table's endpoint arrays, or -1. */
  endpoint = -1;
  dnatAddress = 0;
  dnatPort = 0;
  /** SNAT the flow to the outgoing interface's address (MASQUERADE). */
  masquerade = false;

  reset(): void {
    this.verdict = FlowVerdict.NoService;
    this.servicePort = -1;
    this.endpoint = -1;
    this.dnatAddress = 0;
    this.dnatPort = 0;
    this.masquerade = false;
  }
}

export const NOT_FOUND = -1;

// Protocol codes in keys: 0 marks an empty slot.
const PROTO_TCP = 1;
const PROTO_UDP = 2;
const PROTO_SCTP = 3;

// Local consts of IPPROTO's numbers, which V8 folds into per-packet code (see IPPROTO in ipv4.ts).
const TCP = IPPROTO.TCP;
const UDP = IPPROTO.UDP;
const SCTP = IPPROTO.SCTP;

function protocolCode(ipProtocol: number): number {
  return ipProtocol === TCP ? PROTO_TCP : ipProtocol === UDP ? PROTO_UDP : ipProtocol === SCTP ? PROTO_SCTP : 0;
}

function protocolCodeOf(name: L4Protocol): number {
  return name === 'tcp' ? PROTO_TCP : name === 'udp' ? PROTO_UDP : PROTO_SCTP;
}

/** (protocol code, port) as one nonzero int: the key's second word. */
function protoPort(code: number, port: number): number {
  return (code << 16) | (port & 0xffff);
}

function mix(a: number, b: number): number {
  let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77)) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Keeps NodePort keys, which have no address, from hashing like (0, protoPort). */
const NODE_PORT_SALT = 0x6e6f6465;

/** Slots for `keys` at a load of at most one half: short probes. */
function slotsFor(keys: number): number {
  let slots = 16;
  while (slots < keys * 2) slots *= 2;
  return slots;
}

// The address map: 16-byte rows (address, protoPort, value, unused), four to a cache line, so
// a hit costs one line. The value is servicePort << 2 | the kind of destination: the cluster
// IP, an external IP or a load-balancer IP (bit 0: external traffic; bit 1: source ranges
// apply). NodePorts come back from their own map as external destinations.
//
// Why these two maps are not on src/tables/open-hash.ts, the core under the flow table: rebuilt
// on it and run side by side with this code (interleaved in one process, CPU time), a lookup
// hit took 9.5 ns against 7.2 (10 services), 23.8 against 20.5 (10K) and 74.2 against 66.8
// (100K), and a NodePort lookup 6.9 against 4.4: the core's four-word hash and separate
// metadata cost more than this two-word mix. Misses among 10K and 100K services were 19% and
// 56% faster on the core (its metadata turns most of them away without reading a row); a hit
// is what every service flow's first packet makes, so the maps stay.
const ROW = 4;
// Service port rows: one 32-byte row holds all a decision reads.
const SP_WORDS = 8;
const SP_CLUSTER_IP = 0;
const SP_PROTO_PORT = 1;
const SP_FLAGS = 2;
const SP_EP_START = 3;
const SP_EP_COUNT = 4;
const SP_LOCAL_START = 5;
const SP_LOCAL_COUNT = 6;
const SP_AFFINITY_SECONDS = 7;
const FLAG_EXTERNAL_LOCAL = 1;
const FLAG_AFFINITY = 2;
/** The load-balancer IPs are limited to loadBalancerSourceRanges (`firewalls`). */
const FLAG_FIREWALL = 4;
/** A range holds the node's address: connections from the load-balancer IP itself pass. */
const FLAG_FIREWALL_NODE = 16;
/** What `lookup` returns besides the service port (value & DEST_MASK). */
export const DEST_CLUSTER_IP = 0;
export const DEST_EXTERNAL = 1;
export const DEST_LOAD_BALANCER = 3;
const DEST_BITS = 2;
const DEST_MASK = 3;
// Endpoint rows: address, port with the local bit above it.
const EP_WORDS = 2;
const EP_LOCAL_BIT = 0x10000;
const EP_PORT_MASK = 0xffff;

/** Where a service's ports sit in a table: for partial updates. */
interface Span {
  readonly first: number;
  readonly count: number;
}

/** The end of the run of service ports belonging to the service of `entries[first]` (computeEndpoints lists them together). */
function serviceEnd(entries: readonly ServicePortEndpoints[], first: number): number {
  let end = first + 1;
  while (end < entries.length && entries[end].service === entries[first].service) end++;
  return end;
}

/** What a build reuses from the table it replaces: the endpoints of services that did not change. */
interface Reuse {
  readonly previous: ServiceTable;
  /** The changed services' namespaces, by name: looked up with the model's own strings, none built. */
  readonly changed: ReadonlyMap<string, ReadonlySet<string>>;
}

/** "namespace/name" keys as a name → namespaces index. */
function changedIndex(keys: Iterable<string>): Map<string, Set<string>> {
  const index = new Map<string, Set<string>>();
  for (const key of keys) {
    const slash = key.indexOf('/');
    const name = key.slice(slash + 1);
    let namespaces = index.get(name);
    if (namespaces === undefined) {
      namespaces = new Set();
      index.set(name, namespaces);
    }
    namespaces.add(key.slice(0, slash));
  }
  return index;
}

function sameService(a: ServicePortEndpoints['service'], b: ServicePortEndpoints['service']): boolean {
  return a === b || (a.name === b.name && a.namespace === b.namespace);
}

/**
 * An immutable compiled table. Build it with `compileServiceTable` (or through
 * `LiveServiceTable`); read it from the packet path with `lookup`, `lookupNodePort` and
 * `classify`.
 */
export class ServiceTable {
  /** True when some key was claimed twice (the first claim wins, as the first rule would). */
  readonly hasConflicts: boolean;
  /** Services whose endpoints this build chose afresh (the others' were copied). */
  readonly reselected: number;
  /** The input behind each service port: plans for traces are made from it on demand. */
  private readonly entries: readonly ServicePortEndpoints[];
  private readonly nodeName: string;
  /** Made when a partial update first asks (from `entries`), so a full build makes no strings. */
  private spanIndex: ReadonlyMap<string, Span> | undefined;
  private readonly planCache = new Map<number, ServicePortPlan>();
  private readonly vip: Int32Array;
  private readonly vipMask: number;
  private readonly nodePorts: Int32Array;
  private readonly nodePortMask: number;
  private readonly sp: Int32Array;
  private readonly ep: Int32Array;
  private readonly localEndpoints: Int32Array;
  private readonly locals: Int32Array;
  /** Per service port with loadBalancerSourceRanges: the ranges, as NetworkPolicy's ipBlocks are kept. */
  private readonly firewalls: (CidrSet | undefined)[];
  private readonly nodeAddress: number;
  private readonly podBase: number;
  private readonly podMask: number;
  private readonly serviceBase: number;
  private readonly serviceMask: number;

  /**
   * Builds from the inputs: one service port per entry kube-proxy proxies, in the inputs'
   * order. With `reuse`, services not named changed (and with as many ports as before) have
   * their endpoints copied from the previous table instead of chosen again; everything else,
   * keys and claims included, is built exactly as a full build builds it.
   */
  constructor(inputs: ServiceRuleInputs, reuse?: Reuse) {
    const network = networkFacts(inputs);
    this.nodeName = inputs.nodeName;
    this.podBase = network.podCIDR.base | 0;
    this.podMask = prefixMask(network.podCIDR.prefix) | 0;
    this.serviceBase = network.serviceCIDR.base | 0;
    this.serviceMask = prefixMask(network.serviceCIDR.prefix) | 0;
    this.locals = Int32Array.from(network.localAddresses, (a) => a | 0);

    const entries: ServicePortEndpoints[] = [];
    let vipKeys = 0;
    let nodePortKeys = 0;
    let endpointRoom = 0;
    for (const entry of inputs.endpoints) {
      if (!isProxied(entry.service)) continue;
      entries.push(entry);
      vipKeys += 1 + externalIPsOf(entry.service).length + loadBalancerIPsOf(entry.service).length;
      if (nodePortOf(entry.service, entry.servicePort) !== undefined) nodePortKeys++;
      endpointRoom += entry.endpoints.length; // at least as many as will be selected
    }
    this.entries = entries;
    const vipSlots = slotsFor(vipKeys);
    const nodePortSlots = slotsFor(nodePortKeys);
    this.vip = new Int32Array(vipSlots * ROW);
    this.vipMask = vipSlots - 1;
    this.nodePorts = new Int32Array(nodePortSlots * 2);
    this.nodePortMask = nodePortSlots - 1;
    this.sp = new Int32Array(Math.max(1, entries.length) * SP_WORDS);
    this.ep = new Int32Array(Math.max(1, endpointRoom) * EP_WORDS);
    this.localEndpoints = new Int32Array(Math.max(1, endpointRoom));
    this.firewalls = new Array<CidrSet | undefined>(entries.length).fill(undefined);
    this.nodeAddress = inputs.nodeAddress | 0;

    const selection = new EndpointSelection();
    const cursor = { ep: 0, local: 0 };
    let conflicts = false;
    let reselected = 0;
    // The previous table lists services in the same order, bar additions and removals: a
    // cursor walks it alongside, and only a service not where expected is looked up by name.
    let previousAt = 0;
    let i = 0;
    while (i < entries.length) {
      const end = serviceEnd(entries, i);
      const service = entries[i].service;
      let copyFrom = -1;
      if (reuse !== undefined) {
        const previous = reuse.previous;
        let before: Span | undefined;
        if (previousAt < previous.entries.length && sameService(previous.entries[previousAt].service, service)) {
          before = { first: previousAt, count: serviceEnd(previous.entries, previousAt) - previousAt };
        } else {
          before = previous.spans().get(serviceKey(service));
        }
        if (before !== undefined) {
          // Step past the service even when it changed, to stay in step with the next one.
          previousAt = before.first + before.count;
          const unchanged = reuse.changed.get(service.name)?.has(service.namespace) !== true;
          if (unchanged && before.count === end - i) copyFrom = before.first;
        }
      }
      if (copyFrom < 0) reselected++;
      for (let k = i; k < end; k++) {
        const entry = entries[k];
        this.writeServicePort(k, entry);
        if (copyFrom >= 0) this.copyEndpoints(k, reuse!.previous, copyFrom + (k - i), cursor);
        else this.selectEndpoints(k, entry, selection, cursor);
        if (!this.claimKeys(k, entry)) conflicts = true;
      }
      i = end;
    }
    this.hasConflicts = conflicts;
    this.reselected = reselected;
  }

  /** Where each service's ports are, by "namespace/name". */
  private spans(): ReadonlyMap<string, Span> {
    if (this.spanIndex === undefined) {
      const index = new Map<string, Span>();
      for (let i = 0; i < this.entries.length; ) {
        const end = serviceEnd(this.entries, i);
        index.set(serviceKey(this.entries[i].service), { first: i, count: end - i });
        i = end;
      }
      this.spanIndex = index;
    }
    return this.spanIndex;
  }

  /** The service port's own row, endpoints aside. */
  private writeServicePort(index: number, entry: ServicePortEndpoints): void {
    const { service, servicePort } = entry;
    const affinity = affinitySecondsOf(service);
    const row = index * SP_WORDS;
    this.sp[row + SP_CLUSTER_IP] = service.clusterIP! | 0;
    this.sp[row + SP_PROTO_PORT] = protoPort(protocolCodeOf(protocolOf(servicePort)), servicePort.port);
    this.sp[row + SP_FLAGS] = (externalPolicyLocalOf(service, servicePort) ? FLAG_EXTERNAL_LOCAL : 0) | (affinity !== undefined ? FLAG_AFFINITY : 0) | this.writeSourceRanges(index, service);
    this.sp[row + SP_AFFINITY_SECONDS] = affinity ?? 0;
  }

  /**
   * The service port's source ranges as a prefix set; returns its firewall flags. Only a
   * service with load-balancer IPs gets a KUBE-FW- chain (without endpoints it rejects before
   * any range is read, as REJECT comes first in the rules too).
   */
  private writeSourceRanges(index: number, service: ServicePortEndpoints['service']): number {
    const ranges = sourceRangesOf(service);
    if (ranges.length === 0 || loadBalancerIPsOf(service).length === 0) return 0;
    this.firewalls[index] = CidrSet.of(ranges.map((cidr) => ({ cidr, except: [] })));
    return FLAG_FIREWALL | (ranges.some((range) => cidrContains(range, this.nodeAddress)) ? FLAG_FIREWALL_NODE : 0);
  }

  /**
   * Whether KUBE-FW- lets `src` through to the service port's load-balancer IP `dst`: one probe
   * per distinct prefix length among its ranges, whatever their number.
   */
  private sourceAllowed(spIndex: number, flags: number, src: number, dst: number): boolean {
    // A service has one load-balancer IP here, so "-s <its LB IP>" is the flow's own destination.
    if ((flags & FLAG_FIREWALL_NODE) !== 0 && src === dst) return true;
    return this.firewalls[spIndex]?.contains(src) === true;
  }

  /** Chooses the endpoints as kube-proxy does (kube-proxy.ts EndpointSelection) and appends them. */
  private selectEndpoints(index: number, entry: ServicePortEndpoints, selection: EndpointSelection, cursor: { ep: number; local: number }): void {
    const row = index * SP_WORDS;
    const count = selection.select(entry, this.nodeName);
    this.sp[row + SP_EP_START] = cursor.ep;
    this.sp[row + SP_EP_COUNT] = count;
    this.sp[row + SP_LOCAL_START] = cursor.local;
    for (let i = 0; i < count; i++) {
      const local = selection.isLocal(i);
      if (local) this.localEndpoints[cursor.local++] = cursor.ep;
      this.ep[cursor.ep * EP_WORDS] = selection.ip(i) | 0;
      this.ep[cursor.ep * EP_WORDS + 1] = (selection.port(i) & EP_PORT_MASK) | (local ? EP_LOCAL_BIT : 0);
      cursor.ep++;
    }
    this.sp[row + SP_LOCAL_COUNT] = cursor.local - this.sp[row + SP_LOCAL_START];
  }

  /** Copies service port `from` of `previous`'s endpoints, unchanged. */
  private copyEndpoints(index: number, previous: ServiceTable, from: number, cursor: { ep: number; local: number }): void {
    const row = index * SP_WORDS;
    const old = from * SP_WORDS;
    const start = previous.sp[old + SP_EP_START];
    const count = previous.sp[old + SP_EP_COUNT];
    this.sp[row + SP_EP_START] = cursor.ep;
    this.sp[row + SP_EP_COUNT] = count;
    this.sp[row + SP_LOCAL_START] = cursor.local;
    this.sp[row + SP_LOCAL_COUNT] = previous.sp[old + SP_LOCAL_COUNT];
    for (let i = 0; i < count; i++) {
      const e = (start + i) * EP_WORDS;
      this.ep[cursor.ep * EP_WORDS] = previous.ep[e];
      this.ep[cursor.ep * EP_WORDS + 1] = previous.ep[e + 1];
      if ((previous.ep[e + 1] & EP_LOCAL_BIT) !== 0) this.localEndpoints[cursor.local++] = cursor.ep;
      cursor.ep++;
    }
  }

  /** Claims the service port's keys in KUBE-SERVICES' order: cluster IP, external IPs, load-balancer IPs; then its NodePort. */
  private claimKeys(index: number, entry: ServicePortEndpoints): boolean {
    const { service, servicePort } = entry;
    const pp = this.sp[index * SP_WORDS + SP_PROTO_PORT];
    let fresh = this.claimAddress(service.clusterIP!, pp, (index << DEST_BITS) | DEST_CLUSTER_IP);
    for (const external of externalIPsOf(service)) fresh = this.claimAddress(external, pp, (index << DEST_BITS) | DEST_EXTERNAL) && fresh;
    for (const lb of loadBalancerIPsOf(service)) fresh = this.claimAddress(lb, pp, (index << DEST_BITS) | DEST_LOAD_BALANCER) && fresh;
    const nodePort = nodePortOf(service, servicePort);
    if (nodePort !== undefined) fresh = this.claimNodePort(protoPort(pp >>> 16, nodePort), index) && fresh;
    return fresh;
  }

  get servicePortCount(): number {
    return this.entries.length;
  }

  /** Bytes of typed arrays behind the table. */
  get byteLength(): number {
    return this.vip.byteLength + this.nodePorts.byteLength + this.sp.byteLength + this.ep.byteLength + this.localEndpoints.byteLength;
  }

  /** Claims (address, protoPort) for `value` unless already claimed; false when it was. */
  private claimAddress(address: number, pp: number, value: number): boolean {
    const vip = this.vip;
    const a = address | 0;
    let slot = mix(a, pp) & this.vipMask;
    for (;;) {
      const r = slot * ROW;
      if (vip[r + 1] === 0) {
        vip[r] = a;
        vip[r + 1] = pp;
        vip[r + 2] = value;
        return true;
      }
      if (vip[r] === a && vip[r + 1] === pp) return false;
      slot = (slot + 1) & this.vipMask;
    }
  }

  private claimNodePort(pp: number, servicePort: number): boolean {
    const map = this.nodePorts;
    let slot = mix(pp, NODE_PORT_SALT) & this.nodePortMask;
    for (;;) {
      const r = slot * 2;
      if (map[r] === 0) {
        map[r] = pp;
        map[r + 1] = servicePort;
        return true;
      }
      if (map[r] === pp) return false;
      slot = (slot + 1) & this.nodePortMask;
    }
  }

  /**
   * The service port a destination names, `servicePort << 2 | DEST_*` (DEST_CLUSTER_IP,
   * DEST_EXTERNAL for an external IP, DEST_LOAD_BALANCER), or NOT_FOUND. One probe
   * sequence, nothing allocated.
   */
  lookup(dstAddr: number, ipProtocol: number, dstPort: number): number {
    const code = protocolCode(ipProtocol);
    if (code === 0) return NOT_FOUND;
    const a = dstAddr | 0;
    const pp = protoPort(code, dstPort);
    const vip = this.vip;
    const mask = this.vipMask;
    let slot = mix(a, pp) & mask;
    for (;;) {
      const r = slot * ROW;
      const key = vip[r + 1];
      if (key === 0) return NOT_FOUND;
      if (key === pp && vip[r] === a) return vip[r + 2];
      slot = (slot + 1) & mask;
    }
  }

  /** The service port behind a NodePort, or NOT_FOUND. */
  lookupNodePort(ipProtocol: number, port: number): number {
    const code = protocolCode(ipProtocol);
    if (code === 0) return NOT_FOUND;
    const pp = protoPort(code, port);
    const map = this.nodePorts;
    const mask = this.nodePortMask;
    let slot = mix(pp, NODE_PORT_SALT) & mask;
    for (;;) {
      const key = map[slot * 2];
      if (key === 0) return NOT_FOUND;
      if (key === pp) return map[slot * 2 + 1];
      slot = (slot + 1) & mask;
    }
  }

  /** One of the node's own addresses (addrtype LOCAL). */
  isLocalAddress(address: number): boolean {
    const a = address | 0;
    const locals = this.locals;
    for (let i = 0; i < locals.length; i++) if (locals[i] === a) return true;
    return false;
  }

  private inPodCidr(address: number): boolean {
    return (address & this.podMask) === this.podBase;
  }

  /** PODWIRE-POSTRTG: pod traffic to outside the pod and service CIDRs (and not multicast). */
  needsEgressMasquerade(srcAddr: number, dstAddr: number): boolean {
    return this.inPodCidr(srcAddr) && !this.inPodCidr(dstAddr) && (dstAddr & this.serviceMask) !== this.serviceBase && (dstAddr & 0xf0000000) !== (0xe0000000 | 0);
  }

  /**
   * Decides a new flow, as the rules would for its first packet arriving at this node
   * (PREROUTING, then INPUT or FORWARD and POSTROUTING), and writes the answer into `out`.
   * Allocates nothing, provided every argument is a small integer to V8: pass addresses as
   * int32 (`readI32`, or `| 0`; a uint32 above 2^31 works too, but is boxed into a heap
   * number by each call that is not inlined) and the draw as an int32.
   *
   * @param draw 32 random bits (an int32 passes without boxing; only the low 32 bits count),
   *   used when more than one endpoint may be chosen
   * @param affinity the node's ClientIP affinity state (its clock set), or null: affinity
   *   services then choose as the others do
   */
  classify(srcAddr: number, dstAddr: number, ipProtocol: number, dstPort: number, draw: number, affinity: AffinityTable | null, out: FlowDecision): FlowVerdict {
    out.reset();
    const src = srcAddr | 0;
    const dst = dstAddr | 0;
    let value = this.lookup(dst, ipProtocol, dstPort);
    if (value === NOT_FOUND && this.isLocalAddress(dst)) {
      const nodePortTarget = this.lookupNodePort(ipProtocol, dstPort);
      if (nodePortTarget !== NOT_FOUND) value = (nodePortTarget << DEST_BITS) | DEST_EXTERNAL;
    }
    if (value === NOT_FOUND) {
      // Delivered to the node itself, nothing reaches POSTROUTING.
      out.masquerade = !this.isLocalAddress(dst) && this.needsEgressMasquerade(src, dst);
      return out.verdict;
    }
    const spIndex = value >> DEST_BITS;
    const kind = value & DEST_MASK;
    const external = (kind & DEST_EXTERNAL) !== 0;
    const sp = this.sp;
    const row = spIndex * SP_WORDS;
    out.servicePort = spIndex;
    if (sp[row + SP_EP_COUNT] === 0) {
      out.verdict = FlowVerdict.Reject;
      return out.verdict;
    }
    const flags = sp[row + SP_FLAGS];
    if (kind === DEST_LOAD_BALANCER && (flags & FLAG_FIREWALL) !== 0 && !this.sourceAllowed(spIndex, flags, src, dst)) {
      out.verdict = FlowVerdict.Firewall;
      return out.verdict;
    }

    // Which endpoints, and whether the walk so far marked the packet for masquerade.
    let useLocal = false;
    let masquerade: boolean;
    if (!external) {
      masquerade = !this.inPodCidr(src);
    } else if ((flags & FLAG_EXTERNAL_LOCAL) === 0) {
      masquerade = true;
    } else if (this.inPodCidr(src)) {
      masquerade = false;
    } else if (this.isLocalAddress(src)) {
      masquerade = true;
    } else if (sp[row + SP_LOCAL_COUNT] > 0) {
      useLocal = true;
      masquerade = false;
    } else {
      out.verdict = FlowVerdict.Drop;
      return out.verdict;
    }

    const endpoint = (flags & FLAG_AFFINITY) !== 0 && affinity !== null
      ? this.chooseWithAffinity(spIndex, useLocal, src, draw, affinity)
      : this.endpointAt(spIndex, useLocal, uniformPosition(useLocal ? sp[row + SP_LOCAL_COUNT] : sp[row + SP_EP_COUNT], draw));
    const epAddress = this.ep[endpoint * EP_WORDS];
    out.verdict = FlowVerdict.Dnat;
    out.endpoint = endpoint;
    out.dnatAddress = epAddress >>> 0;
    out.dnatPort = this.ep[endpoint * EP_WORDS + 1] & EP_PORT_MASK;
    if (epAddress === src) masquerade = true; // hairpin
    if (this.isLocalAddress(epAddress)) masquerade = false; // delivered locally: no POSTROUTING
    else if (!masquerade) masquerade = this.needsEgressMasquerade(src, epAddress);
    out.masquerade = masquerade;
    return out.verdict;
  }

  /** The endpoint index at `position` of the service port's full or local list. */
  private endpointAt(spIndex: number, useLocal: boolean, position: number): number {
    const row = spIndex * SP_WORDS;
    return useLocal ? this.localEndpoints[this.sp[row + SP_LOCAL_START] + position] : this.sp[row + SP_EP_START] + position;
  }

  /** Position of endpoint (address, port) in the list, or -1. */
  private positionOf(spIndex: number, useLocal: boolean, address: number, port: number): number {
    const row = spIndex * SP_WORDS;
    const n = useLocal ? this.sp[row + SP_LOCAL_COUNT] : this.sp[row + SP_EP_COUNT];
    for (let i = 0; i < n; i++) {
      const e = this.endpointAt(spIndex, useLocal, i) * EP_WORDS;
      if (this.ep[e] === address && (this.ep[e + 1] & EP_PORT_MASK) === port) return i;
    }
    return -1;
  }

  /**
   * ClientIP affinity as the chain does it: of the endpoints this client was sent to within the
   * timeout, the first in the chain's order; otherwise a uniform choice. The choice is then
   * recorded (the KUBE-SEP chain's `recent --set`).
   */
  private chooseWithAffinity(spIndex: number, useLocal: boolean, client: number, draw: number, affinity: AffinityTable): number {
    const row = spIndex * SP_WORDS;
    const ip = this.sp[row + SP_CLUSTER_IP];
    const pp = this.sp[row + SP_PROTO_PORT];
    const seconds = this.sp[row + SP_AFFINITY_SECONDS];
    let position = -1;
    const way = affinity.find(ip, pp, client);
    if (way !== NOT_FOUND) {
      for (let pin = 0; pin < PINS; pin++) {
        if (!affinity.pinIsFresh(way, pin, seconds)) continue;
        const at = this.positionOf(spIndex, useLocal, affinity.pinAddress(way, pin), affinity.pinPort(way, pin));
        if (at >= 0 && (position < 0 || at < position)) position = at;
      }
    }
    if (position < 0) position = uniformPosition(useLocal ? this.sp[row + SP_LOCAL_COUNT] : this.sp[row + SP_EP_COUNT], draw);
    const endpoint = this.endpointAt(spIndex, useLocal, position);
    const e = endpoint * EP_WORDS;
    const local = (this.ep[e + 1] & EP_LOCAL_BIT) !== 0;
    affinity.pin(ip, pp, client, local ? PIN_LOCAL : PIN_REMOTE, this.ep[e], this.ep[e + 1] & EP_PORT_MASK);
    return endpoint;
  }

  /** The endpoint's address as a uint32. */
  endpointAddress(endpoint: number): number {
    return this.ep[endpoint * EP_WORDS] >>> 0;
  }

  endpointPort(endpoint: number): number {
    return this.ep[endpoint * EP_WORDS + 1] & EP_PORT_MASK;
  }

  /** The plan of a service port (names, endpoints), made on first request: for traces and status, not packets. */
  plan(servicePort: number): ServicePortPlan {
    let plan = this.planCache.get(servicePort);
    if (plan === undefined) {
      plan = planServicePort(this.entries[servicePort], this.nodeName)!;
      this.planCache.set(servicePort, plan);
    }
    return plan;
  }

  /** Every service port's plan, in table order. */
  plans(): ServicePortPlan[] {
    return this.entries.map((_, i) => this.plan(i));
  }
}

/** floor(draw * n / 2^32) for the uint32 draw: exact, since draw * n stays below 2^53 for n below 2^21. */
function uniformPosition(n: number, draw: number): number {
  return n === 1 ? 0 : Math.floor(((draw >>> 0) * n) / DRAW_RANGE);
}

// ---------------------------------------------------------------------------------------------
// ClientIP affinity.

/**
 * Pins per (service port, client). The chain keeps one `recent` list per endpoint and takes the
 * first endpoint, in chain order, whose list holds the client; with the rules fixed, at most
 * one local and one remote endpoint can hold a client within the timeout (the KUBE-SVL chain
 * only sees local endpoints, so a remote pin survives a visit through a NodePort), hence two
 * pins. Lists die with their endpoint's rules, pins only when overwritten: an endpoint that
 * leaves and returns within the timeout gets its clients back here, not through the chain.
 */
const PINS = 2;
const PIN_LOCAL = 0;
const PIN_REMOTE = 1;
const WAYS = 4;
const KEY_WORDS = 3;
const PIN_WORDS = 2;
const NO_PIN = -1;

/**
 * A bounded, set-associative table: a (service port, client) key lives in one bucket of four
 * ways; a new key takes an empty way or evicts the way least recently used. Time is passed in
 * (seconds), never read. Lookups and pins allocate nothing.
 *
 * Not on src/tables/open-hash.ts with the flow table: that core's bound refuses a new key when
 * full, where this table evicts the least recently used way of the key's bucket in O(1), so a
 * new client always gets pinned. An open-addressing table cannot find its least recently used
 * entry without a scan; moving would change which endpoint a client gets once the table
 * fills, which is behaviour, not layout.
 */
export class AffinityTable {
  readonly capacity: number;
  private readonly bucketMask: number;
  /** Per way: cluster IP, protoPort (0 = empty), client. */
  private readonly keys: Int32Array;
  /** Per way and pin: address, port (NO_PIN = none). */
  private readonly pins: Int32Array;
  /** Per way and pin: when last chosen. */
  private readonly seen: Float64Array;
  /** The time, in seconds, as last set: kept in a typed array so that reading it allocates nothing. */
  private readonly clock = new Float64Array(1);

  /** @param maxEntries at least this many (service port, client) pairs are held (rounded up to a power of two). */
  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > 2 ** 24) throw new RangeError(`AffinityTable maxEntries must be an integer from 1 to 2^24, got ${maxEntries}`);
    let buckets = 1;
    while (buckets * WAYS < maxEntries) buckets *= 2;
    this.capacity = buckets * WAYS;
    this.bucketMask = buckets - 1;
    this.keys = new Int32Array(this.capacity * KEY_WORDS);
    this.pins = new Int32Array(this.capacity * PINS * PIN_WORDS).fill(NO_PIN);
    this.seen = new Float64Array(this.capacity * PINS);
  }

  /** Sets the time, in seconds on any fixed origin, that pins are stamped with and judged by. */
  setTime(seconds: number): void {
    this.clock[0] = seconds;
  }

  get time(): number {
    return this.clock[0];
  }

  private bucketOf(clusterIP: number, pp: number, client: number): number {
    return (mix(clusterIP ^ client, pp ^ Math.imul(client, 0x27d4eb2f)) & this.bucketMask) * WAYS;
  }

  /** The way holding the key, or NOT_FOUND. */
  find(clusterIP: number, pp: number, client: number): number {
    const first = this.bucketOf(clusterIP, pp, client);
    const keys = this.keys;
    for (let way = first; way < first + WAYS; way++) {
      const k = way * KEY_WORDS;
      if (keys[k + 1] === pp && keys[k] === clusterIP && keys[k + 2] === client) return way;
    }
    return NOT_FOUND;
  }

  /** Chosen within `seconds` of the table's time (as xt_recent's --rcheck --seconds counts). */
  pinIsFresh(way: number, pin: number, seconds: number): boolean {
    return this.pins[(way * PINS + pin) * PIN_WORDS + 1] !== NO_PIN && this.clock[0] - this.seen[way * PINS + pin] <= seconds;
  }

  pinAddress(way: number, pin: number): number {
    return this.pins[(way * PINS + pin) * PIN_WORDS];
  }

  pinPort(way: number, pin: number): number {
    return this.pins[(way * PINS + pin) * PIN_WORDS + 1];
  }

  /** Records that the client was sent to (address, port) at the table's time. */
  pin(clusterIP: number, pp: number, client: number, pin: number, address: number, port: number): void {
    let way = this.find(clusterIP, pp, client);
    if (way === NOT_FOUND) way = this.claimWay(clusterIP, pp, client);
    const p = (way * PINS + pin) * PIN_WORDS;
    this.pins[p] = address;
    this.pins[p + 1] = port;
    this.seen[way * PINS + pin] = this.clock[0];
  }

  /** An empty way of the key's bucket, else the least recently used one, emptied and keyed. */
  private claimWay(clusterIP: number, pp: number, client: number): number {
    const first = this.bucketOf(clusterIP, pp, client);
    let victim = first;
    let oldest = Infinity;
    for (let way = first; way < first + WAYS; way++) {
      if (this.keys[way * KEY_WORDS + 1] === 0) {
        victim = way;
        break;
      }
      const last = Math.max(this.seen[way * PINS], this.seen[way * PINS + 1]);
      if (last < oldest) {
        oldest = last;
        victim = way;
      }
    }
    const k = victim * KEY_WORDS;
    this.keys[k] = clusterIP;
    this.keys[k + 1] = pp;
    this.keys[k + 2] = client;
    for (let pin = 0; pin < PINS; pin++) {
      this.pins[(victim * PINS + pin) * PIN_WORDS + 1] = NO_PIN;
      this.seen[victim * PINS + pin] = -Infinity;
    }
    return victim;
  }

  /** Forgets every pin. */
  clear(): void {
    this.keys.fill(0);
    this.pins.fill(NO_PIN);
    this.seen.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Building.

/** The network facts a table needs besides the service ports. */
export interface NetworkFacts {
  readonly podCIDR: { readonly base: number; readonly prefix: number };
  readonly serviceCIDR: { readonly base: number; readonly prefix: number };
  /** The node's own addresses (addrtype LOCAL). */
  readonly localAddresses: readonly number[];
}

export function networkFacts(inputs: ServiceRuleInputs): NetworkFacts {
  const { podCIDR, serviceCIDR } = inputs.cluster.settings;
  return { podCIDR, serviceCIDR, localAddresses: nodeLocalAddresses(inputs) };
}

/** Builds the table from the same inputs as kubeProxyRules. */
export function compileServiceTable(inputs: ServiceRuleInputs): ServiceTable {
  return new ServiceTable(inputs);
}

export interface UpdateResult {
  /** 'partial': endpoints chosen again for the changed services only; 'full': for all. */
  readonly kind: 'partial' | 'full';
  /** Services whose endpoints were chosen again. */
  readonly reselected: number;
  /** Why a partial update fell back to a full rebuild. */
  readonly reason?: string;
}

/**
 * The table the dataplane reads, kept current. Read `table` once per packet (or batch): an
 * update builds a whole new table and then replaces the reference, so a reader never sees a
 * half-built one.
 */
export class LiveServiceTable {
  private current: ServiceTable;

  constructor(inputs: ServiceRuleInputs) {
    this.current = new ServiceTable(inputs);
  }

  get table(): ServiceTable {
    return this.current;
  }

  /** Rebuilds everything from the inputs; throws (keeping the current table) if they cannot be built. */
  rebuild(inputs: ServiceRuleInputs): UpdateResult {
    this.current = new ServiceTable(inputs);
    return { kind: 'full', reselected: this.current.reselected };
  }

  /**
   * Brings the table up to `inputs`, given the services ("namespace/name") whose Service or
   * endpoints changed since the last update: only theirs are chosen again, the others' copied
   * from the table in place. Whatever goes wrong, it rebuilds everything; it throws only when
   * that fails too, and then the table in place stays.
   */
  update(inputs: ServiceRuleInputs, changedServices: Iterable<string>): UpdateResult {
    try {
      this.current = new ServiceTable(inputs, { previous: this.current, changed: changedIndex(changedServices) });
      return { kind: 'partial', reselected: this.current.reselected };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.current = new ServiceTable(inputs);
      return { kind: 'full', reselected: this.current.reselected, reason };
    }
  }
}
