/**
 * The resolved Cluster as JSON text (cluster.json) and back. Plain JSON.stringify would
 * turn the Buffers of ConfigMaps and Secrets into `{"type":"Buffer","data":[...]}`, one
 * array element per byte, and JSON.parse would not make Buffers of them again; here a
 * Buffer is written as `{"$buffer": "<base64>"}` and read back as a Buffer (Node's own form
 * is read too, for a file written with plain JSON.stringify). No key of the model can be
 * `$buffer`: labels and ConfigMap keys have no '$'.
 */

import type { Cluster } from './model.js';

export function encodeClusterJson(cluster: Cluster, indent?: number): string {
  return JSON.stringify(
    cluster,
    function encode(this: Record<string, unknown>, key: string, value: unknown) {
      // `value` has been through Buffer.toJSON already; the holder still has the Buffer.
      const original = this[key];
      return Buffer.isBuffer(original) ? { [BUFFER_KEY]: original.toString('base64') } : value;
    },
    indent,
  );
}

export function decodeClusterJson(text: string): Cluster {
  return JSON.parse(text, (_key, value: unknown) => bufferOf(value) ?? value) as Cluster;
}

const BUFFER_KEY = '$buffer';

function bufferOf(value: unknown): Buffer | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && typeof record[BUFFER_KEY] === 'string') return Buffer.from(record[BUFFER_KEY], 'base64');
  if (keys.length === 2 && record.type === 'Buffer' && Array.isArray(record.data)) return Buffer.from(record.data as number[]);
  return undefined;
}
