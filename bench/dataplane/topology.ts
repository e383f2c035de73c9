/**
 * What the measurements need from a cluster, whichever dataplane carries it: three pods
 * (srv1 and cli1 on the first node, srv2 on the second), each a network namespace with an
 * address, and, where the dataplane is a process, a way to read what it spent.
 */

export type PodRole = 'srv1' | 'cli1' | 'srv2';

export interface PodRef {
  readonly role: PodRole;
  readonly netns: string;
  /** Dotted IPv4 address of the pod's interface. */
  readonly ip: string;
  /** The pod's interface inside its namespace (eth0 for podwire). */
  readonly ifName: string;
}

/** What one node process has spent and done so far (counters only grow). */
export interface NodeUsage {
  readonly name: string;
  /** CPU time, user + system, all threads (µs). */
  readonly cpuUs: number;
  /** The system part of it: the node's syscalls (TAP and UDP reads and writes, epoll). */
  readonly sysUs: number;
  /** Times the main thread (the event loop) went to sleep and was woken: one per I/O wait. */
  readonly wakeups: number;
  /** Times the main thread was preempted while runnable: CPU contention. */
  readonly preempted: number;
  /** Frames the node has taken in: read from its pods' TAPs plus received from the overlay. */
  readonly frames: number;
  /** Frames the pipeline dropped (any reason). */
  readonly drops: number;
  /** Frames a pod sent that the kernel dropped because the node had not read its TAP in time. */
  readonly tapDropsIn: number;
  /** Frames the node wrote to a TAP that the kernel refused. */
  readonly tapDropsOut: number;
}

/** CPU time and frames of the dataplane's processes at one instant. */
export interface UsageSnapshot {
  readonly atMs: number;
  readonly nodes: readonly NodeUsage[];
}

type Counter = Exclude<keyof NodeUsage, 'name'>;
const COUNTERS: readonly Counter[] = ['cpuUs', 'sysUs', 'wakeups', 'preempted', 'frames', 'drops', 'tapDropsIn', 'tapDropsOut'];

/** The difference of two snapshots, per node and summed. */
export interface Usage extends Readonly<Record<Counter, number>> {
  readonly seconds: number;
  readonly nodes: readonly NodeUsage[];
}

export interface Topology {
  /** 'podwire' or 'kernel': the column of the report. */
  readonly label: string;
  readonly pods: Readonly<Record<PodRole, PodRef>>;
  /** undefined when the dataplane is not a process of its own (the kernel). */
  snapshot(): Promise<UsageSnapshot | undefined>;
}

export function usageBetween(a: UsageSnapshot | undefined, b: UsageSnapshot | undefined): Usage | undefined {
  if (a === undefined || b === undefined) return undefined;
  const nodes = b.nodes.map((nb): NodeUsage => {
    const na = a.nodes.find((n) => n.name === nb.name);
    if (na === undefined) throw new Error(`node ${nb.name} appeared between two snapshots`);
    const delta = Object.fromEntries(COUNTERS.map((k) => [k, nb[k] - na[k]])) as Record<Counter, number>;
    return { name: nb.name, ...delta };
  });
  const sum = (k: Counter) => nodes.reduce((s, n) => s + n[k], 0);
  const totals = Object.fromEntries(COUNTERS.map((k) => [k, sum(k)])) as Record<Counter, number>;
  return { seconds: (b.atMs - a.atMs) / 1000, nodes, ...totals };
}
