import test from 'ava';
import { PacketOk } from '../../src/packet/errors.js';
import { ETHERTYPE, EthernetView } from '../../src/packet/ethernet.js';
import { FrameView } from '../../src/packet/frame.js';
import { IPPROTO, Ipv4View } from '../../src/packet/ipv4.js';
import { TcpView } from '../../src/packet/tcp.js';
import { UdpView } from '../../src/packet/udp.js';
import { generateFrame, loadCorpus } from '../fuzz/frames.js';
import { fenced } from '../helpers/bounds.js';

const corpus = loadCorpus();

/** What the three separate views say of a frame, in FrameView's terms. */
function separately(buf: Uint8Array): { ok: boolean; isIpv4?: boolean; src?: number; dst?: number; sport?: number; dport?: number; hasPorts?: boolean } {
  const eth = new EthernetView();
  if (eth.check(buf) !== PacketOk) return { ok: false };
  if (eth.ethertype !== ETHERTYPE.IPV4) return { ok: true, isIpv4: false };
  const ip = new Ipv4View();
  if (ip.check(buf, eth.payloadOffset, buf.length - eth.headerLength) !== PacketOk) return { ok: false };
  const base = { isIpv4: true, src: ip.srcAddr | 0, dst: ip.dstAddr | 0 };
  if (ip.fragmentOffsetBytes !== 0) return { ok: true, ...base, hasPorts: false };
  if (ip.protocol === IPPROTO.TCP) {
    const tcp = new TcpView();
    if (tcp.check(buf, ip.payloadOffset, ip.payloadLength) !== PacketOk) return { ok: false };
    return { ok: true, ...base, hasPorts: true, sport: tcp.srcPort, dport: tcp.dstPort };
  }
  if (ip.protocol === IPPROTO.UDP) {
    const udp = new UdpView();
    if (udp.check(buf, ip.payloadOffset, ip.payloadLength) !== PacketOk) return { ok: false };
    return { ok: true, ...base, hasPorts: true, sport: udp.srcPort, dport: udp.dstPort };
  }
  if (ip.protocol === IPPROTO.ICMP && ip.payloadLength < 8) return { ok: false };
  return { ok: true, ...base, hasPorts: false };
}

test('one pass agrees with the three separate views on every fixture and 20k fuzzed frames, inside the fence', (t) => {
  const view = new FrameView();
  let ports = 0;
  for (let c = 0; c < 20_000; c++) {
    const frame = c < corpus.length ? corpus[c].frame : generateFrame(corpus, 0xf4a3e, c);
    const want = separately(frame);
    const bytes = fenced(frame, 0, frame.length);
    const got = view.check(bytes, 0, frame.length) === PacketOk;
    if (got !== want.ok) return t.fail(`case ${c}: one pass says ${got}, the views say ${want.ok}`);
    if (!got) continue;
    if (view.isIpv4 !== want.isIpv4) return t.fail(`case ${c}: isIpv4`);
    if (!view.isIpv4) continue;
    if (view.srcAddr !== want.src || view.dstAddr !== want.dst || view.hasPorts !== want.hasPorts) return t.fail(`case ${c}: addresses or ports flag`);
    if (view.hasPorts) {
      ports++;
      if (view.srcPort !== want.sport || view.dstPort !== want.dport) return t.fail(`case ${c}: ports`);
    }
  }
  t.true(ports > 2000, `${ports} frames with ports reached`);
});

test('the fixtures: a TCP segment of the HTTP capture reads as the kernel sent it', (t) => {
  const syn = corpus.find((s) => s.name.startsWith('http'))!.frame;
  const view = new FrameView();
  t.is(view.check(syn), PacketOk);
  t.true(view.hasPorts);
  t.is(view.protocol, IPPROTO.TCP);
  t.is(view.dstPort, 80);
  t.is(view.srcAddr >>> 0, 0x0af40102);
});
