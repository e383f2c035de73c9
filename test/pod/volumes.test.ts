import test from 'ava';
import { cluster, yaml } from '../cluster/helpers.js';
import { volumeContents } from '../../src/pod/volumes.js';

const OBJECTS = yaml`
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1", b: "2"}
binaryData: {bin: AAEC}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {token: t0k3n}
---`;

function contents(volumes: string) {
  const c = cluster(`${OBJECTS}
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  volumes: ${volumes}
  containers: [{name: c, image: busybox}]
`);
  const r = volumeContents(c.pods[0], c.configMaps, c.secrets);
  return { volumes: Object.fromEntries(r.volumes.map(([name, v]) => [name, v.kind === 'emptyDir' ? 'emptyDir' : v.files.map((f) => `${f.path}=${f.data.toString('hex')}@${f.mode.toString(8)}`)])), problems: Object.fromEntries(r.problems) };
}

test('every key a file at defaultMode (0644 by default), binaryData too; an emptyDir starts empty', (t) => {
  t.deepEqual(contents('[{name: c, configMap: {name: cfg}}, {name: e, emptyDir: {}}, {name: s, secret: {secretName: sec, defaultMode: 0400}}]'), {
    volumes: { c: ['a=31@644', 'b=32@644', 'bin=000102@644'], e: 'emptyDir', s: ['token=74306b336e@400'] },
    problems: {},
  });
});

test('items select and rename keys, with their own mode', (t) => {
  t.deepEqual(contents('[{name: c, configMap: {name: cfg, items: [{key: b, path: sub/two.txt, mode: 0600}, {key: a, path: one}]}}]').volumes, { c: ['sub/two.txt=32@600', 'one=31@644'] });
});

test("a missing object or key is the kubelet's mount problem; optional ones mount what there is", (t) => {
  t.deepEqual(contents('[{name: c, configMap: {name: gone}}]').problems, { c: 'configmap "gone" not found' });
  t.deepEqual(contents('[{name: s, secret: {secretName: gone}}]').problems, { s: 'secret "gone" not found' });
  t.deepEqual(contents('[{name: c, configMap: {name: cfg, items: [{key: z, path: z}]}}]').problems, { c: 'configmap references non-existent config key: z' });
  t.deepEqual(contents('[{name: c, configMap: {name: gone, optional: true}}]'), { volumes: { c: [] }, problems: {} });
  t.deepEqual(contents('[{name: c, configMap: {name: cfg, optional: true, items: [{key: z, path: z}, {key: a, path: a}]}}]').volumes, { c: ['a=31@644'] });
});
