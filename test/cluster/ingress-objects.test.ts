/**
 * Ingresses and IngressClasses as the API server takes them (ValidateIngress,
 * ValidateIngressClass): hosts, paths by pathType, service backends, TLS, the class field
 * and its legacy annotation, each refusal with its field and reason.
 */
import test from 'ava';
import { checkIngressHost, checkPath } from '../../src/cluster/decode-ingress.js';
import { cluster, load, yaml } from './helpers.js';

const ingress = (spec: string, meta = '') => `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n${meta}spec:\n${spec}\n`;

function problems(text: string): string[] {
  const r = load(text);
  return r.ok ? [] : r.errors.map((d) => `${d.path}: ${d.reason}`);
}

test("seed 004's Ingress: host, Prefix path, a service backend by number; the class and annotations kept", (t) => {
  const c = cluster(yaml`
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: microservice1-ingress
      annotations:
        nginx.ingress.kubernetes.io/ssl-redirect: "false"
    spec:
      ingressClassName: nginx
      rules:
      - host: microservice1.com
        http:
          paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: microservice1-service
                port: {number: 5000}
      tls:
      - hosts: [microservice1.com]
        secretName: microservice1-tls
  `);
  t.deepEqual(c.ingresses.map(({ origin: _o, ...i }) => i), [
    {
      namespace: 'default',
      name: 'microservice1-ingress',
      labels: {},
      annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' },
      ingressClassName: 'nginx',
      rules: [{ host: 'microservice1.com', paths: [{ path: '/', pathType: 'Prefix', backend: { name: 'microservice1-service', port: 5000 } }] }],
      tls: [{ hosts: ['microservice1.com'], secretName: 'microservice1-tls' }],
    },
  ]);
});

test('a defaultBackend alone, a port by name, a rule without host, and an IngressClass marked default', (t) => {
  const c = cluster(yaml`
    apiVersion: networking.k8s.io/v1
    kind: IngressClass
    metadata:
      name: nginx
      annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
    spec:
      controller: k8s.io/ingress-nginx
    ---
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: catch-all}
    spec:
      defaultBackend:
        service: {name: fallback, port: {name: http}}
      rules:
      - http:
          paths:
          - {path: /api, pathType: Exact, backend: {service: {name: api, port: {number: 8080}}}}
  `);
  t.deepEqual(c.ingressClasses.map(({ origin: _o, ...k }) => k), [{ name: 'nginx', labels: {}, controller: 'k8s.io/ingress-nginx', isDefault: true }]);
  const [ing] = c.ingresses;
  t.deepEqual(ing.defaultBackend, { name: 'fallback', port: 'http' });
  t.deepEqual(ing.rules, [{ paths: [{ path: '/api', pathType: 'Exact', backend: { name: 'api', port: 8080 } }] }]);
  t.is(ing.ingressClassName, undefined);
});

test('an Ingress needs rules or a defaultBackend', (t) => {
  t.deepEqual(problems(ingress('  ingressClassName: nginx')), ['spec: either `defaultBackend` or `rules` must be specified']);
});

test('hosts: a DNS name or *. and one, never an IP address', (t) => {
  const rule = (host: string) => ingress(`  rules:\n  - host: "${host}"\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}]}`);
  t.deepEqual(problems(rule('10.0.0.1')), ['spec.rules[0].host: must be a DNS name, not an IP address']);
  t.deepEqual(problems(rule('*.foo.com')), []);
  t.regex(problems(rule('foo.*.com'))[0], /^spec\.rules\[0\]\.host: a wildcard DNS-1123 subdomain must start with '\*\.'/);
  t.regex(problems(rule('Foo.com'))[0], /^spec\.rules\[0\]\.host: must be a DNS-1123 subdomain/);
  t.not(checkIngressHost('*'), undefined, 'a bare * is not a wildcard host');
  t.not(checkIngressHost('foo.com:80'), undefined, 'no port in a host');
});

test('paths: pathType is required and closed; Exact and Prefix must be absolute and without sequences a proxy normalises', (t) => {
  const path = (p: string) => ingress(`  rules:\n  - http: {paths: [{${p}, backend: {service: {name: s, port: {number: 80}}}}]}`);
  t.deepEqual(problems(path('path: /a')), ['spec.rules[0].http.paths[0].pathType: required']);
  t.deepEqual(problems(path('path: /a, pathType: prefix')), ['spec.rules[0].http.paths[0].pathType: must be one of Exact, Prefix, ImplementationSpecific, got "prefix"']);
  t.deepEqual(problems(path('path: a, pathType: Prefix')), ['spec.rules[0].http.paths[0].path: must be an absolute path, got "a"']);
  t.deepEqual(problems(path('path: /a//b, pathType: Exact')), [`spec.rules[0].http.paths[0].path: must not contain '//', got "/a//b"`]);
  t.deepEqual(problems(path('path: /a/.., pathType: Prefix')), [`spec.rules[0].http.paths[0].path: cannot end with '/..', got "/a/.."`]);
  t.deepEqual(problems(path('pathType: ImplementationSpecific')), [], 'ImplementationSpecific may leave the path out');
  t.deepEqual(problems(path('path: "/something(/|$)(.*)", pathType: ImplementationSpecific')), [], 'a regex path, as the rewrite example has');
  t.is(checkPath('/%2F', 'Prefix'), "must not contain '%2F'");
  t.is(checkPath('//x', 'ImplementationSpecific'), undefined);
});

test('backends: a service by name with exactly one of port number and port name', (t) => {
  const backend = (b: string) => ingress(`  defaultBackend: ${b}`);
  t.deepEqual(problems(backend('{service: {name: s}}')), ['spec.defaultBackend.service.port: port name or number is required']);
  t.deepEqual(problems(backend('{service: {name: s, port: {number: 80, name: http}}}')), ['spec.defaultBackend.service.port: cannot set both port name & port number, got a map']);
  t.deepEqual(problems(backend('{service: {name: s, port: {number: 0}}}')), ['spec.defaultBackend.service.port.number: must be an integer between 1 and 65535, got 0']);
  t.deepEqual(problems(backend('{service: {name: 1s, port: {number: 80}}}')).length, 1);
  t.deepEqual(problems(backend('{}')), ['spec.defaultBackend: one backend type must be specified (service), got a map']);
  t.regex(problems(backend('{resource: {kind: StorageBucket, name: b}}'))[0], /^spec\.defaultBackend\.resource: a Service backend: podwire routes to Services only/);
});

test('the legacy class annotation must agree with ingressClassName; annotations are strings', (t) => {
  const meta = (a: string) => `  annotations: {${a}}\n`;
  const spec = '  ingressClassName: nginx\n  defaultBackend: {service: {name: s, port: {number: 80}}}';
  t.deepEqual(problems(ingress(spec, meta('kubernetes.io/ingress.class: nginx'))), []);
  t.deepEqual(problems(ingress(spec, meta('kubernetes.io/ingress.class: other'))), ['metadata.annotations["kubernetes.io/ingress.class"]: must match `ingressClassName` when both are specified, got "other"']);
  t.deepEqual(problems(ingress(spec, meta('nginx.ingress.kubernetes.io/ssl-redirect: false'))), ['metadata.annotations["nginx.ingress.kubernetes.io/ssl-redirect"]: must be a string, got false']);
});

test('an IngressClass is cluster-scoped and needs a domain-prefixed controller; names are unique', (t) => {
  const klass = (name: string, controller: string) => `apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: ${name}}\nspec: {controller: ${controller}}\n`;
  t.deepEqual(problems(klass('nginx', 'nginx')), ['spec.controller: must be a domain-prefixed path (such as "acme.io/foo"), got "nginx"']);
  t.deepEqual(problems(`apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: x}\nspec: {}\n`), ['spec.controller: required']);
  t.deepEqual(problems(`${klass('nginx', 'k8s.io/ingress-nginx')}---\n${klass('nginx', 'podwire.dev/ingress')}`), ['metadata.name: IngressClass nginx is already defined in t.yaml document 1']);
  t.deepEqual(problems(`apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: x}\nspec: {}\n`), ['apiVersion: Ingress is served as networking.k8s.io/v1, got "networking.k8s.io/v1beta1"']);
});

test('an Ingress in a namespace that does not exist is refused like any namespaced object', (t) => {
  t.deepEqual(problems(ingress('  defaultBackend: {service: {name: s, port: {number: 80}}}', '  namespace: shop\n')), ['metadata.namespace: namespace "shop" does not exist (declare it with a Namespace document)']);
});
