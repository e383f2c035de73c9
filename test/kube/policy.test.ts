/**
 * NetworkPolicy semantics, one case per rule of the Kubernetes documentation. Every case loads
 * the same small cluster plus its own policies from YAML, then states connections the way the
 * docs do: "default/client -> default/web TCP 8080" is allowed or not. A connection is allowed
 * when the source pod's egress and the destination pod's ingress both allow it (an address that
 * is not a pod has no side to ask).
 */
import test from 'ava';
import type { Cluster } from '../../src/cluster/model.js';
import { parseIpv4 } from '../../src/packet/addr.js';
import { compile, formatExplanation, PROTOCOL_NUMBER, type CompileOptions, type PolicyTables } from '../../src/kube/policy.js';
import { cluster as loadYaml, yaml } from '../cluster/helpers.js';

/**
 * Namespaces: default (no labels), prod (team=a, env=prod), dev (team=b).
 * Pods, each pinned to a node so addresses are known: node-1 has 10.244.1.0/24, node-2 10.244.2.0/24.
 */
const BASE = yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: prod, labels: {team: a, env: prod}}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: dev, labels: {team: b}}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: web, labels: {app: web}}
  spec:
    nodeName: node-1
    containers:
      - name: nginx
        image: nginx
        ports:
          - {name: http, containerPort: 8080}
          - {name: metrics, containerPort: 9090}
          - {name: dns, containerPort: 53, protocol: UDP}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: db, labels: {app: db}}
  spec:
    nodeName: node-1
    containers: [{name: pg, image: postgres, ports: [{name: pg, containerPort: 5432}]}]
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, labels: {app: client, role: client}}
  spec: {nodeName: node-2, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, namespace: prod, labels: {role: client}}
  spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: api, namespace: prod, labels: {app: api}}
  spec:
    nodeName: node-2
    containers: [{name: api, image: api, ports: [{name: http, containerPort: 80}]}]
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, namespace: dev, labels: {role: client}}
  spec: {nodeName: node-2, containers: [{name: c, image: busybox}]}
`;

function load(policies: string): Cluster {
  return loadYaml(policies.trim() === '' ? BASE : `${BASE}---\n${policies}`);
}

/** `ns/name` for a pod, `node-N` for a node's gateway address, or a dotted quad. */
function address(c: Cluster, endpoint: string): { ip: number; isPod: boolean } {
  if (endpoint.includes('/')) {
    const [namespace, name] = endpoint.split('/');
    const pod = c.pods.find((p) => p.namespace === namespace && p.name === name);
    if (pod === undefined) throw new Error(`no pod ${endpoint}`);
    return { ip: pod.ip, isPod: true };
  }
  const node = c.nodes.find((n) => n.name === endpoint);
  if (node !== undefined) return { ip: node.gateway, isPod: false };
  const ip = parseIpv4(endpoint);
  if (ip === undefined) throw new Error(`bad endpoint ${endpoint}`);
  return { ip, isPod: c.pods.some((p) => p.ip === ip) };
}

const PROTOCOLS: Record<string, number> = { ...PROTOCOL_NUMBER, ICMP: 1 };

/** Parses `src -> dst PROTO [port]` and answers for the whole connection. */
function connectionAllowed(c: Cluster, tables: PolicyTables, text: string): boolean {
  const m = /^(\S+) -> (\S+) (TCP|UDP|SCTP|ICMP)(?: (\d+))?$/.exec(text);
  if (m === null) throw new Error(`bad connection ${text}`);
  const src = address(c, m[1]);
  const dst = address(c, m[2]);
  const protocol = PROTOCOLS[m[3]];
  const port = m[4] === undefined ? 0 : Number(m[4]);
  const egress = !src.isPod || tables.egressAllowed(src.ip, dst.ip, protocol, port);
  const ingress = !dst.isPod || tables.ingressAllowed(dst.ip, src.ip, protocol, port);
  return egress && ingress;
}

interface Case {
  readonly name: string;
  readonly policies: string;
  readonly allowed: readonly string[];
  readonly denied: readonly string[];
  readonly options?: CompileOptions;
}

/** A NetworkPolicy document; `spec` is what goes under `spec:`, written without indentation. */
const policy = (name: string, namespace: string, spec: string): string => yaml`
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: ${name}, namespace: ${namespace}}
  spec:
`.concat(
  spec
    .trim()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n'),
  '\n',
);

/** Several documents in one YAML stream. */
const docs = (...parts: string[]): string => parts.join('---\n');

const CASES: readonly Case[] = [
  {
    name: 'no policy: every pod is non-isolated, everything is allowed',
    policies: '',
    allowed: ['default/client -> default/web TCP 8080', 'dev/client -> prod/api UDP 9', '192.0.2.9 -> default/db TCP 5432', 'default/web -> 198.51.100.1 TCP 443'],
    denied: [],
  },
  {
    name: 'default deny ingress: podSelector {} with no ingress rule isolates every pod of the namespace, and only for ingress',
    policies: policy('default-deny-ingress', 'default', yaml`
      podSelector: {}
      policyTypes: [Ingress]
    `),
    allowed: ['default/web -> prod/api TCP 80', 'default/web -> 192.0.2.9 TCP 443', 'prod/client -> prod/api TCP 80'],
    denied: ['default/client -> default/web TCP 8080', 'prod/client -> default/web TCP 8080', '192.0.2.9 -> default/db TCP 5432'],
  },
  {
    name: 'default deny egress: policyTypes [Egress] and no egress rule; ingress stays open',
    policies: policy('default-deny-egress', 'default', yaml`
      podSelector: {}
      policyTypes: [Egress]
    `),
    allowed: ['prod/client -> default/web TCP 8080', '192.0.2.9 -> default/web TCP 8080'],
    denied: ['default/client -> prod/api TCP 80', 'default/web -> 192.0.2.9 TCP 443', 'default/client -> default/web TCP 8080'],
  },
  {
    name: 'default deny all: both policy types',
    policies: policy('default-deny-all', 'prod', yaml`
      podSelector: {}
      policyTypes: [Ingress, Egress]
    `),
    allowed: ['default/client -> default/web TCP 8080'],
    denied: ['prod/client -> prod/api TCP 80', 'prod/api -> default/web TCP 8080', 'default/client -> prod/api TCP 80'],
  },
  {
    name: 'a policy with only an egress section and no policyTypes also isolates for ingress (the API default is [Ingress, Egress])',
    policies: policy('egress-only-by-accident', 'default', yaml`
      podSelector: {matchLabels: {app: db}}
      egress: [{}]
    `),
    allowed: ['default/db -> 192.0.2.9 TCP 443', 'default/client -> default/web TCP 8080'],
    denied: ['default/web -> default/db TCP 5432'],
  },
  {
    name: 'ingress rules of an Egress-only policy are ignored',
    policies: policy('egress-type-only', 'default', yaml`
      podSelector: {matchLabels: {app: db}}
      policyTypes: [Egress]
      ingress: [{}]
    `),
    allowed: ['default/web -> default/db TCP 5432'],
    denied: ['default/db -> default/web TCP 8080'],
  },
  {
    name: 'an allow-all rule (ingress: [{}]) wins over a default deny: policies add up',
    policies: docs(
      policy('default-deny-ingress', 'default', 'podSelector: {}\npolicyTypes: [Ingress]'),
      policy('allow-all-ingress', 'default', yaml`
        podSelector: {}
        ingress: [{}]
      `),
    ),
    allowed: ['dev/client -> default/web TCP 8080', '192.0.2.9 -> default/db UDP 7', 'prod/client -> default/web ICMP'],
    denied: [],
  },
  {
    name: 'the policy selects only by its podSelector: other pods of the namespace stay open',
    policies: policy('db-isolated', 'default', 'podSelector: {matchLabels: {app: db}}'),
    allowed: ['dev/client -> default/web TCP 8080'],
    denied: ['default/web -> default/db TCP 5432'],
  },
  {
    name: 'a policy in another namespace does not select pods here, even with podSelector {}',
    policies: policy('deny-all-in-prod', 'prod', 'podSelector: {}\npolicyTypes: [Ingress, Egress]'),
    allowed: ['default/client -> default/web TCP 8080', 'default/web -> default/db TCP 5432'],
    denied: ['default/client -> prod/api TCP 80'],
  },
  {
    name: 'allow from namespaces by label: every pod in a namespace with team=a',
    policies: policy('from-team-a', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from: [{namespaceSelector: {matchLabels: {team: a}}}]
    `),
    allowed: ['prod/client -> default/web TCP 8080', 'prod/api -> default/web UDP 53'],
    denied: ['dev/client -> default/web TCP 8080', 'default/client -> default/web TCP 8080', '192.0.2.9 -> default/web TCP 8080'],
  },
  {
    name: 'allow from a namespace by name, through the kubernetes.io/metadata.name label',
    policies: policy('from-dev', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]
    `),
    allowed: ['dev/client -> default/web TCP 8080'],
    denied: ['prod/client -> default/web TCP 8080', 'default/client -> default/web TCP 8080'],
  },
  {
    name: 'namespaceSelector {} means every namespace, pods only (not outside addresses)',
    policies: policy('from-any-pod', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from: [{namespaceSelector: {}}]
    `),
    allowed: ['dev/client -> default/web TCP 8080', 'default/db -> default/web TCP 8080'],
    denied: ['192.0.2.9 -> default/web TCP 8080', 'node-2 -> default/web TCP 8080'],
  },
  {
    name: 'podSelector alone names pods of the policy namespace only: clients in other namespaces are not allowed',
    policies: policy('from-clients', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from: [{podSelector: {matchLabels: {role: client}}}]
    `),
    allowed: ['default/client -> default/web TCP 8080'],
    denied: ['prod/client -> default/web TCP 8080', 'dev/client -> default/web TCP 8080', 'default/db -> default/web TCP 8080'],
  },
  {
    name: 'namespaceSelector and podSelector in ONE from entry: clients in team=a namespaces (AND)',
    policies: policy('and', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - namespaceSelector: {matchLabels: {team: a}}
              podSelector: {matchLabels: {role: client}}
    `),
    allowed: ['prod/client -> default/web TCP 8080'],
    denied: ['prod/api -> default/web TCP 8080', 'default/client -> default/web TCP 8080', 'dev/client -> default/web TCP 8080'],
  },
  {
    name: 'the same selectors as TWO from entries: team=a namespaces OR local clients (the YAML pitfall)',
    policies: policy('or', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - namespaceSelector: {matchLabels: {team: a}}
            - podSelector: {matchLabels: {role: client}}
    `),
    allowed: ['prod/client -> default/web TCP 8080', 'prod/api -> default/web TCP 8080', 'default/client -> default/web TCP 8080'],
    denied: ['dev/client -> default/web TCP 8080', 'default/db -> default/web TCP 8080'],
  },
  {
    name: 'selectors with matchExpressions: namespaces whose team is not a, pods that have a role',
    policies: policy('expressions', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - namespaceSelector: {matchExpressions: [{key: team, operator: NotIn, values: [a]}]}
              podSelector: {matchExpressions: [{key: role, operator: Exists}]}
    `),
    // default has no team label, so NotIn holds for it too.
    allowed: ['dev/client -> default/web TCP 8080', 'default/client -> default/web TCP 8080'],
    denied: ['prod/client -> default/web TCP 8080', 'default/db -> default/web TCP 8080'],
  },
  {
    name: 'ipBlock with except: 192.0.2.0/24 but not 192.0.2.128/25',
    policies: policy('from-block', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from: [{ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.128/25]}}]
    `),
    allowed: ['192.0.2.1 -> default/web TCP 8080', '192.0.2.127 -> default/web TCP 8080'],
    denied: ['192.0.2.128 -> default/web TCP 8080', '192.0.2.255 -> default/web TCP 8080', '198.51.100.1 -> default/web TCP 8080'],
  },
  {
    name: 'ipBlock applies to pod addresses too: node-2 pod block excepted from the pod CIDR',
    policies: policy('pods-by-address', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}}]
    `),
    allowed: ['default/db -> default/web TCP 8080', 'prod/client -> default/web TCP 8080'],
    denied: ['default/client -> default/web TCP 8080', 'dev/client -> default/web TCP 8080', '192.0.2.9 -> default/web TCP 8080'],
  },
  {
    name: 'an address in one block except is still allowed by another peer of the rule, or by another rule',
    policies: policy('overlap', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}
            - podSelector: {matchLabels: {role: client}}
        - from: [{ipBlock: {cidr: 10.244.2.0/23}}]
          ports: [{port: 9090}]
    `),
    allowed: ['default/client -> default/web TCP 8080', 'dev/client -> default/web TCP 9090', 'default/db -> default/web TCP 8080'],
    denied: ['dev/client -> default/web TCP 8080'],
  },
  {
    name: 'egress ipBlock with except, and a block containing everything',
    policies: policy('egress-blocks', 'default', yaml`
      podSelector: {matchLabels: {app: client}}
      policyTypes: [Egress]
      egress:
        - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.0.2.0/24]}}]
    `),
    allowed: ['default/client -> 198.51.100.1 TCP 443', 'default/client -> 203.0.113.5 UDP 123'],
    denied: ['default/client -> 192.0.2.9 TCP 443', 'default/client -> default/web TCP 8080', 'default/client -> 10.96.0.10 UDP 53'],
  },
  {
    name: 'ports: a number, default protocol TCP',
    policies: policy('web-8080', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress: [{ports: [{port: 8080}]}]
    `),
    allowed: ['dev/client -> default/web TCP 8080', '192.0.2.9 -> default/web TCP 8080'],
    denied: ['dev/client -> default/web TCP 9090', 'dev/client -> default/web UDP 8080', 'dev/client -> default/web SCTP 8080'],
  },
  {
    name: 'ports: protocol without port allows every port of that protocol',
    policies: policy('any-udp', 'default', yaml`
      podSelector: {matchLabels: {app: web}}
      ingress: [{ports: [{protocol: UDP}, {protocol: SCTP, port: 9999}]}]
    `),
    allowed: ['dev/client -> default/web UDP 1', 'dev/client -> default/web UDP 65535', 'dev/client -> default/web SCTP 9999'],
    denied: ['dev/client -> default/web TCP 8080', 'dev/client -> default/web SCTP 9998'],
  },
  {
    name: 'ports: endPort makes an inclusive range',
    policies: policy('multiport-egress', 'default', yaml`
      podSelector: {matchLabels: {app: client}}
      policyTypes: [Egress]
      egress:
        - to: [{ipBlock: {cidr: 192.0.2.0/24}}]
          ports: [{protocol: TCP, port: 32000, endPort: 32768}]
    `),
    allowed: ['default/client -> 192.0.2.9 TCP 32000', 'default/client -> 192.0.2.9 TCP 32768', 'default/client -> 192.0.2.9 TCP 32500'],
    denied: ['default/client -> 192.0.2.9 TCP 31999', 'default/client -> 192.0.2.9 TCP 32769', 'default/client -> 192.0.2.9 UDP 32000'],
  },
  {
    name: 'ports: a rule with ports never matches ICMP; a rule without ports does',
    policies: docs(
      policy('web-tcp', 'default', 'podSelector: {matchLabels: {app: web}}\ningress: [{ports: [{port: 8080}]}]'),
      policy('db-any', 'default', 'podSelector: {matchLabels: {app: db}}\ningress: [{from: [{podSelector: {}}]}]'),
    ),
    allowed: ['default/client -> default/db ICMP', 'default/client -> default/web TCP 8080'],
    denied: ['default/client -> default/web ICMP', 'dev/client -> default/db ICMP'],
  },
  {
    name: 'named ingress port: resolved against each selected pod; a pod without the name is not opened',
    policies: policy('http-by-name', 'default', yaml`
      podSelector: {matchExpressions: [{key: app, operator: In, values: [web, db]}]}
      ingress: [{ports: [{port: http}]}]
    `),
    allowed: ['dev/client -> default/web TCP 8080'],
    denied: ['dev/client -> default/web TCP 80', 'dev/client -> default/web TCP 9090', 'dev/client -> default/db TCP 8080', 'dev/client -> default/db TCP 5432'],
  },
  {
    name: 'named port and protocol: the container port must have the policy port protocol',
    policies: docs(
      policy('dns-udp', 'default', 'podSelector: {matchLabels: {app: web}}\ningress: [{ports: [{protocol: UDP, port: dns}]}]'),
      policy('dns-tcp', 'default', 'podSelector: {matchLabels: {app: web}}\ningress: [{from: [{namespaceSelector: {matchLabels: {team: a}}}], ports: [{port: dns}]}]'),
    ),
    // dns is UDP 53 on web: the TCP form resolves to nothing.
    allowed: ['dev/client -> default/web UDP 53'],
    denied: ['dev/client -> default/web TCP 53', 'prod/client -> default/web TCP 53', 'dev/client -> default/web UDP 54'],
  },
  {
    name: 'named egress port: resolved against the destination pod; a destination without that name never matches',
    policies: policy('egress-http', 'default', yaml`
      podSelector: {matchLabels: {app: client}}
      policyTypes: [Egress]
      egress: [{ports: [{port: http}]}]
    `),
    // web's http is 8080, prod/api's is 80; db and the outside declare no http.
    allowed: ['default/client -> default/web TCP 8080', 'default/client -> prod/api TCP 80'],
    denied: ['default/client -> default/web TCP 80', 'default/client -> prod/api TCP 8080', 'default/client -> default/db TCP 8080', 'default/client -> 192.0.2.9 TCP 8080', 'default/client -> 192.0.2.9 TCP 80'],
  },
  {
    name: 'several policies select a pod: the union of their rules, each rule its own peers AND ports',
    policies: docs(
      policy('clients-on-http', 'default', yaml`
        podSelector: {matchLabels: {app: web}}
        ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: 8080}]}]
      `),
      policy('prod-on-metrics', 'default', yaml`
        podSelector: {matchLabels: {app: web}}
        ingress: [{from: [{namespaceSelector: {matchLabels: {env: prod}}}], ports: [{port: 9090}]}]
      `),
    ),
    allowed: ['default/client -> default/web TCP 8080', 'prod/api -> default/web TCP 9090'],
    // Not a cross product: the client does not get metrics, prod does not get http.
    denied: ['default/client -> default/web TCP 9090', 'prod/api -> default/web TCP 8080', 'dev/client -> default/web TCP 8080'],
  },
  {
    name: 'a connection needs both sides: the source egress denies even when the destination ingress allows',
    policies: docs(
      policy('web-open', 'default', 'podSelector: {matchLabels: {app: web}}\ningress: [{}]'),
      policy('dev-no-egress', 'dev', 'podSelector: {}\npolicyTypes: [Egress]'),
      policy('prod-egress-to-web', 'prod', yaml`
        podSelector: {}
        policyTypes: [Egress]
        egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: default}}, podSelector: {matchLabels: {app: web}}}]}]
      `),
    ),
    allowed: ['prod/client -> default/web TCP 8080', 'default/client -> default/web TCP 8080'],
    denied: ['dev/client -> default/web TCP 8080', 'prod/client -> default/db TCP 5432'],
  },
  {
    name: 'DNS under default-deny egress: allow port 53 to anywhere (podwire DNS is served at the service address, not by pods)',
    policies: docs(
      policy('default-deny-egress', 'default', 'podSelector: {}\npolicyTypes: [Egress]'),
      policy('allow-dns', 'default', yaml`
        podSelector: {}
        policyTypes: [Egress]
        egress: [{ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]}]
      `),
    ),
    allowed: ['default/client -> 10.96.0.10 UDP 53', 'default/client -> 10.96.0.10 TCP 53'],
    denied: ['default/client -> 10.96.0.10 UDP 5353', 'default/client -> 192.0.2.9 TCP 443'],
  },
  {
    name: 'a pod cannot block itself; its own node may always connect in, another node may not; egress to the node is not exempt',
    policies: policy('deny-all', 'default', 'podSelector: {}\npolicyTypes: [Ingress, Egress]'),
    allowed: ['default/web -> default/web TCP 8080', 'node-1 -> default/web TCP 8080', 'node-2 -> default/client TCP 80'],
    denied: ['node-2 -> default/web TCP 8080', 'default/web -> node-1 TCP 10250', 'default/db -> default/web TCP 8080'],
  },
  {
    name: 'with localNodeExempt false, the node is a peer like any other',
    policies: policy('deny-ingress', 'default', 'podSelector: {}'),
    options: { localNodeExempt: false },
    allowed: ['default/web -> default/web TCP 8080'],
    denied: ['node-1 -> default/web TCP 8080'],
  },
];

for (const c of CASES) {
  test(c.name, (t) => {
    const cluster = load(c.policies);
    const tables = compile(cluster, c.options);
    for (const conn of c.allowed) t.true(connectionAllowed(cluster, tables, conn), `expected allowed: ${conn}`);
    for (const conn of c.denied) t.false(connectionAllowed(cluster, tables, conn), `expected denied: ${conn}`);
  });
}

test('tables for one node enforce for its pods only; other pods are left to their own node', (t) => {
  const cluster = load(policy('deny-all', 'default', 'podSelector: {}\npolicyTypes: [Ingress, Egress]'));
  const node1 = compile(cluster, { node: 'node-1' });
  const web = address(cluster, 'default/web').ip; // node-1
  const client = address(cluster, 'default/client').ip; // node-2
  t.false(node1.ingressAllowed(web, client, 6, 8080));
  t.true(node1.ingressAllowed(client, web, 6, 8080), 'node-2 enforces for the client');
  t.true(node1.egressAllowed(client, web, 6, 8080));
  t.false(compile(cluster, { node: 'node-2' }).egressAllowed(client, web, 6, 8080));
  t.like(node1.summary(), { pods: 3, ingressIsolated: 2, egressIsolated: 2, maxGrants: 0 }); // web, db; prod/client is not in default
});

test('addresses are accepted as uint32 or as int32 with the same bits', (t) => {
  const cluster = load(policy('from-block', 'default', 'podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 192.0.2.0/24}}]}]'));
  const tables = compile(cluster);
  const web = address(cluster, 'default/web').ip;
  const outside = parseIpv4('192.0.2.200')!;
  t.true(tables.ingressAllowed(web, outside, 6, 80));
  t.true(tables.ingressAllowed(web | 0, outside | 0, 6, 80));
  t.false(tables.ingressAllowed(web | 0, parseIpv4('198.51.100.1')! | 0, 6, 80));
});

test('rules shared by many policies share peer and port sets; pods with the same rules share one grant list', (t) => {
  const same = 'podSelector: {}\ningress: [{from: [{namespaceSelector: {matchLabels: {team: a}}}], ports: [{port: 80}]}]';
  const cluster = load(docs(policy('a', 'default', same), policy('b', 'default', same), policy('c', 'dev', same)));
  const summary = compile(cluster).summary();
  t.is(summary.peerSets, 1, 'a namespaceSelector peer does not depend on the policy namespace');
  t.is(summary.portSets, 1);
  t.is(summary.maxGrants, 1);
  t.is(summary.grants, 1, 'web, db and client in default share one list; dev/client has the same rule, so the same list');
});

test('rules with the same ports fold into one grant whose peers are the union of theirs', (t) => {
  const onPort80 = (name: string, group: string): string =>
    policy(name, 'default', `podSelector: {matchLabels: {app: web}}\ningress: [{from: [{podSelector: {matchLabels: {app: ${group}}}}], ports: [{port: 80}]}]`);
  const cluster = load(docs(onPort80('from-client', 'client'), onPort80('from-db', 'db'), policy('metrics', 'default', 'podSelector: {}\ningress: [{ports: [{port: 9090}]}]')));
  const folded = compile(cluster);
  t.like(folded.summary(), { maxGrants: 2, peerSets: 3 }, 'client, db, and their union');
  t.is(folded.grantCount('ingress', address(cluster, 'default/web').ip), 2, 'port 80 from client or db; 9090 from anywhere');
  t.is(folded.grantCount('egress', address(cluster, 'default/web').ip), 0);
  const unfolded = compile(cluster, { unionBudget: 0 });
  t.like(unfolded.summary(), { maxGrants: 3, peerSets: 2 });
  for (const tables of [folded, unfolded]) {
    t.true(connectionAllowed(cluster, tables, 'default/client -> default/web TCP 80'));
    t.true(connectionAllowed(cluster, tables, 'default/db -> default/web TCP 80'));
    t.false(connectionAllowed(cluster, tables, 'prod/client -> default/web TCP 80'));
    t.false(connectionAllowed(cluster, tables, 'default/client -> default/web TCP 81'));
    // The explanation still names the rule, not the union.
    const db = address(cluster, 'default/db').ip;
    t.like(tables.explain('ingress', address(cluster, 'default/web').ip, db, 6, 80), { allowedBy: { policy: 'default/from-db', rule: 0 } });
  }
});

test('explain names the rule that allows, and for a denial every rule and what it missed', (t) => {
  const cluster = load(
    docs(
      policy('clients-on-http', 'default', yaml`
        podSelector: {matchLabels: {app: web}}
        ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: http}]}]
      `),
      policy('prod-on-metrics', 'default', yaml`
        podSelector: {matchLabels: {app: web}}
        ingress:
          - from: [{namespaceSelector: {matchLabels: {env: prod}}, podSelector: {}}, {ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.128/25]}}]
            ports: [{port: 9000, endPort: 9100}]
      `),
    ),
  );
  const tables = compile(cluster);
  const web = address(cluster, 'default/web').ip;
  const client = address(cluster, 'default/client').ip;
  const allowed = tables.explain('ingress', web, client, 6, 8080);
  t.like(allowed, { allowed: true, reason: 'allowed-by-rule', pod: 'default/web', allowedBy: { policy: 'default/clients-on-http', rule: 0 } });
  t.deepEqual(formatExplanation(allowed), [
    'ingress to default/web (10.244.1.2) from 10.244.2.2 TCP 8080: allowed by default/clients-on-http ingress[0]: from pods role=client in namespace default, TCP 8080',
  ]);

  const denied = tables.explain('ingress', web, client, 6, 9090);
  t.like(denied, { allowed: false, reason: 'no-rule-allows', applying: ['default/clients-on-http', 'default/prod-on-metrics'] });
  t.deepEqual(formatExplanation(denied), [
    'ingress to default/web (10.244.1.2) from 10.244.2.2 TCP 9090: denied, no rule of default/clients-on-http, default/prod-on-metrics allows it',
    '  default/clients-on-http ingress[0]: from pods role=client in namespace default, TCP 8080 (peer: yes, port: no)',
    '  default/prod-on-metrics ingress[0]: from all pods in namespaces env=prod or 192.0.2.0/24 except 192.0.2.128/25, TCP 9000-9100 (peer: no, port: yes)',
  ]);
  t.is(tables.ingressAllowed(web, client, 6, 9090), denied.allowed);

  t.like(tables.explain('egress', web, client, 6, 80), { allowed: true, reason: 'not-isolated' });
  t.like(tables.explain('ingress', parseIpv4('192.0.2.1')!, client, 6, 80), { allowed: true, reason: 'not-enforced-here' });
  t.like(tables.explain('ingress', web, web, 6, 80), { allowed: true, reason: 'same-pod' });
  t.like(tables.explain('ingress', web, cluster.nodes[0].gateway, 6, 80), { allowed: true, reason: 'local-node' });
});

test('explain of a default deny says that the policies allow nothing', (t) => {
  const cluster = load(policy('default-deny-egress', 'default', 'podSelector: {}\npolicyTypes: [Egress]'));
  const tables = compile(cluster);
  const client = address(cluster, 'default/client').ip;
  const e = tables.explain('egress', client, parseIpv4('192.0.2.9')!, 1, 0);
  t.deepEqual(formatExplanation(e), [
    'egress from default/client (10.244.2.2) to 192.0.2.9 ICMP: denied, isolated by default/default-deny-egress, which allow no egress',
  ]);
});
