/**
 * The podwire `Cluster` document (podwire.dev/v1alpha1): what Kubernetes gets from its
 * installer rather than from objects — the nodes and the network settings.
 */

import { decodeConntrack, DEFAULT_CONNTRACK } from './decode-conntrack.js';
import { cidrContains, formatCidr, parseCidr, parseIpv4, type Cidr } from '../packet/addr.js';
import { checked, checkedStrings, checkedValue, decodeCidr, decodeLabels } from './decode-common.js';
import { MAX_NODES, nodeCapacity } from './ipam.js';
import type { ConntrackSettings, Labels } from './model.js';
import { checkClusterName, checkDnsLabel, checkDnsSubdomain } from './names.js';
import type { Field, FieldMap } from './yaml-reader.js';

export interface NodeDecl {
  readonly name: string;
  readonly labels: Labels;
}

export interface ClusterDecl {
  readonly kind: 'Cluster';
  readonly name: string;
  readonly nodes: readonly NodeDecl[];
  readonly podCIDR: Cidr;
  readonly serviceCIDR: Cidr;
  readonly clusterDomain: string;
  readonly vni: number;
  readonly mtu: number;
  /** The outside network every node has an uplink on (NodePorts, egress, LB users). */
  readonly externalCIDR: Cidr;
  /** Where LoadBalancer services without spec.loadBalancerIP get their address. */
  readonly loadBalancerCIDR: Cidr;
  /** Connections each node tracks at most (the kernel's nf_conntrack_max). */
  readonly conntrackMax: number;
  readonly conntrack: ConntrackSettings;
  /** Resolvers for names outside the cluster domain; empty: the host's resolv.conf. */
  readonly dnsUpstreams: readonly string[];
  /** TTL of the cluster DNS's records (the kubernetes plugin's `ttl`). */
  readonly dnsTTLSeconds: number;
  /** UDP segmentation offload on the overlay socket (see ClusterSettings.overlayOffload). */
  readonly overlayOffload: boolean;
  /** How long a node may go without renewing its lease before it is NotReady. */
  readonly nodeGracePeriodSeconds: number;
  /** TTL of a node's subnet lease in etcd (several machines). */
  readonly subnetLeaseTTLSeconds: number;
  /** Flow events each node keeps for `podwire observe`. */
  readonly flowBufferCapacity: number;
}

export const DEFAULT_CLUSTER_NAME = 'podwire';
export const DEFAULT_NODE_COUNT = 2;
export const DEFAULT_POD_CIDR = '10.244.0.0/16';
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
export const DEFAULT_VNI = 1;
/** flannel's VXLAN default: 1500 less the 50 bytes of outer Ethernet, IPv4, UDP and VXLAN headers. */
export const DEFAULT_MTU = 1450;
/** TEST-NET-1 (RFC 5737): documentation space, never routed, lives only in the ext namespace. */
export const DEFAULT_EXTERNAL_CIDR = '192.0.2.0/24';
/** The top quarter of the outside network, as a MetalLB address pool would be. */
export const DEFAULT_LOAD_BALANCER_CIDR = '192.0.2.192/26';
const MIN_MTU = 68; // the smallest MTU IPv4 allows (RFC 791)
const MAX_MTU = 65535 - 50; // the encapsulated frame must still fit one IPv4 datagram
const MAX_VNI = 0xffffff;
/** The tenth address of the service CIDR is cluster DNS, so the block needs at least 16. */
const MAX_SERVICE_PREFIX = 28;

export const DEFAULT_CONNTRACK_MAX = 262_144;

/**
 * CoreDNS's kubernetes plugin defaults to 5 s; kubeadm's Corefile (`ttl 30`) and podwire keep
 * 30. The plugin takes 0 to 3600.
 */
export const DEFAULT_DNS_TTL_SECONDS = 30;
const MAX_DNS_TTL_SECONDS = 3600;

/** Issue 11's "grace period (default 20 s, configurable)"; at most an hour. */
export const DEFAULT_NODE_GRACE_PERIOD_SECONDS = 20;
const MAX_NODE_GRACE_PERIOD_SECONDS = 3600;

/** flannel renews its subnet lease well before it expires; podwire's default TTL is 20 s. */
export const DEFAULT_SUBNET_LEASE_TTL_SECONDS = 20;
/** etcd grants leases of 5 s at least (its minimum TTL follows the election timeout). */
const MIN_SUBNET_LEASE_TTL_SECONDS = 5;
const MAX_SUBNET_LEASE_TTL_SECONDS = 3600;

/** Hubble keeps 4,095 flows a node by default; podwire 4,096, up to a million. */
export const DEFAULT_FLOW_BUFFER_CAPACITY = 4096;
const MIN_FLOW_BUFFER_CAPACITY = 16;
const MAX_FLOW_BUFFER_CAPACITY = 1 << 20;

/** Node N's address on the outside network is this far past the network address plus N. */
export const EXTERNAL_NODE_OFFSET = 10;

/** The settings with no Cluster document at all. */
export function defaultClusterDecl(): ClusterDecl {
  return {
    kind: 'Cluster',
    name: DEFAULT_CLUSTER_NAME,
    nodes: numberedNodes(DEFAULT_NODE_COUNT),
    podCIDR: parseCidr(DEFAULT_POD_CIDR)!,
    serviceCIDR: parseCidr(DEFAULT_SERVICE_CIDR)!,
    clusterDomain: DEFAULT_CLUSTER_DOMAIN,
    vni: DEFAULT_VNI,
    mtu: DEFAULT_MTU,
    externalCIDR: parseCidr(DEFAULT_EXTERNAL_CIDR)!,
    loadBalancerCIDR: parseCidr(DEFAULT_LOAD_BALANCER_CIDR)!,
    conntrackMax: DEFAULT_CONNTRACK_MAX,
    conntrack: DEFAULT_CONNTRACK,
    dnsUpstreams: [],
    dnsTTLSeconds: DEFAULT_DNS_TTL_SECONDS,
    overlayOffload: true,
    nodeGracePeriodSeconds: DEFAULT_NODE_GRACE_PERIOD_SECONDS,
    subnetLeaseTTLSeconds: DEFAULT_SUBNET_LEASE_TTL_SECONDS,
    flowBufferCapacity: DEFAULT_FLOW_BUFFER_CAPACITY,
  };
}

function numberedNodes(count: number): NodeDecl[] {
  return Array.from({ length: count }, (_, i) => ({ name: `node-${i + 1}`, labels: {} }));
}

export function decodeCluster(root: FieldMap): ClusterDecl | undefined {
  const defaults = defaultClusterDecl();
  const meta = root.get('metadata').mapOrEmpty();
  const name = meta?.get('name').present ? checked(meta.get('name'), checkClusterName) : defaults.name;
  const spec = root.get('spec').mapOrEmpty();
  if (spec === undefined) return undefined;

  const nodesField = spec.get('nodes');
  const nodes = nodesField.present ? decodeNodes(nodesField) : defaults.nodes;

  const podField = spec.get('podCIDR');
  const podCIDR = podField.present ? decodeCidr(podField, false) : defaults.podCIDR;
  if (podCIDR !== undefined && nodes !== undefined && nodes.length > nodeCapacity(podCIDR)) {
    const room = nodeCapacity(podCIDR);
    podField.error(
      `${formatCidr(podCIDR)} has room for ${room} node${room === 1 ? '' : 's'} (node N gets the N-th /24, the first is unused), the cluster has ${nodes.length}`,
    );
  }

  const serviceField = spec.get('serviceCIDR');
  const serviceCIDR = serviceField.present ? decodeCidr(serviceField, false) : defaults.serviceCIDR;
  if (serviceCIDR !== undefined) {
    if (serviceCIDR.prefix > MAX_SERVICE_PREFIX) {
      serviceField.error(`must be a /${MAX_SERVICE_PREFIX} or larger, to hold the cluster DNS address (the tenth), got ${formatCidr(serviceCIDR)}`);
    } else if (podCIDR !== undefined && (cidrContains(podCIDR, serviceCIDR.base) || cidrContains(serviceCIDR, podCIDR.base))) {
      serviceField.error(`${formatCidr(serviceCIDR)} overlaps the pod CIDR ${formatCidr(podCIDR)}`);
    }
  }

  const domainField = spec.get('clusterDomain');
  const clusterDomain = domainField.present ? checked(domainField, checkDnsSubdomain) : defaults.clusterDomain;
  const vniField = spec.get('vni');
  const vni = vniField.present ? vniField.integer(`must be an integer between 1 and ${MAX_VNI}`, 1, MAX_VNI) : defaults.vni;
  const mtuField = spec.get('mtu');
  const mtu = mtuField.present ? mtuField.integer(`must be an integer between ${MIN_MTU} and ${MAX_MTU}`, MIN_MTU, MAX_MTU) : defaults.mtu;

  const externalField = spec.get('externalCIDR');
  const externalCIDR = externalField.present ? decodeCidr(externalField, false) : defaults.externalCIDR;
  if (externalCIDR !== undefined && externalCIDR.prefix > 24) {
    externalField.error(`must be a /24 or larger (node N is .${EXTERNAL_NODE_OFFSET}+N), got ${formatCidr(externalCIDR)}`);
  }
  const lbField = spec.get('loadBalancerCIDR');
  const loadBalancerCIDR = lbField.present ? decodeCidr(lbField, false) : defaults.loadBalancerCIDR;
  if (loadBalancerCIDR !== undefined && externalCIDR !== undefined && !cidrContains(externalCIDR, loadBalancerCIDR.base)) {
    lbField.error(`${formatCidr(loadBalancerCIDR)} must lie inside the outside network ${formatCidr(externalCIDR)}, where nodes answer ARP for it`);
  }

  const ctField = spec.get('conntrackMax');
  const conntrackMax = ctField.present ? ctField.integer('must be an integer between 1 and 16777216', 1, 16_777_216) : defaults.conntrackMax;
  const conntrack = decodeConntrack(spec.get('conntrack'));
  const upstreamField = spec.get('dnsUpstreams');
  const dnsUpstreams = upstreamField.present ? checkedStrings(upstreamField, (v) => (parseIpv4(v) === undefined ? `must be an IPv4 address, got ${JSON.stringify(v)}` : undefined)) : defaults.dnsUpstreams;

  const dnsTtlField = spec.get('dnsTTLSeconds');
  const dnsTTLSeconds = dnsTtlField.present
    ? dnsTtlField.integer(`must be an integer number of seconds between 0 and ${MAX_DNS_TTL_SECONDS}`, 0, MAX_DNS_TTL_SECONDS)
    : defaults.dnsTTLSeconds;

  const offloadField = spec.get('overlayOffload');
  const overlayOffload = offloadField.present ? offloadField.boolean() : defaults.overlayOffload;

  const graceField = spec.get('nodeGracePeriodSeconds');
  const nodeGracePeriodSeconds = graceField.present
    ? graceField.integer(`must be an integer number of seconds between 1 and ${MAX_NODE_GRACE_PERIOD_SECONDS}`, 1, MAX_NODE_GRACE_PERIOD_SECONDS)
    : defaults.nodeGracePeriodSeconds;
  const ttlField = spec.get('subnetLeaseTTLSeconds');
  const subnetLeaseTTLSeconds = ttlField.present
    ? ttlField.integer(`must be an integer number of seconds between ${MIN_SUBNET_LEASE_TTL_SECONDS} and ${MAX_SUBNET_LEASE_TTL_SECONDS}`, MIN_SUBNET_LEASE_TTL_SECONDS, MAX_SUBNET_LEASE_TTL_SECONDS)
    : defaults.subnetLeaseTTLSeconds;
  const flowsField = spec.get('flowBufferCapacity');
  const flowBufferCapacity = flowsField.present
    ? flowsField.integer(`must be an integer number of flows between ${MIN_FLOW_BUFFER_CAPACITY} and ${MAX_FLOW_BUFFER_CAPACITY}`, MIN_FLOW_BUFFER_CAPACITY, MAX_FLOW_BUFFER_CAPACITY)
    : defaults.flowBufferCapacity;

  if (
    flowBufferCapacity === undefined ||
    nodeGracePeriodSeconds === undefined ||
    subnetLeaseTTLSeconds === undefined ||
    overlayOffload === undefined ||
    conntrackMax === undefined ||
    conntrack === undefined ||
    dnsUpstreams === undefined ||
    dnsTTLSeconds === undefined ||
    externalCIDR === undefined ||
    loadBalancerCIDR === undefined ||
    name === undefined ||
    nodes === undefined ||
    podCIDR === undefined ||
    serviceCIDR === undefined ||
    clusterDomain === undefined ||
    vni === undefined ||
    mtu === undefined
  ) {
    return undefined;
  }
  return {
    kind: 'Cluster',
    name,
    nodes,
    podCIDR,
    serviceCIDR,
    clusterDomain,
    vni,
    mtu,
    externalCIDR,
    loadBalancerCIDR,
    conntrackMax,
    conntrack,
    dnsUpstreams,
    dnsTTLSeconds,
    overlayOffload,
    nodeGracePeriodSeconds,
    subnetLeaseTTLSeconds,
    flowBufferCapacity,
  };
}

/** `nodes: 3`, or a list whose items are names or `{ name, labels }`. */
function decodeNodes(field: Field): NodeDecl[] | undefined {
  const countExpectation = `must be a node count between 1 and ${MAX_NODES} or a list of nodes`;
  if (field.shape !== 'list') {
    const count = field.shape === 'scalar' ? field.integer(countExpectation, 1, MAX_NODES) : field.invalid(countExpectation);
    return count === undefined ? undefined : numberedNodes(count);
  }
  const items = field.list() ?? [];
  if (items.length === 0) return field.invalid('must list at least one node');
  if (items.length > MAX_NODES) return field.invalid(`must list at most ${MAX_NODES} nodes`);
  const nodes: NodeDecl[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const asMap = item.shape === 'map' ? item.map() : undefined;
    const nameField = asMap === undefined ? item : asMap.get('name');
    // Node names become the kubernetes.io/hostname label and part of link names: DNS labels.
    const name = asMap === undefined ? checkedValue(item, checkDnsLabel) : nameField.require() ? checked(nameField, checkDnsLabel) : undefined;
    const labels = asMap === undefined ? {} : decodeLabels(asMap.get('labels'));
    if (name === undefined) continue;
    if (seen.has(name)) {
      nameField.error(`duplicate node name ${JSON.stringify(name)}`);
      continue;
    }
    seen.add(name);
    nodes.push({ name, labels });
  }
  return nodes.length === items.length ? nodes : undefined;
}
