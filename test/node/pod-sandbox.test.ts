import test from 'ava';
import { dirname } from 'node:path';
import { cluster, yaml } from '../cluster/helpers.js';
import { planContainer } from '../../src/node/pod-sandbox.js';

const c = cluster(yaml`
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {nodeName: node-1, containers: [{name: nginx, image: nginx}, {name: tool, image: busybox, command: [sleep, "1"]}]}
`);
const pod = c.pods[0];
const node = c.nodes[0];
const sandbox = { binary: '/sbx', initPid: 42, podDir: '/state/pods/default_web', hide: ['/state'] };

function plan(container: number) {
  const p = planContainer({ pod, container: pod.containers[container], cluster: c, node, netns: 'pw-x', sandbox, volumeProblems: new Map() });
  if ('problem' in p) throw new Error(p.problem);
  return p;
}

test("a built-in server's script directory is bound read-only at its path: a package under /tmp stays visible in the pod", (t) => {
  const p = plan(0);
  const script = p.argv[p.argv.indexOf('--') + 2];
  t.regex(script, /http-echo\.js$/);
  t.true(p.argv.includes(`${dirname(script)}:${dirname(script)}:ro`), p.argv.join(' '));
  t.false(plan(1).argv.some((a) => a.includes('workloads')), "a manifest's own command gets no extra mount");
});

test('without the sandbox a container runs in the network namespace only, with the same environment', (t) => {
  const p = planContainer({ pod, container: pod.containers[1], cluster: c, node, netns: 'pw-x', sandbox: undefined, volumeProblems: new Map() });
  if ('problem' in p) return t.fail(p.problem);
  t.deepEqual(p.argv, ['ip', 'netns', 'exec', 'pw-x', 'sleep', '1']);
  t.is(p.env.HOSTNAME, 'web');
  t.is(p.env.KUBERNETES_SERVICE_HOST, '10.96.0.1');
});

test('a volume that could not be made stops the containers that mount it, in the kubelet\'s words', (t) => {
  const withVolume = cluster(yaml`
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  volumes: [{name: cfg, configMap: {name: gone}}]
  containers: [{name: c, image: busybox, volumeMounts: [{name: cfg, mountPath: /etc/cfg}]}]
`);
  const p = withVolume.pods[0];
  const r = planContainer({ pod: p, container: p.containers[0], cluster: withVolume, node: withVolume.nodes[0], netns: 'pw-x', sandbox, volumeProblems: new Map([['cfg', 'configmap "gone" not found']]) });
  t.deepEqual(r, { problem: 'MountVolume.SetUp failed for volume "cfg": configmap "gone" not found' });
});

test("an ingress controller's image runs the ingress proxy whatever its args: its ports from the flags, its configuration bound read-only at /etc/podwire-ingress", (t) => {
  const withController = cluster(yaml`
apiVersion: v1
kind: Pod
metadata: {name: ctl}
spec:
  containers:
  - {name: good, image: "registry.k8s.io/ingress-nginx/controller:v1.10.1", args: [/nginx-ingress-controller, --http-port=8080]}
  - {name: bad, image: "registry.k8s.io/ingress-nginx/controller:v1.10.1", args: [--https-port=none]}
`);
  const p = withController.pods[0];
  const input = { pod: p, cluster: withController, node: withController.nodes[0], netns: 'pw-x', volumeProblems: new Map(), ingressConfigDir: '/state/pods/default_ctl/ingress' };
  const good = planContainer({ ...input, container: p.containers[0], sandbox });
  if ('problem' in good) return t.fail(good.problem);
  t.is(good.workload.builtin, 'ingress-proxy');
  t.deepEqual(good.workload.readyPorts, [8080, 443, 10254]);
  t.deepEqual(good.argv.slice(-4), ['8080', '443', '10254', '/etc/podwire-ingress']);
  t.regex(good.argv[good.argv.indexOf('--') + 2], /ingress-proxy\.js$/);
  t.true(good.argv.includes('/state/pods/default_ctl/ingress:/etc/podwire-ingress:ro'), good.argv.join(' '));
  const bare = planContainer({ ...input, container: p.containers[0], sandbox: undefined });
  if ('problem' in bare) return t.fail(bare.problem);
  t.is(bare.argv.at(-1), '/state/pods/default_ctl/ingress', 'without the sandbox, the host directory itself');
  t.deepEqual(planContainer({ ...input, container: p.containers[1], sandbox }), { problem: 'ingress controller: --https-port=none: not a port number' });
});
