/**
 * The life of a packet across the cluster, as the web view draws it: `podwire trace` on
 * the node where the packet enters, then, each time that node encapsulates it to another,
 * the same trace on the receiving node from `node:SENDER` with the packet as it left (NAT
 * applied, the client's address as the inner source). Every hop is the node's own dry run
 * through its real stages (src/node/trace.ts); this module only chains them and names the
 * map's boxes the packet crosses. It asks the nodes through `call`, nothing else.
 */
import { formatIpv4 } from '../packet/addr.js';
import type { Cluster } from '../cluster/model.js';
import type { TraceArgs } from '../node/control-protocol.js';
import type { TraceResult } from '../node/trace.js';
import { addressId, podId } from './map.js';
import { VXLAN_PORT } from '../packet/vxlan.js';
import { ApiError, type TraceFrom } from './requests.js';

/** A node's trace; undefined when the node runs on a machine this one cannot ask (a cluster in etcd). */
export type TraceCall = (node: string, args: TraceArgs) => Promise<TraceResult | undefined>;

export interface TraceHop {
  readonly node: string;
  /** Where the packet entered this node: `pod NS/NAME`, `outside:IP` or `node:NAME`. */
  readonly from: string;
  readonly result: TraceResult;
  /** When the hop ends in the overlay: the VXLAN datagram's outer headers, to the next node. */
  readonly overlay?: { readonly to: string; readonly outer: { readonly src: string; readonly dst: string; readonly vni: number } };
}

export interface TracedPath {
  readonly request: { readonly from: string; readonly to: string; readonly proto: 'tcp' | 'udp' };
  readonly hops: readonly TraceHop[];
  readonly verdict: TraceResult['verdict'];
  readonly outcome: string;
  readonly dropReason?: string;
  /** The map's ids the packet crosses, in order: its source, each node, the Service it was sent to, where it ends. */
  readonly path: readonly string[];
  /** The node the packet goes on to that this machine cannot ask: the rest of the path is traced on its machine. */
  readonly continuesOn?: string;
}

export interface PathRequest {
  readonly from: TraceFrom;
  readonly dst: number;
  readonly port: number;
  readonly proto: 'tcp' | 'udp';
  readonly sport?: number;
  readonly node?: string;
  /** The destination as the user named it (a DNS name), for the heading. */
  readonly toText?: string;
  /** VTEP ports that are not VXLAN's own, by node. */
  readonly underlayPorts?: ReadonlyMap<string, number>;
}

/** The node a packet from `from` enters. */
function entryNode(cluster: Cluster, req: PathRequest): { node: string; from: string; namespace: string; source: string } {
  if (req.from.kind === 'pod') {
    const { namespace, name } = req.from;
    const pod = cluster.pods.find((p) => p.namespace === namespace && p.name === name);
    if (pod === undefined) throw new ApiError(404, `pod ${namespace}/${name} is not in the cluster`);
    return { node: pod.node, from: name, namespace, source: podId(namespace, name) };
  }
  const fromText = `outside:${formatIpv4(req.from.ip)}`;
  const node = req.node ?? cluster.nodes.find((n) => n.externalIP === req.dst)?.name ?? cluster.nodes[0]?.name;
  if (node === undefined) throw new ApiError(409, 'the cluster has no node');
  if (!cluster.nodes.some((n) => n.name === node)) throw new ApiError(404, `node ${node} is not in the cluster`);
  return { node, from: fromText, namespace: 'default', source: `ip:${formatIpv4(req.from.ip)}` };
}

export async function tracePath(cluster: Cluster, req: PathRequest, call: TraceCall): Promise<TracedPath> {
  const entry = entryNode(cluster, req);
  const hops: TraceHop[] = [];
  const path: string[] = [entry.source];
  const target = addressId(cluster, req.dst);
  let node = entry.node;
  let args: TraceArgs = { from: entry.from, namespace: entry.namespace, dst: req.dst, dport: req.port, proto: req.proto, ...(req.sport !== undefined ? { sport: req.sport } : {}) };
  // A packet crosses each node at most once on its way; a longer chain is a loop to show, not follow.
  let previous: TracedPath | undefined;
  for (let i = 0; i <= cluster.nodes.length; i++) {
    const result = await call(node, args);
    if (result === undefined) {
      if (previous === undefined) throw new ApiError(404, `node ${node}, where the packet enters, is not reachable from this machine: run the page on its machine`);
      return { ...previous, path: [...path, `node:${node}`], continuesOn: node };
    }
    path.push(`node:${node}`);
    if (i === 0 && target.startsWith('svc:') && result.stages.some((s) => s.stage === 'service-nat')) path.push(target);
    const next = result.egress?.startsWith('node ') === true ? result.egress.slice('node '.length) : undefined;
    const here = cluster.nodes.find((n) => n.name === node);
    const there = cluster.nodes.find((n) => n.name === next);
    if (next === undefined || result.packet === undefined || here === undefined || there === undefined || i === cluster.nodes.length) {
      hops.push({ node, from: args.from, result });
      if (result.verdict === 'delivered') path.push(endOf(cluster, result));
      return {
        request: requestOf(req, hops[0].from),
        hops,
        verdict: result.verdict,
        outcome: result.outcome,
        ...(result.dropReason !== undefined ? { dropReason: result.dropReason } : {}),
        path,
      };
    }
    hops.push({ node, from: args.from, result, overlay: { to: next, outer: { src: formatIpv4(here.underlay), dst: `${formatIpv4(there.underlay)}:${req.underlayPorts?.get(there.name) ?? VXLAN_PORT}`, vni: cluster.settings.vni } } });
    previous = { request: requestOf(req, hops[0].from), hops: [...hops], verdict: result.verdict, outcome: result.outcome, path: [...path] };
    const p = result.packet;
    args = { from: `node:${node}`, namespace: 'default', dst: p.dst, dport: p.dport, sport: p.sport, src: p.src, proto: req.proto };
    node = next;
  }
  throw new Error('unreachable: the loop returns on its last hop');
}

function requestOf(req: PathRequest, entered: string): TracedPath['request'] {
  return { from: req.from.kind === 'pod' ? `${req.from.namespace}/${req.from.name}` : entered, to: `${req.toText ?? formatIpv4(req.dst)}:${req.port}`, proto: req.proto };
}

/** The map's id of where a delivered packet ends. */
function endOf(cluster: Cluster, result: TraceResult): string {
  const egress = result.egress ?? '';
  if (egress.startsWith('pod ')) {
    const ref = egress.slice('pod '.length);
    return ref.includes('/') ? `pod:${ref}` : podId('default', ref);
  }
  return result.packet !== undefined ? addressId(cluster, result.packet.dst) : egress;
}
