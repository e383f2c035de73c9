import { checkedArgument, COMMON_OPTIONS, namespaceOption, parseCommand, UsageError } from '../args.js';
import { checkPodName } from '../../cluster/names.js';
import { findPodNamespace, runInNamespace } from '../exec.js';
import { readCluster, statePaths } from '../state.js';
import { usage } from './usage.js';

export async function execCommand(argv: string[]): Promise<number> {
  const { values, positionals, rest } = parseCommand('exec', argv, { ...COMMON_OPTIONS, namespace: { type: 'string', short: 'n' } });
  if (values.help === true) return usage();
  if (positionals.length !== 1 || rest.length === 0) throw new UsageError('podwire exec: usage: podwire exec [-n NAMESPACE] POD -- CMD...');
  const namespace = namespaceOption('exec', values.namespace);
  const pod = checkedArgument('exec', 'POD', positionals[0], checkPodName);
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  const netns = findPodNamespace(cluster, namespace, pod);
  return runInNamespace(netns, rest);
}
