/**
 * The two measurements of "podwire vs the kernel across machines", between any two pod
 * namespaces (the kernel overlay's or podwire's): iperf3 TCP throughput and ping round
 * trips. The parsers are pure and exported, so they are tested on golden output.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Background, commandName, inNetns, listening, run, waitUntil } from '../dataplane/proc.js';

export interface Throughput {
  /** What the receiver got, in Gbit/s. */
  readonly gbps: number;
  /** TCP retransmissions the sender counted. */
  readonly retransmits: number;
}

export interface PingStats {
  readonly avgMs: number;
  /** The median of the replies' times, when ping printed them. */
  readonly p50?: number;
  readonly lossPct: number;
}

interface IperfJson {
  error?: string;
  end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } };
}

/** iperf3 -J output to a result; throws with iperf3's own error when the run did not finish. */
export function parseIperf3(json: string): Throughput {
  let parsed: IperfJson;
  try {
    parsed = JSON.parse(json) as IperfJson;
  } catch {
    throw new Error(`iperf3: output is not JSON: ${json.slice(0, 200)}`);
  }
  const bps = parsed.end?.sum_received?.bits_per_second;
  if (parsed.error !== undefined || bps === undefined) throw new Error(`iperf3: ${parsed.error ?? 'no end.sum_received in the result'}`);
  return { gbps: bps / 1e9, retransmits: parsed.end?.sum_sent?.retransmits ?? 0 };
}

/** Nearest-rank median of unsorted values. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length / 2) - 1];
}

/**
 * iputils ping output to a result: loss from the statistics line, avg from the rtt line,
 * p50 from the per-reply times (absent with -q). Throws when no reply came back: there is
 * no round trip to report then.
 */
export function parsePing(text: string): PingStats {
  const loss = /received,(?: \+\d+ (?:errors|duplicates),)* ([\d.]+)% packet loss/.exec(text);
  if (loss === null) throw new Error(`ping: no statistics line in ${JSON.stringify(text.slice(-300))}`);
  const rtt = /rtt min\/avg\/max\/mdev = [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(text);
  if (rtt === null) throw new Error(`ping: no reply (${loss[1]}% packet loss)`);
  const times = [...text.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return { avgMs: Number(rtt[1]), ...(times.length > 0 ? { p50: median(times) } : {}), lossPct: Number(loss[1]) };
}

/** A port no other helper's benchmark is likely to hold; bind failures are retried on another. */
const randomPort = () => randomInt(20_000, 60_000);
const PORT_ATTEMPTS = 3;

/** Starts `iperf3 -s -1` on serverIp in serverNetns and resolves once it listens. */
async function startServer(serverNetns: string, serverIp: string): Promise<{ srv: Background; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = randomPort();
    const srv = new Background(inNetns(serverNetns, ['iperf3', '-s', '-1', '-B', serverIp, '-p', String(port)]));
    let exited = false;
    srv.done.then(
      () => (exited = true),
      () => (exited = true),
    );
    try {
      // /proc/<pid>/net shows the server's namespace only once `ip netns exec` has become iperf3.
      await waitUntil(`iperf3 -s on ${serverIp}:${port} in ${serverNetns}`, () => exited || (commandName(srv.pid) === 'iperf3' && listening(srv.pid, 'tcp', port)));
    } catch (err) {
      await srv.stop();
      throw err;
    }
    if (!exited) return { srv, port };
    const why = await srv.done.then(
      () => 'exited at once',
      (err: Error) => err.message,
    );
    if (!/in use/i.test(why) || attempt === PORT_ATTEMPTS) throw new Error(`iperf3 server in ${serverNetns}: ${why}`);
  }
}

/** iperf3 TCP from clientNetns to serverIp (in serverNetns) for `seconds`; the server is killed by pid on any failure. */
export async function iperf3Between(clientNetns: string, serverNetns: string, serverIp: string, seconds: number): Promise<Throughput> {
  const { srv, port } = await startServer(serverNetns, serverIp);
  try {
    const argv = inNetns(clientNetns, ['iperf3', '-c', serverIp, '-p', String(port), '-t', String(seconds), '--connect-timeout', '5000', '-J']);
    let out: string;
    try {
      out = await run(argv, { timeoutMs: (seconds + 30) * 1000 });
    } catch (err) {
      // iperf3 -J reports its own errors as JSON on stdout.
      const stdout = (err as { stdout?: string }).stdout ?? '';
      if (stdout.trim().startsWith('{')) parseIperf3(stdout);
      throw err;
    }
    const result = parseIperf3(out);
    // -1: the server ends after this one test; give it the moment it takes to say so.
    await Promise.race([srv.done.catch(() => undefined), sleep(5000)]);
    return result;
  } finally {
    await srv.stop();
  }
}

/**
 * `ping -c count -i 0.01` from netns to ip, with `sizeBytes` of payload when given. One
 * echo first, not counted: the measured run must not carry the ARP exchanges.
 */
export async function pingBetween(netns: string, ip: string, count: number, sizeBytes?: number): Promise<PingStats> {
  const size = sizeBytes === undefined ? [] : ['-s', String(sizeBytes)];
  await run(inNetns(netns, ['ping', '-c', '1', '-W', '2', ...size, ip])).catch(() => undefined);
  const out = await run(inNetns(netns, ['ping', '-c', String(count), '-i', '0.01', '-W', '1', ...size, ip]), { timeoutMs: (count * 0.01 + 30) * 1000 }).catch(
    // Exit 1 when replies were lost: the statistics say how many. Other failures have no statistics.
    (err: { stdout?: string; message: string }) => (err.stdout?.includes('packet loss') ? err.stdout : Promise.reject(err)),
  );
  return parsePing(out);
}
