/**
 * The VXLAN backend's view of the other nodes, kept the way flannel's vxlan backend keeps
 * it (pkg/backend/vxlan): for each remote node's lease, exactly
 *
 *   one route       <podCIDR> via <podCIDR network address> dev <vtep> onlink
 *   one neighbour   <podCIDR network address> lladdr <remote VTEP MAC>
 *   one FDB entry   <remote VTEP MAC> dst <remote underlay address>
 *
 * added together when the lease appears and removed together when it goes. The three are
 * stored as one peer record reached by one longest-prefix lookup, so the forwarding path
 * pays for a single lookup; `routes()`, `neighbours()` and `fdb()` render the three tables
 * for people, in the words of `ip route`, `ip neigh` and `bridge fdb`.
 */
import { formatCidr, formatIpv4, formatMac, macBytes, type Cidr } from '../packet/addr.js';
import { LpmTable } from './lpm.js';

export interface Lease {
  /** The node that holds the lease. */
  readonly node: string;
  /** The node's pod CIDR. */
  readonly subnet: Cidr;
  /** MAC of the node's VTEP (the inner destination MAC of frames sent to it). */
  readonly vtepMac: number;
  /** Underlay address and UDP port of the node's VTEP. */
  readonly underlayAddr: number;
  readonly underlayPort: number;
}

export interface Peer extends Lease {
  /** Small integer naming this peer in counters and captures; stable while the lease lives. */
  readonly id: number;
  /** `vtepMac` as 6 bytes, as the forwarding path writes it (no number per frame). */
  readonly vtepMacBytes: Uint8Array;
}

export class OverlayPeers {
  private readonly byNode = new Map<string, Peer>();
  /**
   * By underlay address, then UDP port: several nodes may share a machine's address on
   * different ports. Two lookups keyed by the numbers themselves, so a datagram costs no
   * key of its own.
   */
  private readonly byUnderlay = new Map<number, Map<number, Peer>>();
  private readonly routeTable = new LpmTable<Peer>();
  private nextId = 0;

  constructor(readonly vtepName = 'flannel.1') {}

  /** Adds or replaces the peer for `lease.node`; returns it. */
  add(lease: Lease): Peer {
    this.remove(lease.node);
    const peer: Peer = { ...lease, id: this.nextId++, vtepMacBytes: macBytes(lease.vtepMac) };
    this.byNode.set(lease.node, peer);
    let ports = this.byUnderlay.get(lease.underlayAddr);
    if (ports === undefined) this.byUnderlay.set(lease.underlayAddr, (ports = new Map()));
    ports.set(lease.underlayPort, peer);
    this.routeTable.set(lease.subnet, peer);
    return peer;
  }

  remove(node: string): boolean {
    const peer = this.byNode.get(node);
    if (peer === undefined) return false;
    this.byNode.delete(node);
    const ports = this.byUnderlay.get(peer.underlayAddr);
    ports?.delete(peer.underlayPort);
    if (ports?.size === 0) this.byUnderlay.delete(peer.underlayAddr);
    this.routeTable.delete(peer.subnet);
    return true;
  }

  /**
   * Makes the table match a full snapshot of leases (a watcher's resync): leases that
   * vanished are removed, new or changed ones added, unchanged ones kept with their id.
   */
  applySnapshot(leases: readonly Lease[]): void {
    const wanted = new Map(leases.map((l) => [l.node, l]));
    for (const node of [...this.byNode.keys()]) if (!wanted.has(node)) this.remove(node);
    for (const lease of leases) {
      const current = this.byNode.get(lease.node);
      if (current === undefined || !sameLease(current, lease)) this.add(lease);
    }
  }

  /** The peer whose pod CIDR holds `dstAddr`, or undefined (forwarding path: no allocation). */
  peerFor(dstAddr: number): Peer | undefined {
    return this.routeTable.lookup(dstAddr);
  }

  /** The peer whose VTEP sends from `addr`:`port` (a datagram's underlay source), or undefined. */
  peerAt(addr: number, port: number): Peer | undefined {
    return this.byUnderlay.get(addr)?.get(port);
  }

  get(node: string): Peer | undefined {
    return this.byNode.get(node);
  }

  all(): Peer[] {
    return [...this.byNode.values()];
  }

  routes(): string[] {
    return this.all().map((p) => `${formatCidr(p.subnet)} via ${formatIpv4(p.subnet.base)} dev ${this.vtepName} onlink`);
  }

  neighbours(): string[] {
    return this.all().map((p) => `${formatIpv4(p.subnet.base)} dev ${this.vtepName} lladdr ${formatMac(p.vtepMac)} PERMANENT`);
  }

  fdb(): string[] {
    return this.all().map((p) => `${formatMac(p.vtepMac)} dev ${this.vtepName} dst ${formatIpv4(p.underlayAddr)} port ${p.underlayPort} self permanent`);
  }
}

function sameLease(a: Lease, b: Lease): boolean {
  return (
    a.subnet.base === b.subnet.base &&
    a.subnet.prefix === b.subnet.prefix &&
    a.vtepMac === b.vtepMac &&
    a.underlayAddr === b.underlayAddr &&
    a.underlayPort === b.underlayPort
  );
}
