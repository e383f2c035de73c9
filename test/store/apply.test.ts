/**
 * planApply as `kubectl apply` against the API server: created, configured, unchanged; the
 * allocations written into the stored manifest and kept on re-apply; an input that does not
 * load with what is stored refuses everything, naming the file and line.
 */
import test from 'ava';
import { planApply, type ApplyPlan, type ApplyResult, type StoredManifest } from '../../src/store/apply.js';
import { ClusterKeys } from '../../src/store/keys.js';
import { yaml } from '../cluster/helpers.js';

const keys = new ClusterKeys('t');
const NOW = Date.UTC(2024, 4, 1, 12, 0, 0, 123);

const service = (name: string, extra = '') => yaml`
  apiVersion: v1
  kind: Service
  metadata:
    name: ${name}
  spec:
    selector: {app: ${name}}
    ports:
    - port: 80
      targetPort: 8080
  ${extra}
`;

const pod = (name: string, image = 'nginx') => yaml`
  apiVersion: v1
  kind: Pod
  metadata:
    name: ${name}
    labels: {app: ${name}}
  spec:
    containers:
    - name: c
      image: ${image}
`;

/** The store as planApply sees it: the cluster document and the stored manifests. */
class Store {
  cluster: string | undefined;
  readonly objects = new Map<string, StoredManifest>();

  apply(text: string, path = 'in.yaml', now = NOW): ApplyResult {
    const r = planApply({ keys, existingCluster: this.cluster, existing: [...this.objects.values()], files: [{ path, text }], now });
    if (r.ok) this.commit(r.plan);
    return r;
  }

  private commit(plan: ApplyPlan): void {
    if (plan.clusterDocument !== undefined) this.cluster = plan.clusterDocument;
    for (const { key, value } of plan.puts) {
      const record = keys.parse(key);
      if (record?.type !== 'object') throw new Error(`apply wrote ${key}, not an object key`);
      this.objects.set(key, { key, kind: record.kind, namespace: record.namespace, name: record.name, text: value });
    }
  }

  manifest(key: string): { metadata: Record<string, unknown>; spec: Record<string, unknown> } {
    return JSON.parse(this.objects.get(key)!.text);
  }
}

function ok(t: { fail(m: string): void }, r: ApplyResult): ApplyPlan {
  if (!r.ok) {
    t.fail(r.errors.join('\n'));
    throw new Error('apply refused');
  }
  return r.plan;
}

const webKey = keys.object('Service', 'default', 'web');

test('create, then the same documents again: created, then unchanged with nothing to put', (t) => {
  const store = new Store();
  const first = ok(t, store.apply(`${service('web')}---\n${pod('web')}`));
  t.deepEqual(first.lines, ['service/web created', 'pod/web created']);
  t.deepEqual(first.puts.map((p) => p.key), [webKey, keys.object('Pod', 'default', 'web')]);
  t.truthy(first.clusterDocument, 'a new cluster gets the default Cluster document');
  t.like(JSON.parse(first.clusterDocument!), { kind: 'Cluster', metadata: { name: 't' } });
  t.is(store.manifest(webKey).metadata.creationTimestamp, '2024-05-01T12:00:00Z');

  const again = ok(t, store.apply(`${service('web')}---\n${pod('web')}`, 'in.yaml', NOW + 60_000));
  t.deepEqual(again.lines, ['service/web unchanged', 'pod/web unchanged']);
  t.deepEqual(again.puts, []);
  t.is(again.clusterDocument, undefined, 'an existing cluster keeps its document');
});

test('a change is configured, and keeps the creation stamp', (t) => {
  const store = new Store();
  ok(t, store.apply(pod('web')));
  const changed = ok(t, store.apply(pod('web', 'httpd'), 'in.yaml', NOW + 3_600_000));
  t.deepEqual(changed.lines, ['pod/web configured']);
  t.is(changed.puts.length, 1);
  const stored = store.manifest(keys.object('Pod', 'default', 'web'));
  t.is(stored.metadata.creationTimestamp, '2024-05-01T12:00:00Z');
  t.is((stored.spec.containers as { image: string }[])[0].image, 'httpd');
});

test('the allocated cluster IP is written in, kept on re-apply, and a second Service gets the next free one', (t) => {
  const store = new Store();
  ok(t, store.apply(service('web')));
  const ip = store.manifest(webKey).spec.clusterIP;
  t.is(typeof ip, 'string');
  t.regex(ip as string, /^10\.(9[6-9]|10[0-9]|11[01])\.\d+\.\d+$/, 'inside the default service CIDR 10.96.0.0/12');

  // Re-applied without clusterIP, as a person's file has it: the stored IP comes back, so nothing changes.
  const again = ok(t, store.apply(service('web')));
  t.deepEqual(again.lines, ['service/web unchanged']);
  t.is(store.manifest(webKey).spec.clusterIP, ip);

  const second = ok(t, store.apply(service('api')));
  t.deepEqual(second.lines, ['service/api created']);
  const apiIP = store.manifest(keys.object('Service', 'default', 'api')).spec.clusterIP;
  // Allocation is deterministic (seeded) and takes the lowest free address after kubernetes's 10.96.0.1.
  t.is(ip, '10.96.0.2');
  t.is(apiIP, '10.96.0.3');
  t.is(store.manifest(webKey).spec.clusterIP, ip, 'the first keeps its own');
});

test('a NodePort Service keeps its node port on re-apply', (t) => {
  const store = new Store();
  const nodePortService = service('np').replace('spec:\n', 'spec:\n  type: NodePort\n');
  ok(t, store.apply(nodePortService));
  const key = keys.object('Service', 'default', 'np');
  const port = (store.manifest(key).spec.ports as { nodePort?: number }[])[0].nodePort;
  t.true(typeof port === 'number' && port >= 30000 && port <= 32767, String(port));
  t.deepEqual(ok(t, store.apply(nodePortService)).lines, ['service/np unchanged']);
  t.is((store.manifest(key).spec.ports as { nodePort?: number }[])[0].nodePort, port);
});

test('a clash between what is stored and what is new refuses everything, naming the stored object', (t) => {
  const store = new Store();
  ok(t, store.apply(service('web').replace('spec:\n', 'spec:\n  clusterIP: 10.96.5.5\n')));
  t.is(store.manifest(webKey).spec.clusterIP, '10.96.5.5');
  const before = [...store.objects.values()].map((m) => m.text);
  const r = planApply({
    keys,
    existingCluster: store.cluster,
    existing: [...store.objects.values()],
    files: [{ path: 'new.yaml', text: `${pod('a')}---\n${service('api').replace('spec:\n', 'spec:\n  clusterIP: 10.96.5.5\n')}` }],
    now: NOW,
  });
  t.false(r.ok);
  if (r.ok) return;
  // The whole is loaded from the store's keys with the new manifests re-serialised as JSON, so the
  // message names the new object's key (line 1), not new.yaml's line.
  t.deepEqual(r.errors, [
    '/podwire/t/objects/services/default/api: document 1 (Service api), line 1: spec.clusterIP: 10.96.5.5 is already allocated to Service default/web (with what cluster t already holds)',
  ]);
  t.deepEqual([...store.objects.values()].map((m) => m.text), before);
  t.false('plan' in r, 'nothing to put');
});

test('an error in the new files alone is reported against their own file and line', (t) => {
  const store = new Store();
  const r = store.apply(`${service('web')}---\n${service('api')}`.replaceAll('port: 80', 'port: 99999'), 'bad.yaml');
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(r.errors, [
    // Lines count in the file, across its documents.
    'bad.yaml: document 1 (Service web), line 8: spec.ports[0].port: must be an integer between 1 and 65535, got 99999',
    'bad.yaml: document 2 (Service api), line 19: spec.ports[0].port: must be an integer between 1 and 65535, got 99999',
  ]);
  t.is(store.cluster, undefined, 'no cluster made');
  t.is(store.objects.size, 0);
});

test('a changed Cluster document is refused; the same one is accepted', (t) => {
  const store = new Store();
  const doc = (mtu: number) => yaml`
    apiVersion: podwire.dev/v1alpha1
    kind: Cluster
    metadata: {name: ignored}
    spec:
      mtu: ${mtu}
  `;
  const first = ok(t, store.apply(`${doc(1400)}---\n${pod('a')}`));
  t.like(JSON.parse(first.clusterDocument!), { kind: 'Cluster', metadata: { name: 't' }, spec: { mtu: 1400 } });
  t.deepEqual(ok(t, store.apply(`${doc(1400)}---\n${pod('a')}`)).lines, ['pod/a unchanged']);
  const r = store.apply(`${doc(1300)}---\n${pod('b')}`);
  t.false(r.ok);
  if (!r.ok) t.deepEqual(r.errors, ['cluster t exists with another Cluster document: its network settings cannot change while it runs (podwire down --name t first)']);
  t.false(store.objects.has(keys.object('Pod', 'default', 'b')));
});

test('ConfigMaps and Secrets are applied as kubectl applies them, under their own keys', (t) => {
  const store = new Store();
  const settings = yaml`
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {level: debug}
  `;
  const creds = yaml`
    apiVersion: v1
    kind: Secret
    metadata: {name: creds}
    stringData: {password: hunter2}
  `;
  const first = ok(t, store.apply(`${settings}---\n${creds}`));
  t.deepEqual(first.lines, ['configmap/settings created', 'secret/creds created']);
  t.deepEqual(first.puts.map((p) => p.key), [keys.object('ConfigMap', 'default', 'settings'), keys.object('Secret', 'default', 'creds')]);
  t.deepEqual(ok(t, store.apply(`${settings}---\n${creds}`)).lines, ['configmap/settings unchanged', 'secret/creds unchanged']);
  t.deepEqual(ok(t, store.apply(settings.replace('debug', 'info'))).lines, ['configmap/settings configured']);

  const bad = store.apply(creds.replace('stringData: {password: hunter2}', 'data: {password: "hunter2!"}'));
  t.false(bad.ok);
  t.deepEqual(bad.ok ? [] : bad.errors, ['in.yaml: document 1 (Secret creds), line 4: data.password: must be base64 (as `base64 -w0` writes it): it is decoded into the bytes the key holds']);
});
