import test from 'ava';
import fc from 'fast-check';
import { parseIpv4, parseMac } from '../../src/packet/addr.js';
import { ARP_LEN, ARP_OP, arpBufferLen, ArpView, emitArp, emitArpReply, parseArp, type ArpRepr } from '../../src/packet/arp.js';
import { PacketError, PacketOk } from '../../src/packet/errors.js';
import { emitEthernet, EthernetView, ETHERTYPE, parseEthernet, type EthernetRepr } from '../../src/packet/ethernet.js';
import { exerciseArp, fence, randomWindow } from '../helpers/bounds.js';
import { hex, poisoned } from '../helpers/bytes.js';

const POD_A_MAC = parseMac('02:00:00:00:0a:01')!;
const POD_B_MAC = parseMac('02:00:00:00:0a:02')!;
const POD_A_IP = parseIpv4('10.244.1.2')!;
const GATEWAY_IP = parseIpv4('10.244.1.1')!;

// test/fixtures/arp-ping.pcap, frame 1, whole frame. tcpdump -v: "Ethernet (len 6), IPv4 (len 4),
// Request who-has 10.244.1.1 tell 10.244.1.2, length 28" from 02:00:00:00:0a:01 to broadcast.
const REQUEST_FRAME = hex(`
  ff ff ff ff ff ff 02 00 00 00 0a 01 08 06
  00 01 08 00 06 04 00 01 02 00 00 00 0a 01 0a f4 01 02 00 00 00 00 00 00 0a f4 01 01
`);

// test/fixtures/arp-ping.pcap, frame 2, whole frame. tcpdump -v: "Ethernet (len 6), IPv4 (len 4),
// Reply 10.244.1.1 is-at 02:00:00:00:0a:02, length 28", sent to 02:00:00:00:0a:01.
const REPLY_FRAME = hex(`
  02 00 00 00 0a 01 02 00 00 00 0a 02 08 06
  00 01 08 00 06 04 00 02 02 00 00 00 0a 02 0a f4 01 01 02 00 00 00 0a 01 0a f4 01 02
`);

const REQUEST = REQUEST_FRAME.subarray(14);
const REPLY = REPLY_FRAME.subarray(14);

test('golden request: fields', (t) => {
  const view = ArpView.checked(REQUEST);
  if (typeof view === 'number') return t.fail(`checked: ${view}`);
  t.is(view.hardwareType, 1);
  t.is(view.protocolType, ETHERTYPE.IPV4);
  t.is(view.hardwareLength, 6);
  t.is(view.protocolLength, 4);
  t.is(view.operation, ARP_OP.REQUEST);
  t.deepEqual(parseArp(view), {
    operation: ARP_OP.REQUEST,
    senderMac: POD_A_MAC,
    senderIp: POD_A_IP,
    targetMac: 0,
    targetIp: GATEWAY_IP,
  });
});

test('golden reply: fields', (t) => {
  const view = ArpView.checked(REPLY) as ArpView;
  t.deepEqual(parseArp(view), {
    operation: ARP_OP.REPLY,
    senderMac: POD_B_MAC,
    senderIp: GATEWAY_IP,
    targetMac: POD_A_MAC,
    targetIp: POD_A_IP,
  });
});

test('golden frames: emit of the parsed reprs reproduces the whole frame', (t) => {
  for (const golden of [REQUEST_FRAME, REPLY_FRAME]) {
    const eth = new EthernetView();
    t.is(eth.check(golden), PacketOk);
    const ethRepr = parseEthernet(eth) as EthernetRepr;
    const arp = ArpView.checked(golden, eth.payloadOffset, eth.payloadLength) as ArpView;
    const arpRepr = parseArp(arp) as ArpRepr;
    const buf = poisoned(golden.length);
    const at = emitEthernet(ethRepr, buf, 0);
    t.is(at + emitArp(arpRepr, buf, at), golden.length);
    t.is(arpBufferLen(arpRepr), ARP_LEN);
    t.deepEqual(buf, golden);
  }
});

test('emitArpReply answers the golden request with the golden reply', (t) => {
  const request = ArpView.checked(REQUEST) as ArpView;
  const buf = poisoned(ARP_LEN + 3);
  t.is(emitArpReply(request, POD_B_MAC, buf, 3), ARP_LEN);
  t.deepEqual(buf.subarray(3), REPLY);
});

test('emitArpReply can rewrite the request in place', (t) => {
  const frame = Buffer.from(REQUEST_FRAME);
  const request = ArpView.checked(frame, 14) as ArpView;
  emitArpReply(request, POD_B_MAC, frame, 14);
  t.deepEqual(frame.subarray(14), REPLY);
});

test('Ethernet padding after the 28 bytes is ignored', (t) => {
  // On a real wire the 42-byte frame is padded to 60; the TAP capture has none.
  const padded = Buffer.concat([REQUEST_FRAME, Buffer.alloc(18)]);
  const eth = EthernetView.checked(padded) as EthernetView;
  const arp = ArpView.checked(padded, eth.payloadOffset, eth.payloadLength) as ArpView;
  t.is(arp.targetIp, GATEWAY_IP);
  t.is((parseArp(arp) as ArpRepr).senderMac, POD_A_MAC);
});

test('parse refuses anything but Ethernet/IPv4', (t) => {
  const cases: Array<[string, (b: Buffer) => void]> = [
    ['hardware type 6 (IEEE 802)', (b) => b.writeUInt16BE(6, 0)],
    ['protocol type 0x86dd', (b) => b.writeUInt16BE(ETHERTYPE.IPV6, 2)],
    ['hardware length 8', (b) => b.writeUInt8(8, 4)],
    ['protocol length 16', (b) => b.writeUInt8(16, 5)],
  ];
  for (const [what, spoil] of cases) {
    const copy = Buffer.from(REQUEST);
    spoil(copy);
    t.is(parseArp(ArpView.checked(copy) as ArpView), PacketError.BadField, what);
  }
});

test('unknown operations are carried as numbers', (t) => {
  const copy = Buffer.from(REQUEST);
  copy.writeUInt16BE(8, 6); // InARP request
  t.is((parseArp(ArpView.checked(copy) as ArpView) as ArpRepr).operation, 8);
});

test('impossible lengths are refused by the checked constructor', (t) => {
  t.is(ArpView.checked(REQUEST.subarray(0, 27)), PacketError.Truncated);
  t.is(ArpView.checked(Buffer.alloc(0)), PacketError.Truncated);
  // The caller's bound is honoured, counted from the offset.
  t.is(new ArpView().check(REQUEST_FRAME, 14, 27), PacketError.Truncated);
  t.is(new ArpView().check(REQUEST_FRAME, 15), PacketError.Truncated); // one byte short of the end
  t.is(new ArpView().check(REQUEST_FRAME, 14, 29), PacketError.Truncated); // bound past the buffer
  t.is(new ArpView().check(REQUEST_FRAME, 14), PacketOk);
});

test('setters rewrite in place', (t) => {
  const copy = Buffer.from(REQUEST);
  const view = ArpView.checked(copy) as ArpView;
  view.operation = ARP_OP.REPLY;
  view.senderMac = POD_B_MAC;
  view.senderIp = GATEWAY_IP;
  view.targetMac = POD_A_MAC;
  view.targetIp = POD_A_IP;
  t.deepEqual(copy, REPLY);
});

const repr = fc.record<ArpRepr>({
  operation: fc.integer({ min: 0, max: 0xffff }),
  senderMac: fc.integer({ min: 0, max: 0xffffffffffff }),
  senderIp: fc.integer({ min: 0, max: 0xffffffff }),
  targetMac: fc.integer({ min: 0, max: 0xffffffffffff }),
  targetIp: fc.integer({ min: 0, max: 0xffffffff }),
});

test('property: emit then parse gives back the repr, into a poisoned buffer, at any offset', (t) => {
  fc.assert(
    fc.property(repr, fc.nat({ max: 16 }), (r, offset) => {
      const buf = poisoned(offset + arpBufferLen(r));
      const view = new ArpView();
      return (
        emitArp(r, buf, offset) === ARP_LEN &&
        view.check(buf, offset) === PacketOk &&
        JSON.stringify(parseArp(view)) === JSON.stringify(r)
      );
    }),
  );
  t.pass();
});

test('property: check never throws, and after PacketOk every accessor stays inside the window', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(randomWindow(40), (w) => {
      const view = new ArpView();
      const result = view.check(fence(w), w.offset, w.available);
      if (result !== PacketOk) return result === PacketError.Truncated && w.available < ARP_LEN;
      accepted++;
      exerciseArp(view, w.available);
      return true;
    }),
    { numRuns: 500 },
  );
  // Random bytes are refused most of the time: make sure the accepted path was walked too.
  t.true(accepted > 100, `only ${accepted} of 500 accepted`);
});
