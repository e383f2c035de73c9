/**
 * Holds the packet views to the contract written at the top of src/packet/index.ts: once
 * `check(buf, offset, available)` has returned `PacketOk`, no getter, setter or method
 * touches a byte outside `buf[offset, offset + available)`.
 *
 * Asserting on the values the getters return cannot prove that. Reading past the end of a
 * Uint8Array gives `undefined`, and `<<`, `|` and `&` quietly turn it into 0, so a
 * `readU16` that runs one byte over still returns an integer. `fenced` wraps the buffer in
 * a Proxy that sees every index and throws on one outside the window; the `exercise*`
 * functions then drive every accessor of a checked view, so a test only has to check the
 * view against a fenced buffer and call one of them.
 *
 * The Proxy costs a trap per byte. Fuzzing at volume runs most cases on plain buffers,
 * where the `exercise*` functions still catch a throw and an `undefined` that reaches a
 * getter's result or a repr.
 */
import fc from 'fast-check';
import { PACKET_ERROR_COUNT, PacketError, PacketOk } from '../../src/packet/errors.js';
import { emitArpReply, parseArp, type ArpRepr, type ArpView } from '../../src/packet/arp.js';
import { parseEthernet, type EthernetRepr, type EthernetView } from '../../src/packet/ethernet.js';
import { parseIcmp, type IcmpRepr, type IcmpView } from '../../src/packet/icmp.js';
import { parseIpv4Packet, type Ipv4Repr, type Ipv4View } from '../../src/packet/ipv4.js';
import { formatIpv6, parseIpv6Packet, type Ipv6Repr, type Ipv6View } from '../../src/packet/ipv6.js';
import { parseTcp, TcpOptionsCursor, type TcpRepr, type TcpView } from '../../src/packet/tcp.js';
import { parseUdp, type PseudoAddrs, type UdpRepr, type UdpView } from '../../src/packet/udp.js';
import { parseVxlan, type VxlanRepr, type VxlanView } from '../../src/packet/vxlan.js';

/** A view, a parse or the fence broke the contract. Distinct so that a test can tell it from a crash. */
export class BoundsError extends RangeError {
  override name = 'BoundsError';
}

/**
 * The index a property key names, or undefined for any other key. A typed array treats
 * every canonical numeric string as an index ("-0", "1.5" and "NaN" included) and reads
 * `undefined` for those that are not valid, so the fence must see them all.
 */
function indexKey(prop: string | symbol): number | undefined {
  if (typeof prop !== 'string') return undefined;
  const first = prop.charCodeAt(0);
  // The fast path, taken on every byte a view reads: plain decimal digits, no allocation
  // (the canonical test below builds a string, which the checksum loops felt).
  if (first >= 0x30 && first <= 0x39 && prop.length <= 15 && (first !== 0x30 || prop.length === 1)) {
    let n = 0;
    for (let i = 0; i < prop.length; i++) {
      const digit = prop.charCodeAt(i) - 0x30;
      if (digit < 0 || digit > 9) return canonicalNumber(prop);
      n = n * 10 + digit;
    }
    return n;
  }
  return (first >= 0x30 && first <= 0x39) || first === 0x2d || prop === 'NaN' || prop === 'Infinity' ? canonicalNumber(prop) : undefined;
}

/** ECMAScript's CanonicalNumericIndexString: "-0", or a string that round-trips through Number. */
function canonicalNumber(prop: string): number | undefined {
  if (prop === '-0') return -0;
  const n = Number(prop);
  return String(n) === prop ? n : undefined;
}

/**
 * `bytes` behind a Proxy that throws a `BoundsError` on any index read or written outside
 * `[lo, hi)`. `subarray` is fenced too: a range outside the window throws, and the
 * subarray it returns is itself fenced, so a payload that is handed on stays checked.
 * Any other method (`set`, `fill`, `copyWithin`, iteration) could touch any byte of the
 * array, so it is refused unless the window is the whole array.
 */
export function fenced(bytes: Uint8Array, lo: number, hi: number): Uint8Array {
  const whole = lo === 0 && hi === bytes.length;
  const guard = (i: number): void => {
    if (!Number.isInteger(i) || i < lo || i >= hi || Object.is(i, -0)) {
      throw new BoundsError(`byte ${String(i)} touched outside [${lo}, ${hi})`);
    }
  };
  // The views always pass both ends; the defaults are what Uint8Array#subarray would use.
  const subarray = (begin = 0, end = bytes.length): Uint8Array => {
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < lo || end < begin || end > hi) {
      throw new BoundsError(`subarray(${begin}, ${end}) outside [${lo}, ${hi})`);
    }
    return fenced(bytes.subarray(begin, end), 0, end - begin);
  };
  return new Proxy(bytes, {
    get(target, prop) {
      const i = indexKey(prop);
      if (i !== undefined) {
        guard(i);
        return target[i];
      }
      if (prop === 'subarray') return subarray;
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (!whole) throw new BoundsError(`${String(prop)}() is not fenced, and the window [${lo}, ${hi}) is not the whole array`);
      // Typed-array methods need the real array as `this`, not the Proxy.
      return value.bind(target);
    },
    set(target, prop, value) {
      const i = indexKey(prop);
      if (i === undefined) return Reflect.set(target, prop, value, target);
      guard(i);
      target[i] = value as number;
      return true;
    },
  });
}

// ---- driving every accessor of a view ----

type AnyMethod = (...args: never[]) => unknown;
type MethodName<V> = { [K in keyof V]-?: V[K] extends AnyMethod ? K : never }[keyof V];

/**
 * One call for each method of a view, `check` aside. The type makes the table complete
 * at compile time and `exerciseView` checks it again at run time, so a method added to a
 * view fails the build until a test exercises it.
 */
export type MethodCalls<V> = { [K in Exclude<MethodName<V>, 'check'>]: (view: V) => unknown };

/** What the views have in common: the window starts at `offset` in `buf`. */
interface View {
  buf: Uint8Array;
  offset: number;
}

interface Accessor {
  name: string;
  get: (this: object) => unknown;
  set?: (this: object, value: unknown) => void;
}

interface Shape {
  accessors: Accessor[];
  /**
   * Each method, with the index in `accessors` of the getter its result's length must
   * match (`payload` and `payloadLength`), or -1.
   */
  methods: Array<{ name: string; sizedBy: number }>;
  /**
   * Indexes in `accessors` of `[xOffset, xLength]` getter pairs (payload, options,
   * embedded): the region they name must lie inside the window. (A lone `xOffset`, such
   * as TCP's `dataOffset`, is a field.)
   */
  regions: Array<[number, number]>;
}

// Reflection over a prototype is slow next to a view's accessors; do it once per class.
const shapes = new WeakMap<object, Shape>();

function shapeOf(proto: object): Shape {
  let shape = shapes.get(proto);
  if (shape !== undefined) return shape;
  const accessors: Accessor[] = [];
  const methodNames: string[] = [];
  for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
    if (d.get !== undefined) accessors.push({ name, get: d.get, set: d.set });
    else if (typeof d.value === 'function' && name !== 'constructor' && name !== 'check') methodNames.push(name);
  }
  const indexOf = (name: string): number => accessors.findIndex((a) => a.name === name);
  const methods = methodNames.map((name) => ({ name, sizedBy: indexOf(`${name}Length`) }));
  const regions = accessors
    .map((a, i): [number, number] => [i, a.name.endsWith('Offset') ? indexOf(`${a.name.slice(0, -'Offset'.length)}Length`) : -1])
    .filter(([, length]) => length >= 0);
  shape = { accessors, methods, regions };
  shapes.set(proto, shape);
  return shape;
}

/** A field read from the wire: a non-negative integer (a MAC is 48 bits) or a flag. */
export function expectField(name: string, value: unknown): void {
  if (typeof value === 'boolean') return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new BoundsError(`${name} gave ${String(value)}`);
  }
}

/**
 * Reads every getter of `view` (each must give a field, and each region named by an
 * `xOffset` and `xLength` pair must lie inside the window of `available` bytes at
 * `view.offset`), writes each value back through its setter and reads it again, then
 * makes every call in `calls`.
 */
export function exerciseView<V extends View>(view: V, available: number, calls: MethodCalls<V>): void {
  const shape = shapeOf(Object.getPrototypeOf(view) as object);
  const lo = view.offset;
  const hi = lo + available;
  const values: unknown[] = [];
  for (const { name, get, set } of shape.accessors) {
    const value = get.call(view);
    expectField(name, value);
    values.push(value);
    if (set === undefined) continue;
    set.call(view, value);
    if (get.call(view) !== value) throw new BoundsError(`${name}: wrote ${String(value)}, read back ${String(get.call(view))}`);
  }
  for (const [offsetAt, lengthAt] of shape.regions) {
    const start = values[offsetAt] as number;
    const end = start + (values[lengthAt] as number);
    if (start < lo || end > hi) {
      const names = `${shape.accessors[offsetAt].name}, ${shape.accessors[lengthAt].name}`;
      throw new BoundsError(`${names} name [${start}, ${end}), outside [${lo}, ${hi})`);
    }
  }
  const table = calls as Record<string, ((view: V) => unknown) | undefined>;
  for (const { name, sizedBy } of shape.methods) {
    const call = table[name];
    if (call === undefined) throw new BoundsError(`no call for ${name}() in the exercise table`);
    expectResult(name, call(view), sizedBy < 0 ? undefined : values[sizedBy]);
  }
}

function expectResult(name: string, result: unknown, expectedLength: unknown): void {
  if (result === undefined) return;
  if (result instanceof Uint8Array) {
    // On a plain buffer `subarray` clamps silently: the length is what shows an overrun.
    if (expectedLength !== undefined && result.length !== expectedLength) {
      throw new BoundsError(`${name}() is ${result.length} bytes, not ${String(expectedLength)}`);
    }
    return;
  }
  expectField(`${name}()`, result);
}

/**
 * A parse result is a known `PacketError` or a repr whose every number is a field:
 * `undefined` or `NaN` in a repr means a read went past the bytes.
 */
export function expectParsed<R>(name: string, result: R | PacketError): R | PacketError {
  if (typeof result === 'number') {
    if (Number.isInteger(result) && result > PacketOk && result < PACKET_ERROR_COUNT) return result;
    throw new BoundsError(`${name} gave error ${result}`);
  }
  expectRepr(name, result);
  return result;
}

function expectRepr(path: string, value: unknown): void {
  if (typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number' || value === undefined || value === null) return expectField(path, value);
  if (value instanceof Uint8Array) return;
  for (const [key, inner] of Object.entries(value as object)) expectRepr(`${path}.${key}`, inner);
}

// ---- one exerciser per view: parse, then every accessor ----
//
// Each parses first (mutating calls such as `fillChecksum` would change the verdict),
// then exercises the view, and returns the parse result. The mutating calls write the
// view's own header fields only, so a caller may go on to the payload afterwards.

export function exerciseEthernet(view: EthernetView, available: number): EthernetRepr | PacketError {
  const repr = expectParsed('parseEthernet', parseEthernet(view));
  const mac = new Uint8Array([2, 0, 0, 0, 0, 1]);
  exerciseView(view, available, {
    payload: (v) => v.payload(),
    dstIs: (v) => v.dstIs(mac),
    // An int32 by design (negative above 2^31): its bits, read unsigned, are the field.
    dstLowInt32: (v) => v.dstLowInt32() >>> 0,
    srcIs: (v) => v.srcIs(mac),
    // The writes put back what they read: the frame's verdict must not change.
    setDstFrom: (v) => v.setDstFrom(Uint8Array.from({ length: 6 }, (_, i) => v.buf[v.offset + i])),
    setSrcFrom: (v) => v.setSrcFrom(Uint8Array.from({ length: 6 }, (_, i) => v.buf[v.offset + 6 + i])),
    swapMacs: (v) => {
      v.swapMacs();
      v.swapMacs();
    },
  });
  return repr;
}

export function exerciseArp(view: ArpView, available: number): ArpRepr | PacketError {
  const repr = expectParsed('parseArp', parseArp(view));
  exerciseView(view, available, {});
  // The in-place reply writes all 28 bytes the view vouched for.
  expectField('emitArpReply', emitArpReply(view, 0x020000000001, view.buf, view.offset));
  return repr;
}

export function exerciseIpv4(view: Ipv4View, available: number): Ipv4Repr | PacketError {
  const repr = expectParsed('parseIpv4Packet', parseIpv4Packet(view));
  exerciseView(view, available, {
    payload: (v) => v.payload(),
    options: (v) => v.options(),
    verifyChecksum: (v) => v.verifyChecksum(),
    fillChecksum: (v) => v.fillChecksum(),
    decrementTtl: (v) => v.decrementTtl(),
    setSrcAddrIncremental: (v) => v.setSrcAddrIncremental((v.srcAddr ^ 1) >>> 0),
    setDstAddrIncremental: (v) => v.setDstAddrIncremental((v.dstAddr ^ 1) >>> 0),
  });
  return repr;
}

export function exerciseIpv6(view: Ipv6View, available: number): Ipv6Repr | PacketError {
  const repr = expectParsed('parseIpv6Packet', parseIpv6Packet(view));
  exerciseView(view, available, {
    // Out-of-range word indexes too: the view promises to wrap them inside the address.
    srcAddrWord: (v) => [-1, 0, 1, 2, 3, 4].forEach((i) => expectField(`srcAddrWord(${i})`, v.srcAddrWord(i))),
    dstAddrWord: (v) => [-1, 0, 1, 2, 3, 4].forEach((i) => expectField(`dstAddrWord(${i})`, v.dstAddrWord(i))),
    srcAddr: (v) => formatIpv6(v.srcAddr()).length,
    dstAddr: (v) => formatIpv6(v.dstAddr()).length,
    payload: (v) => v.payload(),
    pseudoHeaderSum: (v) => v.pseudoHeaderSum(v.payloadLength),
  });
  return repr;
}

/** `addrs` are the IPv4 pseudo-header's, as the caller's IPv4 view gives them. */
export function exerciseUdp(view: UdpView, available: number, addrs: PseudoAddrs): UdpRepr | PacketError {
  const repr = expectParsed('parseUdp', parseUdp(view, addrs));
  exerciseView(view, available, {
    payload: (v) => v.payload(),
    verifyChecksum: (v) => v.verifyChecksum(addrs.src, addrs.dst),
    fillChecksum: (v) => v.fillChecksum(addrs.src, addrs.dst),
  });
  return repr;
}

export function exerciseTcp(view: TcpView, available: number, addrs: PseudoAddrs): TcpRepr | PacketError {
  // Without addresses parse skips the checksum and reaches the options even when a
  // mutation has spoilt the sum; with them it judges the checksum as the dataplane does.
  expectParsed('parseTcp', parseTcp(view));
  const repr = expectParsed('parseTcp', parseTcp(view, addrs));
  walkTcpOptions(view);
  exerciseView(view, available, {
    payload: (v) => v.payload(),
    verifyChecksum: (v) => v.verifyChecksum(addrs.src, addrs.dst),
    fillChecksum: (v) => v.fillChecksum(addrs.src, addrs.dst),
    setSrcPortIncremental: (v) => v.setSrcPortIncremental(v.srcPort ^ 1),
    setDstPortIncremental: (v) => v.setDstPortIncremental(v.dstPort ^ 1),
    adjustChecksumForAddress: (v) => v.adjustChecksumForAddress(addrs.src, addrs.dst),
  });
  return repr;
}

export interface OptionsWalk {
  /** Options the cursor yielded (NOPs are skipped, so they do not count). */
  options: number;
  /** `PacketOk`, or `BadOption` when the walk stopped on a malformed option. */
  error: PacketOk | PacketError;
}

/**
 * Walks the options with a `TcpOptionsCursor`, reads every byte of every option it yields
 * (through the view's buffer, so a fence sees them) and checks that each lies inside the
 * options area.
 */
export function walkTcpOptions(view: TcpView): OptionsWalk {
  const cursor = new TcpOptionsCursor();
  cursor.reset(view);
  let options = 0;
  while (cursor.next()) {
    options++;
    const start = cursor.valueOffset - 2;
    const end = start + cursor.length;
    if (start < view.optionsOffset || end > view.payloadOffset) {
      const area = `[${view.optionsOffset}, ${view.payloadOffset})`;
      throw new BoundsError(`option ${cursor.kind} at [${start}, ${end}) outside the options area ${area}`);
    }
    for (let i = start; i < end; i++) expectField(`option byte ${i}`, view.buf[i]);
  }
  if (cursor.error !== PacketOk && cursor.error !== PacketError.BadOption) throw new BoundsError(`cursor error ${cursor.error}`);
  if (cursor.next()) throw new BoundsError('the cursor yielded again after it finished');
  return { options, error: cursor.error };
}

export function exerciseIcmp(view: IcmpView, available: number): IcmpRepr | PacketError {
  expectParsed('parseIcmp', parseIcmp(view, false));
  const repr = expectParsed('parseIcmp', parseIcmp(view));
  exerciseView(view, available, {
    payload: (v) => v.payload(),
    verifyChecksum: (v) => v.verifyChecksum(),
    fillChecksum: (v) => v.fillChecksum(),
    setIdentifierIncremental: (v) => v.setIdentifierIncremental(v.identifier ^ 1),
  });
  return repr;
}

export function exerciseVxlan(view: VxlanView, available: number): VxlanRepr | PacketError {
  const repr = expectParsed('parseVxlan', parseVxlan(view));
  exerciseView(view, available, { payload: (v) => v.payload() });
  return repr;
}

// ---- random windows for property tests ----

export interface Window {
  /** The window's bytes with filler (0x5a) before and after, so an overrun reads something. */
  bytes: Uint8Array;
  offset: number;
  available: number;
}

/**
 * Random bytes of 0 to `maxLength` (spread over the whole range: fast-check's default size
 * would stop near 10) at a random offset inside a larger buffer. Half the time `plausible`
 * may edit the body (set a version, a header length, a length field that fits) so that
 * `check` accepts often enough for the accessors to be exercised.
 */
export function randomWindow(maxLength: number, plausible?: (body: Uint8Array) => void): fc.Arbitrary<Window> {
  return fc
    .tuple(fc.uint8Array({ maxLength, size: 'max' }), fc.nat({ max: 8 }), fc.nat({ max: 8 }), fc.boolean())
    .map(([body, before, after, edit]) => {
      if (edit && plausible !== undefined) plausible(body);
      const bytes = new Uint8Array(before + body.length + after).fill(0x5a);
      bytes.set(body, before);
      return { bytes, offset: before, available: body.length };
    });
}

/** The window's bytes behind a fence: what a property hands to `check`. */
export function fence(w: Window): Uint8Array {
  return fenced(w.bytes, w.offset, w.offset + w.available);
}
