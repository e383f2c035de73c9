import test from 'ava';
import fc from 'fast-check';
import { ApiError, parseCaptureQuery, parseFlowsQuery, parseTraceQuery } from '../../src/ui/requests.js';

const q = (text: string) => new URLSearchParams(text);

test('trace requests: a pod or an outside address to an address or a DNS name, with a port and a protocol', (t) => {
  t.deepEqual(parseTraceQuery(q('from=client&to=10.100.100.100:80')), { from: { kind: 'pod', namespace: 'default', name: 'client' }, to: { kind: 'ip', ip: 0x0a646464 }, port: 80, proto: 'tcp' });
  t.deepEqual(parseTraceQuery(q('from=web/client-1&to=kube-dns.kube-system:53/udp&sport=40001')), {
    from: { kind: 'pod', namespace: 'web', name: 'client-1' },
    to: { kind: 'name', name: 'kube-dns.kube-system' },
    port: 53,
    proto: 'udp',
    sport: 40001,
  });
  t.deepEqual(parseTraceQuery(q('from=outside:192.0.2.100&to=192.0.2.11:30080&node=node-1')), { from: { kind: 'outside', ip: 0xc0000264 }, to: { kind: 'ip', ip: 0xc000020b }, port: 30080, proto: 'tcp', node: 'node-1' });
  t.like(parseTraceQuery(q('from=client&to=clusterip-service.default.svc.cluster.local.:80')), { to: { kind: 'name', name: 'clusterip-service.default.svc.cluster.local.' } });
});

test('a bad request says what was wrong, with a 400', (t) => {
  const cases: [(p: URLSearchParams) => unknown, string, RegExp][] = [
    [parseTraceQuery, '', /from is required: NS\/POD, POD or outside:IP/],
    [parseTraceQuery, 'from=client', /to is required/],
    [parseTraceQuery, 'from=client&to=10.100.100.100', /to "10.100.100.100": expected IP:PORT/],
    [parseTraceQuery, 'from=client&to=10.100.100.100:0', /to port must be an integer from 1 to 65535, got "0"/],
    [parseTraceQuery, 'from=client&to=10.100.100.100:70000', /to port must be an integer from 1 to 65535/],
    [parseTraceQuery, 'from=client&to=10.100.100.300:80', /to "10.100.100.300": not an IPv4 address/],
    [parseTraceQuery, 'from=client&to=10.100.100.100:80/sctp', /expected IP:PORT\[\/tcp\|udp\]/],
    [parseTraceQuery, 'from=Client&to=10.100.100.100:80', /from pod "Client"/],
    [parseTraceQuery, 'from=a/b/c&to=10.100.100.100:80', /from pod "b\/c"/],
    [parseTraceQuery, 'from=outside:nowhere&to=10.100.100.100:80', /from "outside:nowhere": not an IPv4 address/],
    [parseTraceQuery, 'from=client&to=under_score:80', /to name "under_score"/],
    [parseTraceQuery, 'from=client&to=10.100.100.100:80&via=node-1', /unknown parameter "via" \(takes from, to, node, sport\)/],
    [parseTraceQuery, 'from=client&from=web&to=10.100.100.100:80', /parameter from given more than once/],
    [parseTraceQuery, 'from=client&to=10.100.100.100:80&sport=-1', /sport must be an integer from 1 to 65535/],
    [parseCaptureQuery, '', /give pod=NS\/NAME or node=NAME \(one of them\)/],
    [parseCaptureQuery, 'pod=client&node=node-1', /one of them/],
    [parseCaptureQuery, 'pod=client&iface=uplink', /iface is for node=/],
    [parseCaptureQuery, 'pod=client&seconds=0', /seconds must be an integer from 1 to 60, got "0"/],
    [parseCaptureQuery, 'pod=client&seconds=61', /seconds must be an integer from 1 to 60/],
    [parseCaptureQuery, 'pod=client&filter=tcp%20port', /filter: /],
    [parseCaptureQuery, 'node=Node_1', /node "Node_1"/],
    [parseFlowsQuery, 'last=x', /last must be an integer from 0 to 2000, got "x"/],
    [parseFlowsQuery, 'edge=client', /edge "client": expected FROM>TO/],
  ];
  for (const [parse, text, message] of cases) {
    const err = t.throws(() => parse(q(text)), { instanceOf: ApiError, message }, text);
    t.is(err?.status, 400, text);
  }
});

test('captures and flows take their defaults', (t) => {
  t.deepEqual(parseCaptureQuery(q('pod=client')), { pod: 'default/client', seconds: 5 });
  t.deepEqual(parseCaptureQuery(q('node=node-1&iface=vxlan:node-2&filter=udp%20port%204789&seconds=2')), { node: 'node-1', iface: 'vxlan:node-2', filter: 'udp port 4789', seconds: 2 });
  t.deepEqual(parseFlowsQuery(q('')), { last: 100 });
  t.deepEqual(parseFlowsQuery(q('last=5&edge=pod:default/client>svc:default/web')), { last: 5, edge: 'pod:default/client>svc:default/web' });
});

test('whatever the query string, a parser answers a request or an ApiError with a 4xx, never anything else', (t) => {
  const key = fc.constantFrom('from', 'to', 'node', 'sport', 'pod', 'iface', 'filter', 'seconds', 'last', 'edge', 'x');
  const params = fc.array(fc.tuple(key, fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9./:>-]{0,40}$/))), { maxLength: 6 });
  t.notThrows(() =>
    fc.assert(
      fc.property(params, (pairs) => {
        for (const parse of [parseTraceQuery, parseCaptureQuery, parseFlowsQuery]) {
          try {
            parse(new URLSearchParams(pairs));
          } catch (err) {
            if (!(err instanceof ApiError) || err.status < 400 || err.status > 499) return false;
          }
        }
        return true;
      }),
      { numRuns: 2000 },
    ),
  );
});
