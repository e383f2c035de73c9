/**
 * `--store etcd://HOST:PORT[,HOST:PORT...]` with etcd's client TLS named as etcdctl names
 * it (`--cacert`, `--cert`, `--key`): the several-machine store. Without --store a command
 * works on the one-machine cluster in the state directory, as before.
 */
import { existsSync } from 'node:fs';
import type { EtcdClusterStore } from '../store/cluster-store.js';
import { parseEtcdUrl, type EtcdConnection } from '../store/connection.js';
import { UsageError } from './args.js';

export const STORE_OPTIONS = {
  store: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
} as const;

type StoreValues = { store?: string | undefined; cacert?: string | undefined; cert?: string | undefined; key?: string | undefined };

/** The connection the options name, or undefined without --store; a bad one is a usage error. */
export function storeConnection(command: string, values: StoreValues): EtcdConnection | undefined {
  if (values.store === undefined) {
    const stray = (['cacert', 'cert', 'key'] as const).find((k) => values[k] !== undefined);
    if (stray !== undefined) throw new UsageError(`podwire ${command}: --${stray} is for --store etcd://...; without --store there is no etcd to talk to`);
    return undefined;
  }
  let endpoints: string[];
  try {
    endpoints = parseEtcdUrl(values.store);
  } catch (err) {
    throw new UsageError(`podwire ${command}: --store ${values.store}: ${(err as Error).message}`);
  }
  for (const k of ['cacert', 'cert', 'key'] as const) {
    const path = values[k];
    if (path !== undefined && !existsSync(path)) throw new UsageError(`podwire ${command}: --${k} ${path}: no such file`);
  }
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError(`podwire ${command}: --cert and --key go together`);
  if (values.cert !== undefined && values.cacert === undefined) throw new UsageError(`podwire ${command}: --cert needs --cacert (the CA that signed etcd's certificate)`);
  if (values.cacert === undefined) return { endpoints };
  return { endpoints, tls: { cacert: values.cacert, ...(values.cert !== undefined ? { cert: values.cert, key: values.key } : {}) } };
}

/** The same connection as node/main.js's arguments, for the agent `podwire join` starts. */
export function storeArguments(values: StoreValues): string[] {
  const out = ['--store', values.store ?? ''];
  for (const k of ['cacert', 'cert', 'key'] as const) if (values[k] !== undefined) out.push(`--${k}`, values[k]);
  return out;
}

/** Opens the cluster in etcd for one command, and closes it whatever the command does. */
export async function withStore<T>(connection: EtcdConnection, cluster: string, run: (store: EtcdClusterStore) => Promise<T>): Promise<T> {
  // Loaded here, not at start: only commands that talk to etcd pay for its client.
  const { EtcdClusterStore } = await import('../store/cluster-store.js');
  const store = EtcdClusterStore.open(connection, cluster);
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}
