/**
 * Seed 004's walk from the outside network: curl with `Host: microservice1.com` at the
 * ingress controller's LoadBalancer address (and its NodePort) reaches
 * microservice1-service:5000 and one of its two pods on port 4000, through ingress-nginx's
 * Deployment running podwire's proxy. The controller's own answers (404 default backend,
 * /healthz, 503 without endpoints, 502 when the backend refuses), the headers the backend
 * sees, the Ingress's address in `get ingresses`, and endpoints followed live while the
 * backend scales.
 */
import anyTest, { type TestFn } from 'ava';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const LB = '192.0.2.240';
const NODE_PORT = 30080;

export const SEED_004 = `
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ingress-nginx-controller, labels: {app.kubernetes.io/name: ingress-nginx}}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: ingress-nginx}}
  template:
    metadata: {labels: {app.kubernetes.io/name: ingress-nginx}}
    spec:
      containers:
      - name: controller
        image: registry.k8s.io/ingress-nginx/controller:v1.10.1
        args:
        - /nginx-ingress-controller
        - --publish-service=$(POD_NAMESPACE)/ingress-nginx-controller
        - --election-id=ingress-nginx-leader
        - --controller-class=k8s.io/ingress-nginx
        - --ingress-class=nginx
        ports:
        - {name: http, containerPort: 80}
        - {name: https, containerPort: 443}
        - {name: webhook, containerPort: 8443}
---
apiVersion: v1
kind: Service
metadata: {name: ingress-nginx-controller}
spec:
  type: LoadBalancer
  loadBalancerIP: ${LB}
  externalTrafficPolicy: Local
  selector: {app.kubernetes.io/name: ingress-nginx}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: ${NODE_PORT}}
  - {name: https, port: 443, targetPort: https, nodePort: 30443}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: microservice1}
spec:
  replicas: 2
  selector: {matchLabels: {app: microservice1}}
  template:
    metadata: {labels: {app: microservice1}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 4000}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: microservice1-service}
spec:
  selector: {app: microservice1}
  ports:
  - {name: web, port: 5000, targetPort: 4000}
  - {name: closed, port: 5001, targetPort: 4999}
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec: {selector: {app: nobody}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: microservice1-ingress}
spec:
  ingressClassName: nginx
  rules:
  - host: microservice1.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: microservice1-service, port: {number: 5000}}}
      - path: /closed
        pathType: Prefix
        backend: {service: {name: microservice1-service, port: {name: closed}}}
      - path: /nobody
        pathType: Exact
        backend: {service: {name: nobody, port: {number: 80}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: guarded}
spec:
  replicas: 1
  selector: {matchLabels: {app: guarded}}
  template:
    metadata: {labels: {app: guarded}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: guarded}
spec: {selector: {app: guarded}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: guarded-from-nobody}
spec:
  podSelector: {matchLabels: {app: guarded}}
  ingress: [{from: [{podSelector: {matchLabels: {app: nobody}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: guarded
  annotations: {nginx.ingress.kubernetes.io/proxy-connect-timeout: "1"}
spec:
  ingressClassName: nginx
  rules:
  - host: guarded.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: guarded, port: {number: 80}}}}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: unserved}
spec:
  ingressClassName: other
  rules:
  - host: other.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: microservice1-service, port: {number: 5000}}}}]}
`;

const cluster = new TestCluster(`ing${process.pid % 10000}`);

test.before(async () => {
  if (skip === undefined) await cluster.up(SEED_004);
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`ingress skipped: ${skip}`, (t) => t.pass());

/** externalTrafficPolicy Local (as ingress-nginx's cloud manifest has it, to keep the client's address): the controller's node answers. */
async function controllerNodeAddress(): Promise<string> {
  const s = await cluster.status();
  const node = s.pods.find((p) => p.name.startsWith('ingress-nginx-controller-'))!.node;
  return `192.0.2.${10 + Number(node.replace('node-', ''))}`;
}

async function outsideCurl(args: string[]) {
  const r = await cluster.podwire(['outside', '--', 'curl', '-s', '-m', '5', '-w', '\\n%{http_code}', ...args]);
  const lines = r.stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n'), stderr: r.stderr };
}

/** Waits (bounded) until a node's rules hold `count` endpoints of a Service port: a node learns the other node's ready pods a moment after they are. */
async function endpointsKnown(node: string, servicePort: string, count: number): Promise<number> {
  const deadline = Date.now() + 20_000;
  let seen = 0;
  while (Date.now() < deadline) {
    const rules = await cluster.podwire(['rules', node]);
    seen = rules.stdout.split('\n').filter((l) => l.includes(`"${servicePort} -> `) && l.includes('-j KUBE-SEP-')).length;
    if (seen >= count) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return seen;
}

serial("seed 004: curl -H 'Host: microservice1.com' http://LB/ from outside reaches microservice1-service:5000 and one of its two pods on port 4000", async (t) => {
  const status = await cluster.status();
  const pods = status.pods.filter((p) => p.name.startsWith('microservice1-'));
  t.is(pods.length, 2);
  const controllerNode = status.pods.find((p) => p.name.startsWith('ingress-nginx-controller-'))!.node;
  t.is(await endpointsKnown(controllerNode, 'default/microservice1-service:web', 2), 2, "the controller's node knows both endpoints");
  const seen = new Set<string>();
  for (let i = 0; i < 16; i++) {
    const r = await outsideCurl(['-H', 'Host: microservice1.com', `http://${LB}/`]);
    t.is(r.status, 200, r.body + r.stderr);
    t.regex(r.body, /server_port=4000\n/);
    seen.add(/^Hostname: (\S+)/m.exec(r.body)?.[1] ?? '');
  }
  t.true([...seen].every((name) => pods.some((p) => p.name === name)), [...seen].join(' '));
  t.is(seen.size, 2, 'the ClusterIP spreads the proxy’s connections over both pods');
  const viaNodePort = await outsideCurl(['-H', 'Host: microservice1.com', `http://${await controllerNodeAddress()}:${NODE_PORT}/some/path?q=1`]);
  t.is(viaNodePort.status, 200);
  t.regex(viaNodePort.body, /real path=\/some\/path\?q=1\n/);
});

serial('the backend sees the Host kept and the X-Forwarded-* headers ingress-nginx sets, from the controller pod’s address', async (t) => {
  const controller = await cluster.podIp('ingress-nginx-controller-');
  const r = await outsideCurl(['-H', 'Host: microservice1.com', '-H', 'X-Forwarded-For: 6.6.6.6', `http://${LB}/`]);
  t.is(r.status, 200);
  t.regex(r.body, /\thost=microservice1\.com\n/);
  t.regex(r.body, /\tx-forwarded-for=192\.0\.2\.1\n/, 'the client as the controller saw it, not what it claimed');
  t.regex(r.body, /\tx-real-ip=192\.0\.2\.1\n/);
  t.regex(r.body, /\tx-forwarded-host=microservice1\.com\n/);
  t.regex(r.body, /\tx-forwarded-port=80\n/);
  t.regex(r.body, /\tx-forwarded-proto=http\n/);
  t.regex(r.body, /\tx-request-id=[0-9a-f]{32}\n/);
  t.regex(r.body, new RegExp(`client_address=${controller.replaceAll('.', '\\.')}\\n`), 'the hop to the backend starts at the controller pod');
});

serial("the controller's own answers: 404 from the default backend, /healthz 200, 503 without endpoints, 502 when the backend refuses; another class's Ingress is not routed", async (t) => {
  const unknown = await outsideCurl(['-H', 'Host: nowhere.example', `http://${LB}/`]);
  t.deepEqual([unknown.status, unknown.body], [404, 'default backend - 404\n']);
  const health = await outsideCurl([`http://${LB}/healthz`]);
  t.deepEqual([health.status, health.body], [200, 'ok\n']);
  const none = await outsideCurl(['-H', 'Host: microservice1.com', `http://${LB}/nobody`]);
  t.is(none.status, 503);
  t.regex(none.body, /default\/nobody has no ready endpoints/);
  const refused = await outsideCurl(['-H', 'Host: microservice1.com', `http://${LB}/closed`]);
  t.is(refused.status, 502);
  t.regex(refused.body, /^502 Bad Gateway: default\/microservice1-service at 10\.\d+\.\d+\.\d+:5001 refused the connection/);
  const other = await outsideCurl(['-H', 'Host: other.com', `http://${LB}/`]);
  t.is(other.status, 404, 'an Ingress of a class no controller serves is left alone');
});

serial("the controller's hop to the backend is a pod's connection like any other: NetworkPolicy drops it (504 after the connect timeout), trace walks it through the Service's DNAT", async (t) => {
  const denied = await outsideCurl(['-H', 'Host: guarded.com', `http://${LB}/`]);
  t.is(denied.status, 504, denied.body);
  t.regex(denied.body, /^504 Gateway Timeout: default\/guarded at 10\.\d+\.\d+\.\d+:80 did not accept the connection within 1000 ms/);
  const s = await cluster.status();
  const controller = s.pods.find((p) => p.name.startsWith('ingress-nginx-controller-'))!;
  const backends = s.pods.filter((p) => p.name.startsWith('microservice1-')).map((p) => p.ip);
  const svc = await cluster.podwire(['get', 'services', '-o', 'json']);
  const clusterIP = (JSON.parse(svc.stdout) as { items: { metadata: { name: string }; spec: { clusterIP: string } }[] }).items.find((i) => i.metadata.name === 'microservice1-service')!.spec.clusterIP;
  const trace = await cluster.podwire(['trace', controller.node, '--from', controller.name, '--to', `${clusterIP}:5000`]);
  t.is(trace.code, 0, trace.stderr);
  t.true(backends.some((ip) => trace.stdout.includes(`${ip}:4000`)), trace.stdout);
});

serial('podwire get ingresses: the served Ingress has the LoadBalancer address, the other none', async (t) => {
  const r = await cluster.podwire(['get', 'ingresses']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  t.is(lines.length, 4);
  t.regex(lines[0], /^NAME +CLASS +HOSTS +ADDRESS +PORTS +AGE$/);
  t.regex(lines[1], /^guarded +nginx +guarded\.com +192\.0\.2\.240 +80 +\d+s$/);
  lines.splice(1, 1);
  t.regex(lines[1], new RegExp(`^microservice1-ingress +nginx +microservice1\\.com +${LB.replaceAll('.', '\\.')} +80 +\\d+s$`));
  t.regex(lines[2], /^unserved +other +other\.com +80 +\d+s$/, 'no address: no controller serves its class');
});

serial('endpoints are followed live: the backend scales to 4 and back to 2, and the new pods answer through the same controller', async (t) => {
  const controllerBefore = await cluster.podIp('ingress-nginx-controller-');
  t.is((await cluster.podwire(['scale', 'deployment/microservice1', '--replicas', '4'])).code, 0);
  const deadline = Date.now() + 30_000;
  const seen = new Set<string>();
  while (seen.size < 4 && Date.now() < deadline) {
    const r = await outsideCurl(['-H', 'Host: microservice1.com', `http://${LB}/`]);
    t.is(r.status, 200, r.body);
    seen.add(/^Hostname: (\S+)/m.exec(r.body)?.[1] ?? '');
  }
  t.is(seen.size, 4, [...seen].join(' '));
  t.is((await cluster.podwire(['scale', 'deployment/microservice1', '--replicas', '2'])).code, 0);
  for (let i = 0; i < 10; i++) t.is((await outsideCurl(['-H', 'Host: microservice1.com', `http://${LB}/`])).status, 200);
  t.is(await cluster.podIp('ingress-nginx-controller-'), controllerBefore, 'the controller was not restarted');
});

serial('wrk through the ingress while the backend scales from 2 to 4 and back: every request is answered 200', async (t) => {
  const load = cluster.podwire(['outside', '--', 'wrk', '-t', '1', '-c', '8', '-d', '14s', '-H', 'Host: microservice1.com', `http://${LB}/`], 60_000);
  await new Promise((r) => setTimeout(r, 2000));
  t.is((await cluster.podwire(['scale', 'deployment/microservice1', '--replicas', '4'])).code, 0);
  await new Promise((r) => setTimeout(r, 5000));
  t.is((await cluster.podwire(['scale', 'deployment/microservice1', '--replicas', '2'])).code, 0);
  const r = await load;
  t.is(r.code, 0, r.stderr);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
  t.true(requests > 500, r.stdout);
  t.notRegex(r.stdout, /Non-2xx or 3xx responses/, r.stdout);
  t.notRegex(r.stdout, /Socket errors/, r.stdout);
  t.log(r.stdout.split('\n').filter((l) => /Requests\/sec|Latency|requests in/.test(l)).join('\n'));
});
