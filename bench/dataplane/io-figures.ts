/**
 * The io benchmark's TAP read/write rates (podwire's addon and the tuntap2 fork), run as
 * a child process inside the pwkbio namespace; see io-driver.ts for why.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Figure } from '../harness.js';
import { Background, inNetns, run } from './proc.js';

export const IO_NETNS = 'pwkbio';
const DRIVER = fileURLToPath(new URL('./io-driver.js', import.meta.url));
const IO_BENCH = fileURLToPath(new URL('../io.bench.js', import.meta.url));

/** The io benchmark's figures taken: TAP read and write, addon beside the tuntap2 fork. */
export const IO_FIGURES: readonly string[] = [
  'tap read, addon',
  'tap write, addon',
  'tap read, tuntap2 fork',
  'tap write, tuntap2 fork',
  'tap read: addon / tuntap2 fork',
  'tap write: addon / tuntap2 fork',
];

/** An io benchmark figure's name in this module's report. */
export const ioFigureName = (ioName: string): string => `dataplane: io bench, ${ioName}`;

/**
 * Figures of the io benchmark, renamed into this module ('dataplane: io bench, ...').
 * Returns [] (with a log line) when bench/io.bench.ts is not there.
 */
export async function ioFigures(seconds: number, log: (line: string) => void): Promise<Figure[]> {
  if (!existsSync(IO_BENCH)) {
    log('  (no bench/io.bench.ts: no tuntap2 figures)');
    return [];
  }
  await run(['ip', 'netns', 'add', IO_NETNS]);
  try {
    await run(['ip', '-n', IO_NETNS, 'link', 'set', 'lo', 'up']);
    const driver = new Background(inNetns(IO_NETNS, [process.execPath, DRIVER]), { ...process.env, PODWIRE_BENCH_SECONDS: String(seconds) });
    try {
      const out = await driver.done.finally(() => {
        for (const line of driver.errorOutput.split('\n')) if (line.trim() !== '') log(`  io bench | ${line.trim()}`);
      });
      const figures = JSON.parse(out.trim().split('\n').pop() ?? '[]') as Figure[];
      return figures.map((f) => ({ ...f, name: ioFigureName(f.name) }));
    } catch (err) {
      log(`  io bench failed: ${(err as Error).message}`);
      return [];
    } finally {
      await driver.stop();
    }
  } finally {
    await destroyIoNamespace();
  }
}

export async function destroyIoNamespace(): Promise<void> {
  const present = (await run(['ip', 'netns', 'list'], { teardown: true }).catch(() => '')).split('\n').some((l) => l.split(' ')[0] === IO_NETNS);
  if (present) await run(['ip', 'netns', 'del', IO_NETNS], { teardown: true }).catch(() => undefined);
}
