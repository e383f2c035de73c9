/**
 * The controller's pod pass: golden cases for each rule (scale, template change, a node that
 * left, a NotReady node, nodeName reasons, address reuse, spread, standalone pods), and
 * properties over sequences of changes: counts, unique names and addresses, addresses inside
 * the node's block, and a second pass over the result planning nothing.
 */
import test from 'ava';
import fc from 'fast-check';
import * as assert from 'node:assert/strict';
import { cidrContains, cidrSize, formatIpv4 } from '../../src/packet/addr.js';
import type { Cluster, Pod } from '../../src/cluster/model.js';
import { podMac } from '../../src/cluster/ipam.js';
import { seededRandom } from '../../src/cluster/random.js';
import { planPods, type NodeView, type PodPlan } from '../../src/controller/replicas.js';
import { cluster, yaml } from '../cluster/helpers.js';

const NAME = /^web-[bcdfghjklmnpqrstvwxz2456789]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Three nodes (two in zone a), a Deployment `web` and the standalone pods `extra`. */
function world(opts: { replicas?: number; image?: string; webSelector?: string; extra?: string } = {}): Cluster {
  return cluster(yaml`
    apiVersion: podwire.dev/v1alpha1
    kind: Cluster
    spec:
      nodes:
        - {name: n1, labels: {zone: a}}
        - {name: n2, labels: {zone: a}}
        - {name: n3, labels: {zone: b}}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: ${opts.replicas ?? 3}
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          nodeSelector: ${opts.webSelector ?? '{}'}
          containers: [{name: c, image: ${opts.image ?? 'nginx:1'}}]
    ${opts.extra ?? ''}
  `);
}

const pod = (name: string, spec: string, labels = '{role: tool}'): string => yaml`
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: ${name}, labels: ${labels}}
  spec: ${spec}
`;

function views(c: Cluster, opts: { notReady?: readonly string[]; gone?: readonly string[] } = {}): NodeView[] {
  return c.nodes
    .filter((n) => !(opts.gone ?? []).includes(n.name))
    .map((n) => ({ name: n.name, labels: n.labels, podCIDR: n.podCIDR, ready: !(opts.notReady ?? []).includes(n.name) }));
}

const desiredOf = (c: Cluster) => ({ deployments: c.deployments, pods: c.pods.filter((p) => p.owner === undefined) });

function plan(c: Cluster, bound: readonly Pod[], nodes: readonly NodeView[] = views(c), seed = 1): PodPlan {
  return planPods({ desired: desiredOf(c), nodes, bound, random: seededRandom(seed) });
}

/** The pods after the plan is carried out: the kept ones in their order, then the new ones. */
const apply = (bound: readonly Pod[], p: PodPlan): Pod[] => [...bound.filter((b) => !p.remove.includes(b)), ...p.create];

const where = (pods: readonly Pod[]): string[] => pods.map((p) => `${p.node} ${formatIpv4(p.ip)}`);
const web = (pods: readonly Pod[]): Pod[] => pods.filter((p) => p.owner?.name === 'web');
const empty = (p: PodPlan): boolean => p.create.length === 0 && p.remove.length === 0 && p.pending.length === 0;

test('the pods a load placed are already what is desired: nothing to do, and the deployment lists them', (t) => {
  const c = world({ extra: pod('tool', '{containers: [{name: c, image: busybox}]}') });
  const p = plan(c, c.pods);
  t.true(empty(p));
  t.deepEqual(p.deployments.map((d) => d.pods), [web(c.pods).map((x) => x.name)]);
});

test('from nothing: standalone pods first, replicas spread fewest-pods first, lowest addresses, names from the template hash', (t) => {
  const c = world({ extra: pod('tool', '{containers: [{name: c, image: busybox}]}') });
  const p = plan(c, []);
  t.deepEqual(p.create.map((x) => x.name.replace(NAME, 'web-*')), ['tool', 'web-*', 'web-*', 'web-*']);
  t.deepEqual(where(p.create), ['n1 10.244.1.2', 'n2 10.244.2.2', 'n3 10.244.3.2', 'n1 10.244.1.3']);
  for (const x of p.create) {
    t.regex(x.uid, UUID);
    t.is(x.mac, podMac(x.ip));
  }
  const hash = c.deployments[0].podTemplateHash;
  for (const x of web(p.create)) {
    t.true(x.name.startsWith(`web-${hash}-`));
    t.deepEqual(x.owner, { kind: 'Deployment', name: 'web', podTemplateHash: hash });
    t.is(x.labels['pod-template-hash'], hash);
  }
  t.deepEqual(p.deployments[0].pods, web(p.create).map((x) => x.name));
  t.deepEqual(plan(c, []), p, 'deterministic for a given random');
  t.notDeepEqual(plan(c, [], views(c), 2).create.map((x) => x.uid), p.create.map((x) => x.uid), 'another seed, other uids');
});

test('scaling up adds replicas on the least-loaded nodes without touching the others', (t) => {
  const bound = world().pods; // n1 .2, n2 .2, n3 .2
  const p = plan(world({ replicas: 5 }), bound);
  t.deepEqual(p.remove, []);
  t.deepEqual(where(p.create), ['n1 10.244.1.3', 'n2 10.244.2.3']);
  t.deepEqual(p.deployments[0].pods, [...bound, ...p.create].map((x) => x.name), 'old replicas first, in creation order');
});

test('scaling down removes the newest replicas first', (t) => {
  const up = apply(world().pods, plan(world({ replicas: 5 }), world().pods));
  const p = plan(world({ replicas: 2 }), up);
  t.deepEqual(p.remove.map((x) => x.name), up.slice(2).map((x) => x.name));
  t.deepEqual(p.create, []);
  t.deepEqual(p.deployments[0].pods, up.slice(0, 2).map((x) => x.name));
  t.deepEqual(plan(world({ replicas: 0 }), up).remove, up);
});

test('scaling down takes the replicas on a NotReady node before newer ready ones', (t) => {
  const bound = world().pods;
  const p = plan(world({ replicas: 2 }), bound, views(world(), { notReady: ['n1'] }));
  t.deepEqual(where(p.remove), ['n1 10.244.1.2']);
});

test('a template change replaces every replica with the new hash; the old addresses are not reused in the same pass', (t) => {
  const before = world();
  const after = world({ image: 'nginx:2' });
  t.not(after.deployments[0].podTemplateHash, before.deployments[0].podTemplateHash);
  const p = plan(after, before.pods);
  t.deepEqual(p.remove, before.pods);
  t.deepEqual(where(p.create), ['n1 10.244.1.3', 'n2 10.244.2.3', 'n3 10.244.3.3']);
  for (const x of p.create) t.is(x.owner?.podTemplateHash, after.deployments[0].podTemplateHash);
  t.true(empty(plan(after, apply(before.pods, p))));
});

test('a removed address is the lowest free one again in the next pass', (t) => {
  const c = world({ replicas: 0, extra: pod('a', '{nodeName: n1, containers: [{name: c, image: i}]}') + pod('b', '{nodeName: n1, containers: [{name: c, image: i}]}') });
  const start = c.pods; // a .2, b .3 on n1
  t.deepEqual(where(start), ['n1 10.244.1.2', 'n1 10.244.1.3']);
  const withoutA = world({ replicas: 0, extra: pod('b', '{nodeName: n1, containers: [{name: c, image: i}]}') });
  const gone = apply(start, plan(withoutA, start));
  t.deepEqual(gone.map((x) => x.name), ['b']);
  const p = plan(world({ replicas: 1, webSelector: '{zone: a}', extra: pod('b', '{nodeName: n1, containers: [{name: c, image: i}]}') }), gone, views(c, { notReady: ['n2'] }));
  t.deepEqual(where(p.create), ['n1 10.244.1.2']);
});

test('a node that left: its pods are removed, a deployment\'s replaced and a standalone one made again on the nodes that remain', (t) => {
  const c = world({ extra: pod('pinned', '{nodeName: n1, containers: [{name: c, image: i}]}') + pod('free', '{containers: [{name: c, image: i}]}') });
  const onN1 = c.pods.filter((x) => x.node === 'n1');
  t.deepEqual(onN1.map((x) => x.name.replace(NAME, 'web-*')), ['web-*', 'pinned']);
  const p = plan(c, c.pods, views(c, { gone: ['n1'] }));
  t.deepEqual(p.remove, onN1);
  t.deepEqual(p.pending, [{ namespace: 'default', name: 'pinned', reason: 'node "n1" does not exist (nodes: n2, n3)' }]);
  t.deepEqual(p.create.map((x) => `${x.name.replace(NAME, 'web-*')} ${x.node} ${formatIpv4(x.ip)}`), ['web-* n3 10.244.3.3']);
  t.is(web(apply(c.pods, p)).length, 3);
  const lone = world({ replicas: 0, extra: pod('free', '{containers: [{name: c, image: i}]}') });
  t.deepEqual(where(lone.pods), ['n1 10.244.1.2']);
  const again = plan(lone, lone.pods, views(lone, { gone: ['n1'] }), 5);
  t.deepEqual([where(again.remove), where(again.create)], [['n1 10.244.1.2'], ['n2 10.244.2.2']]);
  t.not(again.create[0].uid, lone.pods[0].uid);
});

test('a NotReady node keeps its pods, counted, and gets no new ones', (t) => {
  const c = world();
  const nodes = views(c, { notReady: ['n2'] });
  t.true(empty(plan(c, c.pods, nodes)), 'nothing is evicted');
  const p = plan(world({ replicas: 5 }), c.pods, nodes);
  t.deepEqual(where(p.create), ['n1 10.244.1.3', 'n3 10.244.3.3']);
});

test('spec.nodeName binds to a Ready node, or the pod waits with the reason', (t) => {
  const spec = (extra: string) => `{${extra}containers: [{name: c, image: i}]}`;
  const c = world({ replicas: 0, extra: pod('ok', spec('nodeName: n3, ')) });
  t.deepEqual(where(plan(c, []).create), ['n3 10.244.3.2']);
  const reasons = (extra: string, nodes?: (c: Cluster) => NodeView[]): string[] => {
    const w = world({ replicas: 0, extra: pod('p', spec(extra)) });
    const p = plan(w, [], nodes?.(w) ?? views(w));
    return p.pending.map((x) => `${x.name}: ${x.reason}`);
  };
  t.deepEqual(reasons('nodeName: n3, ', (w) => views(w, { gone: ['n3'] })), ['p: node "n3" does not exist (nodes: n1, n2)']);
  t.deepEqual(reasons('nodeName: n3, ', (w) => views(w, { notReady: ['n3'] })), ['p: node n3 (from spec.nodeName) is not ready']);
  t.deepEqual(reasons('nodeName: n3, nodeSelector: {zone: b}, ', (w) => views(w).map((n) => (n.name === 'n3' ? { ...n, labels: { zone: 'c' } } : n))), ['p: node n3 (from spec.nodeName) does not match zone=b']);
});

test('a spread pod that fits nowhere waits with kube-scheduler\'s counted reasons', (t) => {
  const c = world({ webSelector: '{zone: b}' });
  const p = plan(c, [], views(c, { notReady: ['n3'] }));
  t.deepEqual(p.create, []);
  t.is(p.pending.length, 3);
  for (const x of p.pending) t.regex(x.name, NAME);
  t.deepEqual([...new Set(p.pending.map((x) => x.reason))], ["0/3 nodes are available: 1 node(s) were not ready, 2 node(s) didn't match Pod's node affinity/selector."]);
  t.deepEqual(p.deployments[0].pods, [], 'pending replicas are not the deployment\'s pods yet');
  t.deepEqual(plan(c, [], []).pending[0].reason, 'no nodes available to schedule pods');
});

test('a full pod CIDR: the next pod goes elsewhere, or waits when it is bound there', (t) => {
  const c = world({ replicas: 0 });
  const n1 = c.nodes[0];
  // Fill n1 from .2 to .253, the last address a pod may take (.254 is the DNS relay).
  const filler: Pod[] = Array.from({ length: cidrSize(n1.podCIDR) - 4 }, (_, i) => ({ ...c.pods[0], ...fillerPod(n1.podCIDR.base + 2 + i, i) }));
  function fillerPod(ip: number, i: number): Pod {
    return { namespace: 'default', name: `f${i}`, uid: `u${i}`, labels: {}, node: 'n1', ip, mac: podMac(ip), nodeSelector: {}, dnsPolicy: 'ClusterFirst', containers: [], hostAliases: [], enableServiceLinks: true, restartPolicy: 'Always', serviceAccountName: 'default', volumes: [], securityContext: { supplementalGroups: [] }, origin: { file: 'x', document: 1, line: 1 } };
  }
  const desired = { deployments: c.deployments, pods: filler };
  const nodes = views(c).filter((n) => n.name === 'n1');
  t.true(empty(planPods({ desired, nodes, bound: filler, random: seededRandom(1) })), 'the filler is as declared');
  const more = planPods({ desired: { ...desired, deployments: [{ ...c.deployments[0], replicas: 1 }] }, nodes, bound: filler, random: seededRandom(1) });
  t.deepEqual(more.pending.map((x) => x.reason), ['0/1 nodes are available: 1 node(s) had no free pod address.']);
  const pinned = world({ replicas: 0, extra: pod('late', '{nodeName: n1, containers: [{name: c, image: i}]}') }).pods[0];
  const bound = planPods({ desired: { deployments: [], pods: [...filler, pinned] }, nodes, bound: filler, random: seededRandom(1) });
  t.deepEqual(bound.pending.map((x) => x.reason), ['no pod address left on node n1: 10.244.1.0/24 is full']);
});

test('standalone pods: kept when unchanged (where they were declared does not count), replaced when spec, labels or placement change, removed when gone', (t) => {
  const spec = '{containers: [{name: c, image: busybox}]}';
  const c = world({ replicas: 0, extra: pod('tool', spec) });
  const bound = c.pods;
  const moved = world({ replicas: 0, extra: `---\n# a comment moves the document\n${pod('tool', spec).slice(4)}` });
  t.not(moved.pods[0].origin.line, bound[0].origin.line);
  t.true(empty(plan(moved, bound)));
  for (const changed of [pod('tool', '{containers: [{name: c, image: busybox:2}]}'), pod('tool', spec, '{role: other}'), pod('tool', '{nodeSelector: {zone: b}, containers: [{name: c, image: busybox}]}'), pod('tool', '{nodeName: n2, containers: [{name: c, image: busybox}]}')]) {
    const p = plan(world({ replicas: 0, extra: changed }), bound, undefined, 5);
    t.deepEqual(p.remove, bound, changed);
    t.deepEqual(p.create.map((x) => x.name), ['tool']);
    t.not(p.create[0].uid, bound[0].uid, 'a fresh uid');
  }
  t.deepEqual(plan(world({ replicas: 0 }), bound).remove, bound);
});

test('a declared pod named like an existing replica waits rather than making a second pod of that name', (t) => {
  const c = world({ replicas: 1 });
  const replica = c.pods[0].name;
  const p = plan(world({ replicas: 1, extra: pod(replica, '{containers: [{name: c, image: i}]}') }), c.pods);
  t.deepEqual([p.create, p.remove], [[], []]);
  t.deepEqual(p.pending, [{ namespace: 'default', name: replica, reason: `a pod named default/${replica} exists already` }]);
});

test('pods of a deployment no longer declared are removed; a pod whose address left its node\'s block is replaced', (t) => {
  const c = world();
  const p = planPods({ desired: { deployments: [], pods: [] }, nodes: views(c), bound: c.pods, random: seededRandom(1) });
  t.deepEqual(p.remove, c.pods);
  // n1 came back with another subnet: its pod's old address routes nowhere now.
  const nodes = views(c).map((n) => (n.name === 'n1' ? { ...n, podCIDR: { base: n.podCIDR.base + 16 * 256, prefix: 24 } } : n));
  const moved = plan(c, c.pods, nodes);
  t.deepEqual(where(moved.remove), ['n1 10.244.1.2']);
  t.deepEqual(where(moved.create), ['n1 10.244.17.2']);
});

test('spread counts every kept pod, pinned ones included, and breaks ties by node order', (t) => {
  const pinned = pod('p1', '{nodeName: n1, containers: [{name: c, image: i}]}') + pod('p2', '{nodeName: n1, containers: [{name: c, image: i}]}');
  const c = world({ replicas: 0, extra: pinned });
  const p = plan(world({ replicas: 5, extra: pinned }), c.pods);
  t.deepEqual(where(p.create), ['n2 10.244.2.2', 'n3 10.244.3.2', 'n2 10.244.2.3', 'n3 10.244.3.3', 'n1 10.244.1.4']);
  const reordered = views(c).reverse();
  t.deepEqual(where(plan(world({ replicas: 2, extra: pinned }), c.pods, reordered).create), ['n3 10.244.3.2', 'n2 10.244.2.2'], 'ties follow the order nodes are given in');
});

// ---------------------------------------------------------------------------------------------
// Properties over sequences of changes.

interface Shape {
  readonly zones: readonly ('a' | 'b')[];
  readonly deployments: readonly { replicas: number; zone?: 'a' | 'b'; image: number }[];
  readonly pods: readonly { node?: number; zone?: 'a' | 'b' }[];
}

type Step =
  | { kind: 'scale'; d: number; replicas: number }
  | { kind: 'image'; d: number }
  | { kind: 'ready'; node: number; ready: boolean }
  | { kind: 'leave' | 'join'; node: number };

/** A loadable cluster: selectors name zones some node has, nodeName a node that exists. */
function shapeCluster(s: Shape): Cluster {
  const zone = (z: 'a' | 'b' | undefined): string => (z === undefined || !s.zones.includes(z) ? '{}' : `{zone: ${z}}`);
  const docs = [
    `apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes:\n${s.zones.map((z, i) => `    - {name: n${i}, labels: {zone: ${z}}}\n`).join('')}`,
    ...s.deployments.map(
      (d, i) =>
        `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d${i}}\nspec:\n  replicas: ${d.replicas}\n  selector: {matchLabels: {app: d${i}}}\n  template:\n    metadata: {labels: {app: d${i}}}\n    spec: {nodeSelector: ${zone(d.zone)}, containers: [{name: c, image: img${d.image}}]}\n`,
    ),
    ...s.pods.map((p, i) => {
      const nodeName = p.node === undefined ? '' : `nodeName: n${p.node % s.zones.length}, `;
      return `apiVersion: v1\nkind: Pod\nmetadata: {name: s${i}}\nspec: {${nodeName}nodeSelector: ${p.node === undefined ? zone(p.zone) : '{}'}, containers: [{name: c, image: i}]}\n`;
    }),
  ];
  return cluster(docs.join('---\n'));
}

const arbZone = fc.constantFrom<'a' | 'b'>('a', 'b');
const arbShape: fc.Arbitrary<Shape> = fc.record({
  zones: fc.array(arbZone, { minLength: 1, maxLength: 4 }),
  deployments: fc.array(fc.record({ replicas: fc.integer({ min: 0, max: 6 }), zone: fc.option(arbZone, { nil: undefined }), image: fc.constant(0) }), { maxLength: 3 }),
  pods: fc.array(fc.record({ node: fc.option(fc.nat(3), { nil: undefined }), zone: fc.option(arbZone, { nil: undefined }) }), { maxLength: 3 }),
});
const arbStep: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('scale' as const), d: fc.nat(2), replicas: fc.integer({ min: 0, max: 8 }) }),
  fc.record({ kind: fc.constant('image' as const), d: fc.nat(2) }),
  fc.record({ kind: fc.constant('ready' as const), node: fc.nat(3), ready: fc.boolean() }),
  fc.record({ kind: fc.constantFrom('leave' as const, 'join' as const), node: fc.nat(3) }),
);

/** Checks one pass's result against the rules; throws (so fast-check shrinks) when one breaks. */
function checkPass(desired: Cluster, nodes: readonly NodeView[], before: readonly Pod[], p: PodPlan, seed: number): Pod[] {
  const after = apply(before, p);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const keys = after.map((x) => `${x.namespace}/${x.name}`);
  assert.equal(new Set(keys).size, keys.length, `a name twice: ${keys.join(' ')}`);
  const ips = after.map((x) => x.ip);
  assert.equal(new Set(ips).size, ips.length, `an address twice: ${where(after).join(', ')}`);
  for (const x of after) assert.ok(byName.has(x.node), `${x.name} on ${x.node}, which left`);
  for (const x of p.create) {
    const node = byName.get(x.node)!;
    assert.ok(node.ready, `${x.name} created on NotReady ${x.node}`);
    const offset = x.ip - node.podCIDR.base;
    assert.ok(cidrContains(node.podCIDR, x.ip) && offset >= 2 && offset <= 253, `${x.name} at ${formatIpv4(x.ip)} on ${x.node}`);
    assert.equal(x.mac, podMac(x.ip));
  }
  for (const d of desired.deployments) {
    const mine = after.filter((x) => x.owner?.name === d.name);
    for (const x of mine) assert.equal(x.owner?.podTemplateHash, d.podTemplateHash, `${x.name} of an older template`);
    const placeable = nodes.some((n) => n.ready && Object.entries(d.template.spec.nodeSelector).every(([k, v]) => n.labels[k] === v));
    if (placeable) assert.equal(mine.length, d.replicas, `${d.name}: ${mine.length} of ${d.replicas}`);
    else assert.ok(mine.length <= d.replicas);
    const listed = p.deployments.find((x) => x.name === d.name)!;
    assert.deepEqual([...listed.pods].sort(), mine.map((x) => x.name).sort());
  }
  for (const s of desired.pods.filter((x) => x.owner === undefined)) {
    const copies = after.filter((x) => x.name === s.name).length;
    const target = s.nodeName === undefined ? undefined : byName.get(s.nodeName);
    const placeable = s.nodeName === undefined ? nodes.some((n) => n.ready && Object.entries(s.nodeSelector).every(([k, v]) => n.labels[k] === v)) : target?.ready === true;
    assert.ok(copies <= 1);
    if (placeable) assert.equal(copies, 1, `${s.name} missing`);
  }
  const again = planPods({ desired: desiredOf(desired), nodes, bound: after, random: seededRandom(seed + 1) });
  assert.deepEqual([again.create.map((x) => x.name), again.remove.map((x) => x.name)], [[], []], 'a second pass plans nothing');
  return after;
}

test('property: over any sequence of scaling, template changes, readiness and nodes leaving and joining, every pass reaches the desired state and a second pass plans nothing', (t) => {
  fc.assert(
    fc.property(arbShape, fc.array(arbStep, { maxLength: 8 }), fc.boolean(), fc.nat(), (shape, steps, fromLoad, seed) => {
      let s = shape;
      const ready = shape.zones.map(() => true);
      const present = shape.zones.map(() => true);
      let desired = shapeCluster(s);
      const nodesNow = (): NodeView[] => views(desired, { notReady: desired.nodes.filter((_, i) => !ready[i]).map((n) => n.name), gone: desired.nodes.filter((_, i) => !present[i]).map((n) => n.name) });
      let bound: Pod[] = fromLoad ? [...desired.pods] : [];
      bound = checkPass(desired, nodesNow(), bound, planPods({ desired: desiredOf(desired), nodes: nodesNow(), bound, random: seededRandom(seed) }), seed);
      steps.forEach((step, i) => {
        const n = 'node' in step ? step.node % s.zones.length : 0;
        const d = 'd' in step && s.deployments.length > 0 ? step.d % s.deployments.length : -1;
        if (step.kind === 'scale' && d >= 0) s = { ...s, deployments: s.deployments.map((x, k) => (k === d ? { ...x, replicas: step.replicas } : x)) };
        if (step.kind === 'image' && d >= 0) s = { ...s, deployments: s.deployments.map((x, k) => (k === d ? { ...x, image: x.image + 1 } : x)) };
        if (step.kind === 'ready') ready[n] = step.ready;
        if (step.kind === 'leave') present[n] = false;
        if (step.kind === 'join') present[n] = true;
        desired = shapeCluster(s);
        const p = planPods({ desired: desiredOf(desired), nodes: nodesNow(), bound, random: seededRandom(seed + 100 * (i + 1)) });
        bound = checkPass(desired, nodesNow(), bound, p, seed + 100 * (i + 1));
      });
    }),
    { numRuns: 150 },
  );
  t.pass();
});

test('property: the plan is deterministic for a given random, and the input is not changed', (t) => {
  fc.assert(
    fc.property(arbShape, fc.nat(), (shape, seed) => {
      const c = shapeCluster(shape);
      const bound = c.pods.filter((_, i) => i % 2 === 0);
      const frozen = JSON.stringify([c.deployments, bound]);
      const one = plan(c, bound, views(c), seed);
      assert.deepEqual(plan(c, bound, views(c), seed), one);
      assert.equal(JSON.stringify([c.deployments, bound]), frozen);
    }),
    { numRuns: 50 },
  );
  t.pass();
});
