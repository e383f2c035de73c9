/**
 * Command-line parsing for the podwire command: node's parseArgs with podwire's errors. A bad
 * argument is a UsageError naming the command, printed with that command's usage line.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { checkClusterName, checkDnsLabel } from '../cluster/names.js';

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_OPTIONS = {
  name: { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export interface Parsed<V> {
  values: V;
  positionals: string[];
  /** Everything after a `--`, untouched (the command for exec and outside). */
  rest: string[];
}

export function parseCommand<O extends Options>(command: string, argv: string[], options: O) {
  const dashes = argv.indexOf('--');
  const own = dashes < 0 ? argv : argv.slice(0, dashes);
  const rest = dashes < 0 ? [] : argv.slice(dashes + 1);
  try {
    const { values, positionals } = parseArgs({ args: own, options, allowPositionals: true, strict: true });
    return { values, positionals, rest };
  } catch (err) {
    throw new UsageError(`podwire ${command}: ${(err as Error).message}`);
  }
}

/**
 * parseCommand with the options also in the order they were given (node's parseArgs
 * tokens), for commands whose options mean something in sequence (observe's `--not`).
 */
export function parseCommandTokens<O extends Options>(command: string, argv: string[], options: O) {
  try {
    const { values, positionals, tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
    return { values, positionals, tokens };
  } catch (err) {
    throw new UsageError(`podwire ${command}: ${(err as Error).message}`);
  }
}

/** `--name`, by the same rule as a Cluster document's metadata.name. */
export function checkClusterNameOption(name: string): string {
  const bad = checkClusterName(name);
  if (bad !== undefined) throw new UsageError(`--name ${JSON.stringify(name.length > 60 ? `${name.slice(0, 56)}...` : name)}: ${bad}`);
  return name;
}

/**
 * A name given on the command line (a pod, a node, a namespace) by the rule the cluster's
 * own names follow: an empty or malformed one names nothing, and says so at once.
 */
export function checkedArgument(command: string, what: string, value: string, check: (value: string) => string | undefined): string {
  const bad = check(value);
  if (bad !== undefined) throw new UsageError(`podwire ${command}: ${what} ${JSON.stringify(value.length > 60 ? `${value.slice(0, 56)}...` : value)}: ${bad}`);
  return value;
}

/**
 * For the commands that take no arguments: `podwire down mycluster` must not bring down the
 * default cluster while the user meant --name mycluster.
 */
export function noArguments(command: string, parsed: { positionals: string[]; rest: string[] }, hint = 'a cluster is named with --name NAME'): void {
  const extra = [...parsed.positionals, ...parsed.rest];
  if (extra.length > 0) throw new UsageError(`podwire ${command}: unexpected argument ${JSON.stringify(extra[0])} (${command} takes options only; ${hint})`);
}

/** `-n NAMESPACE`, "default" when absent. */
export function namespaceOption(command: string, value: string | undefined): string {
  return value === undefined ? 'default' : checkedArgument(command, '-n', value, checkDnsLabel);
}
