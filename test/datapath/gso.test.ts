import test from 'ava';
import fc from 'fast-check';
import { parseIpv4 } from '../../src/packet/addr.js';
import { pseudoHeaderSum, finishChecksum } from '../../src/packet/checksum.js';
import { emitEthernet, ETHERTYPE } from '../../src/packet/ethernet.js';
import { emitIpv4, IPPROTO, Ipv4View } from '../../src/packet/ipv4.js';
import { emitTcp, TcpView, TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH } from '../../src/packet/tcp.js';
import { completeChecksum, GsoError, segmentTcpV4 } from '../../src/datapath/gso.js';

const SRC = parseIpv4('10.244.1.2')!;
const DST = parseIpv4('10.244.2.3')!;

/** A super-frame as a TSO-capable pod sends it: one IP header, checksum left partial. */
function superFrame(payload: Uint8Array, flags: number, seq = 1000): Buffer {
  const tcpLen = 32 + payload.length;
  const f = Buffer.alloc(14 + 20 + tcpLen);
  emitEthernet({ dstMac: 1, srcMac: 2, ethertype: ETHERTYPE.IPV4 }, f, 0);
  emitIpv4({ src: SRC, dst: DST, protocol: IPPROTO.TCP, ttl: 64, payloadLength: tcpLen, dscp: 0, ecn: 0, identification: 100, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 }, f, 14);
  f.set(payload, 14 + 20 + 32);
  emitTcp({ srcPort: 5201, dstPort: 40000, seq, ack: 7, flags, window: 500, urgent: 0, options: { sackPermitted: false, timestamps: { tsval: 1, tsecr: 2 } } }, f, 34, payload.length);
  // NEEDS_CSUM: the field holds the (uncomplemented) pseudo-header sum.
  const pseudo = pseudoHeaderSum(SRC, DST, IPPROTO.TCP, tcpLen);
  f.writeUInt16BE(~finishChecksum(pseudo) & 0xffff, 34 + 16);
  return f;
}

test('completeChecksum turns a partial checksum into a valid one', (t) => {
  const f = superFrame(Buffer.from('hello, pod'), TCP_ACK | TCP_PSH);
  const tcp = TcpView.checked(f, 34) as TcpView;
  t.false(tcp.verifyChecksum(SRC, DST));
  t.is(completeChecksum(f, 0, f.length, 34, 16), GsoError.Ok);
  t.true(tcp.verifyChecksum(SRC, DST));
  t.is(completeChecksum(f, 0, f.length, 34, f.length), GsoError.BadChecksumOffsets);
});

test('property: segments carry the payload in order with valid checksums, seq and flags', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 1, max: 1448 }), fc.boolean(), (size, gso, fin) => {
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 7) & 0xff;
      const flags = TCP_ACK | TCP_PSH | TCP_CWR | (fin ? TCP_FIN : 0);
      const f = superFrame(payload, flags, 0xfffff000);
      const segments: Buffer[] = [];
      const err = segmentTcpV4(f, 0, f.length, gso, Buffer.alloc(2000), (seg, len) => segments.push(Buffer.from(seg.subarray(0, len))));
      if (err !== GsoError.Ok) return false;
      if (segments.length !== Math.max(1, Math.ceil(size / gso))) return false;
      const parts: Buffer[] = [];
      let seq = 0xfffff000;
      for (const [i, s] of segments.entries()) {
        const ip = Ipv4View.checked(s, 14) as Ipv4View;
        if (typeof ip === 'number' || !ip.verifyChecksum() || ip.identification !== 100 + i) return false;
        const tcp = TcpView.checked(s, 34, ip.payloadLength) as TcpView;
        if (typeof tcp === 'number' || !tcp.verifyChecksum(SRC, DST) || tcp.seqNumber !== seq) return false;
        const last = i === segments.length - 1;
        if (tcp.fin !== (fin && last) || tcp.psh !== last || tcp.cwr !== (i === 0)) return false;
        parts.push(s.subarray(tcp.payloadOffset));
        seq = (seq + tcp.payloadLength) >>> 0;
      }
      return Buffer.concat(parts).equals(payload);
    }),
  );
  t.pass();
});

test('refuses what it cannot segment', (t) => {
  const f = superFrame(Buffer.alloc(3000), TCP_ACK);
  const out = Buffer.alloc(2000);
  t.is(segmentTcpV4(f, 0, f.length, 0, out, () => {}), GsoError.BadSegmentSize);
  t.is(segmentTcpV4(f, 0, 40, 1000, out, () => {}), GsoError.NotTcpV4);
  t.is(segmentTcpV4(f, 0, f.length, 1998, out, () => {}), GsoError.NoRoom);
  const udp = Buffer.from(f);
  udp[23] = IPPROTO.UDP;
  t.is(segmentTcpV4(udp, 0, udp.length, 1000, out, () => {}), GsoError.NotTcpV4);
});
