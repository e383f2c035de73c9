/**
 * One node's metrics registry: what `/metrics` on the node's loopback port serves, in the
 * names that dashboards already query.
 *
 * - CoreDNS (the cluster DNS the node answers): coredns_dns_requests_total,
 *   coredns_dns_responses_total, coredns_dns_request_duration_seconds,
 *   coredns_cache_hits_total, coredns_cache_misses_total, coredns_forward_requests_total.
 *   The node is one server (`dns://:53`, the zone `.` of the default Corefile, no view).
 * - kube-proxy: kubeproxy_sync_proxy_rules_duration_seconds,
 *   kubeproxy_network_programming_duration_seconds,
 *   kubeproxy_sync_proxy_rules_last_timestamp_seconds (kube-proxy.ts says what they time).
 * - Hubble: hubble_drop_total{reason,protocol} from the dataplane's drop counters, and
 *   hubble_flows_processed_total{type,subtype,verdict} from the flow ring when one feeds it.
 * - node-exporter: node_network_{receive,transmit}_{packets,bytes,drop}_total{device} for
 *   every port the node owns (pod TAPs, the DNS relay's TAP, the uplink, the VTEP's
 *   socket), and node_nf_conntrack_* for the connection table.
 * - podwire's own: frames per path, events of the path, drops per reason, wake-ups.
 *
 * Every family is read at scrape time from counters the dataplane keeps anyway (plain
 * numbers and typed arrays); a scrape never walks a per-packet table (conntrack is read as
 * its size and its statistics) and never pauses forwarding.
 */
import { Registry } from 'prom-client';
import type { PathCounters } from '../datapath/context.js';
import { DROP_REASONS, DROP_TRANSPORTS } from '../datapath/drops.js';
import type { ConntrackStats } from '../netfilter/conntrack.js';
import type { PortStats } from '../port/port.js';
import { rcodeName } from '../dns/constants.js';
import type { Forwarder } from '../dns/forwarder.js';
import { PROTO_NAMES, RCODE_SLOTS, TYPE_SLOTS, typeSlotName, WRITER_NAMES, type DnsCounters } from '../dns/stats.js';
import { counterFamily, gaugeFamily, histogramFamily, type HistogramSeries, type Reader } from './families.js';
import { COREDNS_TIME_BUCKETS, KUBE_PROXY_PROGRAMMING_BUCKETS, KUBE_PROXY_SYNC_BUCKETS } from './histogram.js';
import { HUBBLE_PROTOCOLS, HUBBLE_UNKNOWN_PROTOCOL, hubbleDropReason, type FlowsProcessedSource } from './hubble.js';
import type { KubeProxySyncs } from './kube-proxy.js';

/** A port the node owns, as node-exporter names a device. */
export interface PortMetrics {
  /** The interface name: the TAP's, or the VTEP socket's. */
  readonly device: string;
  readonly kind: 'pod' | 'uplink' | 'vtep';
  /** The pod (`namespace/name`) a pod port belongs to. */
  readonly pod?: string;
  readonly stats: PortStats;
}

/** The cluster DNS as the node runs it. */
export interface DnsMetricsSource {
  readonly counters: DnsCounters;
  readonly forwarder: Forwarder;
  /** Upstream resolvers by index, as `address:53`. */
  readonly upstreams: readonly string[];
}

export interface NodeMetricSources {
  readonly counters: PathCounters;
  /** Drops by reason name (reasons never seen may be absent). */
  dropCounts(): Readonly<Record<string, number>>;
  /** Walked drops by reason and transport (PathTables.dropTransports). */
  readonly dropTransports: Float64Array;
  readonly conntrack: { readonly size: number; readonly stats: ConntrackStats };
  readonly conntrackMax: number;
  ports(): Iterable<PortMetrics>;
  dns(): DnsMetricsSource | undefined;
  readonly kubeProxy: KubeProxySyncs;
  /** The flow ring, once the node keeps one. */
  flows(): FlowsProcessedSource | undefined;
}

/** CoreDNS's `server` label for the cluster DNS: the listen address of the default Corefile. */
export const DNS_SERVER_LABEL = 'dns://:53';
const DNS_ZONE = '.';

const PATH_EVENTS: readonly (keyof PathCounters)[] = ['forwarded', 'flooded', 'encapsulated', 'decapsulated', 'arpReplies', 'icmpSent', 'serviceFlows', 'dnsQueries', 'fragmentsHeld', 'reassembled'];

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function nodeRegistry(s: NodeMetricSources): Registry {
  const registry = new Registry();
  registerCoreDns(registry, s);
  registerKubeProxy(registry, s.kubeProxy);
  registerHubble(registry, s);
  registerInterfaces(registry, s);
  registerConntrack(registry, s);
  registerPodwire(registry, s);
  return registry;
}

function registerCoreDns(registry: Registry, s: NodeMetricSources): void {
  const base = { server: DNS_SERVER_LABEL, zone: DNS_ZONE, view: '' };
  const withDns = (read: (dns: DnsMetricsSource, emit: Parameters<Reader>[0]) => void): Reader => (emit) => {
    const dns = s.dns();
    if (dns !== undefined) read(dns, emit);
  };
  counterFamily(registry, 'coredns_dns_requests_total', 'Counter of DNS requests made per zone, protocol and family.', ['server', 'zone', 'view', 'proto', 'family', 'type'], withDns(({ counters }, emit) => {
    for (let p = 0; p < PROTO_NAMES.length; p++) {
      for (let t = 0; t < TYPE_SLOTS; t++) {
        const n = counters.requests[p * TYPE_SLOTS + t];
        if (n > 0) emit({ ...base, proto: PROTO_NAMES[p], family: '1', type: typeSlotName(t) }, n);
      }
    }
  }));
  counterFamily(registry, 'coredns_dns_responses_total', 'Counter of response status codes.', ['server', 'zone', 'view', 'rcode', 'plugin'], withDns(({ counters }, emit) => {
    for (let w = 0; w < WRITER_NAMES.length; w++) {
      for (let r = 0; r <= RCODE_SLOTS; r++) {
        const n = counters.responses[w * (RCODE_SLOTS + 1) + r];
        if (n > 0) emit({ ...base, rcode: r < RCODE_SLOTS ? rcodeName(r) : 'other', plugin: WRITER_NAMES[w] }, n);
      }
    }
  }));
  histogramFamily(registry, 'coredns_dns_request_duration_seconds', 'Histogram of the time (in seconds) each request took per zone.', ['server', 'zone', 'view', 'type'], COREDNS_TIME_BUCKETS, () => {
    const dns = s.dns();
    const series: HistogramSeries[] = [];
    if (dns === undefined) return series;
    dns.counters.durations.forEach((buckets, t) => {
      if (buckets.count > 0) series.push({ labels: { ...base, type: typeSlotName(t) }, buckets });
    });
    return series;
  });
  const cacheBase = { server: DNS_SERVER_LABEL, zones: DNS_ZONE, view: '' };
  counterFamily(registry, 'coredns_cache_hits_total', 'The count of cache hits.', ['server', 'type', 'zones', 'view'], withDns(({ counters, forwarder }, emit) => {
    // The node's two caches (precompiled zone answers, forwarded answers) are CoreDNS's one
    // cache plugin in front of both; NXDOMAIN answers are its `denial` hits.
    const denial = counters.answerCacheDenials + forwarder.stats.cacheDenialHits;
    emit({ ...cacheBase, type: 'success' }, counters.answerCacheHits + forwarder.cache.hits - denial);
    emit({ ...cacheBase, type: 'denial' }, denial);
  }));
  counterFamily(registry, 'coredns_cache_misses_total', 'The count of cache misses.', ['server', 'zones', 'view'], withDns(({ counters, forwarder }, emit) => {
    // A query the zone-answer cache misses and the forward cache then answers is a hit.
    emit(cacheBase, counters.answerCacheMisses - forwarder.cache.hits);
  }));
  counterFamily(registry, 'coredns_forward_requests_total', 'Counter of requests made per upstream.', ['to'], withDns(({ forwarder, upstreams }, emit) => {
    forwarder.sentTo.forEach((n, i) => emit({ to: upstreams[i] ?? `upstream-${i}` }, n));
  }));
}

function registerKubeProxy(registry: Registry, k: KubeProxySyncs): void {
  histogramFamily(registry, 'kubeproxy_sync_proxy_rules_duration_seconds', 'SyncProxyRules latency in seconds', [], KUBE_PROXY_SYNC_BUCKETS, () => [{ labels: {}, buckets: k.sync }]);
  histogramFamily(registry, 'kubeproxy_network_programming_duration_seconds', 'In Cluster Network Programming Latency in seconds', [], KUBE_PROXY_PROGRAMMING_BUCKETS, () => [{ labels: {}, buckets: k.programming }]);
  gaugeFamily(registry, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', 'The last time proxy rules were successfully synced', [], (emit) => emit({}, k.lastSyncSeconds));
}

function registerHubble(registry: Registry, s: NodeMetricSources): void {
  counterFamily(registry, 'hubble_drop_total', 'Number of drops', ['reason', 'protocol'], (emit) => {
    const counts = s.dropCounts();
    // Several podwire reasons can share one Cilium reason: one series each, summed.
    const series = new Map<string, { reason: string; protocol: string; n: number }>();
    const add = (reason: string, protocol: string, n: number) => {
      if (n <= 0) return;
      const key = `${reason}/${protocol}`;
      const entry = series.get(key);
      if (entry !== undefined) entry.n += n;
      else series.set(key, { reason, protocol, n });
    };
    DROP_REASONS.forEach((r, i) => {
      const total = counts[r.name] ?? 0;
      const reason = hubbleDropReason(i);
      let known = 0;
      for (let p = 0; p < DROP_TRANSPORTS; p++) {
        const n = s.dropTransports[i * DROP_TRANSPORTS + p];
        known += n;
        add(reason, HUBBLE_PROTOCOLS[p], n);
      }
      add(reason, HUBBLE_UNKNOWN_PROTOCOL, total - known);
    });
    for (const { reason, protocol, n } of series.values()) emit({ reason, protocol }, n);
  });
  counterFamily(registry, 'hubble_flows_processed_total', 'Total number of flows processed', ['type', 'subtype', 'verdict'], (emit) => {
    const flows = s.flows();
    if (flows === undefined) return;
    for (const f of flows.flowsProcessed()) emit({ type: f.type, subtype: f.subtype, verdict: f.verdict }, f.count);
  });
}

function registerInterfaces(registry: Registry, s: NodeMetricSources): void {
  const perPort = (name: string, help: string, value: (stats: PortStats) => number) =>
    counterFamily(registry, name, help, ['device'], (emit) => {
      for (const p of s.ports()) emit({ device: p.device }, value(p.stats));
    });
  perPort('node_network_receive_packets_total', 'Network device statistic receive_packets.', (st) => st.rxFrames);
  perPort('node_network_receive_bytes_total', 'Network device statistic receive_bytes.', (st) => st.rxBytes);
  perPort('node_network_receive_drop_total', 'Network device statistic receive_drop: frames the port could not take in (too large for its slab, read errors).', (st) => st.rxErrors);
  perPort('node_network_transmit_packets_total', 'Network device statistic transmit_packets.', (st) => st.txFrames);
  perPort('node_network_transmit_bytes_total', 'Network device statistic transmit_bytes.', (st) => st.txBytes);
  perPort('node_network_transmit_drop_total', 'Network device statistic transmit_drop: frames its transmit queue or the kernel refused.', (st) => st.txDropped);
  gaugeFamily(registry, 'podwire_interface_info', 'Which port a device is: a pod TAP (with its pod), the uplink or the VTEP.', ['device', 'kind', 'pod'], (emit) => {
    for (const p of s.ports()) emit({ device: p.device, kind: p.kind, pod: p.pod ?? '' }, 1);
  });
}

function registerConntrack(registry: Registry, s: NodeMetricSources): void {
  // node-exporter's conntrack collector exports these as gauges, the kernel's own counters included.
  const stat = (name: string, help: string, value: () => number) => gaugeFamily(registry, name, help, [], (emit) => emit({}, value()));
  stat('node_nf_conntrack_entries', 'Number of currently allocated flow entries for connection tracking.', () => s.conntrack.size);
  stat('node_nf_conntrack_entries_limit', 'Maximum size of connection tracking table.', () => s.conntrackMax);
  stat('node_nf_conntrack_stat_early_drop', 'Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.', () => s.conntrack.stats.evicted);
  stat('node_nf_conntrack_stat_drop', 'Number of packets dropped due to conntrack failure.', () => s.conntrack.stats.refusedFull);
  stat('node_nf_conntrack_stat_insert_failed', 'Number of entries for which list insertion was attempted but failed.', () => s.conntrack.stats.clashed);
  stat('node_nf_conntrack_stat_invalid', 'Number of packets seen which can not be tracked.', () => s.conntrack.stats.invalid);
}

function registerPodwire(registry: Registry, s: NodeMetricSources): void {
  counterFamily(registry, 'podwire_frames_total', 'Frames that entered the forwarding path, by path (pod TAPs, uplink, overlay).', ['path'], (emit) => {
    const byPath = { pod: 0, uplink: 0, overlay: 0 };
    for (const p of s.ports()) byPath[p.kind === 'vtep' ? 'overlay' : p.kind] += p.stats.rxFrames;
    for (const [path, n] of Object.entries(byPath)) emit({ path }, n);
  });
  counterFamily(registry, 'podwire_datapath_events_total', 'What the forwarding path did: frames forwarded, flooded, encapsulated, ..., DNS queries answered.', ['event'], (emit) => {
    for (const e of PATH_EVENTS) emit({ event: snake(e) }, s.counters[e]);
  });
  counterFamily(registry, 'podwire_drops_total', 'Frames the forwarding path dropped, by reason (src/datapath/drops.ts).', ['reason'], (emit) => {
    const counts = s.dropCounts();
    for (const r of DROP_REASONS) emit({ reason: r.name }, counts[r.name] ?? 0);
  });
  counterFamily(registry, 'podwire_port_wakeups_total', 'Receive batches a port handed the forwarding path: one wake-up each.', ['device'], (emit) => {
    for (const p of s.ports()) emit({ device: p.device }, p.stats.rxBatches);
  });
}
