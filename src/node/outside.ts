/**
 * The outside world of a cluster: one network namespace, `pw-<cluster>-ext`, holding a
 * Linux bridge with the outside network's gateway address. Every node process plugs an
 * uplink TAP into that bridge and answers on it for its node address (and the
 * LoadBalancer addresses it announces). Clients of NodePorts and LoadBalancers, and the
 * targets of pod egress, run inside this namespace (`podwire outside -- CMD`).
 *
 * Nothing is added to the machine's root namespace: the bridge and its address live in
 * the ext namespace, the uplinks are moved there as soon as they exist.
 */
import { formatIpv4, type Cidr } from '../packet/addr.js';
import { createNamespace, destroyNamespace, ip } from './netns.js';

export const EXT_BRIDGE = 'pwextbr0';

export function outsideNamespaceName(cluster: string): string {
  return `pw-${cluster}-ext`;
}

/** With several machines each node has an outside world of its own, as each VM has its LAN. */
export function nodeOutsideNamespaceName(cluster: string, node: string): string {
  return `pw-${cluster}-ext-${node}`;
}

/** Uplink name inside the ext namespace (≤ 15 characters). */
export function uplinkName(nodeIndex: number): string {
  return `pwup${nodeIndex}`;
}

/** Makes the outside namespace `ns` (the cluster's, or with several machines a node's own). */
export async function createOutside(ns: string, network: Cidr, gateway: number): Promise<string> {
  await destroyNamespace(ns);
  await createNamespace(ns);
  await ip('-n', ns, 'link', 'add', EXT_BRIDGE, 'type', 'bridge');
  await ip('-n', ns, 'addr', 'add', `${formatIpv4(gateway)}/${network.prefix}`, 'dev', EXT_BRIDGE);
  await ip('-n', ns, 'link', 'set', EXT_BRIDGE, 'up');
  return ns;
}

/** Moves a node's uplink TAP into the outside namespace `ns` and makes it a port of the bridge. */
export async function plugUplink(ns: string, tap: string, nodeIndex: number): Promise<void> {
  const name = uplinkName(nodeIndex);
  await ip('link', 'set', tap, 'netns', ns);
  await ip('-n', ns, 'link', 'set', tap, 'name', name);
  await ip('-n', ns, 'link', 'set', name, 'master', EXT_BRIDGE, 'up');
}
