/**
 * The flow events the forwarding path writes, frames in and ring records out: per
 * connection and per drop, never per forwarded packet; a new connection with the NAT it
 * got; policy verdicts and denials with their direction; drops rate-limited per reason so
 * that a flood keeps the other events; ends told once; DNS queries and answers; nothing
 * from a dry run.
 */
import test from 'ava';
import dnsPacket from 'dns-packet';
import { emitEthernet, ETHERNET_HEADER_LEN, ETHERTYPE } from '../../src/packet/ethernet.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN } from '../../src/packet/ipv4.js';
import { emitUdp, UDP_HEADER_LEN } from '../../src/packet/udp.js';
import { TCP_ACK, TCP_FIN } from '../../src/packet/tcp.js';
import { Drop } from '../../src/datapath/drops.js';
import { Egress, Ingress } from '../../src/datapath/context.js';
import { EndCause, FlowFlag, FlowKind, type FlowRing } from '../../src/datapath/flow-ring.js';
import { STAGE_NAMES } from '../../src/datapath/recorder.js';
import type { DnsAnswerer, Pipeline } from '../../src/datapath/pipeline.js';
import type { Pod } from '../../src/cluster/model.js';
import { cluster as loadYaml, yaml } from '../cluster/helpers.js';
import { ARP_OP, arpFrame, nextMac, tcpSegment, tcpSyn, udpDatagram, wireCluster, type TestCluster } from '../helpers/datapath.js';

const YAML = yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: flows}
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
  metadata: {name: vault, namespace: locked, labels: {app: vault}}
  spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: open, namespace: locked, labels: {app: open}}
  spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: web}
  spec: {clusterIP: 10.96.5.5, selector: {app: web}, ports: [{protocol: TCP, port: 80}]}
  ---
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: default-deny, namespace: locked}
  spec: {podSelector: {}, policyTypes: [Ingress]}
  ---
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: allow-open, namespace: locked}
  spec:
    podSelector: {matchLabels: {app: open}}
    ingress: [{from: [{namespaceSelector: {}}], ports: [{protocol: TCP, port: 80}]}]
`;

const VIP = 0x0a600505;

interface Event {
  kind: number;
  reason: number;
  stage: string | undefined;
  flags: number;
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  origDst: number;
  origDport: number;
  egress: number;
  ingress: number;
}

/** The ring's events, oldest first, as plain records. */
function events(ring: FlowRing): Event[] {
  const out: Event[] = [];
  for (let seq = ring.oldest; seq < ring.written; seq++) {
    const i = ring.slotOf(seq);
    out.push({
      kind: ring.kind[i],
      reason: ring.reason[i],
      stage: STAGE_NAMES[ring.stage[i]],
      flags: ring.flags[i],
      proto: ring.proto[i],
      src: ring.src[i] >>> 0,
      dst: ring.dst[i] >>> 0,
      sport: ring.sport[i],
      dport: ring.dport[i],
      origDst: ring.origDst[i] >>> 0,
      origDport: ring.origDport[i],
      egress: ring.egress[i],
      ingress: ring.ingress[i],
    });
  }
  return out;
}

function ringOf(p: Pipeline): FlowRing {
  return p.flows!.ring;
}

function from(tc: TestCluster, pod: Pod, dst: number) {
  return { srcMac: pod.mac, dstMac: nextMac(tc.cluster, pod, dst), src: pod.ip, dst };
}

function setup(options: Parameters<typeof wireCluster>[1] = {}) {
  const cluster = loadYaml(YAML);
  // The first draw picks the first endpoint: web-1, on the client's node.
  const tc = wireCluster(cluster, { random: () => 0, ...options });
  const node1 = tc.nodes[0].pipeline;
  return { tc, cluster, node1, client: tc.pod('client'), web1: tc.pod('web-1'), web2: tc.pod('web-2') };
}

test('a new connection through a ClusterIP: its DNAT, then the connection where it leaves; its later packets write nothing', (t) => {
  const { tc, node1, client, web1 } = setup();
  tc.port(client).inject(tcpSyn(from(tc, client, VIP), 41000, 80));
  const [nat, conn] = events(ringOf(node1));
  t.is(events(ringOf(node1)).length, 2);
  t.like(nat, { kind: FlowKind.Translation, stage: 'source-nat', proto: IPPROTO.TCP, src: client.ip, sport: 41000, dst: web1.ip, dport: 80, origDst: VIP, origDport: 80 });
  t.true((nat.flags & FlowFlag.Dnat) !== 0 && (nat.flags & FlowFlag.Snat) === 0);
  t.like(conn, { kind: FlowKind.Connection, stage: 'deliver', egress: Egress.Pod, ingress: Ingress.Pod, src: client.ip, dst: web1.ip, dport: 80 });
  t.true((conn.flags & FlowFlag.ReplyKnown) !== 0 && (conn.flags & FlowFlag.Reply) === 0);

  // The reply and the client's next segments are an established connection: no news.
  tc.port(web1).inject(tcpSegment(from(tc, web1, client.ip), 80, 41000, 0x12, 5000, 1001));
  for (let i = 0; i < 10; i++) tc.port(client).inject(tcpSegment(from(tc, client, VIP), 41000, 80, TCP_ACK, 1001 + i, 5001, 10));
  t.is(ringOf(node1).written, 2);
});

test('a connection to another node leaves by the overlay; the node it arrives at writes its own', (t) => {
  const { tc, node1, client, web2 } = setup();
  tc.port(client).inject(tcpSyn(from(tc, client, web2.ip), 42000, 80));
  t.like(events(ringOf(node1))[0], { kind: FlowKind.Connection, stage: 'encap', egress: Egress.Peer, dst: web2.ip });
  t.like(events(ringOf(tc.nodes[1].pipeline))[0], { kind: FlowKind.Connection, stage: 'deliver', ingress: Ingress.Overlay, src: client.ip, dst: web2.ip });
});

test('NetworkPolicy: a denial and its drop name the direction; an allowed connection of an isolated pod is a verdict, one of a pod no policy selects is not', (t) => {
  const { tc, node1, client, web1 } = setup();
  const vault = tc.pod('vault', 'locked');
  const open = tc.pod('open', 'locked');
  tc.port(client).inject(tcpSyn(from(tc, client, vault.ip), 43000, 80));
  const [verdict, dropped] = events(ringOf(node1));
  t.like(verdict, { kind: FlowKind.PolicyVerdict, stage: 'policy', src: client.ip, dst: vault.ip, dport: 80 });
  t.is(verdict.flags & (FlowFlag.Allowed | FlowFlag.Ingress | FlowFlag.Egress), FlowFlag.Ingress);
  t.like(dropped, { kind: FlowKind.Drop, reason: Drop.PolicyDenied, stage: 'policy', src: client.ip, dst: vault.ip });
  t.true((dropped.flags & FlowFlag.Ingress) !== 0);

  tc.port(client).inject(tcpSyn(from(tc, client, open.ip), 43001, 80));
  const allowed = events(ringOf(node1)).slice(2);
  t.deepEqual(allowed.map((e) => e.kind), [FlowKind.PolicyVerdict, FlowKind.Connection]);
  t.is(allowed[0].flags & (FlowFlag.Allowed | FlowFlag.Ingress), FlowFlag.Allowed | FlowFlag.Ingress);

  const before = ringOf(node1).written;
  tc.port(client).inject(tcpSyn(from(tc, client, web1.ip), 43002, 80));
  t.deepEqual(events(ringOf(node1)).slice(before - ringOf(node1).oldest).map((e) => e.kind), [FlowKind.Connection], 'web-1 is not isolated: no verdict');
});

test('a flood of one drop reason is rate-limited and counted: the connection events before and after stay in the ring', (t) => {
  const { tc, node1, client, web1 } = setup({ flows: { capacity: 64, dropRate: 10, dropBurst: 20 } });
  tc.setTime(1e9);
  tc.port(client).inject(tcpSyn(from(tc, client, web1.ip), 44000, 80));
  const spoofed = tcpSyn({ ...from(tc, client, web1.ip), src: 0x0a0a0a0a }, 44001, 80);
  for (let i = 0; i < 500; i++) tc.port(client).inject(spoofed);
  tc.port(client).inject(tcpSyn(from(tc, client, web1.ip), 44002, 80));
  const ring = ringOf(node1);
  const all = events(ring);
  t.is(all.filter((e) => e.kind === FlowKind.Drop).length, 20, 'the burst, then nothing');
  t.is(node1.flows!.drops.suppressed[Drop.Spoofed], 480);
  t.deepEqual(all.filter((e) => e.kind === FlowKind.Connection).map((e) => e.sport), [44000, 44002]);
  t.like(all.find((e) => e.kind === FlowKind.Drop), { reason: Drop.Spoofed, stage: 'pod-ingress', src: 0x0a0a0a0a });
  // A second later the bucket has refilled by the rate.
  tc.setTime(2e9);
  for (let i = 0; i < 100; i++) tc.port(client).inject(spoofed);
  t.is(events(ring).filter((e) => e.kind === FlowKind.Drop).length, 30);
});

test('a connection ends once: at its first FIN, not again at the peer\'s FIN or when conntrack removes it', (t) => {
  const { tc, node1, client, web1 } = setup();
  const c = from(tc, client, web1.ip);
  const s = from(tc, web1, client.ip);
  tc.port(client).inject(tcpSyn(c, 45000, 80));
  tc.port(web1).inject(tcpSegment(s, 80, 45000, 0x12, 5000, 1001));
  tc.port(client).inject(tcpSegment(c, 45000, 80, TCP_ACK, 1001, 5001));
  tc.port(web1).inject(tcpSegment(s, 80, 45000, TCP_FIN | TCP_ACK, 5001, 1001));
  tc.port(client).inject(tcpSegment(c, 45000, 80, TCP_FIN | TCP_ACK, 1001, 5002));
  tc.port(web1).inject(tcpSegment(s, 80, 45000, TCP_ACK, 5002, 1002));
  const ends = events(ringOf(node1)).filter((e) => e.kind === FlowKind.ConnectionEnd);
  t.is(ends.length, 1);
  t.like(ends[0], { reason: EndCause.Closed, stage: 'conntrack', src: client.ip, dst: web1.ip, sport: 45000, dport: 80 });
  t.true((ends[0].flags & FlowFlag.Reply) !== 0, 'the server closed first: a reply');
  tc.setTime(1e9 + 200e9);
  node1.reap(100_000);
  t.is(node1.conntrack.size, 0);
  t.is(events(ringOf(node1)).filter((e) => e.kind === FlowKind.ConnectionEnd).length, 1);
});

test('a connection conntrack removes without a FIN (a UDP flow that expired) ends by the reaper', (t) => {
  const { tc, node1, client, web1 } = setup();
  tc.port(client).inject(udpDatagram(from(tc, client, web1.ip), 46000, 53));
  tc.setTime(1e9 + 31e9);
  node1.reap(100_000);
  const end = events(ringOf(node1)).find((e) => e.kind === FlowKind.ConnectionEnd);
  t.like(end, { reason: EndCause.Expired, proto: IPPROTO.UDP, src: client.ip, dst: web1.ip, sport: 46000, dport: 53, stage: undefined });
  t.is(ringOf(node1).time[ringOf(node1).slotOf(ringOf(node1).written - 1)], 1e9 + 31e9, 'told with the time the reaper found it');
});

/** A pod's UDP query to the cluster DNS address. */
function dnsQuery(tc: TestCluster, pod: Pod, name: string, sport: number): Buffer {
  const dnsIp = tc.cluster.settings.dnsIP;
  const payload = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  const frame = Buffer.alloc(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + payload.length);
  const spec = from(tc, pod, dnsIp);
  emitEthernet({ dstMac: spec.dstMac, srcMac: spec.srcMac, ethertype: ETHERTYPE.IPV4 }, frame, 0);
  const l4Length = UDP_HEADER_LEN + payload.length;
  emitIpv4({ src: pod.ip, dst: dnsIp, protocol: IPPROTO.UDP, ttl: 64, payloadLength: l4Length, dscp: 0, ecn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 }, frame, 14);
  payload.copy(frame, 42);
  emitUdp({ srcPort: sport, dstPort: 53 }, frame, 34, payload.length, { src: pod.ip, dst: dnsIp });
  return frame;
}

/** Answers like the cluster DNS: NXDOMAIN for names under `missing`, two A records otherwise. */
const answerer: DnsAnswerer = {
  fromPod(query, offset, length, _clientAddr, _clientPort, out, outOffset) {
    const q = dnsPacket.decode(Buffer.from(query.subarray(offset, offset + length)));
    const name = q.questions![0].name;
    const missing = name.startsWith('missing');
    const answer = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: missing ? 3 : 0,
      questions: q.questions,
      answers: missing ? [] : [{ type: 'A', name, ttl: 30, data: '10.96.5.5' }, { type: 'A', name, ttl: 20, data: '10.96.5.6' }],
    });
    out.set(answer, outOffset);
    return { action: 'answer', length: answer.length };
  },
};

test('a pod\'s DNS query and the answer it gets: name, type, rcode, addresses and the smallest TTL', (t) => {
  const { tc, node1, client } = setup();
  node1.dns = answerer;
  tc.port(client).inject(dnsQuery(tc, client, 'web.default.svc.cluster.local', 41234));
  tc.port(client).inject(dnsQuery(tc, client, 'missing.default.svc.cluster.local', 41235));
  const ring = ringOf(node1);
  const kinds = events(ring).map((e) => e.kind);
  t.deepEqual(kinds, [FlowKind.DnsRequest, FlowKind.DnsResponse, FlowKind.DnsRequest, FlowKind.DnsResponse]);
  const slot = (k: number) => ring.slotOf(ring.oldest + k);
  const name = (k: number) => Buffer.from(ring.dnsName.subarray(slot(k) * 255, slot(k) * 255 + ring.dnsNameLength[slot(k)]));
  t.deepEqual(name(0), Buffer.from('\x03web\x07default\x03svc\x07cluster\x05local\x00', 'latin1'));
  t.is(ring.dnsQtype[slot(0)], 1);
  const answer = events(ring)[1];
  t.like(answer, { src: tc.cluster.settings.dnsIP, dst: client.ip, sport: 53, dport: 41234 });
  t.is(answer.flags & (FlowFlag.Reply | FlowFlag.ReplyKnown), FlowFlag.Reply | FlowFlag.ReplyKnown);
  t.is(ring.dnsRcode[slot(1)], 0);
  t.is(ring.dnsTtl[slot(1)], 20);
  t.deepEqual([...ring.dnsAddresses.subarray(slot(1) * 8, slot(1) * 8 + ring.dnsAddressCount[slot(1)])].map((a) => a >>> 0), [0x0a600505, 0x0a600506]);
  t.is(ring.dnsRcode[slot(3)], 3);
  t.is(ring.dnsAddressCount[slot(3)], 0);
  t.is(ring.dnsTtl[slot(3)], 0xffffffff);
});

test('a drop before any IPv4 header (an ARP claiming a neighbour\'s address) keeps the MACs and the port it came in on', (t) => {
  const { tc, node1, client, web1 } = setup();
  tc.port(client).inject(arpFrame(client.mac, 0xffffffffffff, ARP_OP.REPLY, client.mac, web1.ip, 0, client.ip));
  const [e] = events(ringOf(node1));
  t.like(e, { kind: FlowKind.Drop, reason: Drop.ArpSpoofed, stage: 'pod-ingress', proto: 0, src: 0 });
  t.is(e.flags & FlowFlag.Ip, 0);
  const i = ringOf(node1).slotOf(0);
  t.is(ringOf(node1).ethSrc[i], client.mac);
  t.is(ringOf(node1).ethDst[i], 0xffffffffffff);
  t.is(ringOf(node1).slot[i], node1.pods().find((p) => p.ip === client.ip)!.slot);
});

test('the ring keeps the newest events: sequence numbers go on, the oldest are overwritten', (t) => {
  const { tc, node1, client, web1 } = setup({ flows: { capacity: 8 } });
  for (let i = 0; i < 20; i++) tc.port(client).inject(tcpSyn(from(tc, client, web1.ip), 47000 + i, 80));
  const ring = ringOf(node1);
  t.is(ring.written, 20);
  t.is(ring.oldest, 12);
  t.deepEqual(events(ring).map((e) => e.sport), [47012, 47013, 47014, 47015, 47016, 47017, 47018, 47019]);
});

test('trace\'s dry run records nothing; with flows off the path forwards as before', (t) => {
  const { tc, node1, client, web1 } = setup();
  node1.dryRun({
    ingress: Ingress.Pod,
    frame: tcpSyn(from(tc, client, VIP), 48000, 80),
    slot: node1.pods().find((p) => p.ip === client.ip)!.slot,
    recorder: { note: () => undefined, service: () => undefined, policy: () => undefined, end: () => undefined },
    transmit: { send: () => undefined },
    draw: 0.5,
  });
  t.is(ringOf(node1).written, 0);

  const off = setup({ flows: false });
  t.is(off.node1.flows, undefined);
  off.tc.port(off.client).inject(tcpSyn(from(off.tc, off.client, off.web1.ip), 48001, 80));
  t.is(off.tc.port(off.web1).sent.length, 1);
  t.is(web1.ip, off.web1.ip);
});
