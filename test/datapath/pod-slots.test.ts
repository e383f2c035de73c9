/**
 * A pod's address taken again: the ReplicaSet's replacement for a deleted pod may get the
 * deleted pod's IP, and the node may add the new pod before it has removed the old one.
 * The routed path (from the overlay, the uplink, or another subnet) finds local pods by
 * address; removing the old pod must not take the address from the new one.
 */
import test from 'ava';
import { demoFiles } from '../../src/cluster/demo.js';
import { loadCluster } from '../../src/cluster/load.js';
import { seededRandom } from '../../src/cluster/random.js';
import { NO_POD } from '../../src/datapath/tables.js';
import { FakePort } from '../helpers/fake-port.js';
import { wireCluster } from '../helpers/datapath.js';

function demo() {
  const r = loadCluster(demoFiles(), { random: seededRandom(1), name: 'slots' });
  if (!r.ok) throw new Error('the demo does not load');
  return wireCluster(r.cluster, { flows: false });
}

test('removing a pod whose address a newer pod already holds leaves the address to the newer pod', (t) => {
  const c = demo();
  const old = c.cluster.pods.find((p) => p.labels.app === 'webui')!;
  const { pipeline } = c.nodeOf(old);
  const oldSlot = pipeline.tables.podSlotOf(old.ip);
  t.not(oldSlot, NO_POD);
  const newSlot = pipeline.addPod('default/replacement', old.ip, old.mac + 1, new FakePort('default/replacement'));
  t.not(newSlot, oldSlot);
  pipeline.removePod(oldSlot);
  t.is(pipeline.tables.podSlotOf(old.ip), newSlot);
  pipeline.removePod(newSlot);
  t.is(pipeline.tables.podSlotOf(old.ip), NO_POD);
});

test('removing a pod frees its address when no other pod holds it', (t) => {
  const c = demo();
  const pod = c.cluster.pods.find((p) => p.labels.app === 'webui')!;
  const { pipeline } = c.nodeOf(pod);
  pipeline.removePod(pipeline.tables.podSlotOf(pod.ip));
  t.is(pipeline.tables.podSlotOf(pod.ip), NO_POD);
});
