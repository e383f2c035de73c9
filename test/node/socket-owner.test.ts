/**
 * The owners of loopback sockets, from /proc/net: golden table lines as the kernel prints
 * them, then real sockets of root and of `nobody` (a child spawned with its uid).
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { scanSocketTable, TcpPeerOwners, UdpPortOwners, type SocketLine } from '../../src/io/socket-owner.js';

const NOBODY = 65534;
const PYTHON = '/usr/bin/python3';
const asRoot = process.getuid?.() === 0;
const rootTest = asRoot ? test : test.skip;

const UDP_TABLE = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
11374: 0100007F:89E2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 64561 2 0000000053add2e6 0         
  812: 0500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 65534        0 70001 2 0000000053add2e6 0         
  813: garbage line
`;
const UDP6_TABLE = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 3489: 0000000000000000FFFF00000100007F:AB15 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 64562 2 0000000004338827 0
 3490: 00000000000000000000000000000000:AB16 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 64563 2 0000000004338827 0
 3491: 00000000000000000000000001000000:AB17 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 64564 2 0000000004338827 0
`;

function scan(text: string): { lines: SocketLine[]; malformed: number } {
  const lines: SocketLine[] = [];
  const bytes = Buffer.from(text, 'latin1');
  const line: SocketLine = { localAddr: 0, localPort: 0, remoteAddr: 0, remotePort: 0, uid: 0, inode: 0 };
  const malformed = scanSocketTable(bytes, bytes.length, line, (l) => lines.push({ ...l }));
  return { lines, malformed };
}

test('table lines: IPv4 addresses in network order, IPv4-mapped and wildcard IPv6, uids and inodes; junk counted', (t) => {
  const v4 = scan(UDP_TABLE);
  t.deepEqual(v4.lines, [
    { localAddr: 0x7f000001, localPort: 0x89e2, remoteAddr: 0, remotePort: 0, uid: 0, inode: 64561 },
    { localAddr: 0x7f000005, localPort: 53, remoteAddr: 0, remotePort: 0, uid: NOBODY, inode: 70001 },
  ]);
  t.is(v4.malformed, 1);
  const v6 = scan(UDP6_TABLE);
  t.deepEqual(
    v6.lines.map((l) => [l.localAddr, l.localPort, l.uid]),
    [
      [0x7f000001, 0xab15, 0],
      [0, 0xab16, 1000],
      [-1, 0xab17, 1000], // ::1, not an IPv4 address
    ],
  );
  t.is(v6.malformed, 0);
  t.deepEqual(scan('').lines, []);
  t.deepEqual(scan('heading only, no newline').lines, []);
  // A port field of the wrong width or a uid that is not a number: not a socket line.
  t.is(scan('h\n 1: 0100007F:035 00000000:0000 07 0:0 0:0 0 0 0 1\n').malformed, 1);
  t.is(scan('h\n 1: 0100007F:0035 00000000:0000 07 0:0 0:0 0 x 0 1\n').malformed, 1);
});

/** A child as `nobody` running python that prints its socket's port and then waits. */
async function asNobody(script: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(PYTHON, ['-c', script], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, port: Number(chunk.toString().trim()) };
}

rootTest('a UDP port held by root only is root-only; one held by nobody, or nobody at all, is not', async (t) => {
  const mine = createSocket('udp4');
  await new Promise<void>((resolve) => mine.bind(0, '127.0.0.1', () => resolve()));
  const theirs = await asNobody("import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',0))\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)");
  try {
    const owners = new UdpPortOwners();
    t.true(owners.refresh());
    t.true(owners.isRootOnly(mine.address().port));
    t.false(owners.isRootOnly(theirs.port));
    t.true(owners.saw(theirs.port), 'seen, and not root\'s');
    theirs.child.kill('SIGKILL');
    await once(theirs.child, 'exit');
    const freed = mine.address().port;
    mine.close();
    t.true(owners.isRootOnly(freed), 'until the next refresh');
    owners.refresh();
    t.false(owners.isRootOnly(freed), 'a closed port is nobody\'s');
    t.false(owners.saw(freed));
    t.false(owners.isRootOnly(theirs.port));
  } finally {
    if (theirs.child.exitCode === null) theirs.child.kill('SIGKILL');
  }
});

rootTest('an unreadable table trusts nobody', (t) => {
  const owners = new UdpPortOwners(['/proc/self/nonexistent-dir/udp', '/proc/net/udp']);
  t.true(owners.refresh(), 'a missing table (udp6 without IPv6) is no socket at all');
  const unreadable = new UdpPortOwners(['/proc/self/mem']);
  t.false(unreadable.refresh());
  t.false(unreadable.isRootOnly(53));
});

rootTest('the client end of a TCP connection: root is 0, nobody is 65534, an unknown one -1', async (t) => {
  const server = createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const theirs = await asNobody(`import socket,time\ns=socket.create_connection(('127.0.0.1',${port}))\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)`);
  const mine = createConnection(port, '127.0.0.1');
  await once(mine, 'connect');
  try {
    // A read can skip a line while other connections come and go (the DNS server asks
    // again, dns-guard.ts): take each connection's first match in up to three reads.
    const peers = [
      { clientAddr: 0x7f000001, clientPort: mine.localPort! },
      { clientAddr: 0x7f000001, clientPort: theirs.port },
      { clientAddr: 0x7f000002, clientPort: mine.localPort! },
      { clientAddr: 0x7f000001, clientPort: 1 },
    ];
    const firstMatches = async (owners: TcpPeerOwners): Promise<number[]> => {
      const uids = peers.map(() => -1);
      for (let attempt = 0; attempt < 3 && (uids[0] === -1 || uids[1] === -1); attempt++) {
        (await owners.lookup(peers, 0x7f000001, port)).forEach((uid, i) => uids[i] === -1 && (uids[i] = uid));
      }
      return uids;
    };
    t.deepEqual(await firstMatches(new TcpPeerOwners()), [0, NOBODY, -1, -1]);
    t.deepEqual(await firstMatches(new TcpPeerOwners(['/proc/net/tcp'])), [0, NOBODY, -1, -1], '/proc/net/tcp alone, as the DNS server reads it');
  } finally {
    theirs.child.kill('SIGKILL');
    mine.destroy();
    server.close();
  }
});
