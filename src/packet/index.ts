/**
 * podwire's wire format: one module per protocol, in the manner of smoltcp's `wire`.
 *
 * The contract, which every module here keeps:
 *
 * 1. Each protocol has a view class over a `Uint8Array` (usually a `Buffer` or a subarray
 *    of a larger one) with a `check(buf, offset, available)` method. `check` proves that
 *    every byte an accessor can touch lies inside `buf[offset, offset + available)`:
 *    truncation, a header-length field below the minimum or past the buffer, and a
 *    total-length field shorter than the header or longer than the buffer. Once `check`
 *    has returned `PacketOk`, no getter or setter reads or writes out of bounds.
 * 2. Nothing here throws on bad bytes. `check` and `parse*` return a `PacketError`
 *    number; the caller drops the frame and counts the reason.
 * 3. The read path allocates nothing: views are re-pointed with `check` (one view per
 *    protocol per pipeline stage), fields are read by index, addresses are uint32 and
 *    MACs 48-bit integers. `static checked()` and `parse*` allocate and are for tests,
 *    tools and cold paths.
 * 4. Meaning is judged in `parse*`, not in `check`: version, checksum, reserved values.
 *    Enumerations stay open: an unknown ethertype or protocol is a number carried through.
 * 5. Every `emit*` writes every byte of the header it owns (tests emit into buffers
 *    filled with 0xa5 to prove it) and returns the number of bytes written; `*BufferLen`
 *    says how many that will be.
 * 6. Nothing here does I/O or reads a clock.
 */
export * from './errors.js';
export * from './addr.js';
export * from './bytes.js';
export * from './checksum.js';
export * from './ethernet.js';
export * from './arp.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './udp.js';
export * from './frame.js';
export * from './tcp.js';
export * from './icmp.js';
export * from './vxlan.js';
