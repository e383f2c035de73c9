/**
 * Checks across objects, as the API server would make them while `kubectl apply` creates the
 * objects one by one: one Cluster document at most, no two objects of one kind with the same
 * namespace and name, and every namespaced object in a namespace that exists. Objects that fail
 * are dropped, so that they do not cause further, confusing errors downstream.
 *
 * A namespace may be declared anywhere in the input, even after the objects in it: the input is
 * read as one desired state, not as a sequence of requests.
 */

import type { Declared } from './documents.js';

/** Namespaces every cluster has without being asked. */
export const BUILTIN_NAMESPACES: readonly string[] = ['default', 'kube-system'];

/** `invalidNamespaces`: declared, but in a document with errors; objects in them are not blamed. */
export function checkObjects(declared: readonly Declared[], invalidNamespaces: ReadonlySet<string> = new Set()): Declared[] {
  const namespaces = new Set([...BUILTIN_NAMESPACES, ...invalidNamespaces]);
  for (const d of declared) if (d.decl.kind === 'Namespace') namespaces.add(d.decl.meta.name);

  const kept: Declared[] = [];
  const seen = new Map<string, Declared>();
  let cluster: Declared | undefined;
  for (const d of declared) {
    const decl = d.decl;
    if (decl.kind === 'Cluster') {
      if (cluster !== undefined) {
        d.root.error(`only one Cluster document is allowed; the first is ${where(cluster)}`);
        continue;
      }
      cluster = d;
      kept.push(d);
      continue;
    }
    const { name, namespace } = decl.meta;
    const clusterScoped = decl.kind === 'Namespace' || decl.kind === 'IngressClass';
    const id = clusterScoped ? `${decl.kind} ${name}` : `${decl.kind} ${namespace}/${name}`;
    const first = seen.get(id);
    if (first !== undefined) {
      decl.meta.nameField.error(`${id} is already defined in ${where(first)}`);
      continue;
    }
    seen.set(id, d);
    if (!clusterScoped && !namespaces.has(namespace)) {
      decl.meta.namespaceField.error(`namespace ${JSON.stringify(namespace)} does not exist (declare it with a Namespace document)`);
      continue;
    }
    kept.push(d);
  }
  return kept;
}

function where(d: Declared): string {
  return `${d.origin.file} document ${d.origin.document}`;
}
