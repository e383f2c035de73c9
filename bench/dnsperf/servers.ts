/**
 * The servers dnsperf is pointed at, all on loopback:
 *
 * - podwire: a one-node cluster started through the podwire command as a user would
 *   (`podwire up -f FILE --name NAME --state-dir DIR --detach`); its DNS listener's port
 *   and the node's pid come from `podwire status --json`, and `podwire down` ends it;
 * - dnsmasq serving the same names from a hosts file, NXDOMAIN for the rest of
 *   cluster.local (`--local=/cluster.local/`), no upstream, no /etc/hosts;
 * - the stand-ins of proto-server.ts (the Responder over the addon's UdpPort, and a
 *   node:dgram echo).
 *
 * Every process is an argv array, never a shell string. Background processes are
 * proc.ts's, so an abort ends them by pid.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Background, listening, processCpu, run, waitUntil, type RunOptions } from '../dataplane/proc.js';
import { CLUSTER_DOMAIN } from './zone.js';

/** dist/bench/dnsperf/servers.js -> dist/src/cli/main.js */
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PROTO_SERVER = fileURLToPath(new URL('./proto-server.js', import.meta.url));
export const LOOPBACK = '127.0.0.1';

/** A DNS server under test. */
export interface Server {
  /** Short label in figures and the log. */
  readonly label: string;
  readonly address: string;
  readonly port: number;
  /** The process that answers (its CPU time is the server's cost). */
  readonly pid: number;
}

/** CPU seconds (user + system, every thread) the server's process has used so far. */
export function cpuSeconds(server: Server): number {
  return processCpu(server.pid).cpuUs / 1e6;
}

// ---------------------------------------------------------------------------------------
// podwire

/** The parts of `podwire status --json` read here. */
interface StatusJson {
  running: boolean;
  nodes: { name: string; state: string; pid?: number; detail?: { dns?: DnsStatusJson } }[];
}

export interface DnsStatusJson {
  port: number;
  queries: number;
  rcodes: Record<string, number>;
  answerCache: { hits: number; misses: number; entries: number };
  dropped: Record<string, number>;
}

function podwire(name: string, stateDir: string, args: string[], options: RunOptions = {}): Promise<string> {
  return run([process.execPath, CLI, ...args, '--name', name, '--state-dir', stateDir], options);
}

/**
 * An idempotent podwire command, again after a failure: the CLI is loaded afresh from a
 * dist/ that others on this machine may be rebuilding, and a call that lands mid-rebuild
 * fails to import (the node process is not affected).
 */
async function podwireRetrying(name: string, stateDir: string, args: string[], options: RunOptions = {}): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await podwire(name, stateDir, args, options);
    } catch (err) {
      if (attempt === 3) throw err;
      await sleep(1000);
    }
  }
}

export class PodwireDns implements Server {
  readonly label = 'podwire';
  readonly address = LOOPBACK;

  private constructor(
    readonly name: string,
    readonly stateDir: string,
    readonly port: number,
    readonly pid: number,
    /** Seconds `podwire up` took. */
    readonly upSeconds: number,
  ) {}

  /** Runs `podwire up --detach` and reads the node's DNS port and pid. */
  static async up(name: string, stateDir: string, yamlFile: string): Promise<PodwireDns> {
    const started = performance.now();
    await podwire(name, stateDir, ['up', '-f', yamlFile, '--detach'], { timeoutMs: 300_000 });
    const upSeconds = (performance.now() - started) / 1000;
    const { node, dns } = await readNode(name, stateDir);
    return new PodwireDns(name, stateDir, dns.port, node.pid!, upSeconds);
  }

  /** The node's DNS counters now. */
  async dnsStatus(): Promise<DnsStatusJson> {
    return (await readNode(this.name, this.stateDir)).dns;
  }
}

async function readNode(name: string, stateDir: string): Promise<{ node: StatusJson['nodes'][number]; dns: DnsStatusJson }> {
  const status = JSON.parse(await podwireRetrying(name, stateDir, ['status', '--json'])) as StatusJson;
  if (!status.running) throw new Error(`podwire: cluster ${name} is not running`);
  const node = status.nodes[0];
  if (node?.state !== 'up' || node.pid === undefined) throw new Error(`podwire: node ${node?.name ?? '?'} is ${node?.state ?? 'missing'}`);
  const dns = node.detail?.dns;
  if (dns === undefined || !(dns.port > 0)) throw new Error(`podwire: node ${node.name} shows no DNS listener in its status`);
  return { node, dns };
}

/** `podwire up` then `podwire down` of `yamlFile`; resolves with the seconds `up` took. */
export async function timeUpDown(name: string, stateDir: string, yamlFile: string): Promise<number> {
  try {
    return (await PodwireDns.up(name, stateDir, yamlFile)).upSeconds;
  } finally {
    const problem = await podwireDown(name, stateDir);
    if (problem !== undefined) throw new Error(`podwire down ${name}: ${problem}`);
  }
}

/** `podwire down`; never throws (it runs in teardown), returns what went wrong. */
export async function podwireDown(name: string, stateDir: string): Promise<string | undefined> {
  try {
    await podwireRetrying(name, stateDir, ['down'], { teardown: true });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// ---------------------------------------------------------------------------------------
// Processes started here

/** A background server process of ours: dnsmasq or a proto-server. */
export class ProcessServer implements Server {
  constructor(
    readonly label: string,
    readonly address: string,
    readonly port: number,
    private readonly process: Background,
  ) {}

  get pid(): number {
    return this.process.pid;
  }

  stop(): Promise<void> {
    return this.process.stop();
  }
}

/** A port free for both UDP and TCP on loopback now (dnsmasq binds both). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, LOOPBACK, () => resolve(udp.address().port));
    });
    const tcp = createServer();
    const free = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, LOOPBACK, () => resolve(true));
    });
    await new Promise<void>((resolve) => (free ? tcp.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (free) return port;
  }
  throw new Error('no free loopback port for dnsmasq');
}

/** dnsmasq's argv: the names of `hostsFile`, NXDOMAIN for the rest of the cluster domain. */
export function dnsmasqArgv(hostsFile: string, port: number, entries: number): string[] {
  return [
    'dnsmasq',
    '--keep-in-foreground',
    '--conf-file=/dev/null', // not /etc/dnsmasq.conf
    '--pid-file=', // no pid file
    '--no-resolv', // no upstream servers...
    '--no-hosts', // ...and no /etc/hosts: only the benchmark's names
    `--addn-hosts=${hostsFile}`,
    `--local=/${CLUSTER_DOMAIN}/`, // names of the domain not in the hosts file: NXDOMAIN, not forwarded
    `--listen-address=${LOOPBACK}`,
    '--bind-interfaces',
    `--port=${port}`,
    // Hosts-file names live in the cache without counting against it; the size is for
    // anything else (nothing here), capped at dnsmasq's recommended 10,000.
    `--cache-size=${Math.min(entries, 10_000)}`,
    '--local-ttl=30', // the TTL podwire gives
    '--log-facility=-',
  ];
}

export async function startDnsmasq(hostsFile: string, entries: number): Promise<ProcessServer> {
  const port = await freePort();
  const process = new Background(dnsmasqArgv(hostsFile, port, entries));
  try {
    await waitUntil(`dnsmasq on ${LOOPBACK}:${port}`, () => {
      if (process.errorOutput.includes('FAILED') || process.errorOutput.includes('failed')) throw new Error(`dnsmasq: ${process.errorOutput.trim()}`);
      return listening(process.pid, 'udp', port) && process.errorOutput.includes(' names');
    });
  } catch (err) {
    await process.stop();
    throw err;
  }
  return new ProcessServer('dnsmasq', LOOPBACK, port, process);
}

/** A proto-server.ts stand-in; `yamlFile` is the zone (and marks the process as this run's). */
export async function startProto(io: 'addon' | 'echo', label: string, yamlFile: string): Promise<ProcessServer> {
  const process = new Background([globalThis.process.execPath, PROTO_SERVER, '--io', io, '--yaml', yamlFile]);
  try {
    await process.waitForOutput('listening ', 60_000);
  } catch (err) {
    await process.stop();
    throw new Error(`${label}: ${(err as Error).message}${process.errorOutput === '' ? '' : `: ${process.errorOutput.trim()}`}`);
  }
  const port = Number(/listening (\d+)/.exec(process.output)?.[1]);
  return new ProcessServer(label, LOOPBACK, port, process);
}
