/**
 * Routing as the Ingress API defines it, held to the examples of its documentation (the
 * pathType table, the wildcard host rules) and to properties over made-up paths; merging
 * of several Ingresses as ingress-nginx merges them; which Ingresses a controller serves.
 */
import test from 'ava';
import fc from 'fast-check';
import type { Cluster } from '../../src/cluster/model.js';
import { controllerFlags, controllers, ingressAddresses, serves, type ControllerFlags } from '../../src/ingress/controller.js';
import { IngressRouter, hostMatches, normaliseHost, rewrite } from '../../src/ingress/match.js';
import { normalisePrefix, proxyConfig } from '../../src/ingress/servers.js';
import { cluster, yaml } from '../cluster/helpers.js';

const FLAGS = controllerFlags({ name: 'c', image: 'registry.k8s.io/ingress-nginx/controller:v1.10.0', command: [], args: [], env: [], envFrom: [], ports: [], volumeMounts: [], securityContext: { capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false } }, 'default') as ControllerFlags;

const NGINX_CLASS = yaml`
  apiVersion: networking.k8s.io/v1
  kind: IngressClass
  metadata: {name: nginx}
  spec: {controller: k8s.io/ingress-nginx}
`;

/** Services s-a, s-b, ... on port 80, so a backend's name says which path answered. */
function services(names: readonly string[]): string {
  return names.map((n) => `---\napiVersion: v1\nkind: Service\nmetadata: {name: ${n}}\nspec: {selector: {app: ${n}}, ports: [{port: 80}]}\n`).join('');
}

function ingressDoc(name: string, host: string | undefined, paths: readonly { path: string; type: string; svc: string }[], extra = ''): string {
  const items = paths.map((p) => `      - {path: "${p.path}", pathType: ${p.type}, backend: {service: {name: ${p.svc}, port: {number: 80}}}}`).join('\n');
  return `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: ${name}${extra}}\nspec:\n  ingressClassName: nginx\n  rules:\n  - ${host !== undefined ? `host: "${host}"\n    ` : ''}http:\n      paths:\n${items}\n`;
}

function router(c: Cluster): IngressRouter {
  return new IngressRouter(proxyConfig(c, [], FLAGS));
}

/** Which Service answered, or "default" for the controller's 404. */
function answered(r: IngressRouter, host: string | undefined, url: string): string {
  const b = r.route(host, url).location.backend;
  return b.kind === 'default' ? 'default' : b.service.split('/')[1];
}

// The pathType examples of https://kubernetes.io/docs/concepts/services-networking/ingress/#examples
const PATH_EXAMPLES: readonly { paths: readonly [string, string][]; request: string; matches: boolean | string }[] = [
  { paths: [['Prefix', '/']], request: '/anything/at/all', matches: true },
  { paths: [['Exact', '/foo']], request: '/foo', matches: true },
  { paths: [['Exact', '/foo']], request: '/bar', matches: false },
  { paths: [['Exact', '/foo']], request: '/foo/', matches: false },
  { paths: [['Exact', '/foo/']], request: '/foo', matches: false },
  { paths: [['Prefix', '/foo']], request: '/foo', matches: true },
  { paths: [['Prefix', '/foo']], request: '/foo/', matches: true },
  { paths: [['Prefix', '/foo/']], request: '/foo', matches: true },
  { paths: [['Prefix', '/foo/']], request: '/foo/', matches: true },
  { paths: [['Prefix', '/aaa/bb']], request: '/aaa/bbb', matches: false },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbb', matches: true },
  { paths: [['Prefix', '/aaa/bbb/']], request: '/aaa/bbb', matches: true },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbb/', matches: true },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbb/ccc', matches: true },
  { paths: [['Prefix', '/aaa/bbb']], request: '/aaa/bbbxyz', matches: false },
  { paths: [['Prefix', '/'], ['Prefix', '/aaa']], request: '/aaa/ccc', matches: 's-1' },
  { paths: [['Prefix', '/'], ['Prefix', '/aaa'], ['Prefix', '/aaa/bbb']], request: '/aaa/bbb', matches: 's-2' },
  { paths: [['Prefix', '/'], ['Prefix', '/aaa'], ['Prefix', '/aaa/bbb']], request: '/ccc', matches: 's-0' },
  { paths: [['Prefix', '/aaa']], request: '/ccc', matches: false },
  { paths: [['Prefix', '/foo'], ['Exact', '/foo']], request: '/foo', matches: 's-1' },
  { paths: [['Exact', '/foo'], ['Prefix', '/foo']], request: '/foo', matches: 's-0' },
];

test('the pathType examples of the Ingress documentation, row by row', (t) => {
  for (const ex of PATH_EXAMPLES) {
    const names = ex.paths.map((_, i) => `s-${i}`);
    const c = cluster(NGINX_CLASS + services(names) + ingressDoc('web', 'foo.com', ex.paths.map(([type, path], i) => ({ path, type, svc: names[i] }))));
    const got = answered(router(c), 'foo.com', ex.request);
    const want = ex.matches === true ? 's-0' : ex.matches === false ? 'default' : ex.matches;
    t.is(got, want, `${JSON.stringify(ex.paths)} ${ex.request}`);
  }
});

test('hosts: exact first, then *.foo.com for exactly one more label, else the catch-all; Host is read without case, port or final dot', (t) => {
  const c = cluster(
    NGINX_CLASS + services(['exact', 'wild', 'any']) +
      ingressDoc('a', 'foo.bar.com', [{ path: '/', type: 'Prefix', svc: 'exact' }]) +
      ingressDoc('b', '*.bar.com', [{ path: '/', type: 'Prefix', svc: 'wild' }]) +
      ingressDoc('c', undefined, [{ path: '/', type: 'Prefix', svc: 'any' }]),
  );
  const r = router(c);
  t.is(answered(r, 'foo.bar.com', '/'), 'exact');
  t.is(answered(r, 'FOO.Bar.com:8080', '/'), 'exact');
  t.is(answered(r, 'foo.bar.com.', '/'), 'exact');
  t.is(answered(r, 'baz.bar.com', '/'), 'wild');
  t.is(answered(r, 'baz.foo.bar.com', '/'), 'any', 'a wildcard covers one label only');
  t.is(answered(r, 'bar.com', '/'), 'any', 'nor the bare domain');
  t.is(answered(r, undefined, '/'), 'any');
  t.true(hostMatches('*.bar.com', 'x.bar.com'));
  t.false(hostMatches('*.bar.com', 'x.y.bar.com'));
  t.is(normaliseHost('[::1]:80'), '[::1]');
});

test("defaultBackend: a host's unmatched path goes to its Ingress's defaultBackend; an unknown host to the first rule-less Ingress's; else the controller's 404", (t) => {
  const withDefault = `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: d}\nspec:\n  ingressClassName: nginx\n  defaultBackend: {service: {name: fallback, port: {number: 80}}}\n  rules:\n  - host: foo.com\n    http: {paths: [{path: /app, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}]}\n`;
  const ruleless = `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: only-default}\nspec:\n  ingressClassName: nginx\n  defaultBackend: {service: {name: catchall, port: {number: 80}}}\n`;
  const r1 = router(cluster(NGINX_CLASS + services(['fallback', 'app', 'catchall']) + withDefault));
  t.is(answered(r1, 'foo.com', '/app/x'), 'app');
  t.is(answered(r1, 'foo.com', '/other'), 'fallback');
  t.is(answered(r1, 'unknown.com', '/'), 'default', 'an Ingress with rules does not take the catch-all');
  const r2 = router(cluster(NGINX_CLASS + services(['fallback', 'app', 'catchall']) + withDefault + ruleless));
  t.is(answered(r2, 'unknown.com', '/x'), 'catchall');
  t.is(answered(r2, 'foo.com', '/other'), 'fallback');
});

test('several Ingresses of one class merge per host; a path two of them route stays the older one’s', (t) => {
  const c = cluster(
    NGINX_CLASS + services(['one', 'two', 'three']) +
      ingressDoc('first', 'shop.com', [{ path: '/cart', type: 'Prefix', svc: 'one' }]) +
      ingressDoc('second', 'shop.com', [{ path: '/pay', type: 'Prefix', svc: 'two' }, { path: '/cart/', type: 'Prefix', svc: 'three' }]),
  );
  const r = router(c);
  t.is(answered(r, 'shop.com', '/cart/items'), 'one');
  t.is(answered(r, 'shop.com', '/pay'), 'two');
  t.is(answered(r, 'shop.com', '/'), 'default');
  const config = proxyConfig(c, [], FLAGS);
  t.deepEqual(config.servers.map((s) => [s.host, s.locations.map((l) => `${l.match} ${l.path} ${l.ingress}`)]), [['shop.com', ['Prefix / default/first', 'Prefix /cart default/first', 'Prefix /pay default/second']]]);
});

test('rewrite-target with use-regex, as ingress-nginx’s rewrite example: /something(/|$)(.*) to /$2, the query kept', (t) => {
  const c = cluster(NGINX_CLASS + services(['http-svc']) + ingressDoc('rewrite', 'rewrite.bar.com', [{ path: '/something(/|$)(.*)', type: 'ImplementationSpecific', svc: 'http-svc' }], ', annotations: {nginx.ingress.kubernetes.io/use-regex: "true", nginx.ingress.kubernetes.io/rewrite-target: /$2}'));
  const r = router(c);
  t.is(r.route('rewrite.bar.com', '/something').upstreamPath, '/');
  t.is(r.route('rewrite.bar.com', '/something/').upstreamPath, '/');
  t.is(r.route('rewrite.bar.com', '/something/new?x=1').upstreamPath, '/new?x=1');
  t.is(r.route('rewrite.bar.com', '/SOMETHING/new').upstreamPath, '/new', 'case-insensitive, as nginx ~*');
  t.is(answered(r, 'rewrite.bar.com', '/other'), 'default');
  t.is(rewrite('$1', ['', '']), '/');
});

test('backends resolve to the ClusterIP and port, by number or name; a missing Service or port is a problem, not a crash', (t) => {
  const c = cluster(
    NGINX_CLASS +
      `---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.5.5, selector: {app: web}, ports: [{name: http, port: 5000, targetPort: 4000}]}\n` +
      `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: a.com\n    http:\n      paths:\n      - {path: /n, pathType: Prefix, backend: {service: {name: web, port: {number: 5000}}}}\n      - {path: /s, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}\n      - {path: /x, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}\n      - {path: /y, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}\n`,
  );
  const r = router(c);
  const backend = (url: string) => r.route('a.com', url).location.backend;
  t.deepEqual(backend('/n'), { kind: 'service', service: 'default/web', port: 5000, target: { address: '10.96.5.5', port: 5000 }, ready: 0 });
  t.deepEqual(backend('/s'), { kind: 'service', service: 'default/web', port: 'http', target: { address: '10.96.5.5', port: 5000 }, ready: 0 });
  t.like(backend('/x'), { problem: 'service default/web has no port 81' });
  t.like(backend('/y'), { problem: 'service default/nope does not exist' });
});

test('property: a Prefix path matches exactly the requests whose path elements begin with its elements', (t) => {
  const segment = fc.stringMatching(/^[a-c]{1,2}$/);
  fc.assert(
    fc.property(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.array(segment, { maxLength: 4 }), fc.boolean(), fc.boolean(), (prefix, request, slash, reqSlash) => {
      const path = `/${prefix.join('/')}${slash ? '/' : ''}`;
      const url = `/${request.join('/')}${reqSlash && request.length > 0 ? '/' : ''}`;
      const c = cluster(NGINX_CLASS + services(['p']) + ingressDoc('w', 'h.com', [{ path, type: 'Prefix', svc: 'p' }]));
      const want = prefix.every((s, i) => request[i] === s);
      return (answered(router(c), 'h.com', url) === 'p') === want;
    }),
    { numRuns: 150 },
  );
  t.pass();
});

test('property: among Prefix paths the one with the most elements that match wins', (t) => {
  const segment = fc.constantFrom('a', 'b');
  fc.assert(
    fc.property(fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => `/${s.join('/')}`), { minLength: 1, maxLength: 4 }), fc.array(segment, { maxLength: 4 }), (paths, request) => {
      const names = paths.map((_, i) => `s-${i}`);
      const c = cluster(NGINX_CLASS + services(names) + ingressDoc('w', 'h.com', paths.map((path, i) => ({ path, type: 'Prefix', svc: names[i] }))));
      const url = `/${request.join('/')}`;
      const candidates = paths.map((p, i) => ({ i, parts: p.split('/').slice(1) })).filter((p) => p.parts.every((s, k) => request[k] === s));
      const best = candidates.sort((a, b) => b.parts.length - a.parts.length)[0];
      return answered(router(c), 'h.com', url) === (best === undefined ? 'default' : names[best.i]);
    }),
    { numRuns: 100 },
  );
  t.is(normalisePrefix('/foo///'), '/foo');
});

test('classes: ingressClassName through the IngressClass controller, the legacy annotation by --ingress-class, the default class for class-less Ingresses', (t) => {
  const c = cluster(
    NGINX_CLASS +
      `---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: other, annotations: {ingressclass.kubernetes.io/is-default-class: "true"}}\nspec: {controller: example.com/other}\n` +
      services(['s']) +
      ingressDoc('by-name', 'a.com', [{ path: '/', type: 'Prefix', svc: 's' }]) +
      `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: legacy, annotations: {kubernetes.io/ingress.class: nginx}}\nspec: {defaultBackend: {service: {name: s, port: {number: 80}}}}\n` +
      `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: classless}\nspec: {defaultBackend: {service: {name: s, port: {number: 80}}}}\n` +
      `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: unknown-class}\nspec: {ingressClassName: nope, defaultBackend: {service: {name: s, port: {number: 80}}}}\n`,
  );
  const served = c.ingresses.filter((i) => serves(FLAGS, i, c.ingressClasses)).map((i) => i.name);
  t.deepEqual(served, ['by-name', 'legacy'], 'the class-less one belongs to the default class, which is another controller’s');
  const otherFlags = { ...FLAGS, controllerClass: 'example.com/other', ingressClass: 'other' };
  t.deepEqual(c.ingresses.filter((i) => serves(otherFlags, i, c.ingressClasses)).map((i) => i.name), ['classless']);
});

test("controllers and status: ingress-nginx's Deployment with its flags, the LoadBalancer Service's address on the Ingresses it serves, none on the others", (t) => {
  const c = cluster(
    NGINX_CLASS +
      yaml`
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: ingress-nginx-controller}
        spec:
          replicas: 1
          selector: {matchLabels: {app: ingress}}
          template:
            metadata: {labels: {app: ingress}}
            spec:
              containers:
              - name: controller
                image: registry.k8s.io/ingress-nginx/controller:v1.10.0@sha256:abc
                args: [/nginx-ingress-controller, --publish-service=$(POD_NAMESPACE)/ingress-nginx-controller, --election-id=ingress-nginx-leader, --controller-class=k8s.io/ingress-nginx, --ingress-class=nginx]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: ingress-nginx-controller}
        spec: {type: LoadBalancer, loadBalancerIP: 192.0.2.240, selector: {app: ingress}, ports: [{name: http, port: 80}, {name: https, port: 443}]}
      ` +
      services(['s']) +
      ingressDoc('mine', 'a.com', [{ path: '/', type: 'Prefix', svc: 's' }]) +
      `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: theirs}\nspec: {ingressClassName: nope, defaultBackend: {service: {name: s, port: {number: 80}}}}\n`,
  );
  const [controller] = controllers(c);
  t.like(controller, { namespace: 'default', name: 'ingress-nginx-controller', flags: { controllerClass: 'k8s.io/ingress-nginx', ingressClass: 'nginx', publishService: 'default/ingress-nginx-controller', httpPort: 80, httpsPort: 443 } });
  t.deepEqual(c.ingresses.map((i) => ingressAddresses(c, i)), [['192.0.2.240'], []]);
});

test("controller flags: ingress-nginx's --flag=value and --flag value forms, $(POD_NAMESPACE) expanded, a bad port refused with the flag named", (t) => {
  const container = (args: string[]) => ({ ...{ name: 'c', image: 'registry.k8s.io/ingress-nginx/controller:v1', command: [], env: [], envFrom: [], ports: [], volumeMounts: [], securityContext: { capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false } }, args });
  t.like(controllerFlags(container(['--http-port', '8080', '--https-port=8443', '--publish-service=$(POD_NAMESPACE)/svc', '--watch-ingress-without-class']), 'ingress'), {
    httpPort: 8080,
    httpsPort: 8443,
    healthzPort: 10254,
    publishService: 'ingress/svc',
    watchWithoutClass: true,
  });
  t.deepEqual(controllerFlags(container(['--http-port=eighty']), 'default'), { problem: '--http-port=eighty: not a port number' });
  t.deepEqual(controllerFlags(container(['--healthz-port=70000']), 'default'), { problem: '--healthz-port=70000: not a port number' });
});

test("the controller's --configmap sets its defaults (ssl-redirect, proxy timeouts); an Ingress's annotations override them; a bad value keeps the default", (t) => {
  const c = cluster(
    NGINX_CLASS + services(['s']) +
      `---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller}\ndata: {ssl-redirect: "false", proxy-read-timeout: "120", proxy-connect-timeout: "soon"}\n` +
      ingressDoc('plain', 'a.com', [{ path: '/', type: 'Prefix', svc: 's' }]) +
      ingressDoc('strict', 'b.com', [{ path: '/', type: 'Prefix', svc: 's' }], ', annotations: {nginx.ingress.kubernetes.io/ssl-redirect: "true", nginx.ingress.kubernetes.io/proxy-read-timeout: "7"}'),
  );
  const config = proxyConfig(c, [], { ...FLAGS, configMap: 'default/ingress-nginx-controller' });
  const root = (host: string) => config.servers.find((s) => s.host === host)!.locations.find((l) => l.ingress !== '')!;
  t.like(root('a.com'), { sslRedirect: false, readTimeoutMs: 120_000, connectTimeoutMs: 5000 });
  t.like(root('b.com'), { sslRedirect: true, readTimeoutMs: 7000, connectTimeoutMs: 5000 });
  t.like(proxyConfig(c, [], FLAGS).servers[0].locations[0], { sslRedirect: true, readTimeoutMs: 60_000 }, 'without --configmap, ingress-nginx’s defaults');
});
