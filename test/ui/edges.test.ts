import test from 'ava';
import fc from 'fast-check';
import type { Flow } from '../../src/observe/flow.js';
import { deniedBy, flowEdges } from '../../src/ui/edges.js';

const base = { time: '2026-12-06T21:02:31.871470648Z', Type: 'L3_L4', event_type: { type: 4 } } as const;
const client = { namespace: 'default', pod_name: 'client' };
const backend = { namespace: 'default', pod_name: 'deploy-nginx-1' };

test("a translated flow lights the client's edge to the Service and the Service's to the backend it chose", (t) => {
  const flow: Flow = { ...base, verdict: 'TRANSLATED', IP: { source: '10.244.2.3', destination: '10.244.1.3' }, source: client, destination: backend, destination_service: { name: 'clusterip-service', namespace: 'default' }, is_reply: false };
  t.deepEqual(flowEdges(flow), [
    { key: 'pod:default/client>svc:default/clusterip-service', from: 'pod:default/client', to: 'svc:default/clusterip-service' },
    { key: 'svc:default/clusterip-service>pod:default/deploy-nginx-1', from: 'svc:default/clusterip-service', to: 'pod:default/deploy-nginx-1' },
  ]);
});

test('a reply lights the edge of the connection it answers, client to server', (t) => {
  const flow: Flow = { ...base, verdict: 'FORWARDED', IP: { source: '10.244.1.3', destination: '10.244.2.3' }, source: backend, destination: client, is_reply: true };
  t.deepEqual(flowEdges(flow).map((e) => e.key), ['pod:default/client>pod:default/deploy-nginx-1']);
  const translatedReply: Flow = { ...flow, source_service: { name: 'clusterip-service', namespace: 'default' } };
  t.deepEqual(flowEdges(translatedReply).map((e) => e.key), ['pod:default/client>svc:default/clusterip-service', 'svc:default/clusterip-service>pod:default/deploy-nginx-1']);
});

test('an address no pod holds is its own end; the cluster DNS answering at its Service address is the Service', (t) => {
  const outside: Flow = { ...base, verdict: 'FORWARDED', IP: { source: '192.0.2.100', destination: '10.244.1.3' }, destination: backend, is_reply: false };
  t.deepEqual(flowEdges(outside).map((e) => e.key), ['ip:192.0.2.100>pod:default/deploy-nginx-1']);
  const dns: Flow = { ...base, verdict: 'FORWARDED', Type: 'L7', IP: { source: '10.244.2.3', destination: '10.96.0.10' }, source: client, destination_service: { name: 'kube-dns', namespace: 'kube-system' }, is_reply: false };
  t.deepEqual(flowEdges(dns).map((e) => e.key), ['pod:default/client>svc:kube-system/kube-dns']);
  const answer: Flow = { ...dns, IP: { source: '10.96.0.10', destination: '10.244.2.3' }, source: undefined, destination: client, destination_service: undefined, source_service: { name: 'kube-dns', namespace: 'kube-system' }, is_reply: true };
  t.deepEqual(flowEdges(answer).map((e) => e.key), ['pod:default/client>svc:kube-system/kube-dns']);
});

test('frames without addresses, and multicast or broadcast, light no edge', (t) => {
  t.deepEqual(flowEdges({ ...base, verdict: 'DROPPED', ethernet: { source: '02:00:00:00:00:01', destination: '33:33:00:00:00:02' } }), []);
  t.deepEqual(flowEdges({ ...base, verdict: 'FORWARDED', IP: { source: '192.0.2.1', destination: '224.0.0.22' } }), []);
  t.deepEqual(flowEdges({ ...base, verdict: 'FORWARDED', IP: { source: '10.244.1.2', destination: '255.255.255.255' }, source: backend }), []);
});

test('a dropped flow names the policies that denied it, namespace/name', (t) => {
  const flow: Flow = { ...base, verdict: 'DROPPED', ingress_denied_by: [{ name: 'default-deny', namespace: 'default', kind: 'KubernetesNetworkPolicy' }], egress_denied_by: [{ name: 'no-egress', kind: 'KubernetesNetworkPolicy' }] };
  t.deepEqual(deniedBy(flow), ['no-egress', 'default/default-deny']);
  t.deepEqual(deniedBy({ ...base, verdict: 'FORWARDED' }), []);
});

test('edges are keyed FROM>TO by their ends, and a pod without a namespace is in default', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.ipV4(), fc.ipV4(), fc.boolean(), fc.option(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), { nil: undefined }), (src, dst, reply, pod) => {
      const flow: Flow = { ...base, verdict: 'FORWARDED', IP: { source: src, destination: dst }, ...(pod !== undefined ? { source: { pod_name: pod } } : {}), is_reply: reply };
      for (const e of flowEdges(flow)) {
        if (e.key !== `${e.from}>${e.to}`) return false;
        if (pod !== undefined && !reply && e.from !== `pod:default/${pod}`) return false;
      }
      return true;
    }),
  ));
});
