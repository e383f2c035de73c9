/**
 * Measures what the forwarding path allocates per frame, in a process of its own (run by
 * test/datapath/alloc.test.ts with a young generation large enough for the whole run): 200,000 frames cross two nodes (pod ->
 * bridge -> conntrack -> route -> VXLAN -> the other node -> pod), once pod to pod and once
 * through a ClusterIP (DNAT on an established connection), with ports and an overlay that
 * copy into preallocated slabs as the native ones do. A frame that allocated even one
 * small object would show as heap growth of tens of bytes a frame; a child process with
 * a young generation large enough for the whole run measures it.
 */
import { cidrContains } from '../../src/packet/addr.js';
import { TCP_ACK } from '../../src/packet/tcp.js';
import type { DatagramBatch, Port, PortStats, RxBatch, TxOffload } from '../../src/port/port.js';
import type { OverlayLink } from '../../src/overlay/link.js';
import { Pipeline } from '../../src/datapath/pipeline.js';
import { LiveServiceTable } from '../../src/kube/service-table.js';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { cluster as loadYaml, yaml } from '../cluster/helpers.js';
import { tcpSegment, udpDatagram } from './datapath.js';
import { LiveCapture } from '../../src/node/live-capture.js';
import { compileFilter } from '../../src/pcap/filter.js';
import { SplitClock } from '../../src/pcap/pcapng.js';

const BATCH = 64;

function rxBatch(size = 1 << 17): RxBatch {
  return {
    buf: Buffer.alloc(size),
    slab: 0,
    count: 0,
    offsets: new Uint32Array(BATCH),
    lengths: new Uint32Array(BATCH),
    flags: new Uint8Array(BATCH),
    gsoType: new Uint8Array(BATCH),
    gsoSize: new Uint16Array(BATCH),
    csumStart: new Uint16Array(BATCH),
    csumOffset: new Uint16Array(BATCH),
  };
}

/** A pod port that receives batches it is handed and counts what it is asked to send. */
class SlabPort implements Port {
  readonly offload = false;
  readonly stats: PortStats = { rxFrames: 0, rxBytes: 0, rxBatches: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxErrors: 0 };
  handler: ((batch: RxBatch) => void) | undefined;
  sent = 0;
  lastLength = 0;
  constructor(readonly name: string) {}
  start(handler: (batch: RxBatch) => void): void {
    this.handler = handler;
  }
  send(_frame: Uint8Array, _offset: number, length: number): boolean {
    this.sent++;
    this.lastLength = length;
    return true;
  }
  flush(): void {}
  close(): void {}
}

/** Two VTEPs joined by a preallocated slab: a send copies in, the flush delivers the batch. */
class SlabOverlay implements OverlayLink {
  readonly carriesSuperFrames = true;
  peer: SlabOverlay | undefined;
  private handler: ((batch: DatagramBatch) => void) | undefined;
  private readonly batch: DatagramBatch = {
    buf: Buffer.alloc(BATCH * 2048),
    slab: 0,
    count: 0,
    offsets: new Uint32Array(BATCH),
    lengths: new Uint32Array(BATCH),
    addrs: new Uint32Array(BATCH),
    ports: new Uint16Array(BATCH),
  };
  constructor(
    readonly addr: number,
    readonly port: number,
  ) {}
  start(handler: (batch: DatagramBatch) => void): void {
    this.handler = handler;
  }
  send(h: Uint8Array, ho: number, hl: number, f: Uint8Array, fo: number, fl: number, _addr: number, _port: number, _o: TxOffload): boolean {
    const peer = this.peer!;
    const b = peer.batch;
    const at = b.count * 2048;
    // By hand: a subarray per datagram would be this harness's own allocation.
    const out = b.buf;
    for (let i = 0; i < hl; i++) out[at + i] = h[ho + i];
    for (let i = 0; i < fl; i++) out[at + hl + i] = f[fo + i];
    b.offsets[b.count] = at;
    b.lengths[b.count] = hl + fl;
    b.addrs[b.count] = this.addr;
    b.ports[b.count] = this.port;
    b.count++;
    return true;
  }
  flush(): void {
    const peer = this.peer!;
    if (peer.batch.count === 0) return;
    peer.handler!(peer.batch);
    peer.batch.count = 0;
  }
  close(): void {}
}

const YAML = yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: alloc}
  spec: {nodes: 2}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client}
  spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: server, labels: {app: server}}
  spec: {nodeName: node-2, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: server}
  spec: {clusterIP: 10.96.7.7, selector: {app: server}, ports: [{protocol: TCP, port: 80}]}
`;

function twoNodes() {
  const cluster = loadYaml(YAML);
  const endpoints = computeEndpoints(cluster, new Map(cluster.pods.map((p) => [`${p.namespace}/${p.name}`, true])));
  let now = 1e9;
  const links = cluster.nodes.map((n) => new SlabOverlay(n.underlay, 4789));
  links[0].peer = links[1];
  links[1].peer = links[0];
  const ports = new Map<string, SlabPort>();
  const pipelines = cluster.nodes.map((node, i) => {
    const p = new Pipeline(
      { name: node.name, subnet: node.podCIDR, clusterCidr: cluster.settings.podCIDR, gatewayIp: node.gateway, gatewayMac: node.gatewayMac, vtepMac: node.vtepMac, vni: cluster.settings.vni, underlayMtu: 1500 },
      () => now,
      { conntrackMax: 65_536, random: () => 0.5 },
    );
    const other = cluster.nodes[1 - i];
    p.peers.add({ node: other.name, subnet: other.podCIDR, vtepMac: other.vtepMac, underlayAddr: other.underlay, underlayPort: 4789 });
    p.attachOverlay(links[i]);
    for (const pod of cluster.pods.filter((x) => x.node === node.name)) {
      const port = new SlabPort(pod.name);
      p.addPod(pod.name, pod.ip, pod.mac, port);
      ports.set(pod.name, port);
    }
    p.services = new LiveServiceTable({ cluster, endpoints, nodeName: node.name, nodeAddress: node.externalIP });
    return p;
  });
  const client = cluster.pods.find((p) => p.name === 'client')!;
  const server = cluster.pods.find((p) => p.name === 'server')!;
  const gateway = cluster.nodes.find((n) => cidrContains(n.podCIDR, client.ip))!.gatewayMac;
  const serverGateway = cluster.nodes.find((n) => cidrContains(n.podCIDR, server.ip))!.gatewayMac;
  return { pipelines, ports, client, server, gateway, serverGateway, tick: () => (now += 1e6) };
}

/**
 * `podwire capture --pod client` on node-1's path, as the node runs it: a LiveCapture on
 * the tap, its buffer taken every 64 batches (the stream takes it every 20 ms: about 4,000
 * frames at 200k pps).
 */
function captureClient(pipeline: Pipeline): () => void {
  const capture = new LiveCapture({
    node: { name: 'node-1', underlayAddr: 1, underlayPort: 4789, vni: 1 },
    selection: { pod: 'client' },
    podAt: (slot) => pipeline.tables.slots[slot],
    matcher: compileFilter(''),
    clock: new SplitClock(1_700_000_000_000_000_000n, () => pipeline.tables.clock[0]),
  });
  pipeline.tap = capture;
  let batches = 0;
  return () => {
    if (++batches % 64 === 0) capture.take();
  };
}

/** Fills `batch` with `count` copies of `frame` and hands it to `port` `rounds` times. */
function pump(port: SlabPort, batch: RxBatch, frame: Buffer, rounds: number, tick: () => void): void {
  for (let i = 0; i < BATCH; i++) {
    batch.buf.set(frame, i * 2048);
    batch.offsets[i] = i * 2048;
    batch.lengths[i] = frame.length;
  }
  batch.count = BATCH;
  for (let r = 0; r < rounds; r++) {
    // The walk rewrites frames in place (TTL, NAT): lay them down again, as a port's read would.
    for (let i = 0; i < BATCH; i++) batch.buf.set(frame, i * 2048);
    port.handler!(batch);
    tick();
  }
}

/**
 * Two nodes with a warmed path for `kind` (UDP pod to pod, or TCP on an established
 * connection through the ClusterIP), and `run(rounds)` sending that many batches more.
 */
function warmedPath(kind: 'udp' | 'tcp', warmRounds: number, captured = false): (rounds: number) => void {
  const nodes = twoNodes();
  const { ports, client, server, gateway, serverGateway } = nodes;
  const streamed = captured ? captureClient(nodes.pipelines[0]) : () => undefined;
  const tick = () => {
    nodes.tick();
    streamed();
  };
  const clientPort = ports.get('client')!;
  const serverPort = ports.get('server')!;
  const toService = { srcMac: client.mac, dstMac: gateway, src: client.ip, dst: 0x0a600707 };
  const batch = rxBatch();
  // An established connection through the service: SYN, SYN-ACK, then data segments.
  pump(clientPort, batch, tcpSegment(toService, 41000, 80, 0x02, 1, 0), 1, tick);
  pump(serverPort, rxBatch(), tcpSegment({ srcMac: server.mac, dstMac: serverGateway, src: server.ip, dst: client.ip }, 80, 41000, 0x12, 1, 2), 1, tick);
  const frame =
    kind === 'udp'
      ? udpDatagram({ srcMac: client.mac, dstMac: gateway, src: client.ip, dst: server.ip, df: true }, 40000, 9000, 22)
      : tcpSegment(toService, 41000, 80, TCP_ACK, 2, 1, 64);
  // Warm up: optimised code, inline caches and the tables' first touches allocate once.
  pump(clientPort, batch, frame, warmRounds, tick);
  return (rounds) => {
    const sent = serverPort.sent;
    pump(clientPort, batch, frame, rounds, tick);
    if (serverPort.sent - sent !== rounds * BATCH) throw new Error(`only ${serverPort.sent - sent} of ${rounds * BATCH} frames reached the server`);
  };
}

/**
 * The least of five measurements of `what` (per frame) around `run(rounds)`: on a busy
 * machine the optimising compiler runs late (it compiles in the background), and code still
 * in a lower tier boxes what optimised code keeps in registers.
 */
function leastOfFive(run: (rounds: number) => void, rounds: number, what: () => () => number): number {
  let least = Infinity;
  for (let m = 0; m < 5; m++) {
    const measured = what();
    run(rounds);
    least = Math.min(least, measured() / (rounds * BATCH));
  }
  return least;
}

/** Heap bytes per frame, both nodes' walks together (run with a young generation that holds the whole run). */
export function bytesPerFrame(kind: 'udp' | 'tcp', warmRounds: number, rounds: number): number {
  return leastOfFive(warmedPath(kind, warmRounds), rounds, () => {
    const before = process.memoryUsage().heapUsed;
    return () => process.memoryUsage().heapUsed - before;
  });
}

/** CPU nanoseconds per frame, both nodes' walks together (for side-by-side runs of two builds). */
export function cpuPerFrame(kind: 'udp' | 'tcp', warmRounds: number, rounds: number): number {
  return leastOfFive(warmedPath(kind, warmRounds), rounds, cpuNs);
}

function cpuNs(): () => number {
  const before = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(before);
    return (used.user + used.system) * 1000;
  };
}

if (process.argv[2] === 'cpu') {
  const udp = cpuPerFrame('udp', 3000, 1000);
  const tcp = cpuPerFrame('tcp', 3000, 1000);
  process.stdout.write(`${JSON.stringify({ udpNs: udp, tcpNs: tcp })}\n`);
}

if (process.argv[2] === 'cpu-captured') {
  // Alternated, so that the machine's drift falls on both alike.
  const plain: number[] = [];
  const captured: number[] = [];
  for (let i = 0; i < 3; i++) {
    plain.push(cpuPerFrame('udp', 3000, 1000));
    captured.push(leastOfFive(warmedPath('udp', 3000, true), 1000, cpuNs));
  }
  const least = (xs: number[]) => Math.min(...xs);
  process.stdout.write(`${JSON.stringify({ udpNs: least(plain), udpCapturedNs: least(captured), ratio: least(captured) / least(plain) })}\n`);
}

if (process.argv[2] === 'measure') {
  const udp = bytesPerFrame('udp', 3000, 400);
  const tcp = bytesPerFrame('tcp', 3000, 400);
  process.stdout.write(`${JSON.stringify({ udp, tcp })}\n`);
}
