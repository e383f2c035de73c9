/**
 * podwire across machines (issue 11), against the kernel where the kernel has an answer:
 * pod-to-pod TCP and ping RTT over two network-namespace "machines" on one 1500-byte
 * underlay, flannel-style kernel vxlan vs podwire, with podwire / kernel ratios as the
 * dataplane bench reports them; then, on three podwire machines holding 1,000 Services,
 * kube-proxy's network_programming_duration for one more Service and how long a SIGKILLed
 * agent stays an overlay peer of the others (≈ the subnet lease TTL).
 *
 * Needs root, /dev/net/tun, etcd-server, iperf3 and curl; skipped with a reason otherwise.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { atLeast, atMost, type BenchModule, type Figure } from './harness.js';
import { etcdAvailable } from '../test/helpers/etcd.js';
import { LEASE_TTL_SECONDS, SERVICE_COUNT, measureDataplane, measureProgramming } from './cross-machine/run.js';

export const NAMES = {
  tcp: (side: string) => `cross-machine: TCP pod to pod, ${side}`,
  tcpRatio: 'cross-machine: TCP pod to pod, podwire / kernel',
  ping: (side: string) => `cross-machine: ping RTT pod to pod, avg, ${side}`,
  pingRatio: 'cross-machine: ping RTT pod to pod, avg, podwire / kernel',
  program: `cross-machine: new Service programmed on 3 machines (${SERVICE_COUNT} existing), apply command start to a connection accepted everywhere`,
  fromWrite: `cross-machine: new Service programmed on 3 machines (${SERVICE_COUNT} existing), etcd write to a connection accepted everywhere (network_programming_duration)`,
  applyCommand: 'cross-machine: new Service, apply command run time',
  peerGone: 'cross-machine: SIGKILLed agent gone from the other nodes\' overlay.peers',
  leaseTtl: 'cross-machine: subnet lease TTL configured',
};

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!etcdAvailable()) return 'needs etcd-server';
  for (const tool of ['iperf3', 'curl']) if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) return `needs ${tool}`;
  return undefined;
}

const crossMachine: BenchModule = {
  name: 'cross-machine',
  async run(ctx) {
    const reason = skipReason();
    if (reason !== undefined) {
      ctx.log(`  cross-machine: skipped, ${reason}`);
      return [];
    }
    const figures: Figure[] = [];
    const wantsPath = [NAMES.tcp('kernel'), NAMES.tcp('podwire'), NAMES.tcpRatio, NAMES.ping('kernel'), NAMES.ping('podwire'), NAMES.pingRatio].some((n) => ctx.selects(n));
    if (wantsPath) {
      const r = await measureDataplane((l) => ctx.log(l));
      for (const side of ['kernel', 'podwire'] as const) {
        figures.push({ name: NAMES.tcp(side), value: r[side].tcp.gbps, unit: 'Gbit/s' }, { name: NAMES.ping(side), value: r[side].ping.avgMs * 1000, unit: 'µs' });
      }
      // The dataplane bench's cross-node targets: at least half the kernel's throughput, at most twice its RTT.
      figures.push({ name: NAMES.tcpRatio, value: r.podwire.tcp.gbps / r.kernel.tcp.gbps, unit: 'x', target: atLeast(0.5) });
      figures.push({ name: NAMES.pingRatio, value: r.podwire.ping.avgMs / r.kernel.ping.avgMs, unit: 'x', target: atMost(2) });
    }
    const wantsProgramming = [NAMES.program, NAMES.fromWrite, NAMES.applyCommand, NAMES.peerGone, NAMES.leaseTtl].some((n) => ctx.selects(n));
    if (wantsProgramming) {
      const r = await measureProgramming((l) => ctx.log(l));
      // The apply command is a fresh node process: its start-up is inside programMs.
      figures.push({ name: NAMES.program, value: r.programMs, unit: 'ms' });
      figures.push({ name: NAMES.fromWrite, value: r.fromWriteMs, unit: 'ms', target: atMost(100) });
      figures.push({ name: NAMES.applyCommand, value: r.applyCommandMs, unit: 'ms' });
      figures.push({ name: NAMES.peerGone, value: r.peerGoneSeconds, unit: 's' });
      figures.push({ name: NAMES.leaseTtl, value: LEASE_TTL_SECONDS, unit: 's' });
    }
    return figures.filter((f) => ctx.selects(f.name));
  },
};

export default crossMachine;
