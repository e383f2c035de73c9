/**
 * The loopback underlay a new cluster gets: its name's hash first, then the next index that
 * no other cluster holds, by its cluster.json in the same state root or by a bound socket.
 */
import test from 'ava';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterIndex, withClusterIndex } from '../../src/cluster/ipam.js';
import { formatIpv4 } from '../../src/packet/addr.js';
import { StatePaths } from '../../src/node/names.js';
import { chooseClusterIndex } from '../../src/cli/underlay.js';
import { cluster } from '../cluster/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'pw-underlay-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const named = (name: string) => cluster(`apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nmetadata: {name: ${name}}\nspec: {nodes: 2}\n`);

/** Another name with the same hash as `name`. */
function sameHash(name: string): string {
  for (let i = 0; ; i++) if (`o${i}` !== name && clusterIndex(`o${i}`) === clusterIndex(name)) return `o${i}`;
}

test('a free index is the hash of the name', async (t) => {
  const c = named('ufree');
  const choice = await chooseClusterIndex(c, StatePaths.of(join(root, 'empty'), 'ufree'));
  t.is(choice.cluster.settings.clusterIndex, clusterIndex('ufree'));
  t.deepEqual(choice.passed, []);
});

test('an index recorded by another cluster of the state root is passed over, and the nodes move with it', async (t) => {
  const other = named('uheld');
  mkdirSync(join(root, 'uheld'));
  writeFileSync(join(root, 'uheld', 'cluster.json'), JSON.stringify(other));
  const mine = named(sameHash('uheld'));
  const choice = await chooseClusterIndex(mine, StatePaths.of(root, mine.settings.name));
  const next = (clusterIndex('uheld') % 254) + 1;
  t.deepEqual(choice.passed, [{ index: clusterIndex('uheld'), holder: 'cluster uheld' }]);
  t.is(choice.cluster.settings.clusterIndex, next);
  t.deepEqual(
    choice.cluster.nodes.map((n) => formatIpv4(n.underlay)),
    [`127.77.${next}.1`, `127.77.${next}.2`],
  );
  t.deepEqual(choice.cluster.nodes, withClusterIndex(mine, next).nodes);
  t.not(choice.cluster.nodes[0].vtepMac, mine.nodes[0].vtepMac);
});

test('an index whose VXLAN address is bound (a cluster of another state root) is passed over', async (t) => {
  const mine = named('ubound');
  const index = clusterIndex('ubound');
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(4789, `127.77.${index}.2`, resolve));
  try {
    const choice = await chooseClusterIndex(mine, StatePaths.of(join(root, 'elsewhere'), 'ubound'));
    t.deepEqual(choice.passed, [{ index, holder: `a socket bound to 127.77.${index}.2:4789` }]);
    t.is(choice.cluster.settings.clusterIndex, (index % 254) + 1);
  } finally {
    socket.close();
  }
});
