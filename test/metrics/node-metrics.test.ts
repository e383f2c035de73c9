/**
 * The node's metrics registry read from a forwarding path in memory: the names, label sets
 * and numbers dashboards expect, and the text Debian's promtool accepts.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { DROP_REASONS } from '../../src/datapath/drops.js';
import { Forwarder } from '../../src/dns/forwarder.js';
import { DnsCounters } from '../../src/dns/stats.js';
import { TYPE } from '../../src/dns/constants.js';
import { COREDNS_TIME_BUCKETS } from '../../src/metrics/histogram.js';
import { FlowsProcessed } from '../../src/metrics/hubble.js';
import { KubeProxySyncs } from '../../src/metrics/kube-proxy.js';
import { nodeRegistry, type NodeMetricSources, type PortMetrics } from '../../src/metrics/node-metrics.js';
import { cluster as loadYaml } from '../cluster/helpers.js';
import { HARDENED_YAML } from '../helpers/hardened-cluster.js';
import { nextMac, rawIp, tcpSyn, udpDatagram, wireCluster } from '../helpers/datapath.js';

const havePromtool = spawnSync('promtool', ['--version']).status === 0;

/** A node whose client sent one UDP datagram, one TCP SYN and one GRE packet to a pod under default deny. */
function deniedThreeWays() {
  const c = wireCluster(loadYaml(HARDENED_YAML), { random: () => 0.5 });
  const client = c.pod('client');
  const victim = c.pod('victim', 'locked');
  const spec = { srcMac: client.mac, dstMac: nextMac(c.cluster, client, victim.ip), src: client.ip, dst: victim.ip };
  c.port(client).inject(udpDatagram(spec, 40000, 9999), tcpSyn(spec, 40001, 80), rawIp(spec, 47));
  return { c, pipeline: c.nodes[0].pipeline, clientPort: c.port(client) };
}

function sources(overrides: Partial<NodeMetricSources> = {}): NodeMetricSources {
  const { pipeline, clientPort } = deniedThreeWays();
  const dnsCounters = new DnsCounters();
  const forwarder = new Forwarder({ upstreams: 1, random: () => 0 });
  dnsCounters.countType(TYPE.A, false);
  dnsCounters.countType(TYPE.A, false);
  dnsCounters.countType(TYPE.SRV, true);
  dnsCounters.countRcode(0, 2);
  dnsCounters.countRcode(3, 1);
  dnsCounters.observeDuration(TYPE.A, 0.0001);
  dnsCounters.observeDuration(TYPE.A, 0.003);
  dnsCounters.answerCacheHits = 5;
  dnsCounters.answerCacheDenials = 2;
  dnsCounters.answerCacheMisses = 4;
  const ports: PortMetrics[] = [{ device: 'pw0n1p0', kind: 'pod', pod: 'default/client', stats: { ...clientPort.stats, rxFrames: 3, rxBytes: 300, rxBatches: 1 } }];
  const kubeProxy = new KubeProxySyncs();
  kubeProxy.changed(1000);
  kubeProxy.synced(1500, 1504, 1_700_000_000_000);
  const flows = new FlowsProcessed();
  flows.count('Drop', '', 'DROPPED', 3);
  return {
    counters: pipeline.counters,
    dropCounts: () => pipeline.dropCounts(),
    dropTransports: pipeline.dropTransports,
    conntrack: pipeline.conntrack,
    conntrackMax: 262_144,
    ports: () => ports,
    dns: () => ({ counters: dnsCounters, forwarder, upstreams: ['192.0.2.53:53'] }),
    kubeProxy,
    flows: () => flows,
    ...overrides,
  };
}

/** `name{labels} value` lines of the exposition, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

test('hubble_drop_total counts policy drops by Cilium reason and the transport the path read', async (t) => {
  const text = await nodeRegistry(sources()).metrics();
  const s = samples(text);
  t.is(s.get('hubble_drop_total{reason="POLICY_DENIED",protocol="UDP"}'), 1);
  t.is(s.get('hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"}'), 1);
  t.is(s.get('hubble_drop_total{reason="POLICY_DENIED",protocol="Unknown L4"}'), 1, 'GRE has no transport Hubble names');
  t.is(s.get('podwire_drops_total{reason="policy-denied"}'), 3);
  t.is([...s.keys()].filter((k) => k.startsWith('podwire_drops_total{')).length, DROP_REASONS.length, 'every reason, seen or not');
});

test('CoreDNS families carry CoreDNS label sets and its duration buckets', async (t) => {
  const s = samples(await nodeRegistry(sources()).metrics());
  t.is(s.get('coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="udp",family="1",type="A"}'), 2);
  t.is(s.get('coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="tcp",family="1",type="SRV"}'), 1);
  t.is(s.get('coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NOERROR",plugin="kubernetes"}'), 1);
  t.is(s.get('coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NXDOMAIN",plugin="cache"}'), 1);
  const bucket = (le: string) => s.get(`coredns_dns_request_duration_seconds_bucket{le="${le}",server="dns://:53",zone=".",view="",type="A"}`);
  t.is(bucket('0.00025'), 1);
  t.is(bucket('0.002'), 1);
  t.is(bucket('0.004'), 2, 'buckets are cumulative');
  t.is(bucket('+Inf'), 2);
  t.is([...s.keys()].filter((k) => k.startsWith('coredns_dns_request_duration_seconds_bucket{')).length, COREDNS_TIME_BUCKETS.length + 1);
  t.is(s.get('coredns_cache_hits_total{server="dns://:53",type="success",zones=".",view=""}'), 3);
  t.is(s.get('coredns_cache_hits_total{server="dns://:53",type="denial",zones=".",view=""}'), 2);
  t.is(s.get('coredns_cache_misses_total{server="dns://:53",zones=".",view=""}'), 4);
  t.is(s.get('coredns_forward_requests_total{to="192.0.2.53:53"}'), 0);
});

test('kube-proxy, interface, conntrack and podwire families read what the node keeps', async (t) => {
  const s = samples(await nodeRegistry(sources()).metrics());
  t.is(s.get('kubeproxy_sync_proxy_rules_duration_seconds_count'), 1);
  t.is(s.get('kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"}'), 1);
  t.is(s.get('kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.002"}'), 0);
  t.is(s.get('kubeproxy_network_programming_duration_seconds_bucket{le="0.5"}'), 0);
  t.is(s.get('kubeproxy_network_programming_duration_seconds_bucket{le="1"}'), 1, '504 ms from the change to the end of its sync');
  t.is(s.get('kubeproxy_sync_proxy_rules_last_timestamp_seconds'), 1_700_000_000);
  t.is(s.get('node_network_receive_packets_total{device="pw0n1p0"}'), 3);
  t.is(s.get('node_network_receive_bytes_total{device="pw0n1p0"}'), 300);
  t.is(s.get('podwire_interface_info{device="pw0n1p0",kind="pod",pod="default/client"}'), 1);
  t.is(s.get('node_nf_conntrack_entries_limit'), 262_144);
  t.is(s.get('node_nf_conntrack_entries'), 0, 'denied flows are never confirmed');
  t.is(s.get('podwire_frames_total{path="pod"}'), 3);
  t.is(s.get('podwire_port_wakeups_total{device="pw0n1p0"}'), 1);
  t.is(s.get('hubble_flows_processed_total{type="Drop",subtype="",verdict="DROPPED"}'), 3);
});

test('a node without DNS or a flow ring serves those families empty, never an error', async (t) => {
  const s = samples(await nodeRegistry(sources({ dns: () => undefined, flows: () => undefined })).metrics());
  t.false([...s.keys()].some((k) => k.startsWith('coredns_') || k.startsWith('hubble_flows')));
  t.true(s.has('hubble_drop_total{reason="POLICY_DENIED",protocol="UDP"}'));
});

(havePromtool ? test : test.skip)('promtool check metrics accepts the exposition', async (t) => {
  const text = await nodeRegistry(sources()).metrics();
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
});
