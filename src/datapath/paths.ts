/**
 * The life of a packet, in code: the stages a frame meets, in order, for each way into
 * the node. Read it beside the kernel's packet-flow diagram or a Kubernetes networking
 * walk-through (pod -> veth -> bridge -> iptables DNAT/conntrack -> routing -> overlay ->
 * the other node -> pod): each step is a stage of the same name in ./stages.
 *
 *   pod eth0    pod-ingress -> arp -> bridge -> reassemble -> conntrack -> service-nat ->
 *               local -> route -> policy -> source-nat -> deliver | encap | to-uplink
 *   uplink      uplink-ingress -> arp -> reassemble -> conntrack -> service-nat -> local ->
 *               route -> policy -> source-nat -> deliver | encap | to-uplink
 *   overlay     decap -> reassemble -> conntrack -> service-nat -> local -> route ->
 *               policy -> source-nat -> deliver | encap | to-uplink
 *
 * A stage that does not apply to a frame (the bridge for a routed frame, service NAT for
 * an established connection) passes it on. Then transmit sends what the walk decided.
 */
import { POD_ARP, UPLINK_ARP } from './stages/arp.js';
import { BRIDGE } from './stages/bridge.js';
import { CONNTRACK } from './stages/conntrack.js';
import { DECAP } from './stages/decap.js';
import { DELIVER } from './stages/deliver.js';
import { ENCAP } from './stages/encap.js';
import { LOCAL } from './stages/local.js';
import { POD_INGRESS } from './stages/pod-ingress.js';
import { POLICY } from './stages/policy.js';
import { REASSEMBLE } from './stages/reassemble.js';
import { ROUTE } from './stages/route.js';
import { SERVICE_NAT } from './stages/service-nat.js';
import { SOURCE_NAT } from './stages/source-nat.js';
import type { Stage } from './stages/stage.js';
import { TO_UPLINK } from './stages/to-uplink.js';
import { UPLINK_INGRESS } from './stages/uplink-ingress.js';

/** From conntrack on, every way in shares the routed half of the path. */
const ROUTED: readonly Stage[] = [CONNTRACK, SERVICE_NAT, LOCAL, ROUTE, POLICY, SOURCE_NAT, DELIVER, ENCAP, TO_UPLINK];

export const POD_PATH: readonly Stage[] = [POD_INGRESS, POD_ARP, BRIDGE, REASSEMBLE, ...ROUTED];
export const UPLINK_PATH: readonly Stage[] = [UPLINK_INGRESS, UPLINK_ARP, REASSEMBLE, ...ROUTED];
export const OVERLAY_PATH: readonly Stage[] = [DECAP, REASSEMBLE, ...ROUTED];
