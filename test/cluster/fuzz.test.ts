import test from 'ava';
import fc from 'fast-check';
import { DEMO_YAML } from '../../src/cluster/demo.js';
import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { loadCluster } from '../../src/cluster/load.js';
import { seededRandom } from '../../src/cluster/random.js';
import { IngressRouter } from '../../src/ingress/match.js';
import { proxyConfig } from '../../src/ingress/servers.js';

/** Characters that change YAML structure, plus some that only change values. */
const YAML_CHARS = [':', '-', ' ', '\n', '[', ']', '{', '}', ',', '*', '&', '!', '|', '>', '#', "'", '"', '?', '%', '@', '<<', '---', '\t', 'x', '0', '~', 'null', 'yes'];
const VALUES = ['', '~', '-1', '0', '3.5', '70000', 'yes', 'None', '"80"', '[]', '{}', '[a, b]', '{a: b}', '*x', '&x y', '!!binary aGk=', 'Web_1', 'a'.repeat(300), '10.96.0.1', '10.100.100.100', 'node-9'];

type Mutation =
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'value'; line: number; value: string }
  | { kind: 'duplicate'; line: number }
  | { kind: 'swap'; a: number; b: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...YAML_CHARS), fc.string({ maxLength: 6 })) }),
  fc.record({ kind: fc.constant('value' as const), line: fc.nat(), value: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 8 })) }),
  fc.record({ kind: fc.constant('duplicate' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
);

function apply(text: string, m: Mutation): string {
  const lines = text.split('\n');
  switch (m.kind) {
    case 'delete': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + text.slice(at + m.length);
    }
    case 'insert': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'value': {
      // Replace whatever follows the first ": " on a line: reaches the validators, not only the parser.
      const i = m.line % lines.length;
      const colon = lines[i].indexOf(': ');
      lines[i] = colon < 0 ? `${lines[i]} ${m.value}` : `${lines[i].slice(0, colon + 2)}${m.value}`;
      return lines.join('\n');
    }
    case 'duplicate': {
      const i = m.line % lines.length;
      lines.splice(i, 0, lines[i]);
      return lines.join('\n');
    }
    case 'swap': {
      const a = m.a % lines.length;
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b], lines[a]];
      return lines.join('\n');
    }
  }
}

test('fuzz: mutated demo YAML never throws out of loadCluster; it loads or says why', (t) => {
  let valid = 0;
  let invalid = 0;
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.integer(), (mutations, seed) => {
      const text = mutations.reduce(apply, DEMO_YAML);
      const r = loadCluster([{ path: 'demo.yaml', text }], { random: seededRandom(seed) });
      if (r.ok) {
        valid++;
        return r.cluster.nodes.length > 0;
      }
      invalid++;
      return (
        r.errors.length > 0 &&
        r.errors.every((e) => e.file === 'demo.yaml' && e.document >= 1 && (e.line === undefined || e.line >= 1) && formatDiagnostic(e).startsWith('demo.yaml: document '))
      );
    }),
    { numRuns: 1500 },
  );
  // Both outcomes must actually be exercised, or the mutations are too weak or too strong.
  t.true(valid > 50, `valid: ${valid}`);
  t.true(invalid > 50, `invalid: ${invalid}`);
});

test('fuzz: arbitrary text never throws either', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
      loadCluster([{ path: 'x.yaml', text }], { random: seededRandom(1) });
      return true;
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('fuzz: hostile YAML (alias bombs, deep nesting, merge cycles) is refused or read, quickly', (t) => {
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${new Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
  const inputs = [
    `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, readinessProbe: {exec: {command: *j}}}]\n${bomb}\n`,
    `${'['.repeat(2000)}${']'.repeat(2000)}`,
    'apiVersion: v1\nkind: Pod\nmetadata: &m {<<: *m, name: p}\n',
    'apiVersion: v1\nkind: Pod\nmetadata:\n  <<: &m {name: p}\n  labels: {<<: *m}\nspec: {containers: [{name: c, image: i}]}\n',
  ];
  for (const text of inputs) {
    const started = Date.now();
    const r = loadCluster([{ path: 'h.yaml', text }], { random: seededRandom(1) });
    t.true(Date.now() - started < 5000);
    t.is(typeof r.ok, 'boolean');
  }
});

const INGRESS_YAML = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: http, port: 5000, targetPort: 4000}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations: {nginx.ingress.kubernetes.io/rewrite-target: /$1, nginx.ingress.kubernetes.io/proxy-read-timeout: "5"}
spec:
  defaultBackend: {service: {name: web, port: {name: http}}}
  tls: [{hosts: [a.com, "*.b.com"], secretName: tls}]
  rules:
  - host: a.com
    http:
      paths:
      - {path: "/(x+)", pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 5000}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: web, port: {number: 5000}}}}
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
`;

test('fuzz: mutated Ingress YAML never throws out of loadCluster, and what loads is routed without throwing', (t) => {
  const flags = { controllerClass: 'k8s.io/ingress-nginx', ingressClass: 'nginx', watchWithoutClass: true, httpPort: 80, httpsPort: 443, healthzPort: 10254 };
  let valid = 0;
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.constantFrom('/', '/xx', '/exact', '/a/b?c', ''), fc.constantFrom('a.com', 'x.b.com', undefined), (mutations, url, host) => {
      const r = loadCluster([{ path: 'i.yaml', text: mutations.reduce(apply, INGRESS_YAML) }], { random: seededRandom(1) });
      if (!r.ok) return r.errors.length > 0;
      valid++;
      const router = new IngressRouter(proxyConfig(r.cluster, [], flags));
      router.route(host, url);
      return true;
    }),
    { numRuns: 600 },
  );
  t.true(valid > 30, `valid: ${valid}`);
});
