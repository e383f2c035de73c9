import test from 'ava';
import fc from 'fast-check';
import { schedule, type PlacementRequest, type SchedulableNode } from '../../src/cluster/scheduler.js';

const NODES: SchedulableNode[] = [
  { name: 'node-1', labels: { zone: 'a' } },
  { name: 'node-2', labels: { zone: 'b', disk: 'ssd' } },
  { name: 'node-3', labels: { zone: 'a', disk: 'ssd' } },
];
const free: PlacementRequest = { nodeSelector: {} };
const nodesOf = (requests: PlacementRequest[], nodes = NODES) => schedule(nodes, requests).map((p) => (p.ok ? nodes[p.node].name : p.reason));

test('spread: the node with the fewest pods, ties to the earlier node', (t) => {
  t.deepEqual(nodesOf([free, free, free, free, free]), ['node-1', 'node-2', 'node-3', 'node-1', 'node-2']);
});

test('nodeName is honoured, and counted before anything is spread', (t) => {
  // The pinned pods come last in the input, yet the free pods avoid node-1.
  t.deepEqual(nodesOf([free, free, { nodeName: 'node-1', nodeSelector: {} }, { nodeName: 'node-1', nodeSelector: {} }]), [
    'node-2',
    'node-3',
    'node-1',
    'node-1',
  ]);
});

test('nodeSelector restricts the candidates; spreading happens among them', (t) => {
  const ssd: PlacementRequest = { nodeSelector: { disk: 'ssd' } };
  t.deepEqual(nodesOf([ssd, ssd, ssd, { nodeSelector: { zone: 'a', disk: 'ssd' } }]), ['node-2', 'node-3', 'node-2', 'node-3']);
});

test('failures name the reason', (t) => {
  t.deepEqual(nodesOf([{ nodeName: 'node-9', nodeSelector: {} }]), ['node "node-9" does not exist (nodes: node-1, node-2, node-3)']);
  t.deepEqual(nodesOf([{ nodeSelector: { disk: 'hdd' } }]), ['0/3 nodes match disk=hdd']);
  t.deepEqual(nodesOf([{ nodeName: 'node-1', nodeSelector: { disk: 'ssd' } }]), ['node node-1 (from spec.nodeName) does not match disk=ssd']);
  const [failure] = schedule(NODES, [{ nodeName: 'x', nodeSelector: {} }]);
  t.like(failure, { ok: false, field: 'nodeName' });
});

test('a failed pod does not count towards any node', (t) => {
  t.deepEqual(nodesOf([{ nodeSelector: { disk: 'hdd' } }, free]), ['0/3 nodes match disk=hdd', 'node-1']);
});

test('property: deterministic, and free pods stay balanced within one', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 100 }), (nodeCount, podCount) => {
      const nodes = Array.from({ length: nodeCount }, (_, i) => ({ name: `n${i}`, labels: {} }));
      const pods = new Array<PlacementRequest>(podCount).fill(free);
      const first = schedule(nodes, pods);
      const load = new Array<number>(nodeCount).fill(0);
      for (const p of first) if (p.ok) load[p.node]++;
      return JSON.stringify(first) === JSON.stringify(schedule(nodes, pods)) && Math.max(...load) - Math.min(...load) <= 1;
    }),
  );
  t.pass();
});
