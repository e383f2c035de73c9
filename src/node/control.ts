/**
 * The node process's control socket: a Unix stream socket in the cluster's state directory
 * speaking newline-delimited JSON, one request and one response per line.
 *
 *   -> {"id":1,"op":"status"}
 *   <- {"id":1,"ok":true,"result":{...}}
 *
 * `podwire status` asks it now; rules, conntrack and trace will ask it later. A bad line gets
 * an error response, never a crash of the node.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { promises as fs } from 'node:fs';

export type Handler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

const MAX_LINE = 1 << 20;

export async function serveControl(path: string, handlers: Record<string, Handler>): Promise<Server> {
  await fs.rm(path, { force: true });
  const server = createServer((socket) => serveConnection(socket, handlers));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await fs.chmod(path, 0o600);
  return server;
}

function serveConnection(socket: Socket, handlers: Record<string, Handler>): void {
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    pending += chunk;
    if (pending.length > MAX_LINE) {
      socket.end(`${JSON.stringify({ id: null, ok: false, error: 'request too long' })}\n`);
      return;
    }
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      void answer(line, handlers).then((response) => {
        if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
      });
    }
  });
}

async function answer(line: string, handlers: Record<string, Handler>): Promise<object> {
  let request: { id?: unknown; op?: unknown; args?: unknown };
  try {
    request = JSON.parse(line) as typeof request;
  } catch {
    return { id: null, ok: false, error: 'request is not JSON' };
  }
  const id = request.id ?? null;
  const handler = typeof request.op === 'string' && Object.hasOwn(handlers, request.op) ? handlers[request.op] : undefined;
  if (handler === undefined) return { id, ok: false, error: `unknown op ${JSON.stringify(request.op)}` };
  try {
    const args = typeof request.args === 'object' && request.args !== null ? (request.args as Record<string, unknown>) : {};
    return { id, ok: true, result: await handler(args) };
  } catch (err) {
    return { id, ok: false, error: (err as Error).message };
  }
}

export class ControlError extends Error {}

/** One request to a node's control socket; rejects on timeout, refusal or an error answer. */
export async function callControl(path: string, op: string, args: Record<string, unknown> = {}, timeoutMs = 3000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let pending = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ControlError(`${path}: no answer to ${op} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ id: 1, op, args })}\n`));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new ControlError(`${path}: ${err.message}`));
    });
    socket.on('data', (chunk: string) => {
      pending += chunk;
      const nl = pending.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        const response = JSON.parse(pending.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string };
        if (response.ok) resolve(response.result);
        else reject(new ControlError(response.error ?? 'error'));
      } catch {
        reject(new ControlError(`${path}: answer is not JSON`));
      }
    });
  });
}
