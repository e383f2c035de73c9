import test from 'ava';
import { cluster, yaml } from '../cluster/helpers.js';
import { containerEnvironment, expandCommand, serviceEnvironment } from '../../src/pod/env.js';
import { formatIpv4, parseIpv4 } from '../../src/packet/addr.js';

const KUBERNETES = parseIpv4('10.96.0.1')!;

// The Services of pkg/kubelet/envvars/envvars_test.go TestFromServices (IPv4 ones).
const SERVICES = yaml`
apiVersion: v1
kind: Service
metadata: {name: foo-bar}
spec: {clusterIP: 10.96.1.4, ports: [{port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: abc-123}
spec: {clusterIP: 10.96.1.5, ports: [{name: u-d-p, port: 8081, protocol: UDP}, {name: t-c-p, port: 8081, protocol: TCP}]}
---
apiVersion: v1
kind: Service
metadata: {name: q-u-u-x}
spec: {clusterIP: 10.96.7.6, ports: [{name: a, port: 8082}, {name: "8083", port: 8083}]}
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: external}
spec: {type: ExternalName, externalName: example.com}
`;

test('service links as envvars.FromServices writes them; headless and ExternalName get none', (t) => {
  const c = cluster(SERVICES);
  const env = serviceEnvironment(c.services, true, KUBERNETES);
  const kubernetes: [string, string][] = [
    ['KUBERNETES_SERVICE_HOST', '10.96.0.1'],
    ['KUBERNETES_SERVICE_PORT', '443'],
    ['KUBERNETES_SERVICE_PORT_HTTPS', '443'],
    ['KUBERNETES_PORT', 'tcp://10.96.0.1:443'],
    ['KUBERNETES_PORT_443_TCP', 'tcp://10.96.0.1:443'],
    ['KUBERNETES_PORT_443_TCP_PROTO', 'tcp'],
    ['KUBERNETES_PORT_443_TCP_PORT', '443'],
    ['KUBERNETES_PORT_443_TCP_ADDR', '10.96.0.1'],
  ];
  const links: Record<string, [string, string][]> = {
    'foo-bar': [
      ['FOO_BAR_SERVICE_HOST', '10.96.1.4'],
      ['FOO_BAR_SERVICE_PORT', '8080'],
      ['FOO_BAR_PORT', 'tcp://10.96.1.4:8080'],
      ['FOO_BAR_PORT_8080_TCP', 'tcp://10.96.1.4:8080'],
      ['FOO_BAR_PORT_8080_TCP_PROTO', 'tcp'],
      ['FOO_BAR_PORT_8080_TCP_PORT', '8080'],
      ['FOO_BAR_PORT_8080_TCP_ADDR', '10.96.1.4'],
    ],
    'abc-123': [
      ['ABC_123_SERVICE_HOST', '10.96.1.5'],
      ['ABC_123_SERVICE_PORT', '8081'],
      ['ABC_123_SERVICE_PORT_U_D_P', '8081'],
      ['ABC_123_SERVICE_PORT_T_C_P', '8081'],
      ['ABC_123_PORT', 'udp://10.96.1.5:8081'],
      ['ABC_123_PORT_8081_UDP', 'udp://10.96.1.5:8081'],
      ['ABC_123_PORT_8081_UDP_PROTO', 'udp'],
      ['ABC_123_PORT_8081_UDP_PORT', '8081'],
      ['ABC_123_PORT_8081_UDP_ADDR', '10.96.1.5'],
      ['ABC_123_PORT_8081_TCP', 'tcp://10.96.1.5:8081'],
      ['ABC_123_PORT_8081_TCP_PROTO', 'tcp'],
      ['ABC_123_PORT_8081_TCP_PORT', '8081'],
      ['ABC_123_PORT_8081_TCP_ADDR', '10.96.1.5'],
    ],
    'q-u-u-x': [
      ['Q_U_U_X_SERVICE_HOST', '10.96.7.6'],
      ['Q_U_U_X_SERVICE_PORT', '8082'],
      ['Q_U_U_X_SERVICE_PORT_A', '8082'],
      ['Q_U_U_X_SERVICE_PORT_8083', '8083'],
      ['Q_U_U_X_PORT', 'tcp://10.96.7.6:8082'],
      ['Q_U_U_X_PORT_8082_TCP', 'tcp://10.96.7.6:8082'],
      ['Q_U_U_X_PORT_8082_TCP_PROTO', 'tcp'],
      ['Q_U_U_X_PORT_8082_TCP_PORT', '8082'],
      ['Q_U_U_X_PORT_8082_TCP_ADDR', '10.96.7.6'],
      ['Q_U_U_X_PORT_8083_TCP', 'tcp://10.96.7.6:8083'],
      ['Q_U_U_X_PORT_8083_TCP_PROTO', 'tcp'],
      ['Q_U_U_X_PORT_8083_TCP_PORT', '8083'],
      ['Q_U_U_X_PORT_8083_TCP_ADDR', '10.96.7.6'],
    ],
  };
  // In the order the model lists the Services.
  t.deepEqual(env, [...kubernetes, ...c.services.flatMap((s) => links[s.name] ?? [])]);
  t.deepEqual(serviceEnvironment(c.services, false, KUBERNETES).map(([k]) => k).filter((k) => !k.startsWith('KUBERNETES_')), [], 'enableServiceLinks: false keeps only the API server');
});

const POD = yaml`
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, "9lives": x, other-key: "y"}
binaryData: {blob: AAEC}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
data: {password: czNjcmV0}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.3.3, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: app, labels: {tier: front}}
spec:
  nodeName: node-1
  containers:
    - name: c
      image: busybox
      command: [echo, "$(GREETING)", "$$(GREETING)", "$(NOPE)"]
      envFrom:
        - {configMapRef: {name: cfg}}
      env:
        - {name: FIRST, value: one}
        - {name: SECOND, value: "$(FIRST)-two-$(WEB_SERVICE_HOST)-$(LATER)"}
        - {name: LATER, value: three}
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: sec, key: password}}}
        - {name: MY_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: MY_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: MY_TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}}
        - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: MY_HOST, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
        - {name: MY_SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
        - {name: OPTIONAL_GONE, valueFrom: {configMapKeyRef: {name: nope, key: k, optional: true}}}
        - {name: WEB_SERVICE_HOST, value: overridden}
`;

function environment(text: string) {
  const c = cluster(text);
  const pod = c.pods[0];
  return { pod, result: containerEnvironment({ pod, container: pod.containers[0], services: c.services, configMaps: c.configMaps, secrets: c.secrets, nodeName: 'node-1', hostIP: '127.77.0.1', kubernetesServiceIP: KUBERNETES }) };
}

test('envFrom, then env in order with $(VAR) of earlier variables and service links, then the links left', (t) => {
  const { pod, result } = environment(POD);
  t.deepEqual(result.problems, []);
  const env = new Map(result.env);
  t.is(env.get('greeting'), 'hello');
  t.is(env.get('other-key'), 'y');
  t.false(env.has('blob'), 'binaryData is for volumes only');
  t.false(env.has('9lives'));
  t.deepEqual(result.warnings, ['Keys [9lives] from the EnvFrom configMap default/cfg were skipped since they are considered invalid environment variable names.']);
  t.is(env.get('SECOND'), 'one-two-10.96.3.3-$(LATER)', 'a variable declared later is not yet known');
  t.is(env.get('GREETING'), 'hello');
  t.is(env.get('PASSWORD'), 's3cret');
  t.is(env.get('MY_NAME'), 'app');
  t.is(env.get('MY_NS'), 'default');
  t.is(env.get('MY_TIER'), 'front');
  t.is(env.get('MY_IP'), formatIpv4(pod.ip));
  t.is(env.get('MY_HOST'), '127.77.0.1');
  t.is(env.get('MY_SA'), 'default');
  t.false(env.has('OPTIONAL_GONE'));
  t.is(env.get('WEB_SERVICE_HOST'), 'overridden', "the container's own variable wins over the link");
  t.is(result.env.filter(([k]) => k === 'WEB_SERVICE_HOST').length, 1);
  t.is(env.get('KUBERNETES_SERVICE_HOST'), '10.96.0.1');
  t.deepEqual(expandCommand(pod.containers[0].command, result.env), ['echo', 'hello', '$(GREETING)', '$(NOPE)']);
});

test('a missing ConfigMap, Secret or key stops the container with the kubelet\'s words; optional ones do not', (t) => {
  const missing = (ref: string) =>
    environment(yaml`
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1"}
---
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
    - name: c
      image: busybox
      ${ref}
`).result.problems;
  t.deepEqual(missing('env: [{name: X, valueFrom: {configMapKeyRef: {name: gone, key: a}}}]'), ['configmap "gone" not found']);
  t.deepEqual(missing('env: [{name: X, valueFrom: {configMapKeyRef: {name: cfg, key: b}}}]'), ["couldn't find key b in ConfigMap default/cfg"]);
  t.deepEqual(missing('env: [{name: X, valueFrom: {secretKeyRef: {name: gone, key: a}}}]'), ['secret "gone" not found']);
  t.deepEqual(missing('envFrom: [{secretRef: {name: gone}}]'), ['secret "gone" not found']);
  t.deepEqual(missing('envFrom: [{secretRef: {name: gone, optional: true}}]'), []);
  t.deepEqual(missing('env: [{name: X, valueFrom: {configMapKeyRef: {name: cfg, key: b, optional: true}}}]'), []);
});
