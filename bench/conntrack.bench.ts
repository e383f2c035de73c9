/**
 * Conntrack on the packet path: lookups that hit (either direction) and miss, `create`
 * filling a table, lookup + update of an established connection, lookup + DNAT rewrite,
 * churn at 1M (the reaper removing expired connections while new ones take their ids),
 * and memory per connection, index included, at each size and at the default size.
 *
 * The clock is the nanosecond one conntrack takes; it stands still except in churn.
 */
import { Conntrack, CT_NOT_FOUND, TrackVerdict } from '../src/netfilter/conntrack.js';
import { FlowTuple } from '../src/netfilter/conntrack-tuple.js';
import { setReplySource } from '../src/netfilter/nat-port.js';
import { natTcp } from '../src/netfilter/nat.js';
import { emitIpv4, Ipv4View } from '../src/packet/ipv4.js';
import { emitTcp, TcpView, TCP_ACK, TCP_PSH } from '../src/packet/tcp.js';
import { atMost, runMicroSuite, sink, type BenchContext, type BenchModule, type Figure } from './harness.js';
import { allocTuples, distinctTuples, expectAll, type LookupTally, prng, type Tuples } from './tuples.js';

const SIZES = [
  { n: 1_000, label: '1K' },
  { n: 10_000, label: '10K' },
  { n: 100_000, label: '100K' },
  { n: 1_000_000, label: '1M' },
] as const;
const LARGEST = 1_000_000;
const BATCH = 4096;
const SEED = 0x2545f491;
const T0 = 1_000 * 1e9;
const ESTABLISHED = TCP_PSH | TCP_ACK;

/** Churn: 1M connections, reaped and replaced 4,000 at a time, each batch 1/250 of the 30 s timeout apart. */
const CHURN_BATCH = 4000;
const CHURN_STEP_NS = (30e9 * CHURN_BATCH) / LARGEST;

const NAMES = {
  hit: (label: string) => `conntrack: lookup hit, ${label} connections`,
  miss: (label: string) => `conntrack: lookup miss, ${label} connections`,
  insert: (label: string) => `conntrack: create, filling ${label} connections`,
  bytes: (label: string) => `conntrack: memory per connection, ${label}`,
  bytesDefault: 'conntrack: memory per connection, default 262,144',
  bytesDefaultNoAcct: 'conntrack: memory per connection, default 262,144, accounting off',
  update: 'conntrack: lookup + update (TCP ACK, established), 1M connections',
  nat: 'nat: lookup + DNAT rewrite of a TCP segment, incremental checksums',
  churn: 'conntrack: churn at 1M connections (reap expired + create)',
} as const;

function allNames(): string[] {
  const perSize = SIZES.flatMap(({ label }) => [NAMES.hit(label), NAMES.miss(label), NAMES.insert(label), NAMES.bytes(label)]);
  return [...perSize, NAMES.bytesDefault, NAMES.bytesDefaultNoAcct, NAMES.update, NAMES.nat, NAMES.churn];
}


/** Creates rows [from, from + count) of `keys` (replies un-NATed); returns how many were refused. */
function fill(ct: Conntrack, keys: Tuples, from: number, count: number, now: number, orig: FlowTuple, reply: FlowTuple): number {
  let refused = 0;
  const ring = keys.length;
  for (let k = 0; k < count; k++) {
    let i = from + k;
    if (i >= ring) i -= ring;
    orig.set(keys.src[i], keys.dst[i], keys.sport[i], keys.dport[i], keys.proto[i]);
    reply.setReplyOf(orig);
    if (ct.create(orig, reply, ESTABLISHED, 60, now) < 0) refused++;
  }
  return refused;
}

/**
 * Lookup queries: `count` rows of `keys` from `from`, in random order, half of them asked
 * in the reply direction (the tuple a reply carries), as traffic both ways would.
 */
function queries(keys: Tuples, from: number, count: number, rand: () => number, bothDirections: boolean): Tuples {
  const q = allocTuples(count);
  for (let k = 0; k < count; k++) {
    const i = from + (rand() % count);
    const reply = bothDirections && (rand() & 1) === 1;
    q.src[k] = reply ? keys.dst[i] : keys.src[i];
    q.dst[k] = reply ? keys.src[i] : keys.dst[i];
    q.sport[k] = reply ? keys.dport[i] : keys.sport[i];
    q.dport[k] = reply ? keys.sport[i] : keys.dport[i];
    q.proto[k] = keys.proto[i];
  }
  return q;
}

function lookups(ct: Conntrack, q: Tuples, tally: LookupTally): () => void {
  let cursor = 0;
  return () => {
    let acc = 0;
    let missing = 0;
    let i = cursor;
    for (let k = 0; k < BATCH; k++) {
      const ref = ct.lookup(q.src[i], q.dst[i], q.sport[i], q.dport[i], q.proto[i], T0);
      acc = (acc + ref) | 0;
      if (ref === CT_NOT_FOUND) missing++;
      if (++i === q.length) i = 0;
    }
    cursor = i;
    sink.value ^= acc;
    tally.missing += missing;
    tally.found += BATCH - missing;
  };
}

interface Fixture {
  /** 2 * LARGEST distinct tuples: the first n of them fill the table of size n; the rest never do. */
  readonly keys: Tuples;
  readonly tables: Conntrack[];
  readonly rand: () => number;
}

function buildFixture(): Fixture {
  const rand = prng(SEED);
  const keys = distinctTuples(2 * LARGEST, rand, SEED);
  const orig = new FlowTuple();
  const reply = new FlowTuple();
  const tables = SIZES.map(({ n }) => {
    const ct = new Conntrack({ maxEntries: n, seed: SEED });
    if (fill(ct, keys, 0, n, T0, orig, reply) !== 0) throw new Error(`fixture: a create into the ${n} table was refused`);
    return ct;
  });
  return { keys, tables, rand };
}

async function lookupFigures(ctx: BenchContext, fx: Fixture): Promise<Figure[]> {
  const cases = SIZES.flatMap(({ n, label }, s) => {
    const hitTally = { found: 0, missing: 0 };
    const missTally = { found: 0, missing: 0 };
    const hits = queries(fx.keys, 0, Math.min(n, 1 << 20), fx.rand, true);
    const misses = queries(fx.keys, LARGEST, Math.min(n, 1 << 20), fx.rand, true);
    return [
      { name: NAMES.hit(label), run: lookups(fx.tables[s], hits, hitTally), check: () => expectAll(NAMES.hit(label), hitTally, 'found') },
      { name: NAMES.miss(label), run: lookups(fx.tables[s], misses, missTally), check: () => expectAll(NAMES.miss(label), missTally, 'missing') },
    ];
  });
  const figures = await runMicroSuite(ctx, {
    name: 'conntrack-lookup',
    opsPerCall: BATCH,
    cases: cases.map(({ name, run }) => ({ name, run })),
  });
  for (const c of cases) if (ctx.selects(c.name)) c.check();
  return figures;
}

/** Each call empties the table and creates n connections: one tuple fill, two index probes, two inserts each. */
async function insertFigures(ctx: BenchContext, fx: Fixture): Promise<Figure[]> {
  const figures: Figure[] = [];
  const orig = new FlowTuple();
  const reply = new FlowTuple();
  for (const [s, { n, label }] of SIZES.entries()) {
    const ct = fx.tables[s];
    let refused = 0;
    figures.push(
      ...(await runMicroSuite(ctx, {
        name: `conntrack-insert-${label}`,
        opsPerCall: n,
        cases: [
          {
            name: NAMES.insert(label),
            run: () => {
              ct.flush();
              refused += fill(ct, fx.keys, 0, n, T0, orig, reply);
            },
          },
        ],
      })),
    );
    if (refused !== 0) throw new Error(`${NAMES.insert(label)}: ${refused} creates refused`);
  }
  return figures;
}

/** What a forwarded packet of a known connection costs conntrack: find it, advance it. */
async function updateFigures(ctx: BenchContext, fx: Fixture): Promise<Figure[]> {
  const ct = fx.tables[SIZES.length - 1];
  const q = queries(fx.keys, 0, LARGEST, fx.rand, true);
  let rejected = 0;
  let cursor = 0;
  const figures = await runMicroSuite(ctx, {
    name: 'conntrack-update',
    opsPerCall: BATCH,
    cases: [
      {
        name: NAMES.update,
        run: () => {
          let i = cursor;
          let bad = 0;
          for (let k = 0; k < BATCH; k++) {
            const ref = ct.lookup(q.src[i], q.dst[i], q.sport[i], q.dport[i], q.proto[i], T0);
            if (ref === CT_NOT_FOUND || ct.update(ref, TCP_ACK, 1500, T0) !== TrackVerdict.Accept) bad++;
            if (++i === q.length) i = 0;
          }
          cursor = i;
          rejected += bad;
        },
      },
    ],
  });
  if (rejected !== 0) throw new Error(`${NAMES.update}: ${rejected} packets not found or not accepted`);
  return figures;
}

/**
 * A TCP segment to a ClusterIP, DNATed to an endpoint by one entry and back by a second
 * (whose original tuple is the endpoint's), alternately: every call rewrites address,
 * port and both checksums, and the frame ends where it began.
 */
async function natFigures(ctx: BenchContext): Promise<Figure[]> {
  const client = 0x0af40102;
  const vip = 0x0a600014;
  const endpoint = 0x0af40305;
  const ct = new Conntrack({ maxEntries: 16, seed: SEED });
  const toEndpoint = new FlowTuple().set(client, vip, 41000, 80, 6);
  const toVip = new FlowTuple().set(client, endpoint, 41000, 8080, 6);
  for (const [orig, addr, port] of [
    [toEndpoint, endpoint, 8080],
    [toVip, vip, 80],
  ] as const) {
    const reply = new FlowTuple();
    reply.setReplyOf(orig);
    setReplySource(reply, addr, port);
    if (ct.create(orig, reply, ESTABLISHED, 60, T0) < 0) throw new Error('nat fixture: create refused');
  }
  const frame = Buffer.alloc(14 + 20 + 20 + 100);
  emitIpv4(
    { src: client, dst: vip, protocol: 6, ttl: 64, payloadLength: 120, dscp: 0, ecn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 },
    frame,
    14,
  );
  emitTcp({ srcPort: 41000, dstPort: 80, seq: 1, ack: 1, flags: ESTABLISHED, window: 502, urgent: 0, options: { sackPermitted: false } }, frame, 34, 100, {
    src: client,
    dst: vip,
  });
  const ip = new Ipv4View();
  const tcp = new TcpView();
  ip.check(frame, 14);
  tcp.check(frame, ip.payloadOffset, ip.payloadLength);
  let missing = 0;
  const figures = await runMicroSuite(ctx, {
    name: 'nat-rewrite',
    opsPerCall: BATCH,
    cases: [
      {
        name: NAMES.nat,
        run: () => {
          for (let k = 0; k < BATCH; k++) {
            const ref = ct.lookup(ip.srcAddr, ip.dstAddr, tcp.srcPort, tcp.dstPort, 6, T0);
            if (ref === CT_NOT_FOUND) missing++;
            else natTcp(ct, ref, ip, tcp);
          }
        },
      },
    ],
  });
  if (missing !== 0 || !ip.verifyChecksum() || !tcp.verifyChecksum(ip.srcAddr, ip.dstAddr)) {
    throw new Error(`${NAMES.nat}: ${missing} lookups missed or checksums wrong after the run`);
  }
  return figures;
}

/**
 * Churn at capacity: 1M connections created CHURN_BATCH at a time, one batch per
 * clock step; each call moves the clock one step, so exactly the oldest batch has
 * reached its 30 s, reaps it with `expire` and creates a new batch in its place.
 */
async function churnFigures(ctx: BenchContext, fx: Fixture): Promise<Figure[]> {
  // TCP entries here were picked up mid-stream and have seen no reply, so their cap
  // (tcpUnacknowledged) is their timeout: set to UDP's, every entry lives exactly 30 s.
  const ct = new Conntrack({ maxEntries: LARGEST, seed: SEED, timeouts: { udp: 30, tcpUnacknowledged: 30 } });
  const ring = fx.keys;
  const orig = new FlowTuple();
  const reply = new FlowTuple();
  const batches = LARGEST / CHURN_BATCH;
  for (let b = 0; b < batches; b++) {
    if (fill(ct, ring, b * CHURN_BATCH, CHURN_BATCH, T0 + b * CHURN_STEP_NS, orig, reply) !== 0) throw new Error('churn fixture: create refused');
  }
  let step = batches;
  let next = LARGEST;
  let failures = 0;
  const figures = await runMicroSuite(ctx, {
    name: 'conntrack-churn',
    opsPerCall: CHURN_BATCH,
    cases: [
      {
        name: NAMES.churn,
        run: () => {
          const now = T0 + step * CHURN_STEP_NS;
          step++;
          if (ct.expire(now, CHURN_BATCH) !== CHURN_BATCH) failures++;
          failures += fill(ct, ring, next, CHURN_BATCH, now, orig, reply);
          next = (next + CHURN_BATCH) % ring.length;
        },
      },
    ],
  });
  if (failures !== 0 || ct.size !== LARGEST) throw new Error(`${NAMES.churn}: ${failures} failed batches, size ${ct.size}`);
  return figures;
}

function memoryFigures(ctx: BenchContext, fx: Fixture): Figure[] {
  const figures: Figure[] = SIZES.map(({ label }, s) => ({ name: NAMES.bytes(label), value: fx.tables[s].bytesPerEntry, unit: 'B/conn', target: atMost(128) }));
  figures.push({ name: NAMES.bytesDefault, value: new Conntrack().bytesPerEntry, unit: 'B/conn', target: atMost(128) });
  figures.push({ name: NAMES.bytesDefaultNoAcct, value: new Conntrack({ accounting: false }).bytesPerEntry, unit: 'B/conn', target: atMost(128) });
  return figures.filter((f) => ctx.selects(f.name));
}

const conntrack: BenchModule = {
  name: 'conntrack',
  async run(ctx) {
    if (!allNames().some((name) => ctx.selects(name))) return [];
    const fx = buildFixture();
    const memory = memoryFigures(ctx, fx);
    return [
      ...(await lookupFigures(ctx, fx)),
      ...(await updateFigures(ctx, fx)),
      ...(await natFigures(ctx)),
      ...(await churnFigures(ctx, fx)),
      ...(await insertFigures(ctx, fx)),
      ...memory,
    ];
  },
};

export default conntrack;
