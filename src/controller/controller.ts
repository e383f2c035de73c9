/**
 * The cluster's controllers, run by the one node agent that holds the controller election:
 * the node lifecycle controller (Ready or NotReady from the heartbeats it sees renewed),
 * the ReplicaSet controller with the scheduler (replicas.ts: which pods exist and where),
 * and the endpoints controller (which pods back each Service port, counting only Ready
 * nodes' pods). Each pass reads the view the watch keeps current and writes what differs.
 *
 * Heartbeats are judged by when this controller saw them change, on its own monotonic
 * clock, as Kubernetes' node lifecycle controller keeps its probe timestamps: machines'
 * clocks need not agree. A controller that has just taken over gives every node a full
 * grace period before it judges one NotReady.
 */
import { computeEndpoints } from '../cluster/endpoints.js';
import type { Pod } from '../cluster/model.js';
import type { Random } from '../cluster/random.js';
import { encodeRecord } from '../store/codec.js';
import type { EtcdClusterStore } from '../store/cluster-store.js';
import { endpointsRecords, type NodeCondition } from '../store/records.js';
import type { ViewChange } from '../store/view.js';
import { planPods } from './replicas.js';

/** etcd refuses a transaction of more than 128 operations (its --max-txn-ops default). */
const TXN_OPS = 100;
const JUDGE_INTERVAL_MS = 500;

export interface ControllerOptions {
  readonly log: (line: string) => void;
  readonly random?: Random;
  /** Monotonic ms, for heartbeat ages. */
  readonly now?: () => number;
  /** Wall clock ms, written into node conditions for people to read. */
  readonly wallClock?: () => number;
}

export class Controller {
  private readonly seen = new Map<string, { modRevision: number; at: number }>();
  private running: Promise<void> | undefined;
  private again = false;
  /** The view changed since the last pass that scheduled and computed endpoints. */
  private dirty = true;
  /** The Ready set that pass saw. */
  private readyBefore = '';
  private stopped = false;
  private readonly timer: NodeJS.Timeout;
  private readonly pendingSaid = new Map<string, string>();
  private readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly random: Random;

  constructor(
    private readonly store: EtcdClusterStore,
    private readonly options: ControllerOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.wallClock = options.wallClock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.timer = setInterval(() => this.poke(), JUDGE_INTERVAL_MS);
    this.timer.unref();
    this.poke();
  }

  /**
   * The view changed. Heartbeats alone only need the nodes judged (the timer does that); any
   * other change may move pods or endpoints.
   */
  changed(change: ViewChange): void {
    if (Object.entries(change).some(([what, changed]) => changed && what !== 'heartbeats')) this.dirty = true;
    this.poke();
  }

  /** Run a pass, or another after the current one. */
  private poke(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err: Error) => this.options.log(`controller: ${err.message}`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  private async pass(): Promise<void> {
    const view = this.store.view;
    if (!view.exists) return;
    const settings = view.settings();
    if (settings === undefined) return;
    const ready = await this.judgeNodes(settings.nodeGracePeriodSeconds);
    const readyNow = [...ready].sort().join(',');
    // Pods and endpoints follow from the view and the Ready set: with neither changed, a
    // pass would write nothing.
    if (this.stopped || (!this.dirty && readyNow === this.readyBefore)) return;
    this.dirty = false;
    this.readyBefore = readyNow;
    await this.schedule(ready);
    if (this.stopped) return;
    await this.updateEndpoints(ready);
  }

  /** Ready nodes now; writes the conditions that changed. */
  private async judgeNodes(graceSeconds: number): Promise<Set<string>> {
    const view = this.store.view;
    const now = this.now();
    const ready = new Set<string>();
    const puts: { key: string; value: string }[] = [];
    for (const name of view.registrations.keys()) {
      const heartbeat = view.heartbeats.get(name);
      let silentMs = Infinity;
      if (heartbeat !== undefined) {
        // First seen, or renewed since: the clock of its silence starts now.
        if (this.seen.get(name)?.modRevision !== heartbeat.modRevision) this.seen.set(name, { modRevision: heartbeat.modRevision, at: now });
        silentMs = now - this.seen.get(name)!.at;
      }
      const isReady = silentMs <= graceSeconds * 1000;
      if (isReady) ready.add(name);
      const before = view.nodeConditions.get(name);
      if (before?.ready === isReady) continue;
      const reason = isReady ? 'agent renews its heartbeat' : heartbeat === undefined ? 'no heartbeat: the agent\'s lease is gone' : `heartbeat not renewed for ${(silentMs / 1000).toFixed(1)} s (grace ${graceSeconds} s)`;
      const condition: NodeCondition = { node: name, ready: isReady, since: this.wallClock(), reason };
      this.options.log(`node ${name} ${isReady ? 'Ready' : 'NotReady'}: ${reason}${isReady ? '' : '; its pods leave every Service'}`);
      puts.push({ key: this.store.keys.nodeStatus(name), value: encodeRecord(condition) });
    }
    const gone = [...view.nodeConditions.keys()].filter((n) => !view.registrations.has(n)).map((n) => this.store.keys.nodeStatus(n));
    await this.write(puts, gone);
    return ready;
  }

  private async schedule(ready: ReadonlySet<string>): Promise<void> {
    const view = this.store.view;
    const nodes = view.nodes().map((n) => ({ name: n.name, labels: n.labels, podCIDR: n.podCIDR, ready: ready.has(n.name) }));
    const plan = planPods({ desired: view.declaredWorkloads(), nodes, bound: [...view.pods.values()], random: this.random });
    for (const p of plan.pending) {
      const key = `${p.namespace}/${p.name}`;
      if (this.pendingSaid.get(key) !== p.reason) this.options.log(`pod ${key} Pending: ${p.reason}`);
      this.pendingSaid.set(key, p.reason);
    }
    for (const key of [...this.pendingSaid.keys()]) if (!plan.pending.some((p) => `${p.namespace}/${p.name}` === key)) this.pendingSaid.delete(key);
    const keys = this.store.keys;
    const removals = plan.remove.map((p) => keys.pod(p.namespace, p.name));
    const creations = plan.create.map((p: Pod) => ({ key: keys.pod(p.namespace, p.name), value: encodeRecord({ ...p, createdAt: this.wallClock() }) }));
    for (const p of plan.remove) this.options.log(`pod ${p.namespace}/${p.name} removed from ${p.node}`);
    for (const p of plan.create) this.options.log(`pod ${p.namespace}/${p.name} bound to ${p.node}`);
    await this.write(creations, removals);
  }

  private async updateEndpoints(ready: ReadonlySet<string>): Promise<void> {
    const view = this.store.view;
    const cluster = view.cluster();
    if (cluster === undefined) return;
    const records = endpointsRecords(computeEndpoints(cluster, view.podReadiness(ready)));
    const keys = this.store.keys;
    const puts: { key: string; value: string }[] = [];
    const wanted = new Set<string>();
    for (const record of records) {
      const name = `${record.namespace}/${record.name}`;
      wanted.add(name);
      const value = encodeRecord(record);
      if (view.endpointTexts.get(name) === value) continue;
      puts.push({ key: keys.endpoints(record.namespace, record.name), value });
    }
    const stale = [...view.endpointRecords.keys()].filter((n) => !wanted.has(n)).map((n) => {
      const [namespace, name] = n.split('/');
      return keys.endpoints(namespace, name);
    });
    await this.write(puts, stale);
  }

  private async write(puts: readonly { key: string; value: string }[], deletes: readonly string[]): Promise<void> {
    for (let i = 0; i < puts.length; i += TXN_OPS) await this.store.kv.transact({ puts: puts.slice(i, i + TXN_OPS) });
    for (let i = 0; i < deletes.length; i += TXN_OPS) await this.store.kv.transact({ deletes: deletes.slice(i, i + TXN_OPS) });
  }
}
