import { checkedArgument, COMMON_OPTIONS, namespaceOption, parseCommand, UsageError } from '../args.js';
import { checkDnsSubdomain } from '../../cluster/names.js';
import { scaleDeployment } from '../../cluster/mutate.js';
import { openStore } from './common.js';
import { statePaths } from '../state.js';
import { STORE_OPTIONS, storeConnection, withStore } from '../store-option.js';
import { usage } from './usage.js';

export async function scaleCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('scale', argv, { ...COMMON_OPTIONS, ...STORE_OPTIONS, namespace: { type: 'string', short: 'n' }, replicas: { type: 'string' } });
  if (values.help === true) return usage();
  const target = positionals.length === 1 ? /^(?:deployment|deploy|deployments|deployment\.apps)\/(.+)$/.exec(positionals[0]) : null;
  const replicas = /^\d+$/.test(values.replicas ?? '') ? Number(values.replicas) : NaN;
  if (target === null || values.replicas === undefined || !Number.isInteger(replicas)) {
    throw new UsageError('podwire scale: usage: podwire scale [-n NAMESPACE] deployment/NAME --replicas N');
  }
  checkedArgument('scale', 'deployment', target[1], checkDnsSubdomain);
  const namespace = namespaceOption('scale', values.namespace);
  const connection = storeConnection('scale', values);
  if (connection !== undefined) {
    if (replicas > 1000) throw new UsageError(`--replicas ${replicas}: must be an integer from 0 to 1000`);
    await withStore(connection, statePaths(values).name, (store) => store.scale(namespace, target[1], replicas));
    process.stdout.write(`deployment.apps/${target[1]} scaled\n`);
    return 0;
  }
  const { store, cluster } = openStore(values);
  store.writeDesired(scaleDeployment(cluster, namespace, target[1], replicas, Math.random));
  process.stdout.write(`deployment.apps/${target[1]} scaled\n`);
  return 0;
}
