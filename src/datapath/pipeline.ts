/**
 * One node's forwarding path: what `cni0`, the node's netfilter hooks, its routing table
 * and `flannel.1` do in a real node, done on frames in userspace. The stages are in
 * ./stages, their order in ./paths.ts; this class owns the tables they read, walks each
 * received frame through its path and hands the outcome to the one transmit stage.
 *
 * A frame is walked in the receive slab: headers are rewritten in place, and the egress
 * port queues a reference to it there (native ports gather it at the batch's flush) or
 * copies it once. Nothing on this path allocates: one context is reused for every frame,
 * views are re-pointed, addresses are numbers, tables are typed arrays or number-keyed
 * maps, and every drop is a counter increment.
 *
 * Time comes in through `clock()` (ns), read once per batch, so tests drive the clock.
 * `dryRun` walks the same stages with a recorder and a transmit that sends nothing: that
 * is `podwire trace`, and there is no other model of the path.
 */
import { cidrContains, macBytes, macHigh, macLow } from '../packet/addr.js';
import type { DatagramBatch, Port, RxBatch } from '../port/port.js';
import type { Conntrack } from '../netfilter/conntrack.js';
import type { PolicyTables } from '../kube/policy.js';
import type { LiveServiceTable } from '../kube/service-table.js';
import type { Fdb } from '../l2/fdb.js';
import type { NeighbourTable } from '../l2/neighbours.js';
import type { OverlayPeers } from '../overlay/peers.js';
import { FrameContext, Ingress, Verdict, type PathCounters } from './context.js';
import { DefragDrop } from '../netfilter/defrag.js';
import { Drop, DROP_REASONS, DROP_TRANSPORTS, DropTransport } from './drops.js';
import { OVERLAY_PATH, POD_PATH, UPLINK_PATH } from './paths.js';
import type { FlowRecorder } from './flow-recorder.js';
import type { PathRecorder } from './recorder.js';
import { DNS_FRAME_HEADERS, frameDnsAnswer } from './dns-frame.js';
import { dropOfDefrag } from './stages/reassemble.js';
import type { Stage } from './stages/stage.js';
import { MAX_SLOTS, NO_POD, PathTables, type DnsAnswerer, type NodeIdentity, type PathOptions, type UplinkIdentity } from './tables.js';
import { PortTransmit, type FrameTap, type OverlayLink, type Transmit } from './transmit.js';

export { VXLAN_OVERHEAD, type DnsAnswerer, type NodeIdentity, type UplinkIdentity } from './tables.js';
export type { FrameTap, OverlayLink } from './transmit.js';
export type PipelineOptions = PathOptions;

/** What a dry run hands the walk: where the frame enters and who notes the decisions. */
export interface DryRun {
  ingress: Ingress;
  frame: Buffer;
  /** The pod port (Ingress.Pod) it enters by. */
  slot?: number;
  /** The underlay source (Ingress.Overlay). */
  srcAddr?: number;
  srcPort?: number;
  recorder: PathRecorder;
  transmit: Transmit;
  /** The endpoint draw, in [0, 1). */
  draw: number;
}

export class Pipeline {
  readonly tables: PathTables;
  private readonly ctx = new FrameContext();
  private readonly dry = new FrameContext();
  private readonly transmit = new PortTransmit();
  /** Told about the first internal error (the agent logs it); later ones are only counted. */
  onInternalError: ((err: unknown) => void) | undefined;

  constructor(
    readonly node: NodeIdentity,
    /** Nanoseconds on a monotonic clock: the dataplane's only notion of time. */
    readonly clock: () => number,
    options: PathOptions = {},
  ) {
    const t = new PathTables(node, options);
    this.tables = t;
    const ctx = this.ctx;
    ctx.random = t.random;
    ctx.counters = t.counters;
    ctx.drops = t.drops;
    ctx.dropTransports = t.dropTransports;
    ctx.flows = t.flows;
    const dry = this.dry;
    dry.dry = true;
    dry.drops = new Float64Array(DROP_REASONS.length);
    dry.dropTransports = new Float64Array(DROP_REASONS.length * DROP_TRANSPORTS);
  }

  // ---- the tables, for the agent -----------------------------------------------------

  get peers(): OverlayPeers {
    return this.tables.peers;
  }
  get fdb(): Fdb {
    return this.tables.fdb;
  }
  get neighbours(): NeighbourTable {
    return this.tables.neighbours;
  }
  get conntrack(): Conntrack {
    return this.tables.conntrack;
  }
  get drops(): Float64Array {
    return this.tables.drops;
  }
  get dropTransports(): Float64Array {
    return this.tables.dropTransports;
  }
  get counters(): PathCounters {
    return this.tables.counters;
  }
  get policy(): PolicyTables | undefined {
    return this.tables.policy;
  }
  set policy(policy: PolicyTables | undefined) {
    this.tables.policy = policy;
  }
  /** The node's flow events (observe); undefined when turned off. */
  get flows(): FlowRecorder | undefined {
    return this.tables.flows;
  }
  get services(): LiveServiceTable | undefined {
    return this.tables.services;
  }
  set services(services: LiveServiceTable | undefined) {
    this.tables.services = services;
  }
  get dns(): DnsAnswerer | undefined {
    return this.tables.dns;
  }
  set dns(dns: DnsAnswerer | undefined) {
    this.tables.dns = dns;
  }
  /** The node's own namespace on the pod network (PathTables.relayAddress). */
  get relayAddress(): number {
    return this.tables.relayAddress;
  }
  set relayAddress(addr: number) {
    this.tables.relayAddress = addr;
  }
  get tap(): FrameTap | undefined {
    return this.transmit.tap;
  }
  set tap(tap: FrameTap | undefined) {
    this.transmit.tap = tap;
    this.ctx.tap = tap;
  }
  /** Largest inner IPv4 packet the overlay carries whole. */
  get overlayIpMtu(): number {
    return this.tables.overlayIpMtu;
  }

  /** Attaches a pod's port; returns its slot (the capture interface and FDB port number). */
  addPod(name: string, ip: number, mac: number, port: Port): number {
    const t = this.tables;
    if (!cidrContains(this.node.subnet, ip)) throw new Error(`pod ${name}: ${ip} is outside the node's pod CIDR`);
    let slot = t.slots.findIndex((s) => s === undefined);
    if (slot < 0) slot = t.slots.length;
    if (slot >= MAX_SLOTS) throw new Error(`node ${this.node.name}: more than ${MAX_SLOTS} pods`);
    t.slots[slot] = { name, ip, mac, port, macBytes: macBytes(mac), macHigh: macHigh(mac), macLow: macLow(mac) };
    t.slotByHost[ip - this.node.subnet.base] = slot;
    t.floods.reset(slot, this.clock());
    port.start((batch) => this.receiveFromPod(slot, batch));
    return slot;
  }

  removePod(slot: number): void {
    const t = this.tables;
    const pod = t.slots[slot];
    if (pod === undefined) return;
    t.slots[slot] = undefined;
    // A replacement may already hold the address (added before this pod was removed): it keeps it.
    const host = pod.ip - this.node.subnet.base;
    if (t.slotByHost[host] === slot) t.slotByHost[host] = NO_POD;
    t.fdb.flushPort(slot);
    pod.port.close();
  }

  pods(): { slot: number; name: string; ip: number; mac: number; port: Port }[] {
    const out = [];
    const slots = this.tables.slots;
    for (let slot = 0; slot < slots.length; slot++) {
      const pod = slots[slot];
      if (pod !== undefined) out.push({ slot, name: pod.name, ip: pod.ip, mac: pod.mac, port: pod.port });
    }
    return out;
  }

  attachOverlay(link: OverlayLink): void {
    this.transmit.overlay = link;
    this.tables.overlayLinked = true;
    link.start((batch) => this.receiveFromOverlay(batch));
  }

  attachUplink(port: Port, id: UplinkIdentity): void {
    this.transmit.uplink = port;
    this.tables.uplink = id;
    this.tables.uplinkMacBytes = macBytes(id.mac);
    port.start((batch) => this.receiveFromUplink(batch));
  }

  /**
   * Sends TCP to the node's own addresses on these ports to the relay address (same port),
   * where the node's health server listens, as kube-proxy's listens on the node's addresses.
   */
  serveHealthChecks(ports: readonly number[]): void {
    const table = this.tables.healthPorts;
    table.fill(0);
    for (const port of ports) table[port] = 1;
  }

  /** Replaces the set of LoadBalancer addresses this node answers ARP for. */
  announce(addrs: readonly number[]): void {
    this.tables.announced = new Set(addrs);
  }

  /** Drops by reason name, with the datagrams the reassembly table discarded (timeouts, evictions). */
  dropCounts(): Record<string, number> {
    const counts = Float64Array.from(this.tables.drops);
    const discarded = this.tables.reassembly.stats.discarded;
    counts[dropOfDefrag(DefragDrop.Timeout)] += discarded[DefragDrop.Timeout];
    counts[dropOfDefrag(DefragDrop.Evicted)] += discarded[DefragDrop.Evicted] + discarded[DefragDrop.SourceLimit];
    const out: Record<string, number> = {};
    DROP_REASONS.forEach((r, i) => {
      if (counts[i] > 0) out[r.name] = counts[i];
    });
    return out;
  }

  /** Expires idle connections and unfinished datagrams, a bounded number per call (the agent ticks it). */
  reap(budget: number): number {
    const now = this.clock();
    // The cell too: a connection the reaper removes is told with the time it was found expired.
    this.tables.clock[0] = now;
    return this.tables.conntrack.expire(now, budget) + this.tables.reassembly.expire(now, budget);
  }

  // ---- receive -----------------------------------------------------------------------

  receiveFromPod(slot: number, batch: RxBatch): void {
    const t = this.tables;
    if (t.slots[slot] === undefined) return;
    const ctx = this.ctx;
    this.beginBatch(batch.buf, batch.slab);
    const offload = ctx.offload;
    const tap = this.transmit.tap;
    for (let i = 0; i < batch.count; i++) {
      const offset = batch.offsets[i];
      const length = batch.lengths[i];
      ctx.begin(Ingress.Pod, batch.buf, offset, length);
      ctx.inSlot = slot;
      offload.flags = batch.flags[i];
      offload.gsoType = batch.gsoType[i];
      offload.gsoSize = batch.gsoSize[i];
      offload.csumStart = batch.csumStart[i];
      offload.csumOffset = batch.csumOffset[i];
      try {
        if (tap !== undefined) tap.podFrame(slot, batch.buf, offset, length);
        walk(POD_PATH, ctx, t, this.transmit);
      } catch (err) {
        this.internalError(err);
      }
    }
    this.transmit.flush(t);
  }

  receiveFromUplink(batch: RxBatch): void {
    const t = this.tables;
    const ctx = this.ctx;
    this.beginBatch(batch.buf, batch.slab);
    const tap = this.transmit.tap;
    for (let i = 0; i < batch.count; i++) {
      ctx.begin(Ingress.Uplink, batch.buf, batch.offsets[i], batch.lengths[i]);
      ctx.clearOffload();
      try {
        if (tap !== undefined) tap.uplinkFrame(batch.buf, batch.offsets[i], batch.lengths[i]);
        walk(UPLINK_PATH, ctx, t, this.transmit);
      } catch (err) {
        this.internalError(err);
      }
    }
    this.transmit.flush(t);
  }

  receiveFromOverlay(batch: DatagramBatch): void {
    const t = this.tables;
    const ctx = this.ctx;
    this.beginBatch(batch.buf, batch.slab);
    for (let i = 0; i < batch.count; i++) {
      ctx.begin(Ingress.Overlay, batch.buf, batch.offsets[i], batch.lengths[i]);
      ctx.srcAddr = batch.addrs[i];
      ctx.srcPort = batch.ports[i];
      ctx.clearOffload();
      try {
        walk(OVERLAY_PATH, ctx, t, this.transmit);
      } catch (err) {
        this.internalError(err);
      }
    }
    this.transmit.flush(t);
  }

  /** The batch's clock, read once: in the context for the stages and in the tables' cell. */
  private beginBatch(buf: Buffer, slab: number): void {
    const now = this.clock();
    this.ctx.nowNs = now;
    this.tables.clock[0] = now;
    this.transmit.beginBatch(buf, slab);
  }

  /** Sends a DNS answer the responder produced later (a forwarded query's) to the pod that asked. */
  deliverDnsAnswer(clientAddr: number, clientPort: number, message: Uint8Array, length: number): void {
    const t = this.tables;
    const slot = t.podSlotOf(clientAddr);
    const ctx = this.ctx;
    if (slot === NO_POD || length > ctx.dnsFrame.length - DNS_FRAME_HEADERS) return;
    ctx.begin(Ingress.Local, ctx.dnsFrame, 0, 0);
    this.beginBatch(ctx.dnsFrame, 0);
    ctx.dnsFrame.set(message.subarray(0, length), DNS_FRAME_HEADERS);
    frameDnsAnswer(ctx, t, slot, clientPort, length);
    if (ctx.flows !== undefined) ctx.flows.dnsAnswer(ctx.dnsFrame, length);
    this.transmit.send(ctx, t);
    this.transmit.flush(t);
  }

  /**
   * Walks a made-up frame through the same stages without changing a table or sending
   * anything: conntrack is looked up but not written, the FDB learns nothing, the endpoint
   * draw is the caller's, and `run.transmit` receives what would be sent.
   */
  dryRun(run: DryRun): void {
    const ctx = this.dry;
    const t = this.tables;
    ctx.begin(run.ingress, run.frame, 0, run.frame.length);
    ctx.nowNs = this.clock();
    t.clock[0] = ctx.nowNs;
    ctx.inSlot = run.slot ?? -1;
    ctx.srcAddr = run.srcAddr ?? 0;
    ctx.srcPort = run.srcPort ?? 0;
    ctx.clearOffload();
    ctx.recorder = run.recorder;
    ctx.random = () => run.draw;
    ctx.counters = { ...t.counters };
    ctx.drops.fill(0);
    ctx.dropTransports.fill(0);
    const path = run.ingress === Ingress.Pod ? POD_PATH : run.ingress === Ingress.Uplink ? UPLINK_PATH : OVERLAY_PATH;
    walk(path, ctx, t, run.transmit);
    ctx.recorder = undefined;
  }

  /**
   * Nothing on the forwarding path throws by design; should a bug make it, the frame is
   * dropped and counted, and the node keeps forwarding instead of dying with its pods.
   */
  private internalError(err: unknown): void {
    const drops = this.tables.drops;
    drops[Drop.InternalError]++;
    if (drops[Drop.InternalError] !== 1) return;
    try {
      this.onInternalError?.(err);
    } catch {
      // A failing reporter must not cut the batch short: frames queued by reference
      // still have to be flushed before the slab is read into again.
    }
  }
}

/** Runs the frame in `ctx` through `stages`, then transmits what they decided. */
function walk(stages: readonly Stage[], ctx: FrameContext, t: PathTables, transmit: Transmit): void {
  let verdict: Verdict = Verdict.Continue;
  let at = 0;
  for (; at < stages.length; at++) {
    verdict = stages[at].run(ctx, t);
    if (verdict !== Verdict.Continue) break;
  }
  if (verdict === Verdict.Continue) verdict = ctx.dropped(Drop.InternalError);
  if (verdict === Verdict.Drop) {
    countDrop(ctx);
    if (ctx.flows !== undefined) ctx.flows.dropped(ctx, stages[Math.min(at, stages.length - 1)].name);
  } else if (verdict === Verdict.Egress && ctx.isNew && ctx.flows !== undefined) {
    // A new connection is news once, where it leaves: conntrack confirmed it in source NAT.
    ctx.flows.connection(ctx, stages[at].name);
  }
  if (ctx.recorder !== undefined) ctx.recorder.end(stages[Math.min(at, stages.length - 1)].name, verdict, ctx);
  transmit.send(ctx, t);
  if (ctx.tap !== undefined) ctx.tap.verdict?.(ctx, verdict);
}

/** A walked drop, by reason, and by reason and transport when the path had read the transport header. */
function countDrop(ctx: FrameContext): void {
  ctx.drops[ctx.drop]++;
  const l4 = ctx.l4;
  if (l4 === undefined) return;
  const transport = l4 === ctx.tcp ? DropTransport.Tcp : l4 === ctx.udp ? DropTransport.Udp : DropTransport.Icmp;
  ctx.dropTransports[ctx.drop * DROP_TRANSPORTS + transport]++;
}

