/**
 * Parsing a frame's Ethernet, IPv4 and TCP headers and reading the 5-tuple, two ways: one
 * pass (FrameView, one checked constructor filling plain fields: what a forwarding path
 * wants) and the three separate views re-pointed in turn (the reference). The 64-byte and
 * 1500-byte frames cost the same: nothing is read past the headers.
 */
import { parseIpv4 } from '../src/packet/addr.js';
import { emitEthernet, ETHERTYPE, EthernetView } from '../src/packet/ethernet.js';
import { PacketOk } from '../src/packet/errors.js';
import { FrameView } from '../src/packet/frame.js';
import { emitIpv4, IPPROTO, Ipv4View } from '../src/packet/ipv4.js';
import { emitTcp, TcpView, TCP_ACK, TCP_PSH } from '../src/packet/tcp.js';
import { atMost, runMicroSuite, sink, type BenchModule } from './harness.js';

const BATCH = 1024;

function frame(length: number): Buffer {
  const src = parseIpv4('10.244.1.2')!;
  const dst = parseIpv4('10.244.2.3')!;
  const f = Buffer.alloc(length, 0x61);
  const payload = length - 14 - 20 - 20;
  emitEthernet({ dstMac: 0x0a580af40101, srcMac: 0x0a580af40102, ethertype: ETHERTYPE.IPV4 }, f, 0);
  emitTcp({ srcPort: 41000, dstPort: 80, seq: 1, ack: 1, flags: TCP_ACK | TCP_PSH, window: 502, urgent: 0, options: { sackPermitted: false } }, f, 34, payload, { src, dst });
  emitIpv4({ src, dst, protocol: IPPROTO.TCP, ttl: 64, payloadLength: 20 + payload, dscp: 0, ecn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 }, f, 14);
  return f;
}

const eth = new EthernetView();
const ip = new Ipv4View();
const tcp = new TcpView();

/** The pipeline's parse: three checked views and the 5-tuple; returns a number so nothing is dead code. */
function parse(buf: Buffer): number {
  if (eth.check(buf, 0, buf.length) !== PacketOk || eth.ethertype !== ETHERTYPE.IPV4) return -1;
  if (ip.check(buf, eth.payloadOffset, buf.length - eth.headerLength) !== PacketOk || ip.protocol !== IPPROTO.TCP) return -1;
  if (tcp.check(buf, ip.payloadOffset, ip.payloadLength) !== PacketOk) return -1;
  return (ip.srcAddr ^ ip.dstAddr ^ tcp.srcPort ^ (tcp.dstPort << 16)) >>> 0;
}

const frameView = new FrameView();

/** The same through one pass. */
function parseOnePass(buf: Buffer): number {
  if (frameView.check(buf, 0, buf.length) !== PacketOk || !frameView.hasPorts || frameView.protocol !== IPPROTO.TCP) return -1;
  return (frameView.srcAddr ^ frameView.dstAddr ^ frameView.srcPort ^ (frameView.dstPort << 16)) >>> 0;
}

const bench: BenchModule = {
  name: 'parse',
  async run(ctx) {
    const small = frame(64);
    const large = frame(1500);
    const expected = parse(small);
    if (expected < 0 || parse(large) !== expected || parseOnePass(small) !== expected || parseOnePass(large) !== expected) {
      throw new Error('parse benchmark: the frames do not parse to the same 5-tuple both ways');
    }
    const batch = (f: Buffer) => () => {
      let acc = 0;
      for (let i = 0; i < BATCH; i++) acc ^= parse(f);
      sink.value = acc;
    };
    const onePass = (f: Buffer) => () => {
      let acc = 0;
      for (let i = 0; i < BATCH; i++) acc ^= parseOnePass(f);
      sink.value = acc;
    };
    return runMicroSuite(ctx, {
      name: 'parse',
      opsPerCall: BATCH,
      cases: [
        { name: 'parse: eth+ipv4+tcp in one pass, 64-byte frame', run: onePass(small), target: atMost(15) },
        { name: 'parse: eth+ipv4+tcp in one pass, 1500-byte frame', run: onePass(large), target: atMost(15) },
        { name: 'parse: three separate views (reference), 64-byte frame', run: batch(small) },
        { name: 'parse: three separate views (reference), 1500-byte frame', run: batch(large) },
      ],
    });
  },
};

export default bench;
