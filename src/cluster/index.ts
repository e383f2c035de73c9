/** The cluster layer: Kubernetes YAML to a validated, scheduled and addressed cluster model. */

export * from './model.js';
export { formatDiagnostic, type Diagnostic } from './diagnostics.js';
export { loadCluster, type LoadOptions, type LoadResult, type SourceFile } from './load.js';
export { readSourceFiles } from './files.js';
export { demoFiles, DEMO_PATH, DEMO_YAML } from './demo.js';
export { seededRandom, type Random } from './random.js';
export { equalitySelector, formatSelector, selectorMatches } from './selector.js';
export {
  allocateClusterIps,
  allocatePodIps,
  clusterIndex,
  DNS_SERVICE,
  dnsServiceIP,
  gatewayAddress,
  KUBERNETES_SERVICE,
  kubernetesServiceIP,
  MAX_NODES,
  NODE_BLOCK_PREFIX,
  nodeCapacity,
  nodePodCidr,
  PODS_PER_NODE,
  podMac,
  underlayAddress,
  vtepMac,
  type Allocation,
  type ClusterIpClaim,
} from './ipam.js';
export { allocateNodePorts, NODE_PORT_MAX, NODE_PORT_MIN, type NodePortClaim } from './nodeports.js';
export { schedule, type Placement, type PlacementRequest, type SchedulableNode } from './scheduler.js';
export {
  formatResolvConf,
  parseResolvConf,
  podResolverConfig,
  renderResolvConf,
  type ClusterDnsSettings,
  type PodDnsSettings,
  type ResolverConfig,
} from './resolv.js';
export { NAMESPACE_NAME_LABEL, POD_TEMPLATE_HASH_LABEL } from './resolve.js';
export { CLUSTER_API_VERSION } from './documents.js';
export {
  DEFAULT_CLUSTER_DOMAIN,
  DEFAULT_CLUSTER_NAME,
  DEFAULT_MTU,
  DEFAULT_NODE_COUNT,
  DEFAULT_POD_CIDR,
  DEFAULT_SERVICE_CIDR,
  DEFAULT_VNI,
} from './decode-cluster.js';
