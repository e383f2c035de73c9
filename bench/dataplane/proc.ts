/**
 * Processes for the dataplane benchmark: commands run to completion, load generators and
 * servers run in the background, and the /proc readings (CPU time, interface counters,
 * listening sockets) that let the benchmark watch them without spawning more processes
 * mid-measurement.
 *
 * Every command is an argv array handed to execFile/spawn, never a shell string. Every
 * process started here is registered, so teardown can end exactly the processes this
 * benchmark started, by pid, whatever failed in between.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')}: exit ${String(code)}${stderr.trim() === '' ? '' : `: ${stderr.trim().split('\n').slice(-5).join(' | ')}`}`);
  }
}

/** Commands running to completion under run(), so that an abort can end them too. */
const running = new Set<ChildProcess>();
/** Set by abortAll(): from then on only teardown commands start. */
let aborted = false;

function refuseAfterAbort(argv: readonly string[]): void {
  if (aborted) throw new Error(`${argv.join(' ')}: not started, the benchmark was interrupted`);
}

export interface RunOptions {
  /** Default 60 s. */
  readonly timeoutMs?: number;
  /** A teardown step: runs even after abortAll(). */
  readonly teardown?: boolean;
}

/** Runs argv to completion and resolves with its stdout; rejects with CommandError. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  const [cmd, ...args] = argv;
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    if (options.teardown !== true) refuseAfterAbort(argv);
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 32 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      running.delete(child);
      if (err === null) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
      reject(new CommandError(argv, err.killed ? `killed (timeout ${timeoutMs} ms or teardown)` : code, stdout, stderr));
    });
    running.add(child);
  });
}

/** argv run inside a named network namespace (`ip netns exec` keeps the pid on exec). */
export function inNetns(netns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', netns, ...argv];
}

const started = new Set<Background>();

/** A process started in the background, whose stdout is collected. */
export class Background {
  readonly child: ChildProcess;
  /** Resolves with stdout when the process exits 0; rejects with CommandError otherwise. */
  readonly done: Promise<string>;
  private stdout = '';
  private stderr = '';
  private exited = false;

  constructor(
    readonly argv: readonly string[],
    env?: NodeJS.ProcessEnv,
  ) {
    const [cmd, ...args] = argv;
    refuseAfterAbort(argv);
    // detached: a process group of its own, so a Ctrl-C meant for us does not hit it
    // before teardown does, and stop() can end it with whatever it started itself.
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(env !== undefined ? { env } : {}) });
    started.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.done = new Promise((resolve, reject) => {
      this.child.once('error', (err) => {
        this.exited = true;
        started.delete(this);
        reject(new CommandError(argv, err.message, this.stdout, this.stderr));
      });
      this.child.once('close', (code, signal) => {
        this.exited = true;
        started.delete(this);
        if (code === 0) resolve(this.stdout);
        else reject(new CommandError(argv, code ?? signal, this.stdout, this.stderr));
      });
    });
    // Callers await `done` when they care; a process stopped on purpose must not become
    // an unhandled rejection.
    this.done.catch(() => undefined);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.argv.join(' ')}: did not start`);
    return this.child.pid;
  }

  /** The output so far (for "ready" lines). */
  get output(): string {
    return this.stdout;
  }

  /** What it wrote to stderr so far (the io benchmark's log). */
  get errorOutput(): string {
    return this.stderr;
  }

  /** Resolves once stdout contains `text`; rejects when the process exits first or after timeoutMs. */
  async waitForOutput(text: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes(text)) {
      if (this.exited) {
        await this.done;
        throw new Error(`${this.argv.join(' ')} exited before printing ${JSON.stringify(text)}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.argv.join(' ')}: no ${JSON.stringify(text)} after ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /**
   * SIGTERM, then SIGKILL after graceMs, to the process group this process leads (it and
   * whatever it started); resolves once it has exited. Idempotent.
   */
  async stop(graceMs = 2000): Promise<void> {
    if (this.exited) return;
    const closed = once(this.child, 'close').catch(() => undefined);
    this.signal('SIGTERM');
    const timer = sleep(graceMs).then(() => 'timeout' as const);
    if ((await Promise.race([closed, timer])) === 'timeout') {
      this.signal('SIGKILL');
      await closed;
    }
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, sig);
    } catch {
      // Exited meanwhile.
    }
  }
}

/** Stops every background process this module started that still runs. */
export async function stopAllBackground(): Promise<void> {
  await Promise.all([...started].map((b) => b.stop(1000)));
}

/**
 * On a signal: ends every process this module started that still runs (background ones
 * and commands run to completion) and refuses to start any but teardown commands from
 * then on, so that a measurement still in flight cannot leave a process behind.
 */
export async function abortAll(): Promise<void> {
  aborted = true;
  for (const child of running) child.kill('SIGKILL');
  await stopAllBackground();
}

// ---------------------------------------------------------------------------------------
// /proc readings

/** Clock ticks per second of /proc/<pid>/stat times: USER_HZ, 100 on every Linux ABI in use. */
const USER_HZ = 100;

export interface ProcessCpu {
  /** User + system time of every thread so far (µs). */
  readonly cpuUs: number;
  readonly sysUs: number;
  /** Context switches of the main thread: voluntary (it waited) and not (it was preempted). */
  readonly voluntary: number;
  readonly involuntary: number;
}

/**
 * CPU use of a process so far. In /proc/<pid>/stat field 2 (comm) may hold spaces and
 * parentheses, so fields are counted after the last ')'. The thread group leader's stat
 * sums all threads; its status's context switches are the main thread's own.
 */
export function processCpu(pid: number): ProcessCpu {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After comm: state is field 3, utime field 14, stime field 15 (man 5 proc).
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const count = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return {
    cpuUs: ((utime + stime) * 1e6) / USER_HZ,
    sysUs: (stime * 1e6) / USER_HZ,
    voluntary: count('voluntary_ctxt_switches'),
    involuntary: count('nonvoluntary_ctxt_switches'),
  };
}

/**
 * Packet counters of `ifName` as seen from the network namespace `pid` lives in
 * (/proc/<pid>/net/dev shows the device table of the reader-pid's namespace).
 */
export function interfacePackets(pid: number, ifName: string): { rx: number; tx: number; rxDropped: number; txDropped: number } {
  const text = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  const line = text.split('\n').find((l) => l.trimStart().startsWith(`${ifName}:`));
  if (line === undefined) throw new Error(`no interface ${ifName} in the namespace of pid ${pid}`);
  const f = line.slice(line.indexOf(':') + 1).trim().split(/\s+/).map(Number);
  // rx: bytes packets errs drop fifo frame compressed multicast | tx: bytes packets errs drop ...
  return { rx: f[1], rxDropped: f[3], tx: f[9], txDropped: f[11] };
}

/** Whether a socket of `proto` listens on (or, for UDP, is bound to) `port` in pid's namespace. */
export function listening(pid: number, proto: 'tcp' | 'udp', port: number): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
  } catch {
    return false;
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  // "sl local_address rem_address st ...": TCP LISTEN is state 0A; a bound UDP socket is 07.
  const state = proto === 'tcp' ? '0A' : '07';
  return text.split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1]?.endsWith(`:${hexPort}`) === true && f[3] === state;
  });
}

/** The command name of a process (after `ip netns exec` has exec'd, the program run in the namespace). */
export function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Polls until `test` holds; throws after timeoutMs. */
export async function waitUntil(what: string, test: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Compiles a benchmark's C helper `name` from `source` into `dir`; returns the executable's path. */
export async function compileC(dir: string, name: string, source: string): Promise<string> {
  const file = path.join(dir, `${name}.c`);
  const exe = path.join(dir, name);
  writeFileSync(file, source);
  await run(['gcc', '-O2', '-Wall', '-Werror', '-o', exe, file]);
  return exe;
}
