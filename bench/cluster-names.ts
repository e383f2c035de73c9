/**
 * Names for the clusters a benchmark brings up: each name's underlay addresses
 * (127.77.<index>.N, the index hashed from the name) are bound by no running cluster and
 * differ from the other names', so `up` collides with no cluster someone else started on
 * this machine.
 */
import { readFileSync } from 'node:fs';
import { clusterIndex } from '../src/cluster/ipam.js';

/** One free name per base: the base itself, or the base with a letter after it. */
export function pickClusterNames(bases: readonly string[]): string[] {
  let udp = '';
  try {
    udp = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    // Without /proc/net/udp take the first candidates; a collision makes `up` fail clearly.
  }
  // /proc/net/udp prints a local address as the hex of a little-endian word: 127.77.I.N is "NNII4D7F".
  const taken = new Set(
    udp
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[1] ?? '')
      .filter((a) => /^[0-9A-F]{2}[0-9A-F]{2}4D7F:/.test(a))
      .map((a) => parseInt(a.slice(2, 4), 16)),
  );
  return bases.map((base) => {
    for (let attempt = 0; attempt < 26; attempt++) {
      const name = attempt === 0 ? base : `${base}${String.fromCharCode(96 + attempt)}`;
      if (!taken.has(clusterIndex(name))) {
        taken.add(clusterIndex(name));
        return name;
      }
    }
    return base;
  });
}
