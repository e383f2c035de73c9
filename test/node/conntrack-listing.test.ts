import test from 'ava';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Conntrack, type ConntrackEntry } from '../../src/netfilter/conntrack.js';
import { formatConntrack } from '../../src/netfilter/conntrack-format.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../src/netfilter/conntrack-tuple.js';
import { ConntrackListing, DEFAULT_LISTING_LIMITS, nextTurn } from '../../src/node/conntrack-listing.js';
import type { ConntrackChunk, ConntrackQuery } from '../../src/node/control-protocol.js';
import { FILL_SERVER, fillConntrack, fillSource, fillSourcePort } from '../helpers/conntrack-fill.js';

const SECOND = 1e9;
const NOW = 1000 * SECOND;
const FULL = 262_144;

const full = new Conntrack();
fillConntrack(full, FULL, NOW);

interface Slice {
  size: number;
  /** Milliseconds from the start of the slice's turn to its send. */
  ms: number;
  /**
   * CPU milliseconds the process spent meanwhile: the slice's own cost, which the wall
   * clock also shows but mixed with the time other processes of a shared machine took.
   */
  cpuMs: number;
  /** The ticker's count when the slice was sent: how many turns of the loop had passed. */
  turn: number;
}

/**
 * Runs a listing with the real event loop, recording each slice and a ticker that counts
 * loop turns; keeps the chunks, or with `keep` false only the first line or entry of each
 * (so that the test itself does not hold the whole table).
 */
async function record(listing: ConntrackListing, query: ConntrackQuery, keep = true): Promise<{ slices: Slice[]; chunks: ConntrackChunk[]; shown: number }> {
  let turns = 0;
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const slices: Slice[] = [];
  const chunks: ConntrackChunk[] = [];
  try {
    const { shown } = await listing.stream(query, {
      send: async (chunk) => {
        const cpu = process.cpuUsage(cpuStarted);
        slices.push({ size: 'lines' in chunk ? chunk.lines.length : chunk.entries.length, ms: performance.now() - turnStarted, cpuMs: (cpu.user + cpu.system) / 1000, turn: turns });
        chunks.push(keep ? chunk : 'lines' in chunk ? { lines: chunk.lines.slice(0, 1) } : { entries: chunk.entries.slice(0, 1) });
      },
    });
    return { slices, chunks, shown };
  } finally {
    ticking = false;
  }
}

let turnStarted = 0;
let cpuStarted = process.cpuUsage();
/** The listing's own turn, noting when each starts. */
async function timedTurn(): Promise<void> {
  await nextTurn();
  turnStarted = performance.now();
  cpuStarted = process.cpuUsage();
}

test.serial('a full table (262,144) streams in bounded slices, one per turn of the event loop, without stalling it', async (t) => {
  const listing = new ConntrackListing(full, () => NOW + SECOND, DEFAULT_LISTING_LIMITS, timedTurn);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPeak = heapBefore;
  delay.enable();
  const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 5);
  const { slices, chunks, shown } = await record(listing, { output: 'text', filter: {} }, false);
  clearInterval(sampler);
  delay.disable();

  t.is(shown, FULL);
  t.is(slices.reduce((n, s) => n + s.size, 0), FULL);
  // The table is full, so every slice fills its chunk.
  t.true(slices.every((s) => s.size === DEFAULT_LISTING_LIMITS.entriesPerChunk));
  // The event loop turned between every two slices: I/O (frames) ran in between.
  for (let i = 1; i < slices.length; i++) if (slices[i].turn <= slices[i - 1].turn) t.fail(`slices ${i - 1} and ${i} ran in one turn`);
  const sorted = (values: number[]) => values.sort((a, b) => a - b);
  const wall = sorted(slices.map((s) => s.ms));
  const cpu = sorted(slices.map((s) => s.cpuMs));
  const at = (values: number[], q: number) => values[Math.min(values.length - 1, Math.floor(values.length * q))];
  const show = (values: number[]) => `p50 ${at(values, 0.5).toFixed(2)}, p99 ${at(values, 0.99).toFixed(2)}, max ${at(values, 1).toFixed(2)} ms`;
  t.log(`${slices.length} slices: wall ${show(wall)}; cpu ${show(cpu)}; loop delay max ${(delay.max / 1e6).toFixed(1)} ms; heap +${((heapPeak - heapBefore) / 2 ** 20).toFixed(0)} MiB`);
  // A slice costs well under a millisecond (the whole table, formatted in one go as the
  // node once did, took 1-2 s); the bounds leave room for garbage collection.
  t.true(at(cpu, 0.5) < 2, show(cpu));
  t.true(at(cpu, 0.99) < 10, show(cpu));
  // Nothing of the listing accumulates: memory does not grow with the table.
  t.true(heapPeak - heapBefore < 48 * 2 ** 20, `heap grew by ${heapPeak - heapBefore} bytes`);
  // In id order, as conntrack -L would print them: chunk k starts with connection k * 256.
  const mismatched = chunks.findIndex((c, k) => !('lines' in c) || c.lines[0] !== formatConntrack(full.entry(k * DEFAULT_LISTING_LIMITS.entriesPerChunk, NOW + SECOND)!));
  t.is(mismatched, -1);
});

test.serial('filters select in the node before formatting; rows that fail a filter cost a slice only every rowsPerTurn rows', async (t) => {
  const listing = new ConntrackListing(full, () => NOW + SECOND, DEFAULT_LISTING_LIMITS, timedTurn);
  const src = fillSource(100_000);
  const one = await record(listing, { output: 'text', filter: { proto: IPPROTO_TCP, src, sport: fillSourcePort(100_003), dport: 80 } });
  t.is(one.shown, 1);
  t.deepEqual(one.chunks, [{ lines: [formatConntrack(full.entry(100_003, NOW + SECOND)!)] }]);
  // 262,144 rows scanned 4,096 at a time: 64 turns, and only the slice with a match is sent.
  t.is(one.slices.length, 1);

  const now = NOW + SECOND;
  const listed = full.list(now);
  const expected = (keep: (e: ConntrackEntry) => boolean) => listed.filter(keep).length;
  const count = async (query: ConntrackQuery) => (await record(listing, query)).shown;
  t.is(await count({ output: 'count', filter: { proto: IPPROTO_ICMP } }), expected((e) => e.proto === IPPROTO_ICMP));
  t.is(await count({ output: 'count', filter: { proto: IPPROTO_UDP, dport: 53 } }), expected((e) => e.proto === IPPROTO_UDP));
  t.is(await count({ output: 'count', filter: { src } }), expected((e) => e.original.src === src));
  t.is(await count({ output: 'count', filter: { dst: FILL_SERVER } }), FULL);
  t.is(await count({ output: 'count', filter: { dst: FILL_SERVER + 1 } }), 0);
  t.is(await count({ output: 'count', filter: { proto: IPPROTO_TCP, sport: fillSourcePort(7) } }), expected((e) => e.proto === IPPROTO_TCP && e.original.sport === fillSourcePort(7)));
  // Count sends no chunks at all.
  t.deepEqual((await record(listing, { output: 'count', filter: {} })).chunks, []);
});

test.serial('json output streams the entries themselves', async (t) => {
  const ct = new Conntrack({ maxEntries: 1000 });
  fillConntrack(ct, 600, NOW);
  const listing = new ConntrackListing(ct, () => NOW, { rowsPerTurn: 64, entriesPerChunk: 50 });
  const { chunks, shown } = await record(listing, { output: 'json', filter: {} });
  t.is(shown, 600);
  t.true(chunks.every((c) => 'entries' in c && c.entries.length <= 50));
  t.deepEqual(
    chunks.flatMap((c) => ('entries' in c ? c.entries : [])),
    ct.list(NOW),
  );
});

test.serial('expired and removed connections are not shown', async (t) => {
  const ct = new Conntrack({ maxEntries: 64 });
  fillConntrack(ct, 40, NOW);
  ct.destroy(3 * 2);
  const listing = new ConntrackListing(ct, () => NOW + 31 * SECOND);
  // UDP and ICMP live 30 s unreplied; TCP in SYN_SENT 120 s: only TCP is left at 31 s.
  const { chunks, shown } = await record(listing, { output: 'json', filter: {} });
  const entries = chunks.flatMap((c) => ('entries' in c ? c.entries : []));
  t.is(shown, entries.length);
  t.true(entries.every((e) => e.proto === IPPROTO_TCP && e.id !== 3));
  t.is(shown, ct.list(NOW + 31 * SECOND).length);
});

test.serial('a listing waits for its sink: nothing more is formatted until the last chunk has gone out', async (t) => {
  const ct = new Conntrack({ maxEntries: 4096 });
  fillConntrack(ct, 4096, NOW);
  const listing = new ConntrackListing(ct, () => NOW, { rowsPerTurn: 4096, entriesPerChunk: 100 });
  let sent = 0;
  let release: () => void = () => undefined;
  const done = listing.stream({ output: 'text', filter: {} }, {
    send: () => {
      sent++;
      return new Promise<void>((resolve) => (release = resolve));
    },
  });
  await new Promise((r) => setTimeout(r, 50));
  t.is(sent, 1);
  release();
  await new Promise((r) => setTimeout(r, 50));
  t.is(sent, 2);
  const finish = setInterval(() => release(), 1);
  t.deepEqual(await done, { shown: 4096 });
  clearInterval(finish);
  t.is(sent, Math.ceil(4096 / 100));
});

test.serial('two listings at once share the turns: still one slice per turn of the loop', async (t) => {
  const listing = new ConntrackListing(full, () => NOW + SECOND, DEFAULT_LISTING_LIMITS, timedTurn);
  let turns = 0;
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const at: number[] = [];
  const sink = { send: async () => void at.push(turns) };
  const query: ConntrackQuery = { output: 'text', filter: { proto: IPPROTO_UDP } };
  const [a, b] = await Promise.all([listing.stream(query, sink), listing.stream(query, sink)]);
  ticking = false;
  t.is(a.shown, b.shown);
  t.true(at.length > 100);
  for (let i = 1; i < at.length; i++) if (at[i] <= at[i - 1]) t.fail(`two slices in turn ${at[i]}`);
});

test('limits must be positive integers', (t) => {
  t.throws(() => new ConntrackListing(full, () => NOW, { rowsPerTurn: 0, entriesPerChunk: 10 }), { instanceOf: RangeError });
  t.throws(() => new ConntrackListing(full, () => NOW, { rowsPerTurn: 10, entriesPerChunk: 1.5 }), { instanceOf: RangeError });
});
