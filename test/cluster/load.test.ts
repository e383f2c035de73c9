import test from 'ava';
import { DEFAULT_CONNTRACK } from '../../src/cluster/decode-conntrack.js';
import { KUBE_PROXY_TIMEOUTS } from '../../src/netfilter/conntrack-timeouts.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIpv4, formatMac, formatCidr, parseIpv4 } from '../../src/packet/addr.js';
import { demoFiles } from '../../src/cluster/demo.js';
import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { loadCluster } from '../../src/cluster/load.js';
import type { Cluster } from '../../src/cluster/model.js';
import { seededRandom } from '../../src/cluster/random.js';
import { clusterIndex } from '../../src/cluster/ipam.js';
import { cluster, load, POD_HEAD, warnings, yaml } from './helpers.js';

function demo(seed = 7): Cluster {
  const r = loadCluster(demoFiles(), { random: seededRandom(seed) });
  if (!r.ok) throw new Error(r.errors.map(formatDiagnostic).join('\n'));
  t0Warnings = r.warnings.length;
  return r.cluster;
}
let t0Warnings = -1;

test('demo: settings, nodes and their addresses', (t) => {
  const c = demo();
  t.is(t0Warnings, 0);
  t.like(c.settings, { name: 'podwire', clusterDomain: 'cluster.local', vni: 1, mtu: 1450, overlayOffload: true, nodeGracePeriodSeconds: 20, subnetLeaseTTLSeconds: 20, flowBufferCapacity: 4096, dnsTTLSeconds: 30 });
  // A node running kube-proxy: 24 h ESTABLISHED, 1 h CLOSE_WAIT, the kernel's UDP timeouts, no counters.
  t.deepEqual(c.settings.conntrack, { accounting: false, tcpEstablishedTimeoutSeconds: 86400, tcpCloseWaitTimeoutSeconds: 3600, udpTimeoutSeconds: 30, udpStreamTimeoutSeconds: 120 });
  t.is(formatCidr(c.settings.podCIDR), '10.244.0.0/16');
  t.is(formatCidr(c.settings.serviceCIDR), '10.96.0.0/12');
  t.is(formatIpv4(c.settings.kubernetesIP), '10.96.0.1');
  t.is(formatIpv4(c.settings.dnsIP), '10.96.0.10');
  const ci = c.settings.clusterIndex;
  t.deepEqual(
    c.nodes.map((n) => [n.name, n.index, formatCidr(n.podCIDR), formatIpv4(n.gateway), formatMac(n.gatewayMac), formatIpv4(n.underlay), formatMac(n.vtepMac)]),
    [
      ['node-1', 1, '10.244.1.0/24', '10.244.1.1', '0a:58:0a:f4:01:01', `127.77.${ci}.1`, `0e:77:7f:4d:${ci.toString(16).padStart(2, '0')}:01`],
      ['node-2', 2, '10.244.2.0/24', '10.244.2.1', '0a:58:0a:f4:02:01', `127.77.${ci}.2`, `0e:77:7f:4d:${ci.toString(16).padStart(2, '0')}:02`],
    ],
  );
  t.deepEqual(c.nodes[0].labels, { 'kubernetes.io/hostname': 'node-1', 'kubernetes.io/os': 'linux' });
  t.deepEqual(
    c.namespaces.map((n) => n.name),
    ['default', 'kube-system'],
  );
});

test('demo: three replicas spread over both nodes, then the client, addressed in order', (t) => {
  const c = demo();
  t.deepEqual(
    c.pods.map((p) => [p.node, formatIpv4(p.ip), formatMac(p.mac)]),
    [
      ['node-1', '10.244.1.2', '0a:58:0a:f4:01:02'],
      ['node-2', '10.244.2.2', '0a:58:0a:f4:02:02'],
      ['node-1', '10.244.1.3', '0a:58:0a:f4:01:03'],
      ['node-2', '10.244.2.3', '0a:58:0a:f4:02:03'],
    ],
  );
  const [web, , , client] = c.pods;
  const hash = c.deployments[0].podTemplateHash;
  t.regex(hash, /^[456789bcdf]{1,10}$/); // safe-encoded decimal digits only
  t.regex(web.name, new RegExp(`^deploy-nginx-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
  t.deepEqual(web.labels, { app: 'webui', 'pod-template-hash': hash });
  t.deepEqual(web.owner, { kind: 'Deployment', name: 'deploy-nginx', podTemplateHash: hash });
  t.deepEqual(web.containers, [
    {
      name: 'nginx',
      image: 'nginx',
      command: [],
      args: [],
      env: [],
      envFrom: [],
      ports: [{ containerPort: 80, protocol: 'TCP' }],
      volumeMounts: [],
      securityContext: { capabilities: { add: [], drop: [] }, readOnlyRootFilesystem: false },
    },
  ]);
  t.like(web, { hostAliases: [], enableServiceLinks: true, restartPolicy: 'Always', serviceAccountName: 'default', volumes: [], securityContext: { supplementalGroups: [] } });
  t.is(web.dnsPolicy, 'ClusterFirst');
  t.is(web.namespace, 'default');
  t.regex(web.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.like(client, { name: 'client', namespace: 'default', owner: undefined });
  t.deepEqual(client.containers[0].command, ['sleep', '3600']);
  t.deepEqual(c.deployments[0].pods, c.pods.slice(0, 3).map((p) => p.name));
  t.is(new Set(c.pods.map((p) => p.uid)).size, 4);
});

test('demo: the ClusterIP service keeps its requested address', (t) => {
  const [svc] = demo().services;
  t.like(svc, { namespace: 'default', name: 'clusterip-service', type: 'ClusterIP', headless: false, sessionAffinity: 'None' });
  t.is(formatIpv4(svc.clusterIP!), '10.100.100.100');
  t.deepEqual(svc.selector, { app: 'webui' });
  t.deepEqual(svc.ports, [{ protocol: 'TCP', port: 80, targetPort: 80 }]);
  t.is(svc.externalTrafficPolicy, undefined);
});

test('the same seed gives the same cluster; another seed other pod names and UIDs only', (t) => {
  t.deepEqual(demo(42), demo(42));
  const a = demo(1);
  const b = demo(2);
  t.not(a.pods[0].name, b.pods[0].name);
  t.not(a.pods[0].uid, b.pods[0].uid);
  t.is(a.deployments[0].podTemplateHash, b.deployments[0].podTemplateHash);
  t.deepEqual(
    a.pods.map((p) => p.ip),
    b.pods.map((p) => p.ip),
  );
});

test('the pod-template-hash follows the template, not the Deployment name or replicas', (t) => {
  const deployment = (name: string, replicas: number, image: string) => yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: ${name}}
    spec:
      replicas: ${replicas}
      selector: {matchLabels: {app: a}}
      template:
        metadata: {labels: {app: a}}
        spec: {containers: [{name: c, image: ${image}}]}
  `;
  const hash = (text: string) => cluster(text).deployments[0].podTemplateHash;
  t.is(hash(deployment('one', 1, 'nginx')), hash(deployment('two', 5, 'nginx')));
  t.not(hash(deployment('one', 1, 'nginx')), hash(deployment('one', 1, 'httpd')));
  // Formatting of the YAML does not matter, only the values.
  const reformatted = yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: one
    spec:
      template:
        spec:
          containers:
            - image: "nginx"
              name: c
        metadata:
          labels:
            app: a
      selector:
        matchLabels:
          app: a
  `;
  t.is(hash(reformatted), hash(deployment('one', 1, 'nginx')));
});

test('no Cluster document: the defaults', (t) => {
  const c = cluster(yaml`
    ${POD_HEAD}
    spec: {containers: [{name: c, image: busybox}]}
  `);
  t.like(c.settings, { name: 'podwire', clusterDomain: 'cluster.local', vni: 1, mtu: 1450 });
  t.deepEqual(
    c.nodes.map((n) => n.name),
    ['node-1', 'node-2'],
  );
  t.like(c.pods[0], { name: 'p', node: 'node-1' });
});

test("the README's Cluster document loads, and spells out exactly the defaults", (t) => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('## The Cluster document'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section);
  if (block === null) return t.fail('README has no yaml block under "The Cluster document"');
  const pod = `---\n${POD_HEAD}\nspec: {containers: [{name: c, image: busybox}]}\n`;
  const documented = cluster(block[1] + pod);
  const defaults = cluster(pod);
  t.deepEqual(documented.settings, defaults.settings);
  t.deepEqual(documented.nodes, defaults.nodes);
});

test('a Cluster document with named, labelled nodes and its own networks', (t) => {
  const c = cluster(yaml`
    apiVersion: podwire.dev/v1alpha1
    kind: Cluster
    spec:
      nodes:
        - alpha
        - name: beta
          labels: {disk: ssd}
        - gamma
      podCIDR: 10.10.0.0/16
      serviceCIDR: 10.20.0.0/24
      clusterDomain: example.internal
      vni: 42
      mtu: 9000
      overlayOffload: false
      nodeGracePeriodSeconds: 3
      subnetLeaseTTLSeconds: 7
      flowBufferCapacity: 65536
      conntrack: {accounting: true, tcpEstablishedTimeoutSeconds: 7200, udpStreamTimeoutSeconds: 180}
      dnsTTLSeconds: 5
  `);
  t.like(c.settings, {
    name: 'podwire',
    clusterDomain: 'example.internal',
    vni: 42,
    mtu: 9000,
    overlayOffload: false,
    nodeGracePeriodSeconds: 3,
    subnetLeaseTTLSeconds: 7,
    flowBufferCapacity: 65536,
    dnsTTLSeconds: 5,
  });
  // What is not given keeps kube-proxy's and the kernel's values.
  t.deepEqual(c.settings.conntrack, { accounting: true, tcpEstablishedTimeoutSeconds: 7200, tcpCloseWaitTimeoutSeconds: 3600, udpTimeoutSeconds: 30, udpStreamTimeoutSeconds: 180 });
  t.is(formatIpv4(c.settings.dnsIP), '10.20.0.10');
  t.deepEqual(
    c.nodes.map((n) => [n.name, formatCidr(n.podCIDR)]),
    [
      ['alpha', '10.10.1.0/24'],
      ['beta', '10.10.2.0/24'],
      ['gamma', '10.10.3.0/24'],
    ],
  );
  t.deepEqual(c.nodes[1].labels, { 'kubernetes.io/hostname': 'beta', 'kubernetes.io/os': 'linux', disk: 'ssd' });
});

test('nodes as a count; a /8 pod CIDR is still cut in /24s', (t) => {
  const c = cluster(yaml`
    apiVersion: podwire.dev/v1alpha1
    kind: Cluster
    metadata: {name: big}
    spec: {nodes: 3, podCIDR: 172.0.0.0/8}
  `);
  t.deepEqual(
    c.nodes.map((n) => `${n.name} ${formatCidr(n.podCIDR)}`),
    ['node-1 172.0.1.0/24', 'node-2 172.0.2.0/24', 'node-3 172.0.3.0/24'],
  );
});

test('several files are one desired state: a namespace may come after its objects', (t) => {
  const r = loadCluster(
    [
      { path: 'a.yaml', text: `${POD_HEAD}\n  namespace: team\nspec: {containers: [{name: c, image: i}]}\n` },
      { path: 'b.yaml', text: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: {tier: back}}\n' },
    ],
    { random: seededRandom(1) },
  );
  if (!r.ok) return t.fail(r.errors.map(formatDiagnostic).join('\n'));
  t.like(r.cluster.pods[0], { namespace: 'team', name: 'p' });
  t.deepEqual(r.cluster.namespaces.at(-1), {
    name: 'team',
    labels: { tier: 'back', 'kubernetes.io/metadata.name': 'team' },
    origin: { file: 'b.yaml', document: 1, line: 1 },
  });
});

test('declaring a built-in namespace replaces it in place, with its labels', (t) => {
  const c = cluster('apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {env: dev}}\n');
  t.deepEqual(c.namespaces, [
    { name: 'default', labels: { env: 'dev', 'kubernetes.io/metadata.name': 'default' }, origin: { file: 't.yaml', document: 1, line: 1 } },
    { name: 'kube-system', labels: { 'kubernetes.io/metadata.name': 'kube-system' } },
  ]);
});

test('a pod spec with everything podwire models', (t) => {
  const [pod] = cluster(yaml`
    apiVersion: v1
    kind: Pod
    metadata:
      name: full
      labels: {app.kubernetes.io/name: full, empty: ""}
    spec:
      nodeName: node-2
      hostname: h1
      subdomain: sub
      dnsPolicy: None
      dnsConfig:
        nameservers: [1.1.1.1]
        searches: [example.com.]
        options: [{name: ndots, value: "2"}, {name: edns0}]
      hostAliases: [{ip: 10.1.2.3, hostnames: [foo.local, bar]}]
      enableServiceLinks: false
      restartPolicy: OnFailure
      serviceAccountName: builder
      securityContext: {runAsUser: 1000, runAsGroup: 3000, runAsNonRoot: true, supplementalGroups: [4000, 5000]}
      volumes:
        - name: scratch
        - name: cache
          emptyDir: {medium: Memory, sizeLimit: 64Mi}
        - name: settings
          configMap: {name: app-settings, items: [{key: app.conf, path: conf/app.conf, mode: 0600}], optional: true}
        - name: certs
          secret: {secretName: app-tls, defaultMode: 0400}
      containers:
        - name: app
          image: registry.local/app:1.0
          command: [/bin/app]
          args: [--port, "8080"]
          workingDir: /srv
          env:
            - {name: MODE, value: test}
            - {name: EMPTY}
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
            - {name: APP, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: "metadata.labels['app.kubernetes.io/name']"}}}
            - {name: LEVEL, valueFrom: {configMapKeyRef: {name: app-settings, key: level}}}
            - {name: TOKEN, valueFrom: {secretKeyRef: {name: app-tls, key: token, optional: true}}}
          envFrom: [{configMapRef: {name: app-settings}}, {prefix: S_, secretRef: {name: app-tls, optional: true}}]
          ports: [{name: http, containerPort: 8080}, {containerPort: 53, protocol: UDP}]
          volumeMounts:
            - {name: scratch, mountPath: /tmp}
            - {name: settings, mountPath: /etc/app, readOnly: true, subPath: conf}
          securityContext:
            runAsUser: 2000
            capabilities: {add: [NET_BIND_SERVICE, cap_net_raw], drop: [ALL]}
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            privileged: false
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5}
          resources: {limits: {cpu: "1"}}
  `).pods;
  t.like(pod, { name: 'full', node: 'node-2', nodeName: 'node-2', hostname: 'h1', subdomain: 'sub', dnsPolicy: 'None' });
  t.deepEqual(pod.labels, { 'app.kubernetes.io/name': 'full', empty: '' });
  t.deepEqual(pod.dnsConfig, { nameservers: ['1.1.1.1'], searches: ['example.com.'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] });
  t.deepEqual(pod.hostAliases, [{ ip: parseIpv4('10.1.2.3'), hostnames: ['foo.local', 'bar'] }]);
  t.like(pod, { enableServiceLinks: false, restartPolicy: 'OnFailure', serviceAccountName: 'builder' });
  t.deepEqual(pod.securityContext, { runAsUser: 1000, runAsGroup: 3000, runAsNonRoot: true, supplementalGroups: [4000, 5000] });
  t.deepEqual(pod.volumes, [
    { name: 'scratch', kind: 'emptyDir', medium: '' },
    { name: 'cache', kind: 'emptyDir', medium: 'Memory', sizeLimitBytes: 64 * 2 ** 20 },
    { name: 'settings', kind: 'configMap', objectName: 'app-settings', items: [{ key: 'app.conf', path: 'conf/app.conf', mode: 0o600 }], defaultMode: 0o644, optional: true },
    { name: 'certs', kind: 'secret', objectName: 'app-tls', items: [], defaultMode: 0o400, optional: false },
  ]);
  t.deepEqual(pod.containers[0], {
    name: 'app',
    image: 'registry.local/app:1.0',
    command: ['/bin/app'],
    args: ['--port', '8080'],
    env: [
      { name: 'MODE', value: 'test' },
      { name: 'EMPTY', value: '' },
      { name: 'POD_IP', value: '', valueFrom: { kind: 'fieldRef', fieldPath: 'status.podIP' } },
      { name: 'APP', value: '', valueFrom: { kind: 'fieldRef', fieldPath: 'metadata.labels', key: 'app.kubernetes.io/name' } },
      { name: 'LEVEL', value: '', valueFrom: { kind: 'configMapKeyRef', name: 'app-settings', key: 'level', optional: false } },
      { name: 'TOKEN', value: '', valueFrom: { kind: 'secretKeyRef', name: 'app-tls', key: 'token', optional: true } },
    ],
    envFrom: [
      { kind: 'configMapRef', name: 'app-settings', optional: false, prefix: '' },
      { kind: 'secretRef', name: 'app-tls', optional: true, prefix: 'S_' },
    ],
    workingDir: '/srv',
    ports: [
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { containerPort: 53, protocol: 'UDP' },
    ],
    volumeMounts: [
      { name: 'scratch', mountPath: '/tmp', readOnly: false },
      { name: 'settings', mountPath: '/etc/app', readOnly: true, subPath: 'conf' },
    ],
    securityContext: {
      runAsUser: 2000,
      capabilities: { add: ['CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'], drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    },
    readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
  });
});

test('services of every type, with their defaults and allocations', (t) => {
  const c = cluster(yaml`
    apiVersion: v1
    kind: Service
    metadata: {name: auto}
    spec: {selector: {app: a}, ports: [{port: 80, targetPort: http}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: headless}
    spec: {clusterIP: None, selector: {app: a}}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: np}
    spec:
      type: NodePort
      externalTrafficPolicy: Local
      sessionAffinity: ClientIP
      ports:
        - {name: dns, port: 53, protocol: UDP}
        - {name: dns-tcp, port: 53, protocol: TCP}
        - {name: fixed, port: 8080, nodePort: 30000}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: lb}
    spec:
      type: LoadBalancer
      loadBalancerIP: 192.0.2.10
      sessionAffinity: ClientIP
      sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
      ports: [{port: 443}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: ext}
    spec: {type: ExternalName, externalName: db.example.com}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: kube-dns, namespace: kube-system}
    spec: {selector: {k8s-app: kube-dns}, ports: [{name: dns, port: 53, protocol: UDP}]}
  `);
  const byName = new Map(c.services.map((s) => [s.name, s]));
  // Lowest free address, skipping the reserved .1 and .10; kube-dns gets its reserved .10.
  t.is(formatIpv4(byName.get('auto')!.clusterIP!), '10.96.0.2');
  t.is(formatIpv4(byName.get('np')!.clusterIP!), '10.96.0.3');
  t.is(formatIpv4(byName.get('lb')!.clusterIP!), '10.96.0.4');
  t.is(formatIpv4(byName.get('kube-dns')!.clusterIP!), '10.96.0.10');
  t.like(byName.get('auto'), { externalTrafficPolicy: undefined, ports: [{ protocol: 'TCP', port: 80, targetPort: 'http' }] });
  t.like(byName.get('headless'), { headless: true, clusterIP: undefined, ports: [] });
  t.like(byName.get('np'), { type: 'NodePort', externalTrafficPolicy: 'Local', sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 10800 });
  // Requested node ports first; then the lowest free, shared by one port number across protocols.
  t.deepEqual(
    byName.get('np')!.ports.map((p) => [p.name, p.nodePort]),
    [
      ['dns', 30001],
      ['dns-tcp', 30001],
      ['fixed', 30000],
    ],
  );
  t.like(byName.get('lb'), { externalTrafficPolicy: 'Cluster', sessionAffinityTimeoutSeconds: 60, ports: [{ port: 443, targetPort: 443, nodePort: 30002 }] });
  t.is(formatIpv4(byName.get('lb')!.loadBalancerIP!), '192.0.2.10');
  t.like(byName.get('ext'), { type: 'ExternalName', externalName: 'db.example.com', clusterIP: undefined, headless: false });
});

test('an explicit clusterIP later in the YAML is not taken by an earlier automatic one', (t) => {
  const c = cluster(yaml`
    apiVersion: v1
    kind: Service
    metadata: {name: first}
    spec: {ports: [{port: 80}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: second}
    spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}
  `);
  t.deepEqual(
    c.services.map((s) => formatIpv4(s.clusterIP!)),
    ['10.96.0.3', '10.96.0.2'],
  );
});

test('Endpoints and NetworkPolicy are kept as typed models', (t) => {
  const c = cluster(yaml`
    apiVersion: v1
    kind: Endpoints
    metadata: {name: manual}
    subsets:
      - addresses: [{ip: 192.0.2.1, hostname: a, nodeName: node-1, targetRef: {kind: Pod, name: x}}]
        notReadyAddresses: [{ip: 192.0.2.2}]
        ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web}
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - podSelector: {matchExpressions: [{key: role, operator: In, values: [client]}]}
              namespaceSelector: {}
            - ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.128/25]}
          ports: [{port: 80}, {protocol: UDP, port: 5000, endPort: 5010}, {port: http}]
        - {}
      egress:
        - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
  `);
  t.deepEqual(c.endpoints[0].subsets, [
    {
      addresses: [{ ip: 0xc0000201, hostname: 'a', nodeName: 'node-1', targetRef: { kind: 'Pod', name: 'x' } }],
      notReadyAddresses: [{ ip: 0xc0000202 }],
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    },
  ]);
  const [np] = c.networkPolicies;
  t.deepEqual(np.policyTypes, ['Ingress', 'Egress']);
  t.deepEqual(np.podSelector, { matchLabels: { app: 'web' }, matchExpressions: [] });
  t.deepEqual(np.ingress[0].from, [
    {
      podSelector: { matchLabels: {}, matchExpressions: [{ key: 'role', operator: 'In', values: ['client'] }] },
      namespaceSelector: { matchLabels: {}, matchExpressions: [] },
    },
    { ipBlock: { cidr: { base: 0xc0000200, prefix: 24 }, except: [{ base: 0xc0000280, prefix: 25 }] } },
  ]);
  t.deepEqual(np.ingress[0].ports, [
    { protocol: 'TCP', port: 80 },
    { protocol: 'UDP', port: 5000, endPort: 5010 },
    { protocol: 'TCP', port: 'http' },
  ]);
  t.deepEqual(np.ingress[1], { from: [], ports: [] });
  t.is(np.egress.length, 1);
});

test('policyTypes default to Ingress only without egress rules', (t) => {
  const c = cluster(yaml`
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny-all}
    spec: {podSelector: {}}
  `);
  t.deepEqual(c.networkPolicies[0].policyTypes, ['Ingress']);
  t.deepEqual(c.networkPolicies[0].ingress, []);
});

test('YAML details: anchors, merge keys, empty documents, comments, 1.1 timestamps stay strings', (t) => {
  const c = cluster(yaml`
    # leading comment
    ---
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: a
      labels: &labels {app: web, date: 2024-01-01}
    spec:
      nodeSelector: *labels
      containers:
        - &base {name: c, image: nginx, ports: [{containerPort: 80}]}
        - <<: *base
          name: d
          ports: [{containerPort: 81}]
    ---
    ${POD_HEAD}
    spec: {containers: [{name: c, image: i}]}
  `.replace('nodeSelector: *labels', 'nodeName: node-2'));
  t.deepEqual(c.pods[0].labels, { app: 'web', date: '2024-01-01' });
  t.like(c.pods[0].containers[1], { name: 'd', image: 'nginx', ports: [{ containerPort: 81, protocol: 'TCP' }] });
  t.deepEqual(
    c.pods.map((p) => p.origin),
    [
      // The first `---` starts document 1: a comment before it is not a document of its own.
      { file: 't.yaml', document: 2, line: 4 },
      { file: 't.yaml', document: 3, line: 17 },
    ],
  );
});

test('an alias resolves across fields of one document', (t) => {
  const c = cluster(yaml`
    apiVersion: podwire.dev/v1alpha1
    kind: Cluster
    spec:
      nodes: [{name: a, labels: &ssd {disk: ssd}}, b]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: p, labels: &l {app: x}}
    spec:
      nodeSelector: {disk: ssd}
      containers: [{name: c, image: i}]
  `);
  t.is(c.pods[0].node, 'a');
});

test('an empty input is a valid, empty cluster', (t) => {
  const c = cluster('');
  t.is(c.pods.length, 0);
  t.is(c.nodes.length, 2);
});

test('unknown kinds: one warning per kind, with a count; the rest still loads', (t) => {
  const text = yaml`
    apiVersion: v1
    kind: ServiceAccount
    metadata: {name: one}
    ---
    ${POD_HEAD}
    spec: {containers: [{name: c, image: i}]}
    ---
    apiVersion: v1
    kind: ServiceAccount
    metadata: {name: two}
    ---
    apiVersion: example.com/v1
    kind: Widget
  `;
  t.true(load(text).ok);
  t.deepEqual(warnings(text), [
    't.yaml: document 1 (ServiceAccount one), line 1: kind v1 ServiceAccount is not modelled by podwire: skipped (2 documents)',
    't.yaml: document 4 (Widget), line 15: kind example.com/v1 Widget is not modelled by podwire: skipped',
  ]);
});

test('unsupported pod features are warnings, not errors', (t) => {
  const text = yaml`
    ${POD_HEAD}
    spec:
      hostNetwork: true
      containers:
        - name: c
          image: i
          env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}, {name: B, value: b}]
  `;
  const r = load(text);
  if (!r.ok) return t.fail();
  t.deepEqual(r.cluster.pods[0].containers[0].env, [{ name: 'B', value: 'b' }]);
  t.deepEqual(warnings(text), [
    't.yaml: document 1 (Pod p), line 6: spec.hostNetwork: not supported by podwire: the pod gets its own network namespace',
    't.yaml: document 1 (Pod p), line 10: spec.containers[0].env[0].valueFrom.resourceFieldRef: not supported by podwire: the variable is left out',
  ]);
});

test('a name from the command line wins over the Cluster document and picks the underlay', (t) => {
  const files = [{ path: 'c.yaml', text: 'apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nmetadata: {name: fromyaml}\nspec: {nodes: 1}\n' }];
  const fromYaml = loadCluster(files, { random: seededRandom(1) });
  const fromFlag = loadCluster(files, { random: seededRandom(1), name: 'fromflag' });
  if (!fromYaml.ok || !fromFlag.ok) return t.fail();
  t.is(fromYaml.cluster.settings.name, 'fromyaml');
  t.is(fromFlag.cluster.settings.name, 'fromflag');
  t.is(fromFlag.cluster.settings.clusterIndex, clusterIndex('fromflag'));
  t.not(fromFlag.cluster.nodes[0].underlay, fromYaml.cluster.nodes[0].underlay);
});

test('the outside network: node uplink addresses and LoadBalancer addresses from the pool', (t) => {
  const c = cluster(`
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 2, loadBalancerCIDR: 192.0.2.200/30}
---
apiVersion: v1
kind: Service
metadata: {name: explicit}
spec: {type: LoadBalancer, loadBalancerIP: 192.0.2.200, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: pooled}
spec: {type: LoadBalancer, ports: [{port: 80}]}
`);
  t.deepEqual(c.nodes.map((n) => formatIpv4(n.externalIP)), ['192.0.2.11', '192.0.2.12']);
  t.is(formatIpv4(c.settings.externalGateway), '192.0.2.1');
  const ingress = (name: string) => formatIpv4(c.services.find((s) => s.name === name)!.loadBalancerIngress!);
  t.is(ingress('explicit'), '192.0.2.200');
  t.is(ingress('pooled'), '192.0.2.201', 'the lowest free address of the pool');
});

test("the Cluster document's conntrack defaults are the dataplane's own (a kube-proxy node's)", (t) => {
  const d = DEFAULT_CONNTRACK;
  t.deepEqual(
    { tcpEstablished: d.tcpEstablishedTimeoutSeconds, tcpCloseWait: d.tcpCloseWaitTimeoutSeconds, udp: d.udpTimeoutSeconds, udpStream: d.udpStreamTimeoutSeconds },
    { tcpEstablished: KUBE_PROXY_TIMEOUTS.tcpEstablished, tcpCloseWait: KUBE_PROXY_TIMEOUTS.tcpCloseWait, udp: KUBE_PROXY_TIMEOUTS.udp, udpStream: KUBE_PROXY_TIMEOUTS.udpStream },
  );
});
