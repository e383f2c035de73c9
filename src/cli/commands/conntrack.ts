/**
 * `podwire conntrack NODE`: the node's connections as `conntrack -L` prints them, with its
 * filters (`-p`, `-s`, `-d`, `--sport`, `--dport`, applied in the node) and `-C` for the
 * count alone. Lines are printed as the node streams them, at the pace stdout takes them.
 */
import { COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { parseIpv4 } from '../../packet/addr.js';
import { CONNTRACK_PROTOCOLS, conntrackFilterProblem, type ConntrackFilter } from '../../netfilter/conntrack-filter.js';
import { extendedConntrackLine } from '../../netfilter/conntrack-format.js';
import { Printer, ReaderGone, streamFromNode } from './common.js';
import { usage } from './usage.js';

/** The conntrack-tools release whose output podwire's follows (Debian bookworm's). */
export const CONNTRACK_TOOLS_VERSION = '1.4.7';

const USAGE_LINE = 'podwire conntrack: usage: podwire conntrack NODE [-L] [-p tcp|udp|icmp] [-s IP] [-d IP] [--sport PORT] [--dport PORT] [-o extended] [-C | --json]';

function address(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const addr = parseIpv4(text);
  if (addr === undefined) throw new UsageError(`podwire conntrack: ${flag} ${text}: not an IPv4 address`);
  return addr;
}

function port(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(value <= 0xffff)) throw new UsageError(`podwire conntrack: ${flag} ${text}: not a port (0-65535)`);
  return value;
}

function protocol(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const proto = Object.hasOwn(CONNTRACK_PROTOCOLS, text) ? CONNTRACK_PROTOCOLS[text] : undefined;
  if (proto === undefined) throw new UsageError(`podwire conntrack: -p ${text}: one of ${Object.keys(CONNTRACK_PROTOCOLS).join(', ')}`);
  return proto;
}

/** An entry as `JSON.stringify(list, null, 2)` prints the elements of a list. */
function jsonElement(entry: unknown): string {
  return `  ${JSON.stringify(entry, null, 2).replace(/\n/g, '\n  ')}`;
}

export async function conntrackCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('conntrack', argv, {
    ...COMMON_OPTIONS,
    json: { type: 'boolean' },
    dump: { type: 'boolean', short: 'L' },
    count: { type: 'boolean', short: 'C' },
    proto: { type: 'string', short: 'p' },
    src: { type: 'string', short: 's' },
    dst: { type: 'string', short: 'd' },
    sport: { type: 'string' },
    dport: { type: 'string' },
    output: { type: 'string', short: 'o' },
  });
  if (values.help === true) return usage();
  if (positionals.length !== 1 || (values.count === true && values.json === true)) throw new UsageError(USAGE_LINE);
  const filter: ConntrackFilter = {
    proto: protocol(values.proto),
    src: address('-s', values.src),
    dst: address('-d', values.dst),
    sport: port('--sport', values.sport),
    dport: port('--dport', values.dport),
  };
  const problem = conntrackFilterProblem(filter);
  if (problem !== undefined) throw new UsageError(`podwire conntrack: ${problem}`);
  const output = values.count === true ? 'count' : values.json === true ? 'json' : 'text';
  if (values.output !== undefined && values.output !== 'extended') {
    throw new UsageError(`podwire conntrack: -o ${values.output}: podwire prints the default and extended formats of conntrack -L (-o extended)`);
  }
  if (values.output !== undefined && output !== 'text') throw new UsageError(`podwire conntrack: -o extended formats the listing; it does not go with ${output === 'count' ? '-C' : '--json'}`);
  const line = values.output === 'extended' ? extendedConntrackLine : (l: string) => l;

  const out = new Printer();
  let printed = 0;
  let shown: number;
  try {
    ({ shown } = await streamFromNode(values, positionals[0], 'conntrack', { output, filter }, async (chunk) => {
      if ('lines' in chunk) {
        await out.write(`${chunk.lines.map(line).join('\n')}\n`);
      } else {
        await out.write(`${printed === 0 ? '[\n' : ',\n'}${chunk.entries.map(jsonElement).join(',\n')}`);
        printed += chunk.entries.length;
      }
    }));
    if (output === 'count') await out.write(`${shown}\n`);
    else if (output === 'json') await out.write(printed === 0 ? '[]\n' : '\n]\n');
    await out.flush();
  } catch (err) {
    // `podwire conntrack | head`: the listing stops (the node sees the connection close) and
    // the command ends as a tool killed by SIGPIPE does, quietly, with 128 + 13.
    if (err instanceof ReaderGone) return 141;
    throw err;
  }
  if (output === 'text') process.stderr.write(`conntrack v${CONNTRACK_TOOLS_VERSION} (conntrack-tools): ${shown} flow entries have been shown.\n`);
  return 0;
}
