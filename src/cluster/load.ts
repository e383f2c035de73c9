/**
 * The cluster layer's entry point: Kubernetes YAML in, a resolved cluster model (or every
 * problem found) out. Pure: the files' text is passed in (see files.ts to read them) and so is
 * the random source, so a seed reproduces the result.
 */

import { checkObjects } from './checks.js';
import type { Diagnostic } from './diagnostics.js';
import { readDocuments, type SourceFile } from './documents.js';
import type { Cluster } from './model.js';
import type { Random } from './random.js';
import { resolveCluster, type PodPlacement } from './resolve.js';

export type { SourceFile } from './documents.js';

export interface LoadOptions {
  /** Drawn from for generated pod names and UIDs: `seededRandom(n)`, or `Math.random`. */
  readonly random: Random;
  /** The cluster's name from the command line; overrides the Cluster document's. */
  readonly name?: string;
  /** 'defer': pods are bound to no node (the several-machine controller places them); default 'schedule'. */
  readonly placement?: PodPlacement;
}

export type LoadResult =
  | { readonly ok: true; readonly cluster: Cluster; readonly warnings: readonly Diagnostic[] }
  | { readonly ok: false; readonly errors: readonly Diagnostic[]; readonly warnings: readonly Diagnostic[] };

/**
 * Reads every document of every file, checks the objects against each other, then schedules
 * and addresses them. All errors are collected (a bad document does not hide the next one); if
 * there is any, no cluster is returned, so nothing is started from a half-valid input.
 */
export function loadCluster(files: readonly SourceFile[], opts: LoadOptions): LoadResult {
  const read = readDocuments(files);
  const kept = checkObjects(read.declared, read.invalidNamespaces);
  // Without valid node and network settings, scheduling and addressing errors would be noise.
  const cluster = read.clusterInvalid ? undefined : resolveCluster(kept, opts.random, opts.name, opts.placement);
  const order = new Map(files.map((f, i) => [f.path, i]));
  const errors = sortDiagnostics(read.errors, order);
  const warnings = sortDiagnostics(read.warnings, order);
  if (cluster === undefined || errors.length > 0) return { ok: false, errors, warnings };
  return { ok: true, cluster, warnings };
}

/** In reading order: file, document, line (stable, so one line's problems keep their order). */
function sortDiagnostics(list: readonly Diagnostic[], fileOrder: ReadonlyMap<string, number>): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) || a.document - b.document || (a.line ?? 0) - (b.line ?? 0),
  );
}
