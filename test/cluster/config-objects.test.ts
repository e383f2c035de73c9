/**
 * ConfigMaps and Secrets as the API server takes them: values become bytes (data as UTF-8,
 * binaryData and a Secret's data from strict base64, stringData merged over data), keys
 * have ConfigMap key syntax, no key is given twice, each object holds at most 1 MiB, and a
 * Secret of a built-in type has the keys its type requires.
 */
import test from 'ava';
import fc from 'fast-check';
import { decodeBase64, MAX_DATA_BYTES } from '../../src/cluster/decode-config.js';
import { decodeClusterJson, encodeClusterJson } from '../../src/cluster/cluster-json.js';
import { parseByteQuantity } from '../../src/cluster/quantity.js';
import { cluster, load, yaml } from './helpers.js';

const configMap = (body: string, name = 'settings') => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\n${body}\n`;
const secret = (body: string, name = 'creds') => `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}}\n${body}\n`;

function problems(text: string): string[] {
  const r = load(text);
  return r.ok ? [] : r.errors.map((d) => `${d.path}: ${d.reason}`);
}

test('a ConfigMap: data as UTF-8 bytes, binaryData decoded, both under one map; the binary keys are known', (t) => {
  const c = cluster(yaml`
    apiVersion: v1
    kind: Namespace
    metadata: {name: shop}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings, namespace: shop, labels: {app: shop}}
    immutable: true
    data:
      level: debug
      app.conf: |
        port = 80
      empty:
    binaryData:
      logo.png: iVBORw0KGgo=
  `);
  t.is(c.configMaps.length, 1);
  const [cm] = c.configMaps;
  t.like(cm, { namespace: 'shop', name: 'settings', labels: { app: 'shop' }, binaryKeys: ['logo.png'] });
  t.deepEqual(Object.keys(cm.data), ['level', 'app.conf', 'empty', 'logo.png']);
  t.true(Buffer.isBuffer(cm.data.level));
  t.is(cm.data.level.toString(), 'debug');
  t.is(cm.data['app.conf'].toString(), 'port = 80\n');
  t.is(cm.data.empty.length, 0, 'a key without a value holds nothing, as the API server reads null');
  t.deepEqual([...cm.data['logo.png']], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
});

test('a Secret: data from base64, stringData merged over it, type Opaque by default', (t) => {
  const c = cluster(secret('data: {user: YWRtaW4=, pass: b2xk}\nstringData: {pass: "n3w p@ss"}'));
  const [s] = c.secrets;
  t.like(s, { namespace: 'default', name: 'creds', type: 'Opaque' });
  t.is(s.data.user.toString(), 'admin');
  t.is(s.data.pass.toString(), 'n3w p@ss', 'stringData wins');
});

test('a kubernetes.io/tls Secret must hold tls.crt and tls.key', (t) => {
  t.deepEqual(problems(secret('type: kubernetes.io/tls\ndata: {tls.crt: Y2VydA==}')), ['data: a Secret of type kubernetes.io/tls must have the key "tls.key"']);
  t.deepEqual(problems(secret('type: kubernetes.io/tls')), [
    'data: a Secret of type kubernetes.io/tls must have the key "tls.crt"',
    'data: a Secret of type kubernetes.io/tls must have the key "tls.key"',
  ]);
  const ok = cluster(secret('type: kubernetes.io/tls\ndata: {tls.crt: Y2VydA==}\nstringData: {tls.key: key}'));
  t.is(ok.secrets[0].type, 'kubernetes.io/tls');
  t.is(ok.secrets[0].data['tls.key'].toString(), 'key');
});

test('bad ConfigMaps and Secrets: names, keys, base64, a key in both data and binaryData, values that are not strings', (t) => {
  t.deepEqual(problems(configMap('data: {"a b": x, ..hidden: y, num: 1}\nbinaryData: {n2: "@@@="}', 'Settings')), [
    "metadata.name: must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit), got \"Settings\"",
    `data["a b"]: key must consist of letters, digits, '-', '_' or '.' (e.g. "key.name", "KEY_NAME", "key-name"), got "a b"`,
    `data["..hidden"]: key must not start with '..', got "..hidden"`,
    'data.num: must be a string, got 1',
    'binaryData.n2: must be base64 (as `base64 -w0` writes it): it is decoded into the bytes the key holds',
  ]);
  t.deepEqual(problems(configMap('data: {k: x}\nbinaryData: {k: eA==}')), ['binaryData.k: duplicate of key "k" present in data']);
  t.deepEqual(problems(secret('data: {k: not-base64}\nimmutable: sure')), [
    'data.k: must be base64 (as `base64 -w0` writes it): it is decoded into the bytes the key holds',
    'immutable: must be a boolean, got "sure"',
  ]);
});

test('at most 1 MiB: a ConfigMap counts keys and values, a Secret its values', (t) => {
  const value = 'x'.repeat(MAX_DATA_BYTES - 1);
  t.true(load(configMap(`data: {k: ${value}}`)).ok, 'key (1) + value (1 MiB - 1) is exactly the limit');
  t.deepEqual(problems(configMap(`data: {kk: ${value}}`)), [`: data must be at most ${MAX_DATA_BYTES} bytes (keys and values together), got ${MAX_DATA_BYTES + 1}`]);
  t.true(load(secret(`stringData: {kk: x${value}}`)).ok, 'a Secret counts its values only');
  t.false(load(secret(`stringData: {k: xx${value}}`)).ok);
});

test('ConfigMaps and Secrets follow the object rules: a namespace that exists, one object per name', (t) => {
  t.deepEqual(problems(configMap('data: {}').replace('{name: settings}', '{name: settings, namespace: gone}')), [
    'metadata.namespace: namespace "gone" does not exist (declare it with a Namespace document)',
  ]);
  t.deepEqual(problems(`${configMap('data: {}')}---\n${configMap('data: {}')}`), ['metadata.name: ConfigMap default/settings is already defined in t.yaml document 1']);
  t.true(load(`${configMap('data: {}', 'same')}---\n${secret('data: {}', 'same')}`).ok, 'a ConfigMap and a Secret may share a name');
});

test('base64 as Go decodes []byte: padding required, line breaks skipped, nothing else outside the alphabet', (t) => {
  t.is(decodeBase64('aGVsbG8=')?.toString(), 'hello');
  t.is(decodeBase64('aGVs\nbG8=\r\n')?.toString(), 'hello');
  t.is(decodeBase64('')?.length, 0);
  for (const bad of ['aGVsbG8', 'aGVsbG8==', 'aGV sbG8=', 'aGVs_G8=', 'a===', '=', 'aGVsbG8=aGVs']) t.is(decodeBase64(bad), undefined, bad);
});

test('property: whatever bytes, their base64 decodes back to them', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const buf = Buffer.from(bytes);
      return decodeBase64(buf.toString('base64'))?.equals(buf) === true;
    }),
  );
  t.pass();
});

test('byte quantities as resource.Quantity writes them, rounded up to a whole byte', (t) => {
  const bytes = (text: string) => {
    const r = parseByteQuantity(text);
    return r.ok ? r.bytes : r.reason;
  };
  t.is(bytes('128974848'), 128974848);
  t.is(bytes('129e6'), 129e6);
  t.is(bytes('129M'), 129e6);
  t.is(bytes('123Mi'), 123 * 2 ** 20);
  t.is(bytes('1.5Gi'), 1.5 * 2 ** 30);
  t.is(bytes('1k'), 1000);
  t.is(bytes('1Ki'), 1024);
  t.is(bytes('100m'), 1, 'a tenth of a byte is one byte');
  t.is(bytes('0'), 0);
  t.is(bytes('-0'), 0);
  t.is(bytes('1KB'), 'must be a quantity such as 500Mi, 1Gi or 1000000, got "1KB"');
  t.is(bytes('-1'), 'must not be negative, got "-1"');
  t.is(bytes('16Ei'), `must be at most ${Number.MAX_SAFE_INTEGER} bytes, got "16Ei"`);
});

test('cluster.json keeps the Buffers of ConfigMaps and Secrets, as base64, and reads Node\'s own Buffer form too', (t) => {
  const c = cluster(`${configMap('data: {a: x}\nbinaryData: {b: AAEC/w==}')}---\n${secret('data: {base64: aGk=}')}`);
  const text = encodeClusterJson(c, 1);
  t.true(text.includes('"$buffer": "AAEC/w=="'), 'written as base64, not a list of bytes');
  const back = decodeClusterJson(text);
  t.true(Buffer.isBuffer(back.configMaps[0].data.b));
  t.deepEqual([...back.configMaps[0].data.b], [0, 1, 2, 255]);
  t.is(back.secrets[0].data.base64.toString(), 'hi', 'a key named base64 is still a key');
  t.deepEqual(back, c);
  t.deepEqual(decodeClusterJson(JSON.stringify(c)), c, 'plain JSON.stringify output reads back the same');
});
