/**
 * Live changes to what an ingress controller routes, with the cluster in etcd (where
 * `podwire apply` changes any object): an Ingress edited to send a path to another Service,
 * a Secret's certificate renewed, a Service's port renumbered. Each takes effect in the
 * running controller pod (the same pod, not restarted). That a request in flight finishes
 * on its old route across such a change is held by test/node/ingress-proxy.test.ts.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeUnderlay, type Underlay } from '../helpers/machines.js';
import { etcdAvailable } from '../helpers/etcd.js';
import { startPodwire, until, type PodwireCluster } from '../helpers/joined-cluster.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun') && etcdAvailable();
const CONTROLLER_IP = '10.96.90.90';

const BASE = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller}
spec:
  replicas: 1
  selector: {matchLabels: {app: controller}}
  template:
    metadata: {labels: {app: controller}}
    spec: {containers: [{name: c, image: registry.k8s.io/ingress-nginx/controller:v1.10.1}]}
---
apiVersion: v1
kind: Service
metadata: {name: controller}
spec: {clusterIP: ${CONTROLLER_IP}, selector: {app: controller}, ports: [{name: http, port: 80}, {name: https, port: 443}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: blue}
spec:
  replicas: 1
  selector: {matchLabels: {app: blue}}
  template:
    metadata: {labels: {app: blue}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 8001}, {containerPort: 8002}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: green}
spec:
  replicas: 1
  selector: {matchLabels: {app: green}}
  template:
    metadata: {labels: {app: green}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 8001}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
`;

const service = (name: string, target: number) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: {selector: {app: ${name}}, ports: [{port: 80, targetPort: ${target}}]}\n`;
const ingress = (svc: string) => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app}
spec:
  ingressClassName: nginx
  tls: [{hosts: [app.test], secretName: app-tls}]
  rules:
  - host: app.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: ${svc}, port: {number: 80}}}}]}
`;
const secret = (cert: string, key: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: app-tls}\ntype: kubernetes.io/tls\ndata: {tls.crt: ${Buffer.from(cert).toString('base64')}, tls.key: ${Buffer.from(key).toString('base64')}}\n`;

let underlay: Underlay | undefined;
let cluster: PodwireCluster | undefined;
const c = () => cluster!;

function certificate(dir: string, serial: string): { cert: string; key: string } {
  const key = join(dir, `tls-${serial}.key`);
  const cert = join(dir, `tls-${serial}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=app.test/OU=${serial}`, '-addext', 'subjectAltName=DNS:app.test'], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

const get = (path = '/') => c().inPod('client', ['curl', '-sk', '-m', '8', '--resolve', `app.test:443:${CONTROLLER_IP}`, `https://app.test${path}`]);
const answeredBy = async () => /^Hostname: (\w+)-/m.exec(await get())?.[1];
const served = async (serial: string) => (await c().inPod('client', ['sh', '-c', `echo | openssl s_client -connect ${CONTROLLER_IP}:443 -servername app.test 2>/dev/null | grep subject=`])).includes(`OU = ${serial}`);

test.before(async () => {
  if (!canRun) return;
  underlay = await makeUnderlay({ machines: 1 });
  cluster = await startPodwire(underlay, underlay.machines, '{}', 'il');
  const first = certificate(cluster.dir, 'one');
  await cluster.apply(`${BASE}---\n${service('blue', 8001)}---\n${service('green', 8001)}---\n${secret(first.cert, first.key)}---\n${ingress('blue')}`);
  await cluster.podsReady(4, 60_000);
});

test.after.always(async () => {
  await cluster?.close();
  await underlay?.destroy();
});

const e2e = canRun ? test.serial : test.serial.skip;
if (!canRun) test('live ingress changes need root, /dev/net/tun and etcd-server (skipped)', (t) => t.pass());

e2e('an edited Ingress, a renewed Secret and a renumbered Service port take effect in the running controller', async (t) => {
  await until('blue answers through the ingress', 20_000, async () => ((await answeredBy()) === 'blue' ? true : undefined));
  t.true(await served('one'), 'the Secret’s certificate');
  const controllerBefore = (await c().status()).pods.find((p) => p.name.startsWith('controller-'));

  await c().apply(ingress('green'));
  await until('the edited Ingress routes to green', 20_000, async () => ((await answeredBy()) === 'green' ? true : undefined));

  const second = certificate(c().dir, 'two');
  await c().apply(secret(second.cert, second.key));
  await until('the renewed certificate is served', 20_000, async () => ((await served('two')) ? true : undefined));

  await c().apply(`${ingress('blue')}---\n${service('blue', 8002)}`);
  await until('blue answers on its new target port', 20_000, async () => (/server_port=8002\n/.test(await get()) ? true : undefined));

  const controllerAfter = (await c().status()).pods.find((p) => p.name.startsWith('controller-'));
  t.deepEqual(controllerAfter, controllerBefore, 'the same controller pod, never restarted');
});
