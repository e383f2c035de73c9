/**
 * The kubelet's container half for one pod: its pause, its containers' processes, their
 * restarts under the pod's restartPolicy with the kubelet's back-off, and their stopping.
 * What each container runs (command, environment, sandbox) is planned by the caller at each
 * start, so a restarted container sees the Services that exist when it starts again, as the
 * kubelet's service links do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Container, Pod } from '../cluster/model.js';
import { startPause, type PauseProcess } from '../sandbox/launcher.js';
import type { Workload } from './workloads/choose.js';

/** The kubelet's container restart back-off (pkg/kubelet/kubelet.go): 10 s doubling to 5 min. */
export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 300_000;

/**
 * When a container that exited at `exitedAt` may start again, and the back-off after that,
 * as the kubelet's flowcontrol.Backoff keys it: the first restart is at once, each later one
 * waits the back-off since the exit, which doubles up to the maximum; an entry untouched for
 * twice the maximum starts over.
 */
export interface Backoff {
  readonly delayMs: number;
  readonly lastExitAt: number;
}

export function nextRestart(previous: Backoff | undefined, exitedAt: number): { waitMs: number; next: Backoff } {
  if (previous === undefined || exitedAt - previous.lastExitAt > 2 * BACKOFF_MAX_MS) {
    return { waitMs: 0, next: { delayMs: BACKOFF_INITIAL_MS, lastExitAt: exitedAt } };
  }
  return { waitMs: previous.delayMs, next: { delayMs: Math.min(previous.delayMs * 2, BACKOFF_MAX_MS), lastExitAt: exitedAt } };
}

/** Whether restartPolicy starts a container again after it exited with `exitCode`. */
export function restartWanted(policy: 'Always' | 'OnFailure' | 'Never', exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

/** What starting a container comes to: a command line and its environment, or why not. */
export type ContainerPlan =
  | { readonly argv: readonly string[]; readonly env: Readonly<Record<string, string>>; readonly workload: Workload; readonly warnings: readonly string[] }
  | { readonly problem: string };

export interface PodRuntimeOptions {
  /** The pod's network namespace path, which the pause joins. */
  readonly netnsPath: string;
  readonly hostname: string;
  /** Undefined: no sandbox on this machine; containers run in the network namespace only. */
  readonly sandboxBinary: string | undefined;
  /** Plans a container's start; `initPid` is the pause's init (0 without a sandbox). */
  readonly plan: (container: Container, initPid: number) => ContainerPlan;
  readonly logPath: (container: string) => string;
  readonly log: (line: string) => void;
  /** Injected for tests: the wall clock in ms. */
  readonly now?: () => number;
}

export type ContainerState = 'waiting' | 'running' | 'terminated';

export class RunningContainer {
  process: ChildProcess | undefined;
  exitCode: number | null = null;
  restartCount = 0;
  /** Why it is not running, in the kubelet's words (CrashLoopBackOff, CreateContainerConfigError, Completed, Error). */
  reason: string | undefined;
  workload: Workload | undefined;
  backoff: Backoff | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  log: WriteStream | undefined;

  constructor(readonly spec: Container) {}

  get name(): string {
    return this.spec.name;
  }

  get running(): boolean {
    return this.process !== undefined && this.exitCode === null;
  }

  get state(): ContainerState {
    if (this.running) return 'running';
    return this.restartTimer !== undefined || this.process === undefined ? 'waiting' : 'terminated';
  }
}

export class PodRuntime {
  readonly containers: RunningContainer[];
  private pause: PauseProcess | undefined;
  /** The pause being started: containers that need one at once wait for the same. */
  private pausing: Promise<void> | undefined;
  private stopping = false;
  private readonly now: () => number;

  constructor(
    readonly pod: Pod,
    private readonly options: PodRuntimeOptions,
  ) {
    this.containers = pod.containers.map((c) => new RunningContainer(c));
    this.now = options.now ?? Date.now;
  }

  /** The pause's init pid (0 without a sandbox), for `podwire exec`. */
  get initPid(): number {
    return this.pause?.initPid ?? 0;
  }

  get sandboxed(): boolean {
    return this.options.sandboxBinary !== undefined;
  }

  /** Pids whose network namespace is the pod's: the containers' launchers (readiness reads their sockets). */
  pids(): number[] {
    return this.containers.flatMap((c) => (c.running && c.process?.pid !== undefined ? [c.process.pid] : []));
  }

  async start(): Promise<void> {
    await this.ensurePause();
    for (const c of this.containers) this.startContainer(c);
  }

  private ensurePause(): Promise<void> {
    const binary = this.options.sandboxBinary;
    if (binary === undefined || this.pause !== undefined) return Promise.resolve();
    this.pausing ??= startPause(this.options.netnsPath, this.options.hostname, binary)
      .then((pause) => {
        if (this.stopping) {
          pause.process.kill('SIGKILL'); // the pod was stopped while its pause started
          return;
        }
        this.pause = pause;
        pause.process.on('exit', (code, signal) => {
          if (this.pause === pause) this.pause = undefined;
          // Its containers died with it; those their restartPolicy starts again get a new pause.
          if (!this.stopping) this.options.log(`${this.pod.namespace}/${this.pod.name}: the pod's pause exited (${signal ?? code})`);
        });
      })
      .finally(() => {
        this.pausing = undefined;
      });
    return this.pausing;
  }

  private startContainer(c: RunningContainer): void {
    if (this.stopping) return;
    c.restartTimer = undefined;
    if (this.options.sandboxBinary !== undefined && this.pause === undefined) {
      this.ensurePause().then(
        () => this.startContainer(c),
        (err: Error) => this.failedToStart(c, 'CreatePodSandboxError', err.message),
      );
      return;
    }
    c.log ??= createWriteStream(this.options.logPath(c.name), { flags: 'a', mode: 0o600 });
    const log = c.log;
    const plan = this.options.plan(c.spec, this.initPid);
    if ('problem' in plan) {
      this.failedToStart(c, 'CreateContainerConfigError', plan.problem);
      return;
    }
    for (const warning of plan.warnings) this.options.log(`${this.pod.namespace}/${this.pod.name}/${c.name}: ${warning}`);
    const [command, ...args] = plan.argv;
    const child = spawn(command, args, { env: plan.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    c.process = child;
    c.exitCode = null;
    c.reason = undefined;
    c.workload = plan.workload;
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.on('error', (err) => log.write(`podwire: could not start ${plan.argv.join(' ')}: ${err.message}\n`));
    child.on('exit', (code, signal) => this.exited(c, child, code ?? (signal !== null ? 128 + signalNumber(signal) : -1), signal));
  }

  /** A container that could not start counts as one that exited at once (the kubelet backs off the same way). */
  private failedToStart(c: RunningContainer, reason: string, problem: string): void {
    this.options.log(`${this.pod.namespace}/${this.pod.name}/${c.name}: ${reason}: ${problem}`);
    c.log?.write(`podwire: ${reason}: ${problem}\n`);
    c.process = undefined;
    c.exitCode = -1;
    this.scheduleRestart(c, reason, true);
  }

  private exited(c: RunningContainer, child: ChildProcess, exitCode: number, signal: NodeJS.Signals | null): void {
    if (c.process !== child) return;
    c.exitCode = exitCode;
    if (this.stopping) return;
    this.options.log(`${this.pod.namespace}/${this.pod.name}/${c.name} exited (${signal ?? exitCode})`);
    this.scheduleRestart(c, exitCode === 0 ? 'Completed' : 'Error', false);
  }

  private scheduleRestart(c: RunningContainer, reason: string, failedToStart: boolean): void {
    c.reason = reason;
    if (!failedToStart && !restartWanted(this.pod.restartPolicy, c.exitCode ?? -1)) return;
    const { waitMs, next } = nextRestart(c.backoff, this.now());
    c.backoff = next;
    if (waitMs > 0) c.reason = failedToStart ? reason : 'CrashLoopBackOff';
    c.restartTimer = setTimeout(() => {
      if (!failedToStart) c.restartCount++;
      this.startContainer(c);
    }, waitMs);
  }

  /** Signals every running container's launcher, which passes it on. */
  signal(signal: NodeJS.Signals): void {
    for (const c of this.containers) {
      const pid = c.process?.pid;
      if (pid === undefined || !c.running) continue;
      try {
        // SIGKILL reaches the whole group (the launcher's child dies with it in any case);
        // other signals go to the launcher, which forwards them once.
        process.kill(signal === 'SIGKILL' ? -pid : pid, signal);
      } catch {
        // Already gone.
      }
    }
  }

  anyRunning(): boolean {
    return this.containers.some((c) => c.running);
  }

  /** No more restarts; the caller signals and waits, then `end()` kills what is left. */
  beginStopping(): void {
    this.stopping = true;
    for (const c of this.containers) {
      if (c.restartTimer !== undefined) clearTimeout(c.restartTimer);
      c.restartTimer = undefined;
    }
  }

  end(): void {
    this.beginStopping();
    this.signal('SIGKILL');
    const pid = this.pause?.process.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    for (const c of this.containers) c.log?.end();
  }
}

/** What kubectl's RESTARTS and STATUS columns show of a pod's containers: all restarts, and why one is not running. */
export function containersSummary(containers: readonly { readonly restartCount: number; readonly running: boolean; readonly reason?: string | undefined }[]): {
  restarts: number;
  reason?: string;
} {
  const restarts = containers.reduce((sum, c) => sum + c.restartCount, 0);
  const reason = containers.find((c) => !c.running && c.reason !== undefined)?.reason;
  return { restarts, ...(reason !== undefined ? { reason } : {}) };
}

/** The signal's number on this platform, as a shell's 128+N exit status counts it. */
export function signalNumber(signal: NodeJS.Signals): number {
  return osConstants.signals[signal] ?? 0;
}
