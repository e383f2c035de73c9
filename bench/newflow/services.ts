/**
 * The synthetic cluster of the new-flow benchmark, and kube-proxy's two rule layouts for it.
 *
 * One node; a backend pod and CLIENT_COUNT client pods on it; N ClusterIP services, all
 * with one TCP port (80, named http, to the backend's 8080) and the backend as their one
 * endpoint. Service i has the cluster IP 10.100.0.1 + i, so the last of N is known without
 * asking. The same YAML starts the podwire cluster and, loaded here with podwire's own
 * loader, gives the model kube-proxy's rules are generated from: both sides see the same
 * services, addresses and endpoint.
 *
 * - iptables: src/netfilter's kube-proxy generator (the rules a kube-proxy in iptables mode
 *   writes for this node), as iptables-restore input with the built-in chains' jumps.
 * - nftables: kube-proxy's nftables mode (1.31) for ClusterIP services, written here: one
 *   verdict map keyed by `ip daddr . meta l4proto . th dport` sends a new connection to the
 *   service's chain, which picks an endpoint with `numgen` and jumps to the endpoint's
 *   chain, which DNATs. The base chains, the mark and masquerade chains and the filter
 *   checks (cluster-ips, no-endpoint services, firewall) are kube-proxy's; NodePort and
 *   LoadBalancer parts are left out, as no service here has them.
 */
import { createHash } from 'node:crypto';
import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { computeEndpoints, type ServicePortEndpoints } from '../../src/cluster/endpoints.js';
import { loadCluster } from '../../src/cluster/load.js';
import type { Cluster, Pod } from '../../src/cluster/model.js';
import { seededRandom } from '../../src/cluster/random.js';
import { formatCidr, formatIpv4 } from '../../src/packet/addr.js';
import { renderKubeProxyRestore } from '../../src/kube/iptables-save.js';
import {
  MASQUERADE_MARK,
  endpointText,
  kubeProxyRules,
  planServicePorts,
  type ServicePortPlan,
} from '../../src/kube/kube-proxy.js';

/**
 * Client pods, each a source address. A SYN is a new flow only from a (source, port) pair
 * not used before: 64,512 ports per address last a fraction of a second at the rates
 * measured, so the load comes from several addresses (podwire's anti-spoofing allows a
 * pod only its own, hence several pods).
 */
export const CLIENT_COUNT = 16;
export const SERVICE_PORT = 80;
export const TARGET_PORT = 8080;
const PORT_NAME = 'http';
const FIRST_SERVICE_IP = 0x0a640001; // 10.100.0.1, inside the default service CIDR 10.96.0.0/12
const NODE_NAME = 'node-1';
/** The node's address on the outside network, as kube-proxy's rules need one; unused by these flows. */
const NODE_ADDRESS = 0xc000020b; // 192.0.2.11

export function serviceIp(index: number): string {
  return formatIpv4((FIRST_SERVICE_IP + index) >>> 0);
}

export const serviceName = (index: number): string => `svc-${index}`;
export const clientName = (k: number): string => `client-${k}`;
export const BACKEND = 'backend';

/**
 * The cluster as Kubernetes YAML. `conntrackMax` sizes podwire's connection table: the
 * benchmark leaves unanswered SYN_SENT entries behind (120 s), so it must hold every flow
 * of a run.
 */
export function clusterYaml(name: string, services: number, conntrackMax: number): string {
  const docs: string[] = [
    `# podwire new-flow benchmark: ${services} ClusterIP services, all to one backend pod.
apiVersion: podwire.dev/v1alpha1
kind: Cluster
metadata: {name: ${name}}
spec: {nodes: 1, conntrackMax: ${conntrackMax}}
`,
    `apiVersion: v1
kind: Pod
metadata: {name: ${BACKEND}, labels: {app: ${BACKEND}}}
spec: {nodeName: ${NODE_NAME}, containers: [{name: main, image: busybox}]}
`,
  ];
  for (let k = 0; k < CLIENT_COUNT; k++) {
    docs.push(`apiVersion: v1
kind: Pod
metadata: {name: ${clientName(k)}}
spec: {nodeName: ${NODE_NAME}, containers: [{name: main, image: busybox}]}
`);
  }
  for (let i = 0; i < services; i++) {
    docs.push(`apiVersion: v1
kind: Service
metadata: {name: ${serviceName(i)}}
spec: {clusterIP: ${serviceIp(i)}, selector: {app: ${BACKEND}}, ports: [{name: ${PORT_NAME}, port: ${SERVICE_PORT}, targetPort: ${TARGET_PORT}}]}
`);
  }
  return docs.join('---\n');
}

export interface SyntheticCluster {
  readonly services: number;
  readonly yaml: string;
  readonly model: Cluster;
  /** The node's bridge address: every pod's default gateway. */
  readonly gateway: string;
  readonly backendIp: string;
  readonly clientIps: readonly string[];
  /** The last service's cluster IP: where every SYN goes. */
  readonly targetIp: string;
}

/** Loads the YAML with podwire's loader, as `podwire up` would. */
export function syntheticCluster(name: string, services: number, conntrackMax: number): SyntheticCluster {
  const yaml = clusterYaml(name, services, conntrackMax);
  const loaded = loadCluster([{ path: `${name}.yaml`, text: yaml }], { random: seededRandom(1) });
  if (!loaded.ok) throw new Error(`newflow: the synthetic cluster does not load: ${loaded.errors.map(formatDiagnostic).join('; ')}`);
  const model = loaded.cluster;
  const pod = (podName: string): Pod => {
    const found = model.pods.find((p) => p.name === podName);
    if (found === undefined) throw new Error(`newflow: no pod ${podName} in the model`);
    return found;
  };
  const clientIps: string[] = [];
  for (let k = 0; k < CLIENT_COUNT; k++) clientIps.push(formatIpv4(pod(clientName(k)).ip));
  return {
    services,
    yaml,
    model,
    gateway: formatIpv4(model.nodes[0].gateway),
    backendIp: formatIpv4(pod(BACKEND).ip),
    clientIps,
    targetIp: serviceIp(services - 1),
  };
}

/** The endpoints controller's view, every pod ready (as the node reports once its containers run). */
function readyEndpoints(model: Cluster): ServicePortEndpoints[] {
  return computeEndpoints(model, new Map(model.pods.map((p) => [`${p.namespace}/${p.name}`, true])));
}

function plans(model: Cluster): ServicePortPlan[] {
  return planServicePorts({ endpoints: readyEndpoints(model), nodeName: NODE_NAME });
}

/** kube-proxy's iptables rules for the node, as iptables-restore input (built-in chains' jumps included). */
export function iptablesRestoreText(c: SyntheticCluster): string {
  const ruleSet = kubeProxyRules({ cluster: c.model, endpoints: readyEndpoints(c.model), nodeName: NODE_NAME, nodeAddress: NODE_ADDRESS });
  const text = renderKubeProxyRestore(ruleSet, { includeBuiltinChains: true });
  const captured = text.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES ') && l.includes(' cluster IP')).length;
  if (captured !== c.services) throw new Error(`newflow: kube-proxy's rules capture ${captured} cluster IPs, not ${c.services}`);
  return text;
}

// ---------------------------------------------------------------------------------------
// kube-proxy's nftables layout.

export const NFT_TABLE = 'kube-proxy';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** kube-proxy's hashAndTruncate: the first 8 characters of base32(sha256(name)), "-", name. */
function hashAndTruncate(name: string): string {
  const digest = createHash('sha256').update(name).digest();
  let bits = 0;
  let acc = 0;
  let out = '';
  for (let i = 0; out.length < 8; i++) {
    acc = ((acc << 8) | digest[i]) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < 8) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  const full = `${out}-${name}`;
  return full.length > 200 ? `${full.slice(0, 197)}...` : full;
}

/** "namespace/name/protocol/portName", kube-proxy's servicePortChainNameBase. */
function chainBase(plan: Pick<ServicePortPlan, 'serviceKey' | 'name' | 'protocol'>): string {
  const [namespace, name] = plan.serviceKey.split('/');
  const portName = plan.name.includes(':') ? plan.name.slice(plan.name.indexOf(':') + 1) : '';
  return `${namespace}/${name}/${plan.protocol}/${portName}`;
}

const serviceChain = (plan: ServicePortPlan): string => `service-${hashAndTruncate(chainBase(plan))}`;

function endpointChain(plan: Pick<ServicePortPlan, 'serviceKey' | 'name' | 'protocol'>, ip: number, port: number): string {
  return `endpoint-${hashAndTruncate(`${chainBase(plan)}__${endpointText(ip, port).replace(':', '/')}`)}`;
}

/** The whole table as `nft -f` input. */
export function nftablesText(c: SyntheticCluster): string {
  const { podCIDR, serviceCIDR } = c.model.settings;
  const mark = `0x${MASQUERADE_MARK.toString(16)}`;
  const all = plans(c.model);
  const lines: string[] = [
    `table ip ${NFT_TABLE} {`,
    '  comment "rules for kube-proxy"',
    '  set cluster-ips { type ipv4_addr; comment "Active ClusterIPs"; }',
    '  set nodeport-ips { type ipv4_addr; comment "IPs that accept NodePort traffic"; }',
    '  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"; }',
    '  map service-nodeports { type inet_proto . inet_service : verdict; comment "NodePort traffic"; }',
    '  map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to services with no endpoints"; }',
    '  map no-endpoint-nodeports { type inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to service nodeports with no endpoints"; }',
    '  map firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment "destinations that are subject to LoadBalancerSourceRanges"; }',
    '  chain filter-prerouting { type filter hook prerouting priority -110; policy accept; ct state new jump firewall-check; }',
    '  chain filter-input { type filter hook input priority -110; policy accept; ct state new jump nodeport-endpoints-check; ct state new jump service-endpoints-check; }',
    '  chain filter-forward { type filter hook forward priority -110; policy accept; ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }',
    '  chain filter-output { type filter hook output priority -110; policy accept; ct state new jump service-endpoints-check; ct state new jump firewall-check; }',
    '  chain filter-output-post-dnat { type filter hook output priority -90; policy accept; ct state new jump cluster-ips-check; }',
    '  chain nat-prerouting { type nat hook prerouting priority -100; policy accept; jump services; }',
    '  chain nat-output { type nat hook output priority -100; policy accept; jump services; }',
    '  chain nat-postrouting { type nat hook postrouting priority 100; policy accept; jump masquerading; }',
    `  chain mark-for-masquerade { mark set mark or ${mark}; }`,
    `  chain masquerading { mark and ${mark} == 0 return; mark set mark xor ${mark}; masquerade fully-random; }`,
    '  chain services {',
    '    ip daddr . meta l4proto . th dport vmap @service-ips',
    '    ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    '  }',
    '  chain firewall-check { ip daddr . meta l4proto . th dport vmap @firewall-ips; }',
    '  chain service-endpoints-check { ip daddr . meta l4proto . th dport vmap @no-endpoint-services; }',
    '  chain nodeport-endpoints-check { ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports; }',
    '  chain cluster-ips-check {',
    '    ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    `    ip daddr ${formatCidr(serviceCIDR)} drop comment "Drop traffic to unallocated ClusterIPs"`,
    '  }',
  ];
  const serviceElements: string[] = [];
  const clusterIps: string[] = [];
  for (const plan of all) {
    if (plan.endpoints.length === 0) continue;
    const svc = serviceChain(plan);
    const ip = formatIpv4(plan.clusterIP);
    const choices = plan.endpoints.map((ep, i) => `${i} : goto ${endpointChain(plan, ep.ip, ep.port)}`).join(', ');
    lines.push(
      `  chain ${svc} {`,
      `    ip daddr ${ip} ${plan.protocol} dport ${plan.port} ip saddr != ${formatCidr(podCIDR)} jump mark-for-masquerade`,
      `    numgen random mod ${plan.endpoints.length} vmap { ${choices} }`,
      '  }',
    );
    for (const ep of plan.endpoints) {
      const chain = endpointChain(plan, ep.ip, ep.port);
      lines.push(
        `  chain ${chain} {`,
        `    ip saddr ${formatIpv4(ep.ip)} jump mark-for-masquerade`,
        `    meta l4proto ${plan.protocol} dnat to ${endpointText(ep.ip, ep.port)}`,
        '  }',
      );
    }
    serviceElements.push(`${ip} . ${plan.protocol} . ${plan.port} : goto ${svc}`);
    clusterIps.push(ip);
  }
  lines.push('}');
  if (serviceElements.length !== c.services) throw new Error(`newflow: ${serviceElements.length} of ${c.services} services have an endpoint in the nftables layout`);
  // Elements after the table: their verdicts name chains that must exist first.
  if (serviceElements.length > 0) {
    lines.push(`add element ip ${NFT_TABLE} service-ips { ${serviceElements.join(', ')} }`);
    lines.push(`add element ip ${NFT_TABLE} cluster-ips { ${[...new Set(clusterIps)].join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}
