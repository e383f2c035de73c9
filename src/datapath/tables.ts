/**
 * The node's tables as the stages read them: who this node is, its pod ports, the bridge's
 * FDB, the overlay peers, the uplink and its neighbours, conntrack, the compiled service
 * table, NetworkPolicy, the DNS answerer, the fragment reassembly table. Stages depend on
 * the context and on these tables, never on each other.
 */
import { cidrContains, cidrSize, macBytes, type Cidr } from '../packet/addr.js';
import { Conntrack } from '../netfilter/conntrack.js';
import { KUBE_PROXY_TIMEOUTS, type ConntrackTimeouts } from '../netfilter/conntrack-timeouts.js';
import type { PolicyTables } from '../kube/policy.js';
import { AffinityTable, type LiveServiceTable } from '../kube/service-table.js';
import { Fdb } from '../l2/fdb.js';
import { FloodLimiter } from '../l2/flood-limit.js';
import { NeighbourTable } from '../l2/neighbours.js';
import { OverlayPeers } from '../overlay/peers.js';
import type { Port } from '../port/port.js';
import { Defrag } from '../netfilter/defrag.js';
import { DROP_REASONS, DROP_TRANSPORTS } from './drops.js';
import { newCounters } from './context.js';
import { FlowRecorder, type FlowOptions } from './flow-recorder.js';

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): what the overlay adds to an IP packet. */
export const VXLAN_OVERHEAD = 50;

export interface NodeIdentity {
  name: string;
  /** This node's pod CIDR (10.244.N.0/24). */
  subnet: Cidr;
  /** The cluster-wide pod CIDR; destinations inside it but on no node are unreachable. */
  clusterCidr: Cidr;
  /** Gateway address and the bridge's MAC (the pods' default router, cni0 in a real node). */
  gatewayIp: number;
  gatewayMac: number;
  /** MAC of this node's VTEP (flannel.1), the inner source MAC of encapsulated frames. */
  vtepMac: number;
  vni: number;
  /** The underlay path's MTU; inner IP packets up to underlayMtu - 50 cross the overlay whole. */
  underlayMtu: number;
  /** The cluster DNS address, answered inside the dataplane for local pods (UDP). */
  dnsIp?: number;
}

/** The node's NIC on the outside network (the ext namespace's bridge). */
export interface UplinkIdentity {
  /** The node's address there, and its MAC. */
  addr: number;
  mac: number;
  network: Cidr;
  /** Next hop for destinations outside `network`. */
  gateway: number;
}

/** The cluster DNS responder as the path calls it (src/node/dns-server.ts). */
export interface DnsAnswerer {
  fromPod(query: Uint8Array, offset: number, length: number, clientAddr: number, clientPort: number, out: Uint8Array, outOffset: number): { action: string; length: number };
}

export interface PodSlot {
  name: string;
  ip: number;
  mac: number;
  port: Port;
  /** `mac` in the forms the path compares and keys by (see EthernetView.dstIs). */
  macBytes: Uint8Array;
  macHigh: number;
  macLow: number;
}

export interface PathOptions {
  /** Uniform in [0, 1): endpoint choice and SNAT ports; a seeded source makes runs repeatable. */
  random?: () => number;
  /** Connection table size (the kernel's nf_conntrack_max); default 262,144. */
  conntrackMax?: number;
  /** Conntrack timeouts in seconds; unset ones as a kube-proxy node has them (KUBE_PROXY_TIMEOUTS). */
  conntrackTimeouts?: Partial<ConntrackTimeouts>;
  /** Conntrack's packet and byte counters (nf_conntrack_acct); default off, as on a real node. */
  conntrackAccounting?: boolean;
  /** Hash seed of the connection table. */
  seed?: number;
  /** Broadcast/unknown-unicast frames a pod may flood per second (burst as many); default 2,000. */
  floodRate?: number;
  /** The flow ring and its rate limits (observe); `false`: no flow events at all. */
  flows?: FlowOptions | false;
}

export const NO_POD = -1;
export const MAX_SLOTS = 1024;

export class PathTables {
  readonly slots: (PodSlot | undefined)[] = [];
  /** Local pod slot by host number within the node's subnet: one array index per lookup. */
  readonly slotByHost: Int32Array;
  /**
   * The batch's time (ns), written once per batch: the tables read it here, so a time that
   * is a double never crosses a call per packet.
   */
  readonly clock = new Float64Array(1);
  readonly fdb = new Fdb(undefined, undefined, this.clock);
  readonly peers = new OverlayPeers();
  readonly neighbours = new NeighbourTable(undefined, undefined, undefined, undefined, this.clock);
  readonly conntrack: Conntrack;
  readonly affinity = new AffinityTable(65_536);
  readonly floods: FloodLimiter;
  /** IPv4 fragments waiting for the rest of their datagram (nf_defrag_ipv4). */
  readonly reassembly: Defrag;
  /** kube-proxy's decisions, compiled; undefined: no services. */
  services: LiveServiceTable | undefined;
  /** NetworkPolicy for this node's pods; undefined allows everything. */
  policy: PolicyTables | undefined;
  /** Answers UDP queries to the cluster DNS address; undefined: they are routed like any packet. */
  dns: DnsAnswerer | undefined;
  /**
   * The node's own namespace on the pod network, where its DNS relay (pods' TCP to the cluster
   * DNS address) and its health server (TCP to the node's addresses on a health check node
   * port) listen; 0: none.
   */
  relayAddress = 0;
  /** healthPorts[port] is 1 for every health check node port of the cluster's services. */
  readonly healthPorts = new Uint8Array(65536);
  uplink: UplinkIdentity | undefined;
  /** The bridge's, the VTEP's and the uplink's MACs as 6 bytes, for the path to compare and write. */
  readonly gatewayMacBytes: Uint8Array;
  readonly vtepMacBytes: Uint8Array;
  uplinkMacBytes: Uint8Array = new Uint8Array(6);
  /** True once the overlay socket is attached. */
  overlayLinked = false;
  /** LoadBalancer addresses this node answers ARP for on its uplink. */
  announced = new Set<number>();
  readonly counters = newCounters();
  readonly drops = new Float64Array(DROP_REASONS.length);
  /** Walked drops by reason and transport: dropTransports[reason * DROP_TRANSPORTS + DropTransport]. */
  readonly dropTransports = new Float64Array(DROP_REASONS.length * DROP_TRANSPORTS);
  readonly random: () => number;
  /** The node's flow events (observe); undefined when turned off. */
  readonly flows: FlowRecorder | undefined;

  constructor(
    readonly node: NodeIdentity,
    options: PathOptions = {},
  ) {
    this.gatewayMacBytes = macBytes(node.gatewayMac);
    this.vtepMacBytes = macBytes(node.vtepMac);
    this.slotByHost = new Int32Array(Math.min(cidrSize(node.subnet), 1 << 16)).fill(NO_POD);
    this.random = options.random ?? Math.random;
    this.conntrack = new Conntrack({
      maxEntries: options.conntrackMax ?? 262_144,
      seed: options.seed ?? 0x9e3779b9,
      clock: this.clock,
      timeouts: { ...KUBE_PROXY_TIMEOUTS, ...options.conntrackTimeouts },
      accounting: options.conntrackAccounting ?? false,
    });
    this.floods = new FloodLimiter(MAX_SLOTS, options.floodRate ?? 2000, undefined, this.clock);
    this.reassembly = new Defrag({ seed: (options.seed ?? 0x9e3779b9) ^ 0x5bd1e995 });
    this.flows = options.flows === false ? undefined : new FlowRecorder(this.clock, this.conntrack, options.flows);
    this.conntrack.listener = this.flows;
  }

  /** Largest inner IPv4 packet the overlay carries whole. */
  get overlayIpMtu(): number {
    return this.node.underlayMtu - VXLAN_OVERHEAD;
  }

  /** The uplink's next hop for `dst`: on-link inside its network, else its gateway (uplink attached). */
  nextHopFor(dst: number): number {
    const up = this.uplink!;
    return cidrContains(up.network, dst) ? dst : up.gateway;
  }

  /** One of the node's own addresses: its gateway (cni0) or its uplink's. */
  isNodeAddress(addr: number): boolean {
    return addr === this.node.gatewayIp || (this.uplink !== undefined && addr === this.uplink.addr);
  }

  /** The local pod holding `addr`, as its slot, or NO_POD. */
  podSlotOf(addr: number): number {
    if (!cidrContains(this.node.subnet, addr)) return NO_POD;
    const slot = this.slotByHost[addr - this.node.subnet.base];
    return slot === NO_POD || this.slots[slot] === undefined ? NO_POD : slot;
  }
}
