/**
 * A TAP Port with no addon: native-free/tap-relay.py opens the device (Node cannot ioctl)
 * and relays frames over its stdin/stdout; this side is a StreamPort over those pipes.
 *
 * Slower than the addon (every frame crosses a pipe and a Python loop twice), but it
 * needs only python3. It needs CAP_NET_ADMIN like the addon, unless the TAP already
 * exists as a persistent device owned by this user (`ip tuntap add NAME mode tap user U`).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { RECORD_PREFIX_LEN, StreamPort } from './stream-port.js';

export interface RelayTapOptions {
  /** IFF_VNET_HDR: frames carry offload metadata. */
  vnetHdr?: boolean;
  /** TUNSETOFFLOAD CSUM|TSO4|TSO6 (implies vnetHdr). */
  offload?: boolean;
  /** Most frames per delivered batch; default 256. */
  batch?: number;
  /** The interpreter; default $PODWIRE_PYTHON or python3. */
  python?: string;
}

type Relay = ChildProcessByStdio<Writable, Readable, Readable>;

/** Where tap-relay.py is: beside this file in the source tree, two levels up from dist/. */
export function relayScriptPath(): string {
  for (const rel of ['../../native-free/tap-relay.py', './tap-relay.py']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('native-free/tap-relay.py not found');
}

export class RelayTapPort extends StreamPort {
  readonly backend = 'python-relay' as const;
  /** The relay's pid (it holds the TAP). */
  readonly pid: number;
  /** Settles when the relay has exited, i.e. the TAP is gone. */
  readonly exited: Promise<void>;

  /** Starts the relay and waits for it to open the TAP `name`. */
  static async open(name: string, options: RelayTapOptions = {}): Promise<RelayTapPort> {
    const vnetHdr = options.vnetHdr === true || options.offload === true;
    const args = [relayScriptPath(), name];
    if (vnetHdr) args.push('--vnet-hdr');
    if (options.offload === true) args.push('--offload');
    const child: Relay = spawn(options.python ?? process.env.PODWIRE_PYTHON ?? 'python3', args, {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = once(child, 'close').then(
      () => undefined,
      () => undefined,
    );
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      // Keep the start of what it says, for the error message; never grow without bound.
      if (stderr.length < 4096) stderr += text;
    });
    const { hello, rest } = await readHandshake(child, () => stderr);
    if (hello.vnetHdrLen !== (vnetHdr ? 10 : 0)) {
      child.kill();
      throw new Error(`tap-relay: unexpected handshake ${JSON.stringify(hello)}`);
    }
    return new RelayTapPort(child, hello.name, vnetHdr, options.batch, rest, exited, () => stderr);
  }

  private constructor(
    child: Relay,
    name: string,
    vnetHdr: boolean,
    batch: number | undefined,
    rest: Buffer,
    exited: Promise<void>,
    private readonly stderr: () => string,
  ) {
    super(child.stdout, child.stdin, { name, vnetHdr, batch }, () => closeRelay(child), rest);
    this.pid = child.pid!;
    this.exited = exited;
  }

  protected override endError(): Error {
    const said = this.stderr().trim();
    return new Error(`the TAP relay exited${said ? `: ${said}` : ''}`);
  }
}

/** Ending stdin makes the relay exit; one that does not within 2 s is killed (by pid). */
function closeRelay(child: Relay): void {
  child.stdin.end();
  if (child.exitCode !== null || child.signalCode !== null) return;
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  timer.unref();
  child.once('exit', () => clearTimeout(timer));
}

interface Hello {
  name: string;
  vnetHdrLen: number;
}

/** Reads the first record (JSON) from the relay's stdout; returns it and what followed. */
function readHandshake(child: Relay, stderr: () => string): Promise<{ hello: Hello; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const cleanup = (): void => {
      child.stdout.off('data', onData);
      child.off('close', onClose);
      child.off('error', onError);
      child.stdout.pause();
    };
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      if (data.length < RECORD_PREFIX_LEN) return;
      const len = data.readUInt32BE(0);
      if (len > 4096) {
        cleanup();
        child.kill();
        reject(new Error('tap-relay: bad handshake'));
        return;
      }
      if (data.length < RECORD_PREFIX_LEN + len) return;
      cleanup();
      try {
        const hello = JSON.parse(data.subarray(RECORD_PREFIX_LEN, RECORD_PREFIX_LEN + len).toString('utf8')) as Hello;
        resolve({ hello, rest: data.subarray(RECORD_PREFIX_LEN + len) });
      } catch (err) {
        child.kill();
        reject(err as Error);
      }
    };
    const onClose = (code: number | null): void => {
      cleanup();
      reject(new Error(stderr().trim() || `tap-relay exited with status ${code}`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new Error(`tap-relay: ${err.message}`));
    };
    child.stdout.on('data', onData);
    child.on('close', onClose);
    child.on('error', onError);
  });
}
