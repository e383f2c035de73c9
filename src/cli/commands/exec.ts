import { COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { findPodNamespace, runInNamespace } from '../exec.js';
import { readCluster, statePaths } from '../state.js';
import { usage } from './usage.js';

export async function execCommand(argv: string[]): Promise<number> {
  const { values, positionals, rest } = parseCommand('exec', argv, { ...COMMON_OPTIONS, namespace: { type: 'string', short: 'n' } });
  if (values.help === true) return usage();
  if (positionals.length !== 1 || rest.length === 0) throw new UsageError('podwire exec: usage: podwire exec [-n NAMESPACE] POD -- CMD...');
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  const netns = findPodNamespace(cluster, values.namespace ?? 'default', positionals[0]);
  return runInNamespace(netns, rest);
}
