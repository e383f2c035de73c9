/**
 * Command-line parsing for the podwire command: node's parseArgs with podwire's errors. A bad
 * argument is a UsageError naming the command, printed with that command's usage line.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { checkClusterName } from '../cluster/names.js';

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

/** `--name`, by the same rule as a Cluster document's metadata.name. */
export function checkClusterNameOption(name: string): string {
  const bad = checkClusterName(name);
  if (bad !== undefined) throw new UsageError(`--name ${JSON.stringify(name.length > 60 ? `${name.slice(0, 56)}...` : name)}: ${bad}`);
  return name;
}
