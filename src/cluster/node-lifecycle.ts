/**
 * Node lifecycle, as Kubernetes' node lifecycle controller judges it: every node agent
 * renews a lease (its name, when it last renewed, for how long it vouches for itself), and
 * a node whose lease has not been renewed for the grace period is NotReady. The pods of a
 * NotReady node are not ready whatever their own last record says (the controller's
 * MarkPodsNotReady), so their endpoints leave every Service; when the lease is renewed
 * again, the node's own records count again and its pods rejoin.
 *
 * Pure: the time is passed in. Renewal times are the renewing agent's wall clock in ms;
 * on one machine every agent reads the same clock. (Several machines will judge by store
 * lease TTLs instead, issue 11.)
 */
import type { Readiness } from './endpoints.js';

export interface NodeLease {
  readonly node: string;
  /** When the holder last renewed, ms since the epoch on its clock. */
  readonly renewTime: number;
  /** How long the holder vouches for itself after a renewal (the grace period it runs with). */
  readonly leaseDurationSeconds: number;
}

/**
 * A kubelet renews its 40 s lease every 10 s: a quarter of the grace period, so three
 * renewals can be late or lost before a live node is judged NotReady.
 */
export function renewIntervalMs(gracePeriodSeconds: number): number {
  return Math.max(100, Math.round((gracePeriodSeconds * 1000) / 4));
}

/** Seconds since the lease was renewed, as `now` sees it (never negative). */
export function leaseAgeSeconds(lease: NodeLease, now: number): number {
  return Math.max(0, now - lease.renewTime) / 1000;
}

/**
 * The nodes that are Ready at `now`: those whose lease was renewed within the grace period.
 * A node without a lease (never started, or its record unreadable) is not Ready. A renewal
 * stamped in the future (the clock stepped back) is trusted for the grace period on that
 * side too, not until the clock catches up: a node that died just after such a renewal
 * must not stay Ready for as long as the clock was off. A live holder's next renewal puts
 * its stamp right.
 */
export function readyNodes(leases: Iterable<NodeLease>, now: number, gracePeriodSeconds: number): Set<string> {
  const graceMs = gracePeriodSeconds * 1000;
  const ready = new Set<string>();
  for (const lease of leases) if (Math.abs(now - lease.renewTime) <= graceMs) ready.add(lease.node);
  return ready;
}

/**
 * Merges the pod readiness each node published, counting only the records of Ready nodes:
 * a NotReady node's pods are absent, hence not ready.
 */
export function readinessOnReadyNodes(byNode: ReadonlyMap<string, Readiness>, ready: ReadonlySet<string>): Map<string, boolean> {
  const merged = new Map<string, boolean>();
  for (const [node, pods] of byNode) {
    if (!ready.has(node)) continue;
    for (const [pod, isReady] of pods) merged.set(pod, isReady);
  }
  return merged;
}

/** The nodes that changed state between two judgements: [became Ready, became NotReady]. */
export function nodeTransitions(before: ReadonlySet<string>, after: ReadonlySet<string>): [string[], string[]] {
  return [[...after].filter((n) => !before.has(n)).sort(), [...before].filter((n) => !after.has(n)).sort()];
}

/** A lease record as read from the store, or why it is not one. */
export function parseLease(node: string, text: string): NodeLease | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `lease of ${node} is not JSON: ${(err as Error).message}`;
  }
  if (typeof value !== 'object' || value === null) return `lease of ${node} is not an object`;
  const { node: holder, renewTime, leaseDurationSeconds } = value as Record<string, unknown>;
  if (holder !== node) return `lease of ${node} names holder ${JSON.stringify(holder)}`;
  if (typeof renewTime !== 'number' || !Number.isFinite(renewTime)) return `lease of ${node} has no numeric renewTime`;
  if (typeof leaseDurationSeconds !== 'number' || !(leaseDurationSeconds > 0)) return `lease of ${node} has no positive leaseDurationSeconds`;
  return { node, renewTime, leaseDurationSeconds };
}
