/**
 * Every stage on its own: bytes in, verdict and context out. Each test points a fresh
 * context at a frame, runs the stages before the one under test as the path would (so the
 * context holds what they decided), then that stage, and reads what it decided.
 */
import test from 'ava';
import { BROADCAST_MAC } from '../../src/packet/addr.js';
import { ARP_OP, ArpView } from '../../src/packet/arp.js';
import { EthernetView } from '../../src/packet/ethernet.js';
import { ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, ICMP_HOST_UNREACHABLE, ICMP_PORT_UNREACHABLE, ICMP_TIME_EXCEEDED, IcmpView } from '../../src/packet/icmp.js';
import { IPPROTO, Ipv4View } from '../../src/packet/ipv4.js';
import { Egress, FrameContext, Ingress, Verdict } from '../../src/datapath/context.js';
import { Drop } from '../../src/datapath/drops.js';
import { OVERLAY_PATH, POD_PATH, UPLINK_PATH } from '../../src/datapath/paths.js';
import type { Stage } from '../../src/datapath/stages/stage.js';
import type { PathTables } from '../../src/datapath/tables.js';
import { cluster as loadYaml, yaml } from '../cluster/helpers.js';
import { ARP_OP as OP, arpFrame, echoRequest, fragments, nextMac, tcpSyn, udpDatagram, vxlanFrom, VXLAN_PORT, wireCluster, type TestCluster } from '../helpers/datapath.js';

const YAML = yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: stages}
  spec: {nodes: 2}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: locked}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, labels: {app: client}}
  spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: web-1, labels: {app: web}}
  spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: web-2, labels: {app: web}}
  spec: {nodeName: node-2, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: locked, namespace: locked, labels: {app: locked}}
  spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: web}
  spec:
    clusterIP: 10.96.0.80
    selector: {app: web}
    ports: [{protocol: TCP, port: 80, targetPort: 80, nodePort: 30080}]
    type: NodePort
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: empty}
  spec:
    clusterIP: 10.96.0.81
    selector: {app: nobody}
    ports: [{protocol: TCP, port: 80}]
  ---
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny-all, namespace: locked}
  spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`;

const CLUSTER_IP = 0x0a600050; // 10.96.0.80
const EMPTY_IP = 0x0a600051;
const OUTSIDE = 0xc0000263; // 192.0.2.99

function setup(): TestCluster {
  return wireCluster(loadYaml(YAML), { random: () => 0.25 });
}

interface Walk {
  ctx: FrameContext;
  t: PathTables;
  verdict: Verdict;
}

/**
 * Runs `path` on a frame up to and including the stage named `upTo` (the first stage that
 * does not continue ends it early) and returns the context.
 */
function walkTo(c: TestCluster, node: number, path: readonly Stage[], upTo: string, frame: Buffer, enter: (ctx: FrameContext) => void): Walk {
  const t = c.nodes[node].pipeline.tables;
  const ctx = new FrameContext();
  ctx.drops = new Float64Array(64);
  ctx.random = () => 0.25;
  const ingress = path === POD_PATH ? Ingress.Pod : path === UPLINK_PATH ? Ingress.Uplink : Ingress.Overlay;
  ctx.begin(ingress, frame, 0, frame.length);
  ctx.nowNs = 1_000_000_000;
  enter(ctx);
  let verdict: Verdict = Verdict.Continue;
  for (const stage of path) {
    verdict = stage.run(ctx, t);
    if (verdict !== Verdict.Continue || stage.name === upTo) break;
  }
  return { ctx, t, verdict };
}

function fromPod(c: TestCluster, name: string, upTo: string, build: (spec: { srcMac: number; dstMac: number; src: number }) => Buffer, namespace = 'default'): Walk {
  const pod = c.pod(name, namespace);
  const slot = c.nodeOf(pod).pipeline.pods().find((p) => p.ip === pod.ip)!.slot;
  const node = c.nodes.indexOf(c.nodeOf(pod));
  return walkTo(c, node, POD_PATH, upTo, build({ srcMac: pod.mac, dstMac: 0, src: pod.ip }), (ctx) => (ctx.inSlot = slot));
}

const toward = (c: TestCluster, name: string, dst: number, namespace = 'default') => {
  const pod = c.pod(name, namespace);
  return { srcMac: pod.mac, dstMac: nextMac(c.cluster, pod, dst), src: pod.ip, dst };
};

// ---- pod-ingress ----------------------------------------------------------------------

test('pod-ingress: a good frame continues with its views pointed; spoofed MAC or IP, bad lengths and sums are dropped', (t) => {
  const c = setup();
  const web = c.pod('web-1');
  const ok = fromPod(c, 'client', 'pod-ingress', () => tcpSyn(toward(c, 'client', web.ip), 40000, 80));
  t.is(ok.verdict, Verdict.Continue);
  t.is(ok.ctx.l4, ok.ctx.tcp);
  t.is(ok.ctx.tcp.dstPort, 80);
  const spoofMac = fromPod(c, 'client', 'pod-ingress', () => tcpSyn({ ...toward(c, 'client', web.ip), srcMac: web.mac }, 40000, 80));
  t.is(spoofMac.ctx.drop, Drop.Spoofed);
  const spoofIp = fromPod(c, 'client', 'pod-ingress', () => tcpSyn({ ...toward(c, 'client', web.ip), src: web.ip }, 40000, 80));
  t.deepEqual([spoofIp.verdict, spoofIp.ctx.drop], [Verdict.Drop, Drop.Spoofed]);
  const truncated = fromPod(c, 'client', 'pod-ingress', () => tcpSyn(toward(c, 'client', web.ip), 40000, 80).subarray(0, 30));
  t.is(truncated.ctx.drop, Drop.Malformed);
  const badSum = fromPod(c, 'client', 'pod-ingress', () => {
    const f = tcpSyn(toward(c, 'client', web.ip), 40000, 80);
    f[24] ^= 0xff;
    return f;
  });
  t.is(badSum.ctx.drop, Drop.BadChecksum);
  const badTcp = fromPod(c, 'client', 'pod-ingress', () => {
    const f = tcpSyn(toward(c, 'client', web.ip), 40000, 80);
    f[46] = 0xf0; // data offset 60 in a 20-byte segment
    return f;
  });
  t.is(badTcp.ctx.drop, Drop.Malformed);
});

test('pod-ingress: ARP must name the pod itself as sender (MAC and IP); a probe from 0.0.0.0 may', (t) => {
  const c = setup();
  const client = c.pod('client');
  const web = c.pod('web-1');
  const own = fromPod(c, 'client', 'pod-ingress', () => arpFrame(client.mac, BROADCAST_MAC, OP.REQUEST, client.mac, client.ip, 0, web.ip));
  t.is(own.verdict, Verdict.Continue);
  const probe = fromPod(c, 'client', 'pod-ingress', () => arpFrame(client.mac, BROADCAST_MAC, OP.REQUEST, client.mac, 0, 0, client.ip));
  t.is(probe.verdict, Verdict.Continue);
  const claim = fromPod(c, 'client', 'pod-ingress', () => arpFrame(client.mac, BROADCAST_MAC, OP.REPLY, client.mac, web.ip, 0, web.ip));
  t.is(claim.ctx.drop, Drop.ArpSpoofed);
  const otherMac = fromPod(c, 'client', 'pod-ingress', () => arpFrame(client.mac, BROADCAST_MAC, OP.REQUEST, web.mac, client.ip, 0, web.ip));
  t.is(otherMac.ctx.drop, Drop.Spoofed);
});

// ---- arp ------------------------------------------------------------------------------

test('arp: a request for the gateway is answered in place with the bridge MAC; others go on to the bridge', (t) => {
  const c = setup();
  const client = c.pod('client');
  const node = c.cluster.nodes[0];
  const w = fromPod(c, 'client', 'arp', () => arpFrame(client.mac, BROADCAST_MAC, OP.REQUEST, client.mac, client.ip, 0, node.gateway));
  t.is(w.verdict, Verdict.Stolen);
  t.deepEqual([w.ctx.egress, w.ctx.egressSlot], [Egress.Pod, w.ctx.inSlot]);
  const arp = ArpView.checked(w.ctx.txBuf, w.ctx.txOffset + 14) as ArpView;
  t.deepEqual([arp.operation, arp.senderMac, arp.senderIp, arp.targetMac], [ARP_OP.REPLY, node.gatewayMac, node.gateway, client.mac]);
  const eth = EthernetView.checked(w.ctx.txBuf, w.ctx.txOffset) as EthernetView;
  t.deepEqual([eth.dstMac, eth.srcMac], [client.mac, node.gatewayMac]);
  const other = fromPod(c, 'client', 'arp', () => arpFrame(client.mac, BROADCAST_MAC, OP.REQUEST, client.mac, client.ip, 0, c.pod('web-1').ip));
  t.is(other.verdict, Verdict.Continue);
  const unicastReply = fromPod(c, 'client', 'arp', () => arpFrame(client.mac, node.gatewayMac, OP.REPLY, client.mac, client.ip, node.gatewayMac, node.gateway));
  t.is(unicastReply.ctx.drop, Drop.LocalUnhandled);
});

test('arp (uplink): the node answers for its address, learns the asker, and ignores other targets', (t) => {
  const c = setup();
  const node = c.cluster.nodes[0];
  const asker = 0x020000000099;
  const w = walkTo(c, 0, UPLINK_PATH, 'arp', arpFrame(asker, BROADCAST_MAC, OP.REQUEST, asker, OUTSIDE, 0, node.externalIP), () => {});
  t.deepEqual([w.verdict, w.ctx.egress], [Verdict.Stolen, Egress.UplinkAddressed]);
  const arp = ArpView.checked(w.ctx.txBuf, w.ctx.txOffset + 14) as ArpView;
  t.deepEqual([arp.operation, arp.senderMac, arp.senderIp], [ARP_OP.REPLY, node.externalMac, node.externalIP]);
  t.is(w.t.neighbours.lookup(OUTSIDE, 1_000_000_000), asker);
  const other = walkTo(c, 0, UPLINK_PATH, 'arp', arpFrame(asker, BROADCAST_MAC, OP.REQUEST, asker, OUTSIDE, 0, OUTSIDE + 1), () => {});
  t.deepEqual([other.verdict, other.ctx.egress], [Verdict.Stolen, Egress.None]);
});

// ---- uplink-ingress -------------------------------------------------------------------

test('uplink-ingress: only frames for the node MAC (or broadcast) and its address go further', (t) => {
  const c = setup();
  const node = c.cluster.nodes[0];
  const spec = { srcMac: 0x020000000099, dstMac: node.externalMac, src: OUTSIDE, dst: node.externalIP };
  t.is(walkTo(c, 0, UPLINK_PATH, 'uplink-ingress', tcpSyn(spec, 5555, 30080), () => {}).verdict, Verdict.Continue);
  t.is(walkTo(c, 0, UPLINK_PATH, 'uplink-ingress', tcpSyn({ ...spec, dstMac: 0x020000000042 }, 5555, 30080), () => {}).ctx.drop, Drop.NotForThisNode);
  t.is(walkTo(c, 0, UPLINK_PATH, 'uplink-ingress', tcpSyn({ ...spec, dst: OUTSIDE + 5 }, 5555, 30080), () => {}).ctx.drop, Drop.NotForThisNode);
});

// ---- bridge ---------------------------------------------------------------------------

test('bridge: gateway MAC is routed; a learned MAC is switched (IPv4 through netfilter); broadcast floods; back out the same port is dropped', (t) => {
  const c = setup();
  const client = c.pod('client');
  const web = c.pod('web-1');
  const routed = fromPod(c, 'client', 'bridge', () => tcpSyn(toward(c, 'client', CLUSTER_IP), 40000, 80));
  t.deepEqual([routed.verdict, routed.ctx.bridged], [Verdict.Continue, false]);
  // web-1 speaks first, so the FDB knows its port.
  fromPod(c, 'web-1', 'pod-ingress', () => arpFrame(web.mac, BROADCAST_MAC, OP.REQUEST, web.mac, web.ip, 0, client.ip));
  const switched = fromPod(c, 'client', 'bridge', () => tcpSyn(toward(c, 'client', web.ip), 40000, 80));
  t.deepEqual([switched.verdict, switched.ctx.bridged, switched.ctx.egress], [Verdict.Continue, true, Egress.Pod]);
  t.is(switched.ctx.egressSlot, c.nodes[0].pipeline.pods().find((p) => p.ip === web.ip)!.slot);
  const arp = fromPod(c, 'client', 'bridge', () => arpFrame(client.mac, BROADCAST_MAC, OP.REQUEST, client.mac, client.ip, 0, web.ip));
  t.deepEqual([arp.verdict, arp.ctx.egress], [Verdict.Egress, Egress.Flood]);
  const self = fromPod(c, 'client', 'bridge', () => tcpSyn({ ...toward(c, 'client', web.ip), dstMac: client.mac }, 40000, 80));
  t.is(self.ctx.drop, Drop.SamePort);
});

// ---- reassemble -----------------------------------------------------------------------

test('reassemble: the first fragments are held (stolen), the last completes the datagram in the context', (t) => {
  const c = setup();
  const web2 = c.pod('web-2');
  const dgram = udpDatagram({ ...toward(c, 'client', web2.ip), df: false, id: 77 }, 40000, 53, 2000);
  const [a, b] = fragments(dgram, [1424]);
  const first = fromPod(c, 'client', 'reassemble', () => a);
  t.deepEqual([first.verdict, first.ctx.egress], [Verdict.Stolen, Egress.None]);
  const last = fromPod(c, 'client', 'reassemble', () => b);
  t.is(last.verdict, Verdict.Continue);
  t.is(last.ctx.ip.totalLength, dgram.length - 14);
  t.false(last.ctx.ip.isFragment);
  t.is(last.ctx.fragmentSize, 1444);
  t.is(last.ctx.l4, last.ctx.udp);
  t.deepEqual(Buffer.from(last.ctx.buf.subarray(last.ctx.offset + 34, last.ctx.offset + last.ctx.length)), dgram.subarray(34));
});

// ---- local ----------------------------------------------------------------------------

test('local: echo to the gateway is answered; a UDP query to the DNS address goes to the responder; policy egress applies to it', (t) => {
  const c = setup();
  const node = c.cluster.nodes[0];
  const echo = fromPod(c, 'client', 'local', () => echoRequest(toward(c, 'client', node.gateway)));
  t.deepEqual([echo.verdict, echo.ctx.egress], [Verdict.Stolen, Egress.Pod]);
  const reply = Ipv4View.checked(echo.ctx.txBuf, echo.ctx.txOffset + 14) as Ipv4View;
  t.deepEqual([reply.srcAddr, reply.dstAddr], [node.gateway, c.pod('client').ip]);
  t.is((IcmpView.checked(reply.buf, reply.payloadOffset) as IcmpView).type, 0);

  const tables = c.nodes[0].pipeline.tables;
  const asked: number[] = [];
  tables.dns = {
    fromPod(query, offset, length, clientAddr, _port, out, outOffset) {
      asked.push(clientAddr);
      out.set(query.subarray(offset, offset + length), outOffset);
      return { action: 'answer', length };
    },
  };
  const dns = c.cluster.settings.dnsIP;
  const q = fromPod(c, 'client', 'local', () => udpDatagram(toward(c, 'client', dns), 33333, 53, 30));
  t.deepEqual([q.verdict, q.ctx.egress], [Verdict.Stolen, Egress.Pod]);
  t.deepEqual(asked, [c.pod('client').ip]);
  const answer = Ipv4View.checked(q.ctx.txBuf, q.ctx.txOffset + 14) as Ipv4View;
  t.deepEqual([answer.srcAddr, answer.dstAddr, answer.protocol], [dns, c.pod('client').ip, IPPROTO.UDP]);
  const denied = fromPod(c, 'locked', 'local', () => udpDatagram(toward(c, 'locked', dns, 'locked'), 33333, 53, 30), 'locked');
  t.is(denied.ctx.drop, Drop.PolicyDenied);
  t.is(asked.length, 1, 'a denied query never reaches the responder');
});

test('local (uplink): ping to the node address is answered out of the uplink with final MACs', (t) => {
  const c = setup();
  const node = c.cluster.nodes[0];
  const w = walkTo(c, 0, UPLINK_PATH, 'local', echoRequest({ srcMac: 0x020000000099, dstMac: node.externalMac, src: OUTSIDE, dst: node.externalIP }), () => {});
  t.deepEqual([w.verdict, w.ctx.egress], [Verdict.Stolen, Egress.UplinkAddressed]);
  const eth = EthernetView.checked(w.ctx.txBuf, w.ctx.txOffset) as EthernetView;
  t.deepEqual([eth.dstMac, eth.srcMac], [0x020000000099, node.externalMac]);
});

// ---- conntrack ------------------------------------------------------------------------

test('conntrack: a first packet is NEW; a known one is translated by its entry; an ICMP error about nothing is INVALID', (t) => {
  const c = setup();
  const first = fromPod(c, 'client', 'conntrack', () => tcpSyn(toward(c, 'client', CLUSTER_IP), 41000, 80));
  t.deepEqual([first.verdict, first.ctx.isNew, first.ctx.dstAddr, first.ctx.dstPort], [Verdict.Continue, true, CLUSTER_IP, 80]);
  // Through the real path once, so the entry exists; then conntrack alone translates.
  c.port(c.pod('client')).inject(tcpSyn(toward(c, 'client', CLUSTER_IP), 41000, 80));
  const again = fromPod(c, 'client', 'conntrack', () => tcpSyn(toward(c, 'client', CLUSTER_IP), 41000, 80));
  t.false(again.ctx.isNew);
  t.not(again.ctx.ip.dstAddr, CLUSTER_IP, 'DNAT applied from the entry');
  t.true([c.pod('web-1').ip, c.pod('web-2').ip].includes(again.ctx.ip.dstAddr));
  const quote = udpDatagram(toward(c, 'client', 0x0a0a0a0a), 1, 2, 0).subarray(14, 42);
  const error = echoRequest(toward(c, 'client', c.pod('web-1').ip), quote.length);
  quote.copy(error, 42);
  error[34] = ICMP_DEST_UNREACHABLE;
  error[35] = ICMP_PORT_UNREACHABLE;
  (IcmpView.checked(error, 34) as IcmpView).fillChecksum();
  const invalid = fromPod(c, 'client', 'conntrack', () => error);
  t.deepEqual([invalid.verdict, invalid.ctx.drop], [Verdict.Drop, Drop.CtInvalid]);
});

// ---- service-nat ----------------------------------------------------------------------

test('service-nat: a ClusterIP is DNATed to an endpoint; no ready endpoint rejects with port unreachable; what the outside sends to anything but a NodePort finds nothing listening', (t) => {
  const c = setup();
  const dnat = fromPod(c, 'client', 'service-nat', () => tcpSyn(toward(c, 'client', CLUSTER_IP), 42000, 80));
  t.is(dnat.verdict, Verdict.Continue);
  t.true([c.pod('web-1').ip, c.pod('web-2').ip].includes(dnat.ctx.dstAddr));
  t.is(dnat.ctx.dstPort, 80);
  t.is(dnat.ctx.reply.src, dnat.ctx.dstAddr | 0, 'the reply comes from the endpoint');
  const reject = fromPod(c, 'client', 'service-nat', () => tcpSyn(toward(c, 'client', EMPTY_IP), 42001, 80));
  t.deepEqual([reject.verdict, reject.ctx.drop, reject.ctx.egress], [Verdict.Drop, Drop.NoEndpoints, Egress.Pod]);
  const icmp = IcmpView.checked(reject.ctx.txBuf, reject.ctx.txOffset + 34) as IcmpView;
  t.deepEqual([icmp.type, icmp.code], [ICMP_DEST_UNREACHABLE, ICMP_PORT_UNREACHABLE]);
  const node = c.cluster.nodes[0];
  const outside = { srcMac: 0x020000000099, dstMac: node.externalMac, src: OUTSIDE, dst: node.externalIP };
  const nodePort = walkTo(c, 0, UPLINK_PATH, 'service-nat', tcpSyn(outside, 5555, 30080), () => {});
  t.is(nodePort.verdict, Verdict.Continue);
  t.true(nodePort.ctx.masquerade, 'externalTrafficPolicy Cluster masquerades');
  const closed = walkTo(c, 0, UPLINK_PATH, 'local', tcpSyn(outside, 5555, 22), () => {});
  t.is(closed.ctx.drop, Drop.LocalUnhandled, 'nothing listens on the node itself');
});

// ---- route ----------------------------------------------------------------------------

test('route: a local pod, another node, the outside; TTL 1 and an empty address get ICMP errors back', (t) => {
  const c = setup();
  const local = fromPod(c, 'client', 'route', () => tcpSyn(toward(c, 'client', c.pod('web-1').ip, 'default'), 1, 80));
  // web-1 is on the client's subnet: the client would switch it; force the routed case with the gateway MAC.
  const routedLocal = fromPod(c, 'client', 'route', () => tcpSyn({ ...toward(c, 'client', c.pod('web-1').ip), dstMac: c.cluster.nodes[0].gatewayMac }, 1, 80));
  t.true(local.ctx.bridged, 'a neighbour on the subnet is switched, not routed');
  t.deepEqual([routedLocal.ctx.egress, routedLocal.ctx.bridged], [Egress.Pod, false]);
  const far = fromPod(c, 'client', 'route', () => tcpSyn(toward(c, 'client', c.pod('web-2').ip), 2, 80));
  t.deepEqual([far.ctx.egress, far.ctx.egressPeer?.node], [Egress.Peer, 'node-2']);
  const out = fromPod(c, 'client', 'route', () => tcpSyn(toward(c, 'client', OUTSIDE), 3, 80));
  t.deepEqual([out.ctx.egress, out.ctx.nextHop], [Egress.Uplink, OUTSIDE]);
  const beyond = fromPod(c, 'client', 'route', () => tcpSyn(toward(c, 'client', 0x08080808), 4, 80));
  t.is(beyond.ctx.nextHop, c.cluster.settings.externalGateway);
  const ttl = fromPod(c, 'client', 'route', () => tcpSyn({ ...toward(c, 'client', c.pod('web-2').ip), ttl: 1 }, 5, 80));
  t.deepEqual([ttl.ctx.drop, ttl.ctx.egress], [Drop.TtlExceeded, Egress.Pod]);
  t.is((IcmpView.checked(ttl.ctx.txBuf, ttl.ctx.txOffset + 34) as IcmpView).type, ICMP_TIME_EXCEEDED);
  const empty = fromPod(c, 'client', 'route', () => tcpSyn({ ...toward(c, 'client', 0x0af401fe), dstMac: c.cluster.nodes[0].gatewayMac }, 6, 80));
  t.is(empty.ctx.drop, Drop.NoNeighbour);
  t.is((IcmpView.checked(empty.ctx.txBuf, empty.ctx.txOffset + 34) as IcmpView).code, ICMP_HOST_UNREACHABLE);
});

// ---- policy ---------------------------------------------------------------------------

test('policy: a new connection into or out of a default-deny namespace is dropped; others pass', (t) => {
  const c = setup();
  const locked = c.pod('locked', 'locked');
  const into = fromPod(c, 'client', 'policy', () => tcpSyn(toward(c, 'client', locked.ip), 1, 80));
  t.deepEqual([into.verdict, into.ctx.drop], [Verdict.Drop, Drop.PolicyDenied]);
  const outOf = fromPod(c, 'locked', 'policy', () => tcpSyn(toward(c, 'locked', c.pod('web-2').ip, 'locked'), 1, 80), 'locked');
  t.is(outOf.ctx.drop, Drop.PolicyDenied);
  const open = fromPod(c, 'client', 'policy', () => tcpSyn(toward(c, 'client', c.pod('web-2').ip), 1, 80));
  t.is(open.verdict, Verdict.Continue);
});

// ---- source-nat -----------------------------------------------------------------------

test('source-nat: traffic leaving the cluster is masqueraded to the uplink address and recorded in conntrack', (t) => {
  const c = setup();
  const node = c.cluster.nodes[0];
  const w = fromPod(c, 'client', 'source-nat', () => tcpSyn(toward(c, 'client', OUTSIDE), 43000, 443));
  t.is(w.verdict, Verdict.Continue);
  t.is(w.ctx.ip.srcAddr, node.externalIP);
  t.is(w.ctx.reply.dst, node.externalIP | 0);
  t.true(w.t.conntrack.size >= 1);
  const plain = fromPod(c, 'client', 'source-nat', () => tcpSyn(toward(c, 'client', c.pod('web-2').ip), 43001, 80));
  t.is(plain.ctx.ip.srcAddr, c.pod('client').ip, 'pod to pod keeps its source');
});

// ---- deliver, encap, to-uplink ----------------------------------------------------------

test('deliver / encap / to-uplink: MACs for the egress, TTL down by one; DF too big for the overlay gets frag-needed, without DF it is cut', (t) => {
  const c = setup();
  const node = c.cluster.nodes[0];
  const n2 = c.cluster.nodes[1];
  const web1 = c.pod('web-1');
  const delivered = fromPod(c, 'client', 'deliver', () => tcpSyn({ ...toward(c, 'client', web1.ip), dstMac: node.gatewayMac }, 1, 80));
  t.is(delivered.verdict, Verdict.Egress);
  const eth = EthernetView.checked(delivered.ctx.txBuf, delivered.ctx.txOffset) as EthernetView;
  t.deepEqual([eth.dstMac, eth.srcMac, delivered.ctx.ip.ttl], [web1.mac, node.gatewayMac, 63]);
  const encap = fromPod(c, 'client', 'encap', () => tcpSyn(toward(c, 'client', c.pod('web-2').ip), 2, 80));
  const inner = EthernetView.checked(encap.ctx.txBuf, encap.ctx.txOffset) as EthernetView;
  t.deepEqual([encap.verdict, inner.dstMac, inner.srcMac], [Verdict.Egress, n2.vtepMac, node.vtepMac]);
  const big = (df: boolean) => fromPod(c, 'client', 'encap', () => udpDatagram({ ...toward(c, 'client', c.pod('web-2').ip), df }, 3, 53, 1600));
  const tooBig = big(true);
  t.deepEqual([tooBig.ctx.drop, tooBig.ctx.egress], [Drop.TooBig, Egress.Pod]);
  const frag = IcmpView.checked(tooBig.ctx.txBuf, tooBig.ctx.txOffset + 34) as IcmpView;
  t.deepEqual([frag.type, frag.code], [ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED]);
  const cut = big(false);
  t.deepEqual([cut.verdict, cut.ctx.fragmentSize], [Verdict.Egress, 1450]);
  const up = fromPod(c, 'client', 'to-uplink', () => tcpSyn(toward(c, 'client', OUTSIDE), 4, 80));
  const upEth = EthernetView.checked(up.ctx.txBuf, up.ctx.txOffset) as EthernetView;
  t.deepEqual([up.verdict, up.ctx.egress, upEth.srcMac], [Verdict.Egress, Egress.Uplink, node.externalMac]);
});

// ---- decap ----------------------------------------------------------------------------

test("decap: VNI, peer address and port are checked; an inner source outside the peer's subnet is marked foreign", (t) => {
  const c = setup();
  const [n1, n2] = c.cluster.nodes;
  const web1 = c.pod('web-1');
  const inner = (src: number) => tcpSyn({ srcMac: 0, dstMac: 0, src, dst: web1.ip }, 1, 80);
  const run = (datagram: Buffer, port = VXLAN_PORT, addr = n2.underlay) =>
    walkTo(c, 0, OVERLAY_PATH, 'decap', datagram, (ctx) => {
      ctx.srcAddr = addr;
      ctx.srcPort = port;
    });
  const good = run(vxlanFrom(c.cluster, n2, n1, inner(c.pod('web-2').ip)));
  t.deepEqual([good.verdict, good.ctx.fromPeer?.node, good.ctx.foreignSource], [Verdict.Continue, 'node-2', false]);
  t.is(run(vxlanFrom(c.cluster, n2, n1, inner(c.pod('web-2').ip)), 4242).ctx.drop, Drop.UnknownPeer);
  t.is(run(vxlanFrom(c.cluster, n2, n1, inner(c.pod('web-2').ip)), VXLAN_PORT, 0x7f000001).ctx.drop, Drop.UnknownPeer);
  const wrongVni = vxlanFrom(c.cluster, n2, n1, inner(c.pod('web-2').ip));
  wrongVni[6] ^= 1;
  t.is(run(wrongVni).ctx.drop, Drop.WrongVni);
  t.true(run(vxlanFrom(c.cluster, n2, n1, inner(c.pod('client').ip))).ctx.foreignSource);
});

// ---- the whole path ---------------------------------------------------------------------

test('the stage lists are the life of a packet: every way in ends in deliver | encap | to-uplink', (t) => {
  const names = (p: readonly Stage[]) => p.map((s) => s.name);
  t.deepEqual(names(POD_PATH), ['pod-ingress', 'arp', 'bridge', 'reassemble', 'conntrack', 'service-nat', 'local', 'route', 'policy', 'source-nat', 'deliver', 'encap', 'to-uplink']);
  t.deepEqual(names(UPLINK_PATH).slice(0, 6), ['uplink-ingress', 'arp', 'reassemble', 'conntrack', 'service-nat', 'local']);
  t.deepEqual(names(OVERLAY_PATH).slice(0, 3), ['decap', 'reassemble', 'conntrack']);
});
