/**
 * A node agent that joins a cluster held in etcd (`podwire join`): it connects, waits for
 * the cluster to exist, registers and takes its subnet lease, follows the store, stands in
 * the controller election, makes its own outside namespace, then runs as any node agent.
 * Stopping it (SIGTERM, `podwire leave`, `podwire down`) leaves the cluster: pods removed,
 * the lease revoked so every peer drops this node's subnet at once.
 */
import { formatIpv4 } from '../packet/addr.js';
import type { Labels } from '../cluster/model.js';
import { EtcdClusterStore } from '../store/cluster-store.js';
import type { EtcdConnection } from '../store/etcd.js';
import { NodeAgent } from './agent.js';
import { EtcdAgentState } from './etcd-agent-state.js';
import { Membership } from './membership.js';
import type { StatePaths } from './names.js';
import { createOutside, nodeOutsideNamespaceName } from './outside.js';
import { destroyNamespace } from './netns.js';
import { addressInterface, defaultRouteAddress } from './underlay-address.js';
import { VXLAN_PORT } from '../packet/vxlan.js';

export interface JoinOptions {
  readonly connection: EtcdConnection;
  readonly cluster: string;
  readonly node: string;
  readonly underlay?: number;
  readonly underlayPort?: number;
  readonly labels: Labels;
  readonly paths: StatePaths;
  readonly pcapDir?: string;
  readonly metricsPort?: number;
  readonly log: (line: string) => void;
  /** The cluster was removed from the store (`podwire down`): the process should end. */
  readonly onRemoved: () => void;
}

export interface JoinedNode {
  readonly agent: NodeAgent;
  /** Leaves the cluster and tears the node down; idempotent. */
  stop(): Promise<void>;
}

/** How long a joining agent waits for `podwire apply` to have created the cluster. */
const WAIT_FOR_CLUSTER_MS = 30_000;

export async function joinCluster(opts: JoinOptions): Promise<JoinedNode> {
  const { log } = opts;
  let state: EtcdAgentState | undefined;
  const store = EtcdClusterStore.open(opts.connection, opts.cluster, { log, onReachability: (reachable, why) => state?.reachability(reachable, why) });
  const cleanups: (() => Promise<void>)[] = [() => store.close()];
  const cleanup = async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch((err: Error) => log(`teardown: ${err.message}`));
  };
  try {
    const deadline = Date.now() + WAIT_FOR_CLUSTER_MS;
    for (;;) {
      const view = await store.read();
      if (view.exists) break;
      if (Date.now() > deadline) throw new Error(`cluster ${opts.cluster} is not in the store (podwire apply --name ${opts.cluster} --store ... creates it)`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const underlay = opts.underlay !== undefined ? await addressInterface(opts.underlay) : await defaultRouteAddress();
    log(`underlay ${formatIpv4(underlay.address)} on ${underlay.iface} (MTU ${underlay.mtu})`);
    const membership = new Membership(store, {
      node: opts.node,
      underlay: underlay.address,
      underlayPort: opts.underlayPort ?? VXLAN_PORT,
      labels: opts.labels,
      log,
      onLease: () => state?.leaseChanged(),
    });
    await membership.join();
    // From here on a failure leaves through the state's end(), which leaves the cluster.
    const joinedState = new EtcdAgentState(store, membership, opts.node, log);
    state = joinedState;
    let removed = false;
    const stopFollowing = await store.follow((change) => {
      joinedState.changed(change);
      if (change.removed && !removed) {
        removed = true;
        log(`cluster ${opts.cluster} was removed from the store: tearing this node down`);
        opts.onRemoved();
      }
    });
    cleanups.push(stopFollowing);
    const settings = store.view.settings();
    const cluster = store.view.cluster();
    if (settings === undefined || cluster === undefined) throw new Error(`cluster ${opts.cluster} does not load from the store`);
    await joinedState.campaign(settings.subnetLeaseTTLSeconds);
    const outside = nodeOutsideNamespaceName(opts.cluster, opts.node);
    await createOutside(outside, settings.externalCIDR, settings.externalGateway);
    cleanups.push(() => destroyNamespace(outside));
    const agent = await NodeAgent.start(cluster, opts.node, {
      paths: opts.paths,
      state: joinedState,
      underlayPort: opts.underlayPort ?? VXLAN_PORT,
      underlayMtu: underlay.mtu,
      outsideNamespace: outside,
      log,
      ...(opts.pcapDir !== undefined ? { pcapDir: opts.pcapDir } : {}),
      ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
    });
    let stopping: Promise<void> | undefined;
    return {
      agent,
      stop: () =>
        (stopping ??= (async () => {
          await agent.stop();
          await cleanup();
        })()),
    };
  } catch (err) {
    await state?.end().catch(() => undefined);
    await cleanup();
    throw err;
  }
}
