/**
 * networking.k8s.io/v1 NetworkPolicy, validated as the API server does. Enforcement is the
 * netfilter layer's job; this only turns the YAML into a typed rule set.
 */

import { cidrContains, formatCidr, type Cidr } from '../packet/addr.js';
import { decodeCidr, decodeLabelSelector, decodeMetadata, decodePortRef, decodeProtocol, type ObjectMeta } from './decode-common.js';
import type {
  IpBlock,
  LabelSelector,
  NetworkPolicyEgressRule,
  NetworkPolicyIngressRule,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyType,
} from './model.js';
import { checkDnsSubdomain } from './names.js';
import type { Field, FieldMap } from './yaml-reader.js';

export interface NetworkPolicyDecl {
  readonly kind: 'NetworkPolicy';
  readonly meta: ObjectMeta;
  readonly podSelector: LabelSelector;
  readonly policyTypes: readonly PolicyType[];
  readonly ingress: readonly NetworkPolicyIngressRule[];
  readonly egress: readonly NetworkPolicyEgressRule[];
}

export function decodeNetworkPolicy(root: FieldMap): NetworkPolicyDecl | undefined {
  const meta = decodeMetadata(root, true, checkDnsSubdomain);
  const spec = root.get('spec').mapOrEmpty();
  if (spec === undefined) return undefined;
  const podSelectorField = spec.get('podSelector');
  // Required, but `{}` (every pod in the namespace) is the common value.
  const podSelector = podSelectorField.require() ? decodeLabelSelector(podSelectorField) : undefined;

  const ingress: NetworkPolicyIngressRule[] = [];
  for (const item of spec.get('ingress').list() ?? []) {
    const rule = decodeRule(item, 'from');
    if (rule !== undefined) ingress.push({ from: rule.peers, ports: rule.ports });
  }
  const egressField = spec.get('egress');
  const egress: NetworkPolicyEgressRule[] = [];
  for (const item of egressField.list() ?? []) {
    const rule = decodeRule(item, 'to');
    if (rule !== undefined) egress.push({ to: rule.peers, ports: rule.ports });
  }

  const typesField = spec.get('policyTypes');
  let policyTypes: PolicyType[];
  if (typesField.present) {
    policyTypes = [];
    const seen = new Set<string>();
    for (const item of typesField.list() ?? []) {
      const t = item.present ? item.oneOf(['Ingress', 'Egress'] as const) : item.invalid('must be one of Ingress, Egress');
      if (t === undefined) continue;
      if (seen.has(t)) item.error(`duplicate policy type ${JSON.stringify(t)}`);
      else policyTypes.push(t);
      seen.add(t);
    }
  } else {
    // The API server's default: Ingress always, Egress only if the policy has egress rules.
    policyTypes = egressField.present ? ['Ingress', 'Egress'] : ['Ingress'];
  }

  if (meta === undefined || podSelector === undefined) return undefined;
  return { kind: 'NetworkPolicy', meta, podSelector, policyTypes, ingress, egress };
}

function decodeRule(item: Field, peersKey: 'from' | 'to'): { peers: NetworkPolicyPeer[]; ports: NetworkPolicyPort[] } | undefined {
  const m = item.mapOrEmpty();
  if (m === undefined) return undefined;
  const peers: NetworkPolicyPeer[] = [];
  for (const p of m.get(peersKey).list() ?? []) {
    const peer = decodePeer(p);
    if (peer !== undefined) peers.push(peer);
  }
  const ports: NetworkPolicyPort[] = [];
  for (const p of m.get('ports').list() ?? []) {
    const port = decodePolicyPort(p);
    if (port !== undefined) ports.push(port);
  }
  return { peers, ports };
}

function decodePeer(item: Field): NetworkPolicyPeer | undefined {
  const m = item.itemMap();
  if (m === undefined) return undefined;
  const podSelector = decodeLabelSelector(m.get('podSelector'));
  const namespaceSelector = decodeLabelSelector(m.get('namespaceSelector'));
  const ipBlockField = m.get('ipBlock');
  const ipBlock = decodeIpBlock(ipBlockField);
  const selectors = m.has('podSelector') || m.has('namespaceSelector');
  if (ipBlockField.present && selectors) {
    item.error('must set either ipBlock or podSelector/namespaceSelector, not both');
    return undefined;
  }
  if (!ipBlockField.present && !selectors) {
    item.error('must set one of podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  return {
    ...(podSelector !== undefined && { podSelector }),
    ...(namespaceSelector !== undefined && { namespaceSelector }),
    ...(ipBlock !== undefined && { ipBlock }),
  };
}

function decodeIpBlock(field: Field): IpBlock | undefined {
  const m = field.map();
  if (m === undefined) return undefined;
  const cidrField = m.get('cidr');
  const cidr = cidrField.require() ? decodeCidr(cidrField, true) : undefined;
  const except: Cidr[] = [];
  for (const e of m.get('except').list() ?? []) {
    const c = e.present ? decodeCidr(e, true) : e.invalid('must be an IPv4 CIDR such as 10.0.0.0/16');
    if (c === undefined) continue;
    if (cidr !== undefined && !isStrictSubset(c, cidr)) {
      e.error(`must be a strict subset of cidr ${formatCidr(cidr)}, got ${formatCidr(c)}`);
      continue;
    }
    except.push(c);
  }
  return cidr && { cidr, except };
}

function isStrictSubset(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix > outer.prefix && cidrContains(outer, inner.base);
}

function decodePolicyPort(item: Field): NetworkPolicyPort | undefined {
  const m = item.mapOrEmpty();
  if (m === undefined) return undefined;
  const protocol = decodeProtocol(m.get('protocol'));
  const portField = m.get('port');
  const port = decodePortRef(portField);
  const endField = m.get('endPort');
  let endPort: number | undefined;
  if (endField.present) {
    endPort = endField.integer('must be an integer between 1 and 65535', 1, 65535);
    if (endPort !== undefined) {
      if (!portField.present) endField.error('may not be set without port');
      else if (typeof port === 'string') endField.error('may not be set when port is a name');
      else if (port !== undefined && endPort < port) endField.error(`must be greater than or equal to port (${port}), got ${endPort}`);
    }
  }
  return {
    protocol,
    ...(port !== undefined && { port }),
    ...(endPort !== undefined && { endPort }),
  };
}
