/**
 * What a node agent reads from and writes to its cluster's store, whichever the store is:
 * the desired cluster, the readiness that counts, the endpoints, the overlay peers, and
 * this node's own liveness and pods. The agent itself (agent.ts) only runs pods and the
 * dataplane from it.
 *
 * `FileAgentState` is the one-machine store (a directory, store.ts): every agent renews
 * its lease there, judges every node by the leases (node-lifecycle.ts) and computes the
 * endpoints itself. The several-machine store is etcd-agent-state.ts.
 */
import type { Cluster, Node } from '../cluster/model.js';
import { computeEndpoints, type ServicePortEndpoints } from '../cluster/endpoints.js';
import { leaseAgeSeconds, nodeTransitions, readinessOnReadyNodes, readyNodes, renewIntervalMs } from '../cluster/node-lifecycle.js';
import { FileStore } from '../cluster/store.js';
import { VXLAN_PORT } from '../packet/vxlan.js';
import type { Lease } from '../overlay/peers.js';
import type { PodContainersStatus } from '../store/records.js';

export interface AgentState {
  /** Starts vouching for this node (before its pods exist: bring-up may outlast the grace). */
  begin(): void;
  /** The desired cluster now; undefined while the store has none to give. */
  desired(): Cluster | undefined;
  /** Readiness by "namespace/name" of every pod that counts: only Ready nodes' pods do. */
  readiness(): Map<string, boolean>;
  /**
   * Every Service port's endpoints, given the cluster and that readiness (in which the agent
   * has set its own pods as it sees them now).
   */
  endpoints(cluster: Cluster, readiness: ReadonlyMap<string, boolean>): ServicePortEndpoints[];
  /** Every other node's subnet lease: the overlay's peers. */
  peers(cluster: Cluster, self: Node): Lease[];
  /** This node's pods' readiness, for the others. */
  publishReadiness(pods: ReadonlyMap<string, boolean>, containers: ReadonlyMap<string, PodContainersStatus>): void;
  /**
   * Where this node serves /metrics, for `status` from other machines. The directory store
   * has no need of it: its status asks each node's control socket on this machine.
   */
  publishMetricsPort(port: number): void;
  /** Calls `onChange` whenever something above may have changed. Returns stop(). */
  watch(onChange: () => void): () => void;
  /** The nodes whose pods count now (for status). */
  readyNodes(): string[];
  /** Extra lines for the node's status (store reachability, lease, controller). */
  describe(): Record<string, unknown>;
  /** The agent is stopping: take this node's pods out of every Service. */
  end(): Promise<void>;
}

export class FileAgentState implements AgentState {
  private readonly store: FileStore;
  private ready: ReadonlySet<string> = new Set();
  private leaseProblems = '';
  private lifecycleTimer: NodeJS.Timeout | undefined;
  private onChange: (() => void) | undefined;

  constructor(
    dir: string,
    private readonly nodeName: string,
    private readonly cluster: () => Cluster,
    private readonly log: (line: string) => void,
    private readonly wallClock: () => number = Date.now,
  ) {
    this.store = new FileStore(dir);
  }

  begin(): void {
    // A restarted node's last records still say its pods were ready: clear them before the
    // lease vouches for this node again, or peers would send to pods not yet rebuilt.
    this.store.publishReadiness(this.nodeName, new Map());
    this.renewLease();
    this.judgeNodes();
    this.lifecycleTimer = setInterval(() => {
      this.renewLease();
      if (this.judgeNodes()) this.onChange?.();
    }, renewIntervalMs(this.cluster().settings.nodeGracePeriodSeconds));
  }

  desired(): Cluster | undefined {
    const desired = this.store.readDesired();
    if (desired !== undefined) this.judgeNodes();
    return desired;
  }

  readiness(): Map<string, boolean> {
    // A NotReady node's records do not count: its pods are not ready, whatever they last said.
    return readinessOnReadyNodes(this.store.readReadinessByNode(), this.ready);
  }

  endpoints(cluster: Cluster, readiness: ReadonlyMap<string, boolean>): ServicePortEndpoints[] {
    return computeEndpoints(cluster, readiness);
  }

  /** On one machine every node is declared up front, on its loopback underlay address. */
  peers(cluster: Cluster, self: Node): Lease[] {
    return cluster.nodes
      .filter((n) => n.name !== self.name)
      .map((n) => ({ node: n.name, subnet: n.podCIDR, vtepMac: n.vtepMac, underlayAddr: n.underlay, underlayPort: VXLAN_PORT }));
  }

  /** The directory store keeps readiness only: `podwire get` asks the nodes for their containers. */
  publishReadiness(pods: ReadonlyMap<string, boolean>): void {
    this.store.publishReadiness(this.nodeName, pods);
  }

  publishMetricsPort(): void {}

  watch(onChange: () => void): () => void {
    this.onChange = onChange;
    const stop = this.store.watch(onChange);
    return () => {
      this.onChange = undefined;
      stop();
    };
  }

  readyNodes(): string[] {
    return [...this.ready].sort();
  }

  describe(): Record<string, unknown> {
    return { store: 'file' };
  }

  async end(): Promise<void> {
    if (this.lifecycleTimer !== undefined) clearInterval(this.lifecycleTimer);
    // Out of every Service first, as terminating pods are, rather than after the grace period.
    try {
      this.store.publishReadiness(this.nodeName, new Map());
    } catch (err) {
      this.log(`could not withdraw this node's pods from the store (peers drop them after the grace period): ${(err as Error).message}`);
    }
  }

  private renewLease(): void {
    try {
      this.store.renewLease({ node: this.nodeName, renewTime: this.wallClock(), leaseDurationSeconds: this.cluster().settings.nodeGracePeriodSeconds });
    } catch (err) {
      this.log(`lease renewal failed (peers judge this node NotReady if it keeps failing): ${(err as Error).message}`);
    }
  }

  /**
   * Judges which nodes are Ready by their leases now; says which changed and returns true
   * when any did (the caller then recomputes endpoints).
   */
  private judgeNodes(): boolean {
    let leases;
    try {
      const read = this.store.readLeases();
      leases = read.leases;
      const problems = read.problems.join('; ');
      if (problems !== '' && problems !== this.leaseProblems) this.log(`unreadable leases (those nodes count as NotReady): ${problems}`);
      this.leaseProblems = problems;
    } catch (err) {
      this.log(`reading leases failed, keeping the last judgement: ${(err as Error).message}`);
      return false;
    }
    const now = this.wallClock();
    const grace = this.cluster().settings.nodeGracePeriodSeconds;
    const ready = readyNodes(leases, now, grace);
    const [cameUp, wentDown] = nodeTransitions(this.ready, ready);
    if (cameUp.length === 0 && wentDown.length === 0) return false;
    this.ready = ready;
    for (const name of cameUp) this.log(`node ${name} Ready: its lease is renewed`);
    for (const name of wentDown) {
      const lease = leases.find((l) => l.node === name);
      const age = lease === undefined ? 'no lease' : `lease not renewed for ${leaseAgeSeconds(lease, now).toFixed(1)} s`;
      this.log(`node ${name} NotReady: ${age} (grace ${grace} s); its pods leave every Service`);
    }
    return true;
  }
}
