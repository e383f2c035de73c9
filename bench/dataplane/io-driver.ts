/**
 * Runs the io benchmark's TAP read and write figures (podwire's addon and the registry's
 * tuntap2 fork) and prints them as one JSON line on stdout; its log goes to stderr.
 *
 * The io benchmark names its namespace pw-iobench-<pid> and its TAPs pwb<id>*. So that
 * none of that shows on the machine, this driver runs only inside the benchmark's own
 * namespace (`ip netns exec pwkbio node io-driver.js`, see io-figures.ts): there the
 * network namespace is pwkbio's, so TAPs are born there, and `ip netns exec` has given
 * the process a mount namespace of its own whose mounts do not propagate back. A tmpfs
 * over /run/netns in that mount namespace keeps the io benchmark's named namespace
 * private too; it disappears with this process tree.
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import type { BenchContext, BenchModule } from '../harness.js';
import { IO_FIGURES } from './io-figures.js';

/**
 * Whether this process shares a namespace with the benchmark that started it (`ip netns
 * exec` becomes this process, so the parent is the benchmark). Unreadable counts as shared.
 */
function sharesNamespaceWithParent(kind: 'mnt' | 'net'): boolean {
  try {
    return readlinkSync(`/proc/self/ns/${kind}`) === readlinkSync(`/proc/${process.ppid}/ns/${kind}`);
  } catch {
    return true;
  }
}

async function main(): Promise<void> {
  // Mounting over the machine's /run/netns would hide every named namespace on it.
  if (sharesNamespaceWithParent('mnt') || sharesNamespaceWithParent('net')) {
    throw new Error('io-driver: run me through `ip netns exec <namespace>` (see io-figures.ts), not directly');
  }
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'pwkbio', '/run/netns']);
  const ctx: BenchContext = {
    outDir: process.cwd(),
    budget: { maxTime: 1, minSamples: 1 },
    selects: (name) => IO_FIGURES.includes(name),
    log: (line) => process.stderr.write(`${line}\n`),
  };
  // Imported by URL, not by name: this file must build whether or not bench/io.bench.ts exists.
  const imported = (await import(new URL('../io.bench.js', import.meta.url).href)) as { default?: BenchModule };
  const io = imported.default;
  if (typeof io?.run !== 'function') throw new Error('io-driver: bench/io.bench.js does not export a BenchModule');
  const figures = await io.run(ctx);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
