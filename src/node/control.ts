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

  const send = async (message: object): Promise<void> => {
    if (socket.destroyed || !socket.writable) throw new ConnectionClosed();
    socket.write(line(message));
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
      const sink: ChunkSink<unknown> = { send: (chunk) => send({ id, chunk }) };
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
    onChunk: (chunk: Ops[Op]['chunk']) => void | Promise<void>,
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

type Answer = { kind: 'chunk'; chunk: unknown } | { kind: 'result'; result: unknown } | { kind: 'error'; error: string };

function parseAnswer(text: string): Answer | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as { ok?: unknown; result?: unknown; error?: unknown; chunk?: unknown };
  if (m.ok === true) return { kind: 'result', result: m.result };
  if (m.ok === false) return { kind: 'error', error: typeof m.error === 'string' ? m.error : 'error' };
  if ('chunk' in m) return { kind: 'chunk', chunk: m.chunk };
  return undefined;
}

function request<R, C>(path: string, op: string, args: object, onChunk: ((chunk: C) => void | Promise<void>) | undefined, timeoutMs: number): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const socket = createConnection(path);
    let buffered = '';
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
      timer = setTimeout(() => fail(new ControlError(`${path}: no answer to ${op} in ${timeoutMs} ms`)), timeoutMs);
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
        let nl: number;
        while (!settled && (nl = buffered.indexOf('\n')) >= 0) {
          const answer = parseAnswer(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          if (answer === undefined) return fail(new ControlError(`${path}: answer is not a control message`));
          if (answer.kind === 'result') return finish(answer.result);
          if (answer.kind === 'error') return fail(new ControlError(answer.error));
          if (onChunk === undefined) return fail(new ControlError(`${path}: ${op} does not stream, but a chunk came`));
          clearTimeout(timer);
          socket.pause();
          await onChunk(answer.chunk as C);
          socket.resume();
          arm();
        }
        if (ended && !settled) fail(new ControlError(`${path}: the node closed the connection before answering ${op}`));
      } catch (err) {
        // The consumer's own failure (its output closed, say), passed on as it is.
        fail(err instanceof Error ? err : new ControlError(String(err)));
      } finally {
        reading = false;
      }
    };
    arm();
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(line({ id: 1, op, args })));
    socket.on('error', (err) => fail(new ControlError(`${path}: ${err.message}`)));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      void read();
    });
    socket.on('close', () => {
      ended = true;
      void read();
    });
  });
}
