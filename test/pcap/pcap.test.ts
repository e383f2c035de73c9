import test from 'ava';
import {
  capturedLength,
  encodePcapGlobalHeader,
  encodePcapRecord,
  pcapGlobalHeaderLen,
  pcapRecordLen,
  type PcapFileHeader,
} from '../../src/pcap/pcap.js';
import { hex, poisoned } from '../helpers/bytes.js';

// 2023-11-14T22:13:20.123456789Z: 1700000000 s = 0x6553f100, 123456 µs = 0x0001e240,
// 123456789 ns = 0x075bcd15.
const TS = 1_700_000_000_123_456_789n;
const DATA = hex('de ad be ef 01');

// Little-endian file header, draft-ietf-opsawg-pcap section 4, field by field.
const GOLDEN_HEADER_US = hex(`
  d4 c3 b2 a1 | 02 00 | 04 00 | 00 00 00 00 | 00 00 00 00 | ff ff 00 00 | 01 00 00 00
`);
const GOLDEN_HEADER_NS = hex(`
  4d 3c b2 a1 | 02 00 | 04 00 | 00 00 00 00 | 00 00 00 00 | 00 00 04 00 | 01 00 00 00
`);
// Record: seconds, fraction, captured length, original length, data (no padding in pcap).
const GOLDEN_RECORD_US = hex(`
  00 f1 53 65 | 40 e2 01 00 | 05 00 00 00 | 05 00 00 00 | de ad be ef 01
`);
const GOLDEN_RECORD_NS = hex(`
  00 f1 53 65 | 15 cd 5b 07 | 05 00 00 00 | 05 00 00 00 | de ad be ef 01
`);

const US: PcapFileHeader = { resolution: 'us', snaplen: 65535 };
const NS: PcapFileHeader = { resolution: 'ns', snaplen: 262144 };

test('golden file headers, microsecond and nanosecond magic', (t) => {
  for (const [header, golden] of [[US, GOLDEN_HEADER_US], [NS, GOLDEN_HEADER_NS]] as const) {
    const buf = poisoned(24);
    t.is(encodePcapGlobalHeader(header, buf, 0), 24);
    t.deepEqual(buf, golden);
  }
  t.is(pcapGlobalHeaderLen(), 24);
});

test('golden records: microseconds truncate, nanoseconds are exact', (t) => {
  for (const [header, golden] of [[US, GOLDEN_RECORD_US], [NS, GOLDEN_RECORD_NS]] as const) {
    const buf = poisoned(golden.length);
    t.is(encodePcapRecord({ timestampNs: TS, data: DATA }, header, buf, 0), golden.length);
    t.deepEqual(buf, golden);
  }
});

test('encoders write exactly their length at a non-zero offset and touch nothing else', (t) => {
  const offset = 7;
  const buf = poisoned(offset + 24 + pcapRecordLen(DATA.length) + 5);
  const h = encodePcapGlobalHeader(NS, buf, offset);
  const r = encodePcapRecord({ timestampNs: TS, data: DATA }, NS, buf, offset + h);
  t.is(h, pcapGlobalHeaderLen());
  t.is(r, pcapRecordLen(capturedLength(DATA.length, NS.snaplen)));
  t.deepEqual(buf.subarray(0, offset), poisoned(offset));
  t.deepEqual(buf.subarray(offset, offset + h), GOLDEN_HEADER_NS);
  t.deepEqual(buf.subarray(offset + h, offset + h + r), GOLDEN_RECORD_NS);
  t.deepEqual(buf.subarray(offset + h + r), poisoned(5));
});

test('snaplen truncates the stored bytes and keeps the original length', (t) => {
  const header: PcapFileHeader = { resolution: 'us', snaplen: 3 };
  t.is(capturedLength(5, 3), 3);
  const buf = poisoned(pcapRecordLen(3));
  t.is(encodePcapRecord({ timestampNs: TS, data: DATA }, header, buf, 0), 19);
  t.deepEqual(buf, hex('00 f1 53 65 | 40 e2 01 00 | 03 00 00 00 | 05 00 00 00 | de ad be'));
});

test('an upstream original length is kept, never below the captured length', (t) => {
  const buf = poisoned(pcapRecordLen(5));
  encodePcapRecord({ timestampNs: TS, data: DATA, originalLength: 1500 }, US, buf, 0);
  t.is(buf.readUInt32LE(12), 1500);
  encodePcapRecord({ timestampNs: TS, data: DATA, originalLength: 2 }, US, buf, 0);
  t.is(buf.readUInt32LE(12), 5);
});

test('a buffer too short is an error naming the offset, and nothing is written', (t) => {
  const buf = poisoned(30);
  const err = t.throws(() => encodePcapRecord({ timestampNs: TS, data: DATA }, US, buf, 10));
  t.regex(err.message, /21 bytes do not fit at offset 10 of a 30-byte buffer/);
  t.deepEqual(buf, poisoned(30));
  t.throws(() => encodePcapGlobalHeader(US, poisoned(23), 0), { message: /offset 0/ });
  t.throws(() => encodePcapGlobalHeader(US, poisoned(40), -1), { message: /offset -1/ });
  const header = poisoned(24);
  t.throws(() => encodePcapGlobalHeader({ resolution: 'us', snaplen: -1 }, header, 0), { message: /snaplen -1/ });
  t.deepEqual(header, poisoned(24));
});

test('timestamps outside the 32-bit seconds field are refused', (t) => {
  const buf = poisoned(64);
  t.throws(() => encodePcapRecord({ timestampNs: -1n, data: DATA }, US, buf, 0), { message: /outside/ });
  t.throws(() => encodePcapRecord({ timestampNs: 2n ** 32n * 1_000_000_000n, data: DATA }, US, buf, 0), { message: /outside/ });
  // The last representable second (2106-02-07) is fine.
  t.is(encodePcapRecord({ timestampNs: (2n ** 32n - 1n) * 1_000_000_000n + 999_999_999n, data: DATA }, NS, buf, 0), 21);
  t.deepEqual(buf.subarray(0, 8), hex('ff ff ff ff ff c9 9a 3b'));
});
