import test from 'ava';
import type { TraceArgs } from '../../src/node/control-protocol.js';
import type { TraceResult } from '../../src/node/trace.js';
import { ApiError } from '../../src/ui/requests.js';
import { tracePath } from '../../src/ui/trace-path.js';
import { demoCluster } from './fixtures.js';

const cluster = demoCluster();
const client = cluster.pods.find((p) => p.name === 'client')!;
const backend = cluster.pods.find((p) => p.labels.app === 'webui' && p.node !== client.node)!;
const service = cluster.services[0];

function stage(name: string): { stage: string; detail: string[] } {
  return { stage: name, detail: [`${name} said so`] };
}

test('a packet DNATed on its node and encapsulated is traced again on the receiving node, from the sender, as it left', async (t) => {
  const calls: [string, TraceArgs][] = [];
  const packet = { src: client.ip, dst: backend.ip, sport: 40000, dport: 80 };
  const answers: Record<string, TraceResult> = {
    [client.node]: { stages: [stage('pod-ingress'), stage('service-nat'), stage('route')], verdict: 'delivered', outcome: 'encapsulated', packet, egress: `node ${backend.node}` },
    [backend.node]: { stages: [stage('decap'), stage('policy')], verdict: 'delivered', outcome: 'to pod', packet, egress: `pod default/${backend.name}` },
  };
  const path = await tracePath(cluster, { from: { kind: 'pod', namespace: 'default', name: 'client' }, dst: service.clusterIP!, port: 80, proto: 'tcp' }, async (node, args) => {
    calls.push([node, args]);
    return answers[node];
  });
  t.deepEqual(calls, [
    [client.node, { from: 'client', namespace: 'default', dst: service.clusterIP!, dport: 80, proto: 'tcp' }],
    [backend.node, { from: `node:${client.node}`, namespace: 'default', dst: backend.ip, dport: 80, sport: 40000, src: client.ip, proto: 'tcp' }],
  ]);
  t.deepEqual(path.path, ['pod:default/client', `node:${client.node}`, 'svc:default/clusterip-service', `node:${backend.node}`, `pod:default/${backend.name}`]);
  const from = cluster.nodes.find((n) => n.name === client.node)!;
  const to = cluster.nodes.find((n) => n.name === backend.node)!;
  t.deepEqual(path.hops[0].overlay, { to: backend.node, outer: { src: `127.77.${(from.underlay >>> 8) & 0xff}.${from.underlay & 0xff}`, dst: `127.77.${(to.underlay >>> 8) & 0xff}.${to.underlay & 0xff}:4789`, vni: 1 } });
  t.is(path.hops[1].overlay, undefined);
  t.like(path, { verdict: 'delivered', outcome: 'to pod', request: { from: 'default/client', to: '10.100.100.100:80', proto: 'tcp' } });
});

test('a drop ends the path at the node that dropped it, with its reason', async (t) => {
  const path = await tracePath(cluster, { from: { kind: 'pod', namespace: 'default', name: 'client' }, dst: backend.ip, port: 80, proto: 'tcp' }, async () => ({
    stages: [stage('pod-ingress'), stage('policy')],
    verdict: 'dropped',
    outcome: 'dropped at policy: denied by a NetworkPolicy',
    dropReason: 'policy-denied',
  }));
  t.deepEqual(path.path, ['pod:default/client', `node:${client.node}`]);
  t.like(path, { verdict: 'dropped', dropReason: 'policy-denied' });
  t.is(path.hops.length, 1);
});

test('an outside packet enters the node whose address it is sent to; a pod that does not exist is a 404', async (t) => {
  const node2 = cluster.nodes[1];
  const seen: string[] = [];
  const path = await tracePath(cluster, { from: { kind: 'outside', ip: 0xc0000264 }, dst: node2.externalIP, port: 30080, proto: 'tcp' }, async (node, args) => {
    seen.push(`${node} ${args.from}`);
    return { stages: [stage('uplink-ingress')], verdict: 'dropped', outcome: 'no such NodePort', dropReason: 'no-service' };
  });
  t.deepEqual(seen, [`${node2.name} outside:192.0.2.100`]);
  t.is(path.path[0], 'ip:192.0.2.100');
  const err = await t.throwsAsync(tracePath(cluster, { from: { kind: 'pod', namespace: 'default', name: 'nobody' }, dst: 1, port: 80, proto: 'tcp' }, async () => t.fail() as never), { instanceOf: ApiError });
  t.is(err?.status, 404);
});

test('nodes that keep sending the packet on to each other are followed once each, then shown as they are', async (t) => {
  let calls = 0;
  const path = await tracePath(cluster, { from: { kind: 'pod', namespace: 'default', name: 'client' }, dst: backend.ip, port: 80, proto: 'tcp' }, async (node) => {
    calls++;
    const other = cluster.nodes.find((n) => n.name !== node)!.name;
    return { stages: [stage('route')], verdict: 'delivered', outcome: `encapsulated to ${other}`, packet: { src: client.ip, dst: backend.ip, sport: 1, dport: 80 }, egress: `node ${other}` };
  });
  t.is(calls, cluster.nodes.length + 1);
  t.is(path.hops.length, cluster.nodes.length + 1);
});

test('a packet encapsulated to a node this machine cannot ask ends the drawn path there, saying where it goes on', async (t) => {
  const packet = { src: client.ip, dst: backend.ip, sport: 40000, dport: 80 };
  const path = await tracePath(cluster, { from: { kind: 'pod', namespace: 'default', name: 'client' }, dst: service.clusterIP!, port: 80, proto: 'tcp', underlayPorts: new Map([[backend.node, 8472]]) }, async (node) =>
    node === client.node ? { stages: [stage('service-nat')], verdict: 'delivered', outcome: 'encapsulated', packet, egress: `node ${backend.node}` } : undefined,
  );
  t.is(path.continuesOn, backend.node);
  t.is(path.hops.length, 1);
  t.regex(path.hops[0].overlay!.outer.dst, /:8472$/);
  t.deepEqual(path.path, ['pod:default/client', `node:${client.node}`, 'svc:default/clusterip-service', `node:${backend.node}`]);
  const err = await t.throwsAsync(tracePath(cluster, { from: { kind: 'pod', namespace: 'default', name: 'client' }, dst: backend.ip, port: 80, proto: 'tcp' }, async () => undefined), { instanceOf: ApiError });
  t.regex(err!.message, /not reachable from this machine/);
});
