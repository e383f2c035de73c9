/**
 * Security identities for pods, where Cilium would have allocated one. podwire has no
 * identity allocator, so a pod's identity is derived from what Cilium derives it from, its
 * security labels: the pod's labels without the per-replica ones Cilium's default label
 * filter leaves out (pod-template-hash and its kin), plus its namespace. Every replica of
 * a Deployment therefore has the same identity, on every node and in every run, as under
 * Cilium; the number is FNV-1a of the sorted label strings folded into Cilium's range for
 * label-based identities (256 to 65535), so two different label sets can share a number
 * (about one pair in 65,000): it names, it does not secure anything here.
 */
import type { Labels } from '../cluster/model.js';
import { MINIMAL_NUMERIC_IDENTITY } from './hubble.js';

/** Labels Cilium's default filter keeps out of identities: they differ between replicas. */
const NOT_IDENTITY = new Set(['pod-template-hash', 'controller-revision-hash', 'pod-template-generation', 'statefulset.kubernetes.io/pod-name']);

/** The label Cilium adds to every pod's identity for its namespace. */
export const NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';

const IDENTITY_SPAN = 0x10000 - MINIMAL_NUMERIC_IDENTITY;

/** A pod's security labels as Cilium prints them (`k8s:app=web`), sorted. */
export function securityLabels(namespace: string, labels: Labels): string[] {
  const out = Object.entries(labels)
    .filter(([key]) => !NOT_IDENTITY.has(key))
    .map(([key, value]) => `k8s:${key}=${value}`);
  out.push(`k8s:${NAMESPACE_LABEL}=${namespace}`);
  return out.sort();
}

/** The identity of a set of security labels (see the module's comment). */
export function identityOf(labels: readonly string[]): number {
  let h = 0x811c9dc5;
  for (const label of labels) {
    for (let i = 0; i < label.length; i++) {
      h ^= label.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    // A separator no label holds, so that ["ab", "c"] and ["a", "bc"] differ.
    h ^= 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return MINIMAL_NUMERIC_IDENTITY + ((h >>> 0) % IDENTITY_SPAN);
}
