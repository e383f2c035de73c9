/**
 * A plain chain walker: the reference the compiled service table is held to, and what
 * `podwire trace` prints. It does what the kernel's ipt_do_table does, rule after rule, with
 * no cleverness: slow (it scans every rule of KUBE-SERVICES) and meant to be obviously right.
 *
 * Semantics, as in netfilter:
 * - At a hook the tables run in priority order (rules.ts TABLES_AT_HOOK). The nat table only
 *   sees a connection's first packet (ctstate NEW); later packets take conntrack's NAT.
 * - Within a rule the IP header fields (-s, -d, -i, -p) are tested before the match modules,
 *   which then run in order, so `recent --set` only records packets that got that far.
 * - ACCEPT, DROP and REJECT end the table; DNAT, SNAT and MASQUERADE end the nat table (the
 *   packet is accepted there); MARK and a jump go on; RETURN, or the end of a user chain,
 *   returns to the rule after the calling jump (a goto does not come back to its chain); the
 *   end of a built-in chain applies its policy, ACCEPT.
 *
 * Randomness and time are injected (`Environment`). `statistic --mode random` draws once per
 * hook evaluation: the first statistic rule reached takes one number from `random`, as a uint32
 * (rules.ts drawFromUnit), and each statistic rule met afterwards matches on the part of the
 * remaining draws its probability claims, exactly, in fractions. Given the earlier rules
 * failed, the draw is still uniform over what is left, so each rule matches with its own
 * probability independently of the others, which is what the kernel's fresh draw per rule
 * gives; and the chain's choice becomes a function of one number, the same number the
 * compiled table is given, so the two can be compared packet by packet.
 */
import {
  DRAW_RANGE,
  L4_PROTOCOL_NUMBER,
  TABLES_AT_HOOK,
  applyMark,
  cidrMatches,
  drawFromUnit,
  rulesByChain,
  statisticFraction,
  type CtState,
  type Hook,
  type InterfaceRole,
  type Match,
  type RejectWith,
  type Rule,
  type RuleSet,
  type TableName,
} from './rules.js';

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT';

/** What the interpreter needs to know about a packet at a hook. */
export interface PacketMeta {
  readonly src: number;
  readonly dst: number;
  /** IP protocol number. */
  readonly proto: number;
  readonly sport: number;
  readonly dport: number;
  readonly mark: number;
  readonly ctstate: CtState;
  /** The source is one of the node's own addresses (`addrtype --src-type LOCAL`). */
  readonly srcLocal: boolean;
  /** The destination is one of the node's own addresses (`addrtype --dst-type LOCAL`). */
  readonly dstLocal: boolean;
  /** Where the packet came in; undefined for packets the node itself sends. */
  readonly inRole?: InterfaceRole;
}

/**
 * xt_recent's lists, named as the rules name them: address → when last seen, in seconds.
 * State that outlives packets, passed in like conntrack. The kernel frees a list with the last
 * rule naming it (`retainReferenced`) and by default keeps at most 100 addresses per list,
 * forgetting the least recently seen; these lists have no such bound.
 */
export class RecentLists {
  private readonly lists = new Map<string, Map<number, number>>();

  /** `--set`: records (or refreshes) the address. */
  set(name: string, address: number, now: number): void {
    let list = this.lists.get(name);
    if (list === undefined) {
      list = new Map();
      this.lists.set(name, list);
    }
    list.set(address >>> 0, now);
  }

  /** `--rcheck [--seconds s]`: in the list, and seen within s seconds when given. */
  check(name: string, address: number, now: number, seconds: number | undefined): boolean {
    const last = this.lists.get(name)?.get(address >>> 0);
    if (last === undefined) return false;
    return seconds === undefined || now - last <= seconds;
  }

  /** `--reap`: forgets the list's addresses not seen within `seconds` (they could no longer match). */
  reap(name: string, now: number, seconds: number): void {
    const list = this.lists.get(name);
    if (list === undefined) return;
    for (const [address, last] of list) if (now - last > seconds) list.delete(address);
  }

  lastSeen(name: string, address: number): number | undefined {
    return this.lists.get(name)?.get(address >>> 0);
  }

  /** Drops the lists no rule of `ruleSet` names, as the kernel does when a new ruleset replaces the old. */
  retainReferenced(ruleSet: RuleSet): void {
    const named = new Set<string>();
    for (const table of ['filter', 'nat'] as const) {
      for (const rule of ruleSet[table].rules) for (const m of rule.matches) if (m.kind === 'recent') named.add(m.name);
    }
    for (const name of [...this.lists.keys()]) if (!named.has(name)) this.lists.delete(name);
  }

  /** Names of the lists held. */
  names(): string[] {
    return [...this.lists.keys()];
  }
}

export interface Environment {
  /** A number in [0, 1); called at most once per hook evaluation (see the module comment). */
  readonly random: () => number;
  /** Seconds, on any fixed origin: what `recent` compares. */
  readonly now: number;
  readonly recent: RecentLists;
  /**
   * The node's own addresses, to judge addrtype again after a DNAT within one hook (nat then
   * filter at OUTPUT); without it the packet's `dstLocal` stands.
   */
  readonly isLocalAddress?: (address: number) => boolean;
}

export type NatAction =
  | { readonly kind: 'dnat'; readonly address: number; readonly port?: number }
  | { readonly kind: 'snat'; readonly address: number; readonly port?: number; readonly randomFully: boolean }
  | { readonly kind: 'masquerade'; readonly randomFully: boolean };

export interface RuleHit {
  readonly table: TableName;
  readonly chain: string;
  /** 1-based position in its chain, as `iptables -L --line-numbers` counts. */
  readonly position: number;
  readonly rule: Rule;
}

export interface HookResult {
  readonly verdict: Verdict;
  /** With REJECT: the reply to send. */
  readonly rejectWith?: RejectWith;
  /** The NAT target that ended the nat table, if one did. */
  readonly nat?: NatAction;
  readonly mark: number;
  /** Every rule whose matches all matched, in the order they were met. */
  readonly hits: readonly RuleHit[];
}

type ChainIndex = Readonly<Record<TableName, ReadonlyMap<string, readonly Rule[]>>>;

const indexes = new WeakMap<RuleSet, ChainIndex>();

/** Rules by chain, built once per rule set (rule sets are immutable). */
function indexOf(ruleSet: RuleSet): ChainIndex {
  let index = indexes.get(ruleSet);
  if (index === undefined) {
    index = { filter: rulesByChain(ruleSet, 'filter'), nat: rulesByChain(ruleSet, 'nat') };
    indexes.set(ruleSet, index);
  }
  return index;
}

/** Runs every table attached to `hook`, in priority order, on one packet. */
export function evaluateHook(ruleSet: RuleSet, hook: Hook, packet: PacketMeta, env: Environment): HookResult {
  const index = indexOf(ruleSet);
  const walk = new Walk(packet, env);
  let nat: NatAction | undefined;
  for (const table of TABLES_AT_HOOK[hook]) {
    if (table === 'nat' && packet.ctstate !== 'NEW') continue;
    const outcome = walk.table(table, hook, index[table]);
    if (outcome.nat !== undefined) {
      nat = outcome.nat;
      // At OUTPUT the filter table runs after nat and sees the rewritten destination.
      if (nat.kind === 'dnat') walk.rewriteDestination(nat.address, nat.port);
    }
    if (outcome.verdict !== 'ACCEPT') {
      return { verdict: outcome.verdict, ...(outcome.rejectWith ? { rejectWith: outcome.rejectWith } : {}), mark: walk.mark, hits: walk.hits };
    }
  }
  return { verdict: 'ACCEPT', ...(nat ? { nat } : {}), mark: walk.mark, hits: walk.hits };
}

interface TableOutcome {
  readonly verdict: Verdict;
  readonly rejectWith?: RejectWith;
  readonly nat?: NatAction;
}

const ACCEPTED: TableOutcome = { verdict: 'ACCEPT' };

/** One packet's walk through the tables of one hook: its mark, its hits, its draw. */
class Walk {
  mark: number;
  readonly hits: RuleHit[] = [];
  private draw: StatisticDraw | undefined;

  constructor(
    private packet: PacketMeta,
    private readonly env: Environment,
  ) {
    this.mark = packet.mark >>> 0;
  }

  rewriteDestination(address: number, port: number | undefined): void {
    const dstLocal = this.env.isLocalAddress?.(address) ?? this.packet.dstLocal;
    this.packet = { ...this.packet, dst: address, dport: port ?? this.packet.dport, dstLocal };
  }

  table(table: TableName, hook: Hook, byChain: ReadonlyMap<string, readonly Rule[]>): TableOutcome {
    const returnTo: { chain: string; next: number }[] = [];
    let chain: string = hook;
    let next = 0;
    for (;;) {
      const rules = byChain.get(chain) ?? [];
      if (next >= rules.length) {
        // The end of a user chain returns; the end of the built-in chain is its policy.
        const frame = returnTo.pop();
        if (frame === undefined) return ACCEPTED;
        ({ chain, next } = frame);
        continue;
      }
      const rule = rules[next];
      next++;
      if (!this.matches(rule)) continue;
      this.hits.push({ table, chain, position: next, rule });
      const target = rule.target;
      switch (target.kind) {
        case 'none':
          break;
        case 'accept':
          return ACCEPTED;
        case 'drop':
          return { verdict: 'DROP' };
        case 'reject':
          return { verdict: 'REJECT', rejectWith: target.with };
        case 'return': {
          const frame = returnTo.pop();
          if (frame === undefined) return ACCEPTED;
          ({ chain, next } = frame);
          break;
        }
        case 'jump':
          returnTo.push({ chain, next });
          chain = target.chain;
          next = 0;
          break;
        case 'goto':
          chain = target.chain;
          next = 0;
          break;
        case 'mark':
          this.mark = applyMark(this.mark, target);
          break;
        case 'dnat':
          return { verdict: 'ACCEPT', nat: target.port === undefined ? { kind: 'dnat', address: target.address } : { kind: 'dnat', address: target.address, port: target.port } };
        case 'snat':
          return { verdict: 'ACCEPT', nat: target };
        case 'masquerade':
          return { verdict: 'ACCEPT', nat: target };
      }
    }
  }

  /** The IP header fields first, then the match modules in order, as the kernel tests them. */
  private matches(rule: Rule): boolean {
    for (const m of rule.matches) if (isHeaderField(m) && !this.headerMatches(m)) return false;
    // `-p tcp` is both a header field and, through `-m tcp`, the module holding the ports.
    for (const m of rule.matches) if ((m.kind === 'protocol' || !isHeaderField(m)) && !this.moduleMatches(m, rule)) return false;
    return true;
  }

  private headerMatches(m: Match): boolean {
    const p = this.packet;
    switch (m.kind) {
      case 'source':
        return cidrMatches(m.cidr, p.src) !== m.negate;
      case 'destination':
        return cidrMatches(m.cidr, p.dst) !== m.negate;
      case 'inInterface':
        return (p.inRole === m.role) !== m.negate;
      case 'protocol':
        return p.proto === L4_PROTOCOL_NUMBER[m.protocol];
      default:
        return true;
    }
  }

  private moduleMatches(m: Match, rule: Rule): boolean {
    const p = this.packet;
    switch (m.kind) {
      case 'protocol':
        // The protocol module: its port options.
        for (const port of rule.matches) {
          if (port.kind === 'sourcePort' && (p.sport === port.port) === port.negate) return false;
          if (port.kind === 'destinationPort' && (p.dport === port.port) === port.negate) return false;
        }
        return true;
      case 'comment':
        return true;
      case 'mark':
        return (((this.mark & m.mask) >>> 0) === m.value) !== m.negate;
      case 'conntrack':
        return m.states.includes(p.ctstate) !== m.negate;
      case 'statistic':
        this.draw ??= new StatisticDraw(drawFromUnit(this.env.random()));
        return this.draw.claims(m.probability);
      case 'recent': {
        const address = m.side === 'source' ? p.src : p.dst;
        const { recent, now } = this.env;
        if (m.mode === 'set') {
          recent.set(m.name, address, now);
          return true;
        }
        const seen = recent.check(m.name, address, now, m.seconds);
        if (m.reap && m.seconds !== undefined) recent.reap(m.name, now, m.seconds);
        return seen;
      }
      case 'addrtype':
        return (m.side === 'source' ? p.srcLocal : p.dstLocal) !== m.negate;
      default:
        return true; // ports are checked with their protocol module; header fields before
    }
  }
}

function isHeaderField(m: Match): boolean {
  return m.kind === 'source' || m.kind === 'destination' || m.kind === 'inInterface' || m.kind === 'protocol';
}

/**
 * One uint32 draw and the part of the draw range still unclaimed, [low, high) as exact
 * fractions over a common denominator. A statistic rule with probability p claims the first
 * p of what is unclaimed: it matches when the draw lies there, and the range narrows to
 * whichever side the draw fell on.
 */
class StatisticDraw {
  private low = 0n;
  private high: bigint;
  private denominator = 1n;
  private readonly draw: bigint;

  constructor(draw: number) {
    this.draw = BigInt(draw);
    this.high = BigInt(DRAW_RANGE);
  }

  claims(probability: number): boolean {
    const { numerator: a, denominator: b } = statisticFraction(probability);
    // The boundary low + (high - low) * a/b, over the denominator denominator * b.
    const boundary = this.low * b + (this.high - this.low) * a;
    const denominator = this.denominator * b;
    const hit = this.draw * denominator < boundary;
    if (hit) {
      this.low *= b;
      this.high = boundary;
    } else {
      this.low = boundary;
      this.high *= b;
    }
    this.denominator = denominator;
    this.reduce();
    return hit;
  }

  /** Keeps the numbers small: without it the denominator is the product of every rule's. */
  private reduce(): void {
    const g = gcd(gcd(this.low, this.high), this.denominator);
    if (g > 1n) {
      this.low /= g;
      this.high /= g;
      this.denominator /= g;
    }
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
}

// ---------------------------------------------------------------------------------------------
// A packet's whole way through a node.

/** A packet as it reaches a node (or leaves one of its own sockets). */
export interface NodePacket {
  readonly src: number;
  readonly dst: number;
  readonly proto: number;
  readonly sport: number;
  readonly dport: number;
  readonly mark: number;
  readonly ctstate: CtState;
  readonly inRole?: InterfaceRole;
}

export interface TraverseOptions {
  /** Arriving from an interface (PREROUTING first), or sent by the node itself (OUTPUT first). */
  readonly origin: 'arriving' | 'local';
  /** The node's own addresses: what addrtype LOCAL matches and where routing delivers locally. */
  readonly isLocalAddress: (address: number) => boolean;
}

export interface Traversal {
  readonly verdict: Verdict;
  readonly rejectWith?: RejectWith;
  /** Where the packet was delivered: to the node itself, or forwarded on. */
  readonly delivery: 'local' | 'forward';
  readonly dnat?: { readonly address: number; readonly port?: number };
  /** SNAT or MASQUERADE taken in POSTROUTING (or INPUT). */
  readonly snat?: Exclude<NatAction, { kind: 'dnat' }>;
  readonly mark: number;
  /** Each hook walked, in order, with what it decided. */
  readonly steps: readonly { readonly hook: Hook; readonly result: HookResult }[];
}

/**
 * Walks a packet through every hook it meets on a node: PREROUTING (or OUTPUT), routing on
 * the destination after DNAT (one of the node's own addresses is delivered locally, anything
 * else forwarded), then INPUT, or FORWARD and POSTROUTING. The verdict is the first non-ACCEPT.
 */
export function traverse(ruleSet: RuleSet, packet: NodePacket, env: Environment, options: TraverseOptions): Traversal {
  const { isLocalAddress } = options;
  const steps: { hook: Hook; result: HookResult }[] = [];
  let meta: PacketMeta = {
    ...packet,
    srcLocal: isLocalAddress(packet.src),
    dstLocal: isLocalAddress(packet.dst),
  };
  let dnat: { address: number; port?: number } | undefined;
  let snat: Exclude<NatAction, { kind: 'dnat' }> | undefined;

  const run = (hook: Hook): HookResult => {
    const result = evaluateHook(ruleSet, hook, meta, env);
    steps.push({ hook, result });
    meta = { ...meta, mark: result.mark };
    const nat = result.nat;
    if (nat?.kind === 'dnat') {
      dnat = nat.port === undefined ? { address: nat.address } : { address: nat.address, port: nat.port };
      meta = { ...meta, dst: nat.address, dport: nat.port ?? meta.dport, dstLocal: isLocalAddress(nat.address) };
    } else if (nat !== undefined) {
      snat = nat;
    }
    return result;
  };
  const finish = (result: HookResult, delivery: 'local' | 'forward'): Traversal => ({
    verdict: result.verdict,
    ...(result.rejectWith ? { rejectWith: result.rejectWith } : {}),
    delivery,
    ...(dnat ? { dnat } : {}),
    ...(snat ? { snat } : {}),
    mark: meta.mark,
    steps,
  });

  const first = run(options.origin === 'arriving' ? 'PREROUTING' : 'OUTPUT');
  const delivery = meta.dstLocal ? 'local' : 'forward';
  if (first.verdict !== 'ACCEPT') return finish(first, delivery);
  // Whatever the node sends passes POSTROUTING, to itself too.
  if (options.origin === 'local') return finish(run('POSTROUTING'), delivery);
  if (delivery === 'local') return finish(run('INPUT'), 'local');
  const forwarded = run('FORWARD');
  if (forwarded.verdict !== 'ACCEPT') return finish(forwarded, 'forward');
  return finish(run('POSTROUTING'), 'forward');
}
