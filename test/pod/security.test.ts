import test from 'ava';
import { cluster, yaml } from '../cluster/helpers.js';
import { containerSecurity, DEFAULT_CAPABILITIES, effectiveCapabilities } from '../../src/pod/security.js';
import { ALL_CAPABILITIES } from '../../src/cluster/capabilities.js';

function security(podContext: string, containerContext: string) {
  const pod = cluster(yaml`
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  securityContext: ${podContext}
  containers: [{name: c, image: busybox, securityContext: ${containerContext}}]
`).pods[0];
  return containerSecurity(pod, pod.containers[0]);
}

test('no securityContext: root with containerd\'s default capabilities, as an image without USER', (t) => {
  const s = security('{}', '{}');
  t.like(s, { uid: 0, gid: 0, supplementalGroups: [], noNewPrivileges: false, readOnlyRootFilesystem: false });
  t.deepEqual('capabilities' in s ? s.capabilities.map((c) => c.name).sort() : [], [...DEFAULT_CAPABILITIES].sort());
  // The bounding set root gets: 0xa80425fb, as /proc/self/status shows it in a Docker container.
  const mask = 'capabilities' in s ? s.capabilities.reduce((m, c) => m + 2 ** c.number, 0) : 0;
  t.is(mask.toString(16), 'a80425fb');
});

test("the container's fields override the pod's; groups come from the pod", (t) => {
  t.like(security('{runAsUser: 1000, runAsGroup: 2000, supplementalGroups: [5, 6]}', '{runAsUser: 1001}'), { uid: 1001, gid: 2000, supplementalGroups: [5, 6] });
  t.like(security('{}', '{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}'), { noNewPrivileges: true, readOnlyRootFilesystem: true });
  t.like(security('{}', '{allowPrivilegeEscalation: true}'), { noNewPrivileges: false });
});

test('runAsNonRoot refuses root in the kubelet\'s words', (t) => {
  const implicit = security('{runAsNonRoot: true}', '{}');
  t.regex('problem' in implicit ? implicit.problem : '', /^container has runAsNonRoot and image will run as root \(pod: "app_default\([0-9a-f-]{36}\)", container: c\)$/);
  const explicit = security('{runAsNonRoot: true}', '{runAsUser: 0}');
  t.regex('problem' in explicit ? explicit.problem : '', /^container's runAsUser breaks non-root policy \(pod: "app_default\(/);
  t.like(security('{runAsNonRoot: true}', '{runAsUser: 7}'), { uid: 7 });
});

test("capabilities in containerd's order: add ALL, drop ALL, then the named adds and drops", (t) => {
  const names = (add: string[], drop: string[]) => effectiveCapabilities(add, drop).map((c) => c.name);
  t.deepEqual(names([], ['ALL']), []);
  t.deepEqual(names(['CAP_NET_BIND_SERVICE'], ['ALL']), ['CAP_NET_BIND_SERVICE']);
  t.deepEqual(names(['ALL'], []), [...ALL_CAPABILITIES]);
  t.deepEqual(names(['ALL'], ['CAP_SYS_ADMIN']), ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN'));
  t.true(names(['CAP_NET_ADMIN'], ['CAP_NET_RAW']).includes('CAP_NET_ADMIN'));
  t.false(names(['CAP_NET_ADMIN'], ['CAP_NET_RAW']).includes('CAP_NET_RAW'));
  const numbers = effectiveCapabilities(['ALL'], []).map((c) => c.number);
  t.deepEqual(numbers, [...numbers].sort((a, b) => a - b), 'in number order');
});
