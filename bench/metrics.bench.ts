/**
 * Metrics: how long a scrape of a node's /metrics takes, rendered from the registry the
 * node serves (src/metrics/node-metrics.ts), at 10 and at 10,000 services.
 *
 * The node is built in process as the agent builds it: a forwarding path with the compiled
 * service table and the DNS responder's zone for that many services (the synthetic
 * cluster of dns.bench.ts), 30 pod ports, and at 10,000 services a connection table of
 * 100,000 entries. A scrape reads counters, conntrack's size and statistics, and the
 * ports' numbers; it walks no per-service or per-connection structure, so its time should
 * not grow with either (target: 10,000 services within 25% of 10, and under 5 ms).
 *
 * Timed as the HTTP handler runs it (`registry.metrics()`, the text format), without the
 * socket: the median of SCRAPES scrapes, wall and CPU time per scrape.
 */
import { performance } from 'node:perf_hooks';
import { parseCidr, parseMac } from '../src/packet/addr.js';
import { Pipeline } from '../src/datapath/pipeline.js';
import { LiveServiceTable } from '../src/kube/service-table.js';
import { Responder } from '../src/dns/responder.js';
import { buildZone } from '../src/dns/zone.js';
import { clientPolicy } from '../src/dns/policy.js';
import { KubeProxySyncs } from '../src/metrics/kube-proxy.js';
import { FlowsProcessed } from '../src/metrics/hubble.js';
import { nodeRegistry, type PortMetrics } from '../src/metrics/node-metrics.js';
import { fillConntrack } from '../test/helpers/conntrack-fill.js';
import { syntheticCluster } from './dns.bench.js';
import { atMost, sink, type BenchModule, type Figure } from './harness.js';

const SCRAPES = 300;
const PODS = 30;
const NODE_ADDRESS = 0xc000020b; // 192.0.2.11

function node(services: number, connections: number) {
  const { cluster, endpoints } = syntheticCluster(services);
  const pipeline = new Pipeline(
    {
      name: 'node-1',
      subnet: parseCidr('10.244.0.0/16')!,
      clusterCidr: parseCidr('10.244.0.0/16')!,
      gatewayIp: 0x0af40001,
      gatewayMac: parseMac('0a:58:0a:f4:00:01')!,
      vtepMac: parseMac('0e:00:00:00:00:01')!,
      vni: 1,
      underlayMtu: 1500,
    },
    () => 0,
    { conntrackMax: 262_144 },
  );
  const syncs = new KubeProxySyncs();
  const started = performance.now();
  pipeline.services = new LiveServiceTable({ cluster, endpoints, nodeName: 'node-1', nodeAddress: NODE_ADDRESS });
  syncs.synced(started, performance.now(), Date.now());
  fillConntrack(pipeline.conntrack, connections, 0);
  const responder = new Responder({ zone: buildZone(cluster, endpoints), policy: clientPolicy([parseCidr('10.244.0.0/16')!]), forwarder: { upstreams: 1, random: Math.random } });
  const ports: PortMetrics[] = Array.from({ length: PODS }, (_, i) => ({
    device: `pw0n1p${i}`,
    kind: 'pod',
    pod: `default/pod-${i}`,
    stats: { rxFrames: 1e6 + i, rxBytes: 1e9, rxBatches: 1e5, txFrames: 1e6, txBytes: 1e9, txDropped: i, rxErrors: 0 },
  }));
  const flows = new FlowsProcessed();
  flows.count('Trace', 'to-endpoint', 'FORWARDED', 1000);
  flows.count('Drop', '', 'DROPPED', 10);
  return nodeRegistry({
    counters: pipeline.counters,
    dropCounts: () => pipeline.dropCounts(),
    dropTransports: pipeline.dropTransports,
    conntrack: pipeline.conntrack,
    conntrackMax: 262_144,
    ports: () => ports,
    dns: () => ({ counters: responder.counters, forwarder: responder.forwarder, upstreams: ['192.0.2.53:53'] }),
    kubeProxy: syncs,
    flows: () => flows,
  });
}

async function timeScrapes(registry: ReturnType<typeof nodeRegistry>): Promise<{ wallMs: number; minMs: number; meanMs: number; cpuMs: number; bytes: number }> {
  for (let i = 0; i < 20; i++) sink.value = (await registry.metrics()).length; // warm-up
  const walls: number[] = [];
  const cpuStart = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) {
    const t0 = performance.now();
    bytes = (await registry.metrics()).length;
    walls.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpuStart);
  walls.sort((a, b) => a - b);
  return { wallMs: walls[walls.length >> 1], minMs: walls[0], meanMs: walls.reduce((a, b) => a + b, 0) / walls.length, cpuMs: (cpu.user + cpu.system) / 1000 / SCRAPES, bytes };
}

const bench: BenchModule = {
  name: 'metrics',
  async run(ctx) {
    const figures: Figure[] = [];
    const results: Record<string, Awaited<ReturnType<typeof timeScrapes>>> = {};
    for (const [label, services, connections] of [['10', 10, 0], ['10K', 10_000, 100_000]] as const) {
      const name = `metrics: scrape /metrics, ${label} services`;
      if (!ctx.selects(name)) continue;
      const r = await timeScrapes(node(services, connections));
      results[label] = r;
      ctx.log(`${name}: ${r.wallMs.toFixed(3)} ms median, ${r.cpuMs.toFixed(3)} ms CPU, ${r.bytes} bytes`);
      figures.push({ name, value: r.wallMs, unit: 'ms', target: atMost(5), stats: { samples: SCRAPES, rme: 0, mean: r.meanMs, min: r.minMs, cpu: r.cpuMs } });
    }
    if (results['10'] !== undefined && results['10K'] !== undefined) {
      figures.push({ name: 'metrics: scrape 10K / 10 services, CPU time', value: results['10K'].cpuMs / results['10'].cpuMs, unit: 'x', target: atMost(1.25) });
    }
    return figures;
  },
};
export default bench;
