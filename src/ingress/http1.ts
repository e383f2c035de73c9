/**
 * HTTP/1.1 message framing as a proxy needs it (RFC 9112), over bytes, doing no I/O: a
 * request or response head parsed and checked once at the edge, the body's framing decided
 * from it (§6.3), and a chunked body's boundaries found as its bytes stream past, so that a
 * proxy can pass a body on untouched and still know where the next message begins.
 *
 * Strict where a lenient reading would let two parties disagree about where a message
 * ends (request smuggling): Content-Length and Transfer-Encoding together, Content-Lengths
 * that differ, a Transfer-Encoding in HTTP/1.0, a coding after `chunked`, a field line
 * folded or with white space before its colon, a bare CR, a chunk size that is not hex.
 * Lenient where RFC 9112 allows and nginx is: a bare LF ends a line, empty lines before a
 * request line are skipped.
 */

/** Node's default for the whole head (--max-http-header-size): beyond it a request gets 431. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** How a message's body is delimited (RFC 9112 §6.3). */
export const enum Body {
  None = 0,
  /** Content-Length bytes. */
  Length = 1,
  Chunked = 2,
  /** A response read until the connection closes. */
  UntilClose = 3,
}

/** A message that cannot be taken, with the status a request gets for it (a bad response is a 502 of the proxy's). */
export class HttpError {
  constructor(
    readonly status: number,
    readonly why: string,
  ) {}
}

interface HeadCommon {
  /** Field names as sent and values without their surrounding white space, in order: name, value, name, value. */
  readonly fields: string[];
  readonly minor: 0 | 1;
  readonly body: Body;
  /** The Content-Length, with Body.Length. */
  readonly length: number;
  /** The sender allows the connection to carry another message after this one. */
  readonly keepAlive: boolean;
  /** The Connection field's options, lower case (hop-by-hop field names among them). */
  readonly connection: readonly string[];
  /** Bytes from the start given to the parser to the first byte of the body. */
  readonly headBytes: number;
}

export interface RequestHead extends HeadCommon {
  readonly method: string;
  readonly target: string;
  /** The Host field's value; always there in HTTP/1.1. */
  readonly host: string | undefined;
  /** The Upgrade field's value, when Connection names upgrade. */
  readonly upgrade: string | undefined;
  /** `Expect: 100-continue`. */
  readonly expectContinue: boolean;
}

export interface ResponseHead extends HeadCommon {
  readonly status: number;
  readonly reason: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What a field value may not hold: controls other than HT (RFC 9110 §5.5). */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const DIGITS = /^\d{1,15}$/;
const CR = 13;
const LF = 10;

/**
 * Where the head that starts at `start` ends (the offset after its empty line), or -1 when
 * the bytes up to `end` do not hold its end yet. Empty lines before it are the caller's
 * (`skipEmptyLines`).
 */
export function headEnd(buf: Uint8Array, start: number, end: number): number {
  let lf = buf.indexOf(LF, start);
  while (lf >= 0 && lf < end) {
    if (lf + 1 < end && buf[lf + 1] === LF) return lf + 2;
    if (lf + 2 < end && buf[lf + 1] === CR && buf[lf + 2] === LF) return lf + 3;
    if (lf + 2 >= end) return -1;
    lf = buf.indexOf(LF, lf + 1);
  }
  return -1;
}

/** Past the CRLFs (or LFs) a client may send before a request line (RFC 9112 §2.2). */
export function skipEmptyLines(buf: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end && (buf[i] === LF || (buf[i] === CR && i + 1 < end && buf[i + 1] === LF))) i += buf[i] === CR ? 2 : 1;
  return i;
}

/** The head's lines, each without its CR LF or LF; undefined when a CR stands anywhere but before an LF. */
function lines(buf: Uint8Array, start: number, endOfHead: number): string[] | undefined {
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1', start, endOfHead);
  const out = text.split('\n');
  out.pop(); // the empty line's after-LF remainder, always ""
  out.pop(); // the empty line itself
  for (let i = 0; i < out.length; i++) {
    let line = out[i];
    if (line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
    if (line.includes('\r')) return undefined;
    out[i] = line;
  }
  return out;
}

function trimOws(value: string): string {
  let from = 0;
  let to = value.length;
  while (from < to && (value.charCodeAt(from) === 32 || value.charCodeAt(from) === 9)) from++;
  while (to > from && (value.charCodeAt(to - 1) === 32 || value.charCodeAt(to - 1) === 9)) to--;
  return from === 0 && to === value.length ? value : value.slice(from, to);
}

/** A comma-separated list's elements, lower case, empty ones dropped (RFC 9110 §5.6.1). */
export function listTokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const token = trimOws(part).toLowerCase();
    if (token !== '') out.push(token);
  }
  return out;
}

/** The fields every message has, read once: framing, connection options, and for a request Host, Upgrade and Expect. */
interface FieldScan {
  fields: string[];
  contentLength: number;
  transferEncoding: string[] | undefined;
  connection: string[];
  host: string | undefined;
  hosts: number;
  upgrade: string | undefined;
  expect: string | undefined;
}

/** The field lines after the start line, checked; an HttpError (status `bad`) names the first fault. */
function scanFields(head: readonly string[], bad: number): FieldScan | HttpError {
  const scan: FieldScan = { fields: [], contentLength: -1, transferEncoding: undefined, connection: [], host: undefined, hosts: 0, upgrade: undefined, expect: undefined };
  for (let i = 1; i < head.length; i++) {
    const line = head[i];
    const first = line.charCodeAt(0);
    if (first === 32 || first === 9) return new HttpError(bad, 'a folded field line (obs-fold)');
    const colon = line.indexOf(':');
    if (colon <= 0) return new HttpError(bad, `a field line without a name and colon: ${JSON.stringify(line.slice(0, 40))}`);
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return new HttpError(bad, `a field name that is not a token: ${JSON.stringify(name.slice(0, 40))}`);
    const value = trimOws(line.slice(colon + 1));
    if (BAD_VALUE.test(value)) return new HttpError(bad, `a control character in the ${name} field`);
    scan.fields.push(name, value);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          scan.host = value;
          scan.hosts++;
        }
        break;
      case 6:
        if (name.toLowerCase() === 'expect') scan.expect = value.toLowerCase();
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') scan.upgrade = value;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') scan.connection.push(...listTokens(value));
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          // "5, 5" is one length said twice; lengths that differ cannot both frame the body.
          for (const part of value.split(',')) {
            const digits = trimOws(part);
            if (!DIGITS.test(digits)) return new HttpError(bad, `a Content-Length that is not a length: ${JSON.stringify(value.slice(0, 40))}`);
            const length = Number(digits);
            if (scan.contentLength >= 0 && scan.contentLength !== length) return new HttpError(bad, 'Content-Length fields that differ');
            scan.contentLength = length;
          }
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') (scan.transferEncoding ??= []).push(...listTokens(value));
        break;
      default:
        break;
    }
  }
  return scan;
}

/** Keep-alive by version and Connection (RFC 9112 §9.3). */
function persistent(minor: 0 | 1, connection: readonly string[]): boolean {
  if (connection.includes('close')) return false;
  return minor === 1 || connection.includes('keep-alive');
}

/**
 * A request head from `start`: undefined while incomplete, an HttpError with the status to
 * answer (400, 417, 431, 501, 505), or the head with the body's framing.
 */
export function parseRequestHead(buf: Uint8Array, start: number, end: number): RequestHead | HttpError | undefined {
  const stop = headEnd(buf, start, Math.min(end, start + MAX_HEAD_BYTES));
  if (stop < 0) return end - start >= MAX_HEAD_BYTES ? new HttpError(431, `a request head longer than ${MAX_HEAD_BYTES} bytes`) : undefined;
  const head = lines(buf, start, stop);
  if (head === undefined) return new HttpError(400, 'a CR that does not end a line');
  const line = REQUEST_LINE.exec(head[0]);
  if (line === null) return new HttpError(400, `not an HTTP request line: ${JSON.stringify(head[0].slice(0, 60))}`);
  if (line[3] !== '1') return new HttpError(505, `HTTP/${line[3]}.${line[4]}`);
  if (line[4] !== '0' && line[4] !== '1') return new HttpError(505, `HTTP/1.${line[4]}`);
  const minor = line[4] === '1' ? 1 : 0;
  const scan = scanFields(head, 400);
  if (scan instanceof HttpError) return scan;
  if (scan.hosts > 1) return new HttpError(400, 'more than one Host field');
  if (minor === 1 && scan.hosts === 0) return new HttpError(400, 'an HTTP/1.1 request without a Host field');
  let body = Body.None;
  let length = 0;
  if (scan.transferEncoding !== undefined) {
    if (minor === 0) return new HttpError(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (scan.contentLength >= 0) return new HttpError(400, 'both Content-Length and Transfer-Encoding');
    const codings = scan.transferEncoding;
    const unknown = codings.find((c) => c !== 'chunked');
    if (unknown !== undefined) return new HttpError(501, `the transfer coding ${JSON.stringify(unknown)}`);
    if (codings.length !== 1) return new HttpError(400, 'chunked applied more than once');
    body = Body.Chunked;
  } else if (scan.contentLength >= 0) {
    body = Body.Length;
    length = scan.contentLength;
  }
  if (scan.expect !== undefined && scan.expect !== '100-continue') return new HttpError(417, `the expectation ${JSON.stringify(scan.expect)}`);
  return {
    method: line[1],
    target: line[2],
    minor,
    fields: scan.fields,
    body,
    length,
    keepAlive: persistent(minor, scan.connection),
    connection: scan.connection,
    headBytes: stop - start,
    host: scan.host,
    upgrade: scan.connection.includes('upgrade') ? scan.upgrade : undefined,
    expectContinue: scan.expect === '100-continue',
  };
}

/**
 * A response head from `start`, to a request of `method`: undefined while incomplete, an
 * HttpError (status 502) for what a proxy cannot pass on, or the head with its framing.
 */
export function parseResponseHead(buf: Uint8Array, start: number, end: number, method: string): ResponseHead | HttpError | undefined {
  const stop = headEnd(buf, start, Math.min(end, start + MAX_HEAD_BYTES));
  if (stop < 0) return end - start >= MAX_HEAD_BYTES ? new HttpError(502, `sent a head longer than ${MAX_HEAD_BYTES} bytes`) : undefined;
  const head = lines(buf, start, stop);
  if (head === undefined) return new HttpError(502, 'sent a CR that does not end a line');
  const line = STATUS_LINE.exec(head[0]);
  if (line === null) return new HttpError(502, `sent no HTTP/1.x status line: ${JSON.stringify(head[0].slice(0, 60))}`);
  const minor = line[1] === '1' ? 1 : 0;
  const status = Number(line[2]);
  if (status < 100) return new HttpError(502, `sent the status ${line[2]}`);
  const scan = scanFields(head, 502);
  if (scan instanceof HttpError) return scan;
  let body: Body;
  let length = 0;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) body = Body.None;
  else if (scan.transferEncoding !== undefined) {
    if (scan.contentLength >= 0) return new HttpError(502, 'sent both Content-Length and Transfer-Encoding');
    // Chunked last: chunked framing; any other last coding: the body runs to the close (§6.3).
    body = scan.transferEncoding[scan.transferEncoding.length - 1] === 'chunked' ? Body.Chunked : Body.UntilClose;
  } else if (scan.contentLength >= 0) {
    body = Body.Length;
    length = scan.contentLength;
  } else body = Body.UntilClose;
  return {
    status,
    reason: line[3] ?? '',
    minor,
    fields: scan.fields,
    body,
    length,
    keepAlive: body !== Body.UntilClose && persistent(minor, scan.connection),
    connection: scan.connection,
    headBytes: stop - start,
  };
}

const enum Chunk {
  SizeStart,
  Size,
  /** White space after the size, before an extension. */
  SizeSpace,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  EndLf,
  Done,
}

/** Hex digits a chunk size may have: 13 keep it below 2^52. */
const MAX_SIZE_DIGITS = 13;

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  const lower = byte | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/**
 * Finds where a chunked body ends (RFC 9112 §7.1) as its bytes go by: feed it every byte of
 * the body in order and it says where the last chunk's trailer section ends. It checks what
 * decides the framing (hex sizes, line ends, extension and trailer characters) so that the
 * bytes it lets past frame the same way for whoever reads them next; the data itself it skips.
 */
export class ChunkedScanner {
  private state = Chunk.SizeStart;
  private size = 0;
  private digits = 0;
  private trailerBytes = 0;
  /** Why the body was refused, after `scan` returned -2. */
  error = '';

  /** Ready for another body. */
  reset(): void {
    this.state = Chunk.SizeStart;
    this.size = 0;
    this.digits = 0;
    this.trailerBytes = 0;
    this.error = '';
  }

  get done(): boolean {
    return this.state === Chunk.Done;
  }

  /** The offset just past the body's end, -1 when every byte up to `end` belongs to it, -2 when it is malformed (`error`). */
  scan(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    while (i < end) {
      const byte = buf[i];
      switch (this.state) {
        case Chunk.SizeStart:
          if (hexValue(byte) < 0) return this.fail('a chunk size that is not hexadecimal');
          this.size = hexValue(byte);
          this.digits = 1;
          this.state = Chunk.Size;
          break;
        case Chunk.Size: {
          const digit = hexValue(byte);
          if (digit >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.fail('a chunk size too large');
            this.size = this.size * 16 + digit;
          } else if (byte === 59) this.state = Chunk.Extension;
          else if (byte === 32 || byte === 9) this.state = Chunk.SizeSpace;
          else if (!this.lineEnd(byte, Chunk.SizeLf)) return this.fail('a chunk size followed by something other than an extension');
          break;
        }
        case Chunk.SizeSpace:
          if (byte === 59) this.state = Chunk.Extension;
          else if (byte !== 32 && byte !== 9) return this.fail('white space after a chunk size not followed by an extension');
          break;
        case Chunk.Extension:
          if (byte === CR || byte === LF) this.lineEnd(byte, Chunk.SizeLf);
          else if ((byte < 32 && byte !== 9) || byte === 127) return this.fail('a control character in a chunk extension');
          break;
        case Chunk.SizeLf:
          if (byte !== LF) return this.fail('a CR without an LF after a chunk size');
          this.sizeLineDone();
          break;
        case Chunk.Data: {
          const take = Math.min(this.size, end - i);
          this.size -= take;
          i += take;
          if (this.size === 0) this.state = Chunk.DataCr;
          continue;
        }
        case Chunk.DataCr:
          if (byte === CR) this.state = Chunk.DataLf;
          else if (byte === LF) this.state = Chunk.SizeStart;
          else return this.fail('chunk data longer than its size');
          break;
        case Chunk.DataLf:
          if (byte !== LF) return this.fail('a CR without an LF after chunk data');
          this.state = Chunk.SizeStart;
          break;
        case Chunk.TrailerStart:
          if (byte === LF) return this.finish(i + 1);
          if (byte === CR) this.state = Chunk.EndLf;
          else if (byte === 32 || byte === 9) return this.fail('a folded trailer line');
          else {
            this.state = Chunk.Trailer;
            continue; // the byte is the trailer line's first
          }
          break;
        case Chunk.Trailer:
          if (++this.trailerBytes > MAX_HEAD_BYTES) return this.fail(`trailers longer than ${MAX_HEAD_BYTES} bytes`);
          if (byte === CR) this.state = Chunk.TrailerLf;
          else if (byte === LF) this.state = Chunk.TrailerStart;
          else if ((byte < 32 && byte !== 9) || byte === 127) return this.fail('a control character in a trailer');
          break;
        case Chunk.TrailerLf:
          if (byte !== LF) return this.fail('a CR without an LF in the trailers');
          this.state = Chunk.TrailerStart;
          break;
        case Chunk.EndLf:
          if (byte !== LF) return this.fail('a CR without an LF at the end of the body');
          return this.finish(i + 1);
        case Chunk.Done:
          return i;
      }
      i++;
    }
    return this.state === Chunk.Done ? end : -1;
  }

  /** CR: the LF must follow; LF alone ends the line at once. */
  private lineEnd(byte: number, afterCr: Chunk): boolean {
    if (byte === CR) this.state = afterCr;
    else if (byte === LF) this.sizeLineDone();
    else return false;
    return true;
  }

  private sizeLineDone(): void {
    this.state = this.size === 0 ? Chunk.TrailerStart : Chunk.Data;
  }

  private finish(at: number): number {
    this.state = Chunk.Done;
    return at;
  }

  private fail(why: string): number {
    this.error = why;
    return -2;
  }
}
