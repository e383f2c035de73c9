/**
 * The capture filter: its subset of pcap syntax parsed with clear errors, and every
 * expression matching exactly the frames tcpdump's own compiler (libpcap) matches, on a
 * file of varied frames: fixed expressions and random ones built from the same grammar.
 */
import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFilter, FilterError, parseFilter } from '../../src/pcap/filter.js';
import { CaptureWriter } from '../../src/pcap/writer.js';
import { parseIpv4 } from '../../src/packet/addr.js';
import { emitEthernet, ETHERTYPE } from '../../src/packet/ethernet.js';
import { emitIpv4, IPPROTO } from '../../src/packet/ipv4.js';
import { emitArp, ARP_OP } from '../../src/packet/arp.js';
import { seededRandom } from '../../src/cluster/random.js';

const haveTcpdump = spawnSync('tcpdump', ['--version']).status === 0;
const ADDRS = ['10.244.1.2', '10.244.1.3', '10.244.2.5', '10.96.0.10', '192.0.2.7'];
const PORTS = [53, 80, 8080, 40000];

/** Frame i has source MAC 02:00:00:00:hi:lo, so a tcpdump -e line says which frame it is. */
function frames(count: number, seed: number): Buffer[] {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const srcMac = 0x020000000000 + i;
    const kind = rnd();
    if (kind < 0.15) {
      const f = Buffer.alloc(14 + 28);
      emitEthernet({ dstMac: 0xffffffffffff, srcMac, ethertype: ETHERTYPE.ARP }, f, 0);
      emitArp({ operation: pick([ARP_OP.REQUEST, ARP_OP.REPLY]), senderMac: srcMac, senderIp: parseIpv4(pick(ADDRS))!, targetMac: 0, targetIp: parseIpv4(pick(ADDRS))! }, f, 14);
      out.push(f);
      continue;
    }
    if (kind < 0.2) {
      const f = Buffer.alloc(60, 0x33);
      emitEthernet({ dstMac: 0x0a0000000001, srcMac, ethertype: 0x86dd }, f, 0);
      out.push(f);
      continue;
    }
    const protocol = pick([IPPROTO.TCP, IPPROTO.UDP, IPPROTO.ICMP, 47]);
    const fragmented = rnd() < 0.1;
    const payload = 28;
    const f = Buffer.alloc(14 + 20 + payload, 0);
    emitEthernet({ dstMac: 0x0a0000000001, srcMac, ethertype: ETHERTYPE.IPV4 }, f, 0);
    emitIpv4({ src: parseIpv4(pick(ADDRS))!, dst: parseIpv4(pick(ADDRS))!, protocol, ttl: 64, payloadLength: payload, dscp: 0, ecn: 0, identification: i, dontFragment: false, moreFragments: false, fragmentOffsetBytes: fragmented ? 1480 : 0 }, f, 14);
    f.writeUInt16BE(pick(PORTS), 34);
    f.writeUInt16BE(pick(PORTS), 36);
    if (protocol === IPPROTO.TCP) f[46] = 0x50;
    out.push(f);
  }
  return out;
}

function withCapture(run: (file: string, all: Buffer[]) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pw-filter-'));
  try {
    const file = join(dir, 'frames.pcap');
    const all = frames(400, 7);
    const w = new CaptureWriter({ path: file, format: 'pcap', interfaces: [{ name: 'test' }], flushIntervalMs: 0 });
    for (const f of all) w.write(0, f);
    w.close();
    run(file, all);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The frame numbers tcpdump matches with `expr`. */
function tcpdumpMatches(file: string, expr: string): number[] {
  const r = spawnSync('tcpdump', ['-r', file, '-nn', '-e', expr], { encoding: 'utf8' });
  // libpcap's optimizer refuses an expression it proves matches nothing (`port 53 and port 80`).
  if (r.status !== 0 && r.stderr.includes('expression rejects all packets')) return [];
  if (r.status !== 0) throw new Error(`tcpdump ${expr}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = / 02:00:00:00:([0-9a-f]{2}):([0-9a-f]{2}) > /.exec(l);
      if (m === null) throw new Error(`unexpected tcpdump line: ${l}`);
      return parseInt(m[1] + m[2], 16);
    });
}

function ourMatches(all: Buffer[], expr: string): number[] {
  const match = compileFilter(expr);
  return all.flatMap((f, i) => (match(f, 0, f.length) ? [i] : []));
}

const FIXED = [
  'host 10.244.1.2',
  'src host 10.244.1.2',
  'dst 10.96.0.10',
  'net 10.244.0.0/16',
  'net 10.244.2',
  'src net 192.0.2.0/24',
  'port 53',
  'src port 40000',
  'dst port 80',
  'tcp',
  'udp',
  'icmp',
  'arp',
  'ip',
  'tcp port 80',
  'udp dst port 53',
  'not tcp',
  'host 10.244.1.2 and (port 80 or port 53)',
  'tcp or udp and not port 53',
  '!(arp || icmp) && net 10.244.1.0/24',
  'not not ip',
  'arp and src host 10.244.2.5',
];

(haveTcpdump ? test : test.skip)('each documented form matches what tcpdump matches', (t) => {
  withCapture((file, all) => {
    for (const expr of FIXED) t.deepEqual(ourMatches(all, expr), tcpdumpMatches(file, expr), expr);
  });
});

const primitive = fc.oneof(
  fc.constantFrom('tcp', 'udp', 'icmp', 'arp', 'ip'),
  fc.tuple(fc.constantFrom('', 'src ', 'dst '), fc.constantFrom(...ADDRS)).map(([d, a]) => `${d}host ${a}`),
  fc.tuple(fc.constantFrom('', 'src ', 'dst '), fc.constantFrom('10.244.0.0/16', '10.244.1.0/24', '10.96', '192.0.2.0/24')).map(([d, n]) => `${d}net ${n}`),
  fc.tuple(fc.constantFrom('', 'tcp ', 'udp '), fc.constantFrom('', 'src ', 'dst '), fc.constantFrom(...PORTS)).map(([p, d, n]) => `${p}${d}port ${n}`),
);
const expression: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    primitive,
    tie('e').map((e) => `not (${e})`),
    fc.tuple(tie('e'), fc.constantFrom('and', 'or', '&&', '||'), tie('e')).map(([a, op, b]) => `(${a}) ${op} (${b})`),
  ),
})).e;

(haveTcpdump ? test : test.skip)('random expressions of the subset match what tcpdump matches', (t) => {
  withCapture((file, all) => {
    fc.assert(
      fc.property(expression, (expr) => {
        t.deepEqual(ourMatches(all, expr), tcpdumpMatches(file, expr), expr);
      }),
      { numRuns: 60, seed: 14 },
    );
  });
});

test('De Morgan holds for the compiled matchers (no tcpdump needed)', (t) => {
  const all = frames(200, 3);
  fc.assert(
    fc.property(expression, expression, (a, b) => {
      t.deepEqual(ourMatches(all, `not ((${a}) and (${b}))`), ourMatches(all, `(not (${a})) or (not (${b}))`));
    }),
    { numRuns: 100 },
  );
});

test('a blank filter matches every frame, a truncated frame matches no address or port', (t) => {
  t.true(compileFilter('  ')(Buffer.alloc(0), 0, 0));
  const short = Buffer.alloc(20);
  short.writeUInt16BE(ETHERTYPE.IPV4, 12);
  t.false(compileFilter('host 10.244.1.2 or port 53 or tcp')(short, 0, short.length));
});

test('what the subset does not take is refused with where and why', (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty expression/],
    ['host', /expected an IPv4 address, the expression ended/],
    ['host example.com', /"example.com" is not an IPv4 address .* at character 6/],
    ['port http', /"http" is not a port number/],
    ['port 70000', /not a port number/],
    ['net 10.244.1.0/16', /host bits set past \/16/],
    ['tcp and', /expected a primitive/],
    ['(tcp', /expected "\)", the expression ended/],
    ['tcp udp', /expected and, or or the end, not "udp" at character 5/],
    ['ether host 1:2:3:4:5:6', /"ether" is not a primitive/],
    ['tcp & udp', /expected and, or or the end, not "&"/],
  ];
  for (const [expr, message] of cases) {
    const err = t.throws(() => parseFilter(expr), { instanceOf: FilterError }, expr);
    t.regex(err.message, message, expr);
  }
});
