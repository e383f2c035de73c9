/**
 * A node agent's membership of a cluster held in etcd, as flanneld and the kubelet keep
 * theirs: one etcd lease (the subnet lease's TTL) holds the node's subnet record, its
 * heartbeat and its pods' status, so all three go when the agent dies. Joining takes a
 * /24 with a transaction that creates the subnet key only if it does not exist (the one
 * the node held before when it is still free); renewals rewrite the heartbeat; a lost
 * lease stops this node's overlay forwarding, says so, and is taken again with backoff.
 */
import { hostname } from 'node:os';
import type { Cidr } from '../packet/addr.js';
import { formatCidr } from '../packet/addr.js';
import { vtepMac as vtepMacOf } from '../cluster/ipam.js';
import { renewIntervalMs } from '../cluster/node-lifecycle.js';
import type { Labels } from '../cluster/model.js';
import { chooseSubnet, parseSubnetKey, subnetKey } from '../controller/subnets.js';
import { encodeRecord } from '../store/codec.js';
import type { EtcdClusterStore } from '../store/cluster-store.js';
import type { EtcdLease } from '../store/etcd.js';
import type { Heartbeat, NodeRegistration, PodContainersStatus, PodStatusRecord, SubnetLease } from '../store/records.js';

export interface MembershipOptions {
  readonly node: string;
  readonly underlay: number;
  readonly underlayPort: number;
  readonly labels: Labels;
  readonly log: (line: string) => void;
  /** Called when the lease is lost (false) and when it is held again (true). */
  readonly onLease?: (held: boolean) => void;
  readonly wallClock?: () => number;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

export class Membership {
  private lease: EtcdLease | undefined;
  private registration: NodeRegistration | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private publishedPods: Record<string, boolean> = {};
  private publishedContainers: Record<string, PodContainersStatus> = {};
  private podsDirty = false;
  private metricsPort: number | undefined;
  private stopped = false;
  private reacquiring = false;
  private readonly wallClock: () => number;
  /** From the cluster's settings when joining. */
  private graceSeconds = 0;
  private ttlSeconds = 0;

  constructor(
    private readonly store: EtcdClusterStore,
    private readonly options: MembershipOptions,
  ) {
    this.wallClock = options.wallClock ?? Date.now;
  }

  get subnet(): Cidr | undefined {
    return this.registration?.subnet;
  }

  get held(): boolean {
    return this.lease !== undefined;
  }

  /** Registers the node and takes its subnet. */
  async join(): Promise<NodeRegistration> {
    const settings = (await this.store.read()).settings();
    if (settings === undefined) throw new Error(`cluster ${this.store.keys.cluster} is not in the store (podwire apply --name ${this.store.keys.cluster} --store ... first)`);
    this.graceSeconds = settings.nodeGracePeriodSeconds;
    this.ttlSeconds = settings.subnetLeaseTTLSeconds;
    this.lease = await this.store.kv.grantLease(this.ttlSeconds, (why) => this.leaseLost(why));
    this.registration = await this.takeSubnet(this.lease);
    this.heartbeatTimer = setInterval(() => void this.renew(), renewIntervalMs(this.graceSeconds));
    this.heartbeatTimer.unref();
    return this.registration;
  }

  private async takeSubnet(lease: EtcdLease): Promise<NodeRegistration> {
    const { node, underlay, underlayPort, labels } = this.options;
    const keys = this.store.keys;
    for (let attempt = 0; attempt < 16; attempt++) {
      const view = await this.store.read();
      const settings = view.settings();
      if (settings === undefined) throw new Error(`cluster ${keys.cluster} was removed from the store`);
      const held = [...view.subnets].flatMap(([key, s]) => {
        const subnet = parseSubnetKey(key);
        return subnet === undefined ? [] : [{ subnet, node: s.node }];
      });
      const remembered = view.registrations.get(node)?.subnet;
      const subnet = chooseSubnet(settings.podCIDR, node, held, remembered);
      if (subnet === undefined) throw new Error(`no /24 left in ${formatCidr(settings.podCIDR)} for node ${node}`);
      const vtepMac = vtepMacOf(subnet.base);
      const registration: NodeRegistration = {
        name: node,
        labels,
        underlay,
        underlayPort,
        machine: hostname(),
        subnet,
        vtepMac,
        registeredAt: this.wallClock(),
      };
      const leaseRecord: SubnetLease = { node, publicIP: underlay, underlayPort, backendType: 'vxlan', vni: settings.vni, vtepMac };
      const key = keys.subnet(subnetKey(subnet));
      const mine = view.subnets.get(subnetKey(subnet))?.node === node;
      const ok = await this.store.kv.transact({
        ...(mine ? {} : { absent: [key] }),
        puts: [
          { key, value: encodeRecord(leaseRecord), lease },
          { key: keys.node(node), value: encodeRecord(registration) },
          { key: keys.heartbeat(node), value: encodeRecord(this.heartbeat()), lease },
          { key: keys.podStatus(node), value: encodeRecord(this.podStatusRecord()), lease },
        ],
      });
      if (ok) {
        this.options.log(`subnet lease ${formatCidr(subnet)} acquired (TTL ${lease.ttlSeconds} s)${remembered !== undefined && remembered.base === subnet.base ? ', the one this node held before' : ''}`);
        return registration;
      }
    }
    throw new Error(`could not take a subnet for node ${node}: other nodes kept taking them first`);
  }

  private heartbeat(): Heartbeat {
    const metricsPort = this.metricsPort;
    return { node: this.options.node, renewTime: this.wallClock(), leaseDurationSeconds: this.graceSeconds, ...(metricsPort !== undefined ? { metricsPort } : {}) };
  }

  /** Where the node serves /metrics: carried by every heartbeat from now on, starting with one at once. */
  publishMetricsPort(port: number): void {
    this.metricsPort = port;
    void this.renew();
  }

  private podStatusRecord(): PodStatusRecord {
    return { node: this.options.node, pods: this.publishedPods, containers: this.publishedContainers };
  }

  /** The heartbeat, and the pods' status when it changed since it was last written. */
  private async renew(): Promise<void> {
    if (this.stopped || this.lease === undefined) return;
    const keys = this.store.keys;
    try {
      await this.store.kv.put(keys.heartbeat(this.options.node), encodeRecord(this.heartbeat()), this.lease);
      if (this.podsDirty) await this.flushPods();
    } catch (err) {
      this.options.log(`heartbeat: ${(err as Error).message}`);
    }
  }

  /** This node's pods' readiness; written now, and again with the next renewal if the store is away. */
  publishPods(pods: ReadonlyMap<string, boolean>, containers: ReadonlyMap<string, PodContainersStatus>): void {
    this.publishedPods = Object.fromEntries(pods);
    this.publishedContainers = Object.fromEntries(containers);
    this.podsDirty = true;
    void this.flushPods().catch(() => undefined);
  }

  private async flushPods(): Promise<void> {
    if (this.lease === undefined || this.stopped) return;
    this.podsDirty = false;
    try {
      await this.store.kv.put(this.store.keys.podStatus(this.options.node), encodeRecord(this.podStatusRecord()), this.lease);
    } catch (err) {
      this.podsDirty = true;
      throw err;
    }
  }

  private leaseLost(why: string): void {
    if (this.stopped) return;
    this.lease = undefined;
    const subnet = this.registration !== undefined ? formatCidr(this.registration.subnet) : 'its subnet';
    this.options.log(`subnet lease for ${subnet} lost (${why}): this node stops forwarding for it until it holds it again`);
    this.options.onLease?.(false);
    void this.reacquire();
  }

  private async reacquire(): Promise<void> {
    if (this.reacquiring) return;
    this.reacquiring = true;
    let wait = RETRY_MIN_MS;
    try {
      while (!this.stopped && this.lease === undefined) {
        try {
          const lease = await this.store.kv.grantLease(this.ttlSeconds, (why) => this.leaseLost(why));
          const registration = await this.takeSubnet(lease);
          if (this.registration !== undefined && registration.subnet.base !== this.registration.subnet.base) {
            // The old /24 went to another node meanwhile: this agent's pods' addresses are gone with it.
            this.options.log(`subnet ${formatCidr(this.registration.subnet)} was taken by another node; the agent must be restarted to serve ${formatCidr(registration.subnet)}`);
          }
          this.lease = lease;
          this.registration = registration;
          this.options.onLease?.(true);
          return;
        } catch (err) {
          this.options.log(`taking the subnet lease again: ${(err as Error).message}; retrying in ${wait} ms`);
          await new Promise((r) => setTimeout(r, wait));
          wait = Math.min(RETRY_MAX_MS, wait * 2);
        }
      }
    } finally {
      this.reacquiring = false;
    }
  }

  /**
   * Leaves the cluster: the registration goes (the controller moves this node's pods) and
   * the lease is revoked, so every peer drops this node's subnet at once.
   */
  async leave(): Promise<void> {
    this.stopped = true;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    try {
      await this.store.kv.delete(this.store.keys.node(this.options.node));
      await this.lease?.revoke();
    } catch (err) {
      this.options.log(`leaving: ${(err as Error).message} (peers drop this node when its lease expires)`);
    }
    this.lease = undefined;
  }

  /** Stops renewing without leaving (the process is going away; its lease expires). */
  stop(): void {
    this.stopped = true;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
  }
}
