import test from 'ava';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCapture, type CaptureFile } from '../../src/pcap/reader.js';
import { CaptureWriter, installCloseOnSignals, rotatedPath, type CaptureIo, type CaptureWriterOptions } from '../../src/pcap/writer.js';
import { expectedComment } from './build.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-pcap-writer-'));
test.after.always(() => fs.rmSync(TMP, { recursive: true, force: true }));

let fileCounter = 0;
function tmpFile(ext: string): string {
  return path.join(TMP, `cap-${fileCounter++}${ext}`);
}

/** A deterministic clock: 1700000000 s, then +1.5 µs per reading. */
function stepClock(start = 1_700_000_000_000_000_000n, step = 1_500n): () => bigint {
  let now = start - step;
  return () => (now += step);
}

/** A frame whose first four bytes carry a sequence number, so gaps and reorders show. */
function seqFrame(seq: number, length: number): Buffer {
  const frame = Buffer.alloc(Math.max(length, 4), seq & 0xff);
  frame.writeUInt32BE(seq, 0);
  return frame;
}

function sequence(file: CaptureFile): number[] {
  return file.records.map((r) => r.data.readUInt32BE(0));
}

function readFile(file: string): CaptureFile {
  return readCapture(fs.readFileSync(file));
}

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

test('pcapng: records, interfaces, comments and timestamps come back', (t) => {
  const file = tmpFile('.pcapng');
  const w = new CaptureWriter({
    path: file,
    format: 'pcapng',
    interfaces: [{ name: 'pw-n1-a', description: 'pod default/a' }, { name: 'vxlan0' }],
    clock: stepClock(),
    flushIntervalMs: 0,
  });
  t.true(w.write(0, seqFrame(0, 60)));
  t.true(w.write(1, seqFrame(1, 1514), 'drop: policy-denied'));
  t.true(w.write(0, seqFrame(2, 0)));
  w.close();
  const got = readFile(file);
  t.is(got.format, 'pcapng');
  t.deepEqual(got.interfaces, [
    { linkType: 1, snaplen: 262144, tsresol: 9, name: 'pw-n1-a', description: 'pod default/a' },
    { linkType: 1, snaplen: 262144, tsresol: 9, name: 'vxlan0' },
  ]);
  t.deepEqual(
    got.records.map((r) => [r.interfaceId, r.timestampNs, r.data.length, r.originalLength, r.comment]),
    [
      [0, 1_700_000_000_000_000_000n, 60, 60, undefined],
      [1, 1_700_000_000_000_001_500n, 1514, 1514, 'drop: policy-denied'],
      [0, 1_700_000_000_000_003_000n, 4, 4, undefined],
    ],
  );
  t.deepEqual(w.stats, { records: 3, dropped: 0, truncated: 0, bytes: fs.statSync(file).size, files: 1 });
  t.deepEqual(w.paths, [file]);
});

for (const resolution of ['us', 'ns'] as const) {
  test(`classic pcap (${resolution}): records and timestamps come back`, (t) => {
    const file = tmpFile('.pcap');
    const clock = stepClock(1_700_000_000_123_456_789n);
    const w = new CaptureWriter({ path: file, format: 'pcap', resolution, interfaces: [{ name: 'eth0' }], clock });
    w.write(0, seqFrame(0, 100), 'comments have no place in classic pcap');
    w.write(0, seqFrame(1, 200));
    w.close();
    const got = readFile(file);
    t.deepEqual(got.interfaces, [{ linkType: 1, snaplen: 262144, tsresol: resolution === 'ns' ? 9 : 6 }]);
    t.deepEqual(sequence(got), [0, 1]);
    t.deepEqual(
      got.records.map((r) => r.timestampNs),
      resolution === 'ns' ? [1_700_000_000_123_456_789n, 1_700_000_000_123_458_289n] : [1_700_000_000_123_456_000n, 1_700_000_000_123_458_000n],
    );
    t.is(got.records[0].comment, undefined);
  });
}

test('the frame is copied at write: the caller may reuse its buffer at once', (t) => {
  const file = tmpFile('.pcapng');
  const w = new CaptureWriter({ path: file, format: 'pcapng', interfaces: [{ name: 'a' }], clock: stepClock() });
  const frame = Buffer.alloc(64, 0x11);
  w.write(0, frame);
  frame.fill(0x22);
  w.write(0, frame);
  w.close();
  const got = readFile(file);
  t.deepEqual(got.records[0].data, Buffer.alloc(64, 0x11));
  t.deepEqual(got.records[1].data, Buffer.alloc(64, 0x22));
});

test('snaplen cuts stored bytes, keeps the original length, and is counted', (t) => {
  const file = tmpFile('.pcapng');
  const w = new CaptureWriter({ path: file, format: 'pcapng', interfaces: [{ name: 'a' }], snaplen: 96, clock: stepClock() });
  w.write(0, seqFrame(0, 1500));
  w.write(0, seqFrame(1, 96));
  w.close();
  const got = readFile(file);
  t.is(got.interfaces[0].snaplen, 96);
  t.deepEqual(
    got.records.map((r) => [r.data.length, r.originalLength]),
    [
      [96, 1500],
      [96, 96],
    ],
  );
  t.is(w.stats.truncated, 1);
});

for (const format of ['pcapng', 'pcap'] as const) {
  test(`${format}: rotation gives several files, each readable alone, none past rotateBytes`, (t) => {
    const ext = `.${format}`;
    const file = tmpFile(ext);
    const rotateBytes = 64 * 1024;
    const w = new CaptureWriter({ path: file, format, interfaces: [{ name: 'pw-rot0' }], rotateBytes, clock: stepClock() });
    for (let i = 0; i < 300; i++) t.true(w.write(0, seqFrame(i, 1000), i % 10 === 0 ? `frame ${i}` : undefined));
    w.close();
    const stem = file.slice(0, -ext.length);
    t.true(w.paths.length >= 4, `${w.paths.length} files`);
    t.deepEqual(w.paths, range(w.paths.length).map((i) => (i === 0 ? file : `${stem}.${i}${ext}`)));
    t.is(w.stats.files, w.paths.length);
    let next = 0;
    for (const part of w.paths) {
      t.true(fs.statSync(part).size <= rotateBytes, `${part} is ${fs.statSync(part).size} bytes`);
      const got = readFile(part);
      if (format === 'pcapng') t.is(got.interfaces[0].name, 'pw-rot0');
      t.true(got.records.length > 0);
      t.deepEqual(sequence(got), range(got.records.length, next));
      next += got.records.length;
    }
    t.is(next, 300);
  });
}

test('rotatedPath inserts the index before the extension', (t) => {
  t.is(rotatedPath('/tmp/x/cap.pcapng', 0), '/tmp/x/cap.pcapng');
  t.is(rotatedPath('/tmp/x/cap.pcapng', 2), '/tmp/x/cap.2.pcapng');
  t.is(rotatedPath('cap', 1), 'cap.1');
});

test('a record larger than rotateBytes still gets a file of its own', (t) => {
  const file = tmpFile('.pcapng');
  const w = new CaptureWriter({ path: file, format: 'pcapng', interfaces: [{ name: 'a' }], rotateBytes: 200, clock: stepClock() });
  for (let i = 0; i < 3; i++) w.write(0, seqFrame(i, 500));
  w.close();
  t.is(w.paths.length, 3);
  t.deepEqual(w.paths.map((p) => sequence(readFile(p))), [[0], [1], [2]]);
});

test('a burst: the file on disk always ends on a record, and close leaves the last one whole', (t) => {
  const file = tmpFile('.pcapng');
  const w = new CaptureWriter({
    path: file,
    format: 'pcapng',
    interfaces: [{ name: 'a' }],
    bufferBytes: 128 * 1024,
    clock: stepClock(),
    flushIntervalMs: 0,
  });
  const count = 20000;
  let last: Buffer = Buffer.alloc(0);
  for (let i = 0; i < count; i++) {
    last = seqFrame(i, 60 + ((i * 7919) % 1455));
    w.write(0, last, i % 97 === 0 ? `burst ${i}` : undefined);
    // Between writes (as between event-loop turns) what is on disk is a whole file.
    if (i % 5000 === 4999) t.true(readFile(file).records.length <= i + 1);
  }
  w.close();
  const got = readFile(file);
  t.is(got.records.length, count);
  t.deepEqual(got.records[count - 1].data, last);
  t.deepEqual(sequence(got), range(count));
  t.is(w.stats.bytes, fs.statSync(file).size);
});

test('the timer flushes without close', async (t) => {
  const file = tmpFile('.pcapng');
  const w = new CaptureWriter({ path: file, format: 'pcapng', interfaces: [{ name: 'a' }], flushIntervalMs: 20, clock: stepClock() });
  w.write(0, seqFrame(7, 100));
  const before = readFile(file).records.length;
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.is(before, 0);
  t.deepEqual(sequence(readFile(file)), [7]);
  w.close();
});

test('close is idempotent and later writes are dropped, not thrown', (t) => {
  const file = tmpFile('.pcapng');
  const w = new CaptureWriter({ path: file, format: 'pcapng', interfaces: [{ name: 'a' }], clock: stepClock() });
  w.write(0, seqFrame(0, 10));
  w.close();
  w.close();
  t.true(w.closed);
  t.false(w.write(0, seqFrame(1, 10)));
  t.is(w.stats.dropped, 1);
  t.is(readFile(file).records.length, 1);
});

test('bad options and interface ids are refused with clear errors', (t) => {
  const base: CaptureWriterOptions = { path: tmpFile('.pcap'), format: 'pcap', interfaces: [{ name: 'a' }] };
  t.throws(() => new CaptureWriter({ ...base, interfaces: [{ name: 'a' }, { name: 'b' }] }), { message: /classic pcap has no interface field/ });
  t.throws(() => new CaptureWriter({ ...base, interfaces: [] }), { message: /at least one interface/ });
  t.throws(() => new CaptureWriter({ ...base, snaplen: 0 }), { message: /snaplen 0 is not an integer from 1 to 262144/ });
  t.throws(() => new CaptureWriter({ ...base, snaplen: 262145 }), { message: /snaplen/ });
  t.throws(() => new CaptureWriter({ ...base, rotateBytes: 0.5 }), { message: /rotateBytes/ });
  t.throws(() => new CaptureWriter({ ...base, path: path.join(TMP, 'no/such/dir/x.pcap') }), { message: /ENOENT/ });
  const w = new CaptureWriter(base);
  t.throws(() => w.write(1, Buffer.alloc(10)), { message: /interface id 1 is not one of the 1 interfaces/ });
  w.close();
});

/** An in-memory file system whose writes can be made slow, partial or failing. */
class MemoryIo implements CaptureIo {
  readonly files = new Map<string, Buffer>();
  private readonly fds = new Map<number, string>();
  private nextFd = 100;
  /** How many of `length` bytes one write takes; may throw. */
  accept: (length: number) => number = (length) => length;
  truncated: number[] = [];

  open(file: string): number {
    const fd = this.nextFd++;
    this.fds.set(fd, file);
    this.files.set(file, Buffer.alloc(0));
    return fd;
  }
  write(fd: number, buf: Uint8Array, offset: number, length: number): number {
    const n = this.accept(length);
    const file = this.path(fd);
    this.files.set(file, Buffer.concat([this.files.get(file) as Buffer, buf.subarray(offset, offset + n)]));
    return n;
  }
  truncate(fd: number, length: number): void {
    const file = this.path(fd);
    this.truncated.push(length);
    this.files.set(file, (this.files.get(file) as Buffer).subarray(0, length));
  }
  close(fd: number): void {
    this.path(fd);
    this.fds.delete(fd);
  }
  get openFds(): number {
    return this.fds.size;
  }
  private path(fd: number): string {
    const file = this.fds.get(fd);
    if (file === undefined) throw Object.assign(new Error(`EBADF: fd ${fd}`), { code: 'EBADF' });
    return file;
  }
}

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

test('a descriptor that will not take more: frames are dropped and counted, memory stays bounded', (t) => {
  const io = new MemoryIo();
  const w = new CaptureWriter({
    path: 'mem.pcapng',
    format: 'pcapng',
    interfaces: [{ name: 'a' }],
    snaplen: 2000,
    bufferBytes: 16 * 1024,
    flushIntervalMs: 0,
    io,
    clock: stepClock(),
  });
  const headerBytes = (io.files.get('mem.pcapng') as Buffer).length;
  io.accept = () => {
    throw errno('EAGAIN');
  };
  let accepted = 0;
  for (let i = 0; i < 1000; i++) if (w.write(0, seqFrame(i, 1000))) accepted++;
  // The buffer is the bound: the largest record (a 2000-byte frame with the longest
  // comment) is about 66 KiB, so about 64 frames of 1032 bytes fit while the sink is stuck.
  t.true(accepted > 0 && accepted < 70, `${accepted} accepted`);
  t.is(w.stats.dropped, 1000 - accepted);
  t.is(w.stats.records, accepted);
  // The sink recovers, slowly: partial writes of at most 1000 bytes.
  io.accept = (length) => Math.min(length, 1000);
  for (let i = 1000; i < 1010; i++) t.true(w.write(0, seqFrame(i, 1000)));
  w.close();
  t.is(io.openFds, 0);
  const got = readCapture(io.files.get('mem.pcapng') as Buffer);
  t.deepEqual(sequence(got), [...range(accepted), ...range(10, 1000)]);
  t.is(w.stats.bytes, (io.files.get('mem.pcapng') as Buffer).length);
  t.true(headerBytes > 0, 'headers are written at open');
});

test('close gives a stuck descriptor closeTimeoutMs, then cuts back to the last whole record', (t) => {
  const io = new MemoryIo();
  const w = new CaptureWriter({
    path: 'stuck.pcapng',
    format: 'pcapng',
    interfaces: [{ name: 'a' }],
    flushIntervalMs: 0,
    closeTimeoutMs: 30,
    io,
    clock: stepClock(),
  });
  let budget = 300; // enough for the headers and part of the first records
  io.accept = (length) => {
    if (budget === 0) throw errno('EAGAIN');
    const n = Math.min(length, budget);
    budget -= n;
    return n;
  };
  for (let i = 0; i < 10; i++) w.write(0, seqFrame(i, 100));
  const started = Date.now();
  w.close();
  t.true(Date.now() - started >= 25);
  const content = io.files.get('stuck.pcapng') as Buffer;
  const got = readCapture(content);
  t.true(got.records.length < 10);
  t.deepEqual(sequence(got), range(got.records.length));
  t.is(w.stats.records, got.records.length);
  t.is(w.stats.dropped, 10 - got.records.length);
  t.is(w.stats.bytes, content.length);
  t.is(io.openFds, 0);
});

test('a failing disk: the file is cut back to its last whole record and the writer stops', (t) => {
  const io = new MemoryIo();
  const w = new CaptureWriter({ path: 'full.pcap', format: 'pcap', interfaces: [{ name: 'a' }], flushIntervalMs: 0, io, clock: stepClock() });
  let budget = 5000;
  io.accept = (length) => {
    if (budget === 0) throw errno('ENOSPC');
    const n = Math.min(length, budget);
    budget -= n;
    return n;
  };
  for (let i = 0; i < 100; i++) t.true(w.write(0, seqFrame(i, 200)));
  t.false(w.flush());
  t.is((w.lastError as NodeJS.ErrnoException).code, 'ENOSPC');
  const content = io.files.get('full.pcap') as Buffer;
  const got = readCapture(content);
  // 24-byte header, then 216-byte records: 5000 bytes hold 23 whole ones.
  t.is(got.records.length, 23);
  t.deepEqual(io.truncated, [24 + 23 * 216]);
  t.deepEqual(sequence(got), range(23));
  t.deepEqual(w.stats, { records: 23, dropped: 77, truncated: 0, bytes: content.length, files: 1 });
  t.false(w.write(0, seqFrame(100, 10)));
  t.is(w.stats.dropped, 78);
  w.close();
  t.is(io.openFds, 0);
});

test('property: random frames and comments round-trip through the writer and the reader, both formats', (t) => {
  const frameArb = fc.record({
    interfaceId: fc.nat({ max: 1 }),
    data: fc.uint8Array({ maxLength: 2000 }),
    comment: fc.option(fc.string({ unit: 'binary', maxLength: 60 }), { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 40 }), fc.constantFrom('pcap' as const, 'pcapng' as const), (frames, format) => {
      const file = tmpFile(`.${format}`);
      const interfaces = format === 'pcap' ? [{ name: 'only' }] : [{ name: 'a' }, { name: 'b', description: 'second' }];
      const w = new CaptureWriter({ path: file, format, interfaces, resolution: 'ns', clock: stepClock(), bufferBytes: 4096, flushIntervalMs: 0 });
      for (const f of frames) w.write(format === 'pcap' ? 0 : f.interfaceId, f.data, f.comment);
      w.close();
      const got = readFile(file);
      fs.rmSync(file);
      const clock = stepClock();
      return (
        got.records.length === frames.length &&
        frames.every((f, i) => {
          const r = got.records[i];
          return (
            r.data.equals(f.data) &&
            r.originalLength === f.data.length &&
            r.timestampNs === clock() &&
            r.interfaceId === (format === 'pcap' ? 0 : f.interfaceId) &&
            r.comment === (format === 'pcap' ? undefined : expectedComment(f.comment))
          );
        })
      );
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test.serial('installCloseOnSignals: with another listener present, it closes the writers and leaves shutdown to it', (t) => {
  const closed: string[] = [];
  const writers = new Set([{ close: () => closed.push('a') }]);
  const others: string[] = [];
  const other = (): number => others.push('other');
  process.on('SIGUSR2', other);
  try {
    const uninstall = installCloseOnSignals(writers, ['SIGUSR2']);
    // Writers added after installing are closed too: the set is read when the signal comes.
    writers.add({
      close: () => {
        closed.push('b');
        throw new Error('one writer failing must not keep the others open');
      },
    });
    writers.add({ close: () => closed.push('c') });
    t.is(process.listenerCount('SIGUSR2'), 2);
    process.emit('SIGUSR2', 'SIGUSR2');
    t.deepEqual(closed, ['a', 'b', 'c']);
    t.deepEqual(others, ['other']);
    t.is(process.listenerCount('SIGUSR2'), 1, 'the handler removed itself');
    uninstall();
  } finally {
    process.removeListener('SIGUSR2', other);
  }
});

test.serial('installCloseOnSignals returns a function that removes its handlers', (t) => {
  const before = process.listenerCount('SIGUSR2');
  const uninstall = installCloseOnSignals([], ['SIGUSR2']);
  t.is(process.listenerCount('SIGUSR2'), before + 1);
  uninstall();
  t.is(process.listenerCount('SIGUSR2'), before);
});

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the signal child, waits until it has written a while, sends `signal`. */
function interruptChild(file: string, format: string, signal: NodeJS.Signals): Promise<ChildExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(HERE, 'signal-child.js'), file, format], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (sent || !stdout.includes('ready')) return;
      sent = true;
      // Let it run on a little, so the signal lands mid-stream with records buffered.
      setTimeout(() => child.kill(signal), 150);
    });
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code, signal: sig, stdout, stderr }));
    setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
  });
}

for (const [format, signal, number] of [
  ['pcapng', 'SIGTERM', 15],
  ['pcap', 'SIGTERM', 15],
  ['pcapng', 'SIGINT', 2],
] as const) {
  test(`${format}: ${signal} to a process writing continuously leaves a file readable to its last record`, async (t) => {
    const file = tmpFile(`.${format}`);
    const exit = await interruptChild(file, format, signal);
    t.is(exit.stderr, '');
    // Dying of the re-raised signal, or exiting 128 + signal if that was not possible.
    t.true(exit.signal === signal || exit.code === 128 + number, `exit ${exit.code} signal ${exit.signal}`);
    const bytes = fs.readFileSync(file);
    const got = readCapture(bytes); // throws if the file ended mid-record
    t.true(got.records.length >= 2000, `${got.records.length} records`);
    // The handler ran, and everything the writer had accepted reached the file.
    t.is(/closed (\d+)/.exec(exit.stdout)?.[1], String(got.records.length));
    const seqs = sequence(got);
    t.is(seqs.findIndex((seq, i) => seq !== i), -1, 'no frame lost or reordered before the last');
    if (format === 'pcapng') t.is(got.records.at(-1)?.comment, `seq ${got.records.length - 1}`);
  });
}

test('an interface added mid-capture gets its own id, in this file and in every rotated one', (t) => {
  const file = tmpFile('pcapng');
  const w = new CaptureWriter({ path: file, format: 'pcapng', interfaces: [{ name: 'first' }], clock: stepClock(), rotateBytes: 400 });
  w.write(0, seqFrame(1, 60));
  const id = w.addInterface({ name: 'late', description: 'joined later' });
  t.is(id, 1);
  for (let i = 2; i < 8; i++) w.write(i % 2, seqFrame(i, 60));
  w.close();
  t.true(w.paths.length > 1, 'rotated');
  const first = readFile(w.paths[0]);
  t.deepEqual(first.interfaces.map((i) => i.name), ['first', 'late']);
  const ids = [...w.paths].flatMap((p) => readFile(p).records.map((r) => r.interfaceId));
  t.deepEqual(ids, [0, 0, 1, 0, 1, 0, 1], 'frame 1 before the new interface, then alternating');
  const last = readFile(w.paths[w.paths.length - 1]);
  t.deepEqual(last.interfaces.map((i) => i.name), ['first', 'late'], 'a rotated file declares both from its start');
  t.deepEqual([...w.paths].flatMap((p) => sequence(readFile(p))), range(7, 1));
});
