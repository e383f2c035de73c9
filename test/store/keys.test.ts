/**
 * The store's key layout: golden strings for every record (the layout STORE.md documents is
 * a contract with etcdctl users), and parse as the inverse of the key builders.
 */
import test from 'ava';
import fc from 'fast-check';
import { ClusterKeys, OBJECT_KINDS, isClusterScoped, isObjectKind, type ObjectKind, type StoreRecord } from '../../src/store/keys.js';

const keys = new ClusterKeys('demo');

test('every key builder gives its golden string under /podwire/<cluster>/', (t) => {
  t.is(keys.prefix, '/podwire/demo/');
  t.is(keys.clusterDocument, '/podwire/demo/cluster');
  t.is(keys.object('Service', 'default', 'web'), '/podwire/demo/objects/services/default/web');
  t.is(keys.object('Deployment', 'shop', 'api'), '/podwire/demo/objects/deployments/shop/api');
  t.is(keys.object('NetworkPolicy', 'default', 'deny'), '/podwire/demo/objects/networkpolicies/default/deny');
  t.is(keys.object('ConfigMap', 'default', 'settings'), '/podwire/demo/objects/configmaps/default/settings');
  t.is(keys.object('Secret', 'shop', 'tls'), '/podwire/demo/objects/secrets/shop/tls');
  t.is(keys.object('Namespace', 'ignored', 'shop'), '/podwire/demo/objects/namespaces/shop', 'namespaces are cluster-scoped');
  t.is(keys.object('IngressClass', 'ignored', 'nginx'), '/podwire/demo/objects/ingressclasses/nginx', 'so are IngressClasses');
  t.is(keys.node('node-1'), '/podwire/demo/nodes/node-1');
  t.is(keys.subnet('10.244.1.0-24'), '/podwire/demo/subnets/10.244.1.0-24');
  t.is(keys.heartbeat('node-1'), '/podwire/demo/heartbeats/node-1');
  t.is(keys.podStatus('node-1'), '/podwire/demo/podstatus/node-1');
  t.is(keys.pod('default', 'client'), '/podwire/demo/pods/default/client');
  t.is(keys.nodeStatus('node-2'), '/podwire/demo/nodestatus/node-2');
  t.is(keys.endpoints('default', 'web'), '/podwire/demo/endpoints/default/web');
  t.is(keys.controller, '/podwire/demo/controller');
});

test('golden keys parse to their records', (t) => {
  t.deepEqual(keys.parse('/podwire/demo/cluster'), { type: 'cluster' });
  t.deepEqual(keys.parse('/podwire/demo/objects/services/default/web'), { type: 'object', kind: 'Service', namespace: 'default', name: 'web' });
  t.deepEqual(keys.parse('/podwire/demo/objects/secrets/shop/tls'), { type: 'object', kind: 'Secret', namespace: 'shop', name: 'tls' });
  t.deepEqual(keys.parse('/podwire/demo/objects/namespaces/shop'), { type: 'object', kind: 'Namespace', namespace: '', name: 'shop' });
  t.deepEqual(keys.parse('/podwire/demo/nodes/node-1'), { type: 'nodes', node: 'node-1' });
  t.deepEqual(keys.parse('/podwire/demo/subnets/10.244.1.0-24'), { type: 'subnets', subnet: '10.244.1.0-24' });
  t.deepEqual(keys.parse('/podwire/demo/pods/default/client'), { type: 'pods', namespace: 'default', name: 'client' });
  t.deepEqual(keys.parse('/podwire/demo/endpoints/default/web'), { type: 'endpoints', namespace: 'default', name: 'web' });
  t.deepEqual(keys.parse('/podwire/demo/controller'), { type: 'controller' });
});

test('keys podwire does not write parse to undefined', (t) => {
  for (const key of [
    '/podwire/other/cluster', // another cluster's
    '/podwire/demo', // the prefix without its slash
    '/podwire/demo/',
    '/podwire/democracy/cluster', // a cluster whose name starts with ours
    '/podwire/demo/cluster/extra',
    '/podwire/demo/objects/widgets/default/x', // not a kind apply stores
    '/podwire/demo/objects/services/default', // too short
    '/podwire/demo/objects/services/default/web/x', // too long
    '/podwire/demo/objects/namespaces/shop/x',
    '/podwire/demo/nodes',
    '/podwire/demo/nodes/a/b',
    '/podwire/demo/pods/default',
    '/podwire/demo/subnets/a/b',
    '/registry/pods/default/x',
    'podwire/demo/cluster',
  ]) {
    t.is(keys.parse(key), undefined, key);
  }
});

test('the controller key parses only as itself', (t) => {
  // keys.ts's parse returns { type: 'controller' } for 'controller' without checking the
  // part count, unlike every other record; a foreign key below it is mistaken for the election.
  t.is(keys.parse('/podwire/demo/controller/lock'), undefined);
});

test('isObjectKind knows exactly the stored kinds', (t) => {
  for (const kind of Object.keys(OBJECT_KINDS)) t.true(isObjectKind(kind));
  for (const kind of ['Cluster', 'service', 'configmap', 'ServiceAccount', 'toString', 'constructor', '__proto__']) t.false(isObjectKind(kind), kind);
});

/** A name as podwire's objects and nodes use them: DNS-label-like, never containing '/'. */
const segment = fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/);
const kind = fc.constantFrom(...(Object.keys(OBJECT_KINDS) as ObjectKind[]));

const record: fc.Arbitrary<{ key: (k: ClusterKeys) => string; want: StoreRecord }> = fc.oneof(
  fc.constant({ key: (k: ClusterKeys) => k.clusterDocument, want: { type: 'cluster' } as StoreRecord }),
  fc.constant({ key: (k: ClusterKeys) => k.controller, want: { type: 'controller' } as StoreRecord }),
  fc.tuple(kind, segment, segment).map(([kd, ns, name]) => ({
    key: (k: ClusterKeys) => k.object(kd, ns, name),
    want: { type: 'object', kind: kd, namespace: isClusterScoped(kd) ? '' : ns, name } as StoreRecord,
  })),
  fc.tuple(fc.constantFrom('nodes', 'heartbeats', 'podstatus', 'nodestatus') , segment).map(([type, node]) => ({
    key: (k: ClusterKeys) => (type === 'nodes' ? k.node(node) : type === 'heartbeats' ? k.heartbeat(node) : type === 'podstatus' ? k.podStatus(node) : k.nodeStatus(node)),
    want: { type, node } as StoreRecord,
  })),
  segment.map((subnet) => ({ key: (k: ClusterKeys) => k.subnet(subnet), want: { type: 'subnets', subnet } as StoreRecord })),
  fc.tuple(fc.constantFrom('pods', 'endpoints'), segment, segment).map(([type, namespace, name]) => ({
    key: (k: ClusterKeys) => (type === 'pods' ? k.pod(namespace, name) : k.endpoints(namespace, name)),
    want: { type, namespace, name } as StoreRecord,
  })),
);

test('property: parse(key(x)) gives x back, and another cluster never claims it', (t) => {
  fc.assert(
    fc.property(segment, segment, record, (cluster, other, r) => {
      const k = new ClusterKeys(cluster);
      const key = r.key(k);
      if (!key.startsWith(k.prefix)) return false;
      if (JSON.stringify(k.parse(key)) !== JSON.stringify(r.want)) return false;
      return other === cluster || new ClusterKeys(other).parse(key) === undefined;
    }),
    { numRuns: 500 },
  );
  t.pass();
});
