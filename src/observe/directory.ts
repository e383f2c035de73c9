/**
 * Who an address is, for the flows a node shows: a pod (namespace, name, labels, identity,
 * the Deployment it belongs to, and on its own node the endpoint ID), this node (host), a
 * node of the cluster (remote-node) or anything else (world); and which Service answers at
 * an address and port, as Hubble's endpoint and service getters say it. Built from the
 * cluster model when a reader asks, not on the packet path.
 */
import type { Cluster, Service as ModelService } from '../cluster/model.js';
import { IPPROTO } from '../packet/ipv4.js';
import type { Endpoint, Service } from './flow.js';
import { Identity, RESERVED_IDENTITY_NAMES } from './hubble.js';
import { identityOf, securityLabels } from './identity.js';

/** Where the cluster's DNS is published (zone.ts), served at the cluster DNS address by every node. */
const KUBE_DNS: Service = { name: 'kube-dns', namespace: 'kube-system' };
const DNS_PORT = 53;

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

function reserved(identity: number): Endpoint {
  return { identity, labels: [`reserved:${RESERVED_IDENTITY_NAMES[identity]}`] };
}

function key(addr: number, proto: number, port: number): string {
  return `${addr >>> 0}/${proto}/${port}`;
}

export class FlowDirectory {
  private readonly pods = new Map<number, Endpoint>();
  private readonly podNames = new Map<number, PodRef>();
  private readonly services = new Map<string, Service>();
  private readonly reservedOf = new Map<number, number>();
  private readonly bySlot = new Map<number, Endpoint>();

  constructor(
    readonly cluster: Cluster,
    /** The node these flows are seen on. */
    readonly nodeName: string,
    /** The endpoint ID of each pod running on this node ("namespace/name" to its port slot). */
    localSlots: ReadonlyMap<string, number> = new Map(),
  ) {
    for (const pod of cluster.pods) {
      const labels = securityLabels(pod.namespace, pod.labels);
      const slot = pod.node === nodeName ? localSlots.get(`${pod.namespace}/${pod.name}`) : undefined;
      this.pods.set(pod.ip >>> 0, {
        ...(slot !== undefined ? { ID: slot + 1 } : {}),
        identity: identityOf(labels),
        namespace: pod.namespace,
        labels,
        pod_name: pod.name,
        ...(pod.owner !== undefined ? { workloads: [{ name: pod.owner.name, kind: pod.owner.kind }] } : {}),
      });
      this.podNames.set(pod.ip >>> 0, { namespace: pod.namespace, name: pod.name });
      if (slot !== undefined) this.bySlot.set(slot, this.pods.get(pod.ip >>> 0)!);
    }
    for (const node of cluster.nodes) {
      const identity = node.name === nodeName ? Identity.Host : Identity.RemoteNode;
      for (const addr of [node.gateway, node.podCIDR.base, node.externalIP, node.underlay]) this.reservedOf.set(addr >>> 0, identity);
    }
    // Every node answers the cluster DNS address itself.
    this.reservedOf.set(cluster.settings.dnsIP >>> 0, Identity.Host);
    for (const s of cluster.services) this.addService(s);
    for (const proto of [IPPROTO.UDP, IPPROTO.TCP]) this.services.set(key(cluster.settings.dnsIP, proto, DNS_PORT), KUBE_DNS);
  }

  private addService(s: ModelService): void {
    const service: Service = { name: s.name, namespace: s.namespace };
    for (const port of s.ports) {
      const proto = port.protocol === 'TCP' ? IPPROTO.TCP : port.protocol === 'UDP' ? IPPROTO.UDP : IPPROTO.SCTP;
      for (const vip of [s.clusterIP, s.loadBalancerIngress]) if (vip !== undefined) this.services.set(key(vip, proto, port.port), service);
      if (port.nodePort !== undefined) {
        for (const node of this.cluster.nodes) this.services.set(key(node.externalIP, proto, port.nodePort), service);
      }
    }
  }

  /** The endpoint at `addr`: a pod's, or a reserved identity's. */
  endpoint(addr: number): Endpoint {
    return this.pods.get(addr >>> 0) ?? reserved(this.reservedOf.get(addr >>> 0) ?? Identity.World);
  }

  /** The pod of this node on port `slot`, if one is (for frames without an IPv4 header). */
  endpointAtSlot(slot: number): Endpoint | undefined {
    return this.bySlot.get(slot);
  }

  /** The pod at `addr`, if one is. */
  pod(addr: number): PodRef | undefined {
    return this.podNames.get(addr >>> 0);
  }

  /** The Service answering at `addr`:`port` over `proto` (a cluster IP, a LoadBalancer IP, a NodePort), if one does. */
  service(addr: number, proto: number, port: number): Service | undefined {
    return this.services.get(key(addr, proto, port));
  }
}
