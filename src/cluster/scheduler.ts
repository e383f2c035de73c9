/**
 * Pod placement, a deterministic cut-down kube-scheduler:
 *
 * - `nodeName` binds the pod to that node, bypassing the scheduler as in Kubernetes; the node
 *   must exist, and must still satisfy the pod's nodeSelector (the kubelet's admission check).
 * - Otherwise the candidates are the nodes whose labels satisfy `nodeSelector`, and the pod goes
 *   to the candidate with the fewest pods so far, ties broken by node order.
 *
 * Bound pods are counted before any pod is spread, so a pinned pod declared late in the YAML
 * still steers the pods declared before it; spread pods are then placed in declaration order.
 */

import type { Labels } from './model.js';
import { equalitySelector, formatSelector, selectorMatches } from './selector.js';

export interface SchedulableNode {
  readonly name: string;
  readonly labels: Labels;
}

export interface PlacementRequest {
  readonly nodeName?: string;
  readonly nodeSelector: Labels;
}

/** `node` is an index into the node list; a failure names the field to blame. */
export type Placement =
  | { readonly ok: true; readonly node: number }
  | { readonly ok: false; readonly field: 'nodeName' | 'nodeSelector'; readonly reason: string };

export function schedule(nodes: readonly SchedulableNode[], pods: readonly PlacementRequest[]): Placement[] {
  const load = new Array<number>(nodes.length).fill(0);
  const placements: Placement[] = new Array(pods.length);

  pods.forEach((pod, i) => {
    if (pod.nodeName === undefined) return;
    const node = nodes.findIndex((n) => n.name === pod.nodeName);
    if (node < 0) {
      placements[i] = { ok: false, field: 'nodeName', reason: `node ${JSON.stringify(pod.nodeName)} does not exist (nodes: ${nodes.map((n) => n.name).join(', ')})` };
    } else if (!selectorMatches(equalitySelector(pod.nodeSelector), nodes[node].labels)) {
      placements[i] = { ok: false, field: 'nodeSelector', reason: `node ${pod.nodeName} (from spec.nodeName) does not match ${formatSelector(equalitySelector(pod.nodeSelector))}` };
    } else {
      load[node]++;
      placements[i] = { ok: true, node };
    }
  });

  pods.forEach((pod, i) => {
    if (pod.nodeName !== undefined) return;
    const selector = equalitySelector(pod.nodeSelector);
    let best = -1;
    for (let n = 0; n < nodes.length; n++) {
      if (!selectorMatches(selector, nodes[n].labels)) continue;
      // Strictly fewer: on a tie the earlier node keeps the pod.
      if (best < 0 || load[n] < load[best]) best = n;
    }
    if (best < 0) {
      placements[i] = { ok: false, field: 'nodeSelector', reason: `0/${nodes.length} nodes match ${formatSelector(selector)}` };
      return;
    }
    load[best]++;
    placements[i] = { ok: true, node: best };
  });
  return placements;
}
