/**
 * The DNS benchmark: dnsperf against podwire's loopback DNS listener and against dnsmasq,
 * serving the same zone in the same run (10,000 services; queries 90% existing names, 10%
 * NXDOMAIN), plus two stand-ins that say where podwire's time goes:
 *
 *   podwire      the node's loopback listener (src/node/dns-server.ts: the addon's UdpPort,
 *                recvmmsg/sendmmsg batches, where the addon is built; node:dgram otherwise)
 *   dnsmasq      the same names from a hosts file
 *   bare         the same Responder and UdpPort in a process that does nothing else: what
 *                the node's other work and glue cost
 *   dgram echo   node:dgram, one socket, no DNS work: the ceiling of a node:dgram listener
 *
 * Steps:
 * 1. `podwire up` of an empty one-node cluster and of the 10,000-service one, timed.
 * 2. Every DNS server answers a sample of the query file correctly (verify.ts).
 * 3. The Responder alone in this process, on the same queries, no socket: wall time per
 *    answer (benny) and CPU time per answer (comparable with a server's CPU per query).
 * 4. Max qps: dnsperf without -Q, `rounds` rounds, each server once per round, the order
 *    reversed every other round; each server's figure is its median. Neighbours' load on
 *    this shared machine drifts over minutes, so ratios come from runs side by side.
 *    The server process's CPU time per query is read from /proc around every run.
 * 5. Latency: dnsperf -Q at half of podwire's max qps, then at 25,000 qps (half the
 *    50,000 target), with -v for per-query latencies; podwire and dnsmasq each.
 *
 * Everything started is torn down in `finally` and on SIGINT/SIGTERM (and, after a
 * SIGKILL, by the next run: scratch.ts).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { atLeast, atMost, formatNumber, runMicroSuite, sink, type BenchContext, type Figure } from '../harness.js';
import { abortAll, run, stopAllBackground } from '../dataplane/proc.js';
import { dnsperfAvailable, killAllDnsperf, runDnsperf, type DnsperfResult, type DnsperfSummary } from './dnsperf.js';
import { encodeQuery, LOOPBACK_CLIENT, responderFor } from './responder.js';
import { Scratch, removeStale } from './scratch.js';
import { pickClusterNames } from '../cluster-names.js';
import { cpuSeconds, PodwireDns, podwireDown, startDnsmasq, startProto, timeUpDown, type DnsStatusJson, type ProcessServer, type Server } from './servers.js';
import { verifyAnswers, type Expectation } from './verify.js';
import { clusterYaml, DEFAULT_ZONE, hostsFile, querySet, serviceEntries, type ZoneSpec } from './zone.js';

export interface DnsperfBenchOptions {
  /** Seconds of each max-qps run. */
  readonly seconds: number;
  /** Max-qps rounds (each server once per round). */
  readonly rounds: number;
  /** Seconds of each latency run. */
  readonly latencySeconds: number;
  readonly zone: ZoneSpec;
}

export const FULL: DnsperfBenchOptions = { seconds: 10, rounds: 3, latencySeconds: 10, zone: DEFAULT_ZONE };
export const QUICK: DnsperfBenchOptions = { seconds: 3, rounds: 1, latencySeconds: 3, zone: DEFAULT_ZONE };

/** dnsperf's client sockets and queries in flight, the same for every server. */
const CLIENTS = 4;
const OUTSTANDING = 200;
/**
 * Queries in flight at most in the latency runs: enough that -Q, not -q, sets the rate
 * (an open loop, near enough), so a slow answer does not hold the next query back.
 */
const LATENCY_OUTSTANDING = 1000;
/** Seconds of the unrecorded warm-up run against each server (JIT, caches). */
const WARMUP_SECONDS = 2;
/** The issue's targets. */
const TARGET_QPS = 50_000;
const TARGET_P99_MS = 1;
const FIXED_RATE = TARGET_QPS / 2;
/** Answer cache slots of the node (src/dns/answer-cache.ts), and 16 times that. */
const NODE_CACHE_SLOTS = 4096;
const BIG_CACHE_SLOTS = 65_536;
/** Names asked of every server before timing. */
const VERIFY_SAMPLE = 200;

type ServerKey = 'podwire' | 'dnsmasq' | 'bare' | 'echo';
const SERVER_KEYS: readonly ServerKey[] = ['podwire', 'dnsmasq', 'bare', 'echo'];
const LABEL: Readonly<Record<ServerKey, string>> = {
  podwire: 'podwire',
  dnsmasq: 'dnsmasq',
  bare: 'responder + addon UdpPort, bare process',
  echo: 'node:dgram echo, no DNS work',
};

const services = (n: number) => n.toLocaleString('en');

export const NAMES = {
  // "zone", not "services": `npm run bench -- services` means the services module.
  up: (n: number) => `dnsperf: podwire up, ${services(n)}-service zone`,
  upEmpty: 'dnsperf: podwire up, empty zone',
  qps: (k: ServerKey) => `dnsperf: max qps, ${LABEL[k]}`,
  ratio: 'dnsperf: max qps, podwire / dnsmasq',
  bareRatio: 'dnsperf: max qps, bare responder process / dnsmasq',
  cpu: (k: ServerKey) => `dnsperf: server CPU per query, ${LABEL[k]}`,
  p50Half: (k: ServerKey) => `dnsperf: p50 latency at half podwire's max qps, ${LABEL[k]}`,
  p99Half: (k: ServerKey) => `dnsperf: p99 latency at half podwire's max qps, ${LABEL[k]}`,
  p99Ratio: "dnsperf: p99 latency at half podwire's max qps, podwire / dnsmasq",
  p99Fixed: (k: ServerKey) => `dnsperf: p99 latency at ${services(FIXED_RATE)} qps, ${LABEL[k]}`,
  lostFixed: (k: ServerKey) => `dnsperf: queries lost at ${services(FIXED_RATE)} qps, ${LABEL[k]}`,
  responder: (slots: number) => `dnsperf: responder alone, same queries, ${services(slots)}-slot answer cache`,
  responderCpu: (slots: number) => `dnsperf: responder alone, CPU per query, ${services(slots)}-slot answer cache`,
  responderRate: 'dnsperf: responder alone, answers per CPU-second',
  hitRate: "dnsperf: podwire's answer cache hit rate under dnsperf",
  outside: "dnsperf: share of podwire's CPU per query outside the responder",
};

/** Why this machine cannot run the benchmark, or undefined. */
export async function whyCannotRun(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (podwire up creates network namespaces)';
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return 'needs /dev/net/tun';
  }
  if (!(await dnsperfAvailable())) return 'needs dnsperf (apt-get install -y dnsperf, or scripts/setup.sh)';
  try {
    await run(['dnsmasq', '--version']);
  } catch {
    return 'needs dnsmasq (apt-get install -y dnsmasq-base, or scripts/setup.sh)';
  }
  try {
    await run(['ip', 'netns', 'list']);
  } catch {
    return 'needs iproute2 with network namespace support';
  }
  return undefined;
}

/** One dnsperf run against one server, with what the server spent. */
interface Measurement {
  readonly dnsperf: DnsperfResult;
  /** Server CPU seconds per answered query, in µs. */
  readonly cpuPerQueryUs: number;
  /** Server CPU over the run, in cores. */
  readonly serverCores: number;
  /**
   * UDP datagrams the kernel dropped for a full socket receive buffer during the run
   * (/proc/net/snmp RcvbufErrors: the whole network namespace, so neighbours' drops too).
   */
  readonly rcvbufDrops: number;
  /** podwire only: its DNS counters over the run. */
  readonly podwire?: { readonly received: number; readonly hits: number; readonly misses: number };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Throws unless the answers are what the query file asks for: only NOERROR and NXDOMAIN, in its proportions. */
function checkMix(label: string, s: DnsperfSummary, nxShare: number): void {
  const other = Object.entries(s.rcodes).filter(([code, n]) => code !== 'NOERROR' && code !== 'NXDOMAIN' && n > 0);
  if (other.length > 0) throw new Error(`${label}: unexpected answers ${other.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  const nx = (s.rcodes.NXDOMAIN ?? 0) / Math.max(1, s.completed);
  if (s.completed > 1000 && Math.abs(nx - nxShare) > 0.02) throw new Error(`${label}: ${(100 * nx).toFixed(1)}% NXDOMAIN, the query file has ${(100 * nxShare).toFixed(0)}%`);
}

function describe(m: Measurement): string {
  const s = m.dnsperf.summary;
  const p = m.dnsperf.percentiles;
  const pw = m.podwire;
  const parts = [
    `${formatNumber(s.qps)} qps`,
    `${s.completed}/${s.sent} answered (${s.lost} lost; kernel receive-buffer drops ${m.rcvbufDrops})`,
    p !== undefined
      ? `latency p50 ${p.p50Ms.toFixed(3)} / p90 ${p.p90Ms.toFixed(3)} / p99 ${p.p99Ms.toFixed(3)} / p99.9 ${p.p999Ms.toFixed(3)} / max ${p.maxMs.toFixed(1)} ms`
      : `latency avg ${s.avgLatencyMs.toFixed(3)} ms (sd ${s.stddevLatencyMs.toFixed(3)})`,
    `server ${m.serverCores.toFixed(2)} cores, ${m.cpuPerQueryUs.toFixed(1)} µs CPU/query`,
    `dnsperf ${(m.dnsperf.clientCpuSeconds / s.runSeconds).toFixed(2)} cores`,
  ];
  if (pw !== undefined) {
    const hitRate = pw.hits + pw.misses > 0 ? (100 * pw.hits) / (pw.hits + pw.misses) : NaN;
    parts.push(`node read ${pw.received} (${s.sent - pw.received} never reached it), answer cache ${hitRate.toFixed(0)}% hits`);
  }
  return parts.join(', ');
}

/** Everything a run started, removed once, whatever failed. */
class Owned {
  servers: ProcessServer[] = [];
  cluster: { name: string; stateDir: string } | undefined;
  private released: Promise<void> | undefined;

  constructor(
    readonly scratch: Scratch,
    private readonly log: (line: string) => void,
  ) {}

  /** Idempotent; never throws (problems are logged). */
  release(): Promise<void> {
    return (this.released ??= (async () => {
      killAllDnsperf();
      await Promise.all(this.servers.map((s) => s.stop()));
      await stopAllBackground();
      if (this.cluster !== undefined) {
        const problem = await podwireDown(this.cluster.name, this.cluster.stateDir);
        if (problem !== undefined) this.log(`  teardown: podwire down ${this.cluster.name}: ${problem}`);
      }
      this.scratch.remove();
    })());
  }
}

/** Every figure the dnsperf runs produce (the responder's aside). */
function serverFigureNames(zone: ZoneSpec): string[] {
  const latencyKeys = ['podwire', 'dnsmasq'] as const;
  return [
    NAMES.up(zone.services),
    NAMES.upEmpty,
    NAMES.ratio,
    NAMES.bareRatio,
    NAMES.hitRate,
    NAMES.outside,
    NAMES.p99Ratio,
    ...SERVER_KEYS.flatMap((k) => [NAMES.qps(k), NAMES.cpu(k)]),
    ...latencyKeys.flatMap((k) => [NAMES.p50Half(k), NAMES.p99Half(k), NAMES.p99Fixed(k), NAMES.lostFixed(k)]),
  ];
}

const RESPONDER_FIGURES = [NODE_CACHE_SLOTS, BIG_CACHE_SLOTS].flatMap((slots) => [NAMES.responder(slots), NAMES.responderCpu(slots)]).concat(NAMES.responderRate);

/**
 * Runs the benchmark; [] with a logged reason when this machine cannot. When the filter
 * selects only the responder's figures, only the in-process part runs (no root needed).
 */
export async function runDnsperfBench(ctx: BenchContext, options: DnsperfBenchOptions): Promise<Figure[]> {
  const { log } = ctx;
  const wantServers = serverFigureNames(options.zone).some((n) => ctx.selects(n));
  if (!wantServers) {
    if (!RESPONDER_FIGURES.some((n) => ctx.selects(n))) return [];
    const scratch = new Scratch();
    try {
      const entries = serviceEntries(options.zone.services);
      const yamlFile = scratch.write('cluster.yaml', clusterYaml('pwdns', entries));
      const { figures } = await responderAlone(ctx, yamlFile, querySet(options.zone, entries).names);
      return figures.filter((f) => ctx.selects(f.name));
    } finally {
      scratch.remove();
    }
  }
  const reason = await whyCannotRun();
  if (reason !== undefined) {
    log(`  (no dnsperf figures: ${reason})`);
    return [];
  }
  await removeStale(log);
  const load = () => loadavg()[0].toFixed(1);
  log(`  ${cpus().length} CPUs, load average ${load()} at start; ${options.rounds} round(s) of ${options.seconds} s max-qps runs, ${options.latencySeconds} s latency runs`);
  const owned = new Owned(new Scratch(), log);
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n  ${signal}: tearing down`);
    killAllDnsperf();
    void abortAll()
      .then(() => owned.release())
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const figures = await measure(ctx, options, owned);
    log(`  load average ${load()} at the end: on a shared machine read the ratios, each measured side by side`);
    return figures.filter((f) => ctx.selects(f.name));
  } finally {
    await owned.release();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

async function measure(ctx: BenchContext, options: DnsperfBenchOptions, owned: Owned): Promise<Figure[]> {
  const { log } = ctx;
  const { zone } = options;
  const { scratch } = owned;
  const figures: Figure[] = [];

  // The zone, three ways.
  const entries = serviceEntries(zone.services);
  const queries = querySet(zone, entries);
  const [name, emptyName] = pickClusterNames([`pwdns${process.pid}`, `pwdns${process.pid}e`]);
  const yamlFile = scratch.write('cluster.yaml', clusterYaml(name, entries));
  const emptyYaml = scratch.write('empty.yaml', clusterYaml(emptyName, []));
  const hosts = scratch.write('hosts', hostsFile(entries));
  const dataFile = scratch.write('queries.txt', queries.text);
  const stateDir = scratch.file('state');
  log(`  zone: ${services(entries.length)} services; query file: ${services(queries.names.length)} lines, ${services(queries.existing)} existing names, ${services(queries.nonexistent)} NXDOMAIN`);

  // 1. podwire up, timed: an empty cluster (the fixed cost), then the zone's.
  owned.cluster = { name: emptyName, stateDir };
  scratch.noteCluster(emptyName, stateDir);
  const emptyUp = await timeUpDown(emptyName, stateDir, emptyYaml);
  owned.cluster = { name, stateDir };
  scratch.noteCluster(name, stateDir);
  const podwire = await PodwireDns.up(name, stateDir, yamlFile);
  log(`  podwire up --name ${name}: ${podwire.upSeconds.toFixed(1)} s with ${services(entries.length)} services (${emptyUp.toFixed(1)} s with none); node pid ${podwire.pid}, DNS on ${podwire.address}:${podwire.port}`);
  figures.push({ name: NAMES.up(entries.length), value: round(podwire.upSeconds, 2), unit: 's' }, { name: NAMES.upEmpty, value: round(emptyUp, 2), unit: 's' });

  const started = async (server: Promise<ProcessServer>): Promise<ProcessServer> => {
    const s = await server;
    owned.servers.push(s);
    scratch.notePid(s.pid);
    return s;
  };
  const dnsmasq = await started(startDnsmasq(hosts, entries.length));
  const version = (await run(['dnsmasq', '--version'])).split('\n')[0];
  log(`  ${version}: pid ${dnsmasq.pid} on ${dnsmasq.address}:${dnsmasq.port}`);
  const servers: Partial<Record<ServerKey, Server>> = { podwire, dnsmasq };
  for (const [key, io] of [['bare', 'addon'], ['echo', 'echo']] as const) {
    try {
      servers[key] = await started(startProto(io, LABEL[key], yamlFile));
      log(`  ${LABEL[key]}: pid ${servers[key]!.pid} on ${LOOPBACK_ADDRESS}:${servers[key]!.port}`);
    } catch (err) {
      log(`  (no ${LABEL[key]}: ${(err as Error).message})`);
    }
  }

  // 2. Correct answers first.
  const ipOf = new Map(entries.map((e) => [e.fqdn, e.ip]));
  const sample: Expectation[] = queries.names.slice(0, VERIFY_SAMPLE).map((n) => ({ name: n, ip: ipOf.get(n) }));
  const verified: string[] = [];
  for (const key of ['podwire', 'dnsmasq', 'bare'] as const) {
    const server = servers[key];
    if (server === undefined) continue;
    await verifyAnswers(server, sample);
    verified.push(LABEL[key]);
  }
  log(`  ${verified.join(', ')}: the right answer to each of ${VERIFY_SAMPLE} names of the query file (clusterIP or NXDOMAIN)`);

  // 3. The responder alone.
  const responderFigures = await responderAlone(ctx, yamlFile, queries.names);
  figures.push(...responderFigures.figures);

  // 4. Max qps, side by side.
  const outputFile = scratch.file('dnsperf.out');
  const measureOne = async (key: ServerKey, seconds: number, rate?: number, latencies = false): Promise<Measurement> => {
    const server = servers[key]!;
    const before = key === 'podwire' ? await podwire.dnsStatus() : undefined;
    const drops0 = udpRcvbufErrors();
    const cpu0 = cpuSeconds(server);
    const dnsperf = await runDnsperf({
      server: server.address,
      port: server.port,
      dataFile,
      seconds,
      clients: CLIENTS,
      outstanding: rate === undefined ? OUTSTANDING : LATENCY_OUTSTANDING,
      ...(rate !== undefined && { rate }),
      latencies,
    }, outputFile);
    const cpu = cpuSeconds(server) - cpu0;
    const rcvbufDrops = udpRcvbufErrors() - drops0;
    const s = dnsperf.summary;
    if (key !== 'echo') checkMix(LABEL[key], s, zone.nxShare);
    const m: Measurement = { dnsperf, cpuPerQueryUs: (cpu / Math.max(1, s.completed)) * 1e6, serverCores: cpu / s.runSeconds, rcvbufDrops };
    if (before === undefined) return m;
    const after = await podwire.dnsStatus();
    return { ...m, podwire: counterDelta(before, after) };
  };

  const present = SERVER_KEYS.filter((k) => servers[k] !== undefined);
  log(`  warm-up: ${WARMUP_SECONDS} s of dnsperf against each server, not recorded`);
  for (const key of present) await measureOne(key, WARMUP_SECONDS);

  const runs: Record<ServerKey, Measurement[]> = { podwire: [], dnsmasq: [], bare: [], echo: [] };
  const ratios: number[] = [];
  for (let r = 0; r < options.rounds; r++) {
    log(`  max qps, round ${r + 1}/${options.rounds}: dnsperf -c ${CLIENTS} -q ${OUTSTANDING} -l ${options.seconds}, no -Q`);
    const order = r % 2 === 0 ? present : [...present].reverse();
    for (const key of order) {
      const m = await measureOne(key, options.seconds);
      runs[key].push(m);
      log(`    ${LABEL[key].padEnd(42)} ${describe(m)}`);
    }
    ratios.push(runs.podwire[r].dnsperf.summary.qps / runs.dnsmasq[r].dnsperf.summary.qps);
  }
  const maxQps = (k: ServerKey) => median(runs[k].map((m) => m.dnsperf.summary.qps));
  const cpuPerQuery = (k: ServerKey) => median(runs[k].map((m) => m.cpuPerQueryUs));
  for (const key of present) {
    figures.push({ name: NAMES.qps(key), value: Math.round(maxQps(key)), unit: 'qps', ...(key === 'podwire' && { target: atLeast(TARGET_QPS) }) });
  }
  figures.push({ name: NAMES.ratio, value: round(median(ratios), 2), unit: '×', target: atLeast(1) });
  if (runs.bare.length > 0) {
    figures.push({ name: NAMES.bareRatio, value: round(median(runs.bare.map((m, i) => m.dnsperf.summary.qps / runs.dnsmasq[i].dnsperf.summary.qps)), 2), unit: '×' });
  }
  for (const key of present) figures.push({ name: NAMES.cpu(key), value: round(cpuPerQuery(key), 3), unit: 'µs' });
  const pw = runs.podwire.map((m) => m.podwire!);
  const hits = pw.reduce((a, p) => a + p.hits, 0);
  const lookups = pw.reduce((a, p) => a + p.hits + p.misses, 0);
  figures.push({ name: NAMES.hitRate, value: round((100 * hits) / Math.max(1, lookups), 1), unit: '%' });
  const responderUs = responderFigures.nodeCacheCpuUs;
  figures.push({ name: NAMES.outside, value: round(100 * (1 - responderUs / cpuPerQuery('podwire')), 1), unit: '%' });
  log(
    `  podwire spends ${cpuPerQuery('podwire').toFixed(1)} µs of CPU per query end to end (${formatNumber(1e6 / cpuPerQuery('podwire'))} qps per core; dnsmasq ${formatNumber(1e6 / cpuPerQuery('dnsmasq'))}); ` +
      `the responder alone takes ${responderUs.toFixed(2)} µs of it (${((100 * responderUs) / cpuPerQuery('podwire')).toFixed(0)}%; ${formatNumber(1e6 / responderUs)} answers per CPU-second): the rest is the socket path and the event loop (receive, send, wake-ups, GC)` +
      (servers.bare !== undefined ? `; the same responder and socket in a bare process cost ${cpuPerQuery('bare').toFixed(1)} µs` : '') +
      (servers.echo !== undefined ? `; a node:dgram echo costs ${cpuPerQuery('echo').toFixed(1)} µs per query with no DNS work at all` : ''),
  );

  // 5. Latency at fixed rates.
  const half = Math.round(maxQps('podwire') / 2);
  const latency: Partial<Record<'half' | 'fixed', Partial<Record<ServerKey, Measurement>>>> = {};
  for (const [which, rate] of [['half', half], ['fixed', FIXED_RATE]] as const) {
    log(`  latency at ${services(rate)} qps (${which === 'half' ? "half podwire's max" : `half the ${services(TARGET_QPS)} target`}): dnsperf -c ${CLIENTS} -q ${LATENCY_OUTSTANDING} -Q ${rate} -v -l ${options.latencySeconds}`);
    const got: Partial<Record<ServerKey, Measurement>> = {};
    for (const key of ['podwire', 'dnsmasq'] as const) {
      got[key] = await measureOne(key, options.latencySeconds, rate, true);
      log(`    ${LABEL[key].padEnd(42)} ${describe(got[key]!)}`);
    }
    latency[which] = got;
  }
  for (const key of ['podwire', 'dnsmasq'] as const) {
    const h = latency.half![key]!.dnsperf;
    const f = latency.fixed![key]!.dnsperf;
    figures.push(
      { name: NAMES.p50Half(key), value: round(h.percentiles!.p50Ms, 3), unit: 'ms' },
      { name: NAMES.p99Half(key), value: round(h.percentiles!.p99Ms, 3), unit: 'ms', ...(key === 'podwire' && { target: atMost(TARGET_P99_MS) }) },
      { name: NAMES.p99Fixed(key), value: round(f.percentiles!.p99Ms, 3), unit: 'ms' },
      { name: NAMES.lostFixed(key), value: round((100 * f.summary.lost) / Math.max(1, f.summary.sent), 2), unit: '%' },
    );
  }
  const p99 = (k: ServerKey) => latency.half![k]!.dnsperf.percentiles!.p99Ms;
  figures.push({ name: NAMES.p99Ratio, value: round(p99('podwire') / p99('dnsmasq'), 2), unit: '×' });
  log(`\n${renderTable(runs, ratios, latency, half)}`);
  return figures;
}

const LOOPBACK_ADDRESS = '127.0.0.1';

/** Udp RcvbufErrors of /proc/net/snmp (this network namespace). */
function udpRcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp: '));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? NaN);
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

function counterDelta(before: DnsStatusJson, after: DnsStatusJson): { received: number; hits: number; misses: number } {
  return {
    received: after.queries - before.queries,
    hits: after.answerCache.hits - before.answerCache.hits,
    misses: after.answerCache.misses - before.answerCache.misses,
  };
}

/** Passes over the whole query file timed by CPU time, after the benny suite has warmed the code. */
const CPU_PASSES = 5;

/**
 * The Responder in this process on the queries dnsperf sends, in the same order, one core,
 * no socket: with the node's answer cache (4096 slots, direct-mapped; the zone plus the
 * NXDOMAIN names are 11,000 questions, so most miss) and with one 16 times larger.
 *
 * Timed twice: by benny (wall time, the harness's ns/op figures), and by this process's
 * CPU time over whole passes of the file (`process.cpuUsage`, every thread, as /proc
 * counts a server's). The second is what compares with a server's CPU per query: CPU time
 * does not count the time a neighbour had the core, wall time does.
 */
async function responderAlone(ctx: BenchContext, yamlFile: string, names: readonly string[]): Promise<{ figures: Figure[]; nodeCacheCpuUs: number }> {
  const batch = 1024;
  const packets = names.map((n, i) => encodeQuery(n, i & 0xffff));
  const out = Buffer.alloc(4096);
  const cases = [NODE_CACHE_SLOTS, BIG_CACHE_SLOTS].map((slots) => {
    const responder = responderFor(yamlFile, { cacheSlots: slots });
    let cursor = 0;
    return {
      slots,
      responder,
      case: {
        name: NAMES.responder(slots),
        run: () => {
          let acc = 0;
          for (let i = 0; i < batch; i++) {
            const q = packets[cursor];
            cursor = cursor + 1 === packets.length ? 0 : cursor + 1;
            acc += responder.respond(q, 0, q.length, LOOPBACK_CLIENT, out, 0).length;
          }
          sink.value = acc;
        },
      },
    };
  });
  // Correctness first: every query gets an answer.
  for (const c of cases) {
    for (const q of packets.slice(0, 2000)) {
      if (c.responder.respond(q, 0, q.length, LOOPBACK_CLIENT, out, 0).action !== 'answer') throw new Error('dnsperf bench: the responder does not answer a query of the file');
    }
  }
  // The suite's figures are wanted whenever the module runs: the socket share needs them.
  const timed = await runMicroSuite({ ...ctx, selects: () => true }, { name: 'dnsperf-responder', opsPerCall: batch, unit: 'ns/query', cases: cases.map((c) => c.case) });
  const figures: Figure[] = [...timed];
  const cpu = new Map<number, number>();
  for (const c of cases) {
    const r = c.responder;
    r.counters.reset();
    const perPass: number[] = [];
    for (let pass = 0; pass < CPU_PASSES; pass++) {
      const before = process.cpuUsage();
      let acc = 0;
      for (const q of packets) acc += r.respond(q, 0, q.length, LOOPBACK_CLIENT, out, 0).length;
      sink.value = acc;
      const used = process.cpuUsage(before);
      perPass.push((used.user + used.system) / packets.length);
    }
    const k = r.counters;
    const hitRate = (100 * k.answerCacheHits) / Math.max(1, k.answerCacheHits + k.answerCacheMisses);
    cpu.set(c.slots, median(perPass));
    ctx.log(`  responder alone, ${services(c.slots)}-slot cache: ${median(perPass).toFixed(2)} µs CPU per query (passes: ${perPass.map((x) => x.toFixed(2)).join(', ')}), ${hitRate.toFixed(0)}% answer cache hits`);
    figures.push({ name: NAMES.responderCpu(c.slots), value: round(median(perPass), 3), unit: 'µs' });
  }
  const nodeCacheCpuUs = cpu.get(NODE_CACHE_SLOTS)!;
  figures.push({ name: NAMES.responderRate, value: Math.round(1e6 / nodeCacheCpuUs), unit: 'answers/s' });
  return { figures, nodeCacheCpuUs };
}

function renderTable(
  runs: Readonly<Record<ServerKey, Measurement[]>>,
  ratios: readonly number[],
  latency: Partial<Record<'half' | 'fixed', Partial<Record<ServerKey, Measurement>>>>,
  half: number,
): string {
  const pct = (m: Measurement | undefined) => (m?.dnsperf.percentiles === undefined ? '-' : `${m.dnsperf.percentiles.p50Ms.toFixed(3)} / ${m.dnsperf.percentiles.p99Ms.toFixed(3)}`);
  const rows = SERVER_KEYS.filter((k) => runs[k].length > 0).map((k) => {
    const qps = runs[k].map((m) => formatNumber(m.dnsperf.summary.qps)).join(', ');
    return `| ${LABEL[k]} | ${formatNumber(median(runs[k].map((m) => m.dnsperf.summary.qps)))} (${qps}) | ${median(runs[k].map((m) => m.cpuPerQueryUs)).toFixed(1)} | ${median(runs[k].map((m) => m.serverCores)).toFixed(2)} | ${pct(latency.half?.[k])} | ${pct(latency.fixed?.[k])} |`;
  });
  return [
    `| server | max qps, median (runs) | CPU µs/query | server cores | p50 / p99 ms at ${services(half)} qps | p50 / p99 ms at ${services(FIXED_RATE)} qps |`,
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `podwire / dnsmasq max qps per round: ${ratios.map((r) => r.toFixed(2)).join(', ')} (target ≥ 1); podwire max ${formatNumber(median(runs.podwire.map((m) => m.dnsperf.summary.qps)))} qps (target ≥ ${services(TARGET_QPS)}); ` +
      `p99 at half load ${latency.half?.podwire?.dnsperf.percentiles?.p99Ms.toFixed(3) ?? '-'} ms (target < ${TARGET_P99_MS} ms)`,
  ].join('\n');
}
