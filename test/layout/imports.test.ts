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
