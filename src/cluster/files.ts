/**
 * The cluster layer's only I/O: reading the YAML files named on the command line. Kept apart so
 * that everything else stays pure and testable with strings.
 */

import { readFile } from 'node:fs/promises';
import type { SourceFile } from './documents.js';

/** Reads each file as UTF-8, keeping the path as given for messages. Rejects if one cannot be read. */
export async function readSourceFiles(paths: readonly string[]): Promise<SourceFile[]> {
  return Promise.all(paths.map(async (path) => ({ path, text: await readFile(path, 'utf8') })));
}
