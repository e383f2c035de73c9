/**
 * Helpers for the I/O tests: running commands (asynchronously: our ports must keep being
 * served while ping or python run), and hand-built ARP and ICMP echo replies.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readMac, writeMac } from '../../src/packet/addr.js';
import { readU16, readU32, writeU16, writeU32 } from '../../src/packet/bytes.js';
import { internetChecksum } from '../../src/packet/checksum.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion without blocking the event loop; kills it after `timeoutMs`. */
export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command and throws with its output when it fails. */
export async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Why the TAP tests cannot run here, or undefined when they can. */
export function whyNoTun(): string | undefined {
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/net/tun is missing or not accessible';
  }
  if (process.getuid === undefined || process.getuid() !== 0) return 'not root (TAP devices and network namespaces need CAP_NET_ADMIN)';
  return undefined;
}

/**
 * Moves the TAP `ifName` into namespace `ns`, renames it eth0 and gives it `cidr`, as the
 * node agent does for a pod.
 */
export async function plugIntoPod(ifName: string, ns: string, cidr: string): Promise<void> {
  await must('ip', ['link', 'set', ifName, 'netns', ns]);
  await must('ip', ['-n', ns, 'link', 'set', ifName, 'name', 'eth0']);
  await must('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', 'eth0']);
  await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
}

const ETH_ARP = 0x0806;
const ETH_IPV4 = 0x0800;

/**
 * The reply a host at ip/mac would send to `frame` (an ARP request for ip, or an ICMP echo
 * request to ip), or undefined.
 */
export function replyTo(frame: Buffer, ip: number, mac: number): Buffer | undefined {
  if (frame.length < 42) return undefined;
  const type = readU16(frame, 12);
  if (type === ETH_ARP) {
    // htype 1, ptype IPv4, hlen 6, plen 4, op 1 (request), target = ip
    if (readU16(frame, 14) !== 1 || readU16(frame, 16) !== ETH_IPV4 || readU16(frame, 20) !== 1) return undefined;
    if (readU32(frame, 38) !== ip) return undefined;
    const reply = Buffer.alloc(42);
    const asker = readMac(frame, 22);
    const askerIp = readU32(frame, 28);
    writeMac(reply, 0, asker);
    writeMac(reply, 6, mac);
    writeU16(reply, 12, ETH_ARP);
    frame.copy(reply, 14, 14, 20); // htype, ptype, hlen, plen
    writeU16(reply, 20, 2);
    writeMac(reply, 22, mac);
    writeU32(reply, 28, ip);
    writeMac(reply, 32, asker);
    writeU32(reply, 38, askerIp);
    return reply;
  }
  if (type === ETH_IPV4) {
    const ihl = (frame[14] & 0x0f) * 4;
    const total = readU16(frame, 16);
    if (frame[14] >> 4 !== 4 || ihl < 20 || 14 + total > frame.length || frame[23] !== 1) return undefined;
    if (readU32(frame, 30) !== ip) return undefined;
    const icmp = 14 + ihl;
    if (frame[icmp] !== 8) return undefined; // echo request
    const reply = Buffer.from(frame.subarray(0, 14 + total));
    writeMac(reply, 0, readMac(frame, 6));
    writeMac(reply, 6, mac);
    writeU32(reply, 26, ip);
    writeU32(reply, 30, readU32(frame, 26));
    reply[22] = 64; // TTL
    writeU16(reply, 24, 0);
    writeU16(reply, 24, internetChecksum(reply, 14, ihl));
    reply[icmp] = 0; // echo reply
    writeU16(reply, icmp + 2, 0);
    writeU16(reply, icmp + 2, internetChecksum(reply, icmp, total - ihl));
    return reply;
  }
  return undefined;
}

/** Python that writes `count` broadcast frames on eth0 through a packet socket, as fast as it can. */
export const BURST_PY = `
import socket, sys
count = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
frame = b"\\xff" * 6 + b"\\x02\\x00\\x00\\x00\\x00\\x09" + b"\\x88\\xb5" + bytes(46)
sent = 0
for _ in range(count):
    try:
        s.send(frame)
        sent += 1
    except OSError:
        pass
print(sent)
`;

/** Python TCP sink: prints how many bytes one connection brought. argv: addr port. */
export const TCP_SINK_PY = `
import socket, sys
srv = socket.socket()
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
print("listening", flush=True)
conn, _ = srv.accept()
total = 0
while True:
    b = conn.recv(1 << 20)
    if not b:
        break
    total += len(b)
print(total, flush=True)
`;

/** Python TCP source: sends argv[3] bytes to addr port. */
export const TCP_SOURCE_PY = `
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
left = int(sys.argv[3])
chunk = bytes(1 << 16)
while left > 0:
    n = c.send(chunk[:min(left, len(chunk))])
    left -= n
c.close()
`;
