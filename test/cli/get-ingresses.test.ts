/**
 * `podwire get ingresses` as kubectl prints Ingresses: NAME, CLASS (<none> without one),
 * HOSTS (the first three, then "+ N more...", `*` without any), ADDRESS (cut at 16 unless
 * -o wide), PORTS (80, or "80, 443" with TLS), AGE; and -o json as a networking.k8s.io/v1
 * Ingress with its status address.
 */
import test from 'ava';
import { formatGet, ingressHosts } from '../../src/cli/get-format.js';
import { getInputs } from '../../src/cli/get-inputs.js';
import { cluster } from '../cluster/helpers.js';

const NOW = Date.UTC(2024, 4, 14, 12, 0, 0);

const YAML = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller}
spec:
  replicas: 1
  selector: {matchLabels: {app: ingress}}
  template:
    metadata: {labels: {app: ingress}}
    spec: {containers: [{name: c, image: registry.k8s.io/ingress-nginx/controller:v1.10.1}]}
---
apiVersion: v1
kind: Service
metadata: {name: controller}
spec: {type: LoadBalancer, loadBalancerIP: 192.0.2.240, selector: {app: ingress}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: nginx
  tls: [{hosts: [a.com], secretName: a-tls}]
  rules:
  - {host: a.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}]}}
  - {host: b.com}
  - {host: c.com}
  - {host: d.com}
  - {host: e.com}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: lonely}
spec: {ingressClassName: absent, defaultBackend: {service: {name: s, port: {name: http}}}}
`;

function get(output: 'table' | 'wide' | 'json') {
  const c = cluster(YAML);
  const inputs = getInputs({ cluster: c, endpoints: [], podReady: new Map(), readyNodes: new Set(), createdAt: new Map(), fallbackTime: NOW - 65_000 });
  return formatGet({ kind: 'ingresses', namespace: 'default', output, now: NOW, ...inputs });
}

test('the table: class, the first three hosts and how many more, the LoadBalancer address of the serving controller, 80 and 443 with TLS', (t) => {
  t.deepEqual(get('table'), {
    stdout: `NAME     CLASS    HOSTS                           ADDRESS       PORTS     AGE
lonely   absent   *                                             80        65s
shop     nginx    a.com,b.com,c.com + 2 more...   192.0.2.240   80, 443   65s
`,
  });
});

test('-o json: a networking.k8s.io/v1 Ingress with its rules, tls and status.loadBalancer', (t) => {
  const list = JSON.parse(get('json').stdout) as { items: Record<string, unknown>[] };
  const shop = list.items.find((i) => (i.metadata as { name: string }).name === 'shop')!;
  t.like(shop, { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', status: { loadBalancer: { ingress: [{ ip: '192.0.2.240' }] } } });
  t.deepEqual((shop.spec as { tls: unknown }).tls, [{ hosts: ['a.com'], secretName: 'a-tls' }]);
  t.deepEqual((shop.spec as { rules: unknown[] }).rules[0], { host: 'a.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 's', port: { number: 80 } } } }] } });
  const lonely = list.items.find((i) => (i.metadata as { name: string }).name === 'lonely')!;
  t.deepEqual(lonely.status, { loadBalancer: {} });
  t.deepEqual((lonely.spec as { defaultBackend: unknown }).defaultBackend, { service: { name: 's', port: { name: 'http' } } });
});

test('hosts as kubectl formats them', (t) => {
  const c = cluster(YAML);
  t.deepEqual(c.ingresses.map(ingressHosts), ['a.com,b.com,c.com + 2 more...', '*']);
});
