/**
 * The compiled tables against a reference evaluator that reads the Kubernetes rules off the
 * model for every query (find the pod, the policies selecting it, walk their rules), over
 * random clusters loaded from YAML: namespaces with labels, pods with labels and named ports,
 * policies mixing every kind of selector, ipBlocks with excepts around the pod addresses, ports
 * by number, range, name or protocol alone.
 */
import test from 'ava';
import fc from 'fast-check';
import type { Cluster, LabelSelector, NetworkPolicyPeer, NetworkPolicyPort, Pod } from '../../src/cluster/model.js';
import { selectorMatches } from '../../src/cluster/selector.js';
import { cidrContains, formatIpv4, parseIpv4 } from '../../src/packet/addr.js';
import { compile, PROTOCOL_NUMBER, type PolicyDirection } from '../../src/kube/policy.js';
import { cluster as loadYaml } from '../cluster/helpers.js';

// ---------------------------------------------------------------------------------------------
// The reference: Kubernetes' rules, written as plainly as possible, evaluated per query.

interface Query {
  readonly direction: PolicyDirection;
  readonly podIp: number;
  readonly peerIp: number;
  readonly protocol: number;
  readonly port: number;
}

function referenceAllowed(c: Cluster, q: Query, node: string | undefined): boolean {
  const pod = c.pods.find((p) => p.ip === q.podIp);
  if (pod === undefined || (node !== undefined && pod.node !== node)) return true;
  const type = q.direction === 'ingress' ? 'Ingress' : 'Egress';
  const applying = c.networkPolicies.filter(
    (np) => np.namespace === pod.namespace && selectorMatches(np.podSelector, pod.labels) && np.policyTypes.includes(type),
  );
  if (applying.length === 0) return true;
  if (q.peerIp === q.podIp) return true; // a pod cannot block itself
  if (q.direction === 'ingress' && q.peerIp === c.nodes.find((n) => n.name === pod.node)!.gateway) return true;
  const receiver = q.direction === 'ingress' ? pod : c.pods.find((p) => p.ip === q.peerIp);
  return applying.some((np) => {
    const rules = q.direction === 'ingress' ? np.ingress.map((r) => ({ peers: r.from, ports: r.ports })) : np.egress.map((r) => ({ peers: r.to, ports: r.ports }));
    return rules.some(
      (r) =>
        (r.peers.length === 0 || r.peers.some((peer) => referencePeerMatches(c, np.namespace, peer, q.peerIp))) &&
        (r.ports.length === 0 || r.ports.some((p) => referencePortMatches(p, receiver, q.protocol, q.port))),
    );
  });
}

function referencePeerMatches(c: Cluster, policyNamespace: string, peer: NetworkPolicyPeer, addr: number): boolean {
  if (peer.ipBlock !== undefined) return cidrContains(peer.ipBlock.cidr, addr) && !peer.ipBlock.except.some((e) => cidrContains(e, addr));
  const pod = c.pods.find((p) => p.ip === addr);
  if (pod === undefined) return false;
  const namespaceOk =
    peer.namespaceSelector === undefined
      ? pod.namespace === policyNamespace
      : selectorMatches(peer.namespaceSelector, c.namespaces.find((n) => n.name === pod.namespace)!.labels);
  return namespaceOk && (peer.podSelector === undefined || selectorMatches(peer.podSelector, pod.labels));
}

function referencePortMatches(p: NetworkPolicyPort, receiver: Pod | undefined, protocol: number, port: number): boolean {
  if (PROTOCOL_NUMBER[p.protocol] !== protocol) return false;
  if (p.port === undefined) return true;
  if (typeof p.port === 'number') return port >= p.port && port <= (p.endPort ?? p.port);
  return receiver !== undefined && receiver.containers.some((c) => c.ports.some((cp) => cp.name === p.port && cp.protocol === p.protocol && cp.containerPort === port));
}

// ---------------------------------------------------------------------------------------------
// Random clusters, as YAML (JSON documents: YAML reads them as they are).

const NAMESPACES = ['default', 'ns-a', 'ns-b'] as const;
/** Pods and policies crowd into default, so that policies often share a namespace with pods. */
const arbNamespace = fc.oneof({ arbitrary: fc.constant('default'), weight: 4 }, { arbitrary: fc.constantFrom(...NAMESPACES), weight: 2 });
const LABEL_VALUES = { app: ['web', 'db'], role: ['client', 'server'], team: ['x', 'y'] } as const;
type LabelKey = keyof typeof LABEL_VALUES;

const arbLabels = (keys: readonly LabelKey[]): fc.Arbitrary<Record<string, string>> =>
  fc.record(Object.fromEntries(keys.map((k) => [k, fc.constantFrom(...LABEL_VALUES[k])])), { requiredKeys: [] }) as fc.Arbitrary<Record<string, string>>;

const arbExpression = fc.oneof(
  fc.record({ key: fc.constantFrom<LabelKey>('app', 'role', 'team'), operator: fc.constantFrom('In', 'NotIn'), values: fc.subarray(['web', 'db', 'client', 'x'], { minLength: 1 }) }),
  fc.record({ key: fc.constantFrom<LabelKey>('app', 'role', 'team'), operator: fc.constantFrom('Exists', 'DoesNotExist') }),
);

const arbAnySelector = fc.record({ matchLabels: arbLabels(['app', 'role', 'team']), matchExpressions: fc.array(arbExpression, { maxLength: 2 }) }, { requiredKeys: [] });

/** Mostly `{}` or one label, so that selectors match often enough to exercise the rules. */
const arbSelector = fc.oneof(
  { arbitrary: fc.constant({}), weight: 3 },
  { arbitrary: arbLabels(['app', 'role', 'team']).map((matchLabels) => ({ matchLabels: Object.fromEntries(Object.entries(matchLabels).slice(0, 1)) })), weight: 3 },
  { arbitrary: arbAnySelector, weight: 2 },
);

/** Blocks around the pod network (node-1 is 10.244.1.0/24, node-2 10.244.2.0/24) and outside it. */
const BLOCK_BASES = ['10.244.0.0/16', '10.244.1.0/24', '10.244.2.0/24', '10.244.1.0/29', '192.0.2.0/24', '0.0.0.0/0'] as const;

const arbIpBlock = fc
  .tuple(fc.constantFrom(...BLOCK_BASES), fc.array(fc.tuple(fc.nat(255), fc.integer({ min: 1, max: 8 })), { maxLength: 2 }))
  .map(([cidr, excepts]) => {
    const [base, len] = cidr.split('/');
    const prefix = Number(len);
    const start = parseIpv4(base)!;
    const except = excepts.map(([offset, extra]) => {
      const p = Math.min(32, prefix + extra);
      // Excepts land near the start of the block, where the pods are.
      const addr = (start + ((offset * (prefix >= 24 ? 1 : 256)) % 2 ** (32 - prefix))) >>> 0;
      return `${formatIpv4((addr & (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0)) >>> 0)}/${p}`;
    });
    return { ipBlock: { cidr, except } };
  });

const arbPeer = fc.oneof(
  arbSelector.map((podSelector) => ({ podSelector })),
  arbSelector.map((namespaceSelector) => ({ namespaceSelector })),
  fc.record({ podSelector: arbSelector, namespaceSelector: arbSelector }),
  arbIpBlock,
);

const arbPort = fc.oneof(
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP', 'SCTP'), port: fc.constantFrom(53, 80, 8080, 9000) }, { requiredKeys: ['port'] }),
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP'), port: fc.constantFrom('http', 'dns', 'alt', 'none') }, { requiredKeys: ['port'] }),
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP', 'SCTP') }),
  fc.tuple(fc.constantFrom(53, 8000, 9000), fc.nat(100)).map(([port, span]) => ({ port, endPort: port + span })),
);

const arbRule = (peersKey: 'from' | 'to') => fc.record({ [peersKey]: fc.array(arbPeer, { maxLength: 3 }), ports: fc.array(arbPort, { maxLength: 3 }) }, { requiredKeys: [] });

const arbPolicy = fc.record(
  {
    namespace: arbNamespace,
    podSelector: arbSelector,
    policyTypes: fc.constantFrom(['Ingress'], ['Egress'], ['Ingress', 'Egress']),
    ingress: fc.array(arbRule('from'), { maxLength: 3 }),
    egress: fc.array(arbRule('to'), { maxLength: 3 }),
  },
  { requiredKeys: ['namespace', 'podSelector'] },
);

const CONTAINER_PORTS = [
  { name: 'http', containerPort: 80 },
  { name: 'http', containerPort: 8080 },
  { name: 'dns', containerPort: 53, protocol: 'UDP' },
  { name: 'dns', containerPort: 53 },
  { name: 'alt', containerPort: 9000 },
  { containerPort: 9005 },
];

const arbPod = fc.record({
  namespace: arbNamespace,
  labels: arbLabels(['app', 'role']),
  node: fc.constantFrom('node-1', 'node-2'),
  // Indexes into CONTAINER_PORTS; names stay unique within the pod.
  ports: fc.uniqueArray(fc.nat(CONTAINER_PORTS.length - 1), { maxLength: 3, selector: (i) => CONTAINER_PORTS[i].name ?? `#${i}` }),
});

const arbWorld = fc.record({
  namespaceLabels: fc.tuple(arbLabels(['team']), arbLabels(['team'])),
  pods: fc.array(arbPod, { minLength: 1, maxLength: 8 }),
  policies: fc.array(arbPolicy, { minLength: 1, maxLength: 6 }),
});

type World = typeof arbWorld extends fc.Arbitrary<infer T> ? T : never;

function worldYaml(w: World): string {
  const docs: unknown[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns-a', labels: w.namespaceLabels[0] } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns-b', labels: w.namespaceLabels[1] } },
    ...w.pods.map((p, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `p${i}`, namespace: p.namespace, labels: p.labels },
      spec: { nodeName: p.node, containers: [{ name: 'c', image: 'i', ports: p.ports.map((k) => CONTAINER_PORTS[k]) }] },
    })),
    ...w.policies.map(({ namespace, ...spec }, i) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `np${i}`, namespace }, spec })),
  ];
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

/** Peers worth asking about: every pod, both gateways, addresses in and around the blocks. */
function candidatePeers(c: Cluster): number[] {
  const outside = ['192.0.2.1', '192.0.2.200', '198.51.100.7', '10.244.1.200', '10.244.2.9', '10.96.0.10'].map((s) => parseIpv4(s)!);
  return [...c.pods.map((p) => p.ip), ...c.nodes.map((n) => n.gateway), ...outside];
}

const arbQueryChoice = fc.record({
  direction: fc.constantFrom<PolicyDirection>('ingress', 'egress'),
  pod: fc.nat(),
  peer: fc.nat(),
  // Mostly TCP and UDP to the container ports, where named ports and protocols meet.
  protocol: fc.oneof({ arbitrary: fc.constantFrom(6, 17), weight: 6 }, { arbitrary: fc.constantFrom(132, 1), weight: 1 }),
  port: fc.oneof({ arbitrary: fc.constantFrom(53, 80, 8080, 9000), weight: 3 }, { arbitrary: fc.constantFrom(0, 8000, 9005, 9050), weight: 1 }),
});

test('property: compiled tables (and their explanations) agree with the reference evaluator', (t) => {
  const seen = { isolated: 0, allowedByRule: 0, denied: 0 };
  fc.assert(
    fc.property(arbWorld, fc.array(arbQueryChoice, { minLength: 10, maxLength: 40 }), fc.constantFrom(undefined, 'node-1'), fc.boolean(), (world, choices, node, unions) => {
      const c = loadYaml(worldYaml(world));
      // Without unions every rule keeps its own grant: both layouts must answer alike.
      const tables = compile(c, { ...(node !== undefined && { node }), ...(!unions && { unionBudget: 0 }) });
      const peers = candidatePeers(c);
      for (const choice of choices) {
        const pod = c.pods[choice.pod % c.pods.length];
        const q: Query = { direction: choice.direction, podIp: pod.ip, peerIp: peers[choice.peer % peers.length], protocol: choice.protocol, port: choice.protocol === 1 ? 0 : choice.port };
        const expected = referenceAllowed(c, q, node);
        const actual = q.direction === 'ingress' ? tables.ingressAllowed(q.podIp, q.peerIp, q.protocol, q.port) : tables.egressAllowed(q.podIp, q.peerIp, q.protocol, q.port);
        const explained = tables.explain(q.direction, q.podIp, q.peerIp, q.protocol, q.port);
        if (explained.reason !== 'not-isolated' && explained.reason !== 'not-enforced-here') seen.isolated++;
        if (explained.reason === 'allowed-by-rule') seen.allowedByRule++;
        if (!explained.allowed) seen.denied++;
        if (actual !== expected || explained.allowed !== expected) {
          throw new Error(`${JSON.stringify(q)}: reference ${expected}, tables ${actual}, explain ${explained.allowed}\n${worldYaml(world)}`);
        }
      }
    }),
    { numRuns: 400 },
  );
  // The generator must reach isolated pods, and rules that both allow and deny, or the property proves little.
  t.log(seen);
  t.true(seen.isolated > 1000 && seen.allowedByRule > 300 && seen.denied > 300, JSON.stringify(seen));
});

test('reference sanity: a selector-only peer never names an outside address', (t) => {
  const c = loadYaml(worldYaml({ namespaceLabels: [{}, {}], pods: [{ namespace: 'default', labels: {}, node: 'node-1', ports: [] }], policies: [] }));
  const everything: LabelSelector = { matchLabels: {}, matchExpressions: [] };
  t.false(referencePeerMatches(c, 'default', { namespaceSelector: everything }, parseIpv4('192.0.2.1')!));
  t.true(referencePeerMatches(c, 'default', { namespaceSelector: everything }, c.pods[0].ip));
});
