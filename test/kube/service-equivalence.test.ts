/**
 * The property the issue asks for: on random clusters (every service type, random ports,
 * endpoints, readiness, node-local and remote endpoints, policies, affinity) and random
 * sequences of new flows (external IPs and load-balancer source ranges included), walking kube-proxy's generated rules with the plain interpreter and
 * asking the compiled service table give the same verdict and the same rewrite, with the same
 * random number and the same clock, affinity state carried along on both sides.
 */
import test from 'ava';
import fc from 'fast-check';
import { formatIpv4 } from '../../src/packet/addr.js';
import { RecentLists, traverse, type Traversal } from '../../src/kube/interpreter.js';
import { kubeProxyRules, nodeLocalAddresses } from '../../src/kube/kube-proxy.js';
import { AffinityTable, FlowDecision, FlowVerdict, compileServiceTable, type ServiceTable } from '../../src/kube/service-table.js';
import { drawFromUnit, type RuleSet } from '../../src/kube/rules.js';
import type { Cluster } from '../../src/cluster/model.js';
import { NODE, NODE_ADDRESS, PORT_POOL, SOURCE_POOL, destinationPool, inputsFor, randomClusterArb, serviceTargets } from './service-fixtures.js';

interface Flow {
  readonly src: number;
  readonly dst: number;
  readonly proto: number;
  readonly dport: number;
  /** The injected random number. */
  readonly random: number;
  /** Seconds since the previous flow. */
  readonly elapsed: number;
}

/** Draws that land on and next to the boundaries k/n of every small n, besides arbitrary ones. */
const randomArb = fc.oneof(
  fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  fc.constantFrom(0, 0.25, 0.5, 0.75, 1 / 3, 2 / 3, 0.2, 0.4, 0.6, 0.8, 1 / 6, 5 / 6, 1 - 2 ** -53),
  fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 2, max: 7 }), fc.integer({ min: -1, max: 1 })).map(([k, n, nudge]) => {
    // A uint32 draw exactly on, or one step either side of, a boundary k/n.
    const draw = Math.min(0xffffffff, Math.max(0, Math.ceil(((k % n) * 2 ** 32) / n) + nudge));
    return draw / 2 ** 32;
  }),
);

const FROM_DESTINATION = -1;

/** Mostly flows to the cluster's services (cluster IPs, LB IPs, NodePorts), the rest anywhere. */
function flowArb(cluster: Cluster): fc.Arbitrary<Flow> {
  const targets = serviceTargets(cluster);
  const anywhere = fc.tuple(fc.constantFrom(...destinationPool(cluster.services.length)), fc.constantFrom(...PORT_POOL), fc.constantFrom(6, 17, 132, 1));
  const destination = targets.length === 0 ? anywhere : fc.oneof({ arbitrary: fc.constantFrom(...targets), weight: 3 }, { arbitrary: anywhere, weight: 1 });
  return fc.record({
    // Now and then from the destination address itself, as a node holding a load-balancer IP connects.
    src: fc.oneof({ arbitrary: fc.constantFrom(...SOURCE_POOL), weight: 9 }, { arbitrary: fc.constant(FROM_DESTINATION), weight: 1 }),
    to: destination,
    random: randomArb,
    elapsed: fc.constantFrom(0, 0, 0.5, 1, 2, 3),
  }).map(({ src, to, random, elapsed }) => ({ src: src === FROM_DESTINATION ? to[0] : src, dst: to[0], dport: to[1], proto: to[2], random, elapsed }));
}

const scenarioArb = randomClusterArb.chain((cluster) =>
  fc.record({ cluster: fc.constant(cluster), flows: fc.array(flowArb(cluster), { minLength: 1, maxLength: 30 }) }),
);

interface Outcome {
  readonly verdict: string;
  readonly dnat: string;
  readonly masquerade: boolean;
}

function fromInterpreter(t: Traversal): Outcome {
  const verdict = t.verdict === 'ACCEPT' ? (t.dnat ? 'DNAT' : 'NONE') : t.verdict;
  const dnat = t.dnat && t.verdict === 'ACCEPT' ? `${formatIpv4(t.dnat.address)}:${t.dnat.port}` : '';
  return { verdict, dnat, masquerade: t.verdict === 'ACCEPT' && t.snat?.kind === 'masquerade' };
}

function fromTable(d: FlowDecision): Outcome {
  const verdict = d.verdict === FlowVerdict.Dnat ? 'DNAT' : d.verdict === FlowVerdict.NoService ? 'NONE' : d.verdict === FlowVerdict.Reject ? 'REJECT' : 'DROP';
  return { verdict, dnat: d.verdict === FlowVerdict.Dnat ? `${formatIpv4(d.dnatAddress)}:${d.dnatPort}` : '', masquerade: d.masquerade };
}

function describe(f: Flow, now: number): string {
  return `${formatIpv4(f.src)} -> ${formatIpv4(f.dst)}:${f.dport}/${f.proto} random=${f.random} now=${now}`;
}

/** Runs the flows through both and returns the first disagreement, or undefined. */
function firstDisagreement(rules: RuleSet, table: ServiceTable, locals: readonly number[], flows: readonly Flow[]): string | undefined {
  const recent = new RecentLists();
  const affinity = new AffinityTable(4096);
  const decision = new FlowDecision();
  const isLocalAddress = (a: number) => locals.includes(a >>> 0);
  let now = 1000;
  for (const f of flows) {
    now += f.elapsed;
    const walked = traverse(
      rules,
      { src: f.src, dst: f.dst, proto: f.proto, sport: 40000, dport: f.dport, mark: 0, ctstate: 'NEW', inRole: 'pod' },
      { random: () => f.random, now, recent },
      { origin: 'arriving', isLocalAddress },
    );
    // The same number: the interpreter quantizes what random() returns exactly this way.
    affinity.setTime(now);
    table.classify(f.src, f.dst, f.proto, f.dport, drawFromUnit(f.random), affinity, decision);
    const a = fromInterpreter(walked);
    const b = fromTable(decision);
    if (a.verdict !== b.verdict || a.dnat !== b.dnat || a.masquerade !== b.masquerade) {
      return `${describe(f, now)}: rules say ${JSON.stringify(a)}, table says ${JSON.stringify(b)}`;
    }
  }
  return undefined;
}

test('interpreter over the generated rules and the compiled table agree on random clusters and flows', (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ cluster, flows }) => {
      const inputs = inputsFor(cluster, NODE, NODE_ADDRESS);
      const problem = firstDisagreement(kubeProxyRules(inputs), compileServiceTable(inputs), nodeLocalAddresses(inputs), flows);
      if (problem !== undefined) throw new Error(problem);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test('they agree seen from another node too (other endpoints are local)', (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ cluster, flows }) => {
      const inputs = inputsFor(cluster, 'node-2', NODE_ADDRESS);
      const problem = firstDisagreement(kubeProxyRules(inputs), compileServiceTable(inputs), nodeLocalAddresses(inputs), flows);
      if (problem !== undefined) throw new Error(problem);
    }),
    { numRuns: 150 },
  );
  t.pass();
});
