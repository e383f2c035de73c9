/**
 * A pod's /etc/resolv.conf, computed the way the kubelet does (pkg/kubelet/network/dns):
 *
 * - ClusterFirst (the default) and ClusterFirstWithHostNet: the cluster DNS address; search
 *   `<ns>.svc.<domain> svc.<domain> <domain>` followed by the host's search domains; `ndots:5`.
 *   (podwire pods never use the host network, so the two policies are the same here.)
 * - Default: the host's resolv.conf (nameservers, search, options), passed in as text.
 * - None: nothing but the pod's dnsConfig.
 *
 * Then dnsConfig is merged in: nameservers and searches appended with duplicates dropped,
 * options merged by name with dnsConfig winning. Finally the kubelet's limits cut the result:
 * at most 3 nameservers, at most 32 search domains, none longer than 253 characters, and the
 * search line at most 2048 characters (domains dropped from the end).
 */

import { formatIpv4 } from '../packet/addr.js';
import type { DnsPolicy, PodDnsConfig } from './model.js';

export const MAX_RESOLV_NAMESERVERS = 3;
export const MAX_RESOLV_SEARCHES = 32;
export const MAX_RESOLV_SEARCH_CHARS = 2048;
const MAX_SEARCH_DOMAIN_CHARS = 253;
const CLUSTER_FIRST_OPTIONS = ['ndots:5'];

export interface ResolverConfig {
  readonly nameservers: readonly string[];
  readonly searches: readonly string[];
  /** `name` or `name:value`, as on the options line. */
  readonly options: readonly string[];
}

export interface PodDnsSettings {
  readonly namespace: string;
  readonly dnsPolicy: DnsPolicy;
  readonly dnsConfig?: PodDnsConfig;
}

export interface ClusterDnsSettings {
  readonly dnsIP: number;
  readonly clusterDomain: string;
}

/** Reads a resolv.conf as the kubelet does: the last `search` line wins, options merge by name. */
export function parseResolvConf(text: string): ResolverConfig {
  const nameservers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.startsWith(';')) continue;
    const [keyword, ...args] = line.trim().split(/\s+/);
    if (keyword === 'nameserver' && args.length > 0) nameservers.push(args[0]);
    // Trailing dots are dropped so "a.b" and "a.b." count once against the limits.
    else if (keyword === 'search') searches = args.filter((s) => s !== '.').map((s) => (s.endsWith('.') ? s.slice(0, -1) : s));
    else if (keyword === 'options') options = mergeOptions(options, args);
  }
  return { nameservers, searches, options };
}

export function podResolverConfig(pod: PodDnsSettings, cluster: ClusterDnsSettings, hostResolvConf = ''): ResolverConfig {
  let base: ResolverConfig;
  switch (pod.dnsPolicy) {
    case 'ClusterFirst':
    case 'ClusterFirstWithHostNet': {
      const domain = cluster.clusterDomain;
      base = {
        nameservers: [formatIpv4(cluster.dnsIP)],
        searches: [`${pod.namespace}.svc.${domain}`, `svc.${domain}`, domain, ...parseResolvConf(hostResolvConf).searches],
        options: CLUSTER_FIRST_OPTIONS,
      };
      break;
    }
    case 'Default':
      base = parseResolvConf(hostResolvConf);
      break;
    case 'None':
      base = { nameservers: [], searches: [], options: [] };
      break;
  }
  const extra = pod.dnsConfig;
  const merged: ResolverConfig =
    extra === undefined
      ? base
      : {
          nameservers: [...base.nameservers, ...extra.nameservers],
          searches: [...base.searches, ...extra.searches],
          options: mergeOptions(
            base.options,
            extra.options.map((o) => (o.value === undefined || o.value === '' ? o.name : `${o.name}:${o.value}`)),
          ),
        };
  return {
    nameservers: unique(merged.nameservers).slice(0, MAX_RESOLV_NAMESERVERS),
    searches: fitSearches(unique(merged.searches)),
    options: merged.options,
  };
}

/** The file's text: nameserver lines, then one search line and one options line if non-empty. */
export function formatResolvConf(config: ResolverConfig): string {
  const lines = config.nameservers.map((ns) => `nameserver ${ns}`);
  if (config.searches.length > 0) lines.push(`search ${config.searches.join(' ')}`);
  if (config.options.length > 0) lines.push(`options ${config.options.join(' ')}`);
  return lines.map((l) => `${l}\n`).join('');
}

export function renderResolvConf(pod: PodDnsSettings, cluster: ClusterDnsSettings, hostResolvConf = ''): string {
  return formatResolvConf(podResolverConfig(pod, cluster, hostResolvConf));
}

/** Options keyed by the text before `:`; a later one replaces an earlier one in its place. */
function mergeOptions(existing: readonly string[], added: readonly string[]): string[] {
  const byName = new Map<string, string>();
  for (const option of [...existing, ...added]) {
    const colon = option.indexOf(':');
    byName.set(colon < 0 ? option : option.slice(0, colon), option);
  }
  return [...byName.values()];
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

/** The kubelet's formDNSSearchFitsLimits. */
function fitSearches(searches: readonly string[]): string[] {
  const kept = searches.slice(0, MAX_RESOLV_SEARCHES).filter((s) => s.length <= MAX_SEARCH_DOMAIN_CHARS);
  while (kept.join(' ').length > MAX_RESOLV_SEARCH_CHARS) kept.pop();
  return kept;
}
