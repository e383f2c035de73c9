import { statSync } from 'node:fs';
import { computeEndpoints } from '../../cluster/endpoints.js';
import { COMMON_OPTIONS, namespaceOption, parseCommand, UsageError } from '../args.js';
import { etcdFacts } from '../etcd-status.js';
import { formatGet, parseGetKind } from '../get-format.js';
import { getInputs, type ClusterFacts } from '../get-inputs.js';
import { readCluster, statePaths } from '../state.js';
import { clusterStatus } from '../status.js';
import { STORE_OPTIONS, storeConnection, withStore } from '../store-option.js';
import { usage } from './usage.js';

const OUTPUTS = ['wide', 'json', 'yaml'] as const;

/** `podwire get pods|services|endpoints|nodes|ingresses [-n NS|-A] [-o wide|json|yaml]`, as kubectl prints it. */
export async function getCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('get', argv, {
    ...COMMON_OPTIONS,
    ...STORE_OPTIONS,
    namespace: { type: 'string', short: 'n' },
    'all-namespaces': { type: 'boolean', short: 'A' },
    output: { type: 'string', short: 'o' },
  });
  if (values.help === true) return usage();
  if (positionals.length !== 1) throw new UsageError('podwire get: usage: podwire get pods|services|endpoints|nodes|ingresses [-n NS|-A] [-o wide|json|yaml]');
  const kind = parseGetKind(positionals[0]);
  if (kind === undefined) throw new UsageError(`podwire get: the server doesn't have a resource type "${positionals[0]}" (podwire has pods, services, endpoints, nodes, ingresses)`);
  const output = values.output === undefined ? 'table' : (OUTPUTS as readonly string[]).includes(values.output) ? (values.output as (typeof OUTPUTS)[number]) : undefined;
  if (output === undefined) throw new UsageError(`podwire get: -o ${values.output}: expected one of ${OUTPUTS.join(', ')}`);
  if (values['all-namespaces'] === true && values.namespace !== undefined) throw new UsageError('podwire get: -n and -A exclude each other');
  const namespace = values['all-namespaces'] === true ? undefined : namespaceOption('get', values.namespace);
  const now = Date.now();
  const connection = storeConnection('get', values);
  let facts: ClusterFacts | undefined;
  const { name, paths } = statePaths(values);
  if (connection !== undefined) {
    facts = await withStore(connection, name, async (store) => etcdFacts(await store.read(), now));
    if (facts === undefined) throw new UsageError(`cluster ${name} is not in the store`);
  } else {
    const cluster = readCluster(paths);
    if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
    const status = await clusterStatus(name, paths, cluster, now);
    const podReady = new Map(status.pods.map((p) => [`${p.namespace}/${p.name}`, p.ready]));
    const started = statSync(paths.clusterFile).mtimeMs;
    const podContainers = new Map(status.pods.map((p) => [`${p.namespace}/${p.name}`, { restarts: p.restarts, ...(p.reason !== undefined ? { reason: p.reason } : {}) }]));
    facts = { cluster, endpoints: computeEndpoints(cluster, podReady), podReady, podContainers, readyNodes: new Set(status.nodes.filter((n) => n.ready).map((n) => n.name)), createdAt: new Map(), fallbackTime: started };
  }
  const result = formatGet({ kind, ...(namespace !== undefined ? { namespace } : {}), output, now, ...getInputs(facts) });
  process.stdout.write(result.stdout);
  if (result.stderr !== undefined) process.stderr.write(result.stderr);
  return 0;
}
