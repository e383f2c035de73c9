/**
 * What a node's flows are named and timed with, for its `observe` readers: the directory
 * of its cluster view (made again only when the view or the node's pods changed, not for
 * every slice a follower reads), its NetworkPolicy now, its clock's place on the wall
 * clock, and the random part of its flows' UUIDs.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster } from '../cluster/model.js';
import type { PolicyTables } from '../kube/policy.js';
import { flowUuid, type BuildContext } from '../observe/build.js';
import { FlowDirectory } from '../observe/directory.js';
import { wallTime, type Timestamp } from '../observe/flow.js';

export class FlowContexts {
  private directory: FlowDirectory | undefined;
  private directoryKey = '';
  private directoryCluster: Cluster | undefined;
  private readonly time: (clockNs: number) => Timestamp;
  private readonly nodeId = randomBytes(6).toString('hex');

  constructor(
    private readonly nodeName: string,
    /** Where the path's clock reads zero, in ms since the epoch. */
    clockOriginMs: number,
  ) {
    this.time = wallTime(clockOriginMs);
  }

  /** The context for the view `cluster`, the node's pods on their slots and its policy now. */
  get(cluster: Cluster, slots: ReadonlyMap<string, number>, policy: PolicyTables | undefined): BuildContext {
    const key = [...slots].map(([pod, slot]) => `${pod}=${slot}`).join(',');
    if (this.directory === undefined || cluster !== this.directoryCluster || key !== this.directoryKey) {
      this.directory = new FlowDirectory(cluster, this.nodeName, slots);
      this.directoryCluster = cluster;
      this.directoryKey = key;
    }
    return { nodeName: this.nodeName, directory: this.directory, policy, time: this.time, uuid: (seq) => flowUuid(this.nodeId, seq) };
  }
}
