/**
 * The printer against Hubble's own expectations: the flow and the outputs of
 * hubble/pkg/printer/printer_test.go (TestPrinter_WriteProtoFlow, TestHostname,
 * Test_getFlowType, Test_fmtTimestamp), carried over as they are, then podwire's L7 DNS
 * lines as the parser's summaries make them (pkg/hubble/parser/seven/dns.go).
 */
import test from 'ava';
import { type Flow, formatTimestamp, parseTimestamp, stampMilli } from '../../src/observe/flow.js';
import {
  flowType,
  formatCompact,
  formatDict,
  formatJson,
  formatLostCompact,
  formatLostJson,
  hostname,
  tableHeader,
  tableRow,
  TableWriter,
} from '../../src/observe/printer.js';

/** printer_test.go's `f`. */
const f: Flow = {
  time: formatTimestamp({ seconds: 1234, nanos: 567800000 }),
  verdict: 'DROPPED',
  IP: { source: '1.1.1.1', destination: '2.2.2.2' },
  l4: { TCP: { source_port: 31793, destination_port: 8080 } },
  source: { identity: 4 },
  destination: { identity: 12345 },
  Type: 'L3_L4',
  node_name: 'k8s1',
  event_type: { type: 1, sub_type: 133 },
  is_reply: false,
  Summary: 'TCP Flags: SYN',
};

const reply: Flow = { ...f, is_reply: true };
const unknown: Flow = { ...f, is_reply: undefined };
const policyDenied: Flow = {
  ...f,
  event_type: { type: 5 },
  is_reply: undefined,
  traffic_direction: 'EGRESS',
  egress_denied_by: [{ name: 'my-policy', namespace: 'my-policy-namespace', kind: 'CiliumNetworkPolicy' }],
};
const policyAllowed: Flow = {
  ...f,
  event_type: { type: 5 },
  verdict: 'FORWARDED',
  is_reply: undefined,
  traffic_direction: 'INGRESS',
  ingress_allowed_by: [
    { name: 'my-policy', namespace: 'my-policy-namespace', kind: 'CiliumNetworkPolicy' },
    { name: 'my-policy-2', kind: 'CiliumClusterwideNetworkPolicy' },
  ],
  policy_match_type: 1,
};
const policyAudited: Flow = { ...policyDenied, verdict: 'AUDIT' };

function table(flows: Flow[], nodeName = false): string {
  const w = new TableWriter();
  w.add(tableHeader({ nodeName }));
  for (const flow of flows) w.add(tableRow(flow, { nodeName }));
  return w.flush();
}

test('tabular, as printer_test.go expects it', (t) => {
  t.is(
    table([f]),
    'TIMESTAMP             SOURCE          DESTINATION    TYPE            VERDICT   SUMMARY\n' +
      'Jan  1 00:20:34.567   1.1.1.1:31793   2.2.2.2:8080   Policy denied   DROPPED   TCP Flags: SYN\n',
  );
  t.is(
    table([f], true),
    'TIMESTAMP             NODE   SOURCE          DESTINATION    TYPE            VERDICT   SUMMARY\n' +
      'Jan  1 00:20:34.567   k8s1   1.1.1.1:31793   2.2.2.2:8080   Policy denied   DROPPED   TCP Flags: SYN\n',
  );
});

test('compact, with and without the node, replies flipped, unknown direction as <>', (t) => {
  t.is(formatCompact(f), 'Jan  1 00:20:34.567: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (TCP Flags: SYN)\n');
  t.is(formatCompact(f, { nodeName: true }), 'Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (TCP Flags: SYN)\n');
  t.is(formatCompact(reply, { nodeName: true }), 'Jan  1 00:20:34.567 [k8s1]: 2.2.2.2:8080 (ID:12345) <- 1.1.1.1:31793 (health) Policy denied DROPPED (TCP Flags: SYN)\n');
  t.is(formatCompact(unknown, { nodeName: true }), 'Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (TCP Flags: SYN)\n');
});

test('compact policy verdicts: DENIED, ALLOWED, AUDITED, by name with --print-policy-names', (t) => {
  const node = { nodeName: true };
  const named = { nodeName: true, policyNames: true };
  t.is(formatCompact(policyDenied, node), 'Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:none EGRESS DENIED (TCP Flags: SYN)\n');
  t.is(
    formatCompact(policyDenied, named),
    'Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:none EGRESS DENIED BY my-policy (CiliumNetworkPolicy) (TCP Flags: SYN)\n',
  );
  t.is(
    formatCompact(policyAllowed, named),
    'Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:L3-Only INGRESS ALLOWED BY my-policy (CiliumNetworkPolicy), my-policy-2 (CiliumClusterwideNetworkPolicy) (TCP Flags: SYN)\n',
  );
  t.is(
    formatCompact(policyAudited, named),
    'Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:none EGRESS AUDITED BY my-policy (CiliumNetworkPolicy) (TCP Flags: SYN)\n',
  );
});

test('json: the legacy encoding, field for field', (t) => {
  t.is(
    formatJson(f),
    '{"time":"1970-01-01T00:20:34.567800Z","verdict":"DROPPED","IP":{"source":"1.1.1.1","destination":"2.2.2.2"},' +
      '"l4":{"TCP":{"source_port":31793,"destination_port":8080}},"source":{"identity":4},"destination":{"identity":12345},' +
      '"Type":"L3_L4","node_name":"k8s1","event_type":{"type":1,"sub_type":133},"is_reply":false,"Summary":"TCP Flags: SYN"}\n',
  );
  // Key order is the proto's, whatever order the object was built in.
  const shuffled = Object.fromEntries(Object.entries(f).reverse()) as unknown as Flow;
  t.is(formatJson(shuffled), formatJson(f));
});

test('dict, with the node and with policy names', (t) => {
  t.is(formatDict(f, true), '  TIMESTAMP: Jan  1 00:20:34.567\n     SOURCE: 1.1.1.1:31793\nDESTINATION: 2.2.2.2:8080\n       TYPE: Policy denied\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN\n');
  t.is(
    formatDict(f, true, { nodeName: true }),
    '  TIMESTAMP: Jan  1 00:20:34.567\n       NODE: k8s1\n     SOURCE: 1.1.1.1:31793\nDESTINATION: 2.2.2.2:8080\n       TYPE: Policy denied\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN\n',
  );
  t.is(
    formatDict(policyDenied, true, { policyNames: true }),
    '  TIMESTAMP: Jan  1 00:20:34.567\n     SOURCE: 1.1.1.1:31793\nDESTINATION: 2.2.2.2:8080\n       TYPE: policy-verdict:none EGRESS\n    VERDICT: DENIED BY my-policy (CiliumNetworkPolicy)\n    SUMMARY: TCP Flags: SYN\n',
  );
  t.true(formatDict(f, false).startsWith('------------\n  TIMESTAMP:'));
});

test('Hostname (TestHostname): pod before service before address, no port 0', (t) => {
  t.is(hostname('', '', 'default', 'pod', ''), 'default/pod');
  t.is(hostname('', '', 'default', 'pod', 'service'), 'default/pod');
  t.is(hostname('', '', 'default', '', 'service'), 'default/service');
  t.is(hostname('1.1.1.1', '0', 'default', '', ''), '1.1.1.1');
  t.is(hostname('1.1.1.1', '80', '', '', ''), '1.1.1.1:80');
});

test('GetFlowType (Test_getFlowType): trace points, policy verdicts, L7, unknown', (t) => {
  const base: Flow = { time: f.time, verdict: 'FORWARDED', Type: 'L3_L4', event_type: { type: 4, sub_type: 2 } };
  t.is(flowType(base), 'to-host');
  t.is(flowType({ ...base, event_type: { type: 4 } }), 'to-endpoint');
  t.is(flowType({ ...base, event_type: { type: 4, sub_type: 123 } }), '123');
  t.is(flowType({ ...base, event_type: { type: 5 }, policy_match_type: 2, traffic_direction: 'INGRESS' }), 'policy-verdict:L3-L4 INGRESS');
  t.is(flowType({ ...base, verdict: 'DROPPED', event_type: { type: 5 }, drop_reason: 153, traffic_direction: 'INGRESS' }), 'policy-verdict:none INGRESS');
  t.is(flowType({ ...base, event_type: { type: 129 }, l7: { type: 'REQUEST', dns: { query: 'x.', observation_source: 'proxy' } } }), 'dns-request proxy');
  t.is(flowType({ ...base, event_type: { type: 129 }, l7: { type: 'REQUEST' } }), 'l7-request');
  t.is(flowType({ ...base, verdict: 'TRANSLATED', event_type: { type: 7, sub_type: 2 } }), 'post-xlate-fwd');
  t.is(flowType({ ...base, event_type: { type: 0 } }), 'UNKNOWN');
});

test('timestamps (Test_fmtTimestamp): StampMilli of the UTC time; protojson fractions of 3, 6 or 9 digits', (t) => {
  t.is(stampMilli({ seconds: 0, nanos: 0 }), 'Jan  1 00:00:00.000');
  t.is(stampMilli({ seconds: 1530984600, nanos: 123000000 }), 'Jul  7 17:30:00.123');
  t.is(formatTimestamp({ seconds: 1234, nanos: 567800000 }), '1970-01-01T00:20:34.567800Z');
  t.is(formatTimestamp({ seconds: 1234, nanos: 500000000 }), '1970-01-01T00:20:34.500Z');
  t.is(formatTimestamp({ seconds: 1234, nanos: 1 }), '1970-01-01T00:20:34.000000001Z');
  t.is(formatTimestamp({ seconds: 1234, nanos: 0 }), '1970-01-01T00:20:34Z');
  t.deepEqual(parseTimestamp('1970-01-01T00:20:34.5678Z'), { seconds: 1234, nanos: 567800000 });
  t.is(parseTimestamp('yesterday'), undefined);
  t.is(formatCompact({ ...f, time: 'nonsense' }).slice(0, 4), 'N/A:');
});

test('lost events, as WriteLostEvent prints them', (t) => {
  t.is(formatLostCompact({ source: 'HUBBLE_RING_BUFFER', num_events_lost: 123 }), 'EVENTS LOST: HUBBLE_RING_BUFFER CPU(0) 123\n');
  t.is(formatLostJson({ source: 'HUBBLE_RING_BUFFER', num_events_lost: 123 }), '{"source":"HUBBLE_RING_BUFFER","num_events_lost":"123"}\n');
});

test('DNS flows: the request to the cluster DNS and the NXDOMAIN answer flipped back to the pod', (t) => {
  const query: Flow = {
    time: f.time,
    verdict: 'FORWARDED',
    IP: { source: '10.244.1.5', destination: '10.96.0.10', ipVersion: 'IPv4' },
    l4: { UDP: { source_port: 41000, destination_port: 53 } },
    source: { identity: 31337, namespace: 'default', pod_name: 'client' },
    destination: { identity: 1 },
    Type: 'L7',
    l7: { type: 'REQUEST', dns: { query: 'missing.default.svc.cluster.local.', observation_source: 'proxy', qtypes: ['A'] } },
    event_type: { type: 129 },
    destination_service: { name: 'kube-dns', namespace: 'kube-system' },
    traffic_direction: 'EGRESS',
    is_reply: false,
    Summary: 'DNS Query missing.default.svc.cluster.local. A',
  };
  t.is(
    formatCompact(query),
    'Jan  1 00:20:34.567: default/client:41000 (ID:31337) -> kube-system/kube-dns:53 (host) dns-request proxy FORWARDED (DNS Query missing.default.svc.cluster.local. A)\n',
  );
  const answer: Flow = {
    ...query,
    IP: { source: '10.96.0.10', destination: '10.244.1.5', ipVersion: 'IPv4' },
    l4: { UDP: { source_port: 53, destination_port: 41000 } },
    source: { identity: 1 },
    destination: { identity: 31337, namespace: 'default', pod_name: 'client' },
    destination_service: undefined,
    source_service: { name: 'kube-dns', namespace: 'kube-system' },
    l7: { type: 'RESPONSE', dns: { query: 'missing.default.svc.cluster.local.', ttl: 4294967295, observation_source: 'proxy', rcode: 3, qtypes: ['A'] } },
    reply: true,
    is_reply: true,
    Summary: 'DNS Answer RCode: Non-Existent Domain TTL: 4294967295 (Proxy missing.default.svc.cluster.local. A)',
  };
  t.is(
    formatCompact(answer),
    'Jan  1 00:20:34.567: default/client:41000 (ID:31337) <- kube-system/kube-dns:53 (host) dns-response proxy FORWARDED (DNS Answer RCode: Non-Existent Domain TTL: 4294967295 (Proxy missing.default.svc.cluster.local. A))\n',
  );
  t.regex(formatJson(answer), /"l7":\{"type":"RESPONSE","dns":\{"query":"missing\.default\.svc\.cluster\.local\.","ttl":4294967295,"observation_source":"proxy","rcode":3,"qtypes":\["A"\]\}\},"reply":true,/);
});
