import test from 'ava';
import fc from 'fast-check';
import { parseIpv4 } from '../../src/packet/addr.js';
import { readU16 } from '../../src/packet/bytes.js';
import { PacketError, PacketOk } from '../../src/packet/errors.js';
import { parseTcp, TcpView, TCP_SYN } from '../../src/packet/tcp.js';
import { UdpView, UDP_HEADER_LEN } from '../../src/packet/udp.js';
import { emitVxlan, parseVxlan, vxlanBufferLen, VxlanView, VXLAN_FLAG_I, VXLAN_HEADER_LEN, VXLAN_PORT } from '../../src/packet/vxlan.js';
import { exerciseVxlan, fence, fenced, randomWindow } from '../helpers/bounds.js';
import { hex, poisoned } from '../helpers/bytes.js';

const OUTER_SRC = parseIpv4('10.244.1.2')!;
const OUTER_DST = parseIpv4('10.244.1.1')!;

// An encapsulated ARP request (test/fixtures/vxlan-http.pcap, frame 1, from byte 34): the outer
// UDP header 47518 > 4789, the VXLAN header (flags [I], vni 42), then the inner Ethernet frame,
// "who-has 10.250.0.2 tell 10.250.0.1" from 02:00:00:00:aa:01.
const ARP_IN_VXLAN = hex(`
  b9 9e 12 b5 00 3a 65 35
  08 00 00 00 00 00 2a 00
  ff ff ff ff ff ff 02 00 00 00 aa 01 08 06 00 01
  08 00 06 04 00 01 02 00 00 00 aa 01 0a fa 00 01
  00 00 00 00 00 00 0a fa 00 02
`);

// An encapsulated TCP SYN (vxlan-http.pcap, frame 3, from byte 42): the VXLAN header, then the
// inner frame carrying 10.250.0.1.37380 > 10.250.0.2.8080, Flags [S], cksum 0x9bbf, seq 3418344159,
// options [mss 1410,sackOK,TS val 4266742422 ecr 0,nop,wscale 10].
const SYN_IN_VXLAN = hex(`
  08 00 00 00 00 00 2a 00
  02 00 00 00 aa 02 02 00 00 00 aa 01 08 00
  45 00 00 3c 96 32 40 00 40 06 8e 93 0a fa 00 01 0a fa 00 02
  92 04 1f 90 cb bf ca df 00 00 00 00 a0 02 fd 5c 9b bf 00 00
  02 04 05 82 04 02 08 0a fe 51 52 96 00 00 00 00 01 03 03 0a
`);

function view(buf: Uint8Array, offset = 0, available = buf.length - offset): VxlanView {
  const v = VxlanView.checked(buf, offset, available);
  if (typeof v === 'number') throw new Error(`checked: ${v}`);
  return v;
}

test('golden ARP in VXLAN: UDP to port 4789, flags, VNI and the inner frame', (t) => {
  const udp = UdpView.checked(ARP_IN_VXLAN);
  if (typeof udp === 'number') return t.fail(`udp: ${udp}`);
  t.is(udp.dstPort, VXLAN_PORT);
  t.true(udp.verifyChecksum(OUTER_SRC, OUTER_DST));

  const v = view(ARP_IN_VXLAN, udp.payloadOffset, udp.payloadLength);
  t.is(v.flags, VXLAN_FLAG_I);
  t.true(v.vniValid);
  t.is(v.vni, 42);
  t.is(v.reserved1, 0);
  t.is(v.reserved2, 0);
  t.is(v.payloadOffset, UDP_HEADER_LEN + VXLAN_HEADER_LEN);
  t.is(v.payloadLength, 42); // a 14-byte Ethernet header and a 28-byte ARP packet
  t.is(readU16(ARP_IN_VXLAN, v.payloadOffset + 12), 0x0806);
  t.is(ARP_IN_VXLAN[v.payloadOffset], 0xff); // broadcast
  t.deepEqual(parseVxlan(v), { vni: 42 });
});

test('golden TCP SYN in VXLAN: the inner segment is reachable and intact', (t) => {
  const v = view(SYN_IN_VXLAN);
  t.deepEqual(parseVxlan(v), { vni: 42 });
  t.is(readU16(SYN_IN_VXLAN, v.payloadOffset + 12), 0x0800);
  const ip = v.payloadOffset + 14;
  const tcp = TcpView.checked(SYN_IN_VXLAN, ip + 20, readU16(SYN_IN_VXLAN, ip + 2) - 20);
  if (typeof tcp === 'number') return t.fail(`tcp: ${tcp}`);
  const addrs = { src: parseIpv4('10.250.0.1')!, dst: parseIpv4('10.250.0.2')! };
  t.like(parseTcp(tcp, addrs), {
    srcPort: 37380,
    dstPort: 8080,
    seq: 3418344159,
    flags: TCP_SYN,
    window: 64860,
    options: { mss: 1410, sackPermitted: true, timestamps: { tsval: 4266742422, tsecr: 0 }, windowScale: 10 },
  });
});

test('golden header: emit reproduces the bytes', (t) => {
  for (const golden of [ARP_IN_VXLAN.subarray(UDP_HEADER_LEN), SYN_IN_VXLAN]) {
    const buf = poisoned(golden.length);
    golden.copy(buf, VXLAN_HEADER_LEN, VXLAN_HEADER_LEN);
    t.is(emitVxlan({ vni: 42 }, buf, 0), VXLAN_HEADER_LEN);
    t.deepEqual(buf, golden);
  }
});

test('a header without the I flag is refused by parse', (t) => {
  const copy = Buffer.from(SYN_IN_VXLAN);
  copy[0] = 0x00;
  t.false(view(copy).vniValid);
  t.is(parseVxlan(view(copy)), PacketError.BadField);
});

test('reserved bits are ignored on receive', (t) => {
  const copy = Buffer.from(SYN_IN_VXLAN);
  copy[0] = 0xff; // every reserved flag bit, and I
  copy.set([0xaa, 0xbb, 0xcc], 1);
  copy[7] = 0xdd;
  const v = view(copy);
  t.is(v.reserved1, 0xaabbcc);
  t.is(v.reserved2, 0xdd);
  t.deepEqual(parseVxlan(v), { vni: 42 });
});

test('impossible lengths are refused by the checked constructor', (t) => {
  t.is(VxlanView.checked(SYN_IN_VXLAN.subarray(0, 7)), PacketError.Truncated);
  t.is(new VxlanView().check(SYN_IN_VXLAN, 0, 7), PacketError.Truncated);
  t.is(new VxlanView().check(SYN_IN_VXLAN, SYN_IN_VXLAN.length - 4, 8), PacketError.Truncated); // past the end
  t.is(new VxlanView().check(SYN_IN_VXLAN, 0, SYN_IN_VXLAN.length + 1), PacketError.Truncated);
  t.is(new VxlanView().check(SYN_IN_VXLAN, 0, 8), PacketOk); // a header alone: an empty inner frame
});

test('the VNI setter and emit keep to 24 bits', (t) => {
  const buf = poisoned(8);
  emitVxlan({ vni: 0x1abcdef }, buf, 0);
  t.deepEqual(buf, hex('08 00 00 00 ab cd ef 00'));
  const v = view(buf);
  v.vni = 0xffffff;
  t.is(v.vni, 0xffffff);
  t.is(v.reserved2, 0);
});

test('property: emit then parse gives back the repr, into a poisoned buffer, at any offset', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffff }), fc.uint8Array({ maxLength: 64, size: 'max' }), fc.integer({ min: 1, max: 40 }), (vni, inner, offset) => {
      const buf = poisoned(offset + vxlanBufferLen(inner.length) + 3);
      buf.set(inner, offset + VXLAN_HEADER_LEN);
      const written = emitVxlan({ vni }, buf, offset);
      const v = new VxlanView();
      return (
        written === VXLAN_HEADER_LEN &&
        v.check(buf, offset, vxlanBufferLen(inner.length)) === PacketOk &&
        v.reserved1 === 0 &&
        v.reserved2 === 0 &&
        v.payloadLength === inner.length &&
        Buffer.from(v.payload()).equals(inner) &&
        (parseVxlan(v) as { vni: number }).vni === vni
      );
    }),
  );
  t.pass();
});

test('property: check never throws, and after PacketOk every accessor stays inside the window', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(randomWindow(24), (w) => {
      const v = new VxlanView();
      const result = v.check(fence(w), w.offset, w.available);
      if (result !== PacketOk) return result === PacketError.Truncated && w.available < VXLAN_HEADER_LEN;
      accepted++;
      exerciseVxlan(v, w.available);
      return true;
    }),
    { numRuns: 1000 },
  );
  // Only windows under 8 bytes are refused: most runs must reach the accessors.
  t.true(accepted > 500, `only ${accepted} of 1000 accepted`);
});

test('property: check refuses a window that is not inside the buffer, and reads nothing outside it', (t) => {
  const edge = fc.integer({ min: -2, max: 30 });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 24, size: 'max' }), edge, edge, (bytes, offset, available) => {
      const result = new VxlanView().check(fenced(bytes, 0, bytes.length), offset, available);
      const inside = offset >= 0 && available >= VXLAN_HEADER_LEN && offset + available <= bytes.length;
      return inside || result !== PacketOk;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
