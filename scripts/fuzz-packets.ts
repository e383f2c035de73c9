/**
 * Fuzzes the packet views with random and mutated frames, seeded from test/fixtures, at a
 * volume the test suite cannot afford (test/fuzz/packets.test.ts runs 100k fixed cases).
 *
 *     npm run fuzz                                  1,000,000 cases from a fresh seed
 *     npm run fuzz -- --cases 5000000 --seed 42     any count, any seed
 *     npm run fuzz -- --seed 42 --case 123456       replays one case of a run
 *     npm run fuzz -- --replay 0200000a...          replays a frame given as hex
 *
 * A fresh seed is taken from the clock and printed first, so that every run explores new
 * cases and any of them can be replayed; the generator itself never reads the clock.
 * On a failure the seed, the case number and the frame's hex are printed and written to
 * fuzz-failure-<seed>-<case>.txt, and the exit status is 1.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeFailure, formatReach, generateFrame, loadCorpus, replayFrame, runCases, toHex, type FuzzResult } from '../test/fuzz/frames.js';

interface Args {
  cases: number;
  seed: number;
  fenceEvery: number;
  case?: number;
  replay?: string;
}

const USAGE = 'usage: fuzz-packets [--cases N] [--seed S] [--fence-every K] [--case N] [--replay HEX]';

/** Bad arguments are the user's mistake: a message and status 2, not a stack trace. */
class UsageError extends Error {}

function parseIntArg(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text.replace(/_/g, ''));
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} wants an integer of at least ${min}, not ${text}\n${USAGE}`);
  return value;
}

const OPTIONS = {
  cases: { type: 'string' },
  seed: { type: 'string' },
  'fence-every': { type: 'string' },
  case: { type: 'string' },
  replay: { type: 'string' },
} as const;

function parseOptions(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, strict: true }).values;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
}

function readArgs(argv: string[]): Args {
  const values = parseOptions(argv);
  if (values.case !== undefined && values.seed === undefined) throw new UsageError(`--case needs the --seed of its run\n${USAGE}`);
  if (values.replay !== undefined && !/^(?:[0-9a-fA-F]{2})*$/.test(values.replay)) {
    throw new UsageError(`--replay wants a frame as hex\n${USAGE}`);
  }
  return {
    cases: parseIntArg('cases', values.cases, 1_000_000, 1),
    // A seed is a uint32; the clock only chooses one when none is given.
    seed: parseIntArg('seed', values.seed, Date.now() % 0x100000000, 0) >>> 0,
    fenceEvery: parseIntArg('fence-every', values['fence-every'], 10, 1),
    case: values.case === undefined ? undefined : parseIntArg('case', values.case, 0, 0),
    replay: values.replay,
  };
}

/** Walks one frame fenced and plain; prints the layers it reached or the failure. */
function replay(hex: string): number {
  try {
    const reach = replayFrame(hex);
    const reached = Object.entries(reach.checked).filter(([, n]) => n > 0).map(([layer]) => layer);
    console.log(`ok: reached ${reached.join(', ') || 'nothing'}`);
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    return 1;
  }
}

/** 1,000,000 rather than 1000000. */
function n(count: number): string {
  return count.toLocaleString('en');
}

function report(result: FuzzResult, seconds: number): void {
  const rate = Math.round(result.cases / seconds);
  console.log(`${n(result.cases)} cases (${n(result.fencedCases)} fenced) in ${seconds.toFixed(1)} s: ${n(rate)} cases/s`);
  console.log(formatReach(result.reach, result.cases));
}

function fuzz(args: Args): number {
  const corpus = loadCorpus();
  console.log(`seed ${args.seed}: ${n(args.cases)} cases from ${corpus.length} captured frames, one in ${args.fenceEvery} fenced`);
  const started = performance.now();
  const result = runCases(corpus, {
    seed: args.seed,
    cases: args.cases,
    fenceEvery: args.fenceEvery,
    progressEvery: Math.max(1, Math.min(100_000, Math.floor(args.cases / 10))),
    progress: (done) => {
      const seconds = (performance.now() - started) / 1000;
      console.log(`  ${n(done)} cases, ${seconds.toFixed(1)} s, ${n(Math.round(done / seconds))} cases/s`);
    },
  });
  report(result, (performance.now() - started) / 1000);
  if (result.failure === undefined) return 0;
  const text = describeFailure(result.failure);
  const file = `fuzz-failure-${result.failure.seed}-${result.failure.caseNumber}.txt`;
  writeFileSync(file, `${text}\n`);
  console.error(`\n${text}\n(written to ${file})`);
  return 1;
}

function main(): number {
  const args = readArgs(process.argv.slice(2));
  if (args.replay !== undefined) return replay(args.replay);
  if (args.case !== undefined) {
    const hex = toHex(generateFrame(loadCorpus(), args.seed, args.case));
    console.log(`case ${args.case} of seed ${args.seed}: ${hex}`);
    return replay(hex);
  }
  return fuzz(args);
}

try {
  process.exitCode = main();
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(error.message);
  process.exitCode = 2;
}
