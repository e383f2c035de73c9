import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { loadCluster, type LoadResult } from '../../src/cluster/load.js';
import type { Cluster } from '../../src/cluster/model.js';
import { seededRandom } from '../../src/cluster/random.js';

/**
 * Strips the common indentation of a template literal's own lines, so YAML can be indented with
 * the test; interpolated values (such as a multi-line document head) are inserted as they are.
 */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const HOLE = '\u0000';
  const text = strings.raw.join(HOLE).replace(/^\n/, '');
  const lines = text.split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  const parts = lines
    .map((l) => l.slice(indent))
    .join('\n')
    .split(HOLE);
  return parts.map((part, i) => (i < values.length ? part + String(values[i]) : part)).join('');
}

export function load(text: string, seed = 1, path = 't.yaml'): LoadResult {
  return loadCluster([{ path, text }], { random: seededRandom(seed) });
}

/** Loads text that must be valid; throws with the messages otherwise. */
export function cluster(text: string, seed = 1): Cluster {
  const r = load(text, seed);
  if (!r.ok) throw new Error(`expected a valid cluster:\n${r.errors.map(formatDiagnostic).join('\n')}`);
  return r.cluster;
}

/** The formatted errors of text that must be invalid. */
export function errors(text: string): string[] {
  const r = load(text);
  if (r.ok) throw new Error('expected errors, got a valid cluster');
  return r.errors.map(formatDiagnostic);
}

export function warnings(text: string): string[] {
  return load(text).warnings.map(formatDiagnostic);
}

/** The first lines of a Pod document named p, to be followed by its spec. */
export const POD_HEAD = yaml`
  apiVersion: v1
  kind: Pod
  metadata:
    name: p
`.trimEnd();
