/**
 * Kernel plumbing for pods: network namespaces and the links inside them, through
 * iproute2. This is the only place podwire changes the kernel's network configuration,
 * and it only ever touches namespaces it created (names start with `pw-`) and links inside
 * them; nothing is added to the root namespace.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class CommandError extends Error {
  constructor(
    readonly command: string[],
    readonly stderr: string,
  ) {
    super(`${command.join(' ')}: ${stderr.trim() || 'failed'}`);
  }
}

/** Runs a command, returning stdout; a failure carries the command line and its stderr. */
export async function sh(command: string[]): Promise<string> {
  try {
    const { stdout } = await run(command[0], command.slice(1), { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CommandError(command, e.stderr ?? e.message);
  }
}

export async function ip(...args: string[]): Promise<string> {
  return sh(['ip', ...args]);
}

export async function createNamespace(name: string): Promise<void> {
  await ip('netns', 'add', name);
  await ip('-n', name, 'link', 'set', 'lo', 'up');
}

export async function listNamespaces(prefix: string): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name.startsWith(prefix));
}

/** Pids of processes whose network namespace is `name` (`ip netns pids`). */
export async function namespacePids(name: string): Promise<number[]> {
  try {
    const out = await ip('netns', 'pids', name);
    return out.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Ends every process left in the namespace (they were started by podwire in a namespace
 * podwire created), removes it and its /etc/netns directory. Safe on a missing namespace.
 */
export async function destroyNamespace(name: string): Promise<void> {
  for (const pid of await namespacePids(name)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  try {
    await ip('netns', 'del', name);
  } catch (err) {
    if (!String((err as Error).message).includes('No such file')) throw err;
  }
  await fs.rm(`/etc/netns/${name}`, { recursive: true, force: true });
}

/** Largest super-frame a pod may send: 65507 (UDP payload) - 8 (VXLAN) - 14 (Ethernet), rounded down. */
export const GSO_MAX_SIZE = 65000;

/**
 * Frames the pod's eth0 queues for the node process: the TAP's ring, which is what a NIC's
 * receive ring is to a userspace dataplane. The kernel's 1000 hold 3.3 ms of a 300k pps
 * flow, less than one scheduler slice on a busy 2-core machine: a node process preempted
 * for that long lost 5-13% of a paced 300k pps flood, all of it here (the pod's
 * tx_dropped). 10000 hold 33 ms. TCP never fills it (TSQ caps what a socket queues below
 * itself), so only an overload that outlasts the ring waits in it.
 */
export const POD_TX_QUEUE_LENGTH = 10_000;

export interface PodInterface {
  /** Name of the TAP in the root namespace, as the node process created it. */
  tapName: string;
  namespace: string;
  mac: string;
  address: string;
  prefix: number;
  gateway: string;
  mtu: number;
}

/** Moves the TAP into the pod's namespace as eth0 and gives it the pod's addresses. */
export async function plumbPodInterface(pod: PodInterface): Promise<void> {
  const ns = pod.namespace;
  await ip('link', 'set', pod.tapName, 'netns', ns);
  await ip('-n', ns, 'link', 'set', pod.tapName, 'name', 'eth0');
  // gso_max_size keeps a super-frame plus VXLAN and inner Ethernet headers inside one
  // 64 KiB UDP datagram on the loopback underlay.
  await ip('-n', ns, 'link', 'set', 'eth0', 'address', pod.mac, 'mtu', String(pod.mtu), 'gso_max_size', String(GSO_MAX_SIZE), 'txqueuelen', String(POD_TX_QUEUE_LENGTH));
  await ip('-n', ns, 'addr', 'add', `${pod.address}/${pod.prefix}`, 'dev', 'eth0');
  await ip('-n', ns, 'link', 'set', 'eth0', 'up');
  await ip('-n', ns, 'route', 'add', 'default', 'via', pod.gateway, 'dev', 'eth0');
}

/** Writes /etc/netns/<ns>/resolv.conf, which `ip netns exec` bind-mounts over /etc/resolv.conf. */
export async function writeResolvConf(namespace: string, text: string): Promise<void> {
  const dir = `/etc/netns/${namespace}`;
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(`${dir}/resolv.conf`, text);
}

/** Starts `argv` inside the namespace (with its /etc/netns files bind-mounted). */
export function spawnInNamespace(namespace: string, argv: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', namespace, ...argv], options);
}

/**
 * TCP ports in LISTEN state inside `namespace`, read from /proc/<pid>/net/tcp{,6} of one of
 * `pids` that lives in it: no child process, so the node never forks its large heap (a
 * fork stalls the dataplane for milliseconds). A pid still on its way in (`ip netns exec`
 * has not switched yet) would show the root namespace's sockets, so each pid's namespace
 * is checked against the named one first. Empty when no pid is in the namespace.
 */
export async function listeningTcpPorts(namespace: string, pids: readonly number[]): Promise<Set<number>> {
  const want = await fs.stat(`/run/netns/${namespace}`);
  for (const pid of pids) {
    try {
      const ns = await fs.stat(`/proc/${pid}/ns/net`);
      if (ns.ino !== want.ino || ns.dev !== want.dev) continue;
      const [v4, v6] = await Promise.all([fs.readFile(`/proc/${pid}/net/tcp`, 'latin1'), fs.readFile(`/proc/${pid}/net/tcp6`, 'latin1').catch(() => '')]);
      return new Set([...tcpListeners(v4), ...tcpListeners(v6)]);
    } catch {
      // The process exited meanwhile: try the next one.
    }
  }
  return new Set();
}

const TCP_LISTEN = '0A';

/** Local ports of the LISTEN sockets in a /proc/net/tcp or tcp6 table. */
export function tcpListeners(table: string): number[] {
  const ports: number[] = [];
  for (const line of table.split('\n')) {
    // "  0: 00000000:0050 00000000:0000 0A ...": slot, local, remote, state.
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== TCP_LISTEN) continue;
    const local = fields[1];
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (Number.isInteger(port) && port > 0 && port < 65536) ports.push(port);
  }
  return ports;
}
