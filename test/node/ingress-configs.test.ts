/**
 * The node's side of an ingress controller pod: the configuration it writes follows the
 * cluster (a changed Secret's certificate, endpoints that become ready, an Ingress of
 * another class left out), is written only when it changes, and always whole (by rename).
 */
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import type { IngressProxyConfig } from '../../src/ingress/config.js';
import { IngressConfigWriter, isIngressControllerPod, podIngressConfig } from '../../src/node/ingress-configs.js';
import { cluster } from '../cluster/helpers.js';

const yamlWith = (cert: string) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller}
spec:
  replicas: 1
  selector: {matchLabels: {app: controller}}
  template:
    metadata: {labels: {app: controller}}
    spec: {containers: [{name: c, image: registry.k8s.io/ingress-nginx/controller:v1.10.1, args: [--watch-ingress-without-class]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 4000}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.7.7, selector: {app: web}, ports: [{port: 5000, targetPort: 4000}]}
---
apiVersion: v1
kind: Secret
metadata: {name: web-tls}
type: kubernetes.io/tls
stringData: {tls.crt: "${cert}", tls.key: KEY}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  tls: [{hosts: [web.com], secretName: web-tls}]
  rules: [{host: web.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 5000}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs, annotations: {kubernetes.io/ingress.class: other}}
spec: {rules: [{host: other.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 5000}}}}]}}]}
`;

test('the configuration follows the cluster: ready endpoints, the Secret named by TLS, only the Ingresses of its class', (t) => {
  const c = cluster(yamlWith('CERT-1'));
  const controller = c.pods.find((p) => p.name.startsWith('controller-'))!;
  t.true(isIngressControllerPod(controller));
  t.false(isIngressControllerPod(c.pods.find((p) => p.name.startsWith('web-'))!));
  const none = JSON.parse(podIngressConfig(controller, c, computeEndpoints(c, new Map()))!) as IngressProxyConfig;
  t.deepEqual(none.servers.map((s) => s.host), ['web.com'], 'the Ingress of class "other" is not this controller’s');
  t.like(none.servers[0].locations[0].backend, { target: { address: '10.96.7.7', port: 5000 }, ready: 0 });
  t.deepEqual(none.servers[0].tls, { secret: 'default/web-tls' });
  t.deepEqual(none.certificates, { 'default/web-tls': { cert: 'CERT-1', key: 'KEY' } });
  const ready = new Map(c.pods.map((p) => [`${p.namespace}/${p.name}`, true]));
  const some = JSON.parse(podIngressConfig(controller, c, computeEndpoints(c, ready))!) as IngressProxyConfig;
  t.like(some.servers[0].locations[0].backend, { ready: 2 });
  const renewed = cluster(yamlWith('CERT-2'));
  const again = JSON.parse(podIngressConfig(controller, renewed, computeEndpoints(renewed, ready))!) as IngressProxyConfig;
  t.is(again.certificates['default/web-tls'].cert, 'CERT-2', 'a renewed certificate is in the next configuration');
  t.is(podIngressConfig(c.pods.find((p) => p.name.startsWith('web-'))!, c, []), undefined);
});

test('the writer writes a changed text once, whole, and in order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-ingress-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logs: string[] = [];
  const writer = new IngressConfigWriter((l) => logs.push(l));
  const target = join(dir, 'pod', 'ingress');
  await writer.writeNow(target, 'one\n');
  t.is(readFileSync(join(target, 'config.json'), 'utf8'), 'one\n');
  for (let i = 0; i < 20; i++) writer.update(target, `v${i}\n`);
  writer.update(target, 'v19\n');
  await new Promise((r) => setTimeout(r, 100));
  t.is(readFileSync(join(target, 'config.json'), 'utf8'), 'v19\n', 'the last state lands last');
  t.deepEqual(readdirSync(target), ['config.json'], 'no temporary file left behind');
  rmSync(target, { recursive: true });
  writer.update(target, 'gone\n');
  await new Promise((r) => setTimeout(r, 50));
  t.is(logs.length, 1, 'a write into a removed pod directory is logged, not thrown');
});
