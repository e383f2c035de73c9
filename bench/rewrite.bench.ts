/**
 * DNAT on an Ethernet+IPv4+TCP frame, in place: the destination address and port are
 * rewritten and both checksums follow, incrementally (RFC 1624, as the NAT stage must do
 * it) and, for comparison, by summing the headers and the whole segment again.
 *
 * The frames are built here from offsets rather than through src/packet's views, so the
 * figure measures the rewrite alone and does not move when the views change.
 */
import { readU16, readU32, writeU16, writeU32 } from '../src/packet/bytes.js';
import { checksumAdjust16, checksumAdjust32, internetChecksum, pseudoHeaderSum } from '../src/packet/checksum.js';
import { atMost, runMicroSuite, sink, type BenchModule } from './harness.js';

const BATCH = 1024;

// Ethernet II, then IPv4 without options (IHL 5), then TCP without options (data offset 5).
const ETH_LEN = 14;
const IP = ETH_LEN;
const IP_LEN = 20;
const IP_TOTAL_LENGTH = IP + 2;
const IP_CHECKSUM = IP + 10;
const IP_SRC = IP + 12;
const IP_DST = IP + 16;
const TCP = IP + IP_LEN;
const TCP_DST_PORT = TCP + 2;
const TCP_CHECKSUM = TCP + 16;
const IPPROTO_TCP = 6;

const CLIENT = 0x0af40102; // 10.244.1.2
const CLUSTER_IP = 0x0a600014; // 10.96.0.20
/** Endpoints the service load-balances to: 10.244.{1..4}.x on assorted ports. */
const ENDPOINT_ADDRS = new Uint32Array([0x0af40105, 0x0af40207, 0x0af40309, 0x0af4040b]);
const ENDPOINT_PORTS = new Uint16Array([8080, 8443, 9090, 3000]);

/** A TCP segment from a pod to a ClusterIP:80, `frameLen` bytes on the wire, checksums filled. */
function buildFrame(frameLen: number): Buffer {
  const f = Buffer.alloc(frameLen);
  f.set([0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00], 0); // dst MAC, src MAC, IPv4
  f[IP] = 0x45;
  writeU16(f, IP_TOTAL_LENGTH, frameLen - ETH_LEN);
  writeU16(f, IP + 4, 0x1c46); // identification
  writeU16(f, IP + 6, 0x4000); // don't fragment
  f[IP + 8] = 64; // TTL
  f[IP + 9] = IPPROTO_TCP;
  writeU32(f, IP_SRC, CLIENT);
  writeU32(f, IP_DST, CLUSTER_IP);
  writeU16(f, TCP, 41000);
  writeU16(f, TCP_DST_PORT, 80);
  writeU32(f, TCP + 4, 0x1a2b3c4d); // sequence
  writeU32(f, TCP + 8, 0x5e6f7081); // acknowledgment
  f[TCP + 12] = 5 << 4;
  f[TCP + 13] = 0x18; // PSH, ACK
  writeU16(f, TCP + 14, 502); // window
  for (let i = TCP + 20; i < frameLen; i++) f[i] = (i * 31) & 0xff; // payload
  fillChecksums(f);
  return f;
}

/** Both checksums computed from scratch over the whole frame. */
function fillChecksums(f: Uint8Array): void {
  writeU16(f, IP_CHECKSUM, 0);
  writeU16(f, IP_CHECKSUM, internetChecksum(f, IP, IP_LEN));
  const tcpLen = readU16(f, IP_TOTAL_LENGTH) - IP_LEN;
  writeU16(f, TCP_CHECKSUM, 0);
  const pseudo = pseudoHeaderSum(readU32(f, IP_SRC), readU32(f, IP_DST), IPPROTO_TCP, tcpLen);
  writeU16(f, TCP_CHECKSUM, internetChecksum(f, TCP, tcpLen, pseudo));
}

/**
 * The rewrite the NAT stage performs: the address changes the IPv4 header checksum and,
 * through the pseudo-header, the TCP checksum; the port changes the TCP checksum.
 */
function dnatIncremental(f: Uint8Array, addr: number, port: number): void {
  const oldAddr = readU32(f, IP_DST);
  const oldPort = readU16(f, TCP_DST_PORT);
  writeU32(f, IP_DST, addr);
  writeU16(f, TCP_DST_PORT, port);
  writeU16(f, IP_CHECKSUM, checksumAdjust32(readU16(f, IP_CHECKSUM), oldAddr, addr));
  const tcp = checksumAdjust32(readU16(f, TCP_CHECKSUM), oldAddr, addr);
  writeU16(f, TCP_CHECKSUM, checksumAdjust16(tcp, oldPort, port));
}

/** The same rewrite, then both checksums from scratch: what incremental update saves. */
function dnatFullRecompute(f: Uint8Array, addr: number, port: number): void {
  writeU32(f, IP_DST, addr);
  writeU16(f, TCP_DST_PORT, port);
  fillChecksums(f);
}

/**
 * Before anything is timed: the incremental rewrite must leave exactly the bytes a full
 * recompute leaves, over the endpoints and over edge values (all-zero and all-one
 * addresses and ports, where RFC 1141's equation gets 0x0000 against 0xffff wrong).
 */
function verify(frameLen: number): void {
  const incremental = buildFrame(frameLen);
  const full = buildFrame(frameLen);
  const addrs = [...ENDPOINT_ADDRS, 0, 0xffffffff, CLUSTER_IP, 0x7fffffff, 0x80000000];
  const ports = [...ENDPOINT_PORTS, 0, 0xffff, 80, 1];
  for (let i = 0; i < 200; i++) {
    const addr = addrs[i % addrs.length];
    const port = ports[(i * 7) % ports.length];
    dnatIncremental(incremental, addr, port);
    dnatFullRecompute(full, addr, port);
    if (!incremental.equals(full)) {
      throw new Error(`rewrite (${frameLen}B frame): incremental checksum differs from full recompute at step ${i}`);
    }
  }
}

/**
 * A batch of BATCH rewrites, cycling the endpoints so each one really changes the frame.
 * One factory per variant, not one taking the rewrite as a parameter: a shared call
 * site would see both functions and V8 might inline neither.
 */
function incrementalBatch(frame: Uint8Array): () => void {
  let e = 0;
  return () => {
    for (let k = 0; k < BATCH; k++) {
      dnatIncremental(frame, ENDPOINT_ADDRS[e], ENDPOINT_PORTS[e]);
      e = (e + 1) & 3;
    }
    publish(frame);
  };
}

function fullRecomputeBatch(frame: Uint8Array): () => void {
  let e = 0;
  return () => {
    for (let k = 0; k < BATCH; k++) {
      dnatFullRecompute(frame, ENDPOINT_ADDRS[e], ENDPOINT_PORTS[e]);
      e = (e + 1) & 3;
    }
    publish(frame);
  };
}

/** The frame is memory the work lands in; folding its checksum into the sink says so. */
function publish(frame: Uint8Array): void {
  sink.value ^= readU16(frame, TCP_CHECKSUM);
}

const rewrite: BenchModule = {
  name: 'rewrite',
  async run(ctx) {
    verify(64);
    verify(1514);
    return runMicroSuite(ctx, {
      name: 'rewrite',
      opsPerCall: BATCH,
      cases: [
        { name: 'rewrite: DNAT, incremental checksums, 64B frame', target: atMost(30), run: incrementalBatch(buildFrame(64)) },
        { name: 'rewrite: DNAT, incremental checksums, 1514B frame', target: atMost(30), run: incrementalBatch(buildFrame(1514)) },
        { name: 'rewrite: DNAT, full checksum recompute, 64B frame', run: fullRecomputeBatch(buildFrame(64)) },
        { name: 'rewrite: DNAT, full checksum recompute, 1514B frame', run: fullRecomputeBatch(buildFrame(1514)) },
      ],
    });
  },
};

export default rewrite;
