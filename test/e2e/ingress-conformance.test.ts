/**
 * The scenarios of kubernetes-sigs/ingress-controller-conformance's `features/` (default
 * backend, host rules over HTTP and TLS, path rules, ingress class, load balancing across 10
 * pods), run with curl from the outside network against the controllers' LoadBalancer
 * addresses and NodePorts, asserting what those files assert: the status code, the Service
 * that answered, and the method, path, host and headers it saw. ingress-nginx's rewrite
 * example rides along.
 *
 * The suite runs each feature alone against one controller; here they share a cluster. So
 * the two features whose Ingress has no rules (default backend, load balancing), which would
 * take every unknown host of the others, are served by a second controller of another class
 * at its own address, as a second ingress-nginx installation would serve them.
 *
 * The suite's Services each have their own echo Deployment; to keep the cluster small, one
 * pod serves them all, each Service on its own target port, so the port it answered on says
 * which Service answered (`server_port` in the echo body). echo-service has its 10 replicas.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const LB = '192.0.2.240';
const LB_DEFAULTS = '192.0.2.241';
const NODE_PORT = 30180;

/** The suite's Services, each on the shared echo pod's port of the same index (8001...). */
const SERVICES = ['foo-exact', 'foo-prefix', 'aaa-slash-bbb-prefix', 'aaa-prefix', 'aaa-slash-bbb-slash-prefix', 'foo-slash-exact', 'wildcard-foo-com', 'foo-bar-com', 'ingress-class-prefix', 'http-svc'];
const portOf = (service: string) => 8001 + SERVICES.indexOf(service);

function controller(name: string, klass: string, lb: string, nodePort: number): string {
  return `
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: ${klass}${klass === 'nginx' ? ', annotations: {ingressclass.kubernetes.io/is-default-class: "true"}' : ''}}
spec: {controller: k8s.io/${klass}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
      - name: controller
        image: registry.k8s.io/ingress-nginx/controller:v1.10.1
        args: [/nginx-ingress-controller, --controller-class=k8s.io/${klass}, --ingress-class=${klass}, --publish-service=$(POD_NAMESPACE)/${name}]
---
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  type: LoadBalancer
  loadBalancerIP: ${lb}
  selector: {app: ${name}}
  ports: [{name: http, port: 80, nodePort: ${nodePort}}, {name: https, port: 443}]
`;
}

function manifest(tlsCert: string, tlsKey: string): string {
  const services = SERVICES.map(
    (s) => `---\napiVersion: v1\nkind: Service\nmetadata: {name: ${s}}\nspec: {selector: {app: conformance-echo}, ports: [{name: http, port: 8080, targetPort: ${portOf(s)}}]}\n`,
  ).join('');
  const path = (p: string, type: string, svc: string, port = 'number: 8080') => `            - {path: "${p}", pathType: ${type}, backend: {service: {name: ${svc}, port: {${port}}}}}`;
  return `${controller('ingress-nginx-controller', 'nginx', LB, NODE_PORT)}${controller('defaults-controller', 'defaults', LB_DEFAULTS, NODE_PORT + 1)}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: conformance-echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: conformance-echo}}
  template:
    metadata: {labels: {app: conformance-echo}}
    spec: {containers: [{name: echo, image: echoserver, ports: [${SERVICES.map((s) => `{containerPort: ${portOf(s)}}`).join(', ')}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-service}
spec:
  replicas: 10
  selector: {matchLabels: {app: echo-service}}
  template:
    metadata: {labels: {app: echo-service}}
    spec: {containers: [{name: echo, image: echoserver, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo-service}
spec: {selector: {app: echo-service}, ports: [{port: 8080}]}
${services}---
apiVersion: v1
kind: Secret
metadata: {name: conformance-tls}
type: kubernetes.io/tls
data:
  tls.crt: ${Buffer.from(tlsCert).toString('base64')}
  tls.key: ${Buffer.from(tlsKey).toString('base64')}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: path-rules}
spec:
  rules:
    - host: exact-path-rules
      http:
        paths:
${path('/foo', 'Exact', 'foo-exact')}
    - host: prefix-path-rules
      http:
        paths:
${path('/foo', 'Prefix', 'foo-prefix')}
${path('/aaa/bbb', 'Prefix', 'aaa-slash-bbb-prefix')}
${path('/aaa', 'Prefix', 'aaa-prefix')}
    - host: mixed-path-rules
      http:
        paths:
${path('/foo', 'Prefix', 'foo-prefix')}
${path('/foo', 'Exact', 'foo-exact')}
    - host: trailing-slash-path-rules
      http:
        paths:
${path('/aaa/bbb/', 'Prefix', 'aaa-slash-bbb-slash-prefix')}
${path('/foo/', 'Exact', 'foo-slash-exact')}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: host-rules}
spec:
  tls:
    - hosts: [foo.bar.com]
      secretName: conformance-tls
  rules:
    - host: "*.foo.com"
      http:
        paths:
${path('/', 'Prefix', 'wildcard-foo-com')}
    - host: foo.bar.com
      http:
        paths:
${path('/', 'Prefix', 'foo-bar-com', 'name: http')}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: test-ingress-class}
spec:
  ingressClassName: some-invalid-class-name
  rules:
    - host: ingress-class
      http:
        paths:
${path('/', 'Prefix', 'ingress-class-prefix')}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: rewrite
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    nginx.ingress.kubernetes.io/rewrite-target: /$2
spec:
  rules:
    - host: rewrite.bar.com
      http:
        paths:
${path('/something(/|$)(.*)', 'ImplementationSpecific', 'http-svc')}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: default-backend}
spec:
  ingressClassName: defaults
  defaultBackend: {service: {name: echo-service, port: {number: 8080}}}
`;
}

const cluster = new TestCluster(`ingc${process.pid % 10000}`);
let caFile = '';

test.before(async () => {
  if (skip !== undefined) return;
  // The suite's "self-signed TLS secret named conformance-tls for the foo.bar.com hostname".
  const key = join(cluster.stateRoot, 'tls.key');
  caFile = join(cluster.stateRoot, 'tls.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', caFile, '-days', '1', '-subj', '/CN=foo.bar.com', '-addext', 'subjectAltName=DNS:foo.bar.com'], { stdio: 'ignore' });
  await cluster.up(manifest(readFileSync(caFile, 'utf8'), readFileSync(key, 'utf8')));
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`ingress conformance skipped: ${skip}`, (t) => t.pass());

interface Answer {
  status: number;
  body: string;
  headers: string;
}

/** curl from the outside network; `-w` puts the status last, `-D` the response head first. */
async function send(url: string, extra: string[] = []): Promise<Answer> {
  const r = await cluster.podwire(['outside', '--', 'curl', '-sS', '-m', '5', '-D', '-', '-w', '\n%{http_code}', ...extra, url]);
  const head = r.stdout.indexOf('\r\n\r\n');
  const headers = head < 0 ? '' : r.stdout.slice(0, head);
  const rest = head < 0 ? r.stdout : r.stdout.slice(head + 4);
  const lines = rest.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') + r.stderr, headers };
}

/** A request for `http://HOST/PATH`, sent to the controller's address as the suite's resolver would. */
function at(host: string, path: string, address = LB, extra: string[] = []): Promise<Answer> {
  return send(`http://${host}${path}`, ['--resolve', `${host}:80:${address}`, ...extra]);
}

/** Which of the suite's Services answered: the shared echo pod's port says it. */
function servedBy(a: Answer): string | undefined {
  const port = Number(/server_port=(\d+)/.exec(a.body)?.[1]);
  if (port === 8080) return 'echo-service';
  return SERVICES[port - 8001];
}

const requestPath = (a: Answer) => /real path=(\S*)/.exec(a.body)?.[1];
const requestHeader = (a: Answer, name: string) => new RegExp(`\\t${name}=(.*)\\n`).exec(a.body)?.[1];

serial('path rules: Exact, Prefix by element, longest match, Exact preferred, trailing slashes, case-sensitive', async (t) => {
  const rows: [string, string, number, string?][] = [
    ['exact-path-rules', '/foo', 200, 'foo-exact'],
    ['exact-path-rules', '/foo/', 404],
    ['exact-path-rules', '/FOO', 404],
    ['exact-path-rules', '/bar', 404],
    ['prefix-path-rules', '/foo', 200, 'foo-prefix'],
    ['prefix-path-rules', '/foo/', 200, 'foo-prefix'],
    ['prefix-path-rules', '/FOO', 404],
    ['prefix-path-rules', '/aaa/bbb', 200, 'aaa-slash-bbb-prefix'],
    ['prefix-path-rules', '/aaa/bbb/ccc', 200, 'aaa-slash-bbb-prefix'],
    ['prefix-path-rules', '/aaa/ccc', 200, 'aaa-prefix'],
    ['prefix-path-rules', '/aaaccc', 404],
    ['mixed-path-rules', '/foo', 200, 'foo-exact'],
    ['trailing-slash-path-rules', '/aaa/bbb', 200, 'aaa-slash-bbb-slash-prefix'],
    ['trailing-slash-path-rules', '/aaa/bbb/', 200, 'aaa-slash-bbb-slash-prefix'],
    ['trailing-slash-path-rules', '/foo', 404],
  ];
  for (const [host, path, status, service] of rows) {
    const a = await at(host, path);
    t.is(a.status, status, `${host}${path}: ${a.body}`);
    if (service === undefined) continue;
    t.is(servedBy(a), service, `${host}${path}`);
    t.is(requestPath(a), path, `${host}${path}: the request path`);
  }
});

serial('host rules: exact host over HTTP and TLS (the certificate verified for foo.bar.com), a one-label wildcard, no match otherwise', async (t) => {
  const tls = await send('https://foo.bar.com/', ['--cacert', caFile, '--resolve', `foo.bar.com:443:${LB}`]);
  t.is(tls.status, 200, tls.body);
  t.is(servedBy(tls), 'foo-bar-com');
  t.is(requestHeader(tls, 'host'), 'foo.bar.com');
  t.is(requestHeader(tls, 'x-forwarded-proto'), 'https');
  // foo.bar.com has TLS: plain HTTP is redirected there (308), as ingress-nginx does; the suite's client follows it.
  const redirect = await at('foo.bar.com', '/');
  t.is(redirect.status, 308);
  t.regex(redirect.headers, /\r\nlocation: https:\/\/foo\.bar\.com\/(\r\n|$)/i);
  const followed = await at('foo.bar.com', '/', LB, ['-L', '--cacert', caFile, '--resolve', `foo.bar.com:443:${LB}`]);
  t.is(followed.status, 200);
  t.is(servedBy(followed), 'foo-bar-com');
  t.is((await at('subdomain.bar.com', '/')).status, 404);
  const wild = await at('bar.foo.com', '/');
  t.is(wild.status, 200);
  t.is(servedBy(wild), 'wildcard-foo-com');
  t.is(requestHeader(wild, 'host'), 'bar.foo.com');
  t.is((await at('baz.bar.foo.com', '/')).status, 404);
  t.is((await at('foo.com', '/')).status, 404);
  const viaNodePort = await send(`http://192.0.2.11:${NODE_PORT}/`, ['-H', 'Host: bar.foo.com']);
  t.is(servedBy(viaNodePort), 'wildcard-foo-com', 'the same through the NodePort');
});

serial('ingress class: an Ingress of an invalid class is not routed and its status has no address; the served ones have the controller’s', async (t) => {
  t.is((await at('ingress-class', '/')).status, 404);
  const r = await cluster.podwire(['get', 'ingresses', '-o', 'json']);
  const list = JSON.parse(r.stdout) as { items: { metadata: { name: string }; status: { loadBalancer: { ingress?: { ip: string }[] } } }[] };
  const address = Object.fromEntries(list.items.map((i) => [i.metadata.name, (i.status.loadBalancer.ingress ?? []).map((x) => x.ip)]));
  t.deepEqual(address, { 'default-backend': [LB_DEFAULTS], 'host-rules': [LB], 'path-rules': [LB], rewrite: [LB], 'test-ingress-class': [] });
});

serial('default backend: an Ingress with no rules takes every method, host and path; the response has Content-Length, Content-Type, Date and Server', async (t) => {
  const examples: [string, string, string][] = [
    ['GET', 'my-host', ''],
    ['GET', 'my-host', 'sub-path'],
    ['POST', 'some-host', ''],
    ['PUT', '', 'resource'],
    ['DELETE', 'some-host', 'resource'],
    ['PATCH', 'my-host', 'resource'],
  ];
  for (const [method, host, path] of examples) {
    const hostArgs = host === '' ? [] : ['-H', `Host: ${host}`];
    const a = await send(`http://${LB_DEFAULTS}/${path}`, ['-X', method, '-A', 'Go-http-client/1.1', ...hostArgs]);
    t.is(a.status, 200, `${method} ${host}/${path}`);
    t.is(servedBy(a), 'echo-service');
    t.regex(a.headers, /^HTTP\/1\.1 200/);
    for (const field of ['content-length', 'content-type', 'date', 'server']) t.regex(a.headers, new RegExp(`\\r\\n${field}: \\S`, 'i'), `${field} in ${a.headers}`);
    t.regex(a.body, new RegExp(`\\tmethod=${method}\\n`));
    t.is(requestPath(a), `/${path}`);
    t.regex(a.body, /\trequest_version=1\.1\n/);
    t.is(requestHeader(a, 'user-agent'), 'Go-http-client/1.1');
  }
});

/** Waits (bounded) until a node's rules hold `count` endpoints of a Service: a node learns the other node's ready pods a moment after they are. */
async function endpointsKnown(node: string, service: string, count: number): Promise<number> {
  const deadline = Date.now() + 20_000;
  let seen = 0;
  while (Date.now() < deadline) {
    const rules = await cluster.podwire(['rules', node]);
    seen = rules.stdout.split('\n').filter((l) => l.includes(`"${service} -> `) && l.includes('-j KUBE-SEP-')).length;
    if (seen >= count) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return seen;
}

serial('load balancing: 100 requests to an Ingress whose default backend has 10 pods reach all 10', async (t) => {
  const controllerNode = (await cluster.status()).pods.find((p) => p.name.startsWith('defaults-controller-'))!.node;
  t.is(await endpointsKnown(controllerNode, 'default/echo-service', 10), 10, "the controller's node knows all 10 endpoints");
  const urls = Array.from({ length: 100 }, () => `http://${LB_DEFAULTS}/`);
  // One curl, a new connection per request (Connection: close), as the suite's client sends them.
  const r = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '30', '-H', 'Connection: close', '-w', 'STATUS=%{http_code}\n', ...urls], 60_000);
  const statuses = [...r.stdout.matchAll(/STATUS=(\d+)/g)].map((m) => m[1]);
  t.is(statuses.length, 100);
  t.true(statuses.every((s) => s === '200'), statuses.join(' '));
  const pods = new Set([...r.stdout.matchAll(/pod IP:\t(\S+)/g)].map((m) => m[1]));
  t.is(pods.size, 10, [...pods].join(' '));
});

serial("ingress-nginx's rewrite example: /something(/|$)(.*) rewritten to /$2", async (t) => {
  for (const [path, want] of [['/something', '/'], ['/something/', '/'], ['/something/new', '/new'], ['/something/new?x=1', '/new?x=1']]) {
    const a = await at('rewrite.bar.com', path);
    t.is(a.status, 200, path);
    t.is(servedBy(a), 'http-svc');
    t.is(requestPath(a), want, path);
  }
  t.is((await at('rewrite.bar.com', '/other')).status, 404);
});
