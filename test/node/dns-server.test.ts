/**
 * The node's DNS listeners against local users: a real DnsServer on loopback and a Unix
 * socket, root's queries from this process, a non-root user's from python children spawned
 * as `nobody`, and an upstream on a loopback address of its own that counts what reaches it.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildQuery } from '../../src/cli/dns.js';
import { parseCidr } from '../../src/packet/addr.js';
import { DnsServer, type DnsServerOptions } from '../../src/node/dns-server.js';
import { cluster } from '../cluster/helpers.js';
import { HOLDER_SCRIPT } from '../helpers/connection-holder.js';

const NOBODY = 65534;
const PYTHON = '/usr/bin/python3';
const UPSTREAM = `127.0.${54 + (process.pid % 100)}.${1 + (process.pid % 200)}`;
const CLUSTER_NAME = 'web.default.svc.cluster.local';
const OUTSIDE_NAME = 'example.com';
const IDLE_MS = 800;

const test = anyTest as TestFn;
const rootTest = process.getuid?.() === 0 ? test.serial : test.serial.skip;

const CLUSTER = cluster(`
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.0.50, ports: [{port: 80}]}
`);

interface Fixture {
  server: DnsServer;
  dir: string;
  unixPath: string;
  upstream: UdpSocket;
  upstreamQueries: number;
  /** Holds each upstream answer this long (0: answers at once); the last query seen and where from. */
  upstreamDelayMs: number;
  lastUpstreamQuery?: { msg: Buffer; port: number };
  children: ChildProcess[];
}

/** An upstream that answers every query with an empty NOERROR, counting them. */
async function startUpstream(f: Fixture): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    f.upstreamQueries++;
    f.lastUpstreamQuery = { msg, port: rinfo.port };
    const reply = Buffer.from(msg);
    reply.writeUInt16BE(0x8180, 2);
    const timer = setTimeout(() => socket.send(reply, rinfo.port, rinfo.address), f.upstreamDelayMs);
    socket.once('close', () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => socket.bind(53, UPSTREAM, () => resolve()));
  return socket;
}

async function start(options: Partial<DnsServerOptions> = {}): Promise<Fixture> {
  const f = { upstreamQueries: 0, upstreamDelayMs: 0 } as Fixture;
  f.upstream = await startUpstream(f);
  f.dir = mkdtempSync(join(tmpdir(), 'pw-dns-server-'));
  f.unixPath = join(f.dir, 'node.dns.sock');
  f.children = [];
  f.server = new DnsServer(CLUSTER, {
    upstreams: [UPSTREAM],
    clients: [parseCidr('10.244.0.0/16')!],
    toPod: () => undefined,
    log: () => undefined,
    tcpIdleMs: IDLE_MS,
    ...options,
  });
  await f.server.start();
  await f.server.serveUnix(f.unixPath);
  return f;
}

async function stop(f: Fixture): Promise<void> {
  for (const c of f.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  f.server.close();
  f.upstream.close();
  rmSync(f.dir, { recursive: true, force: true });
}

/** A python3 child as `nobody`; resolves with the first line it prints. */
async function asNobody(f: Fixture, script: string, args: string[]): Promise<string> {
  const child = spawn(PYTHON, ['-c', script, ...args], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] });
  f.children.push(child);
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (out.includes('\n')) break;
  }
  return out.trim();
}

/** Polls `condition` every 20 ms for up to `ms`. */
async function until(condition: () => boolean, ms = 3000): Promise<boolean> {
  for (const end = performance.now() + ms; performance.now() < end; await new Promise((r) => setTimeout(r, 20))) if (condition()) return true;
  return condition();
}

const hex = (name: string) => buildQuery(name, 'A', 0x1234).toString('hex');

/** Sends each query over UDP and prints how many answers came back within the wait. */
const UDP_ASKER = `
import socket, sys, time
port = int(sys.argv[1]); queries = [bytes.fromhex(q) for q in sys.argv[2:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
for q in queries: s.sendto(q, ('127.0.0.1', port))
answers = 0; end = time.time() + 1.5
while time.time() < end:
    try: s.recv(4096); answers += 1
    except socket.timeout: pass
print(answers, flush=True)
`;

/** Asks each query on a TCP connection of its own and prints the bytes that came back. */
const TCP_ASKER = `
import socket, sys
port = int(sys.argv[1]); total = 0
for q in [bytes.fromhex(q) for q in sys.argv[2:]]:
    s = socket.create_connection(('127.0.0.1', port)); s.settimeout(1.5)
    s.sendall(len(q).to_bytes(2, 'big') + q)
    try:
        while True:
            b = s.recv(4096)
            if not b: break
            total += len(b)
    except (socket.timeout, ConnectionResetError): pass
    s.close()
print(total, flush=True)
`;


/** One query over a DNS-over-TCP stream (loopback port or the relay's Unix socket); the answer's rcode and answer count, or undefined. */
async function askStream(connect: () => Socket, name: string, timeoutMs = 2000): Promise<{ rcode: number; answers: number } | undefined> {
  const socket = connect();
  socket.on('error', () => undefined);
  const query = buildQuery(name, 'A', 0x4242);
  const framed = Buffer.concat([Buffer.from([query.length >> 8, query.length & 0xff]), query]);
  socket.write(framed);
  let got = Buffer.alloc(0);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const finish = (r: { rcode: number; answers: number } | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) finish({ rcode: got.readUInt16BE(4) & 0xf, answers: got.readUInt16BE(8) });
    });
    socket.on('close', () => finish(undefined));
  });
}

async function askUdp(port: number, name: string): Promise<{ rcode: number; answers: number } | undefined> {
  const socket = createSocket('udp4');
  socket.send(buildQuery(name, 'A', 0x4343), port, '127.0.0.1');
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, 2000);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve({ rcode: msg.readUInt16BE(2) & 0xf, answers: msg.readUInt16BE(6) });
    });
  });
}

rootTest('root gets answers on the loopback port (UDP and TCP) and through the relay socket, recursion included', async (t) => {
  const f = await start();
  try {
    const port = f.server.port;
    t.deepEqual(await askUdp(port, CLUSTER_NAME), { rcode: 0, answers: 1 });
    t.deepEqual(await askStream(() => createConnection(port, '127.0.0.1'), CLUSTER_NAME), { rcode: 0, answers: 1 });
    t.deepEqual(await askStream(() => createConnection(f.unixPath), CLUSTER_NAME), { rcode: 0, answers: 1 });
    t.deepEqual(await askUdp(port, OUTSIDE_NAME), { rcode: 0, answers: 0 }, 'the upstream\'s empty answer');
    t.is(f.upstreamQueries, 1);
  } finally {
    await stop(f);
  }
});

rootTest('a non-root user gets no answer on the loopback port, over UDP or TCP, and nothing is asked upstream for it', async (t) => {
  const f = await start();
  try {
    const port = String(f.server.port);
    t.is(await asNobody(f, UDP_ASKER, [port, hex(OUTSIDE_NAME), hex(CLUSTER_NAME)]), '0', 'no UDP answer');
    t.is(await asNobody(f, TCP_ASKER, [port, hex(OUTSIDE_NAME), hex(CLUSTER_NAME)]), '0', 'TCP closed without a byte');
    t.is(f.upstreamQueries, 0, 'no recursion on the user\'s behalf');
    const status = f.server.status();
    t.deepEqual(status.localUsersRefused, { udp: 2, tcp: 2 });
    t.is(status.forward.forwarded, 0);
  } finally {
    await stop(f);
  }
});

rootTest('only root can open the relay\'s Unix socket', async (t) => {
  const f = await start();
  try {
    t.is(statSync(f.unixPath).mode & 0o777, 0o600);
    const script = 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print("connected",flush=True)\nexcept PermissionError: print("EACCES",flush=True)';
    t.is(await asNobody(f, script, [f.unixPath]), 'EACCES');
  } finally {
    await stop(f);
  }
});

rootTest('a non-root user holding 300 TCP connections keeps none, and pods (the relay) and root are still answered', async (t) => {
  const f = await start();
  try {
    const stillOpen = await asNobody(f, HOLDER_SCRIPT, [String(f.server.port), '300']);
    t.is(stillOpen, '0', 'every one of the user\'s connections was closed');
    // The holder goes on reconnecting meanwhile.
    const relayed = await Promise.all(Array.from({ length: 20 }, () => askStream(() => createConnection(f.unixPath), CLUSTER_NAME)));
    t.deepEqual(relayed, Array.from({ length: 20 }, () => ({ rcode: 0, answers: 1 })), 'the relay\'s connections all answered');
    // Root's tools on the loopback port share the owner lookups with the user's flood: a
    // connection can be turned away while the queue is full, so they get a second try.
    let root = await askStream(() => createConnection(f.server.port, '127.0.0.1'), CLUSTER_NAME);
    for (let i = 0; i < 2 && root === undefined; i++) root = await askStream(() => createConnection(f.server.port, '127.0.0.1'), CLUSTER_NAME);
    t.deepEqual(root, { rcode: 0, answers: 1 }, `root's tools too (${JSON.stringify(f.server.status().tcp)})`);
    t.deepEqual(await askUdp(f.server.port, CLUSTER_NAME), { rcode: 0, answers: 1 }, 'and over UDP');
    t.true(f.server.status().localUsersRefused.tcp >= 300);
  } finally {
    await stop(f);
  }
});

/** Resolves when the socket closes, however (events.once would reject on the reset's 'error'). */
const closing = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));

/**
 * Opens a stream, announces a 100-byte message and writes it a byte every `everyMs`, never
 * finishing it; resolves with how long until the server closed it (or Infinity after `giveUpMs`).
 */
async function trickle(connect: () => Socket, everyMs: number, giveUpMs: number): Promise<number> {
  const socket = connect();
  socket.on('error', () => undefined).resume();
  socket.write(Buffer.from([0, 100]));
  const started = performance.now();
  const timer = setInterval(() => socket.write(Buffer.from([0])), everyMs);
  const closed = await Promise.race([closing(socket).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), giveUpMs))]);
  clearInterval(timer);
  socket.destroy();
  return closed ? performance.now() - started : Infinity;
}

rootTest('a connection that trickles bytes but never a whole message is closed at the read deadline, on the port and the relay socket', async (t) => {
  const f = await start();
  try {
    const loopback = await trickle(() => createConnection(f.server.port, '127.0.0.1'), 100, 4000);
    const relay = await trickle(() => createConnection(f.unixPath), 100, 4000);
    for (const [where, ms] of [['loopback', loopback], ['relay', relay]] as const) {
      t.true(ms >= IDLE_MS - 50 && ms < IDLE_MS + 1000, `${where}: closed after ${ms} ms`);
    }
    t.is(f.server.status().tcp.idleClosed, 2);
  } finally {
    await stop(f);
  }
});

rootTest('a connection that asks and then idles is closed a deadline after its answer; one that keeps asking stays', async (t) => {
  const f = await start();
  try {
    const idle = createConnection(f.unixPath);
    const busy = createConnection(f.unixPath);
    for (const s of [idle, busy]) s.on('error', () => undefined).resume(); // read the answers, and so see the close
    const query = buildQuery(CLUSTER_NAME, 'A', 7);
    const framed = Buffer.concat([Buffer.from([0, query.length]), query]);
    idle.write(framed);
    const keepAsking = setInterval(() => busy.write(framed), IDLE_MS / 4);
    const started = performance.now();
    await closing(idle);
    const idleFor = performance.now() - started;
    t.true(idleFor >= IDLE_MS - 50 && idleFor < IDLE_MS + 1000, `closed after ${idleFor} ms`);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    t.false(busy.destroyed, 'a connection in use is never cut');
    clearInterval(keepAsking);
    busy.destroy();
  } finally {
    await stop(f);
  }
});

rootTest('root\'s loopback connections are bounded per client and in all; the relay\'s pool is apart', async (t) => {
  const f = await start({ tcpLimits: { loopbackTotal: 8, loopbackPerClient: 4, relayTotal: 6 } });
  const sockets: Socket[] = [];
  try {
    const open = async (connect: () => Socket): Promise<Socket> => {
      const s = connect();
      s.on('error', () => undefined).resume();
      sockets.push(s);
      await once(s, 'connect');
      return s;
    };
    for (let i = 0; i < 4; i++) await open(() => createConnection(f.server.port, '127.0.0.1'));
    t.true(await until(() => f.server.status().tcp.loopbackOpen === 4), 'their owners looked up, all four served');
    t.is(await askStream(() => createConnection(f.server.port, '127.0.0.1'), CLUSTER_NAME), undefined, 'root\'s fifth is over its share');
    t.is(f.server.status().tcp.refusedPerClient, 1);
    for (let i = 0; i < 5; i++) await open(() => createConnection(f.unixPath));
    t.true(await until(() => f.server.status().tcp.relayOpen === 5));
    t.deepEqual(await askStream(() => createConnection(f.unixPath), CLUSTER_NAME), { rcode: 0, answers: 1 }, 'the relay\'s sixth fits');
    t.true(await until(() => f.server.status().tcp.relayOpen === 5), 'its place given back');
    await open(() => createConnection(f.unixPath));
    t.true(await until(() => f.server.status().tcp.relayOpen === 6));
    t.is(await askStream(() => createConnection(f.unixPath), CLUSTER_NAME), undefined, 'the relay\'s seventh does not');
    t.is(f.server.status().tcp.refusedFull, 1);
  } finally {
    for (const s of sockets) s.destroy();
    await stop(f);
  }
});

/** Sends the datagram (hex) from a socket bound to ADDRESS on any free port to 127.0.0.1:PORT. */
const FORGER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.sendto(bytes.fromhex(sys.argv[3]), ('127.0.0.1', int(sys.argv[2])))
print('sent', flush=True)
`;

rootTest('a forged upstream answer from a user\'s socket on the upstream\'s address is dropped; the real one is taken', async (t) => {
  const f = await start();
  f.upstreamDelayMs = 600;
  try {
    const answer = askUdpAnswer(f.server.port, OUTSIDE_NAME);
    t.true(await until(() => f.lastUpstreamQuery !== undefined), 'the query went upstream');
    const { msg, port } = f.lastUpstreamQuery!;
    // The query turned into an answer for 6.6.6.6, as a poisoner would send it: its header
    // and question (EDNS dropped), one A record.
    let questionEnd = 12;
    while (msg[questionEnd] !== 0) questionEnd += msg[questionEnd] + 1;
    questionEnd += 5;
    const forged = Buffer.concat([msg.subarray(0, questionEnd), Buffer.from('c00c000100010000012c000406060606', 'hex')]);
    forged.writeUInt16BE(0x8180, 2);
    forged.writeUInt16BE(1, 6);
    forged.writeUInt32BE(0, 8);
    t.is(await asNobody(f, FORGER, [UPSTREAM, String(port), forged.toString('hex')]), 'sent');
    t.deepEqual(await answer, { rcode: 0, answers: 0 }, 'the upstream\'s real (empty) answer, not the forged 6.6.6.6');
    t.is(f.server.status().notFromUpstream, 1);
  } finally {
    await stop(f);
  }
});

/** Like askUdp, with room for a slow upstream. */
function askUdpAnswer(port: number, name: string): Promise<{ rcode: number; answers: number } | undefined> {
  const socket = createSocket('udp4');
  socket.send(buildQuery(name, 'A', 0x4444), port, '127.0.0.1');
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, 4000);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve({ rcode: msg.readUInt16BE(2) & 0xf, answers: msg.readUInt16BE(6) });
    });
  });
}
