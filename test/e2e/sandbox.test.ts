/**
 * Pods set up as the kubelet sets them up (issue 18), checked from inside with the tools a
 * learner uses: hostname, /etc/hosts, env, ps, id, /proc/self/status, ping; the pod's own
 * view of the filesystem and what it can no longer reach (podwire's state, control sockets,
 * the host's namespaces); volumes; securityContext; restarts.
 */
import anyTest, { type TestFn } from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';
import { sandboxUnavailable } from '../../src/sandbox/launcher.js';

const skip = kernelSkipReason() ?? sandboxUnavailable();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const SECURE_YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  greeting: hello from a ConfigMap
  app.properties: |
    color=blue
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
type: Opaque
data:
  password: czNjcmV0   # s3cret
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.7.7
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: secure, labels: {app: secure}}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000]}
  volumes:
    - {name: config, configMap: {name: app-config}}
    - {name: creds, secret: {secretName: app-secret}}
    - {name: cache, emptyDir: {}}
  containers:
    - name: app
      image: busybox
      env:
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}}
        - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: app-secret, key: password}}}
        - {name: URL, value: "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/"}
      securityContext: {capabilities: {drop: [ALL]}, allowPrivilegeEscalation: false}
      volumeMounts:
        - {name: config, mountPath: /etc/app}
        - {name: creds, mountPath: /var/run/secrets/app}
        - {name: cache, mountPath: /cache}
---
apiVersion: v1
kind: Pod
metadata: {name: noraw}
spec:
  containers:
    - {name: c, image: busybox, securityContext: {capabilities: {drop: [ALL]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: readonly}
spec:
  enableServiceLinks: false
  containers:
    - {name: c, image: busybox, securityContext: {readOnlyRootFilesystem: true}}
---
apiVersion: v1
kind: Pod
metadata: {name: named}
spec:
  hostname: web-0
  subdomain: web
  hostAliases:
    - {ip: 10.1.2.3, hostnames: [foo.local, bar.local]}
  containers:
    - {name: c, image: busybox}
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
    - {name: c, image: busybox}
---
apiVersion: v1
kind: Pod
metadata: {name: twins}
spec:
  restartPolicy: Never
  containers:
    - {name: first, image: busybox}
    - {name: second, image: busybox, command: [sh, -c, "sleep 0.5; exit 3"]}
`;

const demo = new TestCluster(`sbd${process.pid % 10000}`);
const secure = new TestCluster(`sbs${process.pid % 10000}`);

test.before(async () => {
  if (skip !== undefined) return;
  await Promise.all([demo.up(undefined), secure.up(SECURE_YAML)]);
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  await Promise.all([demo.teardown(), secure.teardown()]);
  t.deepEqual([...demo.leftovers(), ...secure.leftovers()], [], 'podwire down leaves nothing behind');
});

if (skip !== undefined) test(`sandbox end-to-end skipped: ${skip}`, (t) => t.pass());

async function out(cluster: TestCluster, pod: string, argv: string[], extra: string[] = []): Promise<string> {
  const r = await cluster.podwire(['exec', ...extra, pod, '--', ...argv]);
  if (r.code !== 0) throw new Error(`exec ${pod} ${argv.join(' ')}: ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

serial('a demo pod has its own hostname, /etc/hosts and service environment', async (t) => {
  const ip = await demo.podIp('client');
  t.is((await out(demo, 'client', ['hostname'])).trim(), 'client');
  const hosts = await out(demo, 'client', ['cat', '/etc/hosts']);
  t.true(hosts.startsWith('# Kubernetes-managed hosts file.\n'), hosts);
  t.regex(hosts, new RegExp(`^${ip.replaceAll('.', '\\.')}\\tclient$`, 'm'));
  const env = (await out(demo, 'client', ['env'])).split('\n');
  t.true(env.includes('CLUSTERIP_SERVICE_SERVICE_HOST=10.100.100.100'), env.join('\n'));
  t.true(env.includes('CLUSTERIP_SERVICE_PORT=tcp://10.100.100.100:80'), env.join('\n'));
  t.true(env.some((l) => l.startsWith('KUBERNETES_SERVICE_HOST=')), env.join('\n'));
  t.true(env.includes('HOSTNAME=client'));
  const resolv = await out(demo, 'client', ['cat', '/etc/resolv.conf']);
  t.regex(resolv, /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/m);
});

serial('ps in a pod lists only the pod: its pause as PID 1 and its containers', async (t) => {
  const ps = await out(demo, 'client', ['ps', '-e', '-o', 'pid=,comm=']);
  const rows = ps
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/));
  t.deepEqual(rows[0], ['1', 'pause'], ps);
  t.deepEqual(rows.map((r) => r[1]).sort(), ['pause', 'ps', 'sleep'], ps);
});

serial("a pod sees none of podwire's state, sockets or the host's namespaces", async (t) => {
  const probe = async (script: string) => (await demo.podwire(['exec', 'client', '--', 'sh', '-c', script])).code;
  t.not(await probe('ls /run/podwire'), 0, '/run/podwire is not there');
  t.not(await probe(`ls ${demo.stateRoot}`), 0, 'nor the state directory the test gave');
  const socket = join(demo.stateRoot, demo.name, 'node-1.sock');
  t.true(existsSync(socket), 'the control socket exists on the host');
  t.not(await probe(`test -e ${socket}`), 0, "a node's control socket cannot be reached from a pod");
  t.not(await probe('ls /run/netns/*'), 0, 'no network namespace handles');
  t.not(await probe('nsenter -t 1 -n true'), 0, 'cannot enter namespaces (no CAP_SYS_ADMIN)');
  t.is((await out(demo, 'client', ['cat', '/proc/1/comm'])).trim(), 'pause', "PID 1 is the pod's, not the host's");
  t.not(await probe('echo 1 > /proc/sys/net/ipv4/ip_forward'), 0, '/proc/sys is read-only');
  t.not(await probe('mount -t tmpfs x /mnt'), 0, 'cannot mount');
  // A write to the host's files lands in the container's own layer, not on the host.
  t.is(await probe('echo probe > /etc/podwire-sandbox-probe && cat /etc/podwire-sandbox-probe'), 0);
  t.false(existsSync('/etc/podwire-sandbox-probe'));
});

serial('curl, dig and ping work from a sandboxed pod as before', async (t) => {
  t.regex(await out(demo, 'client', ['curl', '-s', '--max-time', '10', 'http://clusterip-service/']), /^Hostname: deploy-nginx-/m);
  t.is((await out(demo, 'client', ['dig', '+short', 'clusterip-service.default.svc.cluster.local'])).trim(), '10.100.100.100');
  t.regex(await out(demo, 'client', ['ping', '-c', '1', '-W', '2', '10.100.100.100']).catch((e: Error) => e.message), /1 received|Destination Port Unreachable|exec client/);
  const gateway = (await demo.podIp('client')).replace(/\.\d+$/, '.1');
  t.regex(await out(demo, 'client', ['ping', '-c', '1', '-W', '2', gateway]), /1 received/);
});

serial('a killed container comes back with its restart count raised', async (t) => {
  await out(demo, 'client', ['sh', '-c', 'kill -9 $(pidof sleep)']);
  const deadline = Date.now() + 20_000;
  let container: { restartCount: number; running: boolean } | undefined;
  while (Date.now() < deadline) {
    container = await clientContainer();
    if (container !== undefined && container.restartCount === 1 && container.running) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.like(container, { restartCount: 1, running: true });
  const get = await demo.podwire(['get', 'pods']);
  t.regex(get.stdout, /^client\s+1\/1\s+Running\s+1\s/m, get.stdout);
});

async function clientContainer(): Promise<{ restartCount: number; running: boolean } | undefined> {
  const r = await demo.podwire(['status', '--json']);
  const status = JSON.parse(r.stdout) as { nodes: { detail?: { pods: { name: string; containers: { restartCount: number; running: boolean }[] }[] } }[] };
  for (const node of status.nodes) {
    const pod = node.detail?.pods.find((p) => p.name === 'client');
    if (pod !== undefined) return pod.containers[0];
  }
  return undefined;
}

serial('runAsUser, runAsGroup and supplementalGroups set the user; drop ALL empties the bounding set', async (t) => {
  t.is((await out(secure, 'secure', ['id', '-u'])).trim(), '1000');
  t.is((await out(secure, 'secure', ['id', '-g'])).trim(), '3000');
  t.deepEqual((await out(secure, 'secure', ['id', '-G'])).trim().split(' ').sort(), ['3000', '4000']);
  const status = await out(secure, 'secure', ['cat', '/proc/self/status']);
  t.regex(status, /^CapBnd:\t0000000000000000$/m);
  t.regex(status, /^CapEff:\t0000000000000000$/m);
  t.regex(status, /^NoNewPrivs:\t1$/m);
  t.is((await out(secure, 'secure', ['id', '-u'], ['--user', '0'])).trim(), '0', '--user overrides');
});

serial('ConfigMap and Secret volumes and env, the downward API and $(VAR) expansion', async (t) => {
  t.is(await out(secure, 'secure', ['cat', '/etc/app/greeting']), 'hello from a ConfigMap');
  t.is(await out(secure, 'secure', ['cat', '/etc/app/app.properties']), 'color=blue\n');
  t.is(await out(secure, 'secure', ['cat', '/var/run/secrets/app/password']), 's3cret');
  t.not((await secure.podwire(['exec', 'secure', '--', 'sh', '-c', 'echo x > /etc/app/greeting'])).code, 0, 'a ConfigMap volume is read-only');
  t.is((await out(secure, 'secure', ['sh', '-c', 'echo cached > /cache/f && cat /cache/f'])).trim(), 'cached', 'an emptyDir is writable by the pod user');
  const env = (await out(secure, 'secure', ['env'])).split('\n');
  const ip = await secure.podIp('secure');
  for (const line of ['GREETING=hello from a ConfigMap', `MY_IP=${ip}`, 'MY_NODE=node-1', 'PASSWORD=s3cret', 'URL=http://10.96.7.7:80/', 'WEB_SERVICE_HOST=10.96.7.7']) {
    t.true(env.includes(line), `${line} in\n${env.join('\n')}`);
  }
});

serial('drop ALL leaves root unable to open a raw socket; the default set can', async (t) => {
  const gateway = (await secure.podIp('noraw')).replace(/\.\d+$/, '.1');
  const denied = await secure.podwire(['exec', 'noraw', '--', 'ping', '-c', '1', '-W', '2', gateway]);
  t.not(denied.code, 0);
  t.regex(denied.stderr + denied.stdout, /Operation not permitted|permission/i);
  t.regex(await out(secure, 'named', ['ping', '-c', '1', '-W', '2', gateway]), /1 received/);
});

serial('readOnlyRootFilesystem; enableServiceLinks: false keeps only the kubernetes service', async (t) => {
  t.not((await secure.podwire(['exec', 'readonly', '--', 'touch', '/probe'])).code, 0);
  t.is((await secure.podwire(['exec', 'readonly', '--', 'touch', '/tmp/probe'])).code, 0, '/tmp is the pod\'s own and writable');
  const env = await out(secure, 'readonly', ['env']);
  t.notRegex(env, /^WEB_SERVICE_HOST=/m);
  t.regex(env, /^KUBERNETES_SERVICE_HOST=/m);
});

serial('hostname, subdomain and hostAliases as the kubelet writes them', async (t) => {
  t.is((await out(secure, 'named', ['hostname'])).trim(), 'web-0');
  t.is((await out(secure, 'named', ['hostname', '-f'])).trim(), 'web-0.web.default.svc.cluster.local');
  const hosts = await out(secure, 'named', ['cat', '/etc/hosts']);
  t.regex(hosts, /^# Entries added by HostAliases\.\n10\.1\.2\.3\tfoo\.local\tbar\.local$/m);
});

serial('runAsNonRoot refuses a root container with the kubelet\'s reason', async (t) => {
  const r = await secure.podwire(['status', '--json']);
  const pod = (JSON.parse(r.stdout) as { nodes: { detail?: { pods: { name: string; containers: { running: boolean; reason?: string }[] }[] } }[] }).nodes[0].detail?.pods.find((p) => p.name === 'nonroot');
  t.like(pod?.containers[0], { running: false, reason: 'CreateContainerConfigError' });
  const logs = join(secure.stateRoot, secure.name, 'logs');
  const log = readdirSync(logs).find((f) => f.startsWith('default_nonroot_'));
  t.truthy(log);
  t.regex(readFileSync(join(logs, log!), 'utf8'), /CreateContainerConfigError: container has runAsNonRoot and image will run as root \(pod: "nonroot_default\([0-9a-f-]+\)", container: c\)/);
});

serial('restartPolicy Never leaves an exited container down; its sibling keeps running', async (t) => {
  await new Promise((r) => setTimeout(r, 1500));
  const r = await secure.podwire(['status', '--json']);
  const pod = (JSON.parse(r.stdout) as { nodes: { detail?: { pods: { name: string; ready: boolean; containers: { name: string; running: boolean; exitCode: number | null; restartCount: number }[] }[] } }[] }).nodes[0].detail?.pods.find((p) => p.name === 'twins');
  t.like(pod?.containers[0], { name: 'first', running: true, restartCount: 0 });
  t.like(pod?.containers[1], { name: 'second', running: false, exitCode: 3, restartCount: 0 });
  t.false(pod?.ready);
  const ps = await out(secure, 'twins', ['ps', '-e', '-o', 'comm='], ['-c', 'second']);
  t.deepEqual(ps.trim().split('\n').sort(), ['pause', 'ps', 'sleep'], 'both containers share the pod\'s process namespace');
});
