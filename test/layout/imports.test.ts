/**
 * The dependency rules of the layout, read from the source tree: which folder may import
 * which. A rule broken here is a cycle or a layer reaching up, caught before it spreads.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file runs as dist/test/layout/imports.test.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every .ts file under `dir` (relative to the root), recursively. */
function sourcesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourcesUnder(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The modules `file` imports or re-exports, as paths relative to the root (node: and packages left out). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+'([^']+)'/g)) {
    if (m[1].startsWith('.')) out.push(relative(ROOT, resolve(join(ROOT, dirname(file)), m[1])));
  }
  return out;
}

/** "file imports target" for every import from `fromDir` into `forbiddenDir`. */
function violations(fromDir: string, forbiddenDir: string): string[] {
  return sourcesUnder(fromDir).flatMap((file) =>
    importsOf(file)
      .filter((target) => target === forbiddenDir || target.startsWith(`${forbiddenDir}/`))
      .map((target) => `${file} imports ${target}`),
  );
}

test('the reader of imports sees imports and re-exports, and resolves them from the importing file', (t) => {
  const overlay = importsOf('src/overlay/vtep.ts');
  t.true(overlay.includes('src/port/port.js'), overlay.join(', '));
  t.true(importsOf('src/io/port.ts').includes('src/port/port.js'), 'export * from is an import too');
  t.true(importsOf('src/io/open.ts').includes('native-free/udp.js'));
});

test('native-free implements the port contract without importing src/io, which opens its ports', (t) => {
  t.deepEqual(violations('native-free', 'src/io'), []);
});

test('the overlay does not import from src/node, which wires it', (t) => {
  t.deepEqual(violations('src/overlay', 'src/node'), []);
});

test('src/port and src/tables import nothing of ours; src/packet nothing outside itself', (t) => {
  for (const dir of ['src/port', 'src/tables']) {
    t.deepEqual(sourcesUnder(dir).flatMap((file) => importsOf(file).map((target) => `${file} imports ${target}`)), [], dir);
  }
  const outside = sourcesUnder('src/packet').flatMap((file) => importsOf(file).filter((target) => !target.startsWith('src/packet/')).map((target) => `${file} imports ${target}`));
  t.deepEqual(outside, []);
});

test('IPv4, TCP and UDP offsets are not written again outside src/packet by the NAT, conntrack tuple and GSO code', (t) => {
  // Offsets come from src/packet's IPV4_OFFSET / TCP_OFFSET / UDP_OFFSET / ICMP_OFFSET.
  const privateOffset = /\bconst\s+(?:Q_[A-Z_]+|(?:IP|IPV4|TCP|UDP)_[A-Z_]+)\s*=\s*\d+\s*;/;
  for (const file of ['src/netfilter/nat.ts', 'src/netfilter/nat-icmp.ts', 'src/netfilter/conntrack-tuple.ts', 'src/datapath/gso.ts', 'src/overlay/superframe.ts']) {
    const found = readFileSync(join(ROOT, file), 'utf8').split('\n').filter((line) => privateOffset.test(line));
    t.deepEqual(found, [], file);
  }
});

test('the forwarding path imports the layers below it only: not the node agent, the cluster model or the CLI', (t) => {
  for (const above of ['src/node', 'src/cluster', 'src/cli', 'src/io']) t.deepEqual(violations('src/datapath', above), [], above);
});

test('netfilter holds dataplane primitives: it imports no Kubernetes compiler, forwarding path, agent or cluster model', (t) => {
  for (const above of ['src/kube', 'src/datapath', 'src/node', 'src/cluster', 'src/cli']) t.deepEqual(violations('src/netfilter', above), [], above);
});

test('the Kubernetes compilers read the cluster model and build tables; they import no forwarding path, agent or CLI', (t) => {
  for (const above of ['src/datapath', 'src/node', 'src/cli', 'src/io']) t.deepEqual(violations('src/kube', above), [], above);
});

test('no file of the forwarding path is the old single-file pipeline: the stages are functions of their own', (t) => {
  const stages = sourcesUnder('src/datapath/stages').filter((f) => f.endsWith('.ts') && !f.endsWith('/stage.ts'));
  t.true(stages.length >= 14, stages.join(', '));
  // Stages depend on the context and the tables, never on each other.
  const crossing = stages.flatMap((file) => importsOf(file).filter((target) => target.startsWith('src/datapath/stages/') && !target.endsWith('/stage.js')).map((target) => `${file} imports ${target}`));
  t.deepEqual(crossing, []);
});

/** The `node:` modules `file` imports (fs, net, http, child_process, ...): what I/O it could do. */
function nodeImportsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+'(node:[^']+)'/g)].map((m) => `${file} imports ${m[1]}`);
}

test('the metrics registry reads the dataplane and is read by the node: no agent, CLI, I/O ports or node: modules', (t) => {
  for (const above of ['src/node', 'src/cli', 'src/io', 'src/cluster']) t.deepEqual(violations('src/metrics', above), [], above);
  t.deepEqual(sourcesUnder('src/metrics').flatMap(nodeImportsOf), []);
  t.deepEqual(importsOf('src/metrics/histogram.ts'), [], 'histogram.ts imports nothing: lower layers keep their histograms in it');
  const fromDns = sourcesUnder('src/dns').flatMap((file) => importsOf(file).filter((target) => target.startsWith('src/metrics/') && target !== 'src/metrics/histogram.js').map((target) => `${file} imports ${target}`));
  t.deepEqual(fromDns, [], 'dns takes the histogram alone from metrics');
});

test('the sandbox launcher imports nothing of ours: the node agent and the CLI drive it', (t) => {
  const found = sourcesUnder('src/sandbox').flatMap((file) => importsOf(file).filter((target) => !target.startsWith('src/sandbox/')).map((target) => `${file} imports ${target}`));
  t.deepEqual(found, []);
});

test("the kubelet's semantics (src/pod) are pure: they read the cluster model and packet's addresses, and do no I/O", (t) => {
  const found = sourcesUnder('src/pod').flatMap((file) => importsOf(file).filter((target) => !/^src\/(pod|packet|cluster)\//.test(target)).map((target) => `${file} imports ${target}`));
  t.deepEqual(found, []);
  t.deepEqual(sourcesUnder('src/pod').flatMap(nodeImportsOf), []);
});

test("the ingress controller's routing (src/ingress) is pure: it reads the cluster model and packet's addresses, does no I/O, and is read by the node and its proxy", (t) => {
  const found = sourcesUnder('src/ingress').flatMap((file) => importsOf(file).filter((target) => !/^src\/(ingress|packet|cluster)\//.test(target)).map((target) => `${file} imports ${target}`));
  t.deepEqual(found, []);
  t.deepEqual(sourcesUnder('src/ingress').flatMap(nodeImportsOf), []);
  for (const below of ['src/packet', 'src/cluster', 'src/datapath', 'src/kube', 'src/netfilter']) t.deepEqual(violations(below, 'src/ingress'), [], below);
});

test('flows are made and matched by pure modules: src/observe imports no agent, CLI or I/O, and the forwarding path does not import them', (t) => {
  for (const above of ['src/node', 'src/cli', 'src/io', 'src/store', 'src/controller']) t.deepEqual(violations('src/observe', above), [], above);
  t.deepEqual(violations('src/datapath', 'src/observe'), []);
  const io = sourcesUnder('src/observe').filter((file) => /from 'node:(fs|net|dgram|child_process)'/.test(readFileSync(join(ROOT, file), 'utf8')));
  t.deepEqual(io, []);
});

test('the web view is a client of the nodes and the CLI drives it: src/ui imports no CLI; its map, edges, requests and trace chaining do no I/O; the page imports only its own folder', (t) => {
  t.deepEqual(violations('src/ui', 'src/cli'), []);
  for (const above of ['src/ui', 'src/cli']) t.deepEqual(violations('src/node', above), [], above);
  const pure = ['src/ui/map.ts', 'src/ui/edges.ts', 'src/ui/requests.ts', 'src/ui/trace-path.ts', 'src/ui/search.ts'];
  t.deepEqual(pure.flatMap(nodeImportsOf), []);
  const page = sourcesUnder('web/src');
  t.true(page.length >= 3, page.join(', '));
  t.deepEqual(page.flatMap((file) => importsOf(file).filter((target) => !target.startsWith('web/src/')).map((target) => `${file} imports ${target}`)), []);
  t.deepEqual(page.flatMap(nodeImportsOf), []);
});
