/**
 * A streaming capture writer: frames are encoded into one bounded in-memory buffer and
 * written to a file descriptor this writer owns with synchronous writes.
 *
 * Why synchronous: a flush either hands whole records to the kernel or keeps the rest in
 * the buffer, and nothing else runs in between, so a capture interrupted at any event-loop
 * turn (a signal handler calling `close()`, say) ends on a record boundary. The buffer is
 * flushed when the next record does not fit, on a timer and on `close()`.
 *
 * Memory never grows: when the buffer is full and the descriptor will not take more (a
 * non-blocking pipe whose reader is slow), frames are dropped and counted in
 * `stats.dropped`. A regular file never refuses a write, so there a full buffer costs one
 * blocking flush instead. If a write fails outright (disk full), the file is cut back to
 * its last whole record and the writer stops, counting what was lost.
 *
 * With `rotateBytes`, a file that would grow past it is closed and the capture continues
 * in `name.1.ext`, `name.2.ext`, ..., each starting with its own headers so that every
 * file can be read alone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import {
  capturedLength,
  encodePcapGlobalHeader,
  encodePcapRecord,
  MAX_SNAPLEN,
  pcapGlobalHeaderLen,
  pcapRecordLen,
  type PcapFileHeader,
  type PcapResolution,
} from './pcap.js';
import {
  encodeEpb,
  encodeIdb,
  encodeShb,
  epbLen,
  idbLen,
  MAX_OPTION_VALUE_LEN,
  pad4,
  shbLen,
  type InterfaceDescription,
  type SectionHeader,
} from './pcapng.js';
import type { CaptureFormat } from './reader.js';

export interface InterfaceSpec {
  /** Written as if_name (pcapng), e.g. the TAP device or "pw-node1/eth0". */
  name: string;
  description?: string;
}

/** The file operations the writer needs; injectable so tests can play a slow or full disk. */
export interface CaptureIo {
  open(path: string): number;
  /** Like fs.writeSync: bytes written, or throws (EAGAIN when a non-blocking fd is full). */
  write(fd: number, buf: Uint8Array, offset: number, length: number): number;
  truncate(fd: number, length: number): void;
  close(fd: number): void;
}

export const nodeCaptureIo: CaptureIo = {
  // O_NONBLOCK changes nothing for a regular file; for a FIFO read by a live Wireshark it
  // turns a slow reader into counted drops instead of a stalled node.
  open: (file) => fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NONBLOCK, 0o644),
  write: (fd, buf, offset, length) => fs.writeSync(fd, buf, offset, length),
  truncate: (fd, length) => fs.ftruncateSync(fd, length),
  close: (fd) => fs.closeSync(fd),
};

export interface CaptureWriterOptions {
  /** The first file; rotated files insert `.1`, `.2`, ... before the extension. */
  path: string;
  format: CaptureFormat;
  /** pcapng: one IDB each, in this order (interface id = index). Classic pcap: exactly one. */
  interfaces: readonly InterfaceSpec[];
  /** Bytes kept per frame, 1 to MAX_SNAPLEN (default). */
  snaplen?: number;
  /** Classic pcap only: default 'us', which every reader knows; 'ns' keeps full precision. */
  resolution?: PcapResolution;
  /** Nanoseconds since the epoch; default `wallClock()`. */
  clock?: () => bigint;
  /** Buffer size, default 1 MiB; raised if needed to hold the headers or one largest record. */
  bufferBytes?: number;
  /** Rotate before a file would exceed this many bytes (a file always holds at least one record). */
  rotateBytes?: number;
  /** Timer flush period, default 200 ms; 0 turns the timer off. */
  flushIntervalMs?: number;
  /** How long `close()` keeps retrying a descriptor that would block, default 1000 ms. */
  closeTimeoutMs?: number;
  /** shb_userappl, default "podwire". */
  userAppl?: string;
  io?: CaptureIo;
}

export interface CaptureStats {
  /** Records accepted and not lost: in the files or still in the buffer. */
  records: number;
  /** Frames refused (buffer full, writer closed or failed) or lost when a write failed. */
  dropped: number;
  /** Records stored shorter than the frame because of the snaplen. */
  truncated: number;
  /** Bytes in the files, headers included. */
  bytes: number;
  /** Files opened, the first included. */
  files: number;
}

/**
 * A wall clock with nanosecond steps: Date.now() once, then process.hrtime deltas, so
 * timestamps within a capture are monotonic even if the system clock is stepped.
 */
export function wallClock(): () => bigint {
  const baseNs = BigInt(Date.now()) * 1_000_000n;
  const baseHr = process.hrtime.bigint();
  return () => baseNs + (process.hrtime.bigint() - baseHr);
}

/** `cap.pcapng` -> `cap.pcapng`, `cap.1.pcapng`, `cap.2.pcapng`, ... */
export function rotatedPath(file: string, index: number): string {
  if (index === 0) return file;
  const { dir, name, ext } = path.parse(file);
  return path.join(dir, `${name}.${index}${ext}`);
}

const DEFAULT_BUFFER_BYTES = 1 << 20;
const DEFAULT_FLUSH_MS = 200;
const DEFAULT_CLOSE_TIMEOUT_MS = 1000;
const CLOSE_RETRY_MS = 5;

type State = 'open' | 'failed' | 'closed';

export class CaptureWriter {
  readonly stats: CaptureStats = { records: 0, dropped: 0, truncated: 0, bytes: 0, files: 0 };
  /** The error that stopped the writer, if one did. */
  lastError: Error | undefined;

  private readonly format: CaptureFormat;
  private readonly basePath: string;
  private readonly snaplen: number;
  private readonly pcapHeader: PcapFileHeader;
  private readonly shb: SectionHeader;
  private readonly idbs: InterfaceDescription[];
  private readonly headerLen: number;
  private readonly clock: () => bigint;
  private readonly rotateBytes: number | undefined;
  private readonly closeTimeoutMs: number;
  private readonly io: CaptureIo;
  private readonly buf: Buffer;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly openedPaths: string[] = [];

  private state: State = 'open';
  private fd = -1;
  private fileIndex = 0;
  /** Bytes of the current file, buffered ones included: what rotation compares. */
  private fileBytes = 0;
  /** Bytes of the current file already handed to the descriptor. */
  private fileWritten = 0;
  private fileRecords = 0;
  /** buf[head, used) is waiting to be written; buf[0, head) already was. */
  private head = 0;
  private used = 0;
  /** Records in buf[0, used), and the length of the file headers at buf[0] if present. */
  private bufferedRecords = 0;
  private headerInBuffer = 0;

  constructor(options: CaptureWriterOptions) {
    validate(options);
    this.format = options.format;
    this.basePath = options.path;
    this.snaplen = options.snaplen ?? MAX_SNAPLEN;
    this.pcapHeader = { resolution: options.resolution ?? 'us', snaplen: this.snaplen };
    this.shb = { userAppl: options.userAppl ?? 'podwire' };
    this.idbs = options.interfaces.map((i) => ({ snaplen: this.snaplen, name: i.name, description: i.description }));
    this.headerLen = this.format === 'pcap' ? pcapGlobalHeaderLen() : this.idbs.reduce((n, idb) => n + idbLen(idb), shbLen(this.shb));
    this.clock = options.clock ?? wallClock();
    this.rotateBytes = options.rotateBytes;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.io = options.io ?? nodeCaptureIo;
    this.buf = Buffer.alloc(Math.max(options.bufferBytes ?? DEFAULT_BUFFER_BYTES, this.headerLen, this.largestRecordLen()));
    this.openFile();
    const interval = options.flushIntervalMs ?? DEFAULT_FLUSH_MS;
    if (interval > 0) {
      this.timer = setInterval(() => this.flush(), interval);
      // A capture must never be the thing that keeps the process alive.
      this.timer.unref();
    }
  }

  /** Every file this writer has opened, in order. */
  get paths(): readonly string[] {
    return this.openedPaths;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Appends one frame, copying its bytes (the caller may reuse `frame` at once). The
   * comment is stored as opt_comment in pcapng and ignored by classic pcap. Returns false
   * when the frame was dropped; never throws for I/O trouble (see `lastError`).
   */
  write(interfaceId: number, frame: Uint8Array, comment?: string): boolean {
    if (!Number.isInteger(interfaceId) || interfaceId < 0 || interfaceId >= this.idbs.length) {
      throw new Error(`capture: interface id ${interfaceId} is not one of the ${this.idbs.length} interfaces of ${this.basePath}`);
    }
    if (this.state !== 'open') return this.drop();
    const timestampNs = this.clock();
    const capLen = capturedLength(frame.length, this.snaplen);
    const len = this.format === 'pcap' ? pcapRecordLen(capLen) : epbLen(capLen, comment);
    if (!this.makeRoom(len)) return this.drop();
    const at = this.used;
    const written =
      this.format === 'pcap'
        ? encodePcapRecord({ timestampNs, data: frame }, this.pcapHeader, this.buf, at)
        : encodeEpb({ interfaceId, timestampNs, data: frame, snaplen: this.snaplen, comment }, this.buf, at);
    this.used += written;
    this.fileBytes += written;
    this.fileRecords++;
    this.bufferedRecords++;
    this.stats.records++;
    if (capLen < frame.length) this.stats.truncated++;
    return true;
  }

  /**
   * pcapng only: declares one more interface mid-capture (a section's Interface
   * Description Blocks may follow its packets) and returns its id. Rotated files carry
   * every interface in their headers, so each stays readable alone.
   */
  addInterface(spec: InterfaceSpec): number {
    if (this.format !== 'pcapng') throw new Error('capture: a classic pcap file holds one interface');
    const idb: InterfaceDescription = { snaplen: this.snaplen, name: spec.name, description: spec.description };
    this.idbs.push(idb);
    const id = this.idbs.length - 1;
    const len = idbLen(idb);
    if (this.state === 'open' && this.makeRoom(len)) {
      this.used += encodeIdb(idb, this.buf, this.used);
      this.fileBytes += len;
      // A block like a record to lastBoundary, which walks block lengths.
      this.bufferedRecords++;
    }
    return id;
  }

  /** Writes what the buffer holds; true when it is empty afterwards. */
  flush(): boolean {
    return this.state === 'open' && this.drain();
  }

  /**
   * Flushes and closes. If the descriptor keeps refusing bytes past `closeTimeoutMs`, the
   * file is cut back to its last whole record. Safe to call more than once.
   */
  close(): void {
    if (this.state === 'closed') return;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.state === 'open') {
      // A hard failure inside the drain has already cut the file and stopped the writer.
      if (!this.drainBlocking() && this.state === 'open') this.cutToRecordBoundary();
      this.closeFd();
    }
    this.state = 'closed';
  }

  private drop(): false {
    this.stats.dropped++;
    return false;
  }

  /** Rotates if the record would overfill the file, then makes room in the buffer. */
  private makeRoom(len: number): boolean {
    if (this.rotateBytes !== undefined && this.fileRecords > 0 && this.fileBytes + len > this.rotateBytes) {
      if (!this.rotate()) return false;
    }
    if (this.buf.length - this.used >= len) return true;
    this.drain();
    return this.state === 'open' && this.buf.length - this.used >= len;
  }

  private rotate(): boolean {
    // A file is only closed once all its bytes are out; otherwise wait (and drop meanwhile).
    if (!this.drain()) return false;
    this.closeFd();
    this.fileIndex++;
    try {
      this.openFile();
    } catch (err) {
      this.fail(err);
    }
    return this.state === 'open';
  }

  /** Opens the next file and writes its headers at once, so it is readable from the start. */
  private openFile(): void {
    const file = rotatedPath(this.basePath, this.fileIndex);
    this.fd = this.io.open(file);
    this.openedPaths.push(file);
    this.stats.files++;
    this.fileWritten = 0;
    this.fileRecords = 0;
    this.used = this.writeHeaders(this.buf, 0);
    this.fileBytes = this.used;
    this.headerInBuffer = this.used;
    this.drain();
  }

  private writeHeaders(buf: Buffer, offset: number): number {
    if (this.format === 'pcap') return encodePcapGlobalHeader(this.pcapHeader, buf, offset);
    let at = offset + encodeShb(this.shb, buf, offset);
    for (const idb of this.idbs) at += encodeIdb(idb, buf, at);
    return at - offset;
  }

  private largestRecordLen(): number {
    if (this.format === 'pcap') return pcapRecordLen(this.snaplen);
    // The longest comment: one option header and value, on top of the EPB and opt_endofopt.
    return epbLen(this.snaplen) + 4 + pad4(MAX_OPTION_VALUE_LEN) + 4;
  }

  /**
   * Hands buf[head, used) to the descriptor. Returns true once the buffer is empty; false
   * if the descriptor would block (the rest stays buffered) or failed (the writer stops).
   */
  private drain(): boolean {
    while (this.head < this.used) {
      let n: number;
      try {
        n = this.io.write(this.fd, this.buf, this.head, this.used - this.head);
      } catch (err) {
        if (!wouldBlock(err)) this.fail(err);
        return false;
      }
      if (n <= 0) return false;
      this.head += n;
      this.fileWritten += n;
      this.stats.bytes += n;
    }
    this.head = 0;
    this.used = 0;
    this.bufferedRecords = 0;
    this.headerInBuffer = 0;
    return true;
  }

  /** drain(), retrying a descriptor that would block until closeTimeoutMs has passed. */
  private drainBlocking(): boolean {
    const deadline = Date.now() + this.closeTimeoutMs;
    while (!this.drain()) {
      if (this.state !== 'open' || Date.now() >= deadline) return false;
      sleepSync(CLOSE_RETRY_MS);
    }
    return true;
  }

  private fail(err: unknown): void {
    this.lastError = err instanceof Error ? err : new Error(String(err));
    this.cutToRecordBoundary();
    this.closeFd();
    this.state = 'failed';
  }

  /**
   * Drops what is still buffered and, if a record was half written, truncates the file
   * back to the end of the last whole one. Counts every lost record as dropped.
   */
  private cutToRecordBoundary(): void {
    const { keep, whole } = this.lastBoundary(this.head);
    // Interface blocks added mid-capture count as buffered blocks but are not records.
    const lost = Math.max(0, this.bufferedRecords - whole);
    this.stats.records -= lost;
    this.stats.dropped += lost;
    const partial = this.head - keep;
    if (partial > 0 && this.fd >= 0) {
      try {
        this.io.truncate(this.fd, this.fileWritten - partial);
        this.stats.bytes -= partial;
      } catch {
        // A pipe cannot be truncated; its reader sees the cut record end the stream.
      }
    }
    this.head = 0;
    this.used = 0;
    this.bufferedRecords = 0;
    this.headerInBuffer = 0;
  }

  /** The end of the last whole record in buf[0, limit), and how many records precede it. */
  private lastBoundary(limit: number): { keep: number; whole: number } {
    if (limit < this.headerInBuffer) return { keep: 0, whole: 0 };
    let at = this.headerInBuffer;
    let whole = 0;
    while (at < this.used) {
      // Both encoders put a length where this can find it: EPB total length at +4,
      // pcap captured length at +8 after a 16-byte header.
      const next = this.format === 'pcap' ? at + pcapRecordLen(this.buf.readUInt32LE(at + 8)) : at + this.buf.readUInt32LE(at + 4);
      if (next > limit) break;
      at = next;
      whole++;
    }
    return { keep: at, whole };
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    try {
      this.io.close(this.fd);
    } catch (err) {
      this.lastError ??= err instanceof Error ? err : new Error(String(err));
    }
    this.fd = -1;
  }
}

function validate(options: CaptureWriterOptions): void {
  const where = `capture ${options.path}`;
  if (options.format !== 'pcap' && options.format !== 'pcapng') throw new Error(`${where}: unknown format ${String(options.format)}`);
  if (options.interfaces.length === 0) throw new Error(`${where}: at least one interface is needed`);
  if (options.format === 'pcap' && options.interfaces.length > 1) {
    throw new Error(`${where}: classic pcap has no interface field; use pcapng for ${options.interfaces.length} interfaces`);
  }
  checkInt(where, 'snaplen', options.snaplen, 1, MAX_SNAPLEN);
  checkInt(where, 'rotateBytes', options.rotateBytes, 1, Number.MAX_SAFE_INTEGER);
  checkInt(where, 'bufferBytes', options.bufferBytes, 1, 2 ** 31 - 1);
  checkInt(where, 'flushIntervalMs', options.flushIntervalMs, 0, 2 ** 31 - 1);
  checkInt(where, 'closeTimeoutMs', options.closeTimeoutMs, 0, 2 ** 31 - 1);
}

function checkInt(where: string, name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${where}: ${name} ${value} is not an integer from ${min} to ${max}`);
  }
}

function wouldBlock(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR';
}

/** Blocks the thread for `ms`: close() runs from signal handlers and must finish in place. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface Closable {
  close(): void;
}

/**
 * On SIGINT or SIGTERM, closes every writer (so each file ends on a record boundary), then
 * lets the signal do what it would have done: with no other listener left, it is raised
 * again with the default action, and the process dies of it (shells report 128 + signal
 * number). If some other part of the program also listens, that part owns the shutdown
 * and this handler only closes the writers. `writers` is read when the signal comes, so a
 * Set may gain writers later. Returns a function that removes the handlers.
 */
export function installCloseOnSignals(
  writers: Iterable<Closable>,
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): () => void {
  const uninstall = (): void => {
    for (const signal of signals) process.removeListener(signal, handler);
  };
  function handler(signal: NodeJS.Signals): void {
    uninstall();
    for (const writer of writers) {
      try {
        writer.close();
      } catch {
        // One writer failing to close must not keep the others open.
      }
    }
    if (process.listenerCount(signal) > 0) return;
    process.kill(process.pid, signal);
    // Only reached if the default action did not end the process at once.
    process.exit(128 + (osConstants.signals[signal] ?? 0));
  }
  for (const signal of signals) process.on(signal, handler);
  return uninstall;
}
