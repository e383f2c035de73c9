/**
 * One client connection of the ingress proxy, carried by hand over its socket: each request
 * head parsed once (src/ingress/http1.ts), routed, written to the backend with the fields
 * ingress-nginx sets, and the body passed on byte for byte as it arrives, framed as the
 * client framed it; the answer comes back the same way. No http.Server, ClientRequest or
 * Agent in between: those cost the proxy four fifths of its time per request, most of it
 * objects and events for fields it then copies anyway.
 *
 * Upstream connections belong to the client connection they were opened for (HAProxy's
 * `http-reuse never`): kept alive as long as it is, never shared with another client. Each
 * new client connection so makes a new connection to the ClusterIP, which kube-proxy's rules
 * send to a random endpoint: load is spread per connection, as a Service spreads it (what
 * ingress-nginx's service-upstream mode gives), not by a balancer of the proxy's own. A new
 * configuration retires them at the client's next request, so a client that stays
 * connected while a backend scales is placed again among the endpoints there are now.
 *
 * Requests on a connection are taken one at a time: bytes of a pipelined next request wait,
 * with the socket paused, until the answer before it is whole.
 */
import { connect, type Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import { randomFillSync } from 'node:crypto';
import { Body, ChunkedScanner, HttpError, parseRequestHead, parseResponseHead, skipEmptyLines, type RequestHead, type ResponseHead } from '../../ingress/http1.js';

/** The Server field of every answer: nginx puts its own in place of the backend's. */
export const SERVER = 'podwire-ingress';
/** nginx's keepalive_timeout: an idle client connection is closed after it. */
const KEEPALIVE_MS = 75_000;
/** Node's headersTimeout: a request head must be whole within it. */
const HEADERS_MS = 60_000;

export interface ProxyCounters {
  upstreamErrors: number;
  badRequests: number;
}

/** Where a request goes, decided by the proxy's lookup from its Host, path and scheme. */
export type Decision =
  /** An answer of the proxy's own: the default backend, a redirect to HTTPS, a Service without endpoints. */
  | { readonly answer: number; readonly body: string; readonly location?: string }
  | {
      readonly answer?: undefined;
      /** `namespace/name`, for the 502 and 504 bodies. */
      readonly service: string;
      readonly address: string;
      readonly port: number;
      /** The path and query to ask the backend for: the request's, or its rewrite. */
      readonly path: string;
      readonly connectTimeoutMs: number;
      readonly readTimeoutMs: number;
    };

type Forward = Extract<Decision, { answer?: undefined }>;

export interface Routing {
  decide(host: string | undefined, path: string, secure: boolean): Decision;
  /** Counts configurations taken: an upstream connection of an older one is not reused. */
  readonly generation: number;
  readonly counters: ProxyCounters;
}

/** Request fields not passed on (RFC 9110's hop-by-hop ones, and Expect: the proxy answers 100 itself). */
const REQUEST_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect']);
/** Fields the proxy sets: a client's own are replaced (X-Request-ID is kept, below). */
const SET_BY_PROXY = new Set(['x-request-id', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-forwarded-scheme', 'x-scheme']);
/** Response fields not passed on; Transfer-Encoding and Content-Length are, with the body framed as they say. */
const RESPONSE_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'server', 'proxy-authenticate']);
/**
 * Names a Connection option may not remove: the body is passed on as these frame it, and
 * dropping them would make it the start of the next message (a smuggling trick).
 */
const FRAMING = new Set(['host', 'content-length', 'transfer-encoding']);

const NOTHING = Buffer.alloc(0);

const enum Phase {
  /** Reading a request head. */
  Head,
  /** Passing the request's body on. */
  Body,
  /** The request is whole; its answer is not. */
  Answer,
  /** An Upgrade: the two connections spliced, or waiting for the 101 that splices them. */
  Tunnel,
  /** Answered and closing: nothing more is read. */
  Closing,
}

/** A connection to a backend, and the response on it being read. */
interface Upstream {
  readonly socket: Socket;
  readonly key: string;
  readonly generation: number;
  /** Requests answered on it before: a reused connection the backend closed may be retried. */
  answered: number;
  /** Bytes of a response head not yet whole. */
  pending: Buffer | undefined;
  /** Response bytes seen for the current request, head included: a retry is only safe with none. */
  received: number;
  error: NodeJS.ErrnoException | undefined;
  connectTimer: NodeJS.Timeout | undefined;
}

export class ProxyConnection {
  private phase = Phase.Head;
  /** Client bytes not yet taken: a head still incomplete, or a pipelined request waiting its turn. */
  private held: Buffer | undefined;
  private headStartedAt = 0;
  private request: RequestHead | undefined;
  private forward: Forward | undefined;
  private upstreamHead = '';
  private requestLeft = 0;
  private readonly requestChunks = new ChunkedScanner();
  private requestDone = false;
  /** The current exchange's backend connection. */
  private upstream: Upstream | undefined;
  /** Idle backend connections of this client, by address and port. */
  private readonly idle = new Map<string, Upstream>();
  private retried = false;
  private response: ResponseHead | undefined;
  private responseLeft = 0;
  private readonly responseChunks = new ChunkedScanner();
  /** The answer says `connection: close`: the client connection ends after it. */
  private closeAfter = false;
  private clientEnded = false;
  private closed = false;
  /** Inside readRequest's loop. */
  private reading = false;

  constructor(
    private readonly client: Socket,
    private readonly secure: boolean,
    private readonly routing: Routing,
  ) {
    client.setNoDelay(true);
    client.setTimeout(KEEPALIVE_MS);
    client.on('data', this.onClientData);
    client.on('end', this.onClientEnd);
    client.on('timeout', this.onClientTimeout);
    client.on('error', () => undefined); // 'close' follows
    client.on('close', this.onClientClose);
  }

  /** Ends the connection and its backend connections at once. */
  destroy(): void {
    this.client.destroy();
  }

  private readonly onClientData = (chunk: Buffer): void => {
    if (this.phase === Phase.Body) {
      this.passRequestBody(chunk, 0);
      return;
    }
    if (this.phase === Phase.Tunnel) {
      if (this.upstream !== undefined) relay(this.client, this.upstream.socket, chunk);
      return;
    }
    if (this.phase === Phase.Closing) return;
    this.held = this.held === undefined ? chunk : Buffer.concat([this.held, chunk]);
    if (this.phase === Phase.Head) this.readRequest();
    else this.client.pause(); // a pipelined request: after this answer
  };

  /**
   * Takes the held bytes' requests while their heads are whole and the proxy answers them
   * itself; stops at one that goes to a backend. A loop, not recursion: a client may
   * pipeline thousands of requests in one read.
   */
  private readRequest(): void {
    if (this.reading) return;
    this.reading = true;
    try {
      while (this.phase === Phase.Head && this.held !== undefined && this.takeRequest());
    } finally {
      this.reading = false;
    }
  }

  /** One request from the held bytes; false when its head is not whole yet. */
  private takeRequest(): boolean {
    const buf = this.held!;
    const start = skipEmptyLines(buf, 0, buf.length);
    if (start === buf.length) {
      this.held = undefined;
      return false;
    }
    if (this.headStartedAt === 0) this.headStartedAt = Date.now();
    const head = parseRequestHead(buf, start, buf.length);
    if (head === undefined) {
      if (Date.now() - this.headStartedAt > HEADERS_MS) this.refuse(new HttpError(408, `the request head was not whole within ${HEADERS_MS} ms`));
      return false;
    }
    if (head instanceof HttpError) {
      this.refuse(head);
      return false;
    }
    this.headStartedAt = 0;
    this.held = undefined;
    this.begin(head, buf, start + head.headBytes);
    return true;
  }

  /** A request's head is read; `buf` from `bodyAt` holds what came after it. */
  private begin(head: RequestHead, buf: Buffer, bodyAt: number): void {
    this.request = head;
    this.requestDone = head.body === Body.None || (head.body === Body.Length && head.length === 0);
    this.requestLeft = head.length;
    this.requestChunks.reset();
    this.response = undefined;
    this.retried = false;
    const target = requestTarget(head.target, head.host);
    if (target === undefined) return this.refuse(new HttpError(400, `a request target that is neither a path nor an absolute http URL: ${JSON.stringify(head.target.slice(0, 60))}`));
    const decision = this.routing.decide(target.host, target.path, this.secure);
    if (decision.answer !== undefined) {
      // A body the proxy does not want is not read: the connection closes after the answer.
      const closing = !head.keepAlive || !this.requestDone || head.upgrade !== undefined || this.clientEnded;
      this.answer(decision.answer, decision.body, decision.location, closing);
      if (closing) this.close();
      else this.next(buf, bodyAt);
      return;
    }
    this.forward = decision;
    if (head.upgrade !== undefined) return this.tunnel(head, decision, buf, bodyAt);
    this.upstreamHead = upstreamHead(head, decision.path, this.client, this.secure, undefined);
    const upstream = this.upstreamFor(decision);
    if (head.expectContinue && !this.requestDone) this.client.write('HTTP/1.1 100 Continue\r\n\r\n');
    this.phase = this.requestDone ? Phase.Answer : Phase.Body;
    upstream.socket.cork();
    upstream.socket.write(this.upstreamHead, 'latin1');
    if (!this.requestDone) this.passRequestBody(buf, bodyAt);
    else this.hold(buf, bodyAt);
    upstream.socket.uncork();
  }

  /** Bytes after the current request: the next one's, taken when this one is answered. */
  private hold(buf: Buffer, from: number): void {
    if (from >= buf.length) return;
    this.held = this.held === undefined ? buf.subarray(from) : Buffer.concat([buf.subarray(from), this.held]);
    if (this.phase !== Phase.Head) this.client.pause();
  }

  /** The next request on the connection, from bytes already here and those to come. */
  private next(buf: Buffer, from: number): void {
    this.phase = Phase.Head;
    this.request = undefined;
    this.forward = undefined;
    this.hold(buf, from);
    if (this.clientEnded && this.held === undefined) return this.close();
    this.client.resume();
    this.readRequest();
  }

  /** Passes request body bytes on, as far as the body goes; what follows it is held. */
  private passRequestBody(buf: Buffer, from: number): void {
    const sink = this.upstream?.socket;
    let end: number;
    if (this.request!.body === Body.Length) {
      end = Math.min(buf.length, from + this.requestLeft);
      this.requestLeft -= end - from;
      if (this.requestLeft === 0) this.requestDone = true;
    } else {
      const found = this.requestChunks.scan(buf, from, buf.length);
      if (found === -2) return this.badRequestBody(this.requestChunks.error);
      end = found === -1 ? buf.length : found;
      if (found >= 0) this.requestDone = true;
    }
    if (end > from && sink !== undefined && !sink.write(end === buf.length && from === 0 ? buf : buf.subarray(from, end))) {
      // The backend reads slower than the client sends: stop reading the client until it catches up.
      this.client.pause();
      sink.once('drain', () => {
        if (this.phase === Phase.Body) this.client.resume();
      });
    }
    if (!this.requestDone) return;
    this.hold(buf, end);
    if (this.phase === Phase.Body) this.phase = Phase.Answer;
  }

  private badRequestBody(why: string): void {
    this.routing.counters.badRequests++;
    this.dropUpstream();
    if (this.response === undefined) this.refuse(new HttpError(400, why));
    else this.client.destroy();
  }

  /** A backend connection for this exchange: this client's idle one to the same address, else a new one. */
  private upstreamFor(to: Forward): Upstream {
    const key = `${to.address}:${to.port}`;
    const generation = this.routing.generation;
    for (const [k, old] of this.idle) {
      if (old.generation !== generation) {
        this.idle.delete(k);
        old.socket.destroy();
      }
    }
    let upstream = this.idle.get(key);
    if (upstream !== undefined) this.idle.delete(key);
    else upstream = this.open(to, key, generation);
    upstream.received = 0;
    upstream.pending = undefined;
    this.upstream = upstream;
    if (!upstream.socket.connecting) upstream.socket.setTimeout(to.readTimeoutMs);
    return upstream;
  }

  private open(to: Forward, key: string, generation: number): Upstream {
    const socket = connect({ host: to.address, port: to.port, noDelay: true });
    const upstream: Upstream = { socket, key, generation, answered: 0, pending: undefined, received: 0, error: undefined, connectTimer: undefined };
    upstream.connectTimer = setTimeout(() => {
      if (this.upstream === upstream) this.upstreamFailed(504, `did not accept the connection within ${to.connectTimeoutMs} ms`);
      else socket.destroy();
    }, to.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(upstream.connectTimer);
      if (this.upstream === upstream && this.forward !== undefined) socket.setTimeout(this.forward.readTimeoutMs);
    });
    socket.on('data', (chunk: Buffer) => this.onUpstreamData(upstream, chunk));
    socket.on('timeout', () => this.onUpstreamTimeout(upstream));
    socket.on('error', (err: NodeJS.ErrnoException) => (upstream.error = err));
    socket.on('close', () => this.onUpstreamClose(upstream));
    return upstream;
  }

  private onUpstreamData(upstream: Upstream, chunk: Buffer): void {
    if (upstream !== this.upstream) {
      upstream.socket.destroy(); // an idle connection has nothing to say
      return;
    }
    upstream.received += chunk.length;
    if (this.phase === Phase.Tunnel && this.response !== undefined && this.response.status === 101) {
      relay(upstream.socket, this.client, chunk);
      return;
    }
    if (this.response !== undefined) {
      this.passResponseBody(upstream, chunk, 0);
      return;
    }
    let buf = upstream.pending === undefined ? chunk : Buffer.concat([upstream.pending, chunk]);
    upstream.pending = undefined;
    const method = this.request!.method;
    for (;;) {
      const head = parseResponseHead(buf, 0, buf.length, method);
      if (head === undefined) {
        upstream.pending = buf;
        return;
      }
      if (head instanceof HttpError) return this.upstreamFailed(502, head.why);
      // 1xx but 101: interim (100 Continue, 103 Early Hints), dropped as nginx drops them.
      if (head.status < 200 && head.status !== 101) {
        buf = buf.subarray(head.headBytes);
        if (buf.length === 0) return;
        continue;
      }
      this.respond(upstream, head, buf, head.headBytes);
      return;
    }
  }

  /** The backend's answer has its head: it goes to the client with its body's first bytes. */
  private respond(upstream: Upstream, head: ResponseHead, buf: Buffer, bodyAt: number): void {
    const request = this.request!;
    if (head.body === Body.Chunked && request.minor === 0) return this.upstreamFailed(502, 'sent a chunked answer to an HTTP/1.0 request');
    this.response = head;
    this.responseLeft = head.body === Body.Length ? head.length : 0;
    this.responseChunks.reset();
    if (this.phase === Phase.Tunnel) {
      if (head.status === 101) {
        upstream.socket.setTimeout(0);
        this.client.setTimeout(0);
        this.client.cork();
        this.client.write(responseHead(head, 'upgrade'), 'latin1');
        if (bodyAt < buf.length) this.client.write(buf.subarray(bodyAt));
        this.client.uncork();
        return;
      }
      this.closeAfter = true; // refused: answered, then the connection ends
    } else {
      this.closeAfter = !request.keepAlive || !this.requestDone || head.body === Body.UntilClose || this.clientEnded;
    }
    this.client.cork();
    this.client.write(responseHead(head, this.closeAfter ? 'close' : 'keep-alive'), 'latin1');
    this.passResponseBody(upstream, buf, bodyAt);
    this.client.uncork();
  }

  private passResponseBody(upstream: Upstream, buf: Buffer, from: number): void {
    const head = this.response!;
    let end = buf.length;
    let done = false;
    switch (head.body) {
      case Body.None:
        end = from;
        done = true;
        break;
      case Body.Length:
        end = Math.min(buf.length, from + this.responseLeft);
        this.responseLeft -= end - from;
        done = this.responseLeft === 0;
        break;
      case Body.Chunked: {
        const found = this.responseChunks.scan(buf, from, buf.length);
        if (found === -2) {
          this.routing.counters.upstreamErrors++;
          this.client.destroy(); // the head is out: a broken body can only end the connection
          return;
        }
        if (found >= 0) {
          end = found;
          done = true;
        }
        break;
      }
      case Body.UntilClose:
        break;
    }
    if (end > from && !this.client.write(end === buf.length && from === 0 ? buf : buf.subarray(from, end))) {
      upstream.socket.pause();
      this.client.once('drain', () => upstream.socket.resume());
    }
    if (!done) return;
    const reusable = head.keepAlive && end === buf.length && upstream.generation === this.routing.generation && this.request!.minor === 1 && this.phase !== Phase.Tunnel;
    this.upstream = undefined;
    upstream.socket.setTimeout(0);
    if (reusable && this.requestDone) {
      upstream.answered++;
      this.idle.set(upstream.key, upstream);
    } else upstream.socket.destroy();
    // Answered before the request was whole (the head said close): what is left of it is not read.
    if (this.requestDone) this.answered();
    else this.close();
  }

  /** Request and answer are both whole. */
  private answered(): void {
    if (this.closeAfter) return this.close();
    this.next(NOTHING, 0);
  }

  private onUpstreamTimeout(upstream: Upstream): void {
    if (upstream !== this.upstream) return;
    if (this.response === undefined) this.upstreamFailed(504, `sent nothing for ${this.forward!.readTimeoutMs} ms`);
    else {
      this.routing.counters.upstreamErrors++;
      this.client.destroy(); // silent in the middle of an answer
    }
  }

  private onUpstreamClose(upstream: Upstream): void {
    clearTimeout(upstream.connectTimer);
    if (this.idle.get(upstream.key) === upstream) this.idle.delete(upstream.key);
    if (upstream !== this.upstream || this.closed) return;
    const response = this.response;
    if (response === undefined) {
      const request = this.request!;
      const err = upstream.error;
      // A kept-alive connection the backend closed just as it was reused: nginx tries again (proxy_next_upstream error).
      const bodyless = request.body === Body.None && (request.method === 'GET' || request.method === 'HEAD');
      if (upstream.answered > 0 && upstream.received === 0 && bodyless && !this.retried && (err === undefined || err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        this.retried = true;
        this.upstream = undefined;
        const fresh = this.upstreamFor(this.forward!);
        fresh.socket.write(this.upstreamHead, 'latin1');
        return;
      }
      return this.upstreamFailed(502, err !== undefined ? connectFailure(err) : 'closed the connection before answering');
    }
    if (this.phase === Phase.Tunnel && response.status === 101) return this.close();
    this.upstream = undefined;
    if (response.body === Body.UntilClose) {
      this.closeAfter = true;
      if (this.requestDone) this.answered();
      else this.close();
      return;
    }
    // Closed before the answer it announced was whole: the client can only tell by the close.
    this.routing.counters.upstreamErrors++;
    this.client.destroy();
  }

  /** The backend failed before answering: a 502 or 504 of the proxy's own, with which Service and why. */
  private upstreamFailed(status: 502 | 504, why: string): void {
    this.routing.counters.upstreamErrors++;
    this.dropUpstream();
    if (this.response !== undefined && this.phase !== Phase.Tunnel) {
      this.client.destroy();
      return;
    }
    const to = this.forward!;
    const body = `${status === 502 ? '502 Bad Gateway' : '504 Gateway Timeout'}: ${to.service} at ${to.address}:${to.port} ${why}\n`;
    const closing = !this.request!.keepAlive || !this.requestDone || this.phase === Phase.Tunnel || this.clientEnded;
    this.response = undefined;
    this.answer(status, body, undefined, closing);
    if (closing) this.close();
    else this.next(NOTHING, 0);
  }

  private dropUpstream(): void {
    const upstream = this.upstream;
    this.upstream = undefined;
    if (upstream !== undefined) {
      clearTimeout(upstream.connectTimer);
      upstream.socket.destroy();
    }
  }

  /**
   * An Upgrade request (WebSocket): routed as any request, written to a connection of its
   * own with the Upgrade fields passed on (nginx's proxy_http_version 1.1 with Upgrade and
   * Connection set), and once the backend answers 101 the two connections are spliced.
   */
  private tunnel(head: RequestHead, to: Forward, buf: Buffer, rest: number): void {
    this.phase = Phase.Tunnel;
    this.requestDone = true;
    this.upstreamHead = upstreamHead(head, to.path, this.client, this.secure, head.upgrade);
    const upstream = this.open(to, `${to.address}:${to.port}`, this.routing.generation);
    this.upstream = upstream;
    upstream.socket.cork();
    upstream.socket.write(this.upstreamHead, 'latin1');
    if (rest < buf.length) upstream.socket.write(buf.subarray(rest));
    upstream.socket.uncork();
  }

  /** An answer of the proxy's own; a HEAD request gets its head only. */
  private answer(status: number, body: string, location: string | undefined, closing: boolean): void {
    const head = this.request?.method === 'HEAD';
    const flowing = this.client.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nserver: ${SERVER}\r\ndate: ${httpDate()}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `${location !== undefined ? `location: ${location}\r\n` : ''}connection: ${closing ? 'close' : 'keep-alive'}\r\n\r\n${head ? '' : body}`,
    );
    // Pipelined requests from a client that does not read its answers: no more until it does.
    if (!flowing && !closing) {
      this.client.pause();
      this.client.once('drain', () => {
        if (this.phase === Phase.Head) this.client.resume();
      });
    }
  }

  /** A request the proxy cannot take: answered with why, and the connection closed (what follows cannot be framed). */
  private refuse(error: HttpError): void {
    this.routing.counters.badRequests++;
    this.request = undefined;
    this.answer(error.status, `${error.status} ${STATUS_CODES[error.status] ?? ''}: ${error.why}\n`, undefined, true);
    this.close();
  }

  /** Ends the client connection once what is written has gone; nothing more is read. */
  private close(): void {
    this.phase = Phase.Closing;
    this.held = undefined;
    this.dropUpstream();
    this.client.resume(); // read and discard, so the peer's last bytes do not turn the close into a reset
    this.client.end();
  }

  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    // Half-closed after its request: answered first, then closed (allowHalfOpen).
    if (this.phase === Phase.Head && this.held !== undefined) this.readRequest();
    if (this.phase === Phase.Head) this.close(); // nothing, or a head that can no longer be whole
    else if (this.phase === Phase.Body) this.badRequestBody('the client closed its side before the body was whole');
    else if (this.phase === Phase.Tunnel && this.response?.status === 101) this.upstream?.socket.end();
  };

  private readonly onClientTimeout = (): void => {
    // Waiting for a backend is the read timeout's to judge; any other silence ends the connection.
    if (this.phase === Phase.Answer) return;
    if (this.phase === Phase.Head && this.held !== undefined) this.refuse(new HttpError(408, `nothing more of the request head for ${KEEPALIVE_MS} ms`));
    else this.client.destroy();
  };

  private readonly onClientClose = (): void => {
    this.closed = true;
    this.dropUpstream();
    for (const upstream of this.idle.values()) upstream.socket.destroy();
    this.idle.clear();
  };
}

/** One side of a tunnel to the other, the sender paused while the receiver's buffer is full. */
function relay(from: Socket, to: Socket, chunk: Buffer): void {
  if (to.write(chunk)) return;
  from.pause();
  to.once('drain', () => from.resume());
}

/** The Host and path a request asks for: origin form, or absolute form (whose authority replaces Host, RFC 9112 §3.2.2). */
export function requestTarget(target: string, host: string | undefined): { host: string | undefined; path: string } | undefined {
  if (target.charCodeAt(0) === 47) return { host, path: target };
  const absolute = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (absolute === null) return undefined;
  const path = absolute[2] === '' ? '/' : absolute[2].startsWith('/') ? absolute[2] : `/${absolute[2]}`;
  return { host: absolute[1], path };
}

/**
 * The request as the backend gets it: the Host kept, hop-by-hop fields dropped (those the
 * Connection field names too), and the X-Forwarded-* and X-Real-IP ingress-nginx sets
 * (without use-forwarded-headers, the client's own X-Forwarded-For is replaced);
 * X-Request-ID is kept when the client sent one, as nginx's $req_id. Content-Length and
 * Transfer-Encoding stay as the client sent them: the body follows as it framed it.
 */
export function upstreamHead(head: RequestHead, path: string, client: Socket, secure: boolean, upgrade: string | undefined): string {
  const named = head.connection;
  // "keep-alive", "close" and "upgrade", the usual options, name no field of the rest.
  const nameless = named.every((token) => token === 'keep-alive' || token === 'close' || token === 'upgrade');
  const fields = head.fields;
  // HTTP/1.0 clients are passed on as HTTP/1.0, so that the answer is not chunked for them.
  let text = `${head.method} ${path} ${head.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0'}\r\n`;
  let requestId: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i].toLowerCase();
    if (name === 'x-request-id') requestId ??= fields[i + 1];
    if (REQUEST_DROPPED.has(name) || SET_BY_PROXY.has(name) || (!nameless && named.includes(name) && !FRAMING.has(name))) continue;
    text += `${fields[i]}: ${fields[i + 1]}\r\n`;
  }
  const address = client.remoteAddress ?? '';
  const proto = secure ? 'https' : 'http';
  text += `x-request-id: ${requestId !== undefined && requestId !== '' ? requestId : newRequestId()}\r\nx-real-ip: ${address}\r\nx-forwarded-for: ${address}\r\n`;
  if (head.host !== undefined) text += `x-forwarded-host: ${head.host}\r\n`;
  // The port the client reached, after the Service's DNAT: the listener's, as nginx's $server_port.
  text += `x-forwarded-port: ${client.localPort ?? ''}\r\nx-forwarded-proto: ${proto}\r\nx-forwarded-scheme: ${proto}\r\nx-scheme: ${proto}\r\n`;
  // The backend connection is this client connection's: when the client says close, so is it,
  // and the backend closing first keeps the proxy's ports out of TIME_WAIT (nginx without
  // upstream keepalive does the same).
  if (upgrade !== undefined) text += `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
  else if (head.minor === 0 || !head.keepAlive) text += 'connection: close\r\n';
  return `${text}\r\n`;
}

/** The backend's answer as the client gets it: its fields but the hop-by-hop ones, the proxy as the Server. */
function responseHead(head: ResponseHead, connection: 'keep-alive' | 'close' | 'upgrade'): string {
  const named = head.connection;
  const nameless = named.every((token) => token === 'keep-alive' || token === 'close' || token === 'upgrade');
  const fields = head.fields;
  let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
  let dated = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i].toLowerCase();
    if (name === 'upgrade' && connection === 'upgrade') {
      text += `${fields[i]}: ${fields[i + 1]}\r\n`;
      continue;
    }
    if (RESPONSE_DROPPED.has(name) || (!nameless && named.includes(name) && !FRAMING.has(name))) continue;
    if (name === 'date') dated = true;
    text += `${fields[i]}: ${fields[i + 1]}\r\n`;
  }
  if (!dated) text += `date: ${httpDate()}\r\n`;
  // A kept-alive HTTP/1.0 client is told so; HTTP/1.1 keeps alive unless told otherwise, but nginx says it either way.
  text += `server: ${SERVER}\r\nconnection: ${connection}\r\n\r\n`;
  return text;
}

function connectFailure(err: NodeJS.ErrnoException): string {
  return err.code === 'ECONNREFUSED' ? 'refused the connection' : `failed: ${err.code ?? err.message}`;
}

let dateSecond = -1;
let dateText = '';

/** The Date field's value, made once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** Random bytes for request IDs, drawn 256 IDs at a time: one getrandom per request cost 3% of the proxy. */
const idPool = Buffer.alloc(16 * 256);
let idNext = idPool.length;

/** 16 random bytes in hex, as nginx's $request_id. */
function newRequestId(): string {
  if (idNext === idPool.length) {
    randomFillSync(idPool);
    idNext = 0;
  }
  idNext += 16;
  return idPool.toString('hex', idNext - 16, idNext);
}
