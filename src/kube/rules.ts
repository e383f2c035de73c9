/**
 * The rule model: iptables' tables, chains, rules, matches and targets as small readonly data,
 * so that kube-proxy's service rules can be generated (kube-proxy.ts), printed as a node's
 * `iptables-save` would print them (iptables-save.ts), walked packet by packet
 * (interpreter.ts) and checked against the compiled service table (service-table.ts).
 *
 * Only what kube-proxy, flannel and podwire write is modelled: the `filter` and `nat` tables,
 * IPv4, and the matches and targets below. Everything is plain data (JSON-friendly apart from
 * being typed): a rule set is built once by `RuleSetBuilder`, validated the way the kernel
 * validates a ruleset at load, and then only read.
 *
 * Order matters and is kept: a rule's matches are in the order they were written (the
 * kube-proxy dialect of iptables-save.ts prints them in that order, and `recent --set`, a match
 * with a side effect, runs where it stands); a table's rules are in generation order (the order
 * kube-proxy writes its iptables-restore input) and its user chains in declaration order.
 */
import { prefixMask, type Cidr } from '../packet/addr.js';
import { IPPROTO } from '../packet/ipv4.js';

export type TableName = 'filter' | 'nat';

export const TABLE_NAMES: readonly TableName[] = ['filter', 'nat'];

/** The netfilter hooks; a table's built-in chain is named after the hook it is attached to. */
export type Hook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';

/** Built-in chains of each table, in the order iptables-save prints them. */
export const BUILTIN_CHAINS: Readonly<Record<TableName, readonly Hook[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};

/**
 * The tables a packet meets at each hook, in netfilter's priority order: at OUTPUT the nat
 * table (dstnat, -100) runs before filter (0); at INPUT filter (0) before nat (srcnat, 100).
 */
export const TABLES_AT_HOOK: Readonly<Record<Hook, readonly TableName[]>> = {
  PREROUTING: ['nat'],
  INPUT: ['filter', 'nat'],
  FORWARD: ['filter'],
  OUTPUT: ['nat', 'filter'],
  POSTROUTING: ['nat'],
};

export function isBuiltinChain(table: TableName, chain: string): chain is Hook {
  return (BUILTIN_CHAINS[table] as readonly string[]).includes(chain);
}

export type L4Protocol = 'tcp' | 'udp' | 'sctp';

export const L4_PROTOCOL_NUMBER: Readonly<Record<L4Protocol, number>> = { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, sctp: IPPROTO.SCTP };

/** The protocol name for an IP protocol number, or undefined for one the model has no name for. */
export function l4ProtocolName(protocolNumber: number): L4Protocol | undefined {
  if (protocolNumber === IPPROTO.TCP) return 'tcp';
  if (protocolNumber === IPPROTO.UDP) return 'udp';
  if (protocolNumber === IPPROTO.SCTP) return 'sctp';
  return undefined;
}

/** Conntrack states, in the order iptables-save lists them (libxt_conntrack). */
export const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'] as const;
export type CtState = (typeof CT_STATES)[number];

/**
 * What an interface is to a podwire node, in place of a name: the dataplane's ports are not
 * kernel interfaces. iptables-save.ts prints a conventional name for each (flannel's on a
 * kubeadm node: cni0, flannel.1, eth0).
 */
export type InterfaceRole = 'pod' | 'overlay' | 'uplink';

/** `-s` / `-d`: an address or CIDR (a host is prefix 32). */
export interface AddressMatch {
  readonly kind: 'source' | 'destination';
  readonly cidr: Cidr;
  readonly negate: boolean;
}

/** `-p tcp`, written by kube-proxy as `-m tcp -p tcp` (the match module and the protocol). */
export interface ProtocolMatch {
  readonly kind: 'protocol';
  readonly protocol: L4Protocol;
}

/** `--sport` / `--dport`, options of the protocol's match module: a rule with one has a protocol. */
export interface PortMatch {
  readonly kind: 'sourcePort' | 'destinationPort';
  readonly port: number;
  readonly negate: boolean;
}

/** `-i`: the interface the packet came in on, by its role. */
export interface InInterfaceMatch {
  readonly kind: 'inInterface';
  readonly role: InterfaceRole;
  readonly negate: boolean;
}

/** `-m comment --comment`: matches every packet. */
export interface CommentMatch {
  readonly kind: 'comment';
  readonly text: string;
}

/** `-m mark --mark value/mask`: (mark & mask) === value. */
export interface MarkMatch {
  readonly kind: 'mark';
  readonly value: number;
  readonly mask: number;
  readonly negate: boolean;
}

/** `-m conntrack --ctstate A,B`: the packet's state is one of `states`. */
export interface ConntrackMatch {
  readonly kind: 'conntrack';
  readonly states: readonly CtState[];
  readonly negate: boolean;
}

/**
 * `-m statistic --mode random --probability p`: matches with probability p, independently of
 * the other statistic rules the packet has failed. How the interpreter draws (one 32-bit
 * number per walk, refined exactly from rule to rule) is explained in interpreter.ts;
 * `kernelProbability` is the 31-bit value the kernel actually stores.
 */
export interface StatisticMatch {
  readonly kind: 'statistic';
  readonly probability: number;
}

/**
 * `-m recent` (xt_recent), kube-proxy's ClientIP session affinity: per-name lists of
 * addresses with the time each was last seen. `set` records the packet's address (and always
 * matches); `rcheck` matches when the address is in the list, seen within `seconds` when
 * given; `reap` makes rcheck drop entries older than `seconds` from the list.
 */
export interface RecentMatch {
  readonly kind: 'recent';
  readonly name: string;
  readonly mode: 'set' | 'rcheck';
  readonly seconds?: number;
  readonly reap: boolean;
  /** `--rsource` (kube-proxy's, and the default) or `--rdest`: which address is recorded. */
  readonly side: 'source' | 'destination';
}

/** `-m addrtype --src-type LOCAL` / `--dst-type LOCAL`: the address is one of the node's own. */
export interface AddrTypeMatch {
  readonly kind: 'addrtype';
  readonly side: 'source' | 'destination';
  readonly type: 'LOCAL';
  readonly negate: boolean;
}

export type Match =
  | AddressMatch
  | ProtocolMatch
  | PortMatch
  | InInterfaceMatch
  | CommentMatch
  | MarkMatch
  | ConntrackMatch
  | StatisticMatch
  | RecentMatch
  | AddrTypeMatch;

/** iptables' REJECT replies; port-unreachable is the default (and kube-proxy's). */
export type RejectWith = 'icmp-port-unreachable' | 'icmp-host-unreachable' | 'icmp-net-unreachable' | 'tcp-reset';

export type Target =
  /** No `-j` at all: the rule only counts what reaches it, and the walk goes on. */
  | { readonly kind: 'none' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'return' }
  | { readonly kind: 'reject'; readonly with: RejectWith }
  | { readonly kind: 'jump'; readonly chain: string }
  | { readonly kind: 'goto'; readonly chain: string }
  /** `-j DNAT --to-destination address[:port]` */
  | { readonly kind: 'dnat'; readonly address: number; readonly port?: number }
  /** `-j SNAT --to-source address[:port]` */
  | { readonly kind: 'snat'; readonly address: number; readonly port?: number; readonly randomFully: boolean }
  /** `-j MASQUERADE`: SNAT to the outgoing interface's address, chosen when the packet leaves. */
  | { readonly kind: 'masquerade'; readonly randomFully: boolean }
  /** `-j MARK --set-xmark value/mask`: mark = (mark & ~mask) ^ value (--or-mark is v/v, --xor-mark v/0). */
  | { readonly kind: 'mark'; readonly value: number; readonly mask: number };

export interface Rule {
  readonly chain: string;
  readonly matches: readonly Match[];
  readonly target: Target;
}

export interface TableRules {
  /** User-defined chains, in declaration order (built-in chains are implied by the table). */
  readonly chains: readonly string[];
  /** Every rule of the table, built-in chains included, in generation order. */
  readonly rules: readonly Rule[];
}

export interface RuleSet {
  readonly filter: TableRules;
  readonly nat: TableRules;
}

// ---------------------------------------------------------------------------------------------
// Constructors: terse, so that generators read like the iptables lines they produce.

export const HOST_PREFIX = 32;

export function hostCidr(address: number): Cidr {
  return { base: address >>> 0, prefix: HOST_PREFIX };
}

export function source(cidr: Cidr, negate = false): AddressMatch {
  return { kind: 'source', cidr, negate };
}

export function destination(cidr: Cidr, negate = false): AddressMatch {
  return { kind: 'destination', cidr, negate };
}

export function protocol(name: L4Protocol): ProtocolMatch {
  return { kind: 'protocol', protocol: name };
}

export function destinationPort(port: number, negate = false): PortMatch {
  return { kind: 'destinationPort', port, negate };
}

export function sourcePort(port: number, negate = false): PortMatch {
  return { kind: 'sourcePort', port, negate };
}

export function inInterface(role: InterfaceRole, negate = false): InInterfaceMatch {
  return { kind: 'inInterface', role, negate };
}

export function comment(text: string): CommentMatch {
  return { kind: 'comment', text };
}

export function markMatch(value: number, mask: number, negate = false): MarkMatch {
  return { kind: 'mark', value: value >>> 0, mask: mask >>> 0, negate };
}

export function ctstate(states: readonly CtState[], negate = false): ConntrackMatch {
  return { kind: 'conntrack', states, negate };
}

export function statistic(probability: number): StatisticMatch {
  return { kind: 'statistic', probability };
}

export function recentSet(name: string): RecentMatch {
  return { kind: 'recent', name, mode: 'set', reap: false, side: 'source' };
}

export function recentCheck(name: string, seconds: number, reap = true): RecentMatch {
  return { kind: 'recent', name, mode: 'rcheck', seconds, reap, side: 'source' };
}

export function addrTypeLocal(side: 'source' | 'destination', negate = false): AddrTypeMatch {
  return { kind: 'addrtype', side, type: 'LOCAL', negate };
}

export const NO_TARGET: Target = { kind: 'none' };
export const ACCEPT: Target = { kind: 'accept' };
export const DROP: Target = { kind: 'drop' };
export const RETURN: Target = { kind: 'return' };
export const REJECT: Target = { kind: 'reject', with: 'icmp-port-unreachable' };

export function jump(chain: string): Target {
  return { kind: 'jump', chain };
}

export function goTo(chain: string): Target {
  return { kind: 'goto', chain };
}

export function dnat(address: number, port?: number): Target {
  return port === undefined ? { kind: 'dnat', address } : { kind: 'dnat', address, port };
}

export function snat(address: number, port?: number, randomFully = false): Target {
  return port === undefined ? { kind: 'snat', address, randomFully } : { kind: 'snat', address, port, randomFully };
}

export function masquerade(randomFully: boolean): Target {
  return { kind: 'masquerade', randomFully };
}

/** `-j MARK --or-mark bits` as the kernel stores it. */
export function orMark(bits: number): Target {
  return { kind: 'mark', value: bits >>> 0, mask: bits >>> 0 };
}

/** `-j MARK --xor-mark bits` as the kernel stores it. */
export function xorMark(bits: number): Target {
  return { kind: 'mark', value: bits >>> 0, mask: 0 };
}

/** The mark after a MARK target: (mark & ~mask) ^ value, as xt_MARK computes it. */
export function applyMark(mark: number, target: { readonly value: number; readonly mask: number }): number {
  return ((mark & ~target.mask) ^ target.value) >>> 0;
}

export function cidrMatches(cidr: Cidr, address: number): boolean {
  return ((address & prefixMask(cidr.prefix)) >>> 0) === cidr.base;
}

/**
 * `--probability p` as the kernel holds it: xt_statistic compares a 31-bit random number with
 * round(p * 2^31) (libxt_statistic), which is why a node's iptables-save prints 1/3 as
 * 0.33333333349. podwire's interpreter and service table use p itself, so that n endpoints
 * share the traffic exactly evenly; the kernel's rounding is at most 2^-32 per rule.
 */
export function kernelProbability(probability: number): number {
  return Math.round(probability * 0x80000000);
}

// ---------------------------------------------------------------------------------------------
// Building and validating.

/** iptables refuses chain names longer than this (XT_EXTENSION_MAXNAMELEN - 1). */
export const MAX_CHAIN_NAME = 28;
/** xt_comment's limit (XT_MAX_COMMENT_LEN - 1). */
export const MAX_COMMENT = 255;
/** xt_recent's limit on a list name (XT_RECENT_NAME_LEN - 1). */
export const MAX_RECENT_NAME = 199;

export class RuleSetError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid rule set:\n  ${problems.join('\n  ')}`);
    this.name = 'RuleSetError';
  }
}

/**
 * Accumulates chains and rules in the order a generator writes them, as kube-proxy fills its
 * line buffers, and validates the whole at `build`.
 */
export class RuleSetBuilder {
  private readonly chains: Record<TableName, string[]> = { filter: [], nat: [] };
  private readonly declared: Record<TableName, Set<string>> = { filter: new Set(), nat: new Set() };
  private readonly rules: Record<TableName, Rule[]> = { filter: [], nat: [] };

  /** Declares a user chain; declaring one twice is a no-op (kube-proxy may reach a chain twice). */
  chain(table: TableName, name: string): this {
    if (!this.declared[table].has(name)) {
      this.declared[table].add(name);
      this.chains[table].push(name);
    }
    return this;
  }

  hasChain(table: TableName, name: string): boolean {
    return this.declared[table].has(name);
  }

  append(table: TableName, chain: string, matches: readonly Match[], target: Target): this {
    this.rules[table].push({ chain, matches, target });
    return this;
  }

  /** The rule set; throws RuleSetError (a generator bug, not a packet error) when invalid. */
  build(): RuleSet {
    const ruleSet: RuleSet = {
      filter: { chains: this.chains.filter, rules: this.rules.filter },
      nat: { chains: this.chains.nat, rules: this.rules.nat },
    };
    const problems = validateRuleSet(ruleSet);
    if (problems.length > 0) throw new RuleSetError(problems);
    return ruleSet;
  }
}

/** A table's rules grouped by chain, each chain's rules in order. Built-in chains are present even when empty. */
export function rulesByChain(ruleSet: RuleSet, table: TableName): ReadonlyMap<string, readonly Rule[]> {
  const byChain = new Map<string, Rule[]>();
  for (const chain of BUILTIN_CHAINS[table]) byChain.set(chain, []);
  for (const chain of ruleSet[table].chains) byChain.set(chain, []);
  for (const rule of ruleSet[table].rules) {
    let list = byChain.get(rule.chain);
    if (list === undefined) {
      list = [];
      byChain.set(rule.chain, list);
    }
    list.push(rule);
  }
  return byChain;
}

/** Hooks from which NAT and REJECT targets may be reached, as the kernel's targets declare. */
const TARGET_HOOKS: Partial<Record<Target['kind'], readonly Hook[]>> = {
  dnat: ['PREROUTING', 'OUTPUT'],
  snat: ['POSTROUTING', 'INPUT'],
  masquerade: ['POSTROUTING'],
  reject: ['INPUT', 'FORWARD', 'OUTPUT'],
};

const TARGET_TABLES: Partial<Record<Target['kind'], TableName>> = { dnat: 'nat', snat: 'nat', masquerade: 'nat', reject: 'filter' };

/**
 * Everything iptables-restore and the kernel would refuse, as messages (empty when valid):
 * rules in undeclared chains, jumps to missing chains or built-in ones, loops, NAT and REJECT
 * targets in the wrong table or reachable from a hook they do not support, ports without a
 * protocol, out-of-range values and over-long names.
 */
export function validateRuleSet(ruleSet: RuleSet): string[] {
  const problems: string[] = [];
  for (const table of TABLE_NAMES) {
    const { chains, rules } = ruleSet[table];
    const known = new Set<string>(BUILTIN_CHAINS[table]);
    for (const chain of chains) {
      if (known.has(chain)) problems.push(`${table}: chain ${chain} declared twice or shadows a built-in chain`);
      if (chain.length === 0 || chain.length > MAX_CHAIN_NAME) problems.push(`${table}: chain name "${chain}" must be 1 to ${MAX_CHAIN_NAME} characters`);
      known.add(chain);
    }
    rules.forEach((rule, i) => {
      const where = () => `${table} rule ${i + 1} (-A ${rule.chain})`;
      if (!known.has(rule.chain)) problems.push(`${where()}: chain ${rule.chain} is not declared`);
      for (const problem of matchProblems(rule)) problems.push(`${where()}: ${problem}`);
      const target = rule.target;
      if (target.kind === 'jump' || target.kind === 'goto') {
        if (!known.has(target.chain)) problems.push(`${where()}: target chain ${target.chain} does not exist`);
        else if (isBuiltinChain(table, target.chain)) problems.push(`${where()}: cannot jump to built-in chain ${target.chain}`);
      }
      const ownTable = TARGET_TABLES[target.kind];
      if (ownTable !== undefined && ownTable !== table) problems.push(`${where()}: ${target.kind.toUpperCase()} is only valid in the ${ownTable} table`);
      if (target.kind === 'mark' && (!isUint32(target.value) || !isUint32(target.mask))) problems.push(`${where()}: MARK value and mask must be uint32`);
      if ((target.kind === 'dnat' || target.kind === 'snat') && target.port !== undefined && !isPort(target.port)) problems.push(`${where()}: NAT port ${target.port} out of range`);
    });
    const byChain = rulesByChain(ruleSet, table);
    const loop = findLoop(table, byChain);
    if (loop !== undefined) problems.push(`${table}: loop through chains ${loop.join(' -> ')}`);
    else problems.push(...hookProblems(table, byChain));
  }
  return problems;
}

function isUint32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

function matchProblems(rule: Rule): string[] {
  const problems: string[] = [];
  const hasProtocol = rule.matches.some((m) => m.kind === 'protocol');
  const seenHeaderFields: string[] = [];
  for (const m of rule.matches) {
    switch (m.kind) {
      case 'source':
      case 'destination':
      case 'protocol':
      case 'inInterface':
        // iptables keeps one of each IP-header field per rule.
        if (seenHeaderFields.includes(m.kind)) problems.push(`more than one ${m.kind} match`);
        seenHeaderFields.push(m.kind);
        if ((m.kind === 'source' || m.kind === 'destination') && !cidrIsCanonical(m.cidr)) problems.push(`${m.kind} ${m.cidr.base}/${m.cidr.prefix} has host bits set or a bad prefix`);
        break;
      case 'sourcePort':
      case 'destinationPort':
        if (!hasProtocol) problems.push(`${m.kind} needs a protocol match`);
        if (!isPort(m.port)) problems.push(`${m.kind} ${m.port} out of range`);
        break;
      case 'comment':
        if (m.text.length > MAX_COMMENT) problems.push(`comment longer than ${MAX_COMMENT} characters`);
        break;
      case 'mark':
        if (!isUint32(m.value) || !isUint32(m.mask)) problems.push('mark value and mask must be uint32');
        break;
      case 'conntrack':
        if (m.states.length === 0) problems.push('conntrack match without states');
        break;
      case 'statistic':
        if (!(m.probability >= 0 && m.probability <= 1)) problems.push(`statistic probability ${m.probability} outside [0, 1]`);
        break;
      case 'recent':
        if (m.name.length === 0 || m.name.length > MAX_RECENT_NAME) problems.push(`recent name must be 1 to ${MAX_RECENT_NAME} characters`);
        if (m.seconds !== undefined && !(Number.isInteger(m.seconds) && m.seconds > 0)) problems.push(`recent --seconds ${m.seconds} must be a positive integer`);
        if (m.reap && m.seconds === undefined) problems.push('recent --reap needs --seconds');
        if (m.reap && m.mode !== 'rcheck') problems.push('recent --reap is for --rcheck');
        break;
      case 'addrtype':
        break;
    }
  }
  return problems;
}

function cidrIsCanonical(cidr: Cidr): boolean {
  return Number.isInteger(cidr.prefix) && cidr.prefix >= 0 && cidr.prefix <= 32 && isUint32(cidr.base) && ((cidr.base & prefixMask(cidr.prefix)) >>> 0) === cidr.base;
}

function jumpTargets(rules: readonly Rule[]): string[] {
  const out: string[] = [];
  for (const r of rules) if (r.target.kind === 'jump' || r.target.kind === 'goto') out.push(r.target.chain);
  return out;
}

/** A cycle of chains (iptables-restore refuses one: "Too many links"), or undefined. */
function findLoop(table: TableName, byChain: ReadonlyMap<string, readonly Rule[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (chain: string): string[] | undefined => {
    const s = state.get(chain);
    if (s === 'done') return undefined;
    if (s === 'open') return [...path.slice(path.indexOf(chain)), chain];
    state.set(chain, 'open');
    path.push(chain);
    for (const next of jumpTargets(byChain.get(chain) ?? [])) {
      if (isBuiltinChain(table, next)) continue; // reported separately
      const loop = visit(next);
      if (loop !== undefined) return loop;
    }
    path.pop();
    state.set(chain, 'done');
    return undefined;
  };
  for (const chain of byChain.keys()) {
    const loop = visit(chain);
    if (loop !== undefined) return loop;
  }
  return undefined;
}

/**
 * Targets reachable from a hook that does not allow them (the kernel's check at ruleset load).
 * Each chain gets the set of hooks that reach it, as bits, in one walk per hook that stops at
 * chains already marked; then each restricted target is checked once.
 */
function hookProblems(table: TableName, byChain: ReadonlyMap<string, readonly Rule[]>): string[] {
  const hooks = BUILTIN_CHAINS[table];
  const reachedBy = new Map<string, number>();
  hooks.forEach((hook, bit) => {
    const stack: string[] = [hook];
    while (stack.length > 0) {
      const chain = stack.pop()!;
      const mask = reachedBy.get(chain) ?? 0;
      if ((mask & (1 << bit)) !== 0) continue;
      reachedBy.set(chain, mask | (1 << bit));
      for (const rule of byChain.get(chain) ?? []) if (rule.target.kind === 'jump' || rule.target.kind === 'goto') stack.push(rule.target.chain);
    }
  });
  const problems: string[] = [];
  for (const [chain, rules] of byChain) {
    const mask = reachedBy.get(chain) ?? 0;
    for (const rule of rules) {
      const allowed = TARGET_HOOKS[rule.target.kind];
      if (allowed === undefined) continue;
      for (let bit = 0; bit < hooks.length; bit++) {
        if ((mask & (1 << bit)) !== 0 && !allowed.includes(hooks[bit])) {
          problems.push(`${table}: ${rule.target.kind.toUpperCase()} in chain ${chain} is reachable from ${hooks[bit]}, where it is not allowed`);
        }
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The random draw behind `statistic`, shared by the interpreter and the compiled service table.

/** A draw is a uint32, like the kernel's get_random_u32(): 2^32 equally likely values. */
export const DRAW_RANGE = 0x100000000;

/**
 * The uint32 draw for a number in [0, 1) from an injected random source. Out-of-range input
 * (a faulty source) is clamped rather than trusted: NaN and negatives give 0, 1 and above the
 * largest draw.
 */
export function drawFromUnit(u: number): number {
  if (!(u > 0)) return 0;
  if (u >= 1) return DRAW_RANGE - 1;
  return Math.floor(u * DRAW_RANGE);
}

/** An exact fraction, in BigInt so that products never round. */
export interface Fraction {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

/**
 * The exact probability a statistic rule stands for. kube-proxy writes 1/k, which no double
 * holds exactly; a double that is the nearest to 1/k is taken as 1/k itself (so that k
 * endpoints split the draws exactly evenly), any other as the exact binary value it holds.
 */
export function statisticFraction(probability: number): Fraction {
  if (probability <= 0) return { numerator: 0n, denominator: 1n };
  if (probability >= 1) return { numerator: 1n, denominator: 1n };
  const k = Math.round(1 / probability);
  if (1 / k === probability) return { numerator: 1n, denominator: BigInt(k) };
  const { numerator, shift } = doubleToDyadic(probability);
  return { numerator, denominator: 1n << BigInt(shift) };
}

/** A finite non-negative double as numerator / 2^shift, exactly and in lowest terms. */
export function doubleToDyadic(value: number): { numerator: bigint; shift: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  // value = mantissa * 2^(exponent - 1075); subnormals have no implicit leading 1.
  const mantissa = exponent === 0 ? fraction : fraction | (1n << 52n);
  const power = (exponent === 0 ? 1 : exponent) - 1075;
  if (power >= 0) return { numerator: mantissa << BigInt(power), shift: 0 };
  let numerator = mantissa;
  let shift = -power;
  while (shift > 0 && numerator !== 0n && (numerator & 1n) === 0n) {
    numerator >>= 1n;
    shift--;
  }
  return { numerator, shift: numerator === 0n ? 0 : shift };
}
