/**
 * TCP connection states as the kernel's conntrack tracks them (nf_conntrack_proto_tcp.c):
 * one state per connection, a guess at where the two ends stand, advanced by the flags seen
 * in each direction. The transitions below are the kernel's table (as of Linux 6.1),
 * restated in this module's own notation.
 *
 * The subset podwire implements: the state table, the flag-combination check
 * (`tcp_error`), and the rules around it that decide timeouts and ASSURED (in
 * conntrack.ts). Not implemented: sequence and window tracking (`tcp_in_window`), which
 * is what the kernel does with `nf_conntrack_tcp_be_liberal`/`no_window_check` set, and
 * the resynchronisation that uses it (a SYN/ACK answering an ignored SYN).
 */
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../packet/tcp.js';

/** The kernel's `enum tcp_conntrack` values, as `conntrack -L` names them. */
export const TcpState = {
  None: 0,
  SynSent: 1,
  SynRecv: 2,
  Established: 3,
  FinWait: 4,
  CloseWait: 5,
  LastAck: 6,
  TimeWait: 7,
  Close: 8,
  /** A SYN seen from the reply direction while in SYN_SENT: simultaneous open. */
  SynSent2: 9,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

export const TCP_STATE_NAMES: readonly string[] = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
];

const STATE_COUNT = 10;

/** Outcomes of a transition that are not states. */
export const TCP_INVALID = 10;
/** Let the packet pass without touching the entry: conntrack may be the one out of sync. */
export const TCP_IGNORE = 11;

/** What a segment says, from its flags, in the kernel's order of precedence (get_conntrack_index). */
export const TcpEvent = { Syn: 0, SynAck: 1, Fin: 2, Ack: 3, Rst: 4, None: 5 } as const;
export type TcpEvent = (typeof TcpEvent)[keyof typeof TcpEvent];
const EVENT_COUNT = 6;

export function tcpEvent(flags: number): TcpEvent {
  if ((flags & TCP_RST) !== 0) return TcpEvent.Rst;
  if ((flags & TCP_SYN) !== 0) return (flags & TCP_ACK) !== 0 ? TcpEvent.SynAck : TcpEvent.Syn;
  if ((flags & TCP_FIN) !== 0) return TcpEvent.Fin;
  if ((flags & TCP_ACK) !== 0) return TcpEvent.Ack;
  return TcpEvent.None;
}

/**
 * Flag combinations a real stack sends (the kernel's `tcp_valid_flags`), judged with PSH,
 * ECE and CWR masked off. Anything else (SYN+FIN, a FIN without ACK, no flags at all) is
 * INVALID before the state table is consulted.
 */
const VALID_FLAG_COMBINATIONS = new Uint8Array(64);
for (const flags of [
  TCP_SYN,
  TCP_SYN | TCP_URG,
  TCP_SYN | TCP_ACK,
  TCP_RST,
  TCP_RST | TCP_ACK,
  TCP_FIN | TCP_ACK,
  TCP_FIN | TCP_ACK | TCP_URG,
  TCP_ACK,
  TCP_ACK | TCP_URG,
]) {
  VALID_FLAG_COMBINATIONS[flags] = 1;
}

export function tcpFlagsValid(flags: number): boolean {
  return VALID_FLAG_COMBINATIONS[flags & ~(TCP_PSH | TCP_ECE | TCP_CWR) & 0x3f] === 1;
}

/**
 * The transitions, one row per direction and event, one column per current state in the
 * order NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE
 * SYN_SENT2. `iv` is INVALID, `ig` IGNORE.
 */
const ROWS: Readonly<Record<'original' | 'reply', Readonly<Record<keyof typeof TcpEvent, string>>>> = {
  original: {
    // A SYN opens (or, after TIME_WAIT/CLOSE, reopens); one in an open connection is ignored.
    Syn: '    ss ss ig ig ig ig ig ss ss s2',
    // The client does not send SYN/ACK, except in a simultaneous open.
    SynAck: ' iv iv sr iv iv iv iv iv iv sr',
    Fin: '    iv iv fw fw la la la tw cl iv',
    // An ACK with no connection is picked up mid-stream as ESTABLISHED (nf_conntrack_tcp_loose).
    Ack: '    es iv es es cw cw tw tw cl iv',
    Rst: '    iv cl cl cl cl cl cl cl cl cl',
    None: '   iv iv iv iv iv iv iv iv iv iv',
  },
  reply: {
    Syn: '    iv s2 iv iv iv iv iv ss iv s2',
    // The normal answer to a SYN; a late retransmission of it is ignored.
    SynAck: ' iv sr ig ig ig ig ig ig ig sr',
    Fin: '    iv iv fw fw la la la tw cl iv',
    Ack: '    iv ig sr es cw cw tw tw cl ig',
    Rst: '    iv cl cl cl cl cl cl cl cl cl',
    None: '   iv iv iv iv iv iv iv iv iv iv',
  },
};

const CODES: Readonly<Record<string, number>> = {
  ss: TcpState.SynSent,
  sr: TcpState.SynRecv,
  es: TcpState.Established,
  fw: TcpState.FinWait,
  cw: TcpState.CloseWait,
  la: TcpState.LastAck,
  tw: TcpState.TimeWait,
  cl: TcpState.Close,
  s2: TcpState.SynSent2,
  iv: TCP_INVALID,
  ig: TCP_IGNORE,
};

/** [dir][event][state], flattened: one typed-array read per segment. */
const TRANSITIONS = buildTransitions();

function buildTransitions(): Uint8Array {
  const table = new Uint8Array(2 * EVENT_COUNT * STATE_COUNT);
  (['original', 'reply'] as const).forEach((dirName, dir) => {
    for (const [eventName, event] of Object.entries(TcpEvent)) {
      const codes = ROWS[dirName][eventName as keyof typeof TcpEvent].trim().split(/\s+/);
      if (codes.length !== STATE_COUNT) throw new Error(`conntrack-tcp: ${dirName} ${eventName} has ${codes.length} columns`);
      codes.forEach((code, state) => {
        const next = CODES[code];
        if (next === undefined) throw new Error(`conntrack-tcp: unknown code ${code}`);
        table[(dir * EVENT_COUNT + event) * STATE_COUNT + state] = next;
      });
    }
  });
  return table;
}

/** The next state for `event` seen in direction `dir` (0 original, 1 reply): a state, TCP_INVALID or TCP_IGNORE. */
export function tcpTransition(dir: number, event: TcpEvent, state: number): number {
  return TRANSITIONS[(dir * EVENT_COUNT + event) * STATE_COUNT + state];
}

/**
 * States in which the kernel lets an assured connection be dropped early when the table is
 * full (`tcp_can_early_drop`): the connection is closing anyway.
 */
export function tcpClosing(state: number): boolean {
  return state >= TcpState.FinWait && state <= TcpState.Close;
}
