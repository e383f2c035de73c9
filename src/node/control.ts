/**
 * The node process's control socket: a Unix stream socket in the cluster's state directory
 * speaking newline-delimited JSON, as control-protocol.ts describes. This file is the wire
 * and its bounds; which ops exist, and their types, live in control-protocol.ts.
 *
 * Bounds, so that no client can make the node hold more than a fixed amount for it:
 * - At most `maxConnections` connections at once; one more is told so in an error answer
 *   and closed.
 * - At most `maxInFlight` requests of a connection are being answered at once. Past that
 *   the node stops reading the connection (the kernel's socket buffer then fills and the
 *   client's writes block) until answers have gone out.
 * - An answer or chunk counts as gone out when the socket has taken it without passing its
 *   high-water mark; otherwise only after 'drain'. A client that does not read its answers
 *   therefore stops its own requests from being read, and a streaming handler awaiting
 *   `send` stops producing.
 * - A request line longer than `maxLineBytes` gets an error answer and the connection ends.
 *
 * A bad line gets an error answer, never a crash of the node.
 *
 * A chunk's attached bytes (control-protocol.ts) follow its line as they are: the client
 * reads the node's answers as bytes, each scanned once for the newline that ends a line.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { promises as fs } from 'node:fs';
import { ControlArgsError, type ArgsValidators, type ChunkSink, type NodeOps, type OpTable } from './control-protocol.js';

export type ControlHandler<Spec extends OpTable[string]> = (args: Spec['args'], out: ChunkSink<Spec['chunk']>) => Spec['result'] | Promise<Spec['result']>;
export type ControlHandlers<Ops extends OpTable> = { readonly [Op in keyof Ops]: ControlHandler<Ops[Op]> };

export interface ControlLimits {
  readonly maxConnections: number;
  readonly maxInFlight: number;
  readonly maxLineBytes: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = { maxConnections: 16, maxInFlight: 4, maxLineBytes: 1 << 20 };

/** The peer went away while a handler was still sending: its work is for nobody. */
class ConnectionClosed extends Error {}

/** Serves `handlers` at `path`, each op's args checked by `validators` first. */
export async function serveControl<Ops extends OpTable>(
  path: string,
  validators: ArgsValidators<Ops>,
  handlers: ControlHandlers<Ops>,
  limits: Partial<ControlLimits> = {},
): Promise<Server> {
  const bounds = { ...DEFAULT_CONTROL_LIMITS, ...limits };
  await fs.rm(path, { force: true });
  let open = 0;
  // Half-open: a client may end its side after the last request and still read the answers.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    if (open >= bounds.maxConnections) {
      socket.end(line({ id: null, ok: false, error: `too many control connections (at most ${bounds.maxConnections}); try again when one has closed` }));
      socket.resume();
      return;
    }
    open++;
    socket.once('close', () => open--);
    serveConnection(socket, validators, handlers, bounds);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await fs.chmod(path, 0o600);
  return server;
}

function line(message: object): string {
  return `${JSON.stringify(message)}\n`;
}

function serveConnection<Ops extends OpTable>(socket: Socket, validators: ArgsValidators<Ops>, handlers: ControlHandlers<Ops>, limits: ControlLimits): void {
  let buffered = '';
  let inFlight = 0;
  let inputEnded = false;
  let drain: Promise<void> | undefined;
  socket.setEncoding('utf8');

  /** Resolves when the socket has room again (now, when it has). */
  const room = (): Promise<void> => {
    if (!socket.writableNeedDrain || socket.destroyed) return Promise.resolve();
    drain ??= new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        drain = undefined;
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
    return drain;
  };

  const send = async (message: object, attached?: Uint8Array): Promise<void> => {
    if (socket.destroyed || !socket.writable) throw new ConnectionClosed();
    socket.write(line(message));
    // The sender may reuse the attached bytes once this resolves: wait until the socket
    // has written them, not only until it has room.
    if (attached !== undefined && attached.length > 0) await new Promise<void>((resolve) => socket.write(attached, () => resolve()));
    await room();
    if (socket.destroyed) throw new ConnectionClosed();
  };

  const handle = async (text: string): Promise<void> => {
    let answer: object;
    let id: unknown = null;
    try {
      const request = parseRequest(text);
      id = request.id;
      const op = request.op;
      if (!Object.hasOwn(handlers, op) || !Object.hasOwn(validators, op)) throw new ControlArgsError(`unknown op ${JSON.stringify(op)}`);
      const args = validators[op](request.args);
      const sink: ChunkSink<unknown> = {
        send: (chunk, attached) => send(attached !== undefined && attached.length > 0 ? { id, chunk, attached: attached.length } : { id, chunk }, attached),
      };
      answer = { id, ok: true, result: await handlers[op](args, sink) };
    } catch (err) {
      if (err instanceof ConnectionClosed) return;
      answer = { id, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    await send(answer).catch(() => undefined);
  };

  /** Starts what the bounds allow of the buffered requests, and reads on only while under them. */
  const pump = (): void => {
    let nl: number;
    while (inFlight < limits.maxInFlight && (nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (text.trim() === '') continue;
      inFlight++;
      void handle(text).finally(() => {
        inFlight--;
        pump();
      });
    }
    if (buffered.indexOf('\n') < 0 && buffered.length > limits.maxLineBytes) {
      buffered = '';
      socket.pause();
      socket.end(line({ id: null, ok: false, error: `request longer than ${limits.maxLineBytes} bytes` }));
      return;
    }
    if (inputEnded) {
      // A last request without its newline still counts.
      if (inFlight < limits.maxInFlight && buffered.trim() !== '') {
        buffered += '\n';
        pump();
        return;
      }
      if (inFlight === 0 && !socket.writableEnded) socket.end();
      return;
    }
    if (inFlight >= limits.maxInFlight) socket.pause();
    else socket.resume();
  };

  socket.on('data', (chunk: string) => {
    buffered += chunk;
    pump();
  });
  socket.on('end', () => {
    inputEnded = true;
    pump();
  });
}

/** A request line as far as the wire goes: JSON with an id and an op; `args` is the op's to judge. */
function parseRequest(text: string): { id: string | number | null; op: string; args: unknown } {
  let request: unknown;
  try {
    request = JSON.parse(text);
  } catch {
    throw new ControlArgsError('request is not JSON');
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new ControlArgsError('request is not a JSON object');
  const { id = null, op, args } = request as { id?: unknown; op?: unknown; args?: unknown };
  if (id !== null && typeof id !== 'number' && typeof id !== 'string') throw new ControlArgsError('request id must be a number or a string');
  if (typeof op !== 'string') throw new ControlArgsError(`unknown op ${JSON.stringify(op) ?? 'undefined'}`);
  return { id, op, args };
}

export class ControlError extends Error {}

/** The node could not be asked: no socket, no answer in time, or the connection lost; not an answer of the node's. */
export class ControlUnreachable extends ControlError {}

export interface ControlClient<Ops extends OpTable> {
  /** One request; rejects on timeout, refusal or an error answer. */
  call<Op extends keyof Ops & string>(path: string, op: Op, args: Ops[Op]['args'], timeoutMs?: number): Promise<Ops[Op]['result']>;
  /**
   * One request to a streaming op: `onChunk` gets each chunk as it arrives, and the node is
   * not read from while the promise it returns is pending (backpressure reaches the node).
   * `idleTimeoutMs` bounds the wait for each next message, not the whole answer.
   */
  stream<Op extends keyof Ops & string>(
    path: string,
    op: Op,
    args: Ops[Op]['args'],
    onChunk: (chunk: Ops[Op]['chunk'], attached?: Buffer) => void | Promise<void>,
    idleTimeoutMs?: number,
  ): Promise<Ops[Op]['result']>;
}

/** A client typed by an op table: `controlClient<NodeOps>()` is the CLI's. */
export function controlClient<Ops extends OpTable>(): ControlClient<Ops> {
  return {
    call: (path, op, args, timeoutMs = 3000) => request(path, op, args, undefined, timeoutMs),
    stream: (path, op, args, onChunk, idleTimeoutMs = 10_000) => request(path, op, args, onChunk, idleTimeoutMs),
  };
}

const nodeClient = controlClient<NodeOps>();
/** One request to a node (NodeOps); the result is typed by the op. */
export const callControl = nodeClient.call;
/** One request to a streaming op of a node (NodeOps). */
export const streamControl = nodeClient.stream;

type Answer = { kind: 'chunk'; chunk: unknown; attached: number } | { kind: 'result'; result: unknown } | { kind: 'error'; error: string };

/** The most raw bytes a chunk may say it carries; a node's capture buffer holds far less. */
export const MAX_ATTACHED_BYTES = 256 << 20;

function parseAnswer(text: string): Answer | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as { ok?: unknown; result?: unknown; error?: unknown; chunk?: unknown; attached?: unknown };
  if (m.ok === true) return { kind: 'result', result: m.result };
  if (m.ok === false) return { kind: 'error', error: typeof m.error === 'string' ? m.error : 'error' };
  if (!('chunk' in m)) return undefined;
  const attached = 'attached' in m ? m.attached : 0;
  if (typeof attached !== 'number' || !Number.isInteger(attached) || attached < 0 || attached > MAX_ATTACHED_BYTES) return undefined;
  return { kind: 'chunk', chunk: m.chunk, attached };
}

/** A node's answer, with the bytes its chunk carried. */
export interface ReadAnswer {
  readonly answer: Answer;
  readonly attached?: Buffer;
}

/**
 * The node's answers as they come off the socket: JSON lines, where a chunk line that
 * says `"attached":N` is followed by N raw bytes. The bytes wait in one buffer that grows
 * as a message needs, and each is scanned for a newline once.
 */
export class AnswerReader {
  private buf = Buffer.alloc(64 * 1024);
  private start = 0;
  private end = 0;
  /** Where the search for the next newline goes on: the bytes before it hold none. */
  private scanned = 0;
  /** A chunk's line whose attached bytes have not all come yet. */
  private waiting: Answer | undefined;

  push(data: Buffer): void {
    if (this.end + data.length > this.buf.length) {
      const live = this.end - this.start;
      const target = live + data.length <= this.buf.length ? this.buf : Buffer.alloc(Math.max(2 * this.buf.length, live + data.length));
      this.buf.copy(target, 0, this.start, this.end);
      this.buf = target;
      this.scanned -= this.start;
      this.end = live;
      this.start = 0;
    }
    data.copy(this.buf, this.end);
    this.end += data.length;
  }

  /** The next whole message; undefined until one is whole. Throws ControlError on a line that is no answer. */
  next(): ReadAnswer | undefined {
    if (this.waiting === undefined) {
      const nl = this.buf.subarray(0, this.end).indexOf(10, this.scanned);
      if (nl < 0) {
        this.scanned = this.end;
        return undefined;
      }
      const answer = parseAnswer(this.buf.toString('utf8', this.start, nl));
      this.start = this.scanned = nl + 1;
      if (answer === undefined) throw new ControlError('answer is not a control message');
      if (answer.kind !== 'chunk' || answer.attached === 0) return { answer };
      this.waiting = answer;
    }
    const answer = this.waiting;
    const need = answer.kind === 'chunk' ? answer.attached : 0;
    if (this.end - this.start < need) return undefined;
    const attached = Buffer.from(this.buf.subarray(this.start, this.start + need));
    this.start = this.scanned = this.start + need;
    this.waiting = undefined;
    return { answer, attached };
  }
}

function request<R, C>(path: string, op: string, args: object, onChunk: ((chunk: C, attached?: Buffer) => void | Promise<void>) | undefined, timeoutMs: number): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const socket = createConnection(path);
    const reader = new AnswerReader();
    let settled = false;
    let ended = false;
    let reading = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(new ControlUnreachable(`${path}: no answer to ${op} in ${timeoutMs} ms`)), timeoutMs);
    };
    // The node's answers are the node's own JSON: the result is trusted to have the op's type.
    const finish = (result: unknown) => {
      settled = true;
      clearTimeout(timer);
      socket.end();
      resolve(result as R);
    };
    /** Takes the buffered messages in order, awaiting each chunk's consumer with the socket paused. */
    const read = async () => {
      if (reading) return;
      reading = true;
      try {
        let message: ReadAnswer | undefined;
        while (!settled) {
          try {
            message = reader.next();
          } catch (err) {
            return fail(new ControlError(`${path}: ${(err as Error).message}`));
          }
          if (message === undefined) break;
          const { answer, attached } = message;
          if (answer.kind === 'result') return finish(answer.result);
          if (answer.kind === 'error') return fail(new ControlError(answer.error));
          if (onChunk === undefined) return fail(new ControlError(`${path}: ${op} does not stream, but a chunk came`));
          clearTimeout(timer);
          socket.pause();
          await onChunk(answer.chunk as C, attached);
          socket.resume();
          arm();
        }
        if (ended && !settled) fail(new ControlUnreachable(`${path}: the node closed the connection before answering ${op}`));
      } catch (err) {
        // The consumer's own failure (its output closed, say), passed on as it is.
        fail(err instanceof Error ? err : new ControlError(String(err)));
      } finally {
        reading = false;
      }
    };
    arm();
    socket.on('connect', () => socket.write(line({ id: 1, op, args })));
    socket.on('error', (err) => fail(new ControlUnreachable(`${path}: ${err.message}`)));
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      void read();
    });
    socket.on('close', () => {
      ended = true;
      void read();
    });
  });
}
