import { checkedArgument, COMMON_OPTIONS, namespaceOption, parseCommand, UsageError } from '../args.js';
import { checkPodName } from '../../cluster/names.js';
import { deletePod } from '../../cluster/mutate.js';
import { openStore } from './common.js';
import { statePaths } from '../state.js';
import { STORE_OPTIONS, storeConnection, withStore } from '../store-option.js';
import { usage } from './usage.js';

export async function deleteCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('delete', argv, { ...COMMON_OPTIONS, ...STORE_OPTIONS, namespace: { type: 'string', short: 'n' } });
  if (values.help === true) return usage();
  const name = positionals.length === 2 && /^(pod|pods|po)$/.test(positionals[0]) ? positionals[1] : positionals.length === 1 ? /^(?:pod|pods|po)\/(.+)$/.exec(positionals[0])?.[1] : undefined;
  if (name === undefined) throw new UsageError('podwire delete: usage: podwire delete [-n NAMESPACE] pod NAME');
  checkedArgument('delete', 'pod', name, checkPodName);
  const namespace = namespaceOption('delete', values.namespace);
  const connection = storeConnection('delete', values);
  if (connection !== undefined) {
    await withStore(connection, statePaths(values).name, (store) => store.deletePod(namespace, name));
    process.stdout.write(`pod "${name}" deleted\n`);
    return 0;
  }
  const { store, cluster } = openStore(values);
  const { cluster: next, replacement } = deletePod(cluster, namespace, name, Math.random);
  store.writeDesired(next);
  process.stdout.write(`pod "${name}" deleted${replacement !== undefined ? ` (its ReplicaSet starts ${replacement.name})` : ''}\n`);
  return 0;
}
