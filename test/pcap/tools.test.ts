/**
 * Files written by podwire, read by the real tools: tcpdump (libpcap) and tshark
 * (Wireshark). Each test is skipped, with the reason logged, when its binary is absent.
 *
 * "Nothing on stderr" allows exactly two informational lines that these tools print on
 * every run whatever the file: tcpdump's "reading from file ..." banner (which is checked
 * for the link type and snaplen instead), and tshark's warning when run as root.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CaptureWriter, type CaptureFormat, type InterfaceSpec, type PcapResolution } from '../../src/pcap/index.js';
import { udpFrame, vxlanTcpFrame } from '../helpers/frames.js';
import { hex } from '../helpers/bytes.js';

const TCPDUMP = '/usr/bin/tcpdump';
const TSHARK = '/usr/bin/tshark';

const TCPDUMP_BANNER = /^reading from file .+, link-type EN10MB \(Ethernet\), snapshot length 262144$/;
const TSHARK_ROOT_WARNING = /^Running as user "root" and group "root"\. This could be dangerous\.$/;

// "example.com A?" from the UDP golden test: a well-formed DNS query, so that Wireshark
// has nothing to call malformed.
const DNS_QUERY = hex('12 34 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01');

const START_NS = 1_700_000_000_123_456_789n;
const STEP_NS = 1_000_001n;

interface Sample {
  interfaceId: number;
  frame: Buffer;
  comment?: string;
}

const SAMPLES: Sample[] = [
  { interfaceId: 0, frame: udpFrame('10.244.1.2', '10.96.0.10', 41000, 53, DNS_QUERY), comment: 'accept: service kube-dns' },
  { interfaceId: 1, frame: vxlanTcpFrame({ vni: 42, srcPort: 40000, dstPort: 8080 }) },
  { interfaceId: 0, frame: udpFrame('10.244.1.2', '10.244.2.3', 41001, 9999, Buffer.from('blocked')), comment: 'drop: policy-denied' },
];

const TWO_INTERFACES: InterfaceSpec[] = [
  { name: 'pw-n1-a', description: 'pod default/a' },
  { name: 'pw-vxlan0', description: 'overlay' },
];

interface Capture {
  name: string;
  file: string;
  /** Timestamps as the file stores them, "seconds.nanoseconds". */
  times: string[];
}

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-pcap-tools-'));
test.after.always(() => fs.rmSync(TMP, { recursive: true, force: true }));

function writeCapture(name: string, format: CaptureFormat, resolution: PcapResolution, interfaces: InterfaceSpec[]): Capture {
  const file = path.join(TMP, name);
  let now = START_NS - STEP_NS;
  const w = new CaptureWriter({ path: file, format, resolution, interfaces, clock: () => (now += STEP_NS) });
  for (const s of SAMPLES) w.write(format === 'pcap' ? 0 : s.interfaceId, s.frame, s.comment);
  w.close();
  const times = SAMPLES.map((_, i) => {
    const ns = START_NS + BigInt(i) * STEP_NS;
    const stored = resolution === 'us' ? ns - (ns % 1000n) : ns;
    return `${stored / 1_000_000_000n}.${(stored % 1_000_000_000n).toString().padStart(9, '0')}`;
  });
  return { name, file, times };
}

const CAPTURES: Capture[] = [
  writeCapture('classic-us.pcap', 'pcap', 'us', [{ name: 'eth0' }]),
  writeCapture('classic-ns.pcap', 'pcap', 'ns', [{ name: 'eth0' }]),
  writeCapture('two-interfaces.pcapng', 'pcapng', 'ns', TWO_INTERFACES),
];
const PCAPNG = CAPTURES[2];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}

/** Asserts a clean exit with nothing on stderr but the allowed informational lines. */
function clean(t: ExecutionContext, what: string, result: Run, allowed: RegExp): void {
  const unexpected = lines(result.stderr).filter((line) => !allowed.test(line));
  t.is(result.code, 0, `${what} exit code; stderr: ${result.stderr}`);
  t.deepEqual(unexpected, [], `${what} wrote to stderr`);
}

function present(t: ExecutionContext, binary: string): boolean {
  if (fs.existsSync(binary)) return true;
  t.log(`skipped: ${binary} is not installed`);
  t.pass();
  return false;
}

let commentField: Promise<string> | undefined;

/** frame.comment on Wireshark 1.12 and later, pkt_comment before: ask this tshark. */
function tsharkCommentField(): Promise<string> {
  commentField ??= run(TSHARK, ['-G', 'fields']).then((r) => (/^F\t[^\t]*\tframe\.comment\t/m.test(r.stdout) ? 'frame.comment' : 'pkt_comment'));
  return commentField;
}

for (const capture of CAPTURES) {
  test(`tcpdump reads ${capture.name} cleanly, with every timestamp exact`, async (t) => {
    if (!present(t, TCPDUMP)) return;
    const result = await run(TCPDUMP, ['-r', capture.file, '-nn', '-tt', '--time-stamp-precision=nano']);
    clean(t, 'tcpdump', result, TCPDUMP_BANNER);
    t.true(lines(result.stderr).some((line) => TCPDUMP_BANNER.test(line)), `link type and snaplen in the banner: ${result.stderr}`);
    const out = lines(result.stdout);
    t.is(out.length, SAMPLES.length);
    t.deepEqual(
      out.map((line) => line.split(' ')[0]),
      capture.times,
    );
    t.true(out[0].includes('10.244.1.2.41000 > 10.96.0.10.53'), out[0]);
  });

  test(`tshark reads ${capture.name} cleanly and finds nothing malformed`, async (t) => {
    if (!present(t, TSHARK)) return;
    const all = await run(TSHARK, ['-r', capture.file]);
    clean(t, 'tshark', all, TSHARK_ROOT_WARNING);
    t.is(lines(all.stdout).length, SAMPLES.length);
    const bad = await run(TSHARK, ['-r', capture.file, '-Y', '_ws.malformed || _ws.expert.severity == 0x00800000']);
    clean(t, 'tshark -Y', bad, TSHARK_ROOT_WARNING);
    t.is(bad.stdout, '', 'packets with errors');
    const times = await run(TSHARK, ['-r', capture.file, '-T', 'fields', '-e', 'frame.time_epoch']);
    t.deepEqual(lines(times.stdout), capture.times);
  });

  test(`tshark decodes the VXLAN frame in ${capture.name} down to the inner TCP segment, checksums good`, async (t) => {
    if (!present(t, TSHARK)) return;
    const checks = ['ip', 'udp', 'tcp'].flatMap((p) => ['-o', `${p}.check_checksum:TRUE`]);
    const fields = ['vxlan.vni', 'ip.src', 'ip.dst', 'tcp.srcport', 'tcp.dstport', 'tcp.flags.syn'];
    fields.push('ip.checksum.status', 'udp.checksum.status', 'tcp.checksum.status');
    const result = await run(TSHARK, ['-r', capture.file, ...checks, '-Y', 'vxlan', '-T', 'fields', ...fields.flatMap((f) => ['-e', f])]);
    clean(t, 'tshark', result, TSHARK_ROOT_WARNING);
    // Outer and inner IPv4 both appear, in that order; checksum status 1 is "Good".
    const expected = ['42', '192.168.50.1,10.244.1.2', '192.168.50.2,10.244.2.3', '40000', '8080', '1', '1,1', '1', '1'];
    t.deepEqual(lines(result.stdout), [expected.join('\t')]);
  });
}

test('tshark shows the pcapng interface names, descriptions and comments', async (t) => {
  if (!present(t, TSHARK)) return;
  const comment = await tsharkCommentField();
  t.log(`comment field on this tshark: ${comment}`);
  const fields = ['frame.interface_name', 'frame.interface_description', comment].flatMap((f) => ['-e', f]);
  const result = await run(TSHARK, ['-r', PCAPNG.file, '-T', 'fields', ...fields]);
  clean(t, 'tshark', result, TSHARK_ROOT_WARNING);
  t.deepEqual(lines(result.stdout), [
    'pw-n1-a\tpod default/a\taccept: service kube-dns',
    'pw-vxlan0\toverlay\t',
    'pw-n1-a\tpod default/a\tdrop: policy-denied',
  ]);
});

test('tcpdump reads a pcapng file that rotated, part by part', async (t) => {
  if (!present(t, TCPDUMP)) return;
  const file = path.join(TMP, 'rotated.pcapng');
  const w = new CaptureWriter({ path: file, format: 'pcapng', interfaces: TWO_INTERFACES, rotateBytes: 4096 });
  for (let i = 0; i < 40; i++) w.write(i % 2, SAMPLES[i % 3].frame, `n ${i}`);
  w.close();
  t.true(w.paths.length > 1);
  let total = 0;
  for (const part of w.paths) {
    const result = await run(TCPDUMP, ['-r', part, '-nn']);
    clean(t, `tcpdump ${path.basename(part)}`, result, TCPDUMP_BANNER);
    total += lines(result.stdout).length;
  }
  t.is(total, 40);
});
