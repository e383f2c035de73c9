/**
 * A small subset of pcap filter syntax (pcap-filter(7)), compiled once into a matcher of
 * Ethernet frames, for `podwire capture --filter`. No npm library compiles real BPF here
 * without libpcap's native bindings, so this is podwire's own, and it takes:
 *
 *   host ADDR            IPv4 source or destination (or ARP sender or target) is ADDR
 *   net ADDR/LEN         ... inside the CIDR; `net 10.244` and `net 10.244.1` as classful prefixes
 *   port N               TCP or UDP source or destination port N (not in later fragments)
 *   src ..., dst ...     the same for one direction: `src host A`, `dst port 53`, `src A`
 *   tcp, udp, icmp       IPv4 with that protocol
 *   arp, ip              the EtherType
 *   tcp port N, udp dst port N, ...  the protocol and the port
 *   and, or, not (&&, ||, !), parentheses; as in pcap, `not` binds tightest and `and` and
 *   `or` bind alike, left to right: `tcp or udp and port 53` is `(tcp or udp) and port 53`.
 *
 * Anything else is refused with where and why (FilterError), before a capture starts.
 * The matcher reads the frame's bytes in place and allocates nothing.
 */
import { cidrContains, parseIpv4, type Cidr } from '../packet/addr.js';
import { readU16, readU32 } from '../packet/bytes.js';
import { ETHERNET_HEADER_LEN, ETHERTYPE } from '../packet/ethernet.js';
import { IPPROTO, IPV4_HEADER_LEN, IPV4_OFFSET } from '../packet/ipv4.js';

/** Whether the frame `buf[offset, offset + length)` passes the filter. */
export type FrameMatcher = (buf: Uint8Array, offset: number, length: number) => boolean;

export class FilterError extends Error {
  constructor(
    readonly expression: string,
    /** Where in the expression (0-based character) the problem was found. */
    readonly at: number,
    why: string,
  ) {
    super(`filter ${JSON.stringify(expression)}: ${why} at character ${at + 1}`);
  }
}

export type Direction = 'src' | 'dst' | 'either';
export type Proto = 'tcp' | 'udp' | 'icmp' | 'arp' | 'ip';

/** The parsed expression: the subset's primitives under and/or/not. */
export type FilterNode =
  | { readonly kind: 'and' | 'or'; readonly left: FilterNode; readonly right: FilterNode }
  | { readonly kind: 'not'; readonly operand: FilterNode }
  | { readonly kind: 'proto'; readonly proto: Proto }
  | { readonly kind: 'net'; readonly dir: Direction; readonly cidr: Cidr }
  | { readonly kind: 'port'; readonly dir: Direction; readonly port: number; readonly proto?: 'tcp' | 'udp' };

const ETHERTYPE_AT = ETHERNET_HEADER_LEN - 2;
/** ARP for Ethernet and IPv4 (RFC 826): the sender's and the target's protocol addresses. */
const ARP_SENDER_IP = 14;
const ARP_TARGET_IP = 24;
const ARP_LEN = 28;
const IP_FRAGMENT_OFFSET_MASK = 0x1fff;

interface Token {
  readonly text: string;
  readonly at: number;
}

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(&&|\|\||[()!]|[^\s()!&|]+|&|\|)/y;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < expr.length && (m = re.exec(expr)) !== null) {
    if (m[1] === undefined) break;
    tokens.push({ text: m[1], at: m.index + m[0].length - m[1].length });
  }
  const rest = expr.slice(re.lastIndex);
  if (rest.trim() !== '') throw new FilterError(expr, re.lastIndex, `unexpected ${JSON.stringify(rest.trim()[0])}`);
  return tokens;
}

class Parser {
  private pos = 0;

  constructor(
    private readonly expr: string,
    private readonly tokens: readonly Token[],
  ) {}

  parse(): FilterNode {
    if (this.tokens.length === 0) throw new FilterError(this.expr, 0, 'empty expression');
    const node = this.or();
    const extra = this.peek();
    if (extra !== undefined) throw this.error(extra, `expected and, or or the end, not ${JSON.stringify(extra.text)}`);
    return node;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private next(what: string): Token {
    const t = this.tokens[this.pos++];
    if (t === undefined) throw new FilterError(this.expr, this.expr.length, `expected ${what}, the expression ended`);
    return t;
  }

  private error(t: Token, why: string): FilterError {
    return new FilterError(this.expr, t.at, why);
  }

  private accept(...words: string[]): boolean {
    const t = this.peek();
    if (t === undefined || !words.includes(t.text.toLowerCase())) return false;
    this.pos++;
    return true;
  }

  /** and/or at one precedence, left-associative (pcap-filter(7)). */
  private or(): FilterNode {
    let left = this.not();
    for (;;) {
      if (this.accept('or', '||')) left = { kind: 'or', left, right: this.not() };
      else if (this.accept('and', '&&')) left = { kind: 'and', left, right: this.not() };
      else return left;
    }
  }

  private not(): FilterNode {
    if (this.accept('not', '!')) return { kind: 'not', operand: this.not() };
    return this.primary();
  }

  private primary(): FilterNode {
    const t = this.next('a primitive (host, net, port, tcp, udp, icmp, arp, ip) or "("');
    if (t.text === '(') {
      const inner = this.or();
      const close = this.next('")"');
      if (close.text !== ')') throw this.error(close, `expected ")", not ${JSON.stringify(close.text)}`);
      return inner;
    }
    const word = t.text.toLowerCase();
    if (word === 'tcp' || word === 'udp') {
      // `tcp port 80`, `udp dst port 53`: the protocol qualifies the port.
      const after = this.peek()?.text.toLowerCase();
      if (after === 'port' || ((after === 'src' || after === 'dst') && this.tokens[this.pos + 1]?.text.toLowerCase() === 'port')) {
        const dir = this.direction();
        this.next('port');
        return { kind: 'port', dir, port: this.port(), proto: word };
      }
      return { kind: 'proto', proto: word };
    }
    if (word === 'icmp' || word === 'arp' || word === 'ip') return { kind: 'proto', proto: word };
    this.pos--;
    const dir = this.direction();
    const what = this.next('host, net or port');
    switch (what.text.toLowerCase()) {
      case 'host':
        return { kind: 'net', dir, cidr: { base: this.address(), prefix: 32 } };
      case 'net':
        return { kind: 'net', dir, cidr: this.net() };
      case 'port':
        return { kind: 'port', dir, port: this.port() };
      default: {
        // `src 10.0.0.1`: pcap's shorthand for `src host 10.0.0.1`.
        const addr = dir !== 'either' ? parseIpv4(what.text) : undefined;
        if (addr !== undefined) return { kind: 'net', dir, cidr: { base: addr, prefix: 32 } };
        throw this.error(what, `${JSON.stringify(what.text)} is not a primitive this filter knows (host, net, port, src, dst, tcp, udp, icmp, arp, ip, and, or, not)`);
      }
    }
  }

  private direction(): Direction {
    if (this.accept('src')) return 'src';
    if (this.accept('dst')) return 'dst';
    return 'either';
  }

  private address(): number {
    const t = this.next('an IPv4 address');
    const addr = parseIpv4(t.text);
    if (addr === undefined) throw this.error(t, `${JSON.stringify(t.text)} is not an IPv4 address (host names are not resolved)`);
    return addr;
  }

  private net(): Cidr {
    const t = this.next('a network (10.244.0.0/16, 10.244 or 10.244.1)');
    const slash = t.text.indexOf('/');
    const addrText = slash < 0 ? t.text : t.text.slice(0, slash);
    const parts = addrText.split('.');
    const octetsOk = parts.length >= 1 && parts.length <= 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
    const prefix = slash < 0 ? parts.length * 8 : /^\d{1,2}$/.test(t.text.slice(slash + 1)) ? Number(t.text.slice(slash + 1)) : NaN;
    if (!octetsOk || !(prefix >= 0 && prefix <= 32)) throw this.error(t, `${JSON.stringify(t.text)} is not a network`);
    const base = parseIpv4([...parts, '0', '0', '0'].slice(0, 4).join('.'))!;
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    // As pcap does, a network with bits past its prefix is an error, not silently masked.
    if (((base & ~mask) >>> 0) !== 0) throw this.error(t, `${JSON.stringify(t.text)} has host bits set past /${prefix}`);
    return { base, prefix };
  }

  private port(): number {
    const t = this.next('a port number');
    const port = /^\d{1,5}$/.test(t.text) ? Number(t.text) : NaN;
    if (!(port >= 0 && port <= 65535)) throw this.error(t, `${JSON.stringify(t.text)} is not a port number (service names are not looked up)`);
    return port;
  }
}

/** Parses `expr` into its tree; throws FilterError with the position of the first problem. */
export function parseFilter(expr: string): FilterNode {
  return new Parser(expr, tokenize(expr)).parse();
}

/** Compiles `expr` into a matcher (throws FilterError); an empty or blank expression matches everything. */
export function compileFilter(expr: string): FrameMatcher {
  if (expr.trim() === '') return () => true;
  return compileNode(parseFilter(expr));
}

function ethertype(buf: Uint8Array, offset: number, length: number): number {
  return length < ETHERNET_HEADER_LEN ? -1 : readU16(buf, offset + ETHERTYPE_AT);
}

/** The IPv4 header's offset in the frame when it holds a whole one, else -1. */
function ipv4At(buf: Uint8Array, offset: number, length: number): number {
  if (ethertype(buf, offset, length) !== ETHERTYPE.IPV4 || length < ETHERNET_HEADER_LEN + IPV4_HEADER_LEN) return -1;
  return offset + ETHERNET_HEADER_LEN;
}

function arpAt(buf: Uint8Array, offset: number, length: number): number {
  if (ethertype(buf, offset, length) !== ETHERTYPE.ARP || length < ETHERNET_HEADER_LEN + ARP_LEN) return -1;
  return offset + ETHERNET_HEADER_LEN;
}

function compileNode(node: FilterNode): FrameMatcher {
  switch (node.kind) {
    case 'and': {
      const l = compileNode(node.left);
      const r = compileNode(node.right);
      return (b, o, n) => l(b, o, n) && r(b, o, n);
    }
    case 'or': {
      const l = compileNode(node.left);
      const r = compileNode(node.right);
      return (b, o, n) => l(b, o, n) || r(b, o, n);
    }
    case 'not': {
      const inner = compileNode(node.operand);
      return (b, o, n) => !inner(b, o, n);
    }
    case 'proto':
      return protoMatcher(node.proto);
    case 'net':
      return netMatcher(node.dir, node.cidr);
    case 'port':
      return portMatcher(node.dir, node.port, node.proto);
  }
}

function protoMatcher(proto: Proto): FrameMatcher {
  switch (proto) {
    case 'ip':
      return (b, o, n) => ethertype(b, o, n) === ETHERTYPE.IPV4;
    case 'arp':
      return (b, o, n) => ethertype(b, o, n) === ETHERTYPE.ARP;
    default: {
      const number = proto === 'tcp' ? IPPROTO.TCP : proto === 'udp' ? IPPROTO.UDP : IPPROTO.ICMP;
      return (b, o, n) => {
        const ip = ipv4At(b, o, n);
        return ip >= 0 && b[ip + IPV4_OFFSET.PROTOCOL] === number;
      };
    }
  }
}

function netMatcher(dir: Direction, cidr: Cidr): FrameMatcher {
  const src = dir !== 'dst';
  const dst = dir !== 'src';
  return (b, o, n) => {
    const ip = ipv4At(b, o, n);
    if (ip >= 0) return (src && cidrContains(cidr, readU32(b, ip + IPV4_OFFSET.SRC_ADDR))) || (dst && cidrContains(cidr, readU32(b, ip + IPV4_OFFSET.DST_ADDR)));
    const arp = arpAt(b, o, n);
    if (arp >= 0) return (src && cidrContains(cidr, readU32(b, arp + ARP_SENDER_IP))) || (dst && cidrContains(cidr, readU32(b, arp + ARP_TARGET_IP)));
    return false;
  };
}

function portMatcher(dir: Direction, port: number, proto: 'tcp' | 'udp' | undefined): FrameMatcher {
  const src = dir !== 'dst';
  const dst = dir !== 'src';
  return (b, o, n) => {
    const ip = ipv4At(b, o, n);
    if (ip < 0) return false;
    const protocol = b[ip + IPV4_OFFSET.PROTOCOL];
    if (protocol !== IPPROTO.TCP && protocol !== IPPROTO.UDP) return false;
    if (proto !== undefined && protocol !== (proto === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP)) return false;
    // Only a first fragment (offset 0) carries the ports, as pcap reads them.
    if ((readU16(b, ip + IPV4_OFFSET.FLAGS_FRAGMENT) & IP_FRAGMENT_OFFSET_MASK) !== 0) return false;
    const l4 = ip + (b[ip + IPV4_OFFSET.VERSION_IHL] & 0x0f) * 4;
    if (l4 + 4 > o + n) return false;
    return (src && readU16(b, l4) === port) || (dst && readU16(b, l4 + 2) === port);
  };
}
