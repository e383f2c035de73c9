/**
 * A node agent's store when the cluster lives in etcd (several machines): the view the
 * watch keeps current gives the desired cluster, the endpoints the controller wrote and
 * every other node's subnet lease; the membership keeps this node's lease, heartbeat and
 * pod status; and the agent stands in the controller election, running the controllers
 * while it leads.
 *
 * When etcd cannot be reached the view keeps what it last saw, so the node forwards on
 * with it and says "store unreachable"; the watch resumes (or re-lists) when etcd is back.
 */
import type { Cluster, Node } from '../cluster/model.js';
import type { Endpoint, ServicePortEndpoints } from '../cluster/endpoints.js';
import { formatCidr } from '../packet/addr.js';
import type { Lease } from '../overlay/peers.js';
import { Controller } from '../controller/controller.js';
import { parseSubnetKey } from '../controller/subnets.js';
import type { EtcdClusterStore } from '../store/cluster-store.js';
import { joinEndpoints, type PodContainersStatus } from '../store/records.js';
import type { ViewChange } from '../store/view.js';
import type { AgentState } from './agent-state.js';
import type { Membership } from './membership.js';

export class EtcdAgentState implements AgentState {
  private listener: (() => void) | undefined;
  private controller: Controller | undefined;
  private resign: (() => Promise<void>) | undefined;
  private reachable = true;
  private unreachableSince: number | undefined;
  private unreachableWhy = '';
  /** Leave the cluster on end() (SIGTERM, `podwire leave`) rather than only stop renewing. */
  leaveOnEnd = true;

  constructor(
    private readonly store: EtcdClusterStore,
    private readonly membership: Membership,
    private readonly nodeName: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Fed by the store's watch (see node/main.ts). */
  changed(change: ViewChange): void {
    this.controller?.changed(change);
    // Heartbeats matter to the controller alone: a renewal is not a change to reconcile.
    if (Object.entries(change).some(([what, changed]) => changed && what !== 'heartbeats')) this.listener?.();
  }

  /** Fed by the store connection. */
  reachability(reachable: boolean, why: string): void {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    if (!reachable) {
      this.unreachableSince = Date.now();
      this.unreachableWhy = why;
      this.log(`store unreachable (${why}): forwarding on with the state last seen, retrying with backoff`);
    } else {
      const away = this.unreachableSince !== undefined ? ` after ${((Date.now() - this.unreachableSince) / 1000).toFixed(1)} s` : '';
      this.unreachableSince = undefined;
      this.log(`store reachable again${away}: catching up`);
    }
  }

  /** Stands in the controller election; runs the controllers while this agent leads. */
  async campaign(ttlSeconds: number): Promise<void> {
    this.resign = await this.store.kv.campaign(this.store.keys.controller, this.nodeName, ttlSeconds, (leading) => {
      if (leading && this.controller === undefined) {
        this.log('controller: this node leads the cluster\'s controllers now');
        this.controller = new Controller(this.store, { log: (line) => this.log(line) });
      } else if (!leading && this.controller !== undefined) {
        this.log('controller: this node no longer leads');
        const stopping = this.controller;
        this.controller = undefined;
        void stopping.stop();
      }
    });
  }

  begin(): void {
    // The membership was joined before the agent started (it gave the node its subnet).
  }

  desired(): Cluster | undefined {
    return this.store.view.exists ? this.store.view.cluster() : undefined;
  }

  readiness(): Map<string, boolean> {
    const view = this.store.view;
    return view.podReadiness(view.readyNodes());
  }

  /**
   * The controller's endpoints, with this node's own pods as `readiness` has them: the
   * store's lag what this node sees first-hand, and a pod that stops being ready here
   * leaves the local tables at once.
   */
  endpoints(cluster: Cluster, readiness: ReadonlyMap<string, boolean>): ServicePortEndpoints[] {
    const stale = (e: Endpoint) => e.node === this.nodeName && e.pod !== undefined && readiness.has(e.pod) && readiness.get(e.pod) !== e.ready;
    return joinEndpoints(cluster.services, this.store.view.endpointRecords).map((spe) =>
      spe.endpoints.some(stale) ? { ...spe, endpoints: spe.endpoints.map((e) => (stale(e) ? { ...e, ready: !e.ready } : e)) } : spe,
    );
  }

  /** Every other node's subnet lease; none while this node has lost its own (it stops forwarding). */
  peers(_cluster: Cluster, self: Node): Lease[] {
    if (!this.membership.held) return [];
    const leases: Lease[] = [];
    for (const [key, s] of this.store.view.subnets) {
      if (s.node === self.name) continue;
      const subnet = parseSubnetKey(key);
      if (subnet === undefined) continue;
      leases.push({ node: s.node, subnet, vtepMac: s.vtepMac, underlayAddr: s.publicIP, underlayPort: s.underlayPort });
    }
    return leases;
  }

  publishReadiness(pods: ReadonlyMap<string, boolean>, containers: ReadonlyMap<string, PodContainersStatus>): void {
    this.membership.publishPods(pods, containers);
  }

  publishMetricsPort(port: number): void {
    this.membership.publishMetricsPort(port);
  }

  watch(onChange: () => void): () => void {
    this.listener = onChange;
    return () => {
      this.listener = undefined;
    };
  }

  /** A lost or regained lease changes the peers: the agent reconciles. */
  leaseChanged(): void {
    this.listener?.();
  }

  readyNodes(): string[] {
    return [...this.store.view.readyNodes()].sort();
  }

  describe(): Record<string, unknown> {
    const subnet = this.membership.subnet;
    return {
      store: 'etcd',
      reachable: this.reachable,
      ...(this.reachable ? {} : { unreachable: `store unreachable since ${new Date(this.unreachableSince ?? 0).toISOString()}: ${this.unreachableWhy}` }),
      revision: this.store.view.revision,
      subnetLease: this.membership.held ? 'held' : 'lost',
      ...(subnet !== undefined ? { subnet: formatCidr(subnet) } : {}),
      controller: this.controller !== undefined ? 'leading' : 'standby',
    };
  }

  async end(): Promise<void> {
    this.listener = undefined;
    await this.controller?.stop();
    this.controller = undefined;
    await this.resign?.().catch(() => undefined);
    if (this.leaveOnEnd) await this.membership.leave();
    else this.membership.stop();
  }
}
