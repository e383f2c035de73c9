import test from 'ava';
import { formatIpv4 } from '../../src/packet/addr.js';
import { demoFiles } from '../../src/cluster/demo.js';
import { loadCluster } from '../../src/cluster/load.js';
import type { Cluster } from '../../src/cluster/model.js';
import { deletePod, MutationError, scaleDeployment } from '../../src/cluster/mutate.js';
import { seededRandom } from '../../src/cluster/random.js';

function demo(): Cluster {
  const r = loadCluster(demoFiles(), { random: seededRandom(7) });
  if (!r.ok) throw new Error('demo does not load');
  return r.cluster;
}

const replicas = (c: Cluster) => c.pods.filter((p) => p.owner?.name === 'deploy-nginx');

test('scaling up adds replicas named from the template, spread and addressed without clashes', (t) => {
  const before = demo();
  const after = scaleDeployment(before, 'default', 'deploy-nginx', 6, seededRandom(1));
  const pods = replicas(after);
  t.is(pods.length, 6);
  t.is(after.deployments[0].pods.length, 6);
  t.is(after.deployments[0].replicas, 6);
  for (const p of pods) t.regex(p.name, new RegExp(`^deploy-nginx-${before.deployments[0].podTemplateHash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
  const ips = after.pods.map((p) => p.ip);
  t.is(new Set(ips).size, ips.length, 'no two pods share an address');
  t.deepEqual(
    after.nodes.map((n) => after.pods.filter((p) => p.node === n.name).length),
    [4, 3],
    'six replicas and the client, spread: the fewest-pods node takes each new one',
  );
  for (const p of pods) t.is(p.labels['app'], 'webui');
  t.deepEqual(before.pods.length, 4, 'the input is not changed');
});

test('scaling down removes the newest replicas first', (t) => {
  const up = scaleDeployment(demo(), 'default', 'deploy-nginx', 5, seededRandom(1));
  const names = up.deployments[0].pods;
  const down = scaleDeployment(up, 'default', 'deploy-nginx', 2, seededRandom(1));
  t.deepEqual(replicas(down).map((p) => p.name), names.slice(0, 2));
  t.true(down.pods.some((p) => p.name === 'client'), 'other pods stay');
  const zero = scaleDeployment(down, 'default', 'deploy-nginx', 0, seededRandom(1));
  t.is(replicas(zero).length, 0);
  t.is(replicas(scaleDeployment(zero, 'default', 'deploy-nginx', 1, seededRandom(2))).length, 1, 'from zero, the template still makes pods');
});

test("deleting a deployment's pod brings a replacement with a new name and address", (t) => {
  const c = demo();
  const victim = replicas(c)[0];
  const { cluster, replacement } = deletePod(c, 'default', victim.name, seededRandom(3));
  t.truthy(replacement);
  t.not(replacement!.name, victim.name);
  t.false(cluster.pods.some((p) => p.name === victim.name));
  t.is(replicas(cluster).length, 3);
  t.false(c.pods.filter((p) => p !== victim).some((p) => p.ip === replacement!.ip), formatIpv4(replacement!.ip));
  const plain = deletePod(c, 'default', 'client', seededRandom(3));
  t.is(plain.replacement, undefined, 'a bare pod is simply gone');
  t.is(plain.cluster.pods.length, 3);
});

test('unknown names and bad counts are clear errors', (t) => {
  const c = demo();
  t.throws(() => scaleDeployment(c, 'default', 'nope', 2, seededRandom(1)), { instanceOf: MutationError, message: /deployment default\/nope not found \(deployments in default: deploy-nginx\)/ });
  t.throws(() => scaleDeployment(c, 'default', 'deploy-nginx', -1, seededRandom(1)), { message: /must be an integer/ });
  t.throws(() => deletePod(c, 'default', 'ghost', seededRandom(1)), { message: 'pod default/ghost not found' });
});
