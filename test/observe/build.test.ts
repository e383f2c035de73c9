/**
 * Recorded events made into Hubble flows, end to end in memory: frames into the wired
 * nodes, flows out of the ring through the node's directory and policy, printed as hubble
 * prints them. The seed scenarios of the issue at the level of one node: the DNAT to a
 * backend with the service named, a default deny naming its policy, NXDOMAIN as L7.
 */
import test from 'ava';
import dnsPacket from 'dns-packet';
import { emitEthernet, ETHERNET_HEADER_LEN, ETHERTYPE } from '../../src/packet/ethernet.js';
import { emitIpv4, IPPROTO, IPV4_HEADER_LEN } from '../../src/packet/ipv4.js';
import { emitUdp, UDP_HEADER_LEN } from '../../src/packet/udp.js';
import { buildFlow, flowUuid, type BuildContext } from '../../src/observe/build.js';
import { FlowDirectory } from '../../src/observe/directory.js';
import { type Flow, wallTime } from '../../src/observe/flow.js';
import { identityOf, securityLabels } from '../../src/observe/identity.js';
import { formatCompact, formatJson } from '../../src/observe/printer.js';
import type { DnsAnswerer, Pipeline } from '../../src/datapath/pipeline.js';
import type { Pod } from '../../src/cluster/model.js';
import { cluster as loadYaml, yaml } from '../cluster/helpers.js';
import { nextMac, tcpSyn, udpDatagram, wireCluster, type TestCluster } from '../helpers/datapath.js';

const YAML = yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: build}
  spec: {nodes: 2}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: locked}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, labels: {app: client}}
  spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: deploy-nginx}
  spec:
    replicas: 2
    selector: {matchLabels: {app: webui}}
    template:
      metadata: {labels: {app: webui}}
      spec: {containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: vault, namespace: locked, labels: {app: vault}}
  spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: open, namespace: locked, labels: {app: open}}
  spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: clusterip-service}
  spec: {clusterIP: 10.100.100.100, selector: {app: webui}, ports: [{port: 80, targetPort: 80}]}
  ---
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: default-deny, namespace: locked}
  spec: {podSelector: {}, policyTypes: [Ingress]}
  ---
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: allow-open, namespace: locked}
  spec:
    podSelector: {matchLabels: {app: open}}
    ingress: [{from: [{namespaceSelector: {}}], ports: [{protocol: TCP, port: 80}]}]
`;

const VIP = 0x0a646464;
/** 2024-12-04T14:52:03.118Z, the time of the example line, is where the clock reads zero. */
const ORIGIN_MS = Date.UTC(2024, 11, 4, 14, 52, 3, 118);

function setup() {
  const cluster = loadYaml(YAML);
  const tc = wireCluster(cluster, { random: () => 0 });
  tc.setTime(0);
  return { tc, cluster, client: tc.pod('client') };
}

function contextOf(tc: TestCluster, node: number): BuildContext {
  const p = tc.nodes[node].pipeline;
  const slots = new Map(p.pods().map((x) => [x.name, x.slot]));
  return {
    nodeName: tc.nodes[node].node.name,
    directory: new FlowDirectory(tc.cluster, tc.nodes[node].node.name, slots),
    policy: p.policy,
    time: wallTime(ORIGIN_MS),
    uuid: (seq) => flowUuid('0123456789ab', seq),
  };
}

function flows(tc: TestCluster, node = 0): Flow[] {
  const ring = tc.nodes[node].pipeline.flows!.ring;
  const ctx = contextOf(tc, node);
  const out: Flow[] = [];
  for (let seq = ring.oldest; seq < ring.written; seq++) out.push(buildFlow(ring, seq, ctx)!);
  return out;
}

function from(tc: TestCluster, pod: Pod, dst: number) {
  return { srcMac: pod.mac, dstMac: nextMac(tc.cluster, pod, dst), src: pod.ip, dst };
}

test('curling the ClusterIP: the DNAT to the backend, with the service named, then the connection', (t) => {
  const { tc, client } = setup();
  tc.port(client).inject(tcpSyn(from(tc, client, VIP), 41234, 80));
  const [nat, conn] = flows(tc);
  const backend = tc.cluster.pods.find((p) => formatIp(p.ip) === nat.IP?.destination)!;
  t.true(backend.name.startsWith('deploy-nginx-'));
  t.is(
    formatCompact(nat),
    `Dec  4 14:52:03.118: default/client:41234 (ID:${identityOf(securityLabels('default', client.labels))}) -> default/${backend.name}:80 (ID:${identityOf(securityLabels('default', backend.labels))}) post-xlate-fwd TRANSLATED (TCP Flags: SYN; DNAT 10.100.100.100:80 -> ${formatIp(backend.ip)}:80)\n`,
  );
  t.regex(formatCompact(conn), new RegExp(`^Dec  4 14:52:03\\.118: default/client:41234 \\(ID:\\d+\\) -> default/${backend.name}:80 \\(ID:\\d+\\) to-(endpoint|overlay) FORWARDED \\(TCP Flags: SYN\\)\\n$`));
  t.deepEqual(conn.destination_service, { name: 'clusterip-service', namespace: 'default' });
  t.deepEqual(conn.destination?.workloads, [{ name: 'deploy-nginx', kind: 'Deployment' }]);
  t.is(conn.traffic_direction, 'EGRESS');
  const local = backend.node === 'node-1';
  t.is(conn.trace_observation_point, local ? 'TO_ENDPOINT' : 'TO_OVERLAY');
  t.deepEqual(conn.event_type, { type: 4, sub_type: local ? 0 : 4 });
  t.deepEqual(conn.l4, { TCP: { source_port: 41234, destination_port: 80, flags: { SYN: true } } });
  t.is(conn.uuid, '01234567-89ab-8000-8000-000000000001');
});

function formatIp(addr: number): string {
  return [24, 16, 8, 0].map((s) => (addr >>> s) & 0xff).join('.');
}

test('a flow\'s JSON carries Hubble\'s fields, in the proto\'s order', (t) => {
  const { tc, client } = setup();
  tc.port(client).inject(tcpSyn(from(tc, client, VIP), 41234, 80));
  const conn = flows(tc)[1];
  const json = JSON.parse(formatJson(conn)) as Record<string, unknown>;
  t.deepEqual(Object.keys(json), [
    'time',
    'uuid',
    'verdict',
    'IP',
    'l4',
    'source',
    'destination',
    'Type',
    'node_name',
    'event_type',
    'destination_service',
    'traffic_direction',
    'trace_observation_point',
    'is_reply',
    'Summary',
  ]);
  t.is(json.time, '2024-12-04T14:52:03.118Z');
  t.deepEqual(json.IP, { source: formatIp(client.ip), destination: (json.IP as { destination: string }).destination, ipVersion: 'IPv4' });
  const source = json.source as { ID: number; identity: number; namespace: string; labels: string[]; pod_name: string };
  t.deepEqual(Object.keys(source), ['ID', 'identity', 'namespace', 'labels', 'pod_name']);
  t.deepEqual(source.labels, ['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=default']);
  t.true(source.identity >= 256 && source.identity < 65536);
  t.is(json.node_name, 'node-1');
});

test('replicas of one Deployment share an identity (pod-template-hash is not part of it), other pods do not', (t) => {
  const { cluster } = setup();
  const replicas = cluster.pods.filter((p) => p.name.startsWith('deploy-nginx-'));
  t.is(replicas.length, 2);
  t.true(Object.keys(replicas[0].labels).includes('pod-template-hash'));
  const ids = replicas.map((p) => identityOf(securityLabels(p.namespace, p.labels)));
  t.is(ids[0], ids[1]);
  t.not(ids[0], identityOf(securityLabels('default', { app: 'client' })));
  t.not(identityOf(securityLabels('default', { app: 'web' })), identityOf(securityLabels('other', { app: 'web' })), 'the namespace is a label');
});

test('a default deny: the verdict and the drop both name the policy that isolates the pod', (t) => {
  const { tc, client } = setup();
  const vault = tc.pod('vault', 'locked');
  tc.port(client).inject(tcpSyn(from(tc, client, vault.ip), 43000, 80));
  const [verdict, dropped] = flows(tc);
  const denied = [{ name: 'default-deny', namespace: 'locked', kind: 'NetworkPolicy' }];
  t.regex(formatCompact(verdict), /default\/client:43000 \(ID:\d+\) <> locked\/vault:80 \(ID:\d+\) policy-verdict:none INGRESS DENIED \(TCP Flags: SYN\)\n$/);
  t.regex(formatCompact(verdict, { policyNames: true }), /policy-verdict:none INGRESS DENIED BY default-deny \(NetworkPolicy\) \(TCP Flags: SYN\)\n$/);
  t.deepEqual(verdict.ingress_denied_by, denied);
  t.is(verdict.drop_reason_desc, 'POLICY_DENIED');
  t.regex(formatCompact(dropped), /default\/client:43000 \(ID:\d+\) <> locked\/vault:80 \(ID:\d+\) Policy denied DROPPED \(TCP Flags: SYN\)\n$/);
  t.like(dropped, { verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', traffic_direction: 'INGRESS', trace_observation_point: 'TO_STACK' });
  t.deepEqual(dropped.event_type, { type: 1, sub_type: 133 });
  t.deepEqual(dropped.ingress_denied_by, denied);
  t.is(dropped.is_reply, undefined, 'a drop\'s direction is unknown to Hubble: <>');
});

test('an allowed connection of an isolated pod: ALLOWED by the rule\'s policy, L3-L4 when the rule names peers and ports', (t) => {
  const { tc, client } = setup();
  const open = tc.pod('open', 'locked');
  tc.port(client).inject(tcpSyn(from(tc, client, open.ip), 43001, 80));
  const verdict = flows(tc)[0];
  t.regex(formatCompact(verdict, { policyNames: true }), /policy-verdict:L3-L4 INGRESS ALLOWED BY allow-open \(NetworkPolicy\) \(TCP Flags: SYN\)\n$/);
  t.is(verdict.is_reply, false);
});

test('addresses that are not pods: this node is host, another node remote-node, the outside world', (t) => {
  const { tc } = setup();
  const ctx = contextOf(tc, 0);
  const [n1, n2] = tc.cluster.nodes;
  t.deepEqual(ctx.directory.endpoint(n1.gateway), { identity: 1, labels: ['reserved:host'] });
  t.deepEqual(ctx.directory.endpoint(n2.externalIP), { identity: 6, labels: ['reserved:remote-node'] });
  t.deepEqual(ctx.directory.endpoint(0xc6336401), { identity: 2, labels: ['reserved:world'] });
  const remote = tc.cluster.pods.find((p) => p.node === 'node-2')!;
  t.is(ctx.directory.endpoint(remote.ip).ID, undefined, 'an endpoint ID is its own node\'s');
  t.is(typeof ctx.directory.endpoint(tc.pod('client').ip).ID, 'number');
});

test('a UDP flow that expired is a TRACED end at to-stack', (t) => {
  const { tc, client } = setup();
  const backend = tc.cluster.pods.find((p) => p.name.startsWith('deploy-nginx-'))!;
  tc.port(client).inject(udpDatagram(from(tc, client, backend.ip), 46000, 9000));
  tc.setTime(31e9);
  tc.nodes[0].pipeline.reap(100_000);
  const end = flows(tc).at(-1)!;
  t.regex(formatCompact(end), /^Dec  4 14:52:34\.118: default\/client:46000 \(ID:\d+\) -> default\/deploy-nginx-[a-z0-9-]+:9000 \(ID:\d+\) to-stack TRACED \(UDP connection expired\)\n$/);
});

function dnsQuery(tc: TestCluster, pod: Pod, name: string, sport: number): Buffer {
  const dnsIp = tc.cluster.settings.dnsIP;
  const payload = dnsPacket.encode({ type: 'query', id: 9, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  const frame = Buffer.alloc(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + payload.length);
  const spec = from(tc, pod, dnsIp);
  emitEthernet({ dstMac: spec.dstMac, srcMac: spec.srcMac, ethertype: ETHERTYPE.IPV4 }, frame, 0);
  emitIpv4(
    { src: pod.ip, dst: dnsIp, protocol: IPPROTO.UDP, ttl: 64, payloadLength: UDP_HEADER_LEN + payload.length, dscp: 0, ecn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 },
    frame,
    14,
  );
  payload.copy(frame, 42);
  emitUdp({ srcPort: sport, dstPort: 53 }, frame, 34, payload.length, { src: pod.ip, dst: dnsIp });
  return frame;
}

const nxdomain: DnsAnswerer = {
  fromPod(query, offset, length, _a, _p, out, outOffset) {
    const q = dnsPacket.decode(Buffer.from(query.subarray(offset, offset + length)));
    const answer = dnsPacket.encode({ type: 'response', id: q.id, flags: 3, questions: q.questions });
    out.set(answer, outOffset);
    return { action: 'answer', length: answer.length };
  },
};

test('a lookup of a missing name: the query to kube-dns and its NXDOMAIN back, as L7 flows', (t) => {
  const { tc, client } = setup();
  (tc.nodes[0].pipeline as Pipeline).dns = nxdomain;
  tc.port(client).inject(dnsQuery(tc, client, 'missing.default.svc.cluster.local', 40000));
  const [query, answer] = flows(tc);
  t.regex(
    formatCompact(query),
    /^Dec  4 14:52:03\.118: default\/client:40000 \(ID:\d+\) -> kube-system\/kube-dns:53 \(host\) dns-request proxy FORWARDED \(DNS Query missing\.default\.svc\.cluster\.local\. A\)\n$/,
  );
  t.regex(
    formatCompact(answer),
    /^Dec  4 14:52:03\.118: default\/client:40000 \(ID:\d+\) <- kube-system\/kube-dns:53 \(host\) dns-response proxy FORWARDED \(DNS Answer RCode: Non-Existent Domain TTL: 4294967295 \(Proxy missing\.default\.svc\.cluster\.local\. A\)\)\n$/,
  );
  t.deepEqual(answer.l7, { type: 'RESPONSE', dns: { query: 'missing.default.svc.cluster.local.', ips: [], ttl: 4294967295, observation_source: 'proxy', rcode: 3, qtypes: ['A'], rrtypes: [] } });
  t.is(answer.Type, 'L7');
  t.deepEqual(answer.event_type, { type: 129 });
});

test('an event the ring no longer holds is not made into a flow', (t) => {
  const { tc, client } = setup();
  const ring = tc.nodes[0].pipeline.flows!.ring;
  tc.port(client).inject(tcpSyn(from(tc, client, tc.pod('open', 'locked').ip), 43001, 80));
  t.not(buildFlow(ring, 0, contextOf(tc, 0)), undefined);
  t.is(buildFlow(ring, ring.written, contextOf(tc, 0)), undefined);
  t.is(buildFlow(ring, -1, contextOf(tc, 0)), undefined);
});
