/**
 * Fragment reassembly and refragmentation: what a fragmented datagram costs the node.
 *
 * - Reassembling a 2-fragment datagram (2000 bytes of UDP at MTU 1500, the common case
 *   of a DNS answer or a ping -s 2000) and a 45-fragment one (64 KiB at MTU 1500, the
 *   most fragments a full-size datagram takes on Ethernet): every fragment inserted,
 *   the datagram's header rebuilt, the slot freed. Per datagram.
 * - The 2-fragment case again with 20,000 other datagrams held in the table, to show the
 *   cost does not grow with what the table holds.
 * - Cutting the same datagrams again with fragmentIpv4 at 1500. Per datagram.
 *
 * Targets are about 2.5 times the CPU time measured on the shared 2-core development
 * machine (615 to 830, 660 to 812, 289 to 321, 7694 to 11280 and 3916 to 6362 ns in two
 * runs under load), so a regression shows and a busy neighbour does not.
 * One operation is one datagram (all its fragments). Inputs are built before timing; each batch counts its Complete results and the run
 * fails if any datagram did not complete, and the reassembled bytes are compared with
 * the original before timing.
 */
import { internetChecksum } from '../src/packet/checksum.js';
import { writeU16, writeU32 } from '../src/packet/bytes.js';
import { fragmentIpv4, FragmentError } from '../src/packet/ipv4-fragment.js';
import { Defrag, DefragResult } from '../src/netfilter/defrag.js';
import { atMost, runMicroSuite, sink, type BenchContext, type BenchModule, type Figure } from './harness.js';

const T0 = 1_000 * 1e9;
const MTU = 1500;
const SMALL_BATCH = 512;
const LARGE_BATCH = 16;
const HELD = 20_000;

const NAMES = {
  small: 'defrag: reassemble a 2-fragment datagram (2000 B at MTU 1500)',
  large: 'defrag: reassemble a 45-fragment datagram (64 KiB at MTU 1500)',
  smallLoaded: 'defrag: reassemble a 2-fragment datagram, 20,000 others held',
  cutSmall: 'fragment: cut a 2000 B datagram at MTU 1500 (2 fragments)',
  cutLarge: 'fragment: cut a 64 KiB datagram at MTU 1500 (45 fragments)',
} as const;

/** A UDP/IPv4 datagram of `length` bytes from 10.244.1.2 to 10.244.2.2. */
function buildDatagram(length: number, id: number): Buffer {
  const d = Buffer.alloc(length);
  d[0] = 0x45;
  writeU16(d, 2, length);
  writeU16(d, 4, id);
  d[8] = 64;
  d[9] = 17;
  writeU32(d, 12, 0x0af40102);
  writeU32(d, 16, 0x0af40202);
  for (let i = 20; i < length; i++) d[i] = (i * 31) & 0xff;
  writeU16(d, 10, internetChecksum(d, 0, 20));
  return d;
}

function cut(datagram: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const err = fragmentIpv4(datagram, 0, MTU, Buffer.alloc(MTU), 0, (f, length) => out.push(Buffer.from(f.subarray(0, length))));
  if (err !== FragmentError.Ok) throw new Error(`fragmentIpv4: ${err}`);
  return out;
}

/** Reassembles `frags` once outside timing and checks the bytes against the original. */
function verify(table: Defrag, frags: Buffer[], original: Buffer, name: string): void {
  let result: DefragResult = DefragResult.Held;
  for (const f of frags) result = table.insert(f, 0, T0);
  const got = table.completeBuffer.subarray(table.completeOffset, table.completeOffset + table.completeLength);
  if (result !== DefragResult.Complete || !original.equals(got)) throw new Error(`${name}: reassembly does not give the original back`);
}

function reassembleBatch(table: Defrag, frags: Buffer[], batch: number, tally: { incomplete: number }): () => void {
  return () => {
    let complete = 0;
    let acc = 0;
    for (let k = 0; k < batch; k++) {
      for (let i = 0; i < frags.length; i++) {
        if (table.insert(frags[i], 0, T0) === DefragResult.Complete) {
          complete++;
          acc ^= table.completeLength;
        }
      }
    }
    sink.value ^= acc;
    tally.incomplete += batch - complete;
  };
}

function cutBatch(datagram: Buffer, batch: number): () => void {
  const out = Buffer.alloc(MTU);
  let acc = 0;
  const emit = (_f: Uint8Array, length: number): void => {
    acc += length;
  };
  return () => {
    for (let k = 0; k < batch; k++) fragmentIpv4(datagram, 0, MTU, out, 0, emit);
    sink.value ^= acc;
  };
}

async function reassemblyFigures(ctx: BenchContext): Promise<Figure[]> {
  const small = buildDatagram(2000, 1);
  const large = buildDatagram(65_535, 2);
  const smallFrags = cut(small);
  const largeFrags = cut(large);
  if (smallFrags.length !== 2 || largeFrags.length !== 45) throw new Error('defrag bench: unexpected fragment counts');

  const plain = new Defrag();
  verify(plain, smallFrags, small, NAMES.small);
  verify(plain, largeFrags, large, NAMES.large);
  // Small slots and room for many: 20,000 first fragments that never complete, held throughout.
  const loaded = new Defrag({ maxDatagramSize: 2048, memoryLimit: 96 * 1024 * 1024 });
  for (let i = 0; i < HELD; i++) {
    if (loaded.insert(buildFragmentOf(smallFrags[0], 0x0a000000 + i), 0, T0) !== DefragResult.Held) throw new Error('defrag bench: a held fragment was refused');
  }
  verify(loaded, smallFrags, small, NAMES.smallLoaded);
  if (loaded.size !== HELD) throw new Error(`defrag bench: ${loaded.size} held, wanted ${HELD}`);

  const tallies = { small: { incomplete: 0 }, large: { incomplete: 0 }, loaded: { incomplete: 0 } };
  const figures = [
    ...(await runMicroSuite(ctx, {
      name: 'defrag-2',
      opsPerCall: SMALL_BATCH,
      cases: [
        { name: NAMES.small, target: atMost(2000), run: reassembleBatch(plain, smallFrags, SMALL_BATCH, tallies.small) },
        { name: NAMES.smallLoaded, target: atMost(2000), run: reassembleBatch(loaded, smallFrags, SMALL_BATCH, tallies.loaded) },
        { name: NAMES.cutSmall, target: atMost(1000), run: cutBatch(small, SMALL_BATCH) },
      ],
    })),
    ...(await runMicroSuite(ctx, {
      name: 'defrag-45',
      opsPerCall: LARGE_BATCH,
      cases: [
        { name: NAMES.large, target: atMost(20_000), run: reassembleBatch(plain, largeFrags, LARGE_BATCH, tallies.large) },
        { name: NAMES.cutLarge, target: atMost(10_000), run: cutBatch(large, LARGE_BATCH) },
      ],
    })),
  ];
  for (const [name, tally] of [
    [NAMES.small, tallies.small],
    [NAMES.large, tallies.large],
    [NAMES.smallLoaded, tallies.loaded],
  ] as const) {
    if (tally.incomplete !== 0) throw new Error(`${name}: ${tally.incomplete} datagrams did not complete`);
  }
  if (loaded.size !== HELD) throw new Error(`${NAMES.smallLoaded}: the held datagrams went (${loaded.size} left)`);
  return figures;
}

/** The same fragment from another source address (another datagram key), checksum summed again. */
function buildFragmentOf(fragment: Buffer, src: number): Buffer {
  const f = Buffer.from(fragment);
  writeU32(f, 12, src);
  writeU16(f, 10, 0);
  writeU16(f, 10, internetChecksum(f, 0, 20));
  return f;
}

const defrag: BenchModule = {
  name: 'defrag',
  async run(ctx) {
    if (!Object.values(NAMES).some((name) => ctx.selects(name))) return [];
    return reassemblyFigures(ctx);
  },
};

export default defrag;
