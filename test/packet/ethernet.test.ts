import test from 'ava';
import fc from 'fast-check';
import { parseMac } from '../../src/packet/addr.js';
import { PacketError, PacketOk } from '../../src/packet/errors.js';
import {
  emitEthernet,
  ethernetBufferLen,
  EthernetView,
  ETHERNET_HEADER_LEN,
  ETHERTYPE,
  parseEthernet,
  VLAN_TAG_LEN,
  type EthernetRepr,
} from '../../src/packet/ethernet.js';
import { exerciseEthernet, fence, fenced, randomWindow } from '../helpers/bounds.js';
import { hex, poisoned } from '../helpers/bytes.js';

const POD_A = parseMac('02:00:00:00:0a:01')!;
const POD_B = parseMac('02:00:00:00:0a:02')!;
const BROADCAST = parseMac('ff:ff:ff:ff:ff:ff')!;

// The kernel's who-has for the gateway before `ping 10.244.2.2` (test/fixtures/arp-ping.pcap,
// frame 1). tcpdump -e: 02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42.
const ARP_REQUEST = hex(`
  ff ff ff ff ff ff 02 00 00 00 0a 01 08 06
  00 01 08 00 06 04 00 01 02 00 00 00 0a 01 0a f4 01 02 00 00 00 00 00 00 0a f4 01 01
`);

// The pod's IPv6 neighbour solicitation (test/fixtures/ipv6-ping.pcap, frame 1). tcpdump -e:
// 02:00:00:00:0a:01 > 33:33:ff:00:00:01, ethertype IPv6 (0x86dd), length 86.
const IPV6_NS = hex(`
  33 33 ff 00 00 01 02 00 00 00 0a 01 86 dd
  60 00 00 00 00 20 3a ff fd 00 00 0a 00 00 00 00 00 00 00 00 00 00 00 02 ff 02 00 00 00 00 00 00
  00 00 00 01 ff 00 00 01 87 00 73 84 00 00 00 00 fd 00 00 0a 00 00 00 00 00 00 00 00 00 00 00 01
  01 01 02 00 00 00 0a 01
`);

// No VLAN device can be made here, so the tag is spliced into ARP_REQUEST after the MACs:
// TPID 0x8100, TCI 0x2007. tcpdump -e reads it back as "ethertype 802.1Q (0x8100), length 46:
// vlan 7, p 1, ethertype ARP (0x0806) ... Request who-has 10.244.1.1 tell 10.244.1.2".
const TAGGED = Buffer.concat([ARP_REQUEST.subarray(0, 12), hex('81 00 20 07'), ARP_REQUEST.subarray(12)]);

// Double-tagged: S-tag 0x88a8 TCI 0x3064, then the C-tag above. tcpdump -e: "ethertype
// 802.1Q-QinQ (0x88a8), length 50: vlan 100, p 1, DEI, ethertype 802.1Q (0x8100), vlan 7, p 1,
// ethertype ARP (0x0806)".
const QINQ = Buffer.concat([ARP_REQUEST.subarray(0, 12), hex('88 a8 30 64 81 00 20 07'), ARP_REQUEST.subarray(12)]);

test('golden ARP frame: fields', (t) => {
  const view = EthernetView.checked(ARP_REQUEST);
  if (typeof view === 'number') return t.fail(`checked: ${view}`);
  t.is(view.dstMac, BROADCAST);
  t.is(view.srcMac, POD_A);
  t.is(view.ethertype, ETHERTYPE.ARP);
  t.false(view.hasVlan);
  t.is(view.vlanTpid, 0);
  t.is(view.vlanId, 0);
  t.is(view.payloadOffset, ETHERNET_HEADER_LEN);
  t.is(view.payloadLength, 28);
  t.deepEqual(view.payload(), ARP_REQUEST.subarray(14));
  t.deepEqual(parseEthernet(view), { dstMac: BROADCAST, srcMac: POD_A, ethertype: ETHERTYPE.ARP });
});

test('golden IPv6 frame: multicast destination and ethertype', (t) => {
  const view = EthernetView.checked(IPV6_NS) as EthernetView;
  t.is(view.dstMac, parseMac('33:33:ff:00:00:01')!);
  t.is(view.srcMac, POD_A);
  t.is(view.ethertype, ETHERTYPE.IPV6);
  t.is(view.payloadLength, 72);
});

test('golden frames: emit of the parsed repr reproduces the bytes', (t) => {
  for (const golden of [ARP_REQUEST, IPV6_NS, TAGGED, QINQ]) {
    const repr = parseEthernet(EthernetView.checked(golden) as EthernetView) as EthernetRepr;
    const buf = poisoned(golden.length);
    const written = emitEthernet(repr, buf, 0);
    t.is(written, ethernetBufferLen(repr));
    golden.copy(buf, written, written);
    t.deepEqual(buf, golden);
  }
});

test('802.1Q: a tag is read and the real ethertype is behind it', (t) => {
  const view = EthernetView.checked(TAGGED);
  if (typeof view === 'number') return t.fail(`checked: ${view}`);
  t.true(view.hasVlan);
  t.is(view.vlanTpid, ETHERTYPE.VLAN);
  t.is(view.tci, 0x2007);
  t.is(view.vlanId, 7);
  t.is(view.pcp, 1);
  t.false(view.dei);
  t.is(view.ethertype, ETHERTYPE.ARP);
  t.is(view.payloadOffset, ETHERNET_HEADER_LEN + VLAN_TAG_LEN);
  t.deepEqual(view.payload(), ARP_REQUEST.subarray(14));
  t.deepEqual(parseEthernet(view), {
    dstMac: BROADCAST,
    srcMac: POD_A,
    ethertype: ETHERTYPE.ARP,
    vlanId: 7,
    pcp: 1,
    dei: false,
    vlanTpid: ETHERTYPE.VLAN,
  });
});

test('802.1Q: emit with a vlanId writes the tag (default TPID 0x8100)', (t) => {
  const buf = poisoned(TAGGED.length);
  const repr: EthernetRepr = { dstMac: BROADCAST, srcMac: POD_A, ethertype: ETHERTYPE.ARP, vlanId: 7, pcp: 1 };
  t.is(ethernetBufferLen(repr, 28), TAGGED.length);
  t.is(emitEthernet(repr, buf, 0), 18);
  ARP_REQUEST.copy(buf, 18, 14);
  t.deepEqual(buf, TAGGED);
});

test('QinQ: the outer tag is read, the inner one is left as payload', (t) => {
  const view = EthernetView.checked(QINQ) as EthernetView;
  t.is(view.vlanTpid, ETHERTYPE.QINQ);
  t.is(view.vlanId, 100);
  t.is(view.pcp, 1);
  t.true(view.dei);
  t.is(view.ethertype, ETHERTYPE.VLAN);
  // The payload starts with the inner tag's TCI: a second view four bytes further on reads the
  // inner tag (its MACs are then meaningless).
  t.deepEqual(view.payload().subarray(0, 4), hex('20 07 08 06'));
  const inner = new EthernetView();
  t.is(inner.check(QINQ, VLAN_TAG_LEN), PacketOk);
  t.is(inner.vlanTpid, ETHERTYPE.VLAN);
  t.is(inner.vlanId, 7);
  t.is(inner.ethertype, ETHERTYPE.ARP);
  t.deepEqual(inner.payload(), ARP_REQUEST.subarray(14));
});

test('the reserved VLAN ID 4095 is refused by parse', (t) => {
  const copy = Buffer.from(TAGGED);
  copy.writeUInt16BE(0x2fff, 14);
  t.is(parseEthernet(EthernetView.checked(copy) as EthernetView), PacketError.BadField);
});

test('unknown ethertypes are carried as numbers', (t) => {
  const copy = Buffer.from(ARP_REQUEST);
  copy.writeUInt16BE(0x88cc, 12); // LLDP
  t.is((parseEthernet(EthernetView.checked(copy) as EthernetView) as EthernetRepr).ethertype, 0x88cc);
});

test('setters rewrite in place, and cannot turn an untagged view into a tagged one', (t) => {
  const copy = Buffer.from(ARP_REQUEST);
  const view = EthernetView.checked(copy) as EthernetView;
  view.dstMac = POD_B;
  view.srcMac = POD_A;
  t.deepEqual(copy.subarray(0, 12), hex('02 00 00 00 0a 02 02 00 00 00 0a 01'));
  view.ethertype = ETHERTYPE.VLAN;
  t.false(view.hasVlan); // judged once, by check
  t.is(view.ethertype, ETHERTYPE.VLAN);
  const tagged = EthernetView.checked(Buffer.from(TAGGED)) as EthernetView;
  tagged.ethertype = ETHERTYPE.IPV4;
  t.is(tagged.buf[16], 0x08);
  t.is(tagged.vlanTpid, ETHERTYPE.VLAN); // the tag is untouched
});

test('impossible lengths are refused by the checked constructor', (t) => {
  t.is(EthernetView.checked(ARP_REQUEST.subarray(0, 13)), PacketError.Truncated);
  t.is(EthernetView.checked(ARP_REQUEST.subarray(0, 14)) instanceof EthernetView, true); // header, no payload
  t.is(EthernetView.checked(TAGGED.subarray(0, 17)), PacketError.Truncated); // tag announced, not there
  t.is(EthernetView.checked(TAGGED.subarray(0, 18)) instanceof EthernetView, true);
  // The caller's bound is honoured, counted from the offset.
  t.is(new EthernetView().check(TAGGED, 0, 16), PacketError.Truncated);
  t.is(new EthernetView().check(ARP_REQUEST, 30, 14), PacketError.Truncated); // past the end
  t.is(new EthernetView().check(ARP_REQUEST, 28, 14), PacketOk); // exactly to the end
});

test('a view works at a non-zero offset with a bound', (t) => {
  const framed = Buffer.concat([Buffer.alloc(6, 0xee), TAGGED, Buffer.alloc(9, 0xee)]);
  const view = new EthernetView();
  t.is(view.check(framed, 6, TAGGED.length), PacketOk);
  t.is(view.vlanId, 7);
  t.is(view.ethertype, ETHERTYPE.ARP);
  t.is(view.payloadOffset, 6 + 18);
  t.is(view.payloadLength, 28);
});

const mac = fc.integer({ min: 0, max: 0xffffffffffff });
const untagged = fc.record<EthernetRepr>({ dstMac: mac, srcMac: mac, ethertype: fc.integer({ min: 0, max: 0xffff }) });
const tagged = fc.record<EthernetRepr>({
  dstMac: mac,
  srcMac: mac,
  // A tagged frame's inner type may be anything, 0x8100 included (QinQ).
  ethertype: fc.integer({ min: 0, max: 0xffff }),
  vlanId: fc.integer({ min: 0, max: 0xffe }),
  pcp: fc.integer({ min: 0, max: 7 }),
  dei: fc.boolean(),
  vlanTpid: fc.constantFrom<number>(ETHERTYPE.VLAN, ETHERTYPE.QINQ),
});
// An untagged repr whose ethertype is a TPID would read back as tagged: not a valid repr.
const repr = fc.oneof(
  untagged.filter((r) => r.ethertype !== ETHERTYPE.VLAN && r.ethertype !== ETHERTYPE.QINQ),
  tagged,
);

test('property: emit then parse gives back the repr, into a poisoned buffer, at any offset', (t) => {
  fc.assert(
    fc.property(repr, fc.nat({ max: 64 }), fc.nat({ max: 16 }), (r, payloadLength, offset) => {
      const buf = poisoned(offset + ethernetBufferLen(r, payloadLength));
      const written = emitEthernet(r, buf, offset);
      const view = new EthernetView();
      return (
        written === ethernetBufferLen(r) &&
        view.check(buf, offset) === PacketOk &&
        view.payloadOffset === offset + written &&
        view.payloadLength === payloadLength &&
        JSON.stringify(parseEthernet(view)) === JSON.stringify(r)
      );
    }),
  );
  t.pass();
});

test('property: check never throws, and after PacketOk every accessor stays inside the window', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(randomWindow(40, withTpid), (w) => {
      const view = new EthernetView();
      const result = view.check(fence(w), w.offset, w.available);
      if (result !== PacketOk) return result === PacketError.Truncated;
      accepted++;
      exerciseEthernet(view, w.available);
      // A QinQ frame's inner tag is read by a second view four bytes on, fenced the same way.
      const inner = new EthernetView();
      const [at, end] = [w.offset + VLAN_TAG_LEN, w.offset + w.available];
      if (view.ethertype === ETHERTYPE.VLAN && inner.check(fenced(w.bytes, at, end), at, end - at) === PacketOk) {
        exerciseEthernet(inner, end - at);
      }
      return true;
    }),
    { numRuns: 500 },
  );
  // Random bytes are refused most of the time: make sure the accepted path was walked too.
  t.true(accepted > 150, `only ${accepted} of 500 accepted`);
});

/** Half the windows start with a TPID (0x8100 or 0x88a8), so that the tagged path is exercised too. */
function withTpid(body: Uint8Array): void {
  if (body.length < 14) return;
  body[12] = (body[0] & 1) === 0 ? 0x81 : 0x88;
  body[13] = body[12] === 0x81 ? 0x00 : 0xa8;
  // And sometimes an inner C-tag behind an S-tag: the QinQ layout.
  if (body.length >= 18 && (body[1] & 1) === 1) {
    body[16] = 0x81;
    body[17] = 0x00;
  }
}
