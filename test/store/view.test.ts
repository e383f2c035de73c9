/**
 * ClusterView as an informer: a snapshot, then watch events, and the assembled Cluster
 * follows them; records that fail their check are reported and left out, and an object is
 * resolved only when what it needs (its Namespace) is in the store.
 */
import test from 'ava';
import { formatCidr, formatIpv4, formatMac } from '../../src/packet/addr.js';
import { demoFiles } from '../../src/cluster/demo.js';
import { loadCluster } from '../../src/cluster/load.js';
import type { Pod } from '../../src/cluster/model.js';
import { seededRandom } from '../../src/cluster/random.js';
import { encodeRecord } from '../../src/store/codec.js';
import type { KeyValue, WatchEvent } from '../../src/store/etcd.js';
import { ClusterKeys } from '../../src/store/keys.js';
import type { NodeRegistration } from '../../src/store/records.js';
import { ClusterView } from '../../src/store/view.js';

const keys = new ClusterKeys('t');
let revision = 0;

function kv(key: string, value: string): KeyValue {
  revision++;
  return { key, value, modRevision: revision, createRevision: revision, lease: '0' };
}
const put = (key: string, value: string): WatchEvent => ({ type: 'put', kv: kv(key, value) });
const del = (key: string): WatchEvent => ({ type: 'delete', key, modRevision: ++revision });

const CLUSTER_DOC = JSON.stringify({ apiVersion: 'podwire.dev/v1alpha1', kind: 'Cluster', metadata: { name: 't' } });

const serviceManifest = (name: string, namespace = 'default') =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { clusterIP: '10.96.0.20', selector: { app: name }, ports: [{ port: 80 }] } });
const namespaceManifest = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

function registration(name: string, third: number): NodeRegistration {
  return {
    name,
    labels: { zone: `z${third}` },
    underlay: 0xc0a80a00 + third,
    underlayPort: 8472,
    machine: `m${third}`,
    subnet: { base: 0x0af40000 + third * 256, prefix: 24 },
    vtepMac: 0x0e777f4d0100 + third,
    registeredAt: 1700000000000,
  };
}

/** A pod as the controller binds it: the demo's first pod, renamed and put on the given node. */
function binding(name: string, node: string): Pod {
  const r = loadCluster(demoFiles(), { random: seededRandom(7) });
  if (!r.ok) throw new Error('demo does not load');
  return { ...r.cluster.pods[0], name, node, owner: undefined };
}

function started(): { view: ClusterView; logged: string[] } {
  const logged: string[] = [];
  const view = new ClusterView(keys, (line) => logged.push(line));
  view.applySnapshot(
    [
      kv(keys.clusterDocument, CLUSTER_DOC),
      kv(keys.object('Service', 'default', 'web'), serviceManifest('web')),
      kv(keys.node('node-1'), encodeRecord(registration('node-1', 1))),
      kv(keys.pod('default', 'a'), encodeRecord({ ...binding('a', 'node-1'), createdAt: 1700000000500 })),
      kv('/podwire/other/cluster', CLUSTER_DOC), // another cluster's key: ignored
    ],
    revision,
  );
  return { view, logged };
}

test('a snapshot assembles settings, registered nodes, bound pods and objects', (t) => {
  const { view, logged } = started();
  t.true(view.exists);
  const c = view.cluster();
  if (c === undefined) return t.fail('no cluster');
  t.is(c.settings.name, 't');
  t.deepEqual(
    c.nodes.map((n) => [n.name, n.index, formatCidr(n.podCIDR), formatIpv4(n.gateway), formatMac(n.gatewayMac), formatIpv4(n.underlay), n.labels.zone, n.labels['kubernetes.io/hostname']]),
    [['node-1', 1, '10.244.1.0/24', '10.244.1.1', '0a:58:0a:f4:01:01', '192.168.10.1', 'z1', 'node-1']],
  );
  t.deepEqual(c.pods.map((p) => `${p.namespace}/${p.name}@${p.node}`), ['default/a@node-1']);
  t.false('createdAt' in c.pods[0], 'the binding time is kept apart from the pod');
  t.is(view.podCreatedAt.get('default/a'), 1700000000500);
  t.deepEqual(c.services.map((s) => [s.name, formatIpv4(s.clusterIP!)]), [['web', '10.96.0.20']]);
  t.deepEqual(c.namespaces.map((n) => n.name), ['default', 'kube-system']);
  t.is(view.problems.size, 0);
  t.deepEqual(logged, []);
});

test('events: an object put and deleted, a pod bound, a node registered; cluster() follows each', (t) => {
  const { view } = started();
  const before = view.cluster();

  let change = view.applyEvents([put(keys.object('Service', 'default', 'api'), serviceManifest('api').replace('10.96.0.20', '10.96.0.21'))], revision);
  t.like(change, { objects: true, nodes: false, pods: false, cluster: false, removed: false });
  const afterPut = view.cluster();
  t.not(afterPut, before, 'reassembled');
  t.deepEqual(afterPut?.services.map((s) => s.name), ['api', 'web']);

  change = view.applyEvents([put(keys.node('node-2'), encodeRecord(registration('node-2', 2))), put(keys.pod('default', 'b'), encodeRecord(binding('b', 'node-2')))], revision);
  t.like(change, { nodes: true, pods: true, objects: false });
  const c = view.cluster();
  t.deepEqual(c?.nodes.map((n) => [n.name, n.index]), [['node-1', 1], ['node-2', 2]]);
  t.deepEqual(c?.pods.map((p) => `${p.name}@${p.node}`), ['a@node-1', 'b@node-2']);
  t.is(view.podCreatedAt.has('default/b'), false);

  view.applyEvents([del(keys.object('Service', 'default', 'web')), del(keys.pod('default', 'a')), del(keys.node('node-1'))], revision);
  const after = view.cluster();
  t.deepEqual(after?.services.map((s) => s.name), ['api']);
  t.deepEqual(after?.pods.map((p) => p.name), ['b']);
  t.deepEqual(after?.nodes.map((n) => n.name), ['node-2']);
  t.false(view.podCreatedAt.has('default/a'));
  t.is(view.revision, revision);
});

test('an unrelated event leaves the assembled cluster as it was', (t) => {
  const { view } = started();
  const c = view.cluster();
  const change = view.applyEvents([put(keys.heartbeat('node-1'), JSON.stringify({ node: 'node-1', renewTime: 1, leaseDurationSeconds: 20 }))], revision);
  t.like(change, { heartbeats: true, objects: false, nodes: false, pods: false, cluster: false });
  t.is(view.cluster(), c);
  t.is(view.heartbeats.get('node-1')?.modRevision, revision);
});

test('deleting the cluster document reports removed, and there is no cluster any more', (t) => {
  const { view } = started();
  const change = view.applyEvents([del(keys.clusterDocument)], revision);
  t.true(change.removed);
  t.true(change.cluster);
  t.false(view.exists);
  t.is(view.cluster(), undefined);
  t.deepEqual(view.nodes(), []);
  // A later snapshot without the document says so too.
  const { view: other } = started();
  const snap = other.applySnapshot([kv(keys.node('node-1'), encodeRecord(registration('node-1', 1)))], revision);
  t.true(snap.removed);
});

test('a malformed pod record lands in problems, is left out, and is forgiven once fixed', (t) => {
  const { view, logged } = started();
  const key = keys.pod('default', 'bad');
  const text = encodeRecord(binding('bad', 'node-1')).replace('"ip":"10.244.1.2"', '"ip":"10.0.0.999"');
  view.applyEvents([put(key, text)], revision);
  t.is(view.problems.get(key), 'ip: "10.0.0.999" is not an IPv4 address');
  t.deepEqual(view.cluster()?.pods.map((p) => p.name), ['a']);
  t.deepEqual(logged, [`store record ${key} left out: ip: "10.0.0.999" is not an IPv4 address`]);

  const misnamed = encodeRecord(binding('other', 'node-1'));
  view.applyEvents([put(key, misnamed)], revision);
  t.is(view.problems.get(key), 'names default/other, not default/bad');
  t.deepEqual(view.cluster()?.pods.map((p) => p.name), ['a']);

  view.applyEvents([put(key, encodeRecord(binding('bad', 'node-1')))], revision);
  t.false(view.problems.has(key));
  t.deepEqual(view.cluster()?.pods.map((p) => p.name), ['a', 'bad']);
});

test('a malformed registration is left out of the nodes', (t) => {
  const { view } = started();
  const key = keys.node('node-3');
  view.applyEvents([put(key, encodeRecord({ ...registration('node-3', 3), underlay: 'nowhere' }))], revision);
  t.true(view.problems.has(key));
  t.regex(view.problems.get(key)!, /underlay/);
  t.deepEqual(view.cluster()?.nodes.map((n) => n.name), ['node-1']);
});

test('a Service in a declared Namespace resolves only once the Namespace is there', (t) => {
  const { view } = started();
  const svcKey = keys.object('Service', 'shop', 'cart');
  view.applyEvents([put(svcKey, serviceManifest('cart', 'shop').replace('10.96.0.20', '10.96.0.30'))], revision);
  t.deepEqual(view.cluster()?.services.map((s) => `${s.namespace}/${s.name}`), ['default/web']);
  t.true(view.problems.has(svcKey), 'the unresolvable Service is reported');

  const nsKey = keys.object('Namespace', '', 'shop');
  view.applyEvents([put(nsKey, namespaceManifest('shop'))], revision);
  const c = view.cluster();
  t.deepEqual(c?.services.map((s) => `${s.namespace}/${s.name}`), ['default/web', 'shop/cart']);
  t.true(c?.namespaces.some((n) => n.name === 'shop'));

  view.applyEvents([del(nsKey)], revision);
  t.deepEqual(view.cluster()?.services.map((s) => `${s.namespace}/${s.name}`), ['default/web'], 'gone again with its Namespace');
});

// An agent rewrites its records every renewal: a bad one must not fill the log.
test('the same bad record put twice is logged once', (t) => {
  const { view, logged } = started();
  const key = keys.pod('default', 'bad');
  const text = encodeRecord(binding('bad', 'node-1')).replace('"ip":"10.244.1.2"', '"ip":"10.0.0.999"');
  view.applyEvents([put(key, text)], revision);
  view.applyEvents([put(key, text)], revision);
  t.is(logged.length, 1);
});

// A problem is about the record as it stands: one that resolves now has none.
test('a Service that resolves once its Namespace arrives is no longer among the problems', (t) => {
  const { view } = started();
  const svcKey = keys.object('Service', 'shop', 'cart');
  view.applyEvents([put(svcKey, serviceManifest('cart', 'shop').replace('10.96.0.20', '10.96.0.30'))], revision);
  view.cluster();
  view.applyEvents([put(keys.object('Namespace', '', 'shop'), namespaceManifest('shop'))], revision);
  t.true(view.cluster()?.services.some((s) => s.name === 'cart'));
  t.false(view.problems.has(svcKey));
});

test('ConfigMaps and Secrets are stored as manifests and resolved into the cluster, bytes and all', (t) => {
  const { view } = started();
  const configMap = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' }, data: { level: 'debug' }, binaryData: { raw: 'AAE=' } });
  const secret = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls', namespace: 'default' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y2VydA==', 'tls.key': 'a2V5' } });
  const change = view.applyEvents([put(keys.object('ConfigMap', 'default', 'settings'), configMap), put(keys.object('Secret', 'default', 'tls'), secret)], revision);
  t.like(change, { objects: true });
  const c = view.cluster();
  if (c === undefined) return t.fail('no cluster');
  t.deepEqual(c.configMaps.map((m) => [m.namespace, m.name, m.data.level.toString(), [...m.data.raw], m.binaryKeys]), [['default', 'settings', 'debug', [0, 1], ['raw']]]);
  t.deepEqual(c.secrets.map((s) => [s.name, s.type, s.data['tls.crt'].toString(), s.data['tls.key'].toString()]), [['tls', 'kubernetes.io/tls', 'cert', 'key']]);

  // A Secret that breaks its type's rules is left out and said why, as any bad object.
  view.applyEvents([put(keys.object('Secret', 'default', 'tls'), secret.replace('"tls.key":"a2V5"', '"other":"a2V5"'))], revision);
  t.deepEqual(view.cluster()?.secrets, []);
  t.regex(view.problems.get(keys.object('Secret', 'default', 'tls')) ?? '', /must have the key "tls.key"/);
});

test('Ingresses and IngressClasses are stored as manifests and resolved; an Ingress changed in the store is the new one (the controller pods follow it)', (t) => {
  const { view } = started();
  const klass = JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'nginx' }, spec: { controller: 'k8s.io/ingress-nginx' } });
  const ingress = (path: string) =>
    JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', namespace: 'default' }, spec: { ingressClassName: 'nginx', rules: [{ host: 'a.com', http: { paths: [{ path, pathType: 'Prefix', backend: { service: { name: 's', port: { number: 80 } } } }] } }] } });
  t.like(view.applyEvents([put(keys.object('IngressClass', '', 'nginx'), klass), put(keys.object('Ingress', 'default', 'web'), ingress('/a'))], revision), { objects: true });
  t.deepEqual(view.cluster()?.ingressClasses.map((c) => [c.name, c.controller]), [['nginx', 'k8s.io/ingress-nginx']]);
  t.deepEqual(view.cluster()?.ingresses.map((i) => i.rules[0].paths[0].path), ['/a']);
  view.applyEvents([put(keys.object('Ingress', 'default', 'web'), ingress('/b'))], revision);
  t.deepEqual(view.cluster()?.ingresses.map((i) => i.rules[0].paths[0].path), ['/b']);
  view.applyEvents([put(keys.object('Ingress', 'default', 'web'), ingress('b'))], revision);
  t.deepEqual(view.cluster()?.ingresses, []);
  t.regex(view.problems.get(keys.object('Ingress', 'default', 'web')) ?? '', /must be an absolute path/);
});

test('a pod record with the kubelet fields round-trips; one bound before they existed is left out for the controller to bind again', (t) => {
  const { view } = started();
  const r = loadCluster([{ path: 'p.yaml', text: 'apiVersion: v1\nkind: Pod\nmetadata: {name: full}\nspec:\n  hostAliases: [{ip: 10.9.8.7, hostnames: [db]}]\n  volumes: [{name: v, configMap: {name: m, items: [{key: k, path: p, mode: 0600}]}}]\n  securityContext: {runAsUser: 1000}\n  containers: [{name: c, image: i, env: [{name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}], volumeMounts: [{name: v, mountPath: /m}]}]\n' }], { random: seededRandom(1) });
  if (!r.ok) return t.fail();
  const pod = r.cluster.pods[0];
  view.applyEvents([put(keys.pod('default', 'full'), encodeRecord(pod))], revision);
  t.deepEqual(view.pods.get('default/full'), pod);
  t.true(encodeRecord(pod).includes('"ip":"10.9.8.7"'), 'the alias address is dotted in etcd');

  const { hostAliases: _h, volumes: _v, enableServiceLinks: _e, restartPolicy: _r, serviceAccountName: _s, securityContext: _c, ...older } = pod;
  view.applyEvents([put(keys.pod('default', 'old'), encodeRecord({ ...older, name: 'old' }))], revision);
  t.false(view.pods.has('default/old'));
  t.regex(view.problems.get(keys.pod('default', 'old')) ?? '', /hostAliases \(object\)/);
});
