/**
 * The three measurements, each between two pods of a Topology and each the same for
 * podwire and for the kernel: iperf3 TCP throughput, ping round-trip times, and a flood
 * of small UDP datagrams. Where the dataplane is a process, what it spent over the run
 * (CPU time, frames) comes with the result.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseReceive, parseSend } from './flood.js';
import { Background, commandName, inNetns, interfacePackets, listening, run, waitUntil } from './proc.js';
import { usageBetween, type PodRef, type Topology, type Usage } from './topology.js';

const IPERF_PORT = 5201;
const FLOOD_PORT = 9000;
/** How long the receiver waits after the last datagram before it reports. */
const FLOOD_IDLE_S = 1;
/** Queued frames still crossing the dataplane when the sender stops. */
const DRAIN_MS = 300;

export interface TcpResult {
  /** What the receiver got, in Gbit/s. */
  readonly gbps: number;
  readonly retransmits: number;
  readonly usage: Usage | undefined;
}

interface IperfJson {
  error?: string;
  end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } };
}

/** iperf3 TCP from `client` to `server` for `seconds`. */
export async function tcp(topo: Topology, client: PodRef, server: PodRef, seconds: number): Promise<TcpResult> {
  const srv = new Background(inNetns(server.netns, ['iperf3', '-s', '-1', '-B', server.ip, '-p', String(IPERF_PORT)]));
  try {
    // /proc/<pid>/net shows the pid's namespace only once `ip netns exec` has become iperf3.
    await waitUntil(`iperf3 -s in ${server.netns}`, () => commandName(srv.pid) === 'iperf3' && listening(srv.pid, 'tcp', IPERF_PORT));
    const before = await topo.snapshot();
    let out: string;
    try {
      out = await run(inNetns(client.netns, ['iperf3', '-c', server.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-J']), { timeoutMs: (seconds + 30) * 1000 });
    } catch (err) {
      // iperf3 -J reports its own errors as JSON on stdout.
      const json = (err as { stdout?: string }).stdout;
      const reason = json === undefined ? undefined : (JSON.parse(json || '{}') as IperfJson).error;
      throw new Error(`iperf3 ${client.role} -> ${server.role} (${topo.label}): ${reason ?? (err as Error).message}`);
    }
    const after = await topo.snapshot();
    const result = JSON.parse(out) as IperfJson;
    const bps = result.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new Error(`iperf3 ${client.role} -> ${server.role} (${topo.label}): no result (${result.error ?? 'no end section'})`);
    return { gbps: bps / 1e9, retransmits: result.end?.sum_sent?.retransmits ?? 0, usage: usageBetween(before, after) };
  } finally {
    await srv.stop();
  }
}

export interface PingResult {
  readonly sent: number;
  readonly received: number;
  readonly medianUs: number;
  readonly p99Us: number;
  readonly minUs: number;
}

/** `ping -c count -i 0.01` from `from` to `to`; RTTs in µs as ping reports them. */
export async function ping(from: PodRef, to: PodRef, count: number): Promise<PingResult> {
  // Resolve neighbours first: the first echo of a run must not carry an ARP exchange.
  await run(inNetns(from.netns, ['ping', '-c', '2', '-i', '0.05', '-W', '2', to.ip]));
  const out = await run(inNetns(from.netns, ['ping', '-c', String(count), '-i', '0.01', '-W', '1', to.ip]), { timeoutMs: (count * 0.01 + 30) * 1000 }).catch(
    (err: { stdout?: string }) => err.stdout ?? '', // exit 1 when replies were lost: the count says so
  );
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  if (rtts.length === 0) throw new Error(`ping ${from.role} -> ${to.role}: no replies`);
  return { sent: count, received: rtts.length, medianUs: quantile(rtts, 0.5), p99Us: quantile(rtts, 0.99), minUs: rtts[0] };
}

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface UdpResult {
  /** Datagrams per second the sender's sendmmsg() calls accepted. */
  readonly offeredPps: number;
  /** Datagrams the sender's sendmmsg() calls accepted, in all. */
  readonly sent: number;
  /** Packets that arrived on the receiving pod's interface, in all. */
  readonly delivered: number;
  /** Packets per second arriving on the receiving pod's interface (its rx counter). */
  readonly deliveredPps: number;
  /** Datagrams per second the receiving program read, first to last. */
  readonly receivedPps: number;
  /** Over the sender's window. */
  readonly sendSeconds: number;
  readonly usage: Usage | undefined;
}

/**
 * `size`-byte UDP datagrams from `from` to `to`: as fast as one sendmmsg() loop offers them
 * (`rate` 0), or paced to `rate` per second.
 */
export async function udpFlood(topo: Topology, flood: string, from: PodRef, to: PodRef, seconds: number, size: number, rate = 0): Promise<UdpResult> {
  const recv = new Background(inNetns(to.netns, [flood, 'recv', String(FLOOD_PORT), String(seconds + 30), String(FLOOD_IDLE_S)]));
  try {
    await recv.waitForOutput('ready');
    const rx0 = interfacePackets(recv.pid, to.ifName).rx;
    const before = await topo.snapshot();
    const sendArgs = [flood, 'send', to.ip, String(FLOOD_PORT), String(seconds), String(size), String(rate)];
    const sent = parseSend(await run(inNetns(from.netns, sendArgs), { timeoutMs: (seconds + 30) * 1000 }));
    await sleep(DRAIN_MS);
    // Read while the receiver still runs (it waits FLOOD_IDLE_S after the last datagram).
    const rx1 = interfacePackets(recv.pid, to.ifName).rx;
    const after = await topo.snapshot();
    const received = parseReceive(await recv.done);
    return {
      offeredPps: sent.sent / sent.seconds,
      sent: sent.sent,
      delivered: rx1 - rx0,
      deliveredPps: (rx1 - rx0) / sent.seconds,
      receivedPps: received.span > 0 ? received.received / received.span : 0,
      sendSeconds: sent.seconds,
      usage: usageBetween(before, after),
    };
  } finally {
    await recv.stop();
  }
}
