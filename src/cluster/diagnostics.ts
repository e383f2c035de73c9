/**
 * Errors and warnings about the user's YAML. They are values, collected rather than thrown, so
 * that one run reports every problem in every file; the caller decides how to print them.
 */

export interface Diagnostic {
  readonly file: string;
  /** 1-based index of the YAML document within the file. */
  readonly document: number;
  /** `Kind name` of the object, when the document got far enough to have one. */
  readonly object?: string;
  /** 1-based line in the file. */
  readonly line?: number;
  /** Field path such as `spec.containers[0].ports[1].containerPort`; empty for the whole object. */
  readonly path: string;
  readonly reason: string;
}

/**
 * One line, most specific place last:
 * `demo.yaml: document 2 (Deployment web), line 14: spec.replicas: must be ..., got "three"`.
 */
export function formatDiagnostic(d: Diagnostic): string {
  const object = d.object === undefined ? '' : ` (${d.object})`;
  const line = d.line === undefined ? '' : `, line ${d.line}`;
  const path = d.path === '' ? '' : `${d.path}: `;
  return `${d.file}: document ${d.document}${object}${line}: ${path}${d.reason}`;
}

/** Extends a field path by a map key, quoting keys that would read ambiguously (`a.b/c`). */
export function pathKey(path: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

export function pathIndex(path: string, index: number): string {
  return `${path}[${index}]`;
}
