/**
 * Driving dnsperf (2.10, from the Debian package) and reading what it prints.
 *
 * dnsperf 2.10 has no latency histogram (`-O latency-histogram` came later), so
 * percentiles come from `-v`, which prints one line per answered query:
 *
 *     > NOERROR svc-2509.default.svc.cluster.local A 0.000095
 *
 * (rcode, the query line, latency in seconds with microsecond resolution). dnsperf writes
 * to a file, read line by line into a Float64Array after it exits: at 30k qps a 10-second
 * run is 300,000 lines.
 *
 * dnsperf's own CPU time is sampled from /proc while it runs (the last sample before it
 * exits): whether the load generator, not the server, was the limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { processCpu } from '../dataplane/proc.js';

export interface DnsperfOptions {
  readonly server: string;
  readonly port: number;
  /** The data file: `NAME TYPE` per line. */
  readonly dataFile: string;
  readonly seconds: number;
  /** `-c`: client sockets. */
  readonly clients: number;
  /** `-q`: queries outstanding at most. */
  readonly outstanding: number;
  /** `-Q`: queries per second at most; undefined: as fast as answers come back. */
  readonly rate?: number;
  /** `-v`: per-query latencies for percentiles. */
  readonly latencies?: boolean;
  /** `-t`: seconds before a query counts as lost (dnsperf's default is 5). */
  readonly timeoutSeconds?: number;
}

/** dnsperf's "Statistics:" block. */
export interface DnsperfSummary {
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  /** Answers by rcode name, e.g. { NOERROR: 298131, NXDOMAIN: 33161 }. */
  readonly rcodes: Readonly<Record<string, number>>;
  readonly runSeconds: number;
  readonly qps: number;
  readonly avgLatencyMs: number;
  readonly minLatencyMs: number;
  readonly maxLatencyMs: number;
  readonly stddevLatencyMs: number;
}

export interface LatencyPercentiles {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export interface DnsperfResult {
  readonly argv: readonly string[];
  readonly summary: DnsperfSummary;
  /** With `latencies`: from the per-query lines. */
  readonly percentiles?: LatencyPercentiles;
  /** dnsperf's CPU time (user + system, all threads), seconds; NaN when never sampled. */
  readonly clientCpuSeconds: number;
}

export function dnsperfArgv(o: DnsperfOptions): string[] {
  return [
    'dnsperf',
    '-s', o.server,
    '-p', String(o.port),
    '-d', o.dataFile,
    '-l', String(o.seconds),
    '-c', String(o.clients),
    '-q', String(o.outstanding),
    ...(o.timeoutSeconds !== undefined ? ['-t', String(o.timeoutSeconds)] : []),
    ...(o.rate !== undefined ? ['-Q', String(Math.round(o.rate))] : []),
    ...(o.latencies === true ? ['-v'] : []),
  ];
}

/** dnsperf processes running now, for an abort to end. */
const running = new Set<ChildProcess>();

/** Ends every dnsperf this module started that still runs (by its pid). */
export function killAllDnsperf(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** A growable Float64Array of latencies in seconds. */
class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

/**
 * Runs dnsperf to completion; rejects when it exits non-zero or prints no statistics.
 * Its stdout goes to `outputFile` and is read once dnsperf has exited, so that reading
 * 30,000 lines a second does not compete for the CPU with the run it describes.
 */
export async function runDnsperf(o: DnsperfOptions, outputFile: string): Promise<DnsperfResult> {
  const argv = dnsperfArgv(o);
  const out = openSync(outputFile, 'w');
  let code: number | null;
  let stderr = '';
  let cpuSeconds = NaN;
  try {
    [code, stderr, cpuSeconds] = await new Promise<[number | null, string, number]>((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, 'pipe'] });
      running.add(child);
      let errText = '';
      let cpu = NaN;
      const sampler = setInterval(() => {
        try {
          if (child.pid !== undefined) cpu = processCpu(child.pid).cpuUs / 1e6;
        } catch {
          // Exited between the check and the read: the previous sample stands.
        }
      }, 100);
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (errText += s));
      child.once('error', (err) => {
        clearInterval(sampler);
        running.delete(child);
        reject(new Error(`${argv.join(' ')}: ${err.message}`));
      });
      child.once('close', (exit, signal) => {
        clearInterval(sampler);
        running.delete(child);
        if (exit === null) return reject(new Error(`${argv.join(' ')}: ended by ${String(signal)}`));
        resolve([exit, errText, cpu]);
      });
    });
  } finally {
    closeSync(out);
  }
  const samples = new Samples();
  const other: string[] = [];
  const lines = createInterface({ input: createReadStream(outputFile, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.startsWith('> ')) {
      // "> RCODE NAME TYPE SECONDS"; a timed-out query has no latency and is counted in "lost".
      const seconds = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(seconds)) samples.push(seconds);
    } else {
      other.push(line);
    }
  }
  const text = other.join('\n');
  if (code !== 0) throw new Error(`${argv.join(' ')}: exit ${String(code)}: ${(stderr || text).trim().split('\n').slice(-5).join(' | ')}`);
  let summary: DnsperfSummary;
  try {
    summary = parseSummary(text);
  } catch (err) {
    throw new Error(`${argv.join(' ')}: ${(err as Error).message}\n${text}\n${stderr}`);
  }
  const percentiles = o.latencies === true ? percentilesOf(samples.sorted()) : undefined;
  return { argv, summary, ...(percentiles !== undefined && { percentiles }), clientCpuSeconds: cpuSeconds };
}

function field(text: string, label: string): RegExpExecArray {
  const m = new RegExp(`^\\s*${label}:\\s+(.*)$`, 'm').exec(text);
  if (m === null) throw new Error(`dnsperf printed no "${label}"`);
  return m;
}

function leadingNumber(text: string, label: string): number {
  const n = Number(/^[-\d.]+/.exec(field(text, label)[1].trim())?.[0]);
  if (!Number.isFinite(n)) throw new Error(`dnsperf: "${label}" is not a number`);
  return n;
}

/** Reads dnsperf's "Statistics:" block. */
export function parseSummary(text: string): DnsperfSummary {
  const rcodes: Record<string, number> = {};
  const codes = /^\s*Response codes:\s+(.*)$/m.exec(text)?.[1] ?? '';
  for (const m of codes.matchAll(/([A-Z0-9]+) (\d+) \(/g)) rcodes[m[1]] = Number(m[2]);
  const latency = /^\s*Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/m.exec(text);
  if (latency === null) throw new Error('dnsperf printed no "Average Latency"');
  return {
    sent: leadingNumber(text, 'Queries sent'),
    completed: leadingNumber(text, 'Queries completed'),
    lost: leadingNumber(text, 'Queries lost'),
    rcodes,
    runSeconds: leadingNumber(text, 'Run time \\(s\\)'),
    qps: leadingNumber(text, 'Queries per second'),
    avgLatencyMs: Number(latency[1]) * 1e3,
    minLatencyMs: Number(latency[2]) * 1e3,
    maxLatencyMs: Number(latency[3]) * 1e3,
    stddevLatencyMs: leadingNumber(text, 'Latency StdDev \\(s\\)') * 1e3,
  };
}

/** The nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Percentiles in milliseconds of ascending latencies in seconds. */
export function percentilesOf(sorted: Float64Array): LatencyPercentiles {
  const ms = (q: number) => percentile(sorted, q) * 1e3;
  return { count: sorted.length, p50Ms: ms(0.5), p90Ms: ms(0.9), p99Ms: ms(0.99), p999Ms: ms(0.999), maxMs: ms(1) };
}

/** Whether dnsperf is installed (and runs). */
export function dnsperfAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('dnsperf', ['-h'], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    // `dnsperf -h` prints its usage and exits 1.
    child.once('close', (code) => resolve(code === 0 || code === 1));
  });
}
