/**
 * Filters with Hubble's meanings. The constructions are hubble/cmd/observe's own
 * expectations (flows_filter_test.go: TestFilterDispatch, TestFilterLeftRight,
 * TestFilterType, TestConflicts, TestTrailingNot, TestIdentity's left/right shape); the
 * matching is pkg/hubble/filters' (pod and service names by prefix in a namespace,
 * `default` for a bare name; IPs exact or by CIDR); and properties: one kind ORs, kinds
 * AND, `--not` is the complement.
 */
import test from 'ava';
import fc from 'fast-check';
import { decodeFilters, FilterBuilder, FilterError, filterMatches, flowPasses, namespaceName, parseEventType, type FlowFilters } from '../../src/observe/filter.js';
import type { Flow } from '../../src/observe/flow.js';

function build(...args: [string, string?][]): FlowFilters {
  const b = new FilterBuilder();
  for (const [flag, value] of args) b.set(flag, value);
  return b.build();
}

test('TestFilterDispatch: repeated flags OR, --not sends only the next filter to the blacklist', (t) => {
  const f = build(['from-ip', '1.2.3.4'], ['from-ip', '5.6.7.8'], ['not'], ['to-ip', '5.5.5.5'], ['verdict', 'DROPPED'], ['type', 'l7']);
  t.deepEqual(f.whitelist, [{ source_ip: ['1.2.3.4', '5.6.7.8'], verdict: ['DROPPED'], event_type: [{ type: 129 }] }]);
  t.deepEqual(f.blacklist, [{ destination_ip: ['5.5.5.5'] }]);
});

test('TestFilterLeftRight: --ip and --pod fill the source of one filter and the destination of another', (t) => {
  const f = build(['ip', '1.2.3.4'], ['ip', '5.6.7.8'], ['verdict', 'DROPPED'], ['not'], ['pod', 'deathstar'], ['node-name', 'k8s*']);
  t.deepEqual(f.whitelist, [
    { source_ip: ['1.2.3.4', '5.6.7.8'], verdict: ['DROPPED'], node_name: ['k8s*'] },
    { destination_ip: ['1.2.3.4', '5.6.7.8'], verdict: ['DROPPED'], node_name: ['k8s*'] },
  ]);
  t.deepEqual(f.blacklist, [{ source_pod: ['deathstar'] }, { destination_pod: ['deathstar'] }]);
});

test('TestFilterType: names, numbers, trace points by name, sub-types', (t) => {
  const f = build(['type', '254'], ['type', '255:127'], ['type', 'trace:to-endpoint'], ['type', 'trace:from-endpoint'], ['type', '4:2'], ['type', 'drop'], ['type', 'policy-verdict']);
  t.deepEqual(f.whitelist[0].event_type, [
    { type: 254 },
    { type: 255, match_sub_type: true, sub_type: 127 },
    { type: 4, match_sub_type: true, sub_type: 0 },
    { type: 4, match_sub_type: true, sub_type: 5 },
    { type: 4, match_sub_type: true, sub_type: 2 },
    { type: 1 },
    { type: 5 },
  ]);
  t.throws(() => parseEventType('some-invalid-type'), { instanceOf: FilterError });
  t.throws(() => parseEventType('trace:some-invalid-sub-type'), { instanceOf: FilterError });
});

test('TestConflicts and TestTrailingNot: combinations Hubble refuses, refused with its words', (t) => {
  t.throws(() => build(['from-service', 'foo'], ['service', 'bar']), { message: 'filters --service and --from-service cannot be combined' });
  t.throws(() => build(['ip', 'foo'], ['pod', 'bar']), { instanceOf: FilterError });
  t.throws(() => build(['ip', '1.1.1.1'], ['pod', 'bar']), { message: 'filters --pod and --ip cannot be combined' });
  t.throws(() => build(['port', '1'], ['to-port', '2']), { message: 'filters --to-port and --port cannot be combined' });
  t.throws(() => build(['to-pod', 'x'], ['namespace', 'y']), { message: 'filters --namespace and --to-pod cannot be combined' });
  t.notThrows(() => build(['to-service', 'foo'], ['from-service', 'bar'], ['from-pod', 'blib'], ['from-port', '1172'], ['to-port', '11245'], ['to-ip', '1.2.3.4']));
  t.notThrows(() => build(['service', 'bar'], ['pod', 'blib'], ['namespace', 'test'], ['from-port', '1172'], ['to-port', '11245']));
  t.throws(() => build(['from-ip', '1.2.3.4'], ['not']), { message: /trailing --not/ });
  t.throws(() => build(['not'], ['not']), { message: 'consecutive --not statements' });
});

test('values are checked where they are given', (t) => {
  t.throws(() => build(['ip', '10.0.0.300']), { message: '--ip "10.0.0.300": not an IPv4 address or CIDR' });
  t.throws(() => build(['port', '70000']), { message: /--port "70000": not a port/ });
  t.throws(() => build(['protocol', 'gre']), { message: /--protocol "gre": one of tcp, udp, icmp/ });
  t.throws(() => build(['verdict', 'forwarded']), { message: /--verdict "forwarded": one of FORWARDED, DROPPED/ });
  t.throws(() => build(['traffic-direction', 'up']), { message: /ingress or egress/ });
  t.throws(() => build(['pod', '']), { message: /must be \[NAMESPACE\/\]\[NAME\]/ });
  t.notThrows(() => build(['ip', '10.244.0.0/16'], ['ip', '10.244.1.7/16']));
});

test('-n applies the namespace to the pods and services named without one, or to every pod of it', (t) => {
  t.deepEqual(build(['namespace', 'kube-system']).whitelist, [{ source_pod: ['kube-system/'] }, { destination_pod: ['kube-system/'] }]);
  t.deepEqual(build(['pod', 'client'], ['namespace', 'ns']).whitelist, [{ source_pod: ['ns/client'] }, { destination_pod: ['ns/client'] }]);
  t.deepEqual(build(['to-namespace', 'a'], ['from-pod', 'x/y']).whitelist, [{ source_pod: ['x/y'], destination_pod: ['a/'] }]);
  t.deepEqual(build(['to-pod', 'default/deploy-nginx']).whitelist, [{ destination_pod: ['default/deploy-nginx'] }]);
});

function flow(over: Partial<Flow> = {}): Flow {
  return {
    time: '2024-12-04T14:52:03.118Z',
    verdict: 'FORWARDED',
    IP: { source: '10.244.1.2', destination: '10.244.2.5', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 41234, destination_port: 80 } },
    source: { namespace: 'default', pod_name: 'client' },
    destination: { namespace: 'default', pod_name: 'deploy-nginx-7d4f8-abcde' },
    Type: 'L3_L4',
    node_name: 'node-1',
    event_type: { type: 4, sub_type: 4 },
    destination_service: { name: 'clusterip-service', namespace: 'default' },
    traffic_direction: 'EGRESS',
    is_reply: false,
    ...over,
  };
}

test('pods and services match by prefix in their namespace, a bare name in default', (t) => {
  const f = flow();
  const passes = (...args: [string, string?][]) => flowPasses(build(...args), f);
  t.true(passes(['to-pod', 'default/deploy-nginx']));
  t.true(passes(['to-pod', 'deploy-nginx']));
  t.true(passes(['from-pod', 'client']));
  t.false(passes(['from-pod', 'kube-system/client']));
  t.false(passes(['to-pod', 'client']));
  t.true(passes(['pod', 'client']), '--pod: either end');
  t.true(passes(['namespace', 'default']));
  t.false(passes(['namespace', 'other']));
  t.true(passes(['service', 'default/clusterip']));
  t.false(passes(['to-service', 'kube-system/kube-dns']));
  t.deepEqual(namespaceName('x'), ['default', 'x']);
  t.deepEqual(namespaceName('ns/'), ['ns', '']);
});

test('addresses, ports, protocols, verdicts, types, nodes, directions', (t) => {
  const f = flow();
  const passes = (...args: [string, string?][]) => flowPasses(build(...args), f);
  t.true(passes(['ip', '10.244.2.5']));
  t.true(passes(['to-ip', '10.244.2.0/24']));
  t.false(passes(['from-ip', '10.244.2.0/24']));
  t.true(passes(['port', '41234']));
  t.true(passes(['to-port', '80']));
  t.false(passes(['from-port', '80']));
  t.true(passes(['protocol', 'tcp']));
  t.false(passes(['protocol', 'udp']));
  t.false(passes(['protocol', 'dns']));
  t.true(flowPasses(build(['protocol', 'dns']), flow({ l4: { UDP: { source_port: 1, destination_port: 53 } }, l7: { type: 'REQUEST', dns: { query: 'x.' } } })));
  t.true(flowPasses(build(['protocol', 'icmp']), flow({ l4: { ICMPv4: { type: 8 } } })));
  t.true(passes(['verdict', 'FORWARDED']));
  t.true(passes(['verdict', 'DROPPED'], ['verdict', 'FORWARDED']), 'one kind ORs');
  t.false(passes(['verdict', 'FORWARDED'], ['protocol', 'udp']), 'kinds AND');
  t.true(passes(['type', 'trace']));
  t.true(passes(['type', 'trace:to-overlay']));
  t.false(passes(['type', 'trace:to-endpoint']));
  t.false(passes(['type', 'drop']));
  t.true(passes(['node-name', 'node-*']));
  t.false(passes(['node-name', 'node-2']));
  t.true(passes(['traffic-direction', 'egress']));
  t.true(passes(['not'], ['verdict', 'DROPPED']));
  t.false(passes(['not'], ['pod', 'client']));
});

const kinds: [string, string[]][] = [
  ['from-pod', ['client', 'default/deploy', 'kube-system/', 'default/']],
  ['to-pod', ['deploy-nginx', 'default/deploy-nginx-7d4f8', 'client']],
  ['ip', ['10.244.1.2', '10.244.0.0/16', '10.0.0.0/8', '192.0.2.1']],
  ['port', ['80', '53', '41234']],
  ['protocol', ['tcp', 'udp', 'icmp', 'dns']],
  ['verdict', ['FORWARDED', 'DROPPED', 'TRANSLATED']],
  ['type', ['trace', 'drop', 'l7', 'trace:to-overlay', 'trace-sock']],
];

const flows = fc.record({
  verdict: fc.constantFrom('FORWARDED' as const, 'DROPPED' as const, 'TRANSLATED' as const),
  src: fc.constantFrom('10.244.1.2', '10.244.2.5', '192.0.2.1'),
  sport: fc.constantFrom(80, 41234, 53),
  dport: fc.constantFrom(80, 53, 9000),
  udp: fc.boolean(),
  type: fc.constantFrom(1, 4, 7, 129),
  sub: fc.constantFrom(0, 4, 5),
  srcPod: fc.constantFrom('client', 'deploy-nginx-1', ''),
  dstPod: fc.constantFrom('client', 'deploy-nginx-7d4f8-abcde', ''),
});

function flowOf(r: typeof flows extends fc.Arbitrary<infer T> ? T : never): Flow {
  const l4 = r.udp ? { UDP: { source_port: r.sport, destination_port: r.dport } } : { TCP: { source_port: r.sport, destination_port: r.dport } };
  return flow({
    verdict: r.verdict,
    IP: { source: r.src, destination: '10.244.2.5' },
    l4,
    event_type: { type: r.type, sub_type: r.sub },
    source: r.srcPod === '' ? { identity: 2 } : { namespace: 'default', pod_name: r.srcPod },
    destination: r.dstPod === '' ? { identity: 2 } : { namespace: 'default', pod_name: r.dstPod },
  });
}

test('property: values of one kind OR, kinds AND (one-ended ones with anything), and --not passes exactly what the filter does not', (t) => {
  const pick = fc.tuple(fc.nat(kinds.length - 1), fc.nat(kinds.length - 1), fc.nat(9), fc.nat(9), fc.nat(9));
  fc.assert(
    fc.property(pick, flows, ([ka, kb, i1, i2, i3], r) => {
      const f = flowOf(r);
      const [a, values] = kinds[ka];
      const [b, others] = kinds[kb];
      const v1 = values[i1 % values.length];
      const v2 = values[i2 % values.length];
      const w = others[i3 % others.length];
      const one = (flag: string, v: string) => flowPasses(build([flag, v]), f);
      if (flowPasses(build([a, v1], [a, v2]), f) !== (one(a, v1) || one(a, v2))) return false;
      // Two flags that each name both ends pair up by end (--ip A --port 80: A:80 either way), as in Hubble.
      const bothEnds = ['ip', 'port'].includes(a) && ['ip', 'port'].includes(b);
      if (a !== b && !bothEnds && !conflicting(a, b) && flowPasses(build([a, v1], [b, w]), f) !== (one(a, v1) && one(b, w))) return false;
      return flowPasses(build(['not'], [a, v1]), f) === !one(a, v1);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

function conflicting(a: string, b: string): boolean {
  try {
    build([a, a === 'ip' ? '1.1.1.1' : a === 'port' ? '1' : a === 'protocol' ? 'tcp' : a === 'verdict' ? 'DROPPED' : a === 'type' ? 'drop' : 'x'], [b, b === 'ip' ? '1.1.1.1' : b === 'port' ? '1' : b === 'protocol' ? 'tcp' : b === 'verdict' ? 'DROPPED' : b === 'type' ? 'drop' : 'x']);
    return false;
  } catch {
    return true;
  }
}

test('filters arriving as JSON are checked field by field', (t) => {
  const f = build(['to-pod', 'default/deploy-nginx'], ['not'], ['verdict', 'DROPPED'], ['type', 'trace:to-endpoint']);
  t.deepEqual(decodeFilters(JSON.parse(JSON.stringify(f))), f);
  t.deepEqual(decodeFilters(undefined), { whitelist: [], blacklist: [] });
  t.throws(() => decodeFilters({ whitelist: [{ source_pod: 'x' }] }), { message: 'whitelist[0].source_pod must be a list of strings' });
  t.throws(() => decodeFilters({ whitelist: [{ event_type: [{ type: 'trace' }] }] }), { message: /event_type\[0\] must be/ });
  t.throws(() => decodeFilters({ blacklist: Array.from({ length: 65 }, () => ({})) }), { message: 'at most 64 filters' });
  t.true(filterMatches({}, flow()), 'an empty filter matches everything');
});
