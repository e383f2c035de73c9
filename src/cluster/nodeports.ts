/**
 * Node port allocation for NodePort and LoadBalancer services, as the API server's allocator
 * does it: a node port belongs to one service; that service may use it for the same port
 * number over several protocols (DNS over TCP and UDP), nobody else may use it at all.
 * Requested ports are served first; the rest get the lowest free port of the range, in YAML
 * order (Kubernetes picks at random; lowest-free keeps runs reproducible without a seed).
 */

import type { Allocation } from './ipam.js';
import type { Protocol } from './model.js';

/** The API server's default --service-node-port-range. */
export const NODE_PORT_MIN = 30000;
export const NODE_PORT_MAX = 32767;

export interface NodePortClaim {
  /** `namespace/name` of the service. */
  readonly owner: string;
  /** The service port's `port`: a service's ports with equal numbers share one node port. */
  readonly servicePort: number;
  readonly protocol: Protocol;
  readonly request: number | 'auto';
}

export function allocateNodePorts(claims: readonly NodePortClaim[]): Allocation[] {
  const owners = new Map<number, string>();
  /** `owner protocol nodePort`: one service may not use one node port twice for one protocol. */
  const uses = new Set<string>();
  /** `owner servicePort` to the node port it got, for sharing across protocols. */
  const shared = new Map<string, number>();
  const results: Allocation[] = new Array(claims.length);
  const take = (claim: NodePortClaim, port: number): Allocation => {
    owners.set(port, claim.owner);
    uses.add(`${claim.owner} ${claim.protocol} ${port}`);
    if (!shared.has(`${claim.owner} ${claim.servicePort}`)) shared.set(`${claim.owner} ${claim.servicePort}`, port);
    return { ok: true, value: port };
  };

  claims.forEach((claim, i) => {
    const port = claim.request;
    if (port === 'auto') return;
    const owner = owners.get(port);
    if (owner !== undefined && owner !== claim.owner) {
      results[i] = { ok: false, reason: `${port} is already allocated to Service ${owner}` };
    } else if (uses.has(`${claim.owner} ${claim.protocol} ${port}`)) {
      results[i] = { ok: false, reason: `${port} is already used by another ${claim.protocol} port of this service` };
    } else {
      results[i] = take(claim, port);
    }
  });

  let cursor = NODE_PORT_MIN;
  claims.forEach((claim, i) => {
    if (claim.request !== 'auto') return;
    const sibling = shared.get(`${claim.owner} ${claim.servicePort}`);
    if (sibling !== undefined && !uses.has(`${claim.owner} ${claim.protocol} ${sibling}`)) {
      results[i] = take(claim, sibling);
      return;
    }
    while (cursor <= NODE_PORT_MAX && owners.has(cursor)) cursor++;
    results[i] = cursor > NODE_PORT_MAX ? { ok: false, reason: `no free node port left in ${NODE_PORT_MIN}-${NODE_PORT_MAX}` } : take(claim, cursor);
  });
  return results;
}
