/**
 * NetworkPolicy checks: what one `ingressAllowed` costs for a pod selected by 1, 10 and 100
 * policies, in a cluster of 10 pods and in one of 10,000. The claim under test is that the
 * cost follows the rules selecting the pod and not the size of the cluster: the 10,000-pod
 * figures should match the 10-pod ones.
 *
 * Policy i selecting a target has one ingress rule: from pods of group g(i mod 10) (a peer set
 * of a tenth of the cluster) or from the address 203.0.113.i. Two families of targets:
 * - "one port": every rule allows TCP 80. Rules with the same ports fold into one grant whose
 *   peer set is their union (policy-layout.ts), so 100 policies cost what 1 does;
 * - "own ports": rule i allows TCP 80 and TCP 10000+i, a port set of its own, so nothing
 *   folds and a check walks every rule: the worst case, growing with the rules.
 * Cases:
 * - deny: a source no rule names, on port 80: every port set matches and every peer set is
 *   probed and missed;
 * - allow by the last rule: source 203.0.113.99, which only the last "own ports" rule names;
 * - not isolated: a pod no policy selects (one probe for its number, one load).
 * Both clusters are loaded from YAML and compiled exactly as the node agent would.
 */
import { formatDiagnostic } from '../src/cluster/diagnostics.js';
import { loadCluster } from '../src/cluster/load.js';
import type { Cluster } from '../src/cluster/model.js';
import { seededRandom } from '../src/cluster/random.js';
import { compile, type PolicyTables } from '../src/kube/policy.js';
import { parseIpv4 } from '../src/packet/addr.js';
import { atMost, runMicroSuite, sink, type BenchContext, type BenchModule, type Figure, type MicroCase } from './harness.js';

const BATCH = 1024;
const CLUSTER_SIZES = [10, 10_000] as const;
const POLICY_COUNTS = [1, 10, 100] as const;
const GROUPS = 10;
const TCP = 6;
const PORT = 80;
/** Pods per node block (.2 to .254), less a little room. */
const PODS_PER_NODE = 250;

const sizeName = (pods: number): string => (pods >= 1000 ? `${pods / 1000}K` : `${pods}`);

type Family = 'one' | 'own';
const FAMILIES: readonly Family[] = ['one', 'own'];
const FAMILY_WORDS: Readonly<Record<Family, string>> = { one: 'one port', own: 'own ports' };
/** The pods the policies select: `one1` ... `own100`. */
const TARGETS = FAMILIES.flatMap((family) => POLICY_COUNTS.map((count) => ({ name: `${family}${count}`, family, count })));

const NAMES = {
  deny: (family: Family, policies: number, pods: number) =>
    `policy: deny, ${policies} polic${policies === 1 ? 'y' : 'ies'} (${FAMILY_WORDS[family]}), ${sizeName(pods)} pods`,
  allowLast: (pods: number) => `policy: allow by the last of 100 rules (own ports), ${sizeName(pods)} pods`,
  open: (pods: number) => `policy: pod not isolated, ${sizeName(pods)} pods`,
  flat: 'policy: 10K-pod / 10-pod cost, deny, 100 policies (own ports), best samples',
  compile: (pods: number) => `policy: compile, ${sizeName(pods)} pods, ${2 * POLICY_COUNTS.reduce((a: number, b) => a + b, 0)} policies`,
} as const;

/**
 * `pods` pods in all: the six targets, one bystander no policy selects, and the rest spread
 * over GROUPS client Deployments.
 */
function clusterYaml(pods: number): string {
  const named = [...TARGETS.map((t) => t.name), 'bystander'];
  const clients = pods - named.length;
  const docs: object[] = [{ apiVersion: 'podwire.dev/v1alpha1', kind: 'Cluster', spec: { nodes: Math.ceil(pods / PODS_PER_NODE) + 1 } }];
  for (const name of named) {
    docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { target: name } }, spec: { containers: [{ name: 'c', image: 'i' }] } });
  }
  for (let g = 0; g < GROUPS; g++) {
    const replicas = Math.floor(clients / GROUPS) + (g < clients % GROUPS ? 1 : 0);
    if (replicas === 0) continue;
    const labels = { group: `g${g}` };
    docs.push({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `g${g}` },
      spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
    });
  }
  for (const family of FAMILIES) {
    for (const count of POLICY_COUNTS) {
      for (let i = 0; i < count; i++) {
        const ports = family === 'one' ? [{ port: PORT }] : [{ port: PORT }, { port: 10000 + i }];
        docs.push({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: `${family}${count}-${i}` },
          spec: {
            podSelector: { matchLabels: { target: `${family}${count}` } },
            ingress: [{ from: [{ podSelector: { matchLabels: { group: `g${i % GROUPS}` } } }, { ipBlock: { cidr: `203.0.113.${i}/32` } }], ports }],
          },
        });
      }
    }
  }
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

function loadBenchCluster(pods: number): Cluster {
  const r = loadCluster([{ path: `policy-bench-${pods}.yaml`, text: clusterYaml(pods) }], { random: seededRandom(pods) });
  if (!r.ok) throw new Error(`bench cluster of ${pods} pods did not load: ${r.errors.map(formatDiagnostic).join('; ')}`);
  if (r.cluster.pods.length !== pods) throw new Error(`bench cluster has ${r.cluster.pods.length} pods, wanted ${pods}`);
  return r.cluster;
}

function podIp(c: Cluster, name: string): number {
  const pod = c.pods.find((p) => p.name === name);
  if (pod === undefined) throw new Error(`no pod ${name}`);
  return pod.ip;
}

/** Sources no rule names: 198.51.100.0/24, outside every block and every pod. */
const STRANGERS = Uint32Array.from({ length: 256 }, (_, i) => (parseIpv4('198.51.100.0')! + i) >>> 0);

interface Tally {
  allowed: number;
  checks: number;
}

/** A batch of BATCH checks into `dst` from `sources`, cycling; allowed answers are counted. */
function checks(tables: PolicyTables, dst: number, sources: Uint32Array, tally: Tally): () => void {
  let cursor = 0;
  return () => {
    let allowed = 0;
    let i = cursor;
    for (let k = 0; k < BATCH; k++) {
      if (tables.ingressAllowed(dst, sources[i], TCP, PORT)) allowed++;
      if (++i === sources.length) i = 0;
    }
    cursor = i;
    sink.value ^= allowed;
    tally.allowed += allowed;
    tally.checks += BATCH;
  };
}

interface Expectation {
  readonly name: string;
  readonly tally: Tally;
  readonly allowed: boolean;
}

function judge(expectations: readonly Expectation[]): void {
  for (const e of expectations) {
    const wrong = e.allowed ? e.tally.checks - e.tally.allowed : e.tally.allowed;
    if (wrong !== 0) throw new Error(`${e.name}: ${wrong} of ${e.tally.checks} checks were not ${e.allowed ? 'allowed' : 'denied'}`);
  }
}

interface Compiled {
  readonly cluster: Cluster;
  readonly tables: PolicyTables;
  readonly compileMs: number;
}

function compileTimed(cluster: Cluster): Compiled {
  const started = process.hrtime.bigint();
  const tables = compile(cluster);
  return { cluster, tables, compileMs: Number(process.hrtime.bigint() - started) / 1e6 };
}

/**
 * Targets: a folded check is a few probes whatever the number of policies; a walk costs some
 * 20-40 ns a rule (a port compare, a bit test and a /32 probe each).
 */
const DENY_TARGET: Readonly<Record<Family, Readonly<Record<(typeof POLICY_COUNTS)[number], number>>>> = {
  one: { 1: 100, 10: 100, 100: 100 },
  own: { 1: 100, 10: 400, 100: 4000 },
};
const OPEN_TARGET = 40;

function casesFor(pods: number, { cluster, tables }: Compiled, expectations: Expectation[]): MicroCase[] {
  const cases: MicroCase[] = [];
  const add = (name: string, target: number, dst: number, sources: Uint32Array, allowed: boolean): void => {
    const tally = { allowed: 0, checks: 0 };
    expectations.push({ name, tally, allowed });
    cases.push({ name, target: atMost(target), run: checks(tables, dst, sources, tally) });
  };
  for (const { name, family, count } of TARGETS) add(NAMES.deny(family, count, pods), DENY_TARGET[family][count], podIp(cluster, name), STRANGERS, false);
  add(NAMES.allowLast(pods), DENY_TARGET.own[100], podIp(cluster, 'own100'), Uint32Array.of(parseIpv4('203.0.113.99')!), true);
  add(NAMES.open(pods), OPEN_TARGET, podIp(cluster, 'bystander'), STRANGERS, true);
  return cases;
}

/** Before timing: the shape the cases rely on (rules walked, grants folded) really holds. */
function checkSemantics({ cluster, tables }: Compiled): void {
  const stranger = STRANGERS[0];
  for (const { name, family, count } of TARGETS) {
    const e = tables.explain('ingress', podIp(cluster, name), stranger, TCP, PORT);
    if (e.allowed || e.rules.length !== count) throw new Error(`${name}: expected a denial by ${count} rules, got ${e.reason} by ${e.rules.length}`);
    const grants = tables.grantCount('ingress', podIp(cluster, name));
    const expected = family === 'one' ? 1 : count;
    if (grants !== expected) throw new Error(`${name}: expected ${expected} grants to walk, got ${grants}`);
  }
  const last = tables.explain('ingress', podIp(cluster, 'own100'), parseIpv4('203.0.113.99')!, TCP, PORT);
  if (last.allowedBy?.policy !== 'default/own100-99') throw new Error(`expected default/own100-99 to allow, got ${last.allowedBy?.policy}`);
}

const policyBench: BenchModule = {
  name: 'policy',
  async run(ctx: BenchContext): Promise<readonly Figure[]> {
    const compiled = CLUSTER_SIZES.map((pods) => compileTimed(loadBenchCluster(pods)));
    compiled.forEach(checkSemantics);
    const expectations: Expectation[] = [];
    const cases = CLUSTER_SIZES.flatMap((pods, i) => casesFor(pods, compiled[i], expectations));
    const figures = await runMicroSuite(ctx, { name: 'policy', opsPerCall: BATCH, cases });
    judge(expectations.filter((e) => e.tally.checks > 0));

    const extra: Figure[] = [];
    const small = figures.find((f) => f.name === NAMES.deny('own', 100, CLUSTER_SIZES[0]));
    const large = figures.find((f) => f.name === NAMES.deny('own', 100, CLUSTER_SIZES[1]));
    // From the fastest samples: on a shared machine the medians carry the neighbours' noise.
    if (small?.stats !== undefined && large?.stats !== undefined && ctx.selects(NAMES.flat)) {
      extra.push({ name: NAMES.flat, value: large.stats.min / small.stats.min, unit: '×', target: atMost(1.5) });
    }
    CLUSTER_SIZES.forEach((pods, i) => {
      if (ctx.selects(NAMES.compile(pods))) extra.push({ name: NAMES.compile(pods), value: compiled[i].compileMs, unit: 'ms' });
    });
    return [...figures, ...extra];
  },
};

export default policyBench;
