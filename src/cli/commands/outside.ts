import { COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { runInNamespace } from '../exec.js';
import { readCluster, statePaths } from '../state.js';
import { outsideNamespaceName } from '../../node/outside.js';
import { usage } from './usage.js';

export async function outsideCommand(argv: string[]): Promise<number> {
  const { values, positionals, rest } = parseCommand('outside', argv, COMMON_OPTIONS);
  if (values.help === true) return usage();
  if (positionals.length !== 0 || rest.length === 0) throw new UsageError('podwire outside: usage: podwire outside [--name NAME] -- CMD...');
  const { name, paths } = statePaths(values);
  if (readCluster(paths) === undefined) throw new UsageError(`cluster ${name} is not running`);
  return runInNamespace(outsideNamespaceName(name), rest);
}
