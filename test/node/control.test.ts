import test from 'ava';
import { createConnection, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { AnswerReader, callControl, controlClient, MAX_ATTACHED_BYTES, serveControl, type ControlHandlers, type ControlLimits, type ReadAnswer } from '../../src/node/control.js';
import { ControlArgsError, NODE_OP_ARGS, type ArgsValidators, type NoArgs, type NodeOps } from '../../src/node/control-protocol.js';

/** A protocol of the test's own, to drive the wire and its bounds. */
type TestOps = {
  echo: { args: { n: number }; result: { n: number }; chunk: never };
  boom: { args: NoArgs; result: never; chunk: never };
  /** Answers once the test lets it: for what is in flight at once. */
  hold: { args: NoArgs; result: number; chunk: never };
  /** An answer of `bytes` characters. */
  big: { args: { bytes: number }; result: string; chunk: never };
  /** `chunks` chunks of `bytes` characters, then their count; stops when the client goes away. */
  stream: { args: { chunks: number; bytes: number }; result: number; chunk: string };
  /** `chunks` chunks, chunk i carrying i * `bytes` + 1 raw bytes of the value i & 0xff (and no bytes when i % 3 is 2). */
  attach: { args: { chunks: number; bytes: number }; result: number; chunk: { i: number } };
};

const noArgs = (raw: unknown): NoArgs => {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Object.keys(raw).length > 0)) throw new ControlArgsError('takes no args');
  return {};
};
const count = (raw: unknown, key: string): number => {
  const value = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)[key] : undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new ControlArgsError(`${key} must be a count`);
  return value;
};
const TEST_ARGS: ArgsValidators<TestOps> = {
  echo: (raw) => ({ n: count(raw, 'n') }),
  boom: noArgs,
  hold: noArgs,
  big: (raw) => ({ bytes: count(raw, 'bytes') }),
  stream: (raw) => ({ chunks: count(raw, 'chunks'), bytes: count(raw, 'bytes') }),
  attach: (raw) => ({ chunks: count(raw, 'chunks'), bytes: count(raw, 'bytes') }),
};

const attachedBytes = (i: number, bytes: number): Buffer | undefined => (i % 3 === 2 ? undefined : Buffer.alloc(i * bytes + 1, i & 0xff));
const client = controlClient<TestOps>();

interface Rig {
  path: string;
  server: Server;
  /** Handler calls so far, per op. */
  calls: Record<keyof TestOps, number>;
  /** `hold` handlers running now, and the most ever at once. */
  holding: { now: number; most: number };
  release(): void;
  /** Chunks the stream handler has sent (its `send` resolved), and whether a stream ended by the client leaving. */
  streamed: { sent: number; abandoned: boolean };
  close(): void;
}

async function rig(limits: Partial<ControlLimits> = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-control-'));
  const path = join(dir, 'node.sock');
  const calls = { echo: 0, boom: 0, hold: 0, big: 0, stream: 0, attach: 0 };
  const holding = { now: 0, most: 0 };
  const waiting: (() => void)[] = [];
  const streamed = { sent: 0, abandoned: false };
  const handlers: ControlHandlers<TestOps> = {
    echo: ({ n }) => {
      calls.echo++;
      return { n };
    },
    boom: () => {
      calls.boom++;
      throw new Error('kaput');
    },
    hold: async () => {
      calls.hold++;
      holding.now++;
      holding.most = Math.max(holding.most, holding.now);
      await new Promise<void>((resolve) => waiting.push(resolve));
      holding.now--;
      return calls.hold;
    },
    big: ({ bytes }) => {
      calls.big++;
      return 'x'.repeat(bytes);
    },
    stream: async ({ chunks, bytes }, out) => {
      calls.stream++;
      try {
        for (let i = 0; i < chunks; i++) {
          await out.send('y'.repeat(bytes));
          streamed.sent++;
        }
      } catch (err) {
        streamed.abandoned = true;
        throw err;
      }
      return chunks;
    },
    attach: async ({ chunks, bytes }, out) => {
      calls.attach++;
      for (let i = 0; i < chunks; i++) await out.send({ i }, attachedBytes(i, bytes));
      return chunks;
    },
  };
  const server = await serveControl(path, TEST_ARGS, handlers, limits);
  return {
    path,
    server,
    calls,
    holding,
    release: () => waiting.splice(0).forEach((r) => r()),
    streamed,
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw connection: what it writes is sent as is, and every answer line it gets is kept. */
async function raw(path: string): Promise<{ socket: Socket; lines: string[]; closed: Promise<void> }> {
  const socket = createConnection(path);
  const lines: string[] = [];
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    pending += d;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      lines.push(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, lines, closed };
}

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `promise`, or a rejection after `ms`: a missing answer fails the test instead of hanging it. */
async function within<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('requests are answered; unknown ops, bad JSON, bad args and thrown handlers get error answers', async (t) => {
  const r = await rig();
  try {
    t.deepEqual(await client.call(r.path, 'echo', { n: 3 }), { n: 3 });
    await t.throwsAsync(client.call(r.path, 'boom', {}), { message: 'kaput' });
    const c = await raw(r.path);
    c.socket.write(
      [
        'not json',
        '[1]',
        '{"id":{},"op":"echo"}',
        '{"id":2,"op":"nope"}',
        '{"id":3,"op":"toString"}',
        '{"id":4,"op":"__proto__"}',
        '{"id":5,"op":"echo","args":{"n":-1}}',
        '{"id":6,"op":"echo","args":{"n":1}}',
        '',
      ].join('\n'),
    );
    await until(() => c.lines.length === 8);
    const answers = c.lines.map((l) => JSON.parse(l) as { id: unknown });
    answers.sort((a, b) => Number(a.id ?? 0) - Number(b.id ?? 0));
    t.deepEqual(answers, [
      { id: null, ok: false, error: 'request is not JSON' },
      { id: null, ok: false, error: 'request is not a JSON object' },
      { id: null, ok: false, error: 'request id must be a number or a string' },
      { id: 2, ok: false, error: 'unknown op "nope"' },
      { id: 3, ok: false, error: 'unknown op "toString"' },
      { id: 4, ok: false, error: 'unknown op "__proto__"' },
      { id: 5, ok: false, error: 'n must be a count' },
      { id: 6, ok: true, result: { n: 1 } },
    ]);
    // A bad request never reaches a handler.
    t.is(r.calls.echo, 2);
    c.socket.destroy();
  } finally {
    r.close();
  }
});

test('a client that ends its side after the last request still gets every answer, the last without its newline too', async (t) => {
  const r = await rig();
  try {
    const c = await raw(r.path);
    c.socket.end('{"id":1,"op":"echo","args":{"n":1}}\n{"id":2,"op":"echo","args":{"n":2}}');
    await within(c.closed);
    t.deepEqual(
      c.lines.map((l) => JSON.parse(l)),
      [
        { id: 1, ok: true, result: { n: 1 } },
        { id: 2, ok: true, result: { n: 2 } },
      ],
    );
  } finally {
    r.close();
  }
});

test('a request line past the limit is refused and the connection ends', async (t) => {
  const r = await rig({ maxLineBytes: 1000 });
  try {
    const c = await raw(r.path);
    c.socket.write('x'.repeat(5000));
    await within(c.closed);
    t.deepEqual(JSON.parse(c.lines[0]), { id: null, ok: false, error: 'request longer than 1000 bytes' });
  } finally {
    r.close();
  }
});

test('connections past maxConnections get a clear error and are closed; a freed slot is usable again', async (t) => {
  const r = await rig({ maxConnections: 3 });
  try {
    const held = await Promise.all([raw(r.path), raw(r.path), raw(r.path)]);
    const extra = await raw(r.path);
    await within(extra.closed);
    t.deepEqual(JSON.parse(extra.lines[0]), { id: null, ok: false, error: 'too many control connections (at most 3); try again when one has closed' });
    await t.throwsAsync(client.call(r.path, 'echo', { n: 1 }, 2000), { message: /too many control connections/ });
    held[0].socket.destroy();
    await held[0].closed;
    await sleep(20);
    t.deepEqual(await client.call(r.path, 'echo', { n: 1 }), { n: 1 });
    for (const h of held) h.socket.destroy();
  } finally {
    r.close();
  }
});

test('at most maxInFlight requests of one connection are handled at once; the rest wait unread and are all answered', async (t) => {
  const r = await rig({ maxInFlight: 4 });
  try {
    const c = await raw(r.path);
    const requests = 20_000;
    let text = '';
    for (let i = 0; i < requests; i++) text += `{"id":${i},"op":"hold"}\n`;
    c.socket.write(text);
    await sleep(200);
    t.is(r.calls.hold, 4);
    t.is(r.holding.most, 4);
    let releasing = true;
    const releaser = () => {
      r.release();
      if (releasing) setImmediate(releaser);
    };
    releaser();
    await until(() => c.lines.length === requests, 20_000);
    releasing = false;
    t.is(r.holding.most, 4);
    t.is(new Set(c.lines.map((l) => (JSON.parse(l) as { id: number }).id)).size, requests);
    c.socket.destroy();
  } finally {
    r.close();
  }
});

test('a client that does not read its answers stops its requests from being handled: the node holds a bounded amount for it', async (t) => {
  const r = await rig({ maxInFlight: 4 });
  try {
    const c = await raw(r.path);
    c.socket.pause();
    const requests = 2000;
    let text = '';
    for (let i = 0; i < requests; i++) text += `{"id":${i},"op":"big","args":{"bytes":65536}}\n`;
    c.socket.write(text);
    await sleep(500);
    // The kernel's socket buffers and the stream's high-water mark take a few answers; then
    // the node stops handling, where without backpressure it would queue 2000 x 64 KiB.
    t.true(r.calls.big <= 16, `${r.calls.big} handled while the client read nothing`);
    c.socket.resume();
    await until(() => c.lines.length === requests, 20_000);
    t.is(r.calls.big, requests);
    c.socket.destroy();
  } finally {
    r.close();
  }
});

test('a stream waits for a slow reader, and ends when the reader goes away', async (t) => {
  const r = await rig();
  try {
    let received = 0;
    let firstChunk: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (firstChunk = resolve));
    const done = client.stream(r.path, 'stream', { chunks: 2000, bytes: 16384 }, async (chunk) => {
      received++;
      t.is(chunk.length, 16384);
      if (received === 1) await gate;
    });
    await sleep(500);
    t.true(r.streamed.sent <= 64, `${r.streamed.sent} chunks sent to a reader that took one`);
    firstChunk();
    t.is(await within(done, 20_000), 2000);
    t.is(received, 2000);

    // A reader that leaves after the first chunk: the handler's send fails and it stops.
    r.streamed.sent = 0;
    const leaving = client.stream(r.path, 'stream', { chunks: 1_000_000, bytes: 16384 }, () => {
      throw new Error('reader gone');
    });
    await t.throwsAsync(leaving, { message: 'reader gone' });
    await until(() => r.streamed.abandoned);
    const stopped = r.streamed.sent;
    await sleep(100);
    t.is(r.streamed.sent, stopped);
    t.true(stopped < 1000);
  } finally {
    r.close();
  }
});

test('a call that gets no answer times out; a missing socket is a clear error, not a hang', async (t) => {
  const r = await rig();
  try {
    await t.throwsAsync(client.call(r.path, 'hold', {}, 200), { message: /no answer to hold in 200 ms/ });
    r.release();
  } finally {
    r.close();
  }
  await t.throwsAsync(callControl('/nonexistent/pw.sock', 'status', {}, 500), { message: /ENOENT/ });
});

test('the node checks every op\'s args at its edge: a bad request is an error answer and reaches no handler', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-control-'));
  const path = join(dir, 'node.sock');
  let handled = 0;
  const unreachable = () => {
    handled++;
    throw new Error('a handler ran');
  };
  const handlers: ControlHandlers<NodeOps> = { status: unreachable, rules: unreachable, conntrack: unreachable, trace: unreachable, capture: unreachable, exec: unreachable, observe: unreachable };
  const server = await serveControl(path, NODE_OP_ARGS, handlers);
  const bad: [string, unknown, RegExp][] = [
    ['status', { verbose: true }, /status: unknown argument "verbose"/],
    ['status', 'all', /status: args must be an object/],
    ['rules', {}, /rules: format must be one of iptables, json, got nothing/],
    ['rules', { format: 'yaml' }, /rules: format must be one of iptables, json, got "yaml"/],
    ['conntrack', { output: 'text', filter: { dport: 80 } }, /conntrack: ports need a protocol with ports: -p tcp or -p udp/],
    ['conntrack', { output: 'text', filter: { proto: 1, sport: 7 } }, /ports need a protocol with ports/],
    ['conntrack', { output: 'text', filter: { proto: 47 } }, /conntrack: protocol 47: one of tcp, udp, icmp/],
    ['conntrack', { output: 'text', filter: { src: -1 } }, /filter.src must be an integer from 0 to 4294967295, got -1/],
    ['conntrack', { output: 'text', filter: { dst: '10.0.0.1' } }, /filter.dst must be an integer/],
    ['conntrack', { output: 'text', filter: { proto: 6, dport: 65536 } }, /filter.dport must be an integer from 0 to 65535/],
    ['conntrack', { output: 'text', filter: { mark: 1 } }, /conntrack filter: unknown argument "mark"/],
    ['conntrack', { output: 'all' }, /conntrack: output must be one of text, json, count/],
    ['conntrack', { output: 'text', filter: [] }, /conntrack filter: args must be an object/],
    ['trace', { from: 'client', namespace: 'default', dst: 1, dport: 0, proto: 'tcp' }, /trace: dport must be an integer from 1 to 65535, got 0/],
    ['trace', { from: '', namespace: 'default', dst: 1, dport: 80, proto: 'tcp' }, /trace: from must be a string of 1 to 261 characters/],
    ['trace', { from: 'c', namespace: 'default', dst: 2 ** 32, dport: 80, proto: 'tcp' }, /trace: dst must be an integer/],
    ['trace', { from: 'c', namespace: 'default', dst: 1, dport: 80, proto: 'sctp' }, /trace: proto must be one of tcp, udp/],
    ['trace', { from: 'c', dst: 1, dport: 80, proto: 'tcp' }, /trace: namespace must be a string/],
    ['trace', { from: 'c', namespace: 'default', dst: 1, dport: 80, sport: 0, proto: 'tcp' }, /trace: sport must be an integer from 1 to 65535/],
    ['trace', { pod: 'c', namespace: 'default', dst: 1, dport: 80, proto: 'tcp' }, /trace: unknown argument "pod"/],
    ['capture', { pod: 'default/client', iface: 'uplink' }, /capture: pod and iface exclude each other/],
    ['capture', { filter: 7 }, /capture: filter must be a string/],
    ['capture', { snaplen: 0 }, /capture: snaplen must be an integer from 1 to 262144, got 0/],
    ['capture', { write: '-' }, /capture: unknown argument "write"/],
    ['exec', { namespace: 'default', pod: 'c', argv: [] }, /exec: argv must be a list of 1 to 4096 strings/],
    ['exec', { namespace: 'default', pod: 'c', argv: 'sh' }, /exec: argv must be a list/],
    ['exec', { namespace: 'default', pod: 'c', argv: ['sh', 7] }, /exec: argv\[1\] must be a string/],
    ['exec', { namespace: 'default', pod: 'c', argv: ['a\0b'] }, /exec: argv\[0\] must be a string of at most 131072 characters without NUL/],
    ['exec', { namespace: 'default', pod: 'c', argv: ['id'], user: { uid: -1 } }, /exec: user.uid must be an integer from 0 to 2147483647/],
    ['exec', { namespace: 'default', pod: 'c', argv: ['id'], user: { name: 'root' } }, /exec user: unknown argument "name"/],
    ['exec', { pod: 'c', argv: ['id'] }, /exec: namespace must be a string/],
    ['exec', { namespace: 'default', pod: 'c', container: '', argv: ['id'] }, /exec: container must be a string of 1 to 63/],
    ['observe', {}, /observe: follow must be true or false/],
    ['observe', { follow: false, last: -1 }, /observe: last must be an integer from 0 to 1048576, got -1/],
    ['observe', { follow: false, since: 'yesterday' }, /observe: since must be an integer/],
    ['observe', { follow: true, filters: { whitelist: [{ source_pod: 'client' }] } }, /observe: whitelist\[0\]\.source_pod must be a list of strings/],
    ['observe', { follow: true, filters: { whitelist: [{ source_mac: ['x'] }] } }, /observe: whitelist\[0\]: unknown field "source_mac"/],
    ['observe', { follow: true, filters: 'all' }, /observe: filters must be \{whitelist/],
    ['observe', { follow: true, tail: 3 }, /observe: unknown argument "tail"/],
  ];
  try {
    const c = await raw(path);
    c.socket.write(bad.map(([op, args], id) => `${JSON.stringify({ id, op, args })}\n`).join(''));
    await until(() => c.lines.length === bad.length);
    for (const l of c.lines) {
      const answer = JSON.parse(l) as { id: number; ok: boolean; error: string };
      t.false(answer.ok);
      t.regex(answer.error, bad[answer.id][2], `${bad[answer.id][0]} ${JSON.stringify(bad[answer.id][1])}`);
    }
    t.is(handled, 0);
    // Good args pass the checks and reach the handler.
    t.deepEqual(NODE_OP_ARGS.conntrack({ output: 'count', filter: { proto: 17, dport: 53, src: 0x0af40103 } }), {
      output: 'count',
      filter: { proto: 17, src: 0x0af40103, dst: undefined, sport: undefined, dport: 53 },
    });
    t.deepEqual(NODE_OP_ARGS.status(undefined), {});
    t.deepEqual(NODE_OP_ARGS.rules({ format: 'iptables' }), { format: 'iptables', backend: 'nft' }, 'a client that names no backend gets nft');
    t.throws(() => NODE_OP_ARGS.rules({ format: 'iptables', backend: 'iptables' }), { message: 'rules: backend must be one of nft, legacy, got "iptables"' });
    await t.throwsAsync(callControl(path, 'rules', { format: 'json', backend: 'legacy' }), { message: 'a handler ran' });
    t.is(handled, 1);
    c.socket.destroy();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chunks carry raw bytes after their line: small and large, with none between, each whole and in order', async (t) => {
  const r = await rig();
  try {
    const seen: string[] = [];
    // Up to 600 KB a chunk: far more than one socket read, so a chunk's bytes arrive in pieces.
    const done = client.stream(r.path, 'attach', { chunks: 30, bytes: 20_000 }, (chunk, attached) => {
      const want = attachedBytes(chunk.i, 20_000);
      seen.push(`${chunk.i}:${attached?.length ?? 0}`);
      if (want === undefined) t.is(attached, undefined);
      else t.true(attached !== undefined && attached.equals(want), `chunk ${chunk.i}`);
    });
    t.is(await within(done, 20_000), 30);
    t.deepEqual(seen, Array.from({ length: 30 }, (_, i) => `${i}:${attachedBytes(i, 20_000)?.length ?? 0}`));
  } finally {
    r.close();
  }
});

/** The messages an AnswerReader makes of `stream` fed in pieces cut at `cuts`. */
function readAll(stream: Buffer, cuts: number[]): ReadAnswer[] {
  const reader = new AnswerReader();
  const out: ReadAnswer[] = [];
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (stream.length + 1)).sort((a, b) => a - b), stream.length]) {
    reader.push(stream.subarray(at, cut));
    at = Math.max(at, cut);
    for (let m = reader.next(); m !== undefined; m = reader.next()) out.push(m);
  }
  return out;
}

test('AnswerReader: the same messages however the stream is cut into reads', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.record({ n: fc.nat(1000) }), fc.uint8Array({ maxLength: 200_000 }).map((b) => Buffer.from(b))), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (messages, cuts) => {
        // Attached bytes full of newlines: they must never be taken for a line's end.
        const parts = messages.map((m, i) => (Buffer.isBuffer(m) ? [Buffer.from(`${JSON.stringify({ id: 1, chunk: i, attached: m.length })}\n`), m] : [Buffer.from(`${JSON.stringify({ id: 1, chunk: m })}\n`)]));
        parts.push([Buffer.from('{"id":1,"ok":true,"result":"end"}\n')]);
        const got = readAll(Buffer.concat(parts.flat()), cuts);
        t.is(got.length, messages.length + 1);
        messages.forEach((m, i) => {
          const g = got[i];
          if (g.answer.kind !== 'chunk') return t.fail(`message ${i} is ${g.answer.kind}`);
          if (Buffer.isBuffer(m)) t.true(m.length === 0 ? g.attached === undefined : g.attached?.equals(m) === true, `message ${i}`);
          else t.deepEqual([g.answer.chunk, g.attached], [m, undefined]);
        });
        t.deepEqual(got[messages.length].answer, { kind: 'result', result: 'end' });
      },
    ),
    { numRuns: 60 },
  );
});

test('AnswerReader: an attached count that is negative, fractional, too large or not a number is no answer', (t) => {
  for (const attached of [-1, 1.5, MAX_ATTACHED_BYTES + 1, '12', null]) {
    const reader = new AnswerReader();
    reader.push(Buffer.from(`${JSON.stringify({ id: 1, chunk: {}, attached })}\n`));
    t.throws(() => reader.next(), { message: 'answer is not a control message' }, String(attached));
  }
});
