/**
 * The dataplane benchmark's UDP load generator, on loopback: a paced sender offers what it
 * was asked (the 300k pps figure rests on it), an unpaced one offers more, and bad
 * arguments are refused with a usage line.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { buildFlood, parseReceive, parseSend } from '../../bench/dataplane/flood.js';
import { Background, CommandError, run } from '../../bench/dataplane/proc.js';

function gccMissing(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
}

let dir = '';
let flood = '';

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pw-flood-test-'));
  if (!noGcc) flood = await buildFlood(dir);
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A port of our own for each test: the receiver binds every address. */
let nextPort = 20_000 + (process.pid % 20_000);

/** Sends for `seconds` (paced when rate > 0) to a receiver on 127.0.0.1; both results. */
async function exchange(seconds: number, rate: number) {
  const port = nextPort++;
  const recv = new Background([flood, 'recv', String(port), String(seconds + 10), '0.5']);
  try {
    await recv.waitForOutput('ready');
    const sent = parseSend(await run([flood, 'send', '127.0.0.1', String(port), String(seconds), '64', String(rate)]));
    return { sent, received: parseReceive(await recv.done) };
  } finally {
    await recv.stop();
  }
}

const noGcc = gccMissing();
if (noGcc) test('flood tool tests skipped: no gcc to build it', (t) => t.pass());
const serial = noGcc ? test.serial.skip : test.serial;

serial('a paced sender offers its rate, every datagram arrives, and the unpaced one offers more', async (t) => {
  const rate = 20_000;
  const seconds = 1;
  const paced = await exchange(seconds, rate);
  // The schedule is rate × elapsed and the sender never runs ahead of it; a stall near the
  // end can leave it owing at most what it could not catch up on, never more.
  t.true(paced.sent.sent <= rate * paced.sent.seconds + 1, `sent ${paced.sent.sent} in ${paced.sent.seconds} s`);
  t.true(paced.sent.sent >= rate * seconds * 0.9, `sent ${paced.sent.sent} of ${rate * seconds}`);
  t.is(paced.sent.refused, 0);
  t.is(paced.received.received, paced.sent.sent, 'loopback with 16 MiB buffers loses nothing at 20k pps');

  // Unpaced, the sender offers what the CPU lets it: on a machine busy with other tests that
  // can be little (the several-machine e2e runs iperf3 beside it), so the best of up to ten
  // short runs, spread over three seconds, is compared, and with the rate itself.
  let best = 0;
  for (let i = 0; i < 10 && best <= rate; i++) {
    const unpaced = await exchange(0.3, 0);
    best = Math.max(best, unpaced.sent.sent / unpaced.sent.seconds);
  }
  t.true(best > rate, `unpaced offered at most ${best.toFixed(0)} datagrams/s`);
});

serial('bad arguments get the usage line and exit 2', async (t) => {
  for (const args of [
    ['send', '127.0.0.1', '9', '1', '64', '-5'],
    ['send', '127.0.0.1', '9', '1', '64', 'fast'],
    ['send', '127.0.0.1', '9', '1', '0'],
    ['send', 'not-an-address', '9', '1', '64'],
    ['sideways'],
  ]) {
    const err = await t.throwsAsync(run([flood, ...args]), { instanceOf: CommandError }, args.join(' '));
    t.is(err?.code, 2, args.join(' '));
    t.regex(err?.stderr ?? '', /usage|size|rate|address/, args.join(' '));
  }
});
