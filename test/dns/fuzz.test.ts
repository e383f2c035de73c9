/**
 * 100k random and mutated DNS messages through the responder (queries) and the forwarder
 * (upstream replies), from a seeded generator whose seeds are real `dig` queries and dnsmasq
 * answers (corpus.ts, test/fixtures/dns.pcap) plus queries for every kind of zone name.
 *
 * Every case must: not throw; when it answers, produce a message dns-packet decodes whole
 * (every count honoured, no byte left over), that our own record reader accepts too, with the
 * query's ID, QR set, the question echoed byte for byte, and a size within the client's limit.
 * One case in 16 runs against a fenced copy of the input that throws on any read outside the
 * message's window, which plain reads past the end (giving `undefined`, which bit operations
 * quietly turn into 0) would not reveal.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import { seededRandom, type Random } from '../../src/cluster/random.js';
import { readCapture } from '../../src/pcap/reader.js';
import { CLASSIC_UDP_SIZE, HDR } from '../../src/dns/constants.js';
import { parseQuery, Query, QueryProblem } from '../../src/dns/query.js';
import { readRecords } from '../../src/dns/records.js';
import type { Responder } from '../../src/dns/responder.js';
import type { DnsResult } from '../../src/dns/result.js';
import { capturedBytes, CAPTURED } from './corpus.js';
import { ctx, makeQuery, testResponder } from './helpers.js';

const SEED = 0xd15ea5e;
const CASES = 100_000;
const FENCE_EVERY = 16;

class FenceError extends RangeError {
  override name = 'FenceError';
}

/** `bytes` behind a Proxy that throws on an index outside [lo, hi); subarrays stay fenced. */
function fenced(bytes: Uint8Array, lo: number, hi: number): Uint8Array {
  return new Proxy(bytes, {
    get(target, prop) {
      if (typeof prop === 'string' && prop.length > 0 && ((prop.charCodeAt(0) >= 0x30 && prop.charCodeAt(0) <= 0x39) || prop[0] === '-')) {
        const i = Number(prop);
        if (Number.isInteger(i)) {
          if (i < lo || i >= hi) throw new FenceError(`byte ${i} read outside [${lo}, ${hi})`);
          return target[i];
        }
      }
      if (prop === 'subarray') {
        return (begin = 0, end = target.length) => {
          if (begin < lo || end > hi || end < begin) throw new FenceError(`subarray(${begin}, ${end}) outside [${lo}, ${hi})`);
          return fenced(target.subarray(begin, end), 0, end - begin);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function seeds(): Buffer[] {
  const out: Buffer[] = CAPTURED.filter((m) => m.fromClient).map(capturedBytes);
  // test/fixtures/dns.pcap, frame 1: `dig @10.244.2.2 example.com A` from a pod (Ethernet+IPv4+UDP, 42 bytes).
  const pcap = readCapture(readFileSync(new URL('../../../test/fixtures/dns.pcap', import.meta.url)));
  out.push(Buffer.from(pcap.records[0].data.subarray(42)));
  const names = [
    'web.default.svc.cluster.local',
    'db.default.svc.cluster.local',
    '_pg._tcp.db.default.svc.cluster.local',
    'db-0.db.default.svc.cluster.local',
    '10-244-1-7.default.pod.cluster.local',
    'ext.default.svc.cluster.local',
    'alias.default.svc.cluster.local',
    'default.svc.cluster.local',
    '20.0.96.10.in-addr.arpa',
    '4.1.244.10.in-addr.arpa',
    'example.com.default.svc.cluster.local',
    'cluster.local',
  ];
  for (const name of names) {
    for (const type of ['A', 'AAAA', 'SRV', 'PTR', 'ANY', 'TXT']) {
      out.push(makeQuery(name, type));
      out.push(makeQuery(name, type, { edns: 1232, dnssecOk: type === 'A' }));
    }
  }
  return out;
}

function upstreamSeeds(): Buffer[] {
  return CAPTURED.filter((m) => !m.fromClient).map(capturedBytes);
}

function int(random: Random, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}

const INTERESTING = [0, 0xff, 0x3f, 0x40, 0x80, 0xc0, 0xc0, 0xc0, 0x01, 0x0c, 63, 64, 41, 255];

/**
 * Sometimes pure noise; a third of the time only the ID and letter case change (valid queries
 * keep the zone, the caches and the forwarder busy); otherwise one mutation, now and then up
 * to four.
 */
function mutate(seed: Buffer, random: Random): Buffer {
  if (random() < 0.08) return Buffer.from(Array.from({ length: int(random, 80) }, () => int(random, 256)));
  let b = Buffer.from(seed);
  if (b.length >= 2) b.writeUInt16BE(int(random, 0x10000), 0);
  const gentle = random() < 0.35;
  const rounds = gentle ? 1 : 1 + (random() < 0.3 ? int(random, 4) : 0);
  for (let r = 0; r < rounds; r++) {
    const at = b.length === 0 ? 0 : int(random, b.length);
    switch (gentle ? 8 : int(random, 11)) {
      case 0:
        if (b.length > 0) b[at] ^= 1 << int(random, 8);
        break;
      case 1:
        if (b.length > 0) b[at] = INTERESTING[int(random, INTERESTING.length)];
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([int(random, 256)]), b.subarray(at)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(random, 4)))]);
        break;
      case 4:
        b = b.subarray(0, at);
        break;
      case 5: {
        // A section count set to something small but wrong.
        const field = [HDR.QDCOUNT, HDR.ANCOUNT, HDR.NSCOUNT, HDR.ARCOUNT][int(random, 4)];
        if (b.length >= 12) b.writeUInt16BE(int(random, 4), field);
        break;
      }
      case 6:
        // A compression pointer anywhere, to anywhere.
        if (b.length > 13) {
          b[at] = 0xc0 | int(random, 2);
          if (at + 1 < b.length) b[at + 1] = int(random, 256);
        }
        break;
      case 7:
        // An OPT record with a random version, size and option.
        if (b.length >= 12) {
          b.writeUInt16BE(b.readUInt16BE(HDR.ARCOUNT) + 1, HDR.ARCOUNT);
          const opt = Buffer.from([0, 0, 41, int(random, 256), int(random, 256), 0, int(random, 3) === 0 ? int(random, 256) : 0, random() < 0.5 ? 0x80 : 0, 0, 0, 0]);
          b = Buffer.concat([b, opt]);
        }
        break;
      case 8:
        // Flip the case of the letters.
        for (let i = 12; i < b.length; i++) if (random() < 0.5 && ((b[i] >= 0x41 && b[i] <= 0x5a) || (b[i] >= 0x61 && b[i] <= 0x7a))) b[i] ^= 0x20;
        break;
      case 9:
        // Another type or class at the end of the question.
        if (b.length >= 16) b.writeUInt16BE([1, 28, 33, 12, 255, 252, 41, 16, 65, int(random, 65536)][int(random, 10)], Math.min(b.length - 2, 12 + int(random, b.length - 13)));
        break;
      default:
        // Duplicate a stretch (long names, repeated records).
        if (b.length > 0) {
          const len = 1 + int(random, Math.min(64, b.length - at));
          b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        }
    }
  }
  return b;
}

interface Tally {
  answers: number;
  forwards: number;
  drops: number;
  rcodes: Map<number, number>;
  fenced: number;
  replies: number;
  digest: number;
}

function checkAnswer(label: string, result: DnsResult, out: Buffer, outOffset: number, query: Buffer | undefined, parsed: Query | undefined): void {
  const bytes = out.subarray(outOffset, outOffset + result.length);
  if (result.length < 12) throw new Error(`${label}: answer of ${result.length} bytes`);
  let decoded: ReturnType<typeof dnsPacket.decode>;
  try {
    decoded = dnsPacket.decode(Buffer.from(bytes));
  } catch (err) {
    throw new Error(`${label}: dns-packet cannot decode the answer: ${(err as Error).message}\n${Buffer.from(bytes).toString('hex')}`);
  }
  if (dnsPacket.decode.bytes !== bytes.length) throw new Error(`${label}: ${bytes.length - dnsPacket.decode.bytes} bytes left over`);
  if (!decoded.flag_qr) throw new Error(`${label}: QR not set`);
  const counts: [number, number, number] = [bytes.readUInt16BE(HDR.ANCOUNT), bytes.readUInt16BE(HDR.NSCOUNT), bytes.readUInt16BE(HDR.ARCOUNT)];
  const qd = bytes.readUInt16BE(HDR.QDCOUNT);
  const q = new Query();
  let questionEnd = 12;
  if (qd === 1) {
    // Our own reader agrees: the question, then every record.
    const copy = Buffer.from(bytes);
    copy[2] &= 0x7f; // read it as a query
    copy.writeUInt16BE(0, HDR.ANCOUNT);
    copy.writeUInt16BE(0, HDR.NSCOUNT);
    copy.writeUInt16BE(0, HDR.ARCOUNT);
    copy[2] &= 0x87; // opcode 0
    if (parseQuery(copy, 0, copy.length, q) !== QueryProblem.Ok) throw new Error(`${label}: our parser refuses the answer's question`);
    questionEnd = q.questionEnd;
  }
  if (typeof readRecords(bytes, 0, bytes.length, questionEnd, counts) === 'number') throw new Error(`${label}: our record reader refuses the answer`);
  if (query !== undefined && parsed !== undefined) {
    if (bytes.readUInt16BE(0) !== query.readUInt16BE(0)) throw new Error(`${label}: ID not echoed`);
    if (qd === 1 && !bytes.subarray(12, questionEnd).equals(query.subarray(12, parsed.questionEnd))) throw new Error(`${label}: question not echoed`);
  }
}

function runFuzz(seed: number, cases: number, responder: Responder): Tally {
  const random = seededRandom(seed);
  const querySeeds = seeds();
  const replySeeds = upstreamSeeds();
  const tally: Tally = { answers: 0, forwards: 0, drops: 0, rcodes: new Map(), fenced: 0, replies: 0, digest: 0 };
  const out = Buffer.alloc(70000);
  const parsed = new Query();
  const sentIds: number[] = [];
  let now = 1_000_000;
  for (let i = 0; i < cases; i++) {
    now += int(random, 50);
    const isReply = random() < 0.1;
    const input = mutate(isReply ? replySeeds[int(random, replySeeds.length)] : querySeeds[int(random, querySeeds.length)], random);
    if (isReply && input.length >= 2 && sentIds.length > 0 && random() < 0.7) input.writeUInt16BE(sentIds[int(random, sentIds.length)], 0);
    // Sometimes the message sits inside a larger frame, sometimes the answer does.
    const pad = random() < 0.25 ? int(random, 50) : 0;
    const frame = Buffer.concat([Buffer.alloc(pad, 0xee), input, Buffer.alloc(random() < 0.25 ? 8 : 0, 0xee)]);
    const fence = i % FENCE_EVERY === 0;
    const msg = fence ? fenced(frame, pad, pad + input.length) : frame;
    if (fence) tally.fenced++;
    const outOffset = random() < 0.2 ? 42 : 0;
    const transport = random() < 0.2 ? 'tcp' : 'udp';
    const label = `case ${i} (${isReply ? 'reply' : 'query'} ${input.toString('hex')})`;
    let result: DnsResult | undefined;
    try {
      // Expired forwards first: poll reuses the result and the buffer, as respond does.
      if (random() < 0.02) {
        now += 5000;
        for (let r = responder.poll(now, out, outOffset); r !== undefined; r = responder.poll(now, out, outOffset)) {
          if (r.action === 'answer') {
            checkAnswer(`${label}: poll`, r, out, outOffset, undefined, undefined);
            tally.rcodes.set(r.rcode, (tally.rcodes.get(r.rcode) ?? 0) + 1);
          } else {
            checkAnswerShape(`${label}: poll`, r, out, outOffset);
          }
        }
      }
      result = isReply
        ? responder.upstreamReply(msg, pad, input.length, int(random, 2), now, out, outOffset)
        : responder.respond(msg, pad, input.length, ctx({ transport, now }), out, outOffset);
    } catch (err) {
      throw new Error(`${label}: threw ${(err as Error).stack ?? String(err)}`);
    }
    if (isReply) tally.replies++;
    tally.digest = (Math.imul(tally.digest ^ result.length, 31) + result.rcode) | 0;
    if (result.action === 'drop') {
      tally.drops++;
      continue;
    }
    if (result.action === 'forward') {
      tally.forwards++;
      sentIds.push(out.readUInt16BE(outOffset));
      if (sentIds.length > 64) sentIds.shift();
      checkAnswerShape(label, result, out, outOffset);
      continue;
    }
    tally.answers++;
    tally.rcodes.set(result.rcode, (tally.rcodes.get(result.rcode) ?? 0) + 1);
    const ok = !isReply && parseQuery(input, 0, input.length, parsed) === QueryProblem.Ok;
    checkAnswer(label, result, out, outOffset, isReply ? undefined : input, ok ? parsed : undefined);
    if (!isReply && transport === 'udp') {
      const limit = ok ? parsed.udpLimit : CLASSIC_UDP_SIZE;
      if (result.length > limit) throw new Error(`${label}: ${result.length} bytes over UDP, limit ${limit}`);
    }
  }
  return tally;
}

/** An upstream query must decode too. */
function checkAnswerShape(label: string, result: DnsResult, out: Buffer, outOffset: number): void {
  const bytes = Buffer.from(out.subarray(outOffset, outOffset + result.length));
  const decoded = dnsPacket.decode(bytes);
  if (dnsPacket.decode.bytes !== bytes.length || decoded.questions?.length !== 1 || decoded.flag_qr) throw new Error(`${label}: bad upstream query ${bytes.toString('hex')}`);
}

function fuzzResponder(): Responder {
  return testResponder({ forwarder: { upstreams: 2, random: seededRandom(SEED), maxPending: 256 } });
}

test('the fence catches a read one byte past the window', (t) => {
  const bytes = new Uint8Array([1, 2, 3, 4]);
  const f = fenced(bytes, 1, 3);
  t.is(f[1], 2);
  t.throws(() => f[3], { instanceOf: FenceError });
  t.throws(() => f[0], { instanceOf: FenceError });
  t.throws(() => f.subarray(0, 2), { instanceOf: FenceError });
  t.is(f.subarray(1, 3)[1], 3);
});

test(`${CASES / 1000}k random and mutated queries and replies: no throw, every answer well-formed`, (t) => {
  const started = performance.now();
  const tally = runFuzz(SEED, CASES, fuzzResponder());
  const seconds = (performance.now() - started) / 1000;
  const share = (n: number) => n / CASES;
  t.log(
    `${CASES} cases in ${seconds.toFixed(1)} s: ${tally.answers} answers, ${tally.forwards} forwards, ${tally.drops} drops, ${tally.fenced} fenced, ${tally.replies} upstream replies; rcodes ${JSON.stringify(Object.fromEntries(tally.rcodes))}`,
  );
  // The fuzz must reach every outcome, or it has drifted into testing only the header checks.
  t.true(share(tally.answers) > 0.4, 'answers');
  t.true(share(tally.forwards) > 0.02, 'forwards');
  t.true((tally.rcodes.get(0) ?? 0) > CASES * 0.1, 'NOERROR');
  t.true((tally.rcodes.get(3) ?? 0) > CASES * 0.02, 'NXDOMAIN');
  t.true((tally.rcodes.get(1) ?? 0) > CASES * 0.02, 'FORMERR');
  for (const rcode of [2, 4, 5, 16]) t.true((tally.rcodes.get(rcode) ?? 0) > 0, `rcode ${rcode} reached`);
});

test('a fuzz run is a function of its seed', (t) => {
  const a = runFuzz(7, 3000, fuzzResponder());
  const b = runFuzz(7, 3000, fuzzResponder());
  const c = runFuzz(8, 3000, fuzzResponder());
  t.is(a.digest, b.digest);
  t.not(a.digest, c.digest);
});
