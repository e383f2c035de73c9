/**
 * A cluster in etcd, as the podwire command and the node agents use it: one connection,
 * the cluster's keys, and a view the watch keeps current. The commands that change the
 * cluster (apply, scale, delete, down) are transactions that a concurrent change makes
 * fail rather than half apply.
 */
import type { SourceFile } from '../cluster/documents.js';
import { ClusterKeys } from './keys.js';
import { planApply, type ApplyPlan } from './apply.js';
import { StoreRefused } from './connection.js';
import { EtcdKv, type EtcdConnection, type KeyValue } from './etcd.js';
import { ClusterView, type ViewChange } from './view.js';

export class EtcdClusterStore {
  readonly keys: ClusterKeys;
  readonly view: ClusterView;

  private constructor(
    readonly kv: EtcdKv,
    cluster: string,
    private readonly log: (line: string) => void,
  ) {
    this.keys = new ClusterKeys(cluster);
    this.view = new ClusterView(this.keys, log);
  }

  static open(conn: EtcdConnection, cluster: string, opts: { log?: (line: string) => void; onReachability?: (reachable: boolean, why: string) => void } = {}): EtcdClusterStore {
    const log = opts.log ?? (() => undefined);
    const kv = EtcdKv.connect(conn, opts.onReachability !== undefined ? { onReachability: opts.onReachability } : {});
    return new EtcdClusterStore(kv, cluster, log);
  }

  /**
   * The cluster as etcd has it now, in a view of its own: the followed `view` takes only
   * the watch's events, in revision order, so a newer listing never lands under older events.
   */
  async read(): Promise<ClusterView> {
    return (await this.listed()).view;
  }

  private async listed(): Promise<{ view: ClusterView; kvs: KeyValue[] }> {
    const { kvs, revision } = await this.kv.list(this.keys.prefix);
    const view = new ClusterView(this.keys, this.log);
    view.applySnapshot(kvs, revision);
    return { view, kvs };
  }

  /** Keeps the view current from the watch; `onChange` after each batch. Returns stop(). */
  async follow(onChange: (change: ViewChange) => void): Promise<() => Promise<void>> {
    return this.kv.watchPrefix(this.keys.prefix, {
      onSnapshot: (kvs, revision) => onChange(this.view.applySnapshot(kvs, revision)),
      onEvents: (events, revision) => onChange(this.view.applyEvents(events, revision)),
    });
  }

  /** Creates the cluster if it is new and creates or updates the objects; all or nothing. */
  async apply(files: readonly SourceFile[]): Promise<ApplyPlan> {
    for (let attempt = 0; ; attempt++) {
      const { view, kvs } = await this.listed();
      const result = planApply({ keys: this.keys, existingCluster: view.clusterDocument, existing: view.manifests(), files });
      if (!result.ok) throw new StoreRefused([...result.warnings, ...result.errors, `podwire apply: ${result.errors.length} error(s); nothing was applied`].join('\n'));
      const plan = result.plan;
      const clusterKv = kvs.find((kv) => kv.key === this.keys.clusterDocument);
      const unchanged = [
        { key: this.keys.clusterDocument, modRevision: clusterKv?.modRevision ?? 0 },
        ...plan.puts.map((p) => ({ key: p.key, modRevision: kvs.find((kv) => kv.key === p.key)?.modRevision ?? 0 })),
      ];
      const puts = [...(plan.clusterDocument !== undefined ? [{ key: this.keys.clusterDocument, value: plan.clusterDocument }] : []), ...plan.puts];
      if (puts.length === 0 || (await this.kv.transact({ unchanged, puts }))) return plan;
      if (attempt >= 3) throw new StoreRefused('podwire apply: the cluster kept changing under this apply; try again');
    }
  }

  /** Sets a Deployment's replicas in its stored manifest; the controller does the rest. */
  async scale(namespace: string, name: string, replicas: number): Promise<void> {
    const key = this.keys.object('Deployment', namespace, name);
    for (let attempt = 0; attempt < 4; attempt++) {
      const kv = await this.kv.get(key);
      if (kv === undefined) throw new StoreRefused(`deployment ${namespace}/${name} not found in cluster ${this.keys.cluster}`);
      const manifest = JSON.parse(kv.value) as { spec?: Record<string, unknown> };
      manifest.spec = { ...(manifest.spec ?? {}), replicas };
      if (await this.kv.transact({ unchanged: [{ key, modRevision: kv.modRevision }], puts: [{ key, value: JSON.stringify(manifest) }] })) return;
    }
    throw new StoreRefused(`deployment ${namespace}/${name} kept changing; try again`);
  }

  /**
   * Deletes a pod. A Deployment's pod goes from the bindings and its ReplicaSet (the
   * controller) makes a new one; a standalone pod's manifest goes with it.
   */
  async deletePod(namespace: string, name: string): Promise<void> {
    const view = await this.read();
    const pod = view.pods.get(`${namespace}/${name}`);
    const manifest = this.keys.object('Pod', namespace, name);
    const declared = view.manifests().some((m) => m.key === manifest);
    if (pod === undefined && !declared) throw new StoreRefused(`pod ${namespace}/${name} not found in cluster ${this.keys.cluster}`);
    await this.kv.transact({ deletes: [this.keys.pod(namespace, name), ...(declared ? [manifest] : [])] });
  }

  /** Removes the cluster from the store; every agent sees its document go and tears down. Safe twice. */
  async remove(): Promise<number> {
    // The document first, so agents stop reconciling before the rest disappears under them.
    await this.kv.delete(this.keys.clusterDocument);
    return this.kv.deletePrefix(this.keys.prefix);
  }

  async close(): Promise<void> {
    await this.kv.close();
  }
}
