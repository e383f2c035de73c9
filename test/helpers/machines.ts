/**
 * Several "machines" on one host for the several-machine tests (issue 11): each machine is
 * a network namespace with one veth into a shared underlay bridge, which lives in a
 * namespace of its own. Nothing is added to the root namespace: every link is created
 * directly inside its namespaces, and the underlay's addresses exist only there.
 *
 *   <prefix>-ul   bridge <prefix>-br, 10.a.b.254/24 (the machines' default gateway)
 *     ├ <prefix>-p1 ══ eth0 in <prefix>-m1, 10.a.b.1/24
 *     ├ <prefix>-p2 ══ eth0 in <prefix>-m2, 10.a.b.2/24
 *     └ ...
 *
 * Every namespace is named `<prefix>-...`, so destroy() and cleanupStale() can find them.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Machine {
  /** e.g. m1 */
  readonly name: string;
  readonly netns: string;
  /** Its underlay address, dotted. */
  readonly address: string;
  /** The veth's name inside the machine. */
  readonly iface: string;
  /** Runs argv inside the machine's namespace (ip netns exec), resolves with stdout, rejects with stderr on failure. */
  exec(argv: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /**
   * Spawns a long-running process in the machine (ip netns exec), in a process group of its
   * own; the underlay's destroy() ends what still runs, by pid.
   */
  spawn(argv: string[], opts?: SpawnOptions): ChildProcess;
}

export interface Underlay {
  readonly prefix: string;
  /** The bridge's namespace. */
  readonly netns: string;
  /** The machines' default gateway, on the bridge in its namespace. */
  readonly bridgeAddress: string;
  readonly cidr: string;
  readonly mtu: number;
  readonly machines: Machine[];
  /** Cuts / restores one machine's veth (link down/up at the bridge side) to simulate a partition. */
  partition(m: Machine, cut: boolean): Promise<void>;
  /** Ends spawned processes, deletes every namespace named with the prefix. Idempotent. */
  destroy(): Promise<void>;
}

/** A failed command: the message carries stderr; stdout is kept for commands that report there (iperf3 -J). */
export class CommandFailed extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')}: exit ${String(code)}: ${stderr.trim() || '(no stderr)'}`);
  }
}

/** Runs argv to completion (never through a shell). */
export function runCommand(argv: readonly string[], timeoutMs = 30_000): Promise<string> {
  const [cmd, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) return resolve(stdout);
      const code = err.killed ? `killed after ${timeoutMs} ms` : ((err as NodeJS.ErrnoException).code ?? null);
      reject(new CommandFailed(argv, code, stdout, stderr || err.message));
    });
  });
}

// ---------------------------------------------------------------------------------------
// The plan: names and addresses, pure, so their limits are tested without a kernel.

export const DEFAULT_MTU = 1500;
/** Linux's IFNAMSIZ less the terminating NUL. */
export const MAX_IFNAME = 15;
/** .254 is the gateway, .0 and .255 are not hosts. */
export const MAX_MACHINES = 253;
/** `<prefix>-p253` must fit MAX_IFNAME. */
export const MAX_PREFIX = MAX_IFNAME - '-p253'.length;

export interface MachinePlan {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  readonly iface: string;
  /** Its veth's peer, a port of the bridge in the underlay's namespace. */
  readonly port: string;
}

export interface UnderlayPlan {
  readonly prefix: string;
  readonly netns: string;
  readonly bridge: string;
  readonly bridgeAddress: string;
  readonly cidr: string;
  readonly machines: readonly MachinePlan[];
}

/**
 * A /24 inside 10.200.0.0/13 from a random draw in [0, 2048): parallel runs each pick
 * their own, so two underlays printed side by side in a log are told apart.
 */
export function subnetFromDraw(draw: number): string {
  if (!Number.isInteger(draw) || draw < 0 || draw >= 2048) throw new RangeError(`subnet draw ${draw} is outside [0, 2048)`);
  return `10.${200 + (draw >> 8)}.${draw & 0xff}`;
}

export function planUnderlay(prefix: string, machines: number, subnet: string): UnderlayPlan {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(prefix) || prefix.length > MAX_PREFIX) {
    throw new RangeError(`prefix ${JSON.stringify(prefix)}: lower-case letters, digits and '-', at most ${MAX_PREFIX} characters`);
  }
  if (!Number.isInteger(machines) || machines < 1 || machines > MAX_MACHINES) throw new RangeError(`machines ${machines}: 1 to ${MAX_MACHINES}`);
  return {
    prefix,
    netns: `${prefix}-ul`,
    bridge: `${prefix}-br`,
    bridgeAddress: `${subnet}.254`,
    cidr: `${subnet}.0/24`,
    machines: Array.from({ length: machines }, (_, k) => ({
      name: `m${k + 1}`,
      netns: `${prefix}-m${k + 1}`,
      address: `${subnet}.${k + 1}`,
      iface: 'eth0',
      port: `${prefix}-p${k + 1}`,
    })),
  };
}

/** Whether a namespace belongs to the run with this prefix (`pwt-m1a2b` owns `pwt-m1a2b-m1`, not `pwt-m1a2bc-m1`). */
export function ownedBy(prefix: string, netns: string): boolean {
  return netns.startsWith(`${prefix}-`);
}

// ---------------------------------------------------------------------------------------
// The kernel side.

/** `ip netns list` prints "name (id: N)" or just "name". */
export async function listNetns(): Promise<string[]> {
  const out = await runCommand(['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0])
    .filter((name) => name !== '' && name !== undefined);
}

const gone = (err: unknown) => /No such file or directory|Cannot open network namespace/.test(String((err as Error).message));

/** Deletes a namespace (and with it its links); one already gone is not an error. */
async function deleteNetns(name: string): Promise<void> {
  try {
    await runCommand(['ip', 'netns', 'delete', name]);
  } catch (err) {
    if (!gone(err)) throw err;
  }
}

/** Pids of processes in a namespace, read before it is deleted. */
async function pidsIn(netns: string): Promise<number[]> {
  const out = await runCommand(['ip', 'netns', 'pids', netns]).catch(() => '');
  return out
    .split('\n')
    .filter((s) => s.trim() !== '')
    .map(Number);
}

/**
 * Removes what a crashed run with exactly this prefix left: the processes still inside its
 * namespaces (SIGKILL, by pid: a process left in a deleted namespace would keep it alive,
 * unseen) and the namespaces. Returns the namespaces it deleted.
 */
export async function cleanupStale(prefix: string): Promise<string[]> {
  const stale = (await listNetns()).filter((ns) => ownedBy(prefix, ns));
  for (const ns of stale) {
    for (const pid of await pidsIn(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    await deleteNetns(ns);
  }
  return stale;
}

const ipn = (netns: string, ...args: string[]) => runCommand(['ip', '-n', netns, ...args]);

async function addNetns(name: string): Promise<void> {
  await runCommand(['ip', 'netns', 'add', name]);
  await ipn(name, 'link', 'set', 'lo', 'up');
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** SIGTERM to the process group the child leads, SIGKILL after graceMs; resolves once it has exited. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (!running(child) || child.pid === undefined) return;
  const exited = once(child, 'exit').catch(() => undefined);
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // Exited meanwhile.
    }
  };
  signal('SIGTERM');
  if ((await Promise.race([exited.then(() => 'exited' as const), sleep(graceMs).then(() => 'timeout' as const)])) === 'timeout') {
    signal('SIGKILL');
    await exited;
  }
}

export async function makeUnderlay(opts: { machines: number; mtu?: number; prefix?: string }): Promise<Underlay> {
  const mtu = opts.mtu ?? DEFAULT_MTU;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000) throw new RangeError(`mtu ${mtu}: 576 to 9000`);
  const prefix = opts.prefix ?? `pwt-m${randomBytes(2).toString('hex')}`;
  const plan = planUnderlay(prefix, opts.machines, subnetFromDraw(randomInt(2048)));
  const children = new Set<ChildProcess>();
  let destroying: Promise<void> | undefined;

  const destroy = () =>
    (destroying ??= (async () => {
      await Promise.all([...children].map((c) => stopChild(c, 2000)));
      // Our own namespaces first, then anything else named with the prefix (a benchmark's
      // pods whose own teardown did not run).
      const errors: unknown[] = [];
      for (const ns of [...plan.machines.map((m) => m.netns), plan.netns]) await deleteNetns(ns).catch((err) => errors.push(err));
      await cleanupStale(prefix).catch((err) => errors.push(err));
      if (errors.length > 0) throw new AggregateError(errors, `underlay ${prefix}: teardown incomplete`);
    })());

  const machine = (m: MachinePlan): Machine => ({
    name: m.name,
    netns: m.netns,
    address: m.address,
    iface: m.iface,
    exec: (argv, o) => runCommand(['ip', 'netns', 'exec', m.netns, ...argv], o?.timeoutMs),
    spawn: (argv, o) => {
      if (destroying !== undefined) throw new Error(`underlay ${prefix} is destroyed: not starting ${argv.join(' ')}`);
      const child = spawn('ip', ['netns', 'exec', m.netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...o, detached: true });
      children.add(child);
      child.once('exit', () => children.delete(child));
      // A program that is missing fails through 'error'; the caller sees it there or by exit code.
      child.once('error', () => children.delete(child));
      return child;
    },
  });

  try {
    await addNetns(plan.netns);
    await ipn(plan.netns, 'link', 'add', plan.bridge, 'mtu', String(mtu), 'type', 'bridge');
    await ipn(plan.netns, 'addr', 'add', `${plan.bridgeAddress}/24`, 'dev', plan.bridge);
    await ipn(plan.netns, 'link', 'set', plan.bridge, 'up');
    for (const m of plan.machines) {
      await addNetns(m.netns);
      // Made from inside the bridge's namespace with the peer put straight into the
      // machine's: neither end ever exists in the root namespace.
      await ipn(plan.netns, 'link', 'add', m.port, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', m.iface, 'mtu', String(mtu), 'netns', m.netns);
      await ipn(plan.netns, 'link', 'set', m.port, 'master', plan.bridge, 'up');
      await ipn(m.netns, 'addr', 'add', `${m.address}/24`, 'dev', m.iface);
      await ipn(m.netns, 'link', 'set', m.iface, 'up');
      await ipn(m.netns, 'route', 'add', 'default', 'via', plan.bridgeAddress, 'dev', m.iface);
    }
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  const machines = plan.machines.map(machine);
  const portOf = new Map(machines.map((m, k) => [m, plan.machines[k].port]));
  return {
    prefix,
    netns: plan.netns,
    bridgeAddress: plan.bridgeAddress,
    cidr: plan.cidr,
    mtu,
    machines,
    partition: async (m, cut) => {
      const port = portOf.get(m);
      if (port === undefined) throw new Error(`${m.name} is not a machine of underlay ${prefix}`);
      await ipn(plan.netns, 'link', 'set', port, cut ? 'down' : 'up');
    },
    destroy,
  };
}
