/**
 * What watching the cluster costs the dataplane: the same paced UDP flood cross-node with
 * nothing watching, with `podwire observe --follow` running, and with observe and
 * `podwire capture --pod cli1` running, rotated in one run (plain, observed, captured,
 * plain, ...) so that the neighbours' drift falls on all three alike. Only podwire has this
 * measurement; the kernel's counterpart (tcpdump on a veth) is another program's cost.
 */
import { PodwireCluster } from './podwire.js';
import { udpFlood, type UdpResult } from './measure.js';
import { UDP_PAYLOAD, WATCHED_PPS, WATCHED_ROUNDS, type WatchedResult } from './figures.js';

export async function measureWatched(podwire: PodwireCluster, flood: string, seconds: number, log: (line: string) => void): Promise<WatchedResult> {
  const from = podwire.pods.cli1;
  const to = podwire.pods.srv2;
  const result = { plain: [] as UdpResult[], observed: [] as UdpResult[], captured: [] as UdpResult[], captures: [] as WatchedResult['captures'][number][] };
  const flow = () => udpFlood(podwire, flood, from, to, seconds, UDP_PAYLOAD, WATCHED_PPS);
  log(`  UDP ${UDP_PAYLOAD} B cross-node paced at ${WATCHED_PPS} pps, ${seconds} s: ${WATCHED_ROUNDS} rounds of plain, observe --follow, observe --follow + capture --pod cli1`);
  const perFrame = (r: UdpResult) => (r.usage !== undefined && r.usage.frames > 0 ? (r.usage.cpuUs / r.usage.frames).toFixed(3) : '-');
  for (let round = 0; round < WATCHED_ROUNDS; round++) {
    result.plain.push(await flow());
    const observing = await podwire.watch();
    try {
      result.observed.push(await flow());
    } finally {
      await observing.stop();
    }
    const capturing = await podwire.watch('cli1');
    try {
      result.captured.push(await flow());
    } finally {
      const report = await capturing.stop();
      if (report !== undefined) result.captures.push(report);
    }
    const c = result.captures[round];
    log(
      `    round ${round + 1}: plain ${perFrame(result.plain[round])}, observed ${perFrame(result.observed[round])}, captured ${perFrame(result.captured[round])} µs/frame; ` +
        `capture wrote ${c?.captured ?? '?'} packets (${((c?.bytes ?? 0) / 1e6).toFixed(1)} MB), the node dropped ${c?.dropped ?? '?'} for a slow reader`,
    );
  }
  return result;
}
