import test from 'ava';
import fc from 'fast-check';
import { parseIpv4 } from '../../src/packet/addr.js';
import { PacketError, PacketOk } from '../../src/packet/errors.js';
import { emitUdp, parseUdp, udpBufferLen, UdpView, UDP_HEADER_LEN, type UdpRepr } from '../../src/packet/udp.js';
import { exerciseUdp, fence, randomWindow } from '../helpers/bounds.js';
import { hex, poisoned } from '../helpers/bytes.js';

const SRC = parseIpv4('10.244.1.2')!;
const DST = parseIpv4('10.244.2.2')!;

// `dig @10.244.2.2 example.com A` as the kernel sent it (test/fixtures/dns.pcap, frame 1, from
// byte 34): the UDP header, then the query with an EDNS0 OPT record and a cookie.
const GOLDEN = hex(`
  c4 97 00 35 00 3c 05 4f
  83 8f 01 20 00 01 00 00 00 00 00 01 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01
  00 00 29 04 d0 00 00 00 00 00 0c 00 0a 00 08 2a 36 61 b0 80 4e b8 04
`);

test('golden datagram: fields and checksum', (t) => {
  const view = UdpView.checked(GOLDEN);
  if (typeof view === 'number') return t.fail(`checked: ${view}`);
  t.is(view.srcPort, 50327);
  t.is(view.dstPort, 53);
  t.is(view.length, 60);
  t.is(view.payloadLength, 52);
  t.true(view.verifyChecksum(SRC, DST));
  t.deepEqual(parseUdp(view, { src: SRC, dst: DST }), { srcPort: 50327, dstPort: 53 });
});

test('golden datagram: emit reproduces the bytes', (t) => {
  const buf = poisoned(GOLDEN.length);
  GOLDEN.copy(buf, UDP_HEADER_LEN, UDP_HEADER_LEN);
  emitUdp({ srcPort: 50327, dstPort: 53 }, buf, 0, GOLDEN.length - UDP_HEADER_LEN, { src: SRC, dst: DST });
  t.deepEqual(buf, GOLDEN);
});

test('a flipped bit fails the checksum', (t) => {
  const copy = Buffer.from(GOLDEN);
  copy[20] ^= 0x01;
  const view = UdpView.checked(copy) as UdpView;
  t.is(parseUdp(view, { src: SRC, dst: DST }), PacketError.BadChecksum);
});

test('checksum 0 means none and is accepted', (t) => {
  const copy = Buffer.from(GOLDEN);
  copy[6] = 0;
  copy[7] = 0;
  t.true((UdpView.checked(copy) as UdpView).verifyChecksum(SRC, DST));
});

test('impossible lengths are refused by the checked constructor', (t) => {
  t.is(UdpView.checked(GOLDEN.subarray(0, 7)), PacketError.Truncated);
  const short = Buffer.from(GOLDEN);
  short.writeUInt16BE(7, 4); // length field below the header size
  t.is(UdpView.checked(short), PacketError.BadLength);
  const long = Buffer.from(GOLDEN);
  long.writeUInt16BE(GOLDEN.length + 1, 4); // length field past the buffer
  t.is(UdpView.checked(long), PacketError.BadLength);
  // The view honours the caller's bound too, not only the buffer's end.
  t.is(new UdpView().check(GOLDEN, 0, 20), PacketError.BadLength);
  t.is(new UdpView().check(GOLDEN, 50, 20), PacketError.Truncated); // past the end
});

test('destination port 0 is refused by parse', (t) => {
  const copy = Buffer.from(GOLDEN);
  copy.writeUInt16BE(0, 2);
  t.is(parseUdp(UdpView.checked(copy) as UdpView), PacketError.BadField);
});

test('a view works at a non-zero offset', (t) => {
  const framed = Buffer.concat([Buffer.alloc(14, 0xee), GOLDEN]);
  const view = new UdpView();
  t.is(view.check(framed, 14), PacketOk);
  t.is(view.dstPort, 53);
  t.true(view.verifyChecksum(SRC, DST));
});

const repr = fc.record<UdpRepr>({ srcPort: fc.integer({ min: 0, max: 0xffff }), dstPort: fc.integer({ min: 1, max: 0xffff }) });

test('property: emit then parse gives back the repr, into a poisoned buffer, at any offset', (t) => {
  fc.assert(
    fc.property(repr, fc.uint8Array({ maxLength: 64, size: 'max' }), fc.nat({ max: 16 }), fc.nat(), fc.nat(), (r, payload, offset, src, dst) => {
      const buf = poisoned(offset + udpBufferLen(payload.length));
      buf.set(payload, offset + UDP_HEADER_LEN);
      const addrs = { src: src >>> 0, dst: dst >>> 0 };
      const written = emitUdp(r, buf, offset, payload.length, addrs);
      const view = new UdpView();
      return (
        written === UDP_HEADER_LEN &&
        view.check(buf, offset) === PacketOk &&
        view.length === udpBufferLen(payload.length) &&
        view.checksum !== 0 &&
        JSON.stringify(parseUdp(view, addrs)) === JSON.stringify(r)
      );
    }),
  );
  t.pass();
});

test('property: check never throws, and after PacketOk every accessor stays inside the window', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(randomWindow(40, plausibleLength), fc.nat(), fc.nat(), (w, src, dst) => {
      const view = new UdpView();
      const result = view.check(fence(w), w.offset, w.available);
      if (result !== PacketOk) return result === PacketError.Truncated || result === PacketError.BadLength;
      accepted++;
      exerciseUdp(view, w.available, { src: src >>> 0, dst: dst >>> 0 });
      return true;
    }),
    { numRuns: 500 },
  );
  // Random bytes are refused most of the time: make sure the accepted path was walked too.
  t.true(accepted > 100, `only ${accepted} of 500 accepted`);
});

/** A length field from 8 up to the body's length, when the body holds a header. */
function plausibleLength(body: Uint8Array): void {
  if (body.length < UDP_HEADER_LEN) return;
  const length = UDP_HEADER_LEN + (body[5] % (body.length - UDP_HEADER_LEN + 1));
  body[4] = length >>> 8;
  body[5] = length & 0xff;
}
