/**
 * `trace` is the forwarding path, not a model of it: random clusters and random first
 * packets (from a pod, from the outside, from another node) are pushed through the real
 * stages with capturing ports and through `tracePacket`, and both must agree on the
 * verdict, the rewrite (addresses and ports as the packet leaves) and the egress. Plus
 * what the trace prints for the seed scenario, and that a trace changes no table.
 */
import test from 'ava';
import fc from 'fast-check';
import { IPPROTO, Ipv4View } from '../../src/packet/ipv4.js';
import { TcpView } from '../../src/packet/tcp.js';
import { UdpView } from '../../src/packet/udp.js';
import { VXLAN_HEADER_LEN } from '../../src/packet/vxlan.js';
import type { Cluster, Pod } from '../../src/cluster/model.js';
import { formatTrace, TRACE_DRAW, tracePacket, type TraceRequest, type TraceResult } from '../../src/node/trace.js';
import { announcedAddresses } from '../../src/node/services.js';
import { cluster as loadYaml } from '../cluster/helpers.js';
import { nextMac, tcpSyn, udpDatagram, vxlanFrom, VXLAN_PORT, wireCluster, type TestCluster, type TestNode } from '../helpers/datapath.js';

interface Shape {
  webReplicas: number;
  apiReplicas: number;
  localPolicy: boolean;
  denyWeb: boolean;
  affinity: boolean;
  /** loadBalancerSourceRanges 192.0.2.64/28 on web: some outside hosts (50-90) are in it, most not. */
  sourceRanges: boolean;
  /** web also answers at the external IP 192.0.2.150. */
  externalIP: boolean;
}

function yamlFor(s: Shape): string {
  return `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
metadata: {name: tr}
spec: {nodes: 3}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${s.webReplicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: ${s.apiReplicas}
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.1.80
  type: LoadBalancer
  externalTrafficPolicy: ${s.localPolicy ? 'Local' : 'Cluster'}
  ${s.affinity ? 'sessionAffinity: ClientIP' : ''}
  ${s.sourceRanges ? 'loadBalancerSourceRanges: [192.0.2.64/28]' : ''}
  ${s.externalIP ? 'externalIPs: [192.0.2.150]' : ''}
  selector: {app: web}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 80, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  clusterIP: 10.96.1.81
  selector: {app: api}
  ports: [{name: dns, protocol: UDP, port: 53, targetPort: 5353}, {name: http, protocol: TCP, port: 8080, targetPort: 80}]
${
  s.denyWeb
    ? `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-api}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}]}]
`
    : ''
}`;
}

const shapes = fc.record({
  webReplicas: fc.integer({ min: 0, max: 4 }),
  apiReplicas: fc.integer({ min: 0, max: 3 }),
  localPolicy: fc.boolean(),
  denyWeb: fc.boolean(),
  affinity: fc.boolean(),
  sourceRanges: fc.boolean(),
  externalIP: fc.boolean(),
});

type Source = { kind: 'pod'; index: number } | { kind: 'outside'; host: number } | { kind: 'node'; index: number };

const packets = fc.record({
  source: fc.oneof(
    fc.record({ kind: fc.constant('pod' as const), index: fc.nat(20) }),
    fc.record({ kind: fc.constant('outside' as const), host: fc.integer({ min: 50, max: 90 }) }),
    fc.record({ kind: fc.constant('node' as const), index: fc.nat(20) }),
  ),
  dst: fc.nat(40),
  port: fc.constantFrom(80, 53, 8080, 30080, 22, 443),
  proto: fc.constantFrom('tcp' as const, 'udp' as const),
  sport: fc.integer({ min: 1024, max: 65535 }),
  atNode: fc.nat(2),
});

/** Addresses worth sending to: every pod, every service address, nodes, the outside. */
function destinations(cluster: Cluster): number[] {
  const out = cluster.pods.map((p) => p.ip);
  for (const s of cluster.services) {
    if (s.clusterIP !== undefined) out.push(s.clusterIP);
    if (s.loadBalancerIngress !== undefined) out.push(s.loadBalancerIngress);
    out.push(...(s.externalIPs ?? []));
  }
  for (const n of cluster.nodes) out.push(n.externalIP, n.gateway);
  out.push(0xc0000263, 0x08080808, 0x0af40ffe);
  return out;
}

interface Seen {
  verdict: 'delivered' | 'other';
  egress?: string;
  packet?: { src: number; dst: number; sport: number; dport: number };
}

function tupleOf(frame: Buffer, at: number): Seen['packet'] {
  const ip = new Ipv4View();
  if (ip.check(frame, at) !== 0) return undefined;
  const l4 = ip.protocol === IPPROTO.TCP ? new TcpView() : new UdpView();
  if (l4.check(frame, ip.payloadOffset, ip.payloadLength) !== 0) return undefined;
  return { src: ip.srcAddr, dst: ip.dstAddr, sport: l4.srcPort, dport: l4.dstPort };
}

/** Every node has ARPed for the outside already, as a node that has been up a while has. */
function knowTheOutside(c: TestCluster): void {
  const hosts = [c.cluster.settings.externalGateway];
  for (let h = 2; h <= 254; h++) hosts.push(0xc0000200 + h);
  for (const n of c.nodes) {
    for (const h of hosts) {
      const owner = c.cluster.nodes.find((o) => o.externalIP === h);
      if (owner !== n.node) n.pipeline.neighbours.learn(h, owner?.externalMac ?? 0x02_00_c0_00_02_00 + (h & 0xff), 1_000_000_000);
    }
  }
}

function check(ok: boolean, what: string, label: string): void {
  if (!ok) {
    if (process.env.TRACE_DEBUG) console.error(`${what}\n${label}`);
    throw new Error(`${what}\n${label}`);
  }
}

/**
 * The TCP and UDP packets that left `node` after one injected frame (ICMP errors and ARP
 * the path makes besides, or that other nodes send back, are not the traced packet).
 */
function observe(c: TestCluster, node: TestNode): Seen[] {
  return observeAll(c, node).filter((s) => s.packet !== undefined);
}

function observeAll(c: TestCluster, node: TestNode): Seen[] {
  const seen: Seen[] = [];
  for (const [name, port] of node.ports) for (const f of port.take()) seen.push({ verdict: 'delivered', egress: `pod ${name}`, packet: tupleOf(f, 14) });
  for (const f of node.uplink.take()) if (f.readUInt16BE(12) === 0x0800) seen.push({ verdict: 'delivered', egress: 'uplink', packet: tupleOf(f, 14) });
  for (const d of c.hub.crossed.splice(0)) {
    if (d.from !== node.node.underlay) continue;
    const peer = c.cluster.nodes.find((n) => n.underlay === d.to)!;
    seen.push({ verdict: 'delivered', egress: `node ${peer.name}`, packet: tupleOf(d.data, VXLAN_HEADER_LEN + 14) });
  }
  return seen;
}

function requestFor(c: TestCluster, at: TestNode, source: Source, dst: number, dport: number, sport: number, proto: 'tcp' | 'udp'): TraceRequest | undefined {
  const local = c.cluster.pods.filter((p) => p.node === at.node.name);
  if (source.kind === 'pod') {
    if (local.length === 0) return undefined;
    return { from: { kind: 'pod', pod: local[source.index % local.length] }, dst, dport, sport, proto };
  }
  if (source.kind === 'outside') return { from: { kind: 'outside', addr: 0xc0000200 + source.host }, dst, dport, sport, proto };
  const others = c.cluster.nodes.filter((n) => n !== at.node);
  const peer = others[source.index % others.length];
  const theirs = c.cluster.pods.filter((p) => p.node === peer.name);
  const addr = theirs.length > 0 ? theirs[source.index % theirs.length].ip : peer.podCIDR.base;
  return { from: { kind: 'node', node: peer, addr }, dst, dport, sport, proto };
}

/** The same packet the trace makes, into the same node through its real ports. */
function inject(c: TestCluster, at: TestNode, req: TraceRequest): void {
  const build = req.proto === 'tcp' ? (spec: Parameters<typeof tcpSyn>[0]) => tcpSyn(spec, req.sport, req.dport) : (spec: Parameters<typeof tcpSyn>[0]) => udpDatagram(spec, req.sport, req.dport, 0);
  const from = req.from;
  if (from.kind === 'pod') {
    const pod: Pod = from.pod;
    c.port(pod).inject(build({ srcMac: pod.mac, dstMac: nextMac(c.cluster, pod, req.dst), src: pod.ip, dst: req.dst, id: 1 }));
  } else if (from.kind === 'outside') {
    at.uplink.inject(build({ srcMac: 0x02_00_c0_00_02_00 + (from.addr & 0xff), dstMac: at.node.externalMac, src: from.addr, dst: req.dst, id: 1 }));
  } else {
    const frame = build({ srcMac: 0, dstMac: 0, src: from.addr, dst: req.dst, id: 1 });
    c.hub.inject(at.node.underlay, from.node.underlay, VXLAN_PORT, vxlanFrom(c.cluster, from.node, at.node, frame));
  }
}

test('trace and the real path agree on verdict, rewrite and egress for random clusters and first packets', (t) => {
  fc.assert(
    fc.property(shapes, fc.array(packets, { minLength: 1, maxLength: 6 }), (shape, batch) => {
      const cluster = loadYaml(yamlFor(shape));
      // A fresh cluster per case: affinity pins and conntrack entries of the real path stay out of the trace's way.
      const c = wireCluster(cluster, { random: () => TRACE_DRAW });
      knowTheOutside(c);
      // Each node answers for the LoadBalancer and external addresses it speaks for, as the agent sets it up.
      for (const n of c.nodes) n.pipeline.announce(announcedAddresses(cluster, n.inputs.endpoints, n.node.name));
      const dsts = destinations(cluster);
      for (const p of batch) {
        const at = c.nodes[p.atNode % c.nodes.length];
        const req = requestFor(c, at, p.source as Source, dsts[p.dst % dsts.length], p.port, p.sport, p.proto);
        if (req === undefined) continue;
        const traced: TraceResult = tracePacket({ cluster, node: at.node, inputs: at.inputs, pipeline: at.pipeline }, req);
        c.drain();
        inject(c, at, req);
        const real = observe(c, at);
        const label = `${formatTrace(traced)}\nreal: ${JSON.stringify(real)}`;
        if (traced.verdict === 'delivered') {
          if (traced.egress === 'flood') {
            const others = [...at.ports.keys()].filter((k) => req.from.kind !== 'pod' || k !== `${req.from.pod.namespace}/${req.from.pod.name}`);
            check(real.length === others.length && real.every((r) => r.egress?.startsWith('pod ')), 'a flood reaches every other pod port', label);
          } else {
            check(real.length === 1, `trace delivered, the real path sent ${real.length} frames`, label);
            check(real[0].egress === traced.egress, 'the egress differs', label);
          }
          const a = real[0].packet!;
          const b = traced.packet!;
          check((a.src >>> 0) === (b.src >>> 0) && (a.dst >>> 0) === (b.dst >>> 0) && a.sport === b.sport && a.dport === b.dport, 'the rewrite differs', label);
        } else {
          // Dropped, rejected or answered by the node: nothing TCP/UDP leaves towards the destination.
          check(real.every((r) => r.packet === undefined || (r.packet.dst >>> 0) !== (req.dst >>> 0) || r.packet.dport !== req.dport), `trace ${traced.verdict}, the real path forwarded`, label);
        }
      }
      return true;
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test('a trace changes no table: conntrack, FDB, counters and drops are as they were', (t) => {
  const shape: Shape = { webReplicas: 3, apiReplicas: 1, localPolicy: false, denyWeb: true, affinity: true, sourceRanges: true, externalIP: true };
  const cluster = loadYaml(yamlFor(shape));
  const c = wireCluster(cluster, { random: () => TRACE_DRAW });
  const at = c.nodes[0];
  const before = { ct: at.pipeline.conntrack.size, counters: { ...at.pipeline.counters }, drops: Array.from(at.pipeline.drops), fdb: at.pipeline.fdb.size };
  const client = cluster.pods.find((p) => p.name === 'client')!;
  for (const dst of destinations(cluster)) {
    for (const dport of [80, 53, 8080]) tracePacket({ cluster, node: at.node, inputs: at.inputs, pipeline: at.pipeline }, { from: { kind: 'pod', pod: client }, dst, dport, sport: 40000, proto: 'tcp' });
  }
  t.deepEqual({ ct: at.pipeline.conntrack.size, counters: { ...at.pipeline.counters }, drops: Array.from(at.pipeline.drops), fdb: at.pipeline.fdb.size }, before);
  t.true(c.nodes.every((n) => n.ports.size === 0 || [...n.ports.values()].every((p) => p.sent.length === 0)), 'nothing was sent');
});

test('the seed scenario: client -> ClusterIP:80 shows the rules walked, the DNAT to a real backend, the route and the verdict', (t) => {
  const cluster = loadYaml(yamlFor({ webReplicas: 3, apiReplicas: 1, localPolicy: false, denyWeb: false, affinity: false, sourceRanges: false, externalIP: false }));
  const c = wireCluster(cluster, { random: () => TRACE_DRAW });
  const at = c.nodes[0];
  const client = cluster.pods.find((p) => p.name === 'client')!;
  const result = tracePacket({ cluster, node: at.node, inputs: at.inputs, pipeline: at.pipeline }, { from: { kind: 'pod', pod: client }, dst: 0x0a600150, dport: 80, sport: 41234, proto: 'tcp' });
  const text = formatTrace(result);
  t.is(result.verdict, 'delivered');
  t.regex(text, /-A KUBE-SERVICES -d 10\.96\.1\.80\/32 -p tcp .* -j KUBE-SVC-/);
  t.regex(text, /-j DNAT --to-destination 10\.244\.\d+\.\d+:80/);
  t.regex(text, /compiled service table: DNAT \(agrees with the rules\)/);
  t.regex(text, /leaves as: 10\.244\.\d+\.\d+:41234 -> 10\.244\.\d+\.\d+:80/);
  const backend = cluster.pods.find((p) => p.ip === result.packet!.dst)!;
  t.true(backend.name.startsWith('web-'), 'the DNAT picks a real backend');
  t.is(result.egress, backend.node === 'node-1' ? `pod default/${backend.name}` : `node ${backend.node}`);
});

test('from the outside and from a peer: the NodePort half and the cross-node half can be traced', (t) => {
  const cluster = loadYaml(yamlFor({ webReplicas: 1, apiReplicas: 1, localPolicy: false, denyWeb: false, affinity: false, sourceRanges: false, externalIP: false }));
  const c = wireCluster(cluster, { random: () => TRACE_DRAW });
  const web = cluster.pods.find((p) => p.name.startsWith('web-'))!;
  const entry = c.nodes.find((n) => n.node.name !== web.node)!;
  const nodePort = tracePacket({ cluster, node: entry.node, inputs: entry.inputs, pipeline: entry.pipeline }, { from: { kind: 'outside', addr: 0xc0000263 }, dst: entry.node.externalIP, dport: 30080, sport: 5555, proto: 'tcp' });
  t.is(nodePort.verdict, 'delivered');
  t.is(nodePort.egress, `node ${web.node}`);
  t.is(nodePort.packet!.dst >>> 0, web.ip, 'DNAT to the backend');
  t.is(nodePort.packet!.src >>> 0, entry.node.podCIDR.base, 'masqueraded to the node (externalTrafficPolicy Cluster)');
  const home = c.nodes.find((n) => n.node.name === web.node)!;
  const half = tracePacket(
    { cluster, node: home.node, inputs: home.inputs, pipeline: home.pipeline },
    { from: { kind: 'node', node: entry.node, addr: entry.node.podCIDR.base }, dst: web.ip, dport: 80, sport: nodePort.packet!.sport, proto: 'tcp' },
  );
  t.is(half.verdict, 'delivered');
  t.is(half.egress, `pod default/${web.name}`);
  const forged = tracePacket(
    { cluster, node: home.node, inputs: home.inputs, pipeline: home.pipeline },
    { from: { kind: 'node', node: entry.node, addr: 0xc0000263 }, dst: web.ip, dport: 80, sport: 1, proto: 'tcp' },
  );
  t.is(forged.dropReason, 'overlay-spoofed');
});

test("a load balancer's source ranges: trace shows the KUBE-FW- walk and the drop for a source outside them, the DNAT for one inside", (t) => {
  const cluster = loadYaml(yamlFor({ webReplicas: 1, apiReplicas: 1, localPolicy: false, denyWeb: false, affinity: false, sourceRanges: true, externalIP: true }));
  const c = wireCluster(cluster, { random: () => TRACE_DRAW });
  const lb = cluster.services.find((s) => s.name === 'web')!.loadBalancerIngress!;
  const at = c.nodes[0];
  // As the agent does: this node answers for the addresses it is the speaker of.
  at.pipeline.announce(announcedAddresses(cluster, at.inputs.endpoints, at.node.name));
  t.deepEqual(at.pipeline.tables.announced, new Set([lb, 0xc0000296]));
  const trace = (addr: number, dst: number) => tracePacket({ cluster, node: at.node, inputs: at.inputs, pipeline: at.pipeline }, { from: { kind: 'outside', addr }, dst, dport: 80, sport: 5555, proto: 'tcp' });
  const refused = trace(0xc0000232, lb);
  t.is(refused.dropReason, 'source-range-denied');
  const text = formatTrace(refused);
  t.regex(text, /-j KUBE-FW-/);
  t.regex(text, /KUBE-PROXY-FIREWALL .*-j DROP/);
  const allowed = trace(0xc0000242, lb);
  t.is(allowed.verdict, 'delivered', formatTrace(allowed));
  const viaExternalIP = trace(0xc0000232, 0xc0000296);
  t.is(viaExternalIP.verdict, 'delivered', 'the external IP has no source ranges');
});
