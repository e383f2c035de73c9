/**
 * podwire's rules held to kube-proxy's own expectations. The inputs of three tests of
 * kube-proxy's pkg/proxy/iptables/proxier_test.go (TestOverallIPTablesRulesWithMultipleServices,
 * TestLoadBalancer, TestOnlyLocalExternalIPs; and TestNoEndpointsReject's flows) are written as manifests in kube-proxy-golden/,
 * beside the iptables-restore text each test expects, carried over as data. The text is
 * compared as kube-proxy's test compares it: per table, the chains declared and each chain's
 * rules in order. What podwire writes differently is listed below, each with its reason,
 * and applied to kube-proxy's text before the comparison; nothing else may differ. The
 * packet flows those tests check are walked through podwire's rules and its compiled table,
 * and a real iptables-restore --test accepts every rule set of the suite.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { loadCluster } from '../../src/cluster/load.js';
import { seededRandom } from '../../src/cluster/random.js';
import { formatIpv4 } from '../../src/packet/addr.js';
import { RecentLists, traverse } from '../../src/kube/interpreter.js';
import { renderKubeProxyRestore } from '../../src/kube/iptables-save.js';
import { kubeProxyRules, nodeLocalAddresses, type ServiceRuleInputs } from '../../src/kube/kube-proxy.js';
import { drawFromUnit } from '../../src/kube/rules.js';
import { FlowDecision, FlowVerdict, compileServiceTable } from '../../src/kube/service-table.js';
import { goldenInputs, ip } from './service-fixtures.js';

const DIR = fileURLToPath(new URL('../../../test/kube/kube-proxy-golden/', import.meta.url));
/** kube-proxy's test node, by name; podwire gives it 192.168.0.11 on the outside network. */
const NODE = 'test-hostname';
/** kube-proxy's testExternalClient and testExternalClientBlocked (outside 203.0.113.0/25). */
const EXTERNAL_CLIENT = '203.0.113.2';
const BLOCKED_CLIENT = '203.0.113.130';
const POD = '10.0.0.2';

function inputsOf(scenario: string): ServiceRuleInputs {
  const r = loadCluster([{ path: `${scenario}.yaml`, text: readFileSync(`${DIR}${scenario}.yaml`, 'utf8') }], { random: seededRandom(1) });
  if (!r.ok) throw new Error(r.errors.map(formatDiagnostic).join('\n'));
  if (r.warnings.length > 0) throw new Error(`unexpected warnings: ${r.warnings.map(formatDiagnostic).join('\n')}`);
  const node = r.cluster.nodes.find((n) => n.name === NODE)!;
  return { cluster: r.cluster, endpoints: computeEndpoints(r.cluster, new Map()), nodeName: NODE, nodeAddress: node.externalIP };
}

interface Difference {
  readonly why: string;
  /** Rewrites kube-proxy's text as podwire writes it. */
  readonly apply: (lines: string[]) => string[];
}

const mapLines = (f: (line: string) => string) => (lines: string[]) => lines.map(f);

const NODE_PORTS: Difference = {
  why: "node ports 3001-3003 are below the API server's range, which podwire enforces: the manifests use 30001-30003",
  apply: mapLines((l) => l.replace(/--dport 300([1-3])(?!\d)/, '--dport 3000$1')),
};

/** What podwire writes differently from kube-proxy's tests in every scenario. */
const ALWAYS: readonly Difference[] = [
  {
    why: 'localhost NodePorts: a podwire node has no host stack to connect to 127.0.0.1, so its rules are those of --iptables-localhost-nodeports=false (no localnet KUBE-FIREWALL rule, ! -d 127.0.0.0/8 on the NodePort jump)',
    apply: (lines) =>
      lines
        .filter((l) => l !== ':KUBE-FIREWALL - [0:0]' && !l.startsWith('-A KUBE-FIREWALL '))
        .map((l) => l.replace('-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS', '-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS')),
  },
  {
    why: "MASQUERADE --random-fully, as kube-proxy writes it where iptables supports it (1.6.2 and later); the tests' fake iptables does not",
    apply: mapLines((l) => l.replace(/-j MASQUERADE$/, '-j MASQUERADE --random-fully')),
  },
];

const SCENARIOS: readonly { readonly name: string; readonly differences: readonly Difference[] }[] = [
  { name: 'overall', differences: [NODE_PORTS, ...ALWAYS] },
  {
    name: 'load-balancer',
    differences: [NODE_PORTS, ...ALWAYS, { why: "podwire gives a LoadBalancer one address: the test's second ingress address is left out", apply: (lines) => lines.filter((l) => !l.includes('5.6.7.8')) }],
  },
  {
    name: 'local-external-ips',
    differences: [
      ...ALWAYS,
      { why: 'the expectation is from kube-proxy 1.26, before KUBE-PROXY-FIREWALL was declared in every sync', apply: (lines) => lines.flatMap((l) => (l === '*filter' ? [l, ':KUBE-PROXY-FIREWALL - [0:0]'] : [l])) },
    ],
  },
];

/** Per table: the chains declared (sorted) and each chain's rules in order, as kube-proxy's assertIPTablesRulesEqual compares them. */
function normalise(lines: readonly string[]): Record<string, { chains: string[]; rules: Record<string, string[]> }> {
  const out: Record<string, { chains: string[]; rules: Record<string, string[]> }> = {};
  let table = '';
  for (const line of lines) {
    if (line === '' || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      table = line.slice(1);
      out[table] = { chains: [], rules: {} };
    } else if (line.startsWith(':')) {
      out[table].chains.push(line.slice(1).split(' ')[0]);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1];
      (out[table].rules[chain] ??= []).push(line);
    } else {
      throw new Error(`unexpected line ${line}`);
    }
  }
  for (const t of Object.values(out)) t.chains.sort();
  return out;
}

for (const scenario of SCENARIOS) {
  test(`${scenario.name}: podwire writes kube-proxy's expected rules, but for the documented differences`, (t) => {
    let expected = readFileSync(`${DIR}${scenario.name}.expected.txt`, 'utf8').split('\n');
    for (const d of scenario.differences) {
      const before = expected.join('\n');
      expected = d.apply(expected);
      // A difference that changes nothing is stale: it would hide nothing, and explain nothing.
      t.not(expected.join('\n'), before, `the difference "${d.why}" applies`);
    }
    const ours = renderKubeProxyRestore(kubeProxyRules(inputsOf(scenario.name), { egressMasquerade: false })).split('\n');
    t.deepEqual(normalise(ours), normalise(expected));
  });
}

interface Flow {
  readonly name: string;
  readonly src: string;
  readonly dst: string;
  readonly port: number;
  /** The endpoints the flow may reach ("ip:port"), or DROP / REJECT. */
  readonly output: readonly string[] | 'DROP' | 'REJECT';
  readonly masq?: boolean;
}

/** Walks each flow through podwire's rules (the interpreter) and its compiled table, at several draws. */
function checkFlows(t: import('ava').ExecutionContext, inputs: ServiceRuleInputs, flows: readonly Flow[]): void {
  const rules = kubeProxyRules(inputs);
  const table = compileServiceTable(inputs);
  const locals = nodeLocalAddresses(inputs);
  const decision = new FlowDecision();
  for (const f of flows) {
    const reached = new Set<string>();
    for (const random of [0, 0.3, 0.6, 0.99]) {
      const walked = traverse(
        rules,
        { src: ip(f.src), dst: ip(f.dst), proto: 6, sport: 40000, dport: f.port, mark: 0, ctstate: 'NEW', inRole: f.src === POD ? 'pod' : 'uplink' },
        { random: () => random, now: 0, recent: new RecentLists() },
        { origin: 'arriving', isLocalAddress: (a) => locals.includes(a >>> 0) },
      );
      const verdict = table.classify(ip(f.src), ip(f.dst), 6, f.port, drawFromUnit(random) | 0, null, decision);
      if (f.output === 'DROP' || f.output === 'REJECT') {
        t.is(walked.verdict, f.output, `${f.name}: rules`);
        t.is(verdict, f.output === 'REJECT' ? FlowVerdict.Reject : FlowVerdict.Firewall, `${f.name}: table`);
        continue;
      }
      t.is(walked.verdict, 'ACCEPT', `${f.name}: rules`);
      t.is(verdict, FlowVerdict.Dnat, `${f.name}: table`);
      const endpoint = `${formatIpv4(decision.dnatAddress)}:${decision.dnatPort}`;
      t.is(`${formatIpv4(walked.dnat!.address)}:${walked.dnat!.port}`, endpoint, `${f.name}: the same endpoint for the same draw`);
      t.is(walked.snat?.kind === 'masquerade', f.masq === true, `${f.name}: rules masquerade`);
      t.is(decision.masquerade, f.masq === true, `${f.name}: table masquerade`);
      reached.add(endpoint);
    }
    if (Array.isArray(f.output)) t.deepEqual([...reached].sort(), [...f.output].sort(), `${f.name}: endpoints reached`);
  }
}

test("load-balancer: kube-proxy's packet flows, through podwire's rules and its compiled table", (t) => {
  const inputs = inputsOf('load-balancer');
  const node = formatIpv4(inputs.nodeAddress);
  const ep = ['10.180.0.1:80'];
  checkFlows(t, inputs, [
    { name: 'pod to cluster IP', src: POD, dst: '172.30.0.41', port: 80, output: ep, masq: false },
    { name: 'external to nodePort', src: EXTERNAL_CLIENT, dst: node, port: 30001, output: ep, masq: true },
    { name: 'nodePort bypasses LoadBalancerSourceRanges', src: BLOCKED_CLIENT, dst: node, port: 30001, output: ep, masq: true },
    { name: 'accepted external to LB1', src: EXTERNAL_CLIENT, dst: '1.2.3.4', port: 80, output: ep, masq: true },
    { name: 'blocked external to LB1', src: BLOCKED_CLIENT, dst: '1.2.3.4', port: 80, output: 'DROP' },
    { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', src: POD, dst: '1.2.3.4', port: 80, output: 'DROP' },
    { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', src: node, dst: '1.2.3.4', port: 80, output: ep, masq: true },
    { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', src: '1.2.3.4', dst: '1.2.3.4', port: 80, output: ep, masq: true },
  ]);
});

test("local-external-ips: kube-proxy's packet flows, through podwire's rules and its compiled table", (t) => {
  checkFlows(t, inputsOf('local-external-ips'), [
    { name: 'cluster IP hits both endpoints', src: POD, dst: '172.30.0.41', port: 80, output: ['10.180.0.1:80', '10.180.2.1:80'], masq: false },
    { name: 'external IP hits only local endpoint, unmasqueraded', src: EXTERNAL_CLIENT, dst: '192.168.99.11', port: 80, output: ['10.180.2.1:80'], masq: false },
  ]);
});

test("no-endpoints: kube-proxy's packet flows, every address of a service without endpoints rejects", (t) => {
  const inputs = inputsOf('no-endpoints');
  const node = formatIpv4(inputs.nodeAddress);
  checkFlows(t, inputs, [
    { name: 'pod to cluster IP with no endpoints', src: POD, dst: '172.30.0.41', port: 80, output: 'REJECT' },
    { name: 'external to external IP with no endpoints', src: EXTERNAL_CLIENT, dst: '192.168.99.11', port: 80, output: 'REJECT' },
    { name: 'pod to NodePort with no endpoints', src: POD, dst: node, port: 30001, output: 'REJECT' },
    { name: 'external to NodePort with no endpoints', src: EXTERNAL_CLIENT, dst: node, port: 30001, output: 'REJECT' },
    { name: 'pod to LoadBalancer IP with no endpoints', src: POD, dst: '1.2.3.4', port: 80, output: 'REJECT' },
    { name: 'external to LoadBalancer IP with no endpoints', src: EXTERNAL_CLIENT, dst: '1.2.3.4', port: 80, output: 'REJECT' },
  ]);
});

// ---------------------------------------------------------------------------------------------
// A real iptables-restore --test accepts every rule set of the suite, built-in jumps and
// podwire's egress masquerade included, in a scratch namespace deleted whatever happens.

const RESTORES = ['iptables-restore', 'iptables-legacy-restore'].filter((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
const canRestore = process.getuid?.() === 0 && RESTORES.length > 0 && spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0;
const restoreTest = canRestore ? test.serial : test.serial.skip;

restoreTest('iptables-restore --test accepts every rule set of the suite, on every backend installed', (t) => {
  const namespace = `pwtest-golden-${process.pid}`;
  const ruleSets = [...[...SCENARIOS.map((s) => s.name), 'no-endpoints'].map((name) => [name, inputsOf(name)] as const), ['the named cluster', goldenInputs()] as const];
  const made = spawnSync('ip', ['netns', 'add', namespace]);
  t.is(made.status, 0, made.stderr?.toString());
  try {
    for (const [name, inputs] of ruleSets) {
      const text = renderKubeProxyRestore(kubeProxyRules(inputs), { includeBuiltinChains: true });
      for (const restore of RESTORES) {
        const r = spawnSync('ip', ['netns', 'exec', namespace, restore, '--test', '--noflush'], { input: text });
        t.is(r.status, 0, `${restore} refused ${name}: ${r.stderr?.toString()}`);
      }
    }
  } finally {
    spawnSync('ip', ['netns', 'delete', namespace]);
  }
});
