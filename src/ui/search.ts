/**
 * The names a pod's resolver asks for, in order, when a program looks up `name`: as
 * glibc's res_search does with the pod's resolv.conf (src/cluster/resolv.ts computes it as
 * the kubelet writes it). A name with at least `ndots` dots is tried as it is first; one
 * with fewer goes through the search list first; a name ending in a dot is only itself.
 * Pure: the server asks the cluster DNS for each in turn.
 */
import type { ResolverConfig } from '../cluster/resolv.js';

/** glibc's default when resolv.conf sets no ndots. */
const DEFAULT_NDOTS = 1;

export function searchCandidates(name: string, config: ResolverConfig): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)];
  const option = config.options.find((o) => o.startsWith('ndots:'));
  const ndots = option === undefined ? DEFAULT_NDOTS : Math.min(15, Number(option.slice('ndots:'.length)) || 0);
  const searched = config.searches.map((domain) => `${name}.${domain}`);
  const dots = name.split('.').length - 1;
  return dots >= ndots ? [name, ...searched] : [...searched, name];
}
