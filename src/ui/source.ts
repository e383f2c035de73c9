/**
 * What the web view's server reads a cluster through: the same state and the same node
 * control sockets `podwire status`, `trace`, `observe` and `capture` read. The command
 * that starts the server (cli/commands/ui.ts) supplies it, so the server is a client of
 * the nodes' ops and never a second way of knowing the cluster.
 */
import type { Cluster } from '../cluster/model.js';
import type { MapStatus } from './map.js';

export interface ClusterSnapshot {
  readonly cluster: Cluster;
  readonly status: MapStatus;
}

export interface ClusterSource {
  readonly name: string;
  /** The model and the nodes' word on it, read afresh; undefined when the cluster is not running. */
  snapshot(): Promise<ClusterSnapshot | undefined>;
  /** The control socket of a node run on this machine; undefined when this machine cannot reach it. */
  nodeSocket(node: string): string | undefined;
  /** Calls `changed` when the cluster's model may have changed (a pod scaled, deleted); returns the way to stop. */
  watch?(changed: () => void): () => void;
}
