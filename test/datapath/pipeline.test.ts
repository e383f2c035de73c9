import test from 'ava';
import { parseCidr, parseIpv4, parseMac, BROADCAST_MAC } from '../../src/packet/addr.js';
import { ArpView, ARP_OP, emitArp } from '../../src/packet/arp.js';
import { emitEthernet, ETHERTYPE, EthernetView } from '../../src/packet/ethernet.js';
import { emitIcmp, IcmpView, ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, ICMP_HOST_UNREACHABLE, ICMP_TIME_EXCEEDED } from '../../src/packet/icmp.js';
import { emitIpv4, IPPROTO, Ipv4View } from '../../src/packet/ipv4.js';
import { finishChecksum, internetChecksum, pseudoHeaderSum } from '../../src/packet/checksum.js';
import { TcpView } from '../../src/packet/tcp.js';
import { VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_TCPV4 } from '../../src/port/port.js';
import { Pipeline, type NodeIdentity } from '../../src/datapath/pipeline.js';
import { Drop } from '../../src/datapath/drops.js';
import { FakeOverlay, FakePort } from '../helpers/fake-port.js';

const ip = (s: string) => parseIpv4(s)!;
const mac = (s: string) => parseMac(s)!;

function identity(n: number): NodeIdentity {
  return {
    name: `node-${n}`,
    subnet: parseCidr(`10.244.${n}.0/24`)!,
    clusterCidr: parseCidr('10.244.0.0/16')!,
    gatewayIp: ip(`10.244.${n}.1`),
    gatewayMac: mac(`0a:58:0a:f4:0${n}:01`),
    vtepMac: mac(`0e:00:00:00:00:0${n}`),
    vni: 1,
    underlayMtu: 1500,
  };
}

/** Two nodes joined by an in-memory overlay; pods a, b on node 1 and c on node 2. */
function cluster(opts: { offload?: boolean; superFrames?: boolean } = {}) {
  let now = 0;
  const n1 = new Pipeline(identity(1), () => now);
  const n2 = new Pipeline(identity(2), () => now);
  const o1 = new FakeOverlay(ip('127.77.0.1'), 4789, opts.superFrames ?? false);
  const o2 = new FakeOverlay(ip('127.77.0.2'), 4789, opts.superFrames ?? false);
  o1.peerLink = o2;
  o2.peerLink = o1;
  n1.attachOverlay(o1);
  n2.attachOverlay(o2);
  n1.peers.add({ node: 'node-2', subnet: identity(2).subnet, vtepMac: identity(2).vtepMac, underlayAddr: o2.addr, underlayPort: 4789 });
  n2.peers.add({ node: 'node-1', subnet: identity(1).subnet, vtepMac: identity(1).vtepMac, underlayAddr: o1.addr, underlayPort: 4789 });
  const pod = (node: Pipeline, name: string, addr: string) => {
    const port = new FakePort(name, opts.offload ?? false);
    const m = mac(`0a:58:${addr.split('.').map((x) => Number(x).toString(16).padStart(2, '0')).join(':')}`);
    node.addPod(name, ip(addr), m, port);
    return { port, ip: ip(addr), mac: m };
  };
  const a = pod(n1, 'a', '10.244.1.2');
  const b = pod(n1, 'b', '10.244.1.3');
  const c = pod(n2, 'c', '10.244.2.2');
  return { n1, n2, a, b, c, tick: (ns: number) => (now += ns) };
}

function icmpEcho(src: { mac: number; ip: number }, dstMac: number, dstIp: number, opts: { size?: number; ttl?: number; df?: boolean } = {}): Buffer {
  const data = opts.size ?? 56;
  const frame = Buffer.alloc(14 + 20 + 8 + data, 0x61);
  emitEthernet({ dstMac, srcMac: src.mac, ethertype: ETHERTYPE.IPV4 }, frame, 0);
  emitIcmp({ kind: 'echoRequest', id: 7, seq: 1 }, frame, 34, data);
  emitIpv4(
    { src: src.ip, dst: dstIp, protocol: IPPROTO.ICMP, ttl: opts.ttl ?? 64, payloadLength: 8 + data, dscp: 0, ecn: 0, identification: 1, dontFragment: opts.df ?? true, moreFragments: false, fragmentOffsetBytes: 0 },
    frame,
    14,
  );
  return frame;
}

function arpRequest(src: { mac: number; ip: number }, target: number): Buffer {
  const frame = Buffer.alloc(42);
  emitEthernet({ dstMac: BROADCAST_MAC, srcMac: src.mac, ethertype: ETHERTYPE.ARP }, frame, 0);
  emitArp({ operation: ARP_OP.REQUEST, senderMac: src.mac, senderIp: src.ip, targetMac: 0, targetIp: target }, frame, 14);
  return frame;
}

function ipOf(frame: Buffer): Ipv4View {
  const v = Ipv4View.checked(frame, 14);
  if (typeof v === 'number') throw new Error(`bad ip ${v}`);
  return v;
}

test('ARP for the gateway is answered with the bridge MAC; other ARP is flooded', (t) => {
  const { a, b } = cluster();
  a.port.inject(arpRequest(a, ip('10.244.1.1')));
  const [reply] = a.port.take();
  const arp = ArpView.checked(reply, 14) as ArpView;
  t.is(arp.operation, ARP_OP.REPLY);
  t.is(arp.senderMac, identity(1).gatewayMac);
  t.is(arp.senderIp, ip('10.244.1.1'));
  t.is(arp.targetMac, a.mac);
  t.is((EthernetView.checked(reply) as EthernetView).dstMac, a.mac);
  t.deepEqual(b.port.take(), [], 'not flooded');

  a.port.inject(arpRequest(a, b.ip));
  t.is(b.port.take().length, 1, 'ARP for a neighbour pod is flooded to it');
  t.deepEqual(a.port.take(), [], 'never back out of the ingress port');
});

test('same node, same subnet: switched by the learned FDB without touching the IP header', (t) => {
  const { a, b, n1 } = cluster();
  b.port.inject(arpRequest(b, ip('10.244.1.99'))); // b's MAC is learned on its port
  const frame = icmpEcho(a, b.mac, b.ip);
  a.port.inject(frame);
  const [out] = b.port.take();
  t.deepEqual(out, frame);
  t.is(n1.counters.flooded, 1);
});

test('ping to the gateway address is answered by the node', (t) => {
  const { a } = cluster();
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, ip('10.244.1.1')));
  const [reply] = a.port.take();
  const v = ipOf(reply);
  t.true(v.verifyChecksum());
  t.is(v.srcAddr, ip('10.244.1.1'));
  t.is(v.dstAddr, a.ip);
  const icmp = IcmpView.checked(reply, 34, v.payloadLength) as IcmpView;
  t.is(icmp.type, 0);
  t.true(icmp.verifyChecksum());
});

test('routed across nodes through VXLAN: MACs rewritten at each hop, TTL down by two', (t) => {
  const { a, c, n1, n2 } = cluster();
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, c.ip, { size: 1372 }));
  const [out] = c.port.take();
  const eth = EthernetView.checked(out) as EthernetView;
  t.is(eth.srcMac, identity(2).gatewayMac);
  t.is(eth.dstMac, c.mac);
  const v = ipOf(out);
  t.is(v.ttl, 62);
  t.true(v.verifyChecksum());
  t.is(v.totalLength, 1400);
  t.is(n1.counters.encapsulated, 1);
  t.is(n2.counters.decapsulated, 1);
});

test('a DF packet larger than the overlay path gets ICMP fragmentation needed with MTU 1450', (t) => {
  const { a, c, n1 } = cluster();
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, c.ip, { size: 1472 }));
  t.deepEqual(c.port.take(), []);
  const [err] = a.port.take();
  const v = ipOf(err);
  t.is(v.srcAddr, ip('10.244.1.1'));
  t.true(v.verifyChecksum());
  const icmp = IcmpView.checked(err, 34, v.payloadLength) as IcmpView;
  t.is(icmp.type, ICMP_DEST_UNREACHABLE);
  t.is(icmp.code, ICMP_FRAG_NEEDED);
  t.is(icmp.nextHopMtu, 1450);
  t.true(icmp.verifyChecksum());
  // The quote is the header plus 8 bytes, so its total length field runs past it: read raw.
  t.is(icmp.embeddedLength, 28);
  t.is(err.readUInt32BE(icmp.embeddedOffset + 16), c.ip);
  t.is(n1.drops[Drop.TooBig], 1);
});

test('TTL 1 gets time exceeded; an address no pod holds gets host unreachable', (t) => {
  const { a, c, n1 } = cluster();
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, c.ip, { ttl: 1 }));
  const [te] = a.port.take();
  t.is((IcmpView.checked(te, 34, ipOf(te).payloadLength) as IcmpView).type, ICMP_TIME_EXCEEDED);
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, ip('10.244.1.77')));
  const [hu] = a.port.take();
  const icmp = IcmpView.checked(hu, 34, ipOf(hu).payloadLength) as IcmpView;
  t.is(icmp.code, ICMP_HOST_UNREACHABLE);
  t.is(n1.drops[Drop.TtlExceeded], 1);
  t.is(n1.drops[Drop.NoNeighbour], 1);
});

test('an ICMP error from the far node comes back over the overlay intact', (t) => {
  const { a, n1, n2 } = cluster();
  // Node 2 has no pod at .77: its error travels back through the VXLAN link to node 1.
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, ip('10.244.2.77')));
  t.is(n2.drops[Drop.NoNeighbour], 1);
  const [hu] = a.port.take();
  t.truthy(hu, 'the error reached the sender');
  const eth = EthernetView.checked(hu) as EthernetView;
  t.is(eth.dstMac, a.mac);
  t.is(eth.srcMac, identity(1).gatewayMac);
  const v = ipOf(hu);
  t.is(v.srcAddr, ip('10.244.2.1'));
  t.is(v.dstAddr, a.ip);
  t.true(v.verifyChecksum());
  const icmp = IcmpView.checked(hu, 34, v.payloadLength) as IcmpView;
  t.is(icmp.type, ICMP_DEST_UNREACHABLE);
  t.is(icmp.code, ICMP_HOST_UNREACHABLE);
  t.true(icmp.verifyChecksum());
  t.is(n1.counters.decapsulated, 1);
});

test('a capture that throws costs its frame only: the rest of the batch is forwarded and flushed', (t) => {
  const { a, b, n1 } = cluster();
  let calls = 0;
  n1.tap = {
    podFrame: () => {
      if (calls++ === 0) throw new Error('capture broke');
    },
    uplinkFrame: () => undefined,
    overlayFrame: () => undefined,
  };
  n1.onInternalError = () => {
    throw new Error('and so did the reporter');
  };
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, b.ip), icmpEcho(a, identity(1).gatewayMac, b.ip));
  t.is(b.port.take().length, 1);
  t.is(n1.drops[Drop.InternalError], 1);
});

test('spoofed source MAC or IP is dropped and counted', (t) => {
  const { a, b, c, n1 } = cluster();
  a.port.inject(icmpEcho({ mac: b.mac, ip: a.ip }, identity(1).gatewayMac, c.ip));
  a.port.inject(icmpEcho({ mac: a.mac, ip: b.ip }, identity(1).gatewayMac, c.ip));
  t.deepEqual(c.port.take(), []);
  t.is(n1.drops[Drop.Spoofed], 2);
});

test('a foreign VNI and an unknown underlay sender are dropped', (t) => {
  const { a, c, n2 } = cluster();
  a.port.inject(icmpEcho(a, identity(1).gatewayMac, c.ip));
  t.is(c.port.take().length, 1, 'the right VNI from a peer passes');
  const datagram = Buffer.alloc(8 + 98);
  datagram[0] = 0x08;
  datagram.writeUIntBE(2, 4, 3);
  n2.receiveFromOverlay({
    buf: datagram,
    slab: 0,
    count: 1,
    offsets: new Uint32Array([0]),
    lengths: new Uint32Array([datagram.length]),
    addrs: new Uint32Array([ip('127.77.0.1')]),
    ports: new Uint16Array([4789]),
  });
  t.is(n2.drops[Drop.WrongVni], 1);
  datagram.writeUIntBE(1, 4, 3);
  n2.receiveFromOverlay({
    buf: datagram,
    slab: 0,
    count: 1,
    offsets: new Uint32Array([0]),
    lengths: new Uint32Array([datagram.length]),
    addrs: new Uint32Array([ip('127.77.0.9')]),
    ports: new Uint16Array([4789]),
  });
  t.is(n2.drops[Drop.UnknownPeer], 1);
});

test('truncated and garbage frames are counted, never thrown', (t) => {
  const { a, n1 } = cluster();
  const frame = icmpEcho(a, identity(1).gatewayMac, ip('10.244.2.2'));
  for (let len = 0; len < frame.length; len++) a.port.inject(frame.subarray(0, len));
  t.is(n1.drops[Drop.Malformed], frame.length, 'one drop per truncated length');
});

/** A TCP super-frame as a TSO pod hands it over: 20-byte TCP header, partial checksum. */
function superFrame(src: { mac: number; ip: number }, dstIp: number, payloadLength: number): Buffer {
  const tcpLen = 20 + payloadLength;
  const f = Buffer.alloc(34 + tcpLen, 0x5a);
  emitEthernet({ dstMac: identity(1).gatewayMac, srcMac: src.mac, ethertype: ETHERTYPE.IPV4 }, f, 0);
  emitIpv4({ src: src.ip, dst: dstIp, protocol: IPPROTO.TCP, ttl: 64, payloadLength: tcpLen, dscp: 0, ecn: 0, identification: 9, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 }, f, 14);
  f.writeUInt16BE(41000, 34);
  f.writeUInt16BE(5201, 36);
  f.writeUInt32BE(1, 38);
  f[46] = 5 << 4;
  f[47] = 0x18;
  f.writeUInt16BE(~finishChecksum(pseudoHeaderSum(src.ip, dstIp, IPPROTO.TCP, tcpLen)) & 0xffff, 50);
  return f;
}

const TSO = (gsoSize: number) => ({ flags: VNET_HDR_F_NEEDS_CSUM, gsoType: VNET_HDR_GSO_TCPV4, gsoSize, csumStart: 34, csumOffset: 16 });

test('a super-frame crosses a loopback overlay whole, with its offload metadata rebuilt', (t) => {
  const { a, c, n1 } = cluster({ offload: true, superFrames: true });
  a.port.injectWithOffload([{ frame: superFrame(a, c.ip, 20000), offload: TSO(1398) }]);
  const [out] = c.port.take();
  t.is(out.length, 34 + 20 + 20000);
  t.deepEqual(c.port.sentOffload, [TSO(1398)]);
  t.true(ipOf(out).verifyChecksum());
  t.is(n1.counters.encapsulated, 1);
});

test('without super-frame transport, the overlay carries segments with finished checksums', (t) => {
  const { a, c, n2 } = cluster({ offload: false, superFrames: false });
  a.port.injectWithOffload([{ frame: superFrame(a, c.ip, 5000), offload: TSO(1398) }]);
  const out = c.port.take();
  t.is(out.length, 4);
  t.is(n2.counters.decapsulated, 4);
  let seq = 1;
  for (const seg of out) {
    const v = ipOf(seg);
    const tcp = TcpView.checked(seg, 34, v.payloadLength) as TcpView;
    t.true(v.verifyChecksum());
    t.true(tcp.verifyChecksum(a.ip, c.ip));
    t.is(tcp.seqNumber, seq);
    seq += tcp.payloadLength;
  }
  t.is(seq, 5001);
});

test('a super-frame reaching a pod without offload is segmented at delivery', (t) => {
  const { a, c } = cluster({ offload: false, superFrames: true });
  a.port.injectWithOffload([{ frame: superFrame(a, c.ip, 3000), offload: TSO(1000) }]);
  const out = c.port.take();
  t.deepEqual(out.map((s) => ipOf(s).totalLength), [1040, 1040, 1040]);
});

test('a super-frame flooded to several pods without offload reaches each of them as whole, valid segments', (t) => {
  const { n1, a, b } = cluster({ offload: false });
  const x = new FakePort('x', false);
  n1.addPod('x', ip('10.244.1.9'), mac('0a:58:0a:f4:01:09'), x);
  // To b's address but a MAC the bridge has not learned: flooded.
  const frame = superFrame(a, b.ip, 3000);
  frame.writeUIntBE(0x02aabbccddee, 0, 6);
  a.port.injectWithOffload([{ frame, offload: TSO(1000) }]);
  for (const port of [b.port, x]) {
    const got = port.take();
    t.deepEqual(got.map((s) => ipOf(s).totalLength), [1040, 1040, 1040], port.name);
    for (const s of got) {
      const tcpLen = ipOf(s).totalLength - 20;
      t.is(internetChecksum(s, 34, tcpLen, pseudoHeaderSum(a.ip, b.ip, IPPROTO.TCP, tcpLen)), 0, `${port.name}: TCP checksum`);
    }
  }
});

test('super-frame segments larger than the overlay path get fragmentation needed', (t) => {
  const { a, c, n1 } = cluster({ offload: true, superFrames: true });
  a.port.injectWithOffload([{ frame: superFrame(a, c.ip, 20000), offload: TSO(1448) }]);
  t.deepEqual(c.port.take(), []);
  const [err] = a.port.take();
  t.is((IcmpView.checked(err, 34, ipOf(err).payloadLength) as IcmpView).nextHopMtu, 1450);
  t.is(n1.drops[Drop.TooBig], 1);
});

test('two services with one backend, reached from one client port: both connections live (source port remapped)', async (t) => {
  const { cluster: load } = await import('../cluster/helpers.js');
  const { computeEndpoints } = await import('../../src/cluster/endpoints.js');
  const { LiveServiceTable } = await import('../../src/kube/service-table.js');
  const { emitTcp, TCP_SYN } = await import('../../src/packet/tcp.js');
  const c = load(`
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.96.0.20, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {clusterIP: 10.96.0.21, selector: {app: web}, ports: [{port: 80}]}
`);
  const ready = new Map(c.pods.map((p) => [`${p.namespace}/${p.name}`, true]));
  const node = c.nodes[0];
  const p = new Pipeline({ ...identity(1), gatewayMac: node.gatewayMac }, () => 0, { random: () => 0.5 });
  p.services = new LiveServiceTable({ cluster: c, endpoints: computeEndpoints(c, ready), nodeName: node.name, nodeAddress: node.externalIP });
  const [web, client] = ['web', 'client'].map((n) => c.pods.find((x) => x.name === n)!);
  const webPort = new FakePort('web');
  const clientPort = new FakePort('client');
  p.addPod('default/web', web.ip, web.mac, webPort);
  p.addPod('default/client', client.ip, client.mac, clientPort);
  const syn = (vip: string) => {
    const f = Buffer.alloc(54);
    emitEthernet({ dstMac: node.gatewayMac, srcMac: client.mac, ethertype: ETHERTYPE.IPV4 }, f, 0);
    emitIpv4({ src: client.ip, dst: ip(vip), protocol: IPPROTO.TCP, ttl: 64, payloadLength: 20, dscp: 0, ecn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 }, f, 14);
    emitTcp({ srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: TCP_SYN, window: 1000, urgent: 0, options: { sackPermitted: false } }, f, 34, 0, { src: client.ip, dst: ip(vip) });
    return f;
  };
  clientPort.inject(syn('10.96.0.20'));
  clientPort.inject(syn('10.96.0.21'));
  const arrived = webPort.take();
  t.is(arrived.length, 2, JSON.stringify(p.dropCounts()));
  const sports = arrived.map((f) => f.readUInt16BE(34));
  t.is(sports[0], 40000, 'the first keeps its port');
  t.not(sports[1], 40000, 'the second is remapped, as the kernel does');
  for (const f of arrived) t.true((TcpView.checked(f, 34) as TcpView).verifyChecksum(client.ip, web.ip));
  t.is(p.conntrack.size, 2);
});
