import test from 'ava';
import { loadCluster } from '../../src/cluster/load.js';
import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { seededRandom } from '../../src/cluster/random.js';
import { errors, POD_HEAD, yaml } from './helpers.js';

/** A valid pod spec line to append to POD_HEAD when the test is about something else. */
const SPEC = 'spec: {containers: [{name: c, image: i}]}';

const svc = (spec: string) => yaml`
  apiVersion: v1
  kind: Service
  metadata: {name: s}
  spec: ${spec}
`;
const deployment = (spec: string) => yaml`
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
  spec: ${spec}
`;
const policy = (spec: string) => yaml`
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: np}
  spec: ${spec}
`;
const clusterDoc = (spec: string) => yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: c}
  spec: ${spec}
`;

/** [what, input, every expected message in order]. */
const CASES: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  // ---- Documents
  ['YAML syntax error', 'a: [unclosed\nb: c\n', ['t.yaml: document 1, line 2: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]']],
  ['duplicate key', `${POD_HEAD}\n${SPEC}\n${SPEC}\n`, ['t.yaml: document 1, line 6: YAML syntax: Map keys must be unique']],
  ['document that is not a map', '- a\n- b\n', ['t.yaml: document 1, line 1: a Kubernetes object must be a map, got a list']],
  ['apiVersion and kind missing', 'metadata: {name: x}\n', ['t.yaml: document 1, line 1: apiVersion: required', 't.yaml: document 1, line 1: kind: required']],
  ['kind not a string', 'apiVersion: v1\nkind: [Pod]\n', ['t.yaml: document 1, line 2: kind: must be a string, got a list']],
  [
    'known kind under the wrong apiVersion',
    'apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\n',
    ['t.yaml: document 1 (Deployment old), line 1: apiVersion: Deployment is served as apps/v1, got "extensions/v1beta1"'],
  ],
  // Refused wherever the alias is, as go-yaml does, even in a field podwire ignores.
  ['unknown alias', `${POD_HEAD}\n  annotations: {a: *nope}\n${SPEC}\n`, ['t.yaml: document 1, line 5: YAML syntax: unknown alias *nope']],
  ['merge key that is not a map', `${POD_HEAD}\n  labels: {<<: [a]}\n${SPEC}\n`, ['t.yaml: document 1 (Pod p), line 5: metadata.labels[0]: a << merge key must refer to a map, got "a"']],
  [
    'documents are counted per file and errors come in reading order',
    `${POD_HEAD}\n${SPEC}\n---\n${POD_HEAD}\n  namespace: Bad\n${SPEC}\n---\n\n---\nkind: Pod\n`,
    [
      't.yaml: document 2 (Pod p), line 11: metadata.namespace: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "Bad"',
      't.yaml: document 4 (Pod), line 16: apiVersion: required',
    ],
  ],

  // ---- Metadata and names
  ['name missing', 'apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: i}]}\n', ['t.yaml: document 1 (Pod), line 1: metadata.name: required']],
  [
    'pod name not a DNS subdomain',
    `apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\n${SPEC}\n`,
    ['t.yaml: document 1 (Pod Web_1), line 3: metadata.name: must be a DNS-1123 subdomain (lowercase letters, digits, \'-\' and \'.\', each part starting and ending with a letter or digit), got "Web_1"'],
  ],
  [
    'service name not a DNS-1035 label',
    svc('{ports: [{port: 80}]}').replace('name: s', 'name: 1st'),
    ['t.yaml: document 1 (Service 1st), line 3: metadata.name: must be a DNS-1035 label (lowercase letters, digits and \'-\', starting with a letter and ending with a letter or digit), got "1st"'],
  ],
  [
    'namespace name too long',
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${'a'.repeat(64)}}\n`,
    [`t.yaml: document 1 (Namespace ${'a'.repeat(64)}), line 3: metadata.name: must be at most 63 characters, got 64`],
  ],
  [
    'namespace that does not exist',
    `${POD_HEAD}\n  namespace: shop\n${SPEC}\n`,
    ['t.yaml: document 1 (Pod p), line 5: metadata.namespace: namespace "shop" does not exist (declare it with a Namespace document)'],
  ],
  [
    'duplicate object',
    `${POD_HEAD}\n${SPEC}\n---\n${POD_HEAD}\n${SPEC}\n`,
    ['t.yaml: document 2 (Pod p), line 10: metadata.name: Pod default/p is already defined in t.yaml document 1'],
  ],
  [
    'same name, different namespaces or kinds, is not a duplicate; but a namespace twice is',
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: p}\n---\n${POD_HEAD}\n  namespace: p\n${SPEC}\n---\n${POD_HEAD}\n${SPEC}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: p}\n`,
    ['t.yaml: document 4 (Namespace p), line 20: metadata.name: Namespace p is already defined in t.yaml document 1'],
  ],
  [
    'an invalid Namespace document does not make its objects fail too',
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {a: "b c"}}\n---\n${POD_HEAD}\n  namespace: shop\n${SPEC}\n`,
    ['t.yaml: document 1 (Namespace shop), line 3: metadata.labels.a: must be a valid label value (letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit), got "b c"'],
  ],
  [
    'label key and value syntax',
    `${POD_HEAD}\n  labels: {"-bad": x, ok: "not ok", num: 1, e:, on: yes}\n${SPEC}\n`,
    [
      't.yaml: document 1 (Pod p), line 5: metadata.labels["-bad"]: key must be a qualified name (letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit, optionally prefixed by a DNS subdomain and \'/\'), got "-bad"',
      't.yaml: document 1 (Pod p), line 5: metadata.labels.ok: must be a valid label value (letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit), got "not ok"',
      't.yaml: document 1 (Pod p), line 5: metadata.labels.num: must be a string, got 1',
      't.yaml: document 1 (Pod p), line 5: metadata.labels.e: must be a string, got null',
      // YAML 1.1, as kubectl reads it: both `on` and `yes` are booleans.
      't.yaml: document 1 (Pod p), line 5: metadata.labels.true: must be a string (YAML reads yes as a boolean: quote it), got true',
    ],
  ],
  [
    'label key prefix',
    `${POD_HEAD}\n  labels: {Example.com/x: y, a/: b}\n${SPEC}\n`,
    [
      't.yaml: document 1 (Pod p), line 5: metadata.labels["Example.com/x"]: key prefix must be a DNS-1123 subdomain (lowercase letters, digits, \'-\' and \'.\', each part starting and ending with a letter or digit), got "Example.com"',
      't.yaml: document 1 (Pod p), line 5: metadata.labels["a/"]: key must have a name after the prefix',
    ],
  ],

  // ---- Pods
  ['containers missing', `${POD_HEAD}\nspec: {}\n`, ['t.yaml: document 1 (Pod p), line 5: spec.containers: required']],
  ['spec missing', `${POD_HEAD}\n`, ['t.yaml: document 1 (Pod p), line 1: spec.containers: required']],
  ['containers empty', `${POD_HEAD}\nspec: {containers: []}\n`, ['t.yaml: document 1 (Pod p), line 5: spec.containers: must not be empty']],
  [
    'container name and image',
    `${POD_HEAD}\nspec:\n  containers:\n    - name: c\n      image: i\n    - name: c\n    - image: i\n    - name: Big\n      image: ""\n`,
    [
      't.yaml: document 1 (Pod p), line 9: spec.containers[1].name: duplicate container name "c"',
      't.yaml: document 1 (Pod p), line 9: spec.containers[1].image: required',
      't.yaml: document 1 (Pod p), line 10: spec.containers[2].name: required',
      't.yaml: document 1 (Pod p), line 11: spec.containers[3].name: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "Big"',
      't.yaml: document 1 (Pod p), line 12: spec.containers[3].image: must not be empty',
    ],
  ],
  [
    'container ports',
    yaml`
      ${POD_HEAD}
      spec:
        containers:
          - name: a
            image: i
            ports:
              - {containerPort: 0}
              - {containerPort: "80"}
              - {containerPort: 80, protocol: tcp}
              - {name: http, containerPort: 81}
              - {name: http-, containerPort: 82}
              - {name: "8080", containerPort: 83}
              - {name: a--b, containerPort: 84}
              - {name: waytoolongportname, containerPort: 85}
              - {}
          - name: b
            image: i
            ports: [{name: http, containerPort: 86}]
    `,
    [
      't.yaml: document 1 (Pod p), line 10: spec.containers[0].ports[0].containerPort: must be an integer between 1 and 65535, got 0',
      't.yaml: document 1 (Pod p), line 11: spec.containers[0].ports[1].containerPort: must be an integer between 1 and 65535, got "80"',
      't.yaml: document 1 (Pod p), line 12: spec.containers[0].ports[2].protocol: must be one of TCP, UDP, SCTP, got "tcp"',
      't.yaml: document 1 (Pod p), line 14: spec.containers[0].ports[4].name: must be an IANA service name (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "http-"',
      't.yaml: document 1 (Pod p), line 15: spec.containers[0].ports[5].name: must contain at least one letter, got "8080"',
      't.yaml: document 1 (Pod p), line 16: spec.containers[0].ports[6].name: must not contain consecutive hyphens, got "a--b"',
      't.yaml: document 1 (Pod p), line 17: spec.containers[0].ports[7].name: must be at most 15 characters, got 18',
      't.yaml: document 1 (Pod p), line 18: spec.containers[0].ports[8].containerPort: required',
      't.yaml: document 1 (Pod p), line 21: spec.containers[1].ports[0].name: duplicate port name "http"',
    ],
  ],
  [
    'command, args and env',
    `${POD_HEAD}\nspec:\n  containers:\n    - name: c\n      image: i\n      command: sh -c\n      args: [a, 1]\n      env: [{name: 1X, value: v}, {value: v}, {name: NUM, value: 1.10}, {name: M, value: no}]\n`,
    [
      't.yaml: document 1 (Pod p), line 9: spec.containers[0].command: must be a list, got "sh -c"',
      't.yaml: document 1 (Pod p), line 10: spec.containers[0].args[1]: must be a string, got 1',
      't.yaml: document 1 (Pod p), line 11: spec.containers[0].env[0].name: must be a valid environment variable name (letters, digits, \'-\', \'_\' and \'.\', not starting with a digit), got "1X"',
      't.yaml: document 1 (Pod p), line 11: spec.containers[0].env[1].name: required',
      't.yaml: document 1 (Pod p), line 11: spec.containers[0].env[2].value: must be a string, got 1.1',
      't.yaml: document 1 (Pod p), line 11: spec.containers[0].env[3].value: must be a string (YAML reads no as a boolean: quote it), got false',
    ],
  ],
  ['readinessProbe not a map', `${POD_HEAD}\nspec: {containers: [{name: c, image: i, readinessProbe: yes please}]}\n`, ['t.yaml: document 1 (Pod p), line 5: spec.containers[0].readinessProbe: must be a map, got "yes please"']],
  [
    'placement fields',
    `${POD_HEAD}\nspec:\n  nodeName: Node_1\n  nodeSelector: [disk]\n  hostname: h.1\n  subdomain: "-s"\n  containers: [{name: c, image: i}]\n`,
    [
      't.yaml: document 1 (Pod p), line 6: spec.nodeName: must be a DNS-1123 subdomain (lowercase letters, digits, \'-\' and \'.\', each part starting and ending with a letter or digit), got "Node_1"',
      't.yaml: document 1 (Pod p), line 7: spec.nodeSelector: must be a map, got a list',
      't.yaml: document 1 (Pod p), line 8: spec.hostname: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "h.1"',
      't.yaml: document 1 (Pod p), line 9: spec.subdomain: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "-s"',
    ],
  ],
  ['node that does not exist', `${POD_HEAD}\nspec: {nodeName: node-9, containers: [{name: c, image: i}]}\n`, ['t.yaml: document 1 (Pod p), line 5: spec.nodeName: node "node-9" does not exist (nodes: node-1, node-2)']],
  ['nodeSelector no node matches', `${POD_HEAD}\nspec:\n  nodeSelector: {disk: ssd}\n  containers: [{name: c, image: i}]\n`, ['t.yaml: document 1 (Pod p), line 6: spec.nodeSelector: 0/2 nodes match disk=ssd']],
  [
    'nodeName whose node fails the nodeSelector',
    `${POD_HEAD}\nspec:\n  nodeName: node-1\n  nodeSelector: {kubernetes.io/hostname: node-2}\n  containers: [{name: c, image: i}]\n`,
    ['t.yaml: document 1 (Pod p), line 7: spec.nodeSelector: node node-1 (from spec.nodeName) does not match kubernetes.io/hostname=node-2'],
  ],
  ['dnsPolicy unknown', `${POD_HEAD}\nspec: {dnsPolicy: clusterfirst, containers: [{name: c, image: i}]}\n`, ['t.yaml: document 1 (Pod p), line 5: spec.dnsPolicy: must be one of ClusterFirst, ClusterFirstWithHostNet, Default, None, got "clusterfirst"']],
  ['dnsPolicy None without dnsConfig', `${POD_HEAD}\nspec: {dnsPolicy: None, containers: [{name: c, image: i}]}\n`, ['t.yaml: document 1 (Pod p), line 5: spec.dnsConfig: required when dnsPolicy is None']],
  [
    'dnsPolicy None without nameservers',
    `${POD_HEAD}\nspec:\n  dnsPolicy: None\n  dnsConfig: {searches: [a.example]}\n  containers: [{name: c, image: i}]\n`,
    ['t.yaml: document 1 (Pod p), line 7: spec.dnsConfig.nameservers: must have at least one nameserver when dnsPolicy is None'],
  ],
  [
    'dnsConfig limits and syntax',
    yaml`
      ${POD_HEAD}
      spec:
        dnsConfig:
          nameservers: [1.1.1.1, 8.8.8.8, 9.9.9.9, 1.0.0.1, dns.example]
          searches: [${Array.from({ length: 33 }, (_, i) => `s${i}.example`).join(', ')}, Bad_Domain]
          options: [{value: "1"}, {name: ndots, value: 2}]
        containers: [{name: c, image: i}]
    `,
    [
      't.yaml: document 1 (Pod p), line 7: spec.dnsConfig.nameservers[4]: must be an IPv4 address, got "dns.example"',
      't.yaml: document 1 (Pod p), line 7: spec.dnsConfig.nameservers: must not have more than 3 nameservers, got 4',
      't.yaml: document 1 (Pod p), line 8: spec.dnsConfig.searches[33]: must be a DNS-1123 subdomain (lowercase letters, digits, \'-\' and \'.\', each part starting and ending with a letter or digit), got "Bad_Domain"',
      't.yaml: document 1 (Pod p), line 8: spec.dnsConfig.searches: must not have more than 32 search paths, got 33',
      't.yaml: document 1 (Pod p), line 9: spec.dnsConfig.options[0].name: required',
      't.yaml: document 1 (Pod p), line 9: spec.dnsConfig.options[1].value: must be a string, got 2',
    ],
  ],
  [
    'dnsConfig search list too long',
    `${POD_HEAD}\nspec:\n  dnsConfig: {searches: [${Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(97 + i).repeat(63)}.${'x'.repeat(170)}`).join(', ')}]}\n  containers: [{name: c, image: i}]\n`,
    ['t.yaml: document 1 (Pod p), line 6: spec.dnsConfig.searches: must not have more than 2048 characters (including spaces) in the search list, got 2114'],
  ],

  // ---- Deployments
  [
    'replicas not a number (the example from the issue)',
    yaml`
      apiVersion: podwire.dev/v1alpha1
      kind: Cluster
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers: [{name: c, image: i}]
        replicas: three
    `,
    ['t.yaml: document 2 (Deployment web), line 16: spec.replicas: must be a non-negative integer, got "three"'],
  ],
  ['replicas negative', deployment('{replicas: -1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}}'), ['t.yaml: document 1 (Deployment web), line 4: spec.replicas: must be a non-negative integer, got -1']],
  ['selector and template missing', deployment('{replicas: 1}'), ['t.yaml: document 1 (Deployment web), line 4: spec.selector: required', 't.yaml: document 1 (Deployment web), line 4: spec.template: required']],
  [
    'selector empty',
    deployment('{selector: {}, template: {spec: {containers: [{name: c, image: i}]}}}'),
    ['t.yaml: document 1 (Deployment web), line 4: spec.selector: must not be empty: a Deployment must say which pods it owns'],
  ],
  [
    'selector does not match the template labels',
    deployment('{selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: api}}, spec: {containers: [{name: c, image: i}]}}}'),
    ['t.yaml: document 1 (Deployment web), line 4: spec.template.metadata.labels: do not match spec.selector app=web'],
  ],
  [
    'template errors carry the template path',
    deployment('{selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c}]}}}'),
    ['t.yaml: document 1 (Deployment web), line 4: spec.template.spec.containers[0].image: required'],
  ],
  [
    'template nodeName: one error for all replicas',
    deployment('{replicas: 3, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {nodeName: gone, containers: [{name: c, image: i}]}}}'),
    ['t.yaml: document 1 (Deployment web), line 4: spec.template.spec.nodeName: node "gone" does not exist (nodes: node-1, node-2)'],
  ],
  [
    'selector expressions',
    deployment(
      '{selector: {matchExpressions: [{key: a, operator: In}, {key: b, operator: Exists, values: [x]}, {key: c, operator: Equals, values: [x]}, {operator: In, values: [x]}, {key: d, operator: In, values: ["bad value"]}]}, template: {spec: {containers: [{name: c, image: i}]}}}',
    ),
    [
      't.yaml: document 1 (Deployment web), line 4: spec.selector.matchExpressions[0].values: must be non-empty when operator is In',
      't.yaml: document 1 (Deployment web), line 4: spec.selector.matchExpressions[1].values: must be empty when operator is Exists',
      't.yaml: document 1 (Deployment web), line 4: spec.selector.matchExpressions[2].operator: must be one of In, NotIn, Exists, DoesNotExist, got "Equals"',
      't.yaml: document 1 (Deployment web), line 4: spec.selector.matchExpressions[3].key: required',
      't.yaml: document 1 (Deployment web), line 4: spec.selector.matchExpressions[4].values[0]: must be a valid label value (letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit), got "bad value"',
    ],
  ],

  // ---- Services
  ['service type unknown', svc('{type: External, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.type: must be one of ClusterIP, NodePort, LoadBalancer, ExternalName, got "External"']],
  ['service without ports', svc('{selector: {app: a}}'), ['t.yaml: document 1 (Service s), line 4: spec.ports: must have at least one port']],
  ['clusterIP not an address', svc('{clusterIP: 10.96.0.300, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: must be an IPv4 address, got "10.96.0.300"']],
  ['clusterIP outside the service CIDR', svc('{clusterIP: 10.200.0.1, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: 10.200.0.1 is not in the service CIDR 10.96.0.0/12']],
  ['clusterIP is the network address', svc('{clusterIP: 10.96.0.0, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: 10.96.0.0 is the network address of the service CIDR 10.96.0.0/12']],
  ['clusterIP is the broadcast address', svc('{clusterIP: 10.111.255.255, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: 10.111.255.255 is the broadcast address of the service CIDR 10.96.0.0/12']],
  ['clusterIP reserved for DNS', svc('{clusterIP: 10.96.0.10, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: 10.96.0.10 is reserved for Service kube-system/kube-dns']],
  ['clusterIP reserved for kubernetes', svc('{clusterIP: 10.96.0.1, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: 10.96.0.1 is reserved for Service default/kubernetes']],
  [
    'clusterIP conflict',
    `${svc('{clusterIP: 10.96.5.5, ports: [{port: 80}]}')}---\n${svc('{clusterIP: 10.96.5.5, ports: [{port: 80}]}').replace('name: s', 'name: t')}`,
    ['t.yaml: document 2 (Service t), line 9: spec.clusterIP: 10.96.5.5 is already allocated to Service default/s'],
  ],
  ['clusterIP None on a NodePort service', svc('{type: NodePort, clusterIP: None, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: may not be None when type is NodePort']],
  [
    'ExternalName without a name, with a clusterIP',
    svc('{type: ExternalName, clusterIP: 10.96.0.5}'),
    ['t.yaml: document 1 (Service s), line 4: spec.clusterIP: must not be set when type is ExternalName', 't.yaml: document 1 (Service s), line 4: spec.externalName: required'],
  ],
  [
    'ExternalName not a DNS name',
    svc('{type: ExternalName, externalName: "db example"}'),
    ['t.yaml: document 1 (Service s), line 4: spec.externalName: must be a DNS-1123 subdomain (lowercase letters, digits, \'-\' and \'.\', each part starting and ending with a letter or digit), got "db example"'],
  ],
  [
    'service ports',
    yaml`
      apiVersion: v1
      kind: Service
      metadata: {name: s}
      spec:
        ports:
          - {name: http, port: 80, targetPort: "8080"}
          - {port: 81, nodePort: 30001}
          - {name: http, port: 80, targetPort: 0}
          - {name: Web, port: 65536, protocol: ICMP}
    `,
    [
      't.yaml: document 1 (Service s), line 6: spec.ports[0].targetPort: must contain at least one letter, got "8080"',
      't.yaml: document 1 (Service s), line 7: spec.ports[1].name: required',
      't.yaml: document 1 (Service s), line 7: spec.ports[1].nodePort: may not be used when type is ClusterIP',
      't.yaml: document 1 (Service s), line 8: spec.ports[2].name: duplicate port name "http"',
      't.yaml: document 1 (Service s), line 8: spec.ports[2].port: duplicate port and protocol "80/TCP"',
      't.yaml: document 1 (Service s), line 8: spec.ports[2].targetPort: must be an integer between 1 and 65535, got 0',
      't.yaml: document 1 (Service s), line 9: spec.ports[3].name: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "Web"',
      't.yaml: document 1 (Service s), line 9: spec.ports[3].protocol: must be one of TCP, UDP, SCTP, got "ICMP"',
      't.yaml: document 1 (Service s), line 9: spec.ports[3].port: must be an integer between 1 and 65535, got 65536',
    ],
  ],
  ['nodePort out of range', svc('{type: NodePort, ports: [{port: 80, nodePort: 8080}]}'), ['t.yaml: document 1 (Service s), line 4: spec.ports[0].nodePort: must be an integer between 30000 and 32767 (the node port range), got 8080']],
  [
    'nodePort taken by another service',
    `${svc('{type: NodePort, ports: [{port: 80, nodePort: 30080}]}')}---\n${svc('{type: LoadBalancer, ports: [{port: 81, nodePort: 30080}]}').replace('name: s', 'name: t')}`,
    ['t.yaml: document 2 (Service t), line 9: spec.ports[0].nodePort: 30080 is already allocated to Service default/s'],
  ],
  [
    'nodePort used twice for one protocol in one service',
    svc('{type: NodePort, ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]}'),
    ['t.yaml: document 1 (Service s), line 4: spec.ports[1].nodePort: 30080 is already used by another TCP port of this service'],
  ],
  [
    'session affinity',
    `${svc('{sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}, ports: [{port: 80}]}')}---\n${svc('{sessionAffinity: Sticky, ports: [{port: 80}]}').replace('name: s', 'name: t')}---\n${svc('{sessionAffinityConfig: {clientIP: {timeoutSeconds: 5}}, ports: [{port: 80}]}').replace('name: s', 'name: u')}`,
    [
      't.yaml: document 1 (Service s), line 4: spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be an integer between 1 and 86400, got 0',
      't.yaml: document 2 (Service t), line 9: spec.sessionAffinity: must be one of None, ClientIP, got "Sticky"',
      't.yaml: document 3 (Service u), line 14: spec.sessionAffinityConfig: must not be set when sessionAffinity is None',
    ],
  ],
  [
    'externalTrafficPolicy and loadBalancerIP on a ClusterIP service',
    svc('{externalTrafficPolicy: Local, loadBalancerIP: 192.0.2.1, ports: [{port: 80}]}'),
    [
      't.yaml: document 1 (Service s), line 4: spec.externalTrafficPolicy: may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)',
      't.yaml: document 1 (Service s), line 4: spec.loadBalancerIP: may only be set when type is LoadBalancer',
    ],
  ],
  [
    'loadBalancerSourceRanges: CIDRs, and only on a LoadBalancer',
    `${svc('{type: LoadBalancer, loadBalancerSourceRanges: [10.0.0.0/8, 203.0.113.0/33, nope], ports: [{port: 80}]}')}---\n${svc('{loadBalancerSourceRanges: [10.0.0.0/8], ports: [{port: 80}]}').replace('name: s', 'name: t')}`,
    [
      't.yaml: document 1 (Service s), line 4: spec.loadBalancerSourceRanges[1]: must be an IPv4 CIDR such as 10.0.0.0/16, got "203.0.113.0/33"',
      't.yaml: document 1 (Service s), line 4: spec.loadBalancerSourceRanges[2]: must be an IPv4 CIDR such as 10.0.0.0/16, got "nope"',
      "t.yaml: document 2 (Service t), line 9: spec.loadBalancerSourceRanges: may only be used when type is 'LoadBalancer'",
    ],
  ],
  [
    'externalIPs: addresses, none of them special',
    svc('{externalIPs: [192.0.2.50, 127.0.0.1, 0.0.0.0, 169.254.1.1, 224.0.0.5, 1.2.3], ports: [{port: 80}]}'),
    [
      't.yaml: document 1 (Service s), line 4: spec.externalIPs[1]: may not be in the loopback range (127.0.0.0/8)',
      't.yaml: document 1 (Service s), line 4: spec.externalIPs[2]: may not be unspecified (0.0.0.0/32)',
      't.yaml: document 1 (Service s), line 4: spec.externalIPs[3]: may not be in the link-local range (169.254.0.0/16)',
      't.yaml: document 1 (Service s), line 4: spec.externalIPs[4]: may not be in the link-local multicast range (224.0.0.0/24)',
      't.yaml: document 1 (Service s), line 4: spec.externalIPs[5]: must be an IPv4 address, got "1.2.3"',
    ],
  ],
  [
    'healthCheckNodePort: only for a LoadBalancer with Local policy, in the node port range',
    `${svc('{type: LoadBalancer, healthCheckNodePort: 30500, ports: [{port: 80}]}')}---\n${svc('{type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 80, ports: [{port: 80}]}').replace('name: s', 'name: t')}`,
    [
      "t.yaml: document 1 (Service s), line 4: spec.healthCheckNodePort: may only be set when type is 'LoadBalancer' and externalTrafficPolicy is 'Local'",
      't.yaml: document 2 (Service t), line 9: spec.healthCheckNodePort: must be an integer between 30000 and 32767 (the node port range), got 80',
    ],
  ],
  [
    'the new Service fields, of the wrong shape',
    svc('{type: LoadBalancer, externalTrafficPolicy: Local, loadBalancerSourceRanges: 10.0.0.0/8, externalIPs: 5, healthCheckNodePort: abc, allocateLoadBalancerNodePorts: maybe, clusterIPs: 7, ports: [{port: 80}]}'),
    [
      't.yaml: document 1 (Service s), line 4: spec.clusterIPs: must be a list, got 7',
      't.yaml: document 1 (Service s), line 4: spec.loadBalancerSourceRanges: must be a list, got "10.0.0.0/8"',
      't.yaml: document 1 (Service s), line 4: spec.externalIPs: must be a list, got 5',
      't.yaml: document 1 (Service s), line 4: spec.healthCheckNodePort: must be an integer between 30000 and 32767 (the node port range), got "abc"',
      't.yaml: document 1 (Service s), line 4: spec.allocateLoadBalancerNodePorts: must be a boolean, got "maybe"',
    ],
  ],
  ['externalTrafficPolicy unknown', svc('{type: NodePort, externalTrafficPolicy: local, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.externalTrafficPolicy: must be one of Cluster, Local, got "local"']],
  ['selector values are label values', svc('{selector: {app: "a b"}, ports: [{port: 80}]}'), ['t.yaml: document 1 (Service s), line 4: spec.selector.app: must be a valid label value (letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit), got "a b"']],

  // ---- Endpoints
  [
    'endpoints',
    yaml`
      apiVersion: v1
      kind: Endpoints
      metadata: {name: e}
      subsets:
        - addresses: [{ip: 10.0.0.256}, {ip: 127.0.0.1}, {hostname: h}, {ip: 169.254.1.1}, {ip: 224.0.0.1}]
          ports: [{port: 80}, {name: b, port: 0}]
    `,
    [
      't.yaml: document 1 (Endpoints e), line 5: subsets[0].addresses[0].ip: must be an IPv4 address, got "10.0.0.256"',
      't.yaml: document 1 (Endpoints e), line 5: subsets[0].addresses[1].ip: may not be in the loopback range (127.0.0.0/8)',
      't.yaml: document 1 (Endpoints e), line 5: subsets[0].addresses[2].ip: required',
      't.yaml: document 1 (Endpoints e), line 5: subsets[0].addresses[3].ip: may not be in the link-local range (169.254.0.0/16)',
      't.yaml: document 1 (Endpoints e), line 5: subsets[0].addresses[4].ip: may not be in the multicast range (224.0.0.0/4)',
      't.yaml: document 1 (Endpoints e), line 6: subsets[0].ports[0].name: required',
      't.yaml: document 1 (Endpoints e), line 6: subsets[0].ports[1].port: must be an integer between 1 and 65535, got 0',
    ],
  ],

  // ---- NetworkPolicies
  ['podSelector missing', policy('{ingress: []}'), ['t.yaml: document 1 (NetworkPolicy np), line 4: spec.podSelector: required']],
  [
    'policy peers',
    policy('{podSelector: {}, ingress: [{from: [{}, {ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}, {ipBlock: {}}, {ipBlock: {cidr: 10.0.0.0/33}}]}]}'),
    [
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].from[0]: must set one of podSelector, namespaceSelector or ipBlock',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].from[1]: must set either ipBlock or podSelector/namespaceSelector, not both',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].from[2].ipBlock.cidr: required',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].from[3].ipBlock.cidr: must be an IPv4 CIDR such as 10.0.0.0/16, got "10.0.0.0/33"',
    ],
  ],
  [
    'ipBlock except',
    policy('{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.0/16, 10.1.0.0/24, 10.0.1.1/24]}}]}]}'),
    [
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.egress[0].to[0].ipBlock.except[0]: must be a strict subset of cidr 10.0.0.0/16, got 10.0.0.0/16',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.egress[0].to[0].ipBlock.except[1]: must be a strict subset of cidr 10.0.0.0/16, got 10.1.0.0/24',
    ],
  ],
  [
    'policy ports',
    policy('{podSelector: {}, ingress: [{ports: [{port: 80, endPort: 79}, {port: http, endPort: 90}, {endPort: 90}, {port: 70000}, {protocol: ICMP}]}]}'),
    [
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].ports[0].endPort: must be greater than or equal to port (80), got 79',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].ports[1].endPort: may not be set when port is a name',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].ports[2].endPort: may not be set without port',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].ports[3].port: must be an integer between 1 and 65535, got 70000',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.ingress[0].ports[4].protocol: must be one of TCP, UDP, SCTP, got "ICMP"',
    ],
  ],
  [
    'policyTypes',
    policy('{podSelector: {}, policyTypes: [Ingress, ingress, Ingress]}'),
    [
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.policyTypes[1]: must be one of Ingress, Egress, got "ingress"',
      't.yaml: document 1 (NetworkPolicy np), line 4: spec.policyTypes[2]: duplicate policy type "Ingress"',
    ],
  ],

  // ---- The Cluster document
  [
    'cluster name and nodes',
    clusterDoc('{nodes: [a, {name: b}, a, {labels: {x: z}}, B]}').replace('name: c}', 'name: My.Cluster}'),
    [
      't.yaml: document 1 (Cluster My.Cluster), line 3: metadata.name: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "My.Cluster"',
      't.yaml: document 1 (Cluster My.Cluster), line 4: spec.nodes[2]: duplicate node name "a"',
      't.yaml: document 1 (Cluster My.Cluster), line 4: spec.nodes[3].name: required',
      't.yaml: document 1 (Cluster My.Cluster), line 4: spec.nodes[4]: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "B"',
    ],
  ],
  ['overlay offload not a boolean', clusterDoc('{overlayOffload: fast}'), ['t.yaml: document 1 (Cluster c), line 4: spec.overlayOffload: must be a boolean, got "fast"']],
  ['node count out of range', clusterDoc('{nodes: 0}'), ['t.yaml: document 1 (Cluster c), line 4: spec.nodes: must be a node count between 1 and 254 or a list of nodes, got 0']],
  ['nodes of the wrong type', clusterDoc('{nodes: {a: 1}}'), ['t.yaml: document 1 (Cluster c), line 4: spec.nodes: must be a node count between 1 and 254 or a list of nodes, got a map']],
  ['no nodes listed', clusterDoc('{nodes: []}'), ['t.yaml: document 1 (Cluster c), line 4: spec.nodes: must list at least one node, got a list']],
  [
    'pod CIDR too small for the nodes',
    clusterDoc('{nodes: 2, podCIDR: 10.244.0.0/23}'),
    ['t.yaml: document 1 (Cluster c), line 4: spec.podCIDR: 10.244.0.0/23 has room for 1 node (node N gets the N-th /24, the first is unused), the cluster has 2'],
  ],
  [
    'CIDR syntax',
    clusterDoc('{podCIDR: 10.244.0.1/16, serviceCIDR: 10.96/12}'),
    [
      't.yaml: document 1 (Cluster c), line 4: spec.podCIDR: must be a network address (host bits zero), got "10.244.0.1/16"',
      't.yaml: document 1 (Cluster c), line 4: spec.serviceCIDR: must be an IPv4 CIDR such as 10.0.0.0/16, got "10.96/12"',
    ],
  ],
  ['service CIDR too small', clusterDoc('{serviceCIDR: 10.96.0.0/29}'), ['t.yaml: document 1 (Cluster c), line 4: spec.serviceCIDR: must be a /28 or larger, to hold the cluster DNS address (the tenth), got 10.96.0.0/29']],
  ['service CIDR overlapping the pod CIDR', clusterDoc('{serviceCIDR: 10.244.128.0/20}'), ['t.yaml: document 1 (Cluster c), line 4: spec.serviceCIDR: 10.244.128.0/20 overlaps the pod CIDR 10.244.0.0/16']],
  [
    'domain, VNI and MTU',
    clusterDoc('{clusterDomain: Cluster.Local, vni: 16777216, mtu: 65500}'),
    [
      't.yaml: document 1 (Cluster c), line 4: spec.clusterDomain: must be a DNS-1123 subdomain (lowercase letters, digits, \'-\' and \'.\', each part starting and ending with a letter or digit), got "Cluster.Local"',
      't.yaml: document 1 (Cluster c), line 4: spec.vni: must be an integer between 1 and 16777215, got 16777216',
      't.yaml: document 1 (Cluster c), line 4: spec.mtu: must be an integer between 68 and 65485, got 65500',
    ],
  ],
  ['node grace period out of range', clusterDoc('{nodeGracePeriodSeconds: 0}'), ['t.yaml: document 1 (Cluster c), line 4: spec.nodeGracePeriodSeconds: must be an integer number of seconds between 1 and 3600, got 0']],
  ['subnet lease TTL below etcd\'s minimum', clusterDoc('{subnetLeaseTTLSeconds: 2}'), ['t.yaml: document 1 (Cluster c), line 4: spec.subnetLeaseTTLSeconds: must be an integer number of seconds between 5 and 3600, got 2']],
  ['node grace period not whole seconds', clusterDoc('{nodeGracePeriodSeconds: 2.5}'), ['t.yaml: document 1 (Cluster c), line 4: spec.nodeGracePeriodSeconds: must be an integer number of seconds between 1 and 3600, got 2.5']],
  ['DNS TTL past CoreDNS\'s cap', clusterDoc('{dnsTTLSeconds: 3601}'), ['t.yaml: document 1 (Cluster c), line 4: spec.dnsTTLSeconds: must be an integer number of seconds between 0 and 3600, got 3601']],
  ['DNS TTL not a number', clusterDoc('{dnsTTLSeconds: thirty}'), ['t.yaml: document 1 (Cluster c), line 4: spec.dnsTTLSeconds: must be an integer number of seconds between 0 and 3600, got "thirty"']],
  ['flow buffer too small', clusterDoc('{flowBufferCapacity: 8}'), ['t.yaml: document 1 (Cluster c), line 4: spec.flowBufferCapacity: must be an integer number of flows between 16 and 1048576, got 8']],
  ['conntrack not a map', clusterDoc('{conntrack: 5}'), ['t.yaml: document 1 (Cluster c), line 4: spec.conntrack: must be a map, got 5']],
  [
    'conntrack timeout out of range, accounting not a boolean, an unknown setting',
    clusterDoc('{conntrack: {tcpEstablishedTimeoutSeconds: 0, accounting: 1, udpTimeout: 5}}'),
    [
      't.yaml: document 1 (Cluster c), line 4: spec.conntrack.tcpEstablishedTimeoutSeconds: must be an integer number of seconds between 1 and 864000, got 0',
      't.yaml: document 1 (Cluster c), line 4: spec.conntrack.accounting: must be a boolean, got 1',
      't.yaml: document 1 (Cluster c), line 4: spec.conntrack.udpTimeout: is not a conntrack setting (they are accounting, tcpEstablishedTimeoutSeconds, tcpCloseWaitTimeoutSeconds, udpTimeoutSeconds, udpStreamTimeoutSeconds)',
    ],
  ],
  [
    'two Cluster documents',
    `${clusterDoc('{}')}---\n${clusterDoc('{}')}`,
    ['t.yaml: document 2 (Cluster c), line 6: only one Cluster document is allowed; the first is t.yaml document 1'],
  ],
  [
    'a bad Cluster document suppresses placement errors that would only be noise',
    `${clusterDoc('{nodes: [worker-1, Worker-2]}')}---\n${POD_HEAD}\nspec: {nodeName: worker-1, containers: [{name: c, image: i}]}\n`,
    ['t.yaml: document 1 (Cluster c), line 4: spec.nodes[1]: must be a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit), got "Worker-2"'],
  ],

  // ---- Exhaustion
  [
    'a node whose /24 is full',
    `${clusterDoc('{nodes: 1}')}---\n${deployment('{replicas: 254, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}}')}`,
    ['t.yaml: document 2 (Deployment web), line 9: spec.replicas: no pod address left on node node-1: 10.244.1.0/24 is full'],
  ],
  [
    'a service CIDR with no address left',
    [clusterDoc('{serviceCIDR: 10.96.0.0/28}'), ...Array.from({ length: 13 }, (_, i) => svc('{ports: [{port: 80}]}').replace('name: s', `name: s${i}`))].join('---\n'),
    ['t.yaml: document 14 (Service s12), line 69: spec.clusterIP: no free address left in the service CIDR 10.96.0.0/28'],
  ],
];

for (const [what, input, expected] of CASES) {
  test(`error: ${what}`, (t) => {
    t.deepEqual(errors(input), expected);
  });
}

test('errors from several files are in file order and name each file', (t) => {
  const r = loadCluster(
    [
      { path: 'b.yaml', text: `${POD_HEAD}\nspec: {}\n` },
      { path: 'a.yaml', text: 'apiVersion: v1\n' },
    ],
    { random: seededRandom(1) },
  );
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(r.errors.map(formatDiagnostic), ['b.yaml: document 1 (Pod p), line 5: spec.containers: required', 'a.yaml: document 1, line 1: kind: required']);
  t.deepEqual(r.errors[0], { file: 'b.yaml', document: 1, object: 'Pod p', line: 5, path: 'spec.containers', reason: 'required' });
});

test('a valid document still loads when another fails, but no cluster is returned', (t) => {
  const r = loadCluster([{ path: 't.yaml', text: `${POD_HEAD}\n${SPEC}\n---\nkind: Pod\n` }], { random: seededRandom(1) });
  t.false(r.ok);
  t.false('cluster' in r);
});
