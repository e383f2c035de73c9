import { readSourceFiles } from '../../cluster/files.js';
import { StoreRefused } from '../../store/connection.js';
import { checkClusterNameOption, COMMON_OPTIONS, noArguments, parseCommand, UsageError } from '../args.js';
import { STORE_OPTIONS, storeConnection, withStore } from '../store-option.js';
import { UpError } from '../up.js';
import { usage } from './usage.js';

/**
 * `podwire apply -f FILE... --name NAME --store etcd://...`: creates the cluster in the store
 * when it is new and creates or updates the objects, as `kubectl apply`; starts nothing.
 */
export async function applyCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('apply', argv, { ...COMMON_OPTIONS, ...STORE_OPTIONS, file: { type: 'string', short: 'f', multiple: true } });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('apply', parsed, 'files are given with -f FILE');
  const connection = storeConnection('apply', values);
  if (connection === undefined) throw new UsageError('podwire apply: --store etcd://HOST:PORT is required (one machine: podwire up -f FILE)');
  if (values.name === undefined) throw new UsageError('podwire apply: --name NAME is required: it names the cluster in the store');
  const name = checkClusterNameOption(values.name);
  const files = values.file ?? [];
  if (files.length === 0) throw new UsageError('podwire apply: give at least one -f FILE');
  let sources;
  try {
    sources = await readSourceFiles(files);
  } catch (err) {
    throw new UpError(`podwire apply: ${(err as Error).message}`);
  }
  try {
    const plan = await withStore(connection, name, (store) => store.apply(sources));
    for (const w of plan.warnings) process.stderr.write(`${w}\n`);
    if (plan.clusterDocument !== undefined) process.stdout.write(`cluster.podwire.dev/${name} created\n`);
    for (const line of plan.lines) process.stdout.write(`${line}\n`);
    return 0;
  } catch (err) {
    if (err instanceof StoreRefused) throw new UpError(err.message);
    throw err;
  }
}
