/**
 * The forwarding path as an attacker meets it: fragments, forged ICMP errors, ARP claims,
 * forged overlay datagrams, protocols conntrack does not follow and broadcast storms all
 * get the verdict the datagram or the policy calls for, never a way around it. Whole
 * clusters in memory (test/helpers/datapath.ts), frames in, frames out.
 */
import test from 'ava';
import { ETHERTYPE } from '../../src/packet/ethernet.js';
import { IPPROTO, Ipv4View } from '../../src/packet/ipv4.js';
import { BROADCAST_MAC } from '../../src/packet/addr.js';
import { ICMP_DEST_UNREACHABLE, ICMP_PORT_UNREACHABLE, emitIcmp } from '../../src/packet/icmp.js';
import { Drop } from '../../src/datapath/drops.js';
import { FlowTuple } from '../../src/netfilter/conntrack-tuple.js';
import { cluster as loadYaml } from '../cluster/helpers.js';
import { HARDENED_YAML } from '../helpers/hardened-cluster.js';
import { ARP_OP, arpFrame, echoRequest, fragments, nextMac, rawIp, udpDatagram, vxlanFrom, VXLAN_PORT, wireCluster, type TestCluster } from '../helpers/datapath.js';


function setup(options: { floodRate?: number } = {}): TestCluster {
  return wireCluster(loadYaml(HARDENED_YAML), { random: () => 0.5, floodRate: options.floodRate });
}

function ipOf(frame: Buffer): Ipv4View {
  const ip = new Ipv4View();
  if (ip.check(frame, 14) !== 0) throw new Error('not IPv4');
  return ip;
}

function from(c: TestCluster, name: string, dst: number, extra: { df?: boolean; id?: number } = {}) {
  const pod = c.pod(name, name.includes('victim') ? 'locked' : 'default');
  return { srcMac: pod.mac, dstMac: nextMac(c.cluster, pod, dst), src: pod.ip, dst, ...extra };
}

test('fragments of a UDP datagram to a pod under default deny are dropped as the datagram is, on one node and across nodes', (t) => {
  const c = setup();
  for (const target of ['victim', 'far-victim']) {
    const victim = c.pod(target, 'locked');
    const dgram = udpDatagram(from(c, 'client', victim.ip, { df: false, id: 0x4242 }), 40000, 9999, 3500);
    const node1 = c.nodes[0].pipeline;
    const before = node1.drops[Drop.PolicyDenied] + c.nodes[1].pipeline.drops[Drop.PolicyDenied];
    c.port(c.pod('client')).inject(...fragments(dgram, [1424, 1424]));
    t.deepEqual(c.port(victim).take(), [], `${target} received nothing`);
    const after = node1.drops[Drop.PolicyDenied] + c.nodes[1].pipeline.drops[Drop.PolicyDenied];
    t.is(after - before, 1, `one datagram denied for ${target}`);
  }
});

test('an allowed fragmented datagram is judged whole and leaves in the fragments its sender made', (t) => {
  const c = setup();
  const echo = c.pod('echo');
  const client = c.pod('client');
  const dgram = udpDatagram(from(c, 'client', echo.ip, { df: false, id: 0x1111 }), 40000, 5353, 3500);
  const pieces = fragments(dgram, [1424, 1424]);
  // Out of order, as a network may deliver them.
  c.port(client).inject(pieces[2], pieces[0], pieces[1]);
  const got = c.port(echo).take();
  t.is(got.length, 3);
  const sizes = got.map((f) => ipOf(f).totalLength);
  t.deepEqual(sizes, pieces.map((p) => ipOf(p).totalLength));
  const payload = Buffer.concat(got.map((f) => f.subarray(14 + 20, 14 + ipOf(f).totalLength)));
  t.deepEqual(payload, dgram.subarray(34));
  t.is(c.nodes[0].pipeline.counters.reassembled, 1);
});

test('a fragmented UDP send to a ClusterIP is DNATed like any datagram, every fragment rewritten', (t) => {
  const c = setup();
  const echo = c.pod('echo');
  const dgram = udpDatagram(from(c, 'client', 0x0a603232, { df: false, id: 0x2222 }), 40001, 5353, 2000);
  c.port(c.pod('client')).inject(...fragments(dgram, [1424]));
  const got = c.port(echo).take();
  t.is(got.length, 2);
  for (const f of got) t.is(ipOf(f).dstAddr, echo.ip, 'every fragment carries the endpoint address');
  t.is(c.nodes[0].pipeline.conntrack.size, 1);
});

test('overlapping, oversized and never-completed fragments are counted, and the node keeps forwarding', (t) => {
  const c = setup();
  const echo = c.pod('echo');
  const client = c.port(c.pod('client'));
  const dgram = udpDatagram(from(c, 'client', echo.ip, { df: false, id: 0x3333 }), 40002, 5353, 3000);
  const [a, b] = fragments(dgram, [1424]);
  const overlap = Buffer.from(b);
  overlap.writeUInt16BE((overlap.readUInt16BE(20) & 0xe000) | (1400 / 8), 20);
  overlap.writeUInt16BE(0, 24);
  ipOf(overlap).fillChecksum();
  client.inject(a, overlap);
  t.deepEqual(c.port(echo).take(), []);
  t.is(c.nodes[0].pipeline.drops[Drop.FragmentOverlap], 1);
  // A first fragment alone, then the clock runs past the reassembly timeout.
  const lonely = udpDatagram(from(c, 'client', echo.ip, { df: false, id: 0x4444 }), 40003, 5353, 3000);
  client.inject(fragments(lonely, [1424])[0]);
  c.setTime(1_000_000_000 + 31e9);
  c.nodes[0].pipeline.reap(1000);
  t.is(c.nodes[0].pipeline.dropCounts()['fragment-timeout'], 1);
  // Still forwarding.
  client.inject(udpDatagram(from(c, 'client', echo.ip), 40004, 5353, 10));
  t.is(c.port(echo).take().length, 1);
});

test('an ICMP error quoting no tracked connection is dropped as INVALID; one about a real connection passes', (t) => {
  const c = setup();
  const victim = c.pod('bystander');
  const attacker = c.pod('client');
  // Forged: port unreachable "about" a UDP flow the bystander never had.
  const quote = udpDatagram({ srcMac: victim.mac, dstMac: attacker.mac, src: victim.ip, dst: attacker.ip }, 5000, 53, 8).subarray(14, 14 + 28);
  const forged = Buffer.alloc(14 + 20 + 8 + quote.length);
  const spec = from(c, 'client', victim.ip);
  rawIp(spec, IPPROTO.ICMP, 8 + quote.length).copy(forged);
  quote.copy(forged, 42);
  emitIcmp({ kind: 'destUnreachable', code: ICMP_PORT_UNREACHABLE, mtu: 0 }, forged, 34, quote.length);
  t.is(forged[34], ICMP_DEST_UNREACHABLE);
  c.port(attacker).inject(forged);
  t.deepEqual(c.port(victim).take(), []);
  t.is(c.nodes[0].pipeline.drops[Drop.CtInvalid], 1);
  // The real thing: the bystander sends to the client, whose kernel answers port unreachable.
  const flow = udpDatagram(from(c, 'bystander', attacker.ip), 5000, 53, 8);
  c.port(victim).inject(flow);
  t.is(c.port(attacker).take().length, 1);
  const realQuote = flow.subarray(14, 14 + 28);
  const error = Buffer.alloc(14 + 20 + 8 + realQuote.length);
  rawIp(from(c, 'client', victim.ip), IPPROTO.ICMP, 8 + realQuote.length).copy(error);
  realQuote.copy(error, 42);
  emitIcmp({ kind: 'destUnreachable', code: ICMP_PORT_UNREACHABLE, mtu: 0 }, error, 34, realQuote.length);
  c.port(attacker).inject(error);
  t.is(c.port(victim).take().length, 1);
});

test("a pod's gratuitous ARP claiming another pod's address is dropped and counted, never flooded", (t) => {
  const c = setup();
  const attacker = c.pod('client');
  const target = c.pod('victim', 'locked');
  c.port(attacker).inject(arpFrame(attacker.mac, BROADCAST_MAC, ARP_OP.REPLY, attacker.mac, target.ip, BROADCAST_MAC, target.ip));
  t.deepEqual(c.port(c.pod('bystander')).take(), []);
  t.is(c.nodes[0].pipeline.drops[Drop.ArpSpoofed], 1);
  // Its own address and an RFC 5227 probe (sender 0.0.0.0) are flooded as before.
  c.port(attacker).inject(arpFrame(attacker.mac, BROADCAST_MAC, ARP_OP.REQUEST, attacker.mac, attacker.ip, 0, target.ip));
  c.port(attacker).inject(arpFrame(attacker.mac, BROADCAST_MAC, ARP_OP.REQUEST, attacker.mac, 0, 0, attacker.ip));
  t.is(c.port(c.pod('bystander')).take().length, 2);
});

test('the overlay accepts only a peer at its VTEP address and port, with inner sources of its subnet or replies', (t) => {
  const c = setup();
  const [n1, n2] = c.cluster.nodes;
  const victim = c.pod('victim', 'locked');
  const bystander = c.pod('bystander');
  const inner = (src: number) => udpDatagram({ srcMac: 0, dstMac: 0, src, dst: bystander.ip }, 1234, 4321, 8);
  // From node-2's address but another port: any local user can bind that.
  c.hub.inject(n1.underlay, n2.underlay, 5555, vxlanFrom(c.cluster, n2, n1, inner(n2.podCIDR.base + 5)));
  t.is(c.nodes[0].pipeline.drops[Drop.UnknownPeer], 1);
  // From node-2's VTEP, but claiming a source of node-1's own subnet.
  c.hub.inject(n1.underlay, n2.underlay, VXLAN_PORT, vxlanFrom(c.cluster, n2, n1, inner(victim.ip)));
  t.is(c.nodes[0].pipeline.drops[Drop.OverlaySpoofed], 1);
  t.deepEqual(c.port(bystander).take(), []);
  // Its own subnet: delivered.
  c.hub.inject(n1.underlay, n2.underlay, VXLAN_PORT, vxlanFrom(c.cluster, n2, n1, inner(n2.podCIDR.base + 5)));
  t.is(c.port(bystander).take().length, 1);
  // From outside node-2's subnet, but the reply of a connection node-1 tracks: it passes.
  const outside = 0xc0000299; // 192.0.2.153
  const orig = new FlowTuple().set(bystander.ip, outside, 7000, 7001, IPPROTO.UDP);
  const reply = new FlowTuple();
  reply.setReplyOf(orig);
  t.true(c.nodes[0].pipeline.conntrack.create(orig, reply, 0, 36, 1_000_000_000) >= 0);
  const answer = udpDatagram({ srcMac: 0, dstMac: 0, src: outside, dst: bystander.ip }, 7001, 7000, 8);
  c.hub.inject(n1.underlay, n2.underlay, VXLAN_PORT, vxlanFrom(c.cluster, n2, n1, answer));
  t.is(c.port(bystander).take().length, 1);
  t.is(c.nodes[0].pipeline.drops[Drop.OverlaySpoofed], 1, 'no new spoofing drop');
});

test('a protocol conntrack does not follow is judged by policy on every packet', (t) => {
  const c = setup();
  const victim = c.pod('victim', 'locked');
  const echo = c.pod('echo');
  const gre = 47;
  c.port(c.pod('client')).inject(rawIp(from(c, 'client', victim.ip), gre));
  t.deepEqual(c.port(victim).take(), []);
  t.is(c.nodes[0].pipeline.drops[Drop.PolicyDenied], 1);
  c.port(c.pod('client')).inject(rawIp(from(c, 'client', echo.ip), gre));
  t.is(c.port(echo).take().length, 1, 'no policy selects echo: GRE passes');
});

test("one pod's broadcast storm is cut at its flood budget; other pods' floods still go", (t) => {
  const c = setup({ floodRate: 100 });
  const attacker = c.pod('client');
  const bystander = c.pod('bystander');
  const storm = Array.from({ length: 300 }, (_, i) => arpFrame(attacker.mac, BROADCAST_MAC, ARP_OP.REQUEST, attacker.mac, attacker.ip, 0, 0x0a000000 + i));
  c.port(attacker).inject(...storm.slice(0, 60));
  c.port(attacker).inject(...storm.slice(60, 120));
  c.port(attacker).inject(...storm.slice(120, 180));
  t.is(c.port(bystander).take().length, 100, 'the burst');
  t.is(c.nodes[0].pipeline.drops[Drop.FloodLimited], 80);
  c.setTime(1_000_000_000 + 0.5e9);
  c.port(attacker).inject(...storm.slice(180, 300));
  t.is(c.port(bystander).take().length, 50, 'refilled at 100 a second');
  const victim = c.pod('victim', 'locked');
  c.port(victim).inject(arpFrame(victim.mac, BROADCAST_MAC, ARP_OP.REQUEST, victim.mac, victim.ip, 0, bystander.ip));
  t.is(c.port(bystander).take().length, 1, "another port's budget is its own");
});

test('a ping bigger than the pod MTU to a pod under default deny gets no answer (fragments are judged)', (t) => {
  const c = setup();
  const victim = c.pod('victim', 'locked');
  const ping = echoRequest(from(c, 'client', victim.ip, { df: false, id: 0x5555 }), 3000);
  c.port(c.pod('client')).inject(...fragments(ping, [1424, 1424]));
  t.deepEqual(c.port(victim).take(), []);
  t.is(ping.readUInt16BE(12), ETHERTYPE.IPV4);
});
