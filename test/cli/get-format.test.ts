/**
 * `podwire get` prints what `kubectl get` prints: golden tables for every kind with and without
 * -A and -o wide, the JSON and YAML object shapes, empty results, the endpoints list cut after
 * three, and HumanDuration at each of its boundaries.
 */
import test from 'ava';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { computeEndpoints, podKey } from '../../src/cluster/endpoints.js';
import type { Cluster, Pod } from '../../src/cluster/model.js';
import { formatCidr, formatIpv4 } from '../../src/packet/addr.js';
import {
  alignColumns, formatGet, formatSubsets, humanDuration, parseGetKind, repackSubsets,
  type EndpointsInfo, type GetInput, type NodeInfo, type PodInfo, type ServiceInfo,
} from '../../src/cli/get-format.js';
import { cluster } from '../cluster/helpers.js';

const NOW = Date.UTC(2024, 4, 14, 12, 0, 0);
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

const YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
metadata: {name: demo}
spec: {nodes: 2}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api, tier: x}}
spec:
  hostname: api-0
  subdomain: api
  containers:
    - {name: api, image: "example/api:1.2", ports: [{containerPort: 9000}, {name: metrics, containerPort: 9100, protocol: UDP}]}
    - {name: sidecar, image: busybox, args: ["--greeting=<hi> & bye"]}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: shop, labels: {app: batch}}
spec: {containers: [{name: batch, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web}}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}, {name: alt, port: 8081, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {clusterIP: None, selector: {tier: x, app: api}, ports: [{port: 9000}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec: {type: NodePort, selector: {app: web}, sessionAffinity: ClientIP, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec: {type: LoadBalancer, selector: {app: api}, ports: [{name: https, port: 443, targetPort: 9000, nodePort: 30443}, {name: dns, protocol: UDP, port: 53, targetPort: 9100, nodePort: 30053}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: db.example.com}
`;

interface World {
  readonly cluster: Cluster;
  readonly pods: PodInfo[];
  readonly services: ServiceInfo[];
  readonly endpoints: EndpointsInfo[];
  readonly nodes: NodeInfo[];
}

/**
 * The cluster as a store would see it a while after `podwire up`: one web pod running but not
 * ready, shop/batch still creating its sandbox, node-2 NotReady.
 */
function world(): World {
  const c = cluster(YAML);
  const unready = c.pods.filter((p) => p.namespace === 'default')[4];
  const creating = c.pods.find((p) => p.name === 'batch')!;
  const readiness = new Map(c.pods.map((p) => [podKey(p), p !== unready && p !== creating]));
  const podInfo = (pod: Pod, i: number): PodInfo => {
    const ready = readiness.get(podKey(pod)) === true;
    const node = c.nodes.find((n) => n.name === pod.node)!;
    return {
      pod,
      status: pod === creating ? 'ContainerCreating' : 'Running',
      phase: pod === creating ? 'Pending' : 'Running',
      readyContainers: ready ? pod.containers.length : 0,
      restarts: i === 1 ? 2 : 0,
      createdAt: NOW - (pod === creating ? 12 * S + 700 : 3 * M + 4 * S + 200),
      hostIP: formatIpv4(node.externalIP),
      ready,
    };
  };
  const services = c.services.map((service, i) => ({ service, createdAt: NOW - (i + 1) * 90 * M }));
  const computed = computeEndpoints(c, readiness);
  const endpoints: EndpointsInfo[] = [];
  for (const s of c.services) {
    if (s.type === 'ExternalName') continue;
    endpoints.push({ namespace: s.namespace, name: s.name, ports: computed.filter((e) => e.service === s), createdAt: NOW - 2 * D - 5 * H });
  }
  const nodes: NodeInfo[] = c.nodes.map((n, i) => ({
    name: n.name,
    labels: i === 0 ? { ...n.labels, 'node-role.kubernetes.io/control-plane': '', 'kubernetes.io/arch': 'amd64' } : n.labels,
    ready: i === 0,
    createdAt: NOW - 400 * D,
    internalIP: formatIpv4(n.externalIP),
    ...(i === 0 ? { externalIP: '203.0.113.7', kernel: '6.8.0-45-generic', osImage: 'Ubuntu 24.04.1 LTS' } : {}),
    podCIDR: formatCidr(n.podCIDR),
  }));
  return { cluster: c, pods: c.pods.map(podInfo), services, endpoints, nodes };
}

/** `namespace` '-A' lists every namespace. */
function get(w: World, kind: GetInput['kind'], output: GetInput['output'], namespace = 'default') {
  return formatGet({ kind, output, now: NOW, ...(namespace !== '-A' ? { namespace } : {}), pods: w.pods, services: w.services, endpoints: w.endpoints, nodes: w.nodes });
}


test('pods: the table, and -o wide -A with NAMESPACE first and IP <none> while the sandbox is made', (t) => {
  const w = world();
  t.deepEqual(get(w, 'pods', 'table'), { stdout: `NAME                   READY   STATUS    RESTARTS   AGE
web-77c776998d-grcn2   1/1     Running   0          3m5s
web-77c776998d-khcpt   0/1     Running   0          3m5s
web-77c776998d-kvzp9   1/1     Running   2          3m5s
web-77c776998d-qrfnj   1/1     Running   0          3m5s
web-77c776998d-vbs99   1/1     Running   0          3m5s
` });
  t.deepEqual(get(w, 'pods', 'wide', '-A'), { stdout: `NAMESPACE   NAME                   READY   STATUS              RESTARTS   AGE    IP           NODE     NOMINATED NODE   READINESS GATES
default     web-77c776998d-grcn2   1/1     Running             0          3m5s   10.244.2.3   node-2   <none>           <none>
default     web-77c776998d-khcpt   0/1     Running             0          3m5s   10.244.1.4   node-1   <none>           <none>
default     web-77c776998d-kvzp9   1/1     Running             2          3m5s   10.244.2.2   node-2   <none>           <none>
default     web-77c776998d-qrfnj   1/1     Running             0          3m5s   10.244.1.3   node-1   <none>           <none>
default     web-77c776998d-vbs99   1/1     Running             0          3m5s   10.244.1.2   node-1   <none>           <none>
shop        api                    2/2     Running             0          3m5s   10.244.2.4   node-2   <none>           <none>
shop        batch                  0/1     ContainerCreating   0          13s    <none>       node-1   <none>           <none>
` });
});

test('services: every type, headless None, LoadBalancer address, ExternalName, node ports, sorted SELECTOR', (t) => {
  const w = world();
  t.deepEqual(get(w, 'services', 'table'), { stdout: `NAME     TYPE           CLUSTER-IP   EXTERNAL-IP      PORT(S)           AGE
ext      ExternalName   <none>       db.example.com   <none>            7h30m
web      ClusterIP      10.96.0.2    <none>           80/TCP,8081/TCP   90m
web-np   NodePort       10.96.0.3    <none>           80:30080/TCP      4h30m
` });
  t.deepEqual(get(w, 'services', 'wide', '-A'), { stdout: `NAMESPACE   NAME     TYPE           CLUSTER-IP   EXTERNAL-IP      PORT(S)                      AGE     SELECTOR
default     ext      ExternalName   <none>       db.example.com   <none>                       7h30m   <none>
default     web      ClusterIP      10.96.0.2    <none>           80/TCP,8081/TCP              90m     app=web
default     web-np   NodePort       10.96.0.3    <none>           80:30080/TCP                 4h30m   app=web
shop        api      ClusterIP      None         <none>           9000/TCP                     3h      app=api,tier=x
shop        lb       LoadBalancer   10.96.0.4    192.0.2.192      443:30443/TCP,53:30053/UDP   6h      app=api
` });
});

test('a LoadBalancer without an address yet is <pending>', (t) => {
  const w = world();
  const lb = w.services.find((s) => s.service.name === 'lb')!;
  const { loadBalancerIngress: _, ...pending } = lb.service;
  const out = formatGet({ kind: 'services', output: 'table', namespace: 'shop', now: NOW, services: [{ ...lb, service: pending }] });
  t.is(out.stdout.split('\n')[1], 'lb     LoadBalancer   10.96.0.4    <pending>     443:30443/TCP,53:30053/UDP   6h');
});

test("EXTERNAL-IP lists spec.externalIPs after the load balancer's address, as kubectl does; -o json carries the new fields", (t) => {
  const w = world();
  const lb = w.services.find((s) => s.service.name === 'lb')!;
  const withIPs = { ...lb.service, externalIPs: [0xc0000232, 0xc0000233], loadBalancerSourceRanges: [{ base: 0xcb007100, prefix: 25 }], healthCheckNodePort: 30100 };
  const table = formatGet({ kind: 'services', output: 'table', namespace: 'shop', now: NOW, services: [{ ...lb, service: withIPs }] });
  t.is(table.stdout.split('\n')[1].split(/\s+/)[3], '192.0.2.192,192.0.2.50,192.0.2.51');
  const { loadBalancerIngress: _, ...pending } = withIPs;
  const pendingOut = formatGet({ kind: 'services', output: 'table', namespace: 'shop', now: NOW, services: [{ ...lb, service: pending }] });
  t.is(pendingOut.stdout.split('\n')[1].split(/\s+/)[3], '192.0.2.50,192.0.2.51', 'no <pending> once there are external IPs');
  const json = JSON.parse(formatGet({ kind: 'services', output: 'json', namespace: 'shop', now: NOW, services: [{ ...lb, service: withIPs }] }).stdout);
  const spec = json.items[0].spec;
  t.deepEqual([spec.externalIPs, spec.loadBalancerSourceRanges, spec.healthCheckNodePort], [['192.0.2.50', '192.0.2.51'], ['203.0.113.0/25'], 30100]);
});

test('endpoints: ready ip:port per subset and port, cut after three; -o wide prints the same columns', (t) => {
  const w = world();
  t.deepEqual(get(w, 'endpoints', 'table', '-A'), { stdout: `NAMESPACE   NAME     ENDPOINTS                                                     AGE
default     web      10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080 + 5 more...   2d5h
default     web-np   10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080 + 1 more...   2d5h
shop        api      10.244.2.4:9000                                               2d5h
shop        lb       10.244.2.4:9000,10.244.2.4:9100                               2d5h
` });
  t.deepEqual(get(w, 'endpoints', 'wide', '-A'), get(w, 'endpoints', 'table', '-A'));
});

test('nodes: roles from node-role labels, NotReady, -o wide with <unknown> for what is not known', (t) => {
  const w = world();
  t.deepEqual(get(w, 'nodes', 'table'), { stdout: `NAME     STATUS     ROLES           AGE    VERSION
node-1   Ready      control-plane   400d   v1.30.0-podwire
node-2   NotReady   <none>          400d   v1.30.0-podwire
` });
  t.deepEqual(get(w, 'nodes', 'wide'), { stdout: `NAME     STATUS     ROLES           AGE    VERSION           INTERNAL-IP   EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION     CONTAINER-RUNTIME
node-1   Ready      control-plane   400d   v1.30.0-podwire   192.0.2.11    203.0.113.7   Ubuntu 24.04.1 LTS   6.8.0-45-generic   podwire://netns
node-2   NotReady   <none>          400d   v1.30.0-podwire   192.0.2.12    <none>        <unknown>            <unknown>          podwire://netns
` });
  t.deepEqual(get(w, 'nodes', 'table', '-A'), get(w, 'nodes', 'table'), 'cluster-scoped: no NAMESPACE column');
});

test('nothing matched: kubectl\'s line on stderr, naming the namespace unless -A or cluster-scoped', (t) => {
  const w = world();
  t.deepEqual(get(w, 'pods', 'table', 'empty'), { stdout: '', stderr: 'No resources found in empty namespace.\n' });
  t.deepEqual(get(w, 'ingresses', 'wide'), { stdout: '', stderr: 'No resources found in default namespace.\n' });
  t.deepEqual(get(w, 'ingresses', 'table', '-A'), { stdout: '', stderr: 'No resources found\n' });
  t.deepEqual(formatGet({ kind: 'nodes', output: 'table', namespace: 'default', now: NOW }), { stdout: '', stderr: 'No resources found\n' });
  const EMPTY_JSON = '{\n    "apiVersion": "v1",\n    "items": [],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n';
  t.deepEqual(get(w, 'ingresses', 'json'), { stdout: EMPTY_JSON }, '-o json prints an empty List and no message');
  t.deepEqual(get(w, 'services', 'yaml', 'empty'), { stdout: 'apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: ""\n' });
});

test('-o json: a v1 List of Pods, keys sorted, four-space indent, <>& escaped as Go escapes them', (t) => {
  t.deepEqual(get(world(), 'pods', 'json', 'shop'), { stdout: String.raw`{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "creationTimestamp": "2024-05-14T11:56:55Z",
                "labels": {
                    "app": "api",
                    "tier": "x"
                },
                "name": "api",
                "namespace": "shop",
                "uid": "ca40fdf4-de00-4e07-bb54-b8dd1840decb"
            },
            "spec": {
                "containers": [
                    {
                        "image": "example/api:1.2",
                        "name": "api",
                        "ports": [
                            {
                                "containerPort": 9000,
                                "protocol": "TCP"
                            },
                            {
                                "containerPort": 9100,
                                "name": "metrics",
                                "protocol": "UDP"
                            }
                        ]
                    },
                    {
                        "args": [
                            "--greeting=\u003chi\u003e \u0026 bye"
                        ],
                        "image": "busybox",
                        "name": "sidecar"
                    }
                ],
                "dnsPolicy": "ClusterFirst",
                "hostname": "api-0",
                "nodeName": "node-2",
                "subdomain": "api"
            },
            "status": {
                "conditions": [
                    {
                        "lastProbeTime": null,
                        "status": "True",
                        "type": "Ready"
                    }
                ],
                "containerStatuses": [
                    {
                        "image": "example/api:1.2",
                        "name": "api",
                        "ready": true,
                        "restartCount": 0
                    },
                    {
                        "image": "busybox",
                        "name": "sidecar",
                        "ready": true,
                        "restartCount": 0
                    }
                ],
                "hostIP": "192.0.2.12",
                "hostIPs": [
                    {
                        "ip": "192.0.2.12"
                    }
                ],
                "phase": "Running",
                "podIP": "10.244.2.4",
                "podIPs": [
                    {
                        "ip": "10.244.2.4"
                    }
                ],
                "qosClass": "BestEffort"
            }
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "creationTimestamp": "2024-05-14T11:59:47Z",
                "labels": {
                    "app": "batch"
                },
                "name": "batch",
                "namespace": "shop",
                "uid": "ca381826-688a-49e2-8fe8-dca2ab3c624e"
            },
            "spec": {
                "containers": [
                    {
                        "image": "busybox",
                        "name": "batch"
                    }
                ],
                "dnsPolicy": "ClusterFirst",
                "nodeName": "node-1"
            },
            "status": {
                "conditions": [
                    {
                        "lastProbeTime": null,
                        "status": "False",
                        "type": "Ready"
                    }
                ],
                "containerStatuses": [
                    {
                        "image": "busybox",
                        "name": "batch",
                        "ready": false,
                        "restartCount": 0
                    }
                ],
                "hostIP": "192.0.2.11",
                "hostIPs": [
                    {
                        "ip": "192.0.2.11"
                    }
                ],
                "phase": "Pending",
                "qosClass": "BestEffort"
            }
        }
    ],
    "kind": "List",
    "metadata": {
        "resourceVersion": ""
    }
}
` });
});

test('-o yaml: Services and Endpoints as sigs.k8s.io/yaml prints them', (t) => {
  const w = world();
  t.deepEqual(get(w, 'services', 'yaml', 'shop'), { stdout: `apiVersion: v1
items:
- apiVersion: v1
  kind: Service
  metadata:
    creationTimestamp: "2024-05-14T09:00:00Z"
    name: api
    namespace: shop
  spec:
    clusterIP: None
    clusterIPs:
    - None
    internalTrafficPolicy: Cluster
    ipFamilies:
    - IPv4
    ipFamilyPolicy: SingleStack
    ports:
    - port: 9000
      protocol: TCP
      targetPort: 9000
    selector:
      app: api
      tier: x
    sessionAffinity: None
    type: ClusterIP
  status:
    loadBalancer: {}
- apiVersion: v1
  kind: Service
  metadata:
    creationTimestamp: "2024-05-14T06:00:00Z"
    name: lb
    namespace: shop
  spec:
    allocateLoadBalancerNodePorts: true
    clusterIP: 10.96.0.4
    clusterIPs:
    - 10.96.0.4
    externalTrafficPolicy: Cluster
    internalTrafficPolicy: Cluster
    ipFamilies:
    - IPv4
    ipFamilyPolicy: SingleStack
    ports:
    - name: https
      nodePort: 30443
      port: 443
      protocol: TCP
      targetPort: 9000
    - name: dns
      nodePort: 30053
      port: 53
      protocol: UDP
      targetPort: 9100
    selector:
      app: api
    sessionAffinity: None
    type: LoadBalancer
  status:
    loadBalancer:
      ingress:
      - ip: 192.0.2.192
        ipMode: VIP
kind: List
metadata:
  resourceVersion: ""
` });
  t.deepEqual(get(w, 'endpoints', 'yaml', 'shop'), { stdout: `apiVersion: v1
items:
- apiVersion: v1
  kind: Endpoints
  metadata:
    creationTimestamp: "2024-05-12T07:00:00Z"
    labels:
      service.kubernetes.io/headless: ""
    name: api
    namespace: shop
  subsets:
  - addresses:
    - hostname: api-0
      ip: 10.244.2.4
      nodeName: node-2
      targetRef:
        kind: Pod
        name: api
        namespace: shop
        uid: ca40fdf4-de00-4e07-bb54-b8dd1840decb
    ports:
    - port: 9000
      protocol: TCP
- apiVersion: v1
  kind: Endpoints
  metadata:
    creationTimestamp: "2024-05-12T07:00:00Z"
    name: lb
    namespace: shop
  subsets:
  - addresses:
    - ip: 10.244.2.4
      nodeName: node-2
      targetRef:
        kind: Pod
        name: api
        namespace: shop
        uid: ca40fdf4-de00-4e07-bb54-b8dd1840decb
    ports:
    - name: https
      port: 9000
      protocol: TCP
    - name: dns
      port: 9100
      protocol: UDP
kind: List
metadata:
  resourceVersion: ""
` });
});

test('-o json and -o yaml carry the same objects, with the Kubernetes field names', (t) => {
  const w = world();
  const objects = (kind: GetInput['kind']) => {
    const fromJson = JSON.parse(get(w, kind, 'json', '-A').stdout);
    t.deepEqual(parseYaml(get(w, kind, 'yaml', '-A').stdout), fromJson, kind);
    t.like(fromJson, { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' } });
    return fromJson.items;
  };
  const pods = objects('pods');
  t.is(pods.length, 7);
  const web = pods.find((p: any) => p.metadata.name.startsWith('web-'));
  t.like(web, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { namespace: 'default', labels: { app: 'web' }, ownerReferences: [{ kind: 'ReplicaSet', name: `web-${web.metadata.labels['pod-template-hash']}`, controller: true }] },
    spec: { dnsPolicy: 'ClusterFirst', containers: [{ name: 'web', image: 'nginx', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  });
  t.deepEqual(Object.keys(web.metadata), ['creationTimestamp', 'generateName', 'labels', 'name', 'namespace', 'ownerReferences', 'uid']);
  t.deepEqual(Object.keys(web.status), ['conditions', 'containerStatuses', 'hostIP', 'hostIPs', 'phase', 'podIP', 'podIPs', 'qosClass']);
  t.deepEqual(web.status.podIPs, [{ ip: web.status.podIP }]);
  t.regex(web.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const services = objects('services');
  t.like(services.find((s: any) => s.metadata.name === 'web-np'), {
    kind: 'Service',
    spec: { type: 'NodePort', clusterIP: '10.96.0.3', clusterIPs: ['10.96.0.3'], ports: [{ protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }], selector: { app: 'web' }, sessionAffinity: 'ClientIP' },
    status: { loadBalancer: {} },
  });
  t.like(services.find((s: any) => s.metadata.name === 'ext'), { spec: { type: 'ExternalName', externalName: 'db.example.com' } });
  t.false('clusterIP' in services.find((s: any) => s.metadata.name === 'ext').spec);

  const endpoints = objects('endpoints');
  const webEp = endpoints.find((e: any) => e.metadata.name === 'web');
  t.is(webEp.subsets.length, 1, 'both ports reach 8080 on the same pods: one subset');
  t.deepEqual(webEp.subsets[0].ports, [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'alt', port: 8080, protocol: 'TCP' }]);
  t.is(webEp.subsets[0].addresses.length, 4);
  t.is(webEp.subsets[0].notReadyAddresses.length, 1);
  t.like(webEp.subsets[0].addresses[0], { ip: '10.244.1.2', nodeName: 'node-1', targetRef: { kind: 'Pod', namespace: 'default' } });

  const nodes = objects('nodes');
  t.like(nodes[0], {
    kind: 'Node',
    metadata: { name: 'node-1', labels: { 'node-role.kubernetes.io/control-plane': '' } },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
    status: {
      addresses: [{ type: 'InternalIP', address: '192.0.2.11' }, { type: 'ExternalIP', address: '203.0.113.7' }, { type: 'Hostname', address: 'node-1' }],
      conditions: [{ type: 'Ready', status: 'True' }],
      nodeInfo: { kernelVersion: '6.8.0-45-generic', osImage: 'Ubuntu 24.04.1 LTS', containerRuntimeVersion: 'podwire://netns', kubeletVersion: 'v1.30.0-podwire' },
    },
  });
  t.like(nodes[1], { status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } });
  t.deepEqual(objects('ingresses'), []);
});

test('-o yaml quotes what YAML 1.1 would read as another type, as go-yaml does', (t) => {
  const out = get(world(), 'nodes', 'yaml').stdout;
  t.true(out.includes('    creationTimestamp: "2023-04-10T12:00:00Z"\n'));
  t.true(out.includes('      node-role.kubernetes.io/control-plane: ""\n'));
  t.true(out.includes('    - message: kubelet is posting ready status\n      reason: KubeletReady\n      status: "True"\n      type: Ready\n'));
});

test('-A lists in storage-key order: namespace kube-system sorts before kube ("-" < "/")', (t) => {
  const w = world();
  const base = w.pods[0];
  const at = (namespace: string, name: string): PodInfo => ({ ...base, pod: { ...base.pod, namespace, name } });
  const out = formatGet({ kind: 'pods', output: 'table', now: NOW, pods: [at('kube', 'a'), at('kube-system', 'b'), at('default', 'z'), at('default', 'y')] });
  t.deepEqual(out.stdout.split('\n').slice(1, -1).map((l) => l.split(/ +/).slice(0, 2).join('/')), ['default/y', 'default/z', 'kube-system/b', 'kube/a']);
});

test('endpoints: three are listed whole, a fourth becomes "+ 1 more...", none is <none>', (t) => {
  const w = world();
  const web = w.endpoints.find((e) => e.name === 'web-np')!;
  const port = web.ports[0];
  const take = (n: number) => formatSubsets(repackSubsets([{ ...port, endpoints: port.endpoints.filter((e) => e.ready).slice(0, n) }]));
  t.is(take(0), '<none>');
  t.is(take(3), '10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080');
  t.is(take(4), '10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080 + 1 more...');
  t.is(formatSubsets(repackSubsets([{ ...port, endpoints: port.endpoints.filter((e) => !e.ready) }])), '<none>', 'not-ready addresses are not listed');
});

test('endpoints: addresses sort by their IP text, and one service port reaching two numbers makes two subsets', (t) => {
  const w = world();
  const port = w.endpoints.find((e) => e.name === 'web-np')!.ports[0];
  const ep = (ip: number, p: number) => ({ ip, port: p, ready: true });
  const ten = (last: number) => ((10 << 24) | (244 << 16) | (1 << 8) | last) >>> 0;
  const subsets = repackSubsets([{ ...port, endpoints: [ep(ten(2), 80), ep(ten(10), 80), ep(ten(3), 81)] }]);
  t.deepEqual(subsets.map((s) => [s.addresses.map((a) => a.ip), s.ports.map((p) => p.port)]), [[['10.244.1.10', '10.244.1.2'], [80]], [['10.244.1.3'], [81]]]);
});

test('property: for any number of ready endpoints, the first min(n, 3) are listed and the rest counted', (t) => {
  const port = world().endpoints.find((e) => e.name === 'web-np')!.ports[0];
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 0xfffffffe }), { maxLength: 12 }), fc.integer({ min: 1, max: 65535 }), (ips, p) => {
    const text = formatSubsets(repackSubsets([{ ...port, endpoints: ips.map((ip) => ({ ip, port: p, ready: true })) }]));
    if (ips.length === 0) return text === '<none>';
    const [list, more] = text.split(' + ');
    // SortSubsets compares the IP text byte by byte: 10.0.0.1 < 10.0.0.10 < 10.0.0.2.
    const sorted = ips.map(formatIpv4).sort().map((ip) => `${ip}:${p}`);
    return list === sorted.slice(0, 3).join(',') && (ips.length > 3 ? more === `${ips.length - 3} more...` : more === undefined);
  }));
  t.pass();
});

test('humanDuration: apimachinery\'s boundaries', (t) => {
  const cases: [number, string][] = [
    [-2 * S, '<invalid>'], [-1999, '0s'], [-S, '0s'], [-1, '0s'], [0, '0s'], [999, '0s'], [59 * S, '59s'],
    [119 * S + 999, '119s'], [2 * M, '2m'], [2 * M + S, '2m1s'], [9 * M + 59 * S, '9m59s'], [10 * M, '10m'],
    [10 * M + 59 * S, '10m'], [179 * M + 59 * S, '179m'], [3 * H, '3h'], [3 * H + 5 * M, '3h5m'], [7 * H + 59 * M + 59 * S, '7h59m'],
    [8 * H, '8h'], [8 * H + 59 * M, '8h'], [47 * H + 59 * M, '47h'], [48 * H, '2d'], [2 * D + 5 * H, '2d5h'],
    [7 * D + 23 * H + 59 * M, '7d23h'], [8 * D, '8d'], [8 * D + 23 * H, '8d'], [729 * D + 23 * H, '729d'],
    [730 * D, '2y'], [731 * D, '2y1d'], [8 * 365 * D - H, '7y364d'], [8 * 365 * D, '8y'], [20 * 365 * D + 100 * D, '20y'],
  ];
  for (const [ms, text] of cases) t.is(humanDuration(ms), text, `${ms} ms`);
  fc.assert(fc.property(fc.integer({ min: 0, max: 119_999 }), (ms) => humanDuration(ms) === `${Math.floor(ms / 1000)}s`));
});

test('AGE counts from the creation time cut to the second, as the API server stores it', (t) => {
  const w = world();
  const pod = { ...w.pods[0], createdAt: NOW - 119 * S - 1 };
  t.regex(formatGet({ kind: 'pods', output: 'table', namespace: 'default', now: NOW, pods: [pod] }).stdout, / 2m\n$/);
});

test('parseGetKind: kubectl\'s names and short names', (t) => {
  const names: [string, GetInput['kind'] | undefined][] = [
    ['pod', 'pods'], ['pods', 'pods'], ['po', 'pods'], ['Pods', 'pods'], ['service', 'services'], ['services', 'services'], ['svc', 'services'],
    ['endpoints', 'endpoints'], ['ep', 'endpoints'], ['node', 'nodes'], ['nodes', 'nodes'], ['no', 'nodes'],
    ['ingress', 'ingresses'], ['ingresses', 'ingresses'], ['ing', 'ingresses'], ['deploy', undefined], ['', undefined], ['constructor', undefined], ['toString', undefined],
  ];
  for (const [text, kind] of names) t.is(parseGetKind(text), kind, text);
});

test('alignColumns is tabwriter(minwidth 6, padding 3): narrow columns still take 6, the last column is not padded', (t) => {
  t.is(alignColumns([['A', 'BB', 'C'], ['dddddd', 'e', 'f']]), 'A        BB    C\ndddddd   e     f\n');
});
