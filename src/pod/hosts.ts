/**
 * The pod's /etc/hosts and hostname as the kubelet makes them (pkg/kubelet/kubelet_pods.go:
 * managedHostsFileContent, hostsEntriesFromHostAliases, truncatePodHostnameIfNeeded).
 */
import { formatIpv4 } from '../packet/addr.js';
import type { Pod } from '../cluster/model.js';

/** A hostname is one DNS label: the kubelet cuts a longer pod name and trims what the cut leaves dangling. */
const HOSTNAME_MAX = 63;

export function podHostname(pod: Pod): string {
  const name = pod.hostname ?? pod.name;
  if (name.length <= HOSTNAME_MAX) return name;
  return name.slice(0, HOSTNAME_MAX).replace(/[-.]+$/, '');
}

/** `hostname.subdomain.namespace.svc.domain` when the pod has a subdomain, as the DNS answers for it. */
export function podFqdn(pod: Pod, clusterDomain: string): string | undefined {
  if (pod.subdomain === undefined) return undefined;
  return `${podHostname(pod)}.${pod.subdomain}.${pod.namespace}.svc.${clusterDomain}`;
}

const MANAGED_HEADER = `# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
`;

export function renderEtcHosts(pod: Pod, clusterDomain: string): string {
  const hostname = podHostname(pod);
  const fqdn = podFqdn(pod, clusterDomain);
  const ip = formatIpv4(pod.ip);
  let text = MANAGED_HEADER + (fqdn !== undefined ? `${ip}\t${fqdn}\t${hostname}\n` : `${ip}\t${hostname}\n`);
  if (pod.hostAliases.length > 0) {
    text += '\n# Entries added by HostAliases.\n';
    for (const alias of pod.hostAliases) text += `${formatIpv4(alias.ip)}\t${alias.hostnames.join('\t')}\n`;
  }
  return text;
}
