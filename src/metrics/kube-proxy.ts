/**
 * kube-proxy's own timings, as its metrics define them, for the node's service sync
 * (the agent's recompile of NetworkPolicy, the service table and the announced addresses):
 *
 * - sync_proxy_rules_duration_seconds: how long one sync took;
 * - network_programming_duration_seconds: from a change of the cluster's objects to the
 *   sync that put it in the tables. kube-proxy starts the clock at the EndpointSlice's
 *   trigger time, written by the control plane; podwire starts it when the node learns
 *   of the change (its store's watch fires), so store propagation is not in it;
 * - sync_proxy_rules_last_timestamp_seconds: when the last sync ended (Unix seconds).
 *
 * Times are passed in (ms on a monotonic clock, and the wall clock for the timestamp).
 */
import { BucketCounts, KUBE_PROXY_PROGRAMMING_BUCKETS, KUBE_PROXY_SYNC_BUCKETS } from './histogram.js';

export class KubeProxySyncs {
  readonly sync = new BucketCounts(KUBE_PROXY_SYNC_BUCKETS);
  readonly programming = new BucketCounts(KUBE_PROXY_PROGRAMMING_BUCKETS);
  /** Unix seconds at the end of the last sync; 0 before the first. */
  lastSyncSeconds = 0;
  /** When the oldest change not yet synced was seen (ms), or undefined. */
  private changedAt: number | undefined;

  /** The cluster's objects changed at `nowMs`: the next sync programs it. */
  changed(nowMs: number): void {
    this.changedAt ??= nowMs;
  }

  /** A sync ran from `startMs` to `endMs`, ending at `wallMs` on the wall clock. */
  synced(startMs: number, endMs: number, wallMs: number): void {
    this.sync.observe(Math.max(0, endMs - startMs) / 1000);
    if (this.changedAt !== undefined) {
      this.programming.observe(Math.max(0, endMs - this.changedAt) / 1000);
      this.changedAt = undefined;
    }
    this.lastSyncSeconds = wallMs / 1000;
  }
}
