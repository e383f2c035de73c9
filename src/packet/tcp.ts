/**
 * TCP (RFC 9293), with the options a Linux peer sends: MSS, window scale, SACK-permitted,
 * SACK blocks (RFC 2018) and timestamps (RFC 7323).
 *
 * A TCP header carries no length of its own: the segment ends where the IP payload ends.
 * So `TcpView.check` takes `available` = the IP payload length (total length minus IHL,
 * from the caller's IPv4 view), not merely the bytes left in the buffer. It proves that the
 * 20-byte header and the data offset fit inside it; after it returns `PacketOk` no accessor
 * reads out of bounds. The options area is walked by `TcpOptionsCursor`, which refuses a
 * malformed option rather than reading past the header. Meaning (checksum, port 0, option
 * lengths) is judged by `parseTcp`, not by the view.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { checksumAdjust16, checksumAdjust32, finishChecksum, onesComplementSum, pseudoHeaderSum } from './checksum.js';
import { PacketError, PacketOk } from './errors.js';
import type { PseudoAddrs } from './udp.js';

export const TCP_HEADER_LEN = 20;
/** Data offset is 4 bits of 32-bit words: 15 * 4 = 60 bytes, 40 of them options. */
export const TCP_MAX_HEADER_LEN = 60;
export const TCP_MAX_OPTIONS_LEN = TCP_MAX_HEADER_LEN - TCP_HEADER_LEN;
export const IPPROTO_TCP = 6;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

/** Option kinds (IANA "TCP Option Kind Numbers"); any other kind is skipped, not refused. */
export const TCP_OPT_EOL = 0;
export const TCP_OPT_NOP = 1;
export const TCP_OPT_MSS = 2;
export const TCP_OPT_WSCALE = 3;
export const TCP_OPT_SACK_PERM = 4;
export const TCP_OPT_SACK = 5;
export const TCP_OPT_TIMESTAMP = 8;

/** Field offsets from the start of the header, for code that holds no view (a header quoted in an ICMP error, a segment being cut). */
export const TCP_OFFSET = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  /** High nibble: data offset in 32-bit words; low nibble reserved (AE, RFC 3168 / 9768). */
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
} as const;

const SRC_PORT = TCP_OFFSET.SRC_PORT;
const DST_PORT = TCP_OFFSET.DST_PORT;
const SEQ = TCP_OFFSET.SEQ;
const ACK = TCP_OFFSET.ACK;
const DATA_OFFSET = TCP_OFFSET.DATA_OFFSET;
const FLAGS = TCP_OFFSET.FLAGS;
const WINDOW = TCP_OFFSET.WINDOW;
const CHECKSUM = TCP_OFFSET.CHECKSUM;
const URGENT = TCP_OFFSET.URGENT;

export class TcpView {
  buf: Uint8Array = EMPTY;
  /** Offset of the TCP header in `buf`. */
  offset = 0;
  /** Header plus payload: the `available` that `check` was given (the IP payload length). */
  length = 0;

  /**
   * Points this view at a segment of exactly `available` bytes at `offset`. TCP has no
   * length field, so `available` must be the IP payload length from the caller; the
   * default (rest of the buffer) is only right when the buffer ends where the segment does.
   * Returns `PacketOk` or why not; allocates nothing, so one view can serve every packet.
   */
  check(buf: Uint8Array, offset = 0, available = buf.length - offset): PacketOk | PacketError {
    if (available < TCP_HEADER_LEN || offset < 0 || offset + available > buf.length) return PacketError.Truncated;
    const headerLength = (buf[offset + DATA_OFFSET] >>> 4) * 4;
    if (headerLength < TCP_HEADER_LEN || headerLength > available) return PacketError.BadHeaderLength;
    this.buf = buf;
    this.offset = offset;
    this.length = available;
    return PacketOk;
  }

  /** A new view over `buf`, or the error. For tests and cold paths; allocates a view. */
  static checked(buf: Uint8Array, offset = 0, available = buf.length - offset): TcpView | PacketError {
    const view = new TcpView();
    const err = view.check(buf, offset, available);
    return err === PacketOk ? view : err;
  }

  // Plain setters write the field and nothing else: the checksum goes stale until
  // `fillChecksum`. The `*Incremental` methods below keep it right instead.
  get srcPort(): number {
    return readU16(this.buf, this.offset + SRC_PORT);
  }
  set srcPort(port: number) {
    writeU16(this.buf, this.offset + SRC_PORT, port);
  }
  get dstPort(): number {
    return readU16(this.buf, this.offset + DST_PORT);
  }
  set dstPort(port: number) {
    writeU16(this.buf, this.offset + DST_PORT, port);
  }
  get seqNumber(): number {
    return readU32(this.buf, this.offset + SEQ);
  }
  set seqNumber(value: number) {
    writeU32(this.buf, this.offset + SEQ, value);
  }
  /** The acknowledgment number (meaningful when the ACK flag is set); `ack` is the flag. */
  get ackNumber(): number {
    return readU32(this.buf, this.offset + ACK);
  }
  set ackNumber(value: number) {
    writeU32(this.buf, this.offset + ACK, value);
  }
  /** Header length in 32-bit words, 5 to 15 (checked). No setter: `check` vouched for it. */
  get dataOffset(): number {
    return this.buf[this.offset + DATA_OFFSET] >>> 4;
  }
  get headerLength(): number {
    return this.dataOffset * 4;
  }
  /** The eight flag bits of byte 13 (CWR ECE URG ACK PSH RST SYN FIN); see `TCP_FIN`... */
  get flags(): number {
    return this.buf[this.offset + FLAGS];
  }
  set flags(value: number) {
    this.buf[this.offset + FLAGS] = value & 0xff;
  }
  get fin(): boolean {
    return (this.flags & TCP_FIN) !== 0;
  }
  get syn(): boolean {
    return (this.flags & TCP_SYN) !== 0;
  }
  get rst(): boolean {
    return (this.flags & TCP_RST) !== 0;
  }
  get psh(): boolean {
    return (this.flags & TCP_PSH) !== 0;
  }
  get ack(): boolean {
    return (this.flags & TCP_ACK) !== 0;
  }
  get urg(): boolean {
    return (this.flags & TCP_URG) !== 0;
  }
  get ece(): boolean {
    return (this.flags & TCP_ECE) !== 0;
  }
  get cwr(): boolean {
    return (this.flags & TCP_CWR) !== 0;
  }
  get window(): number {
    return readU16(this.buf, this.offset + WINDOW);
  }
  set window(value: number) {
    writeU16(this.buf, this.offset + WINDOW, value);
  }
  get checksum(): number {
    return readU16(this.buf, this.offset + CHECKSUM);
  }
  set checksum(value: number) {
    writeU16(this.buf, this.offset + CHECKSUM, value);
  }
  get urgentPointer(): number {
    return readU16(this.buf, this.offset + URGENT);
  }
  set urgentPointer(value: number) {
    writeU16(this.buf, this.offset + URGENT, value);
  }
  get optionsOffset(): number {
    return this.offset + TCP_HEADER_LEN;
  }
  get optionsLength(): number {
    return this.headerLength - TCP_HEADER_LEN;
  }
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
  get payloadLength(): number {
    return this.length - this.headerLength;
  }
  /** The payload as a subarray (allocates a view object: not for the hot path). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.length);
  }

  /** True when the checksum verifies against the IPv4 pseudo-header. TCP has no "none". */
  verifyChecksum(srcAddr: number, dstAddr: number): boolean {
    return tcpChecksum(this.buf, this.offset, this.length, srcAddr, dstAddr) === 0;
  }

  fillChecksum(srcAddr: number, dstAddr: number): void {
    this.checksum = 0;
    this.checksum = tcpChecksum(this.buf, this.offset, this.length, srcAddr, dstAddr);
  }

  // NAT rewrites: O(1) instead of summing the whole segment again (RFC 1624 eqn. 3, which
  // agrees with a full recompute; the property tests hold it to that).
  setSrcPortIncremental(port: number): void {
    this.checksum = checksumAdjust16(this.checksum, this.srcPort, port);
    this.srcPort = port;
  }

  setDstPortIncremental(port: number): void {
    this.checksum = checksumAdjust16(this.checksum, this.dstPort, port);
    this.dstPort = port;
  }

  /**
   * The IPv4 layer rewrote an address from `oldAddr` to `newAddr` (SNAT or DNAT): the
   * pseudo-header covers it, so this segment's checksum must follow. The IP header's own
   * checksum is the IPv4 view's business.
   */
  adjustChecksumForAddress(oldAddr: number, newAddr: number): void {
    this.checksum = checksumAdjust32(this.checksum, oldAddr >>> 0, newAddr >>> 0);
  }
}

const EMPTY = new Uint8Array(0);

/** Checksum over pseudo-header, header and payload; 0 when an in-place checksum verifies. */
export function tcpChecksum(buf: Uint8Array, offset: number, length: number, srcAddr: number, dstAddr: number): number {
  return finishChecksum(onesComplementSum(buf, offset, length, pseudoHeaderSum(srcAddr, dstAddr, IPPROTO_TCP, length)));
}

/**
 * Walks the options area of a checked `TcpView` without allocating:
 *
 *     cursor.reset(view);
 *     while (cursor.next()) if (cursor.kind === TCP_OPT_MSS && cursor.length === 4) ...
 *     if (cursor.error !== PacketOk) drop(cursor.error);
 *
 * NOPs are skipped and EOL ends the walk (what follows EOL is padding). `next` stops with
 * `error = BadOption` on an option whose length byte is missing, below 2 or runs past the
 * header: those are the cases where a reader cannot know where the next option starts.
 * A known kind with an unexpected length is still yielded; judging it is `parseTcp`'s job.
 */
export class TcpOptionsCursor {
  /** Kind of the current option. */
  kind = 0;
  /** Its length byte: kind and length bytes included, so the value is `length - 2` bytes. */
  length = 0;
  /** Offset in the view's buffer of the current option's value. */
  valueOffset = 0;
  /** `PacketOk`, or `BadOption` once `next` has stopped on a malformed option. */
  error: PacketOk | PacketError = PacketOk;
  private buf: Uint8Array = EMPTY;
  private pos = 0;
  private end = 0;

  reset(view: TcpView): void {
    this.buf = view.buf;
    this.pos = view.optionsOffset;
    this.end = view.offset + view.headerLength;
    this.kind = 0;
    this.length = 0;
    this.valueOffset = 0;
    this.error = PacketOk;
  }

  /** Moves to the next option; false at the end of the options or on an error. */
  next(): boolean {
    const buf = this.buf;
    while (this.pos < this.end) {
      const kind = buf[this.pos];
      if (kind === TCP_OPT_EOL) break;
      if (kind === TCP_OPT_NOP) {
        this.pos++;
        continue;
      }
      // pos + 1 < end first, so the length byte itself is inside the header.
      const length = this.pos + 1 < this.end ? buf[this.pos + 1] : 0;
      if (length < 2 || this.pos + length > this.end) {
        this.error = PacketError.BadOption;
        break;
      }
      this.kind = kind;
      this.length = length;
      this.valueOffset = this.pos + 2;
      this.pos += length;
      return true;
    }
    // Park at the end so that further calls keep returning false.
    this.pos = this.end;
    return false;
  }
}

/** RFC 2018: a received block of sequence space, [left, right). */
export interface TcpSackBlock {
  left: number;
  right: number;
}

/** The options podwire understands. Unknown kinds are skipped by parse and not emitted. */
export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted: boolean;
  timestamps?: { tsval: number; tsecr: number };
  /** At most what fits in 40 bytes with the other options (emit drops the rest, as Linux does). */
  sackBlocks?: TcpSackBlock[];
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Byte 13: `TCP_SYN | TCP_ACK`, ... */
  flags: number;
  window: number;
  urgent: number;
  options: TcpOptions;
}

/**
 * Refuses port 0 (BadField), a malformed options area (BadOption) and, with `addrs`, a bad
 * checksum. Known option kinds with the wrong length are ignored, as Linux's
 * `tcp_parse_options` ignores them; when a kind repeats, the last one wins, as there.
 */
export function parseTcp(view: TcpView, addrs?: PseudoAddrs): TcpRepr | PacketError {
  if (view.srcPort === 0 || view.dstPort === 0) return PacketError.BadField;
  if (addrs !== undefined && !view.verifyChecksum(addrs.src, addrs.dst)) return PacketError.BadChecksum;
  const options: TcpOptions = { sackPermitted: false };
  const cursor = new TcpOptionsCursor();
  const buf = view.buf;
  cursor.reset(view);
  while (cursor.next()) {
    const at = cursor.valueOffset;
    switch (cursor.kind) {
      case TCP_OPT_MSS:
        if (cursor.length === 4) options.mss = readU16(buf, at);
        break;
      case TCP_OPT_WSCALE:
        // Values above 14 are carried through; RFC 7323 has the receiver clamp them.
        if (cursor.length === 3) options.windowScale = buf[at];
        break;
      case TCP_OPT_SACK_PERM:
        if (cursor.length === 2) options.sackPermitted = true;
        break;
      case TCP_OPT_TIMESTAMP:
        if (cursor.length === 10) options.timestamps = { tsval: readU32(buf, at), tsecr: readU32(buf, at + 4) };
        break;
      case TCP_OPT_SACK:
        if (cursor.length > 2 && (cursor.length - 2) % 8 === 0) {
          const blocks: TcpSackBlock[] = [];
          for (let p = at; p < at + cursor.length - 2; p += 8) blocks.push({ left: readU32(buf, p), right: readU32(buf, p + 4) });
          options.sackBlocks = blocks;
        }
        break;
    }
  }
  if (cursor.error !== PacketOk) return cursor.error;
  return {
    srcPort: view.srcPort,
    dstPort: view.dstPort,
    seq: view.seqNumber,
    ack: view.ackNumber,
    flags: view.flags,
    window: view.window,
    urgent: view.urgentPointer,
    options,
  };
}

// Linux lays options out in 32-bit words (tcp_options_write), so every group below is a
// multiple of 4 and the header never needs EOL padding.
const MSS_WORDS_LEN = 4; // MSS
const TS_WORDS_LEN = 12; // NOP NOP TS, or SACK_PERM TS when both
const SACK_PERM_WORDS_LEN = 4; // NOP NOP SACK_PERM, when there is no TS to share a word with
const WSCALE_WORDS_LEN = 4; // NOP WSCALE
const SACK_BASE_WORDS_LEN = 4; // NOP NOP SACK len, then 8 bytes a block

/** How many of `options.sackBlocks` fit beside the other options (Linux's own rule). */
function sackBlocksThatFit(options: TcpOptions): number {
  const blocks = options.sackBlocks?.length ?? 0;
  if (blocks === 0) return 0;
  const room = TCP_MAX_OPTIONS_LEN - fixedOptionsLen(options) - SACK_BASE_WORDS_LEN;
  return room < 8 ? 0 : Math.min(blocks, Math.floor(room / 8));
}

function fixedOptionsLen(options: TcpOptions): number {
  let len = 0;
  if (options.mss !== undefined) len += MSS_WORDS_LEN;
  if (options.timestamps !== undefined) len += TS_WORDS_LEN;
  else if (options.sackPermitted) len += SACK_PERM_WORDS_LEN;
  if (options.windowScale !== undefined) len += WSCALE_WORDS_LEN;
  return len;
}

/** Header and options, in bytes: what `emitTcp` returns. */
export function tcpHeaderLen(repr: TcpRepr): number {
  const blocks = sackBlocksThatFit(repr.options);
  return TCP_HEADER_LEN + fixedOptionsLen(repr.options) + (blocks === 0 ? 0 : SACK_BASE_WORDS_LEN + 8 * blocks);
}

export function tcpBufferLen(repr: TcpRepr, payloadLength = 0): number {
  return tcpHeaderLen(repr) + payloadLength;
}

function writeWord(buf: Uint8Array, at: number, b0: number, b1: number, b2: number, b3: number): void {
  buf[at] = b0;
  buf[at + 1] = b1;
  buf[at + 2] = b2;
  buf[at + 3] = b3;
}

/**
 * Writes header and options at `offset`, in Linux's order and padding (MSS, SACK-permitted,
 * timestamps, NOP, window scale, then SACK blocks), so a kernel segment's repr comes back
 * byte for byte. The payload of `payloadLength` bytes goes right after the header. With
 * `addrs` the checksum is computed, so the payload must already be there; without, the
 * checksum field is 0. Returns the header length written.
 */
export function emitTcp(repr: TcpRepr, buf: Uint8Array, offset: number, payloadLength: number, addrs?: PseudoAddrs): number {
  const headerLength = tcpHeaderLen(repr);
  const o = repr.options;
  writeU16(buf, offset + SRC_PORT, repr.srcPort);
  writeU16(buf, offset + DST_PORT, repr.dstPort);
  writeU32(buf, offset + SEQ, repr.seq);
  writeU32(buf, offset + ACK, repr.ack);
  buf[offset + DATA_OFFSET] = (headerLength / 4) << 4;
  buf[offset + FLAGS] = repr.flags & 0xff;
  writeU16(buf, offset + WINDOW, repr.window);
  writeU16(buf, offset + CHECKSUM, 0);
  writeU16(buf, offset + URGENT, repr.urgent);

  let at = offset + TCP_HEADER_LEN;
  if (o.mss !== undefined) {
    writeWord(buf, at, TCP_OPT_MSS, 4, (o.mss >>> 8) & 0xff, o.mss & 0xff);
    at += 4;
  }
  if (o.timestamps !== undefined) {
    if (o.sackPermitted) writeWord(buf, at, TCP_OPT_SACK_PERM, 2, TCP_OPT_TIMESTAMP, 10);
    else writeWord(buf, at, TCP_OPT_NOP, TCP_OPT_NOP, TCP_OPT_TIMESTAMP, 10);
    writeU32(buf, at + 4, o.timestamps.tsval);
    writeU32(buf, at + 8, o.timestamps.tsecr);
    at += 12;
  } else if (o.sackPermitted) {
    writeWord(buf, at, TCP_OPT_NOP, TCP_OPT_NOP, TCP_OPT_SACK_PERM, 2);
    at += 4;
  }
  if (o.windowScale !== undefined) {
    writeWord(buf, at, TCP_OPT_NOP, TCP_OPT_WSCALE, 3, o.windowScale & 0xff);
    at += 4;
  }
  const blocks = sackBlocksThatFit(o);
  if (blocks > 0) {
    writeWord(buf, at, TCP_OPT_NOP, TCP_OPT_NOP, TCP_OPT_SACK, 2 + 8 * blocks);
    at += 4;
    for (let i = 0; i < blocks; i++, at += 8) {
      writeU32(buf, at, o.sackBlocks![i].left);
      writeU32(buf, at + 4, o.sackBlocks![i].right);
    }
  }

  if (addrs !== undefined) {
    const sum = tcpChecksum(buf, offset, headerLength + payloadLength, addrs.src, addrs.dst);
    writeU16(buf, offset + CHECKSUM, sum);
  }
  return headerLength;
}
