/**
 * CoreDNS's own expectations for its kubernetes plugin, carried over as data: the fixtures of
 * plugin/kubernetes/handler_test.go (`APIConnServeTest`), handler_case_test.go,
 * kubernetes_apex_test.go and reverse_test.go (`APIConnReverseTest`) rebuilt as podwire YAML,
 * and each test query with the answer CoreDNS's test holds the plugin to, as zone-file lines.
 * The unit test (coredns.test.ts) asks the responder; the e2e test (e2e/coredns-dns.test.ts)
 * asks a node with dig from a pod. Both compare sections sorted, as CoreDNS's `SortAndCheck`
 * does, and SOA serials as a placeholder (CoreDNS's fixtures use whatever their fake API
 * reports; a node uses the time of its last rebuild).
 *
 * Where a fixture could not be written as a cluster, or an expectation is CoreDNS's test
 * harness rather than a cluster, the case says how it was carried (`note`), and NOT_CARRIED
 * lists what was left out and why.
 */

export interface CoreDnsCase {
  /** Where CoreDNS's test has it. */
  readonly from: string;
  readonly q: string;
  readonly type: string;
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  readonly answer?: readonly string[];
  readonly authority?: readonly string[];
  readonly additional?: readonly string[];
  /** How the case differs from CoreDNS's test, when it does. */
  readonly note?: string;
}

/**
 * handler_test.go's services and endpoints. The kubernetes plugin there runs with `ttl` 5
 * (CoreDNS's default), so the Cluster document sets `dnsTTLSeconds: 5`. The service CIDR
 * 10.0.0.0/24 puts the cluster DNS at 10.0.0.10, the fixture's `kubedns` address: podwire's
 * own kube-dns stands for it (no case asks for it by name). Endpoint addresses are
 * hand-written Endpoints, as the fixture's are.
 *
 * Changes a cluster forces on the fixture: svc1 is at 10.0.0.11 (`SVC1_IP`), since 10.0.0.1
 * is the kubernetes Service's in any cluster with this service CIDR; `svcempty` gets its own
 * address (the fixture gives it svc1's, which no API server allocates twice); `hdls1` lists the port its
 * Endpoints have (podwire, as the endpoints controller, reads endpoint ports through the
 * Service's); the IPv6 and dual-stack objects are left out (podwire is IPv4).
 */
export const SVC1_IP = '10.0.0.11';

export const HANDLER_YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 1, serviceCIDR: 10.0.0.0/24, dnsTTLSeconds: 5}
---
apiVersion: v1
kind: Namespace
metadata: {name: testns}
---
apiVersion: v1
kind: Namespace
metadata: {name: unexposedns}
---
apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: testns}
spec: {clusterIP: ${SVC1_IP}, ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc1, namespace: testns}
subsets: [{addresses: [{ip: 172.0.0.1, hostname: ep1a}], ports: [{name: http, protocol: TCP, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svcempty, namespace: testns}
spec: {clusterIP: 10.0.0.4, ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svcempty, namespace: testns}
subsets: [{addresses: [], ports: [{name: http, protocol: TCP, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: hdls1, namespace: testns}
spec: {clusterIP: None, ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: hdls1, namespace: testns}
subsets:
  - addresses: [{ip: 172.0.0.2}, {ip: 172.0.0.3}, {ip: 172.0.0.4, hostname: dup-name}, {ip: 172.0.0.5, hostname: dup-name}]
    ports: [{name: http, protocol: TCP, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: external, namespace: testns}
spec: {type: ExternalName, externalName: ext.interwebs.test, ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: external-to-service, namespace: testns}
spec: {type: ExternalName, externalName: svc1.testns.svc.cluster.local., ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: hdlsprtls, namespace: testns}
spec: {clusterIP: None}
---
apiVersion: v1
kind: Endpoints
metadata: {name: hdlsprtls, namespace: testns}
subsets: [{addresses: [{ip: 172.0.0.20}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: unexposedns}
spec: {clusterIP: 10.0.0.2, ports: [{name: http, protocol: TCP, port: 80}]}
`;

/** The zone's SOA as CoreDNS's tests write it (serial compared as a placeholder). */
const SOA = 'cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1499347823 7200 1800 86400 5';

function nxdomain(from: string, q: string, type: string, soa = SOA): CoreDnsCase {
  return { from, q, type, rcode: 'NXDOMAIN', authority: [soa] };
}

function nodata(from: string, q: string, type: string, soa = SOA): CoreDnsCase {
  return { from, q, type, rcode: 'NOERROR', authority: [soa] };
}

const H = 'handler_test.go dnsTestCases';

export const HANDLER_CASES: readonly CoreDnsCase[] = [
  { from: H, q: 'svc1.testns.svc.cluster.local.', type: 'A', rcode: 'NOERROR', answer: [`svc1.testns.svc.cluster.local. 5 IN A ${SVC1_IP}`] },
  { from: H, q: 'svcempty.testns.svc.cluster.local.', type: 'A', rcode: 'NOERROR', answer: ['svcempty.testns.svc.cluster.local. 5 IN A 10.0.0.4'], note: 'its own address, 10.0.0.4' },
  {
    from: H,
    q: 'svc1.testns.svc.cluster.local.',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.'],
    additional: [`svc1.testns.svc.cluster.local. 5 IN A ${SVC1_IP}`],
  },
  {
    from: H,
    q: 'svcempty.testns.svc.cluster.local.',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['svcempty.testns.svc.cluster.local. 5 IN SRV 0 100 80 svcempty.testns.svc.cluster.local.'],
    additional: ['svcempty.testns.svc.cluster.local. 5 IN A 10.0.0.4'],
    note: 'its own address, 10.0.0.4',
  },
  {
    from: H,
    q: '_http._tcp.svc1.testns.svc.cluster.local.',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.'],
    additional: [`svc1.testns.svc.cluster.local. 5 IN A ${SVC1_IP}`],
  },
  {
    from: H,
    q: '_http._tcp.svcempty.testns.svc.cluster.local.',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['_http._tcp.svcempty.testns.svc.cluster.local. 5 IN SRV 0 100 80 svcempty.testns.svc.cluster.local.'],
    additional: ['svcempty.testns.svc.cluster.local. 5 IN A 10.0.0.4'],
    note: 'its own address, 10.0.0.4',
  },
  {
    from: H,
    q: 'hdls1.testns.svc.cluster.local.',
    type: 'A',
    rcode: 'NOERROR',
    answer: [
      'hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2',
      'hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3',
      'hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4',
      'hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5',
    ],
  },
  { from: H, q: 'hdlsprtls.testns.svc.cluster.local.', type: 'A', rcode: 'NOERROR', answer: ['hdlsprtls.testns.svc.cluster.local. 5 IN A 172.0.0.20'] },
  { from: H, q: '172-0-0-20.hdlsprtls.testns.svc.cluster.local.', type: 'A', rcode: 'NOERROR', answer: ['172-0-0-20.hdlsprtls.testns.svc.cluster.local. 5 IN A 172.0.0.20'] },
  { from: H, q: '172-0-0-2.hdls1.testns.svc.cluster.local.', type: 'A', rcode: 'NOERROR', answer: ['172-0-0-2.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2'] },
  { from: H, q: '172-0-0-3.hdls1.testns.svc.cluster.local.', type: 'A', rcode: 'NOERROR', answer: ['172-0-0-3.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3'] },
  {
    from: H,
    q: 'dup-name.hdls1.testns.svc.cluster.local.',
    type: 'A',
    rcode: 'NOERROR',
    answer: ['dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4', 'dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5'],
  },
  {
    from: H,
    q: '_http._tcp.hdls1.testns.svc.cluster.local.',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: [
      '_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 25 80 172-0-0-2.hdls1.testns.svc.cluster.local.',
      '_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 25 80 172-0-0-3.hdls1.testns.svc.cluster.local.',
      '_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 25 80 dup-name.hdls1.testns.svc.cluster.local.',
    ],
    additional: [
      '172-0-0-2.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2',
      '172-0-0-3.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3',
      'dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4',
      'dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5',
    ],
    note: 'without the two IPv6 endpoints: four endpoints share the weight (25 each; CoreDNS, counting six, gives 16)',
  },
  { from: H, q: 'external.testns.svc.cluster.local.', type: 'CNAME', rcode: 'NOERROR', answer: ['external.testns.svc.cluster.local. 5 IN CNAME ext.interwebs.test.'] },
  {
    from: H,
    q: 'external-to-service.testns.svc.cluster.local',
    type: 'A',
    rcode: 'NOERROR',
    answer: ['external-to-service.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.', `svc1.testns.svc.cluster.local. 5 IN A ${SVC1_IP}`],
  },
  nodata(H, 'svc1.testns.svc.cluster.local.', 'AAAA'),
  nxdomain(H, 'svc0.testns.svc.cluster.local.', 'AAAA'),
  nxdomain(H, 'svc0.testns.svc.cluster.local.', 'A'),
  nxdomain(H, 'svc0.svc-nons.svc.cluster.local.', 'A'),
  { from: H, q: 'dns-version.cluster.local.', type: 'TXT', rcode: 'NOERROR', answer: ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'] },
  nxdomain(H, 'bogusendpoint.hdls1.testns.svc.cluster.local.', 'A'),
  nxdomain(H, 'bogusendpoint.svc0.testns.svc.cluster.local.', 'A'),
  nodata(H, 'svc.cluster.local.', 'A'),
  nodata(H, 'pod.cluster.local.', 'A'),
  nodata(H, 'testns.svc.cluster.local.', 'A'),
  nodata(H, 'svc.cluster.local.', 'NS'),
  nodata(H, 'testns.svc.cluster.local.', 'NS'),
  nxdomain(H, 'foo.cluster.local.', 'NS'),
  nxdomain(H, 'foo.svc.cluster.local.', 'NS'),
  nodata(H, 'svc1.testns.svc.cluster.local.', 'SOA'),
  nxdomain(H, 'endpoint.external.testns.svc.cluster.local.', 'CNAME'),
  // nsTestCases: every namespace exposed; one that does not exist.
  { ...nxdomain('handler_test.go nsTestCases', 'svc1.nsnoexist.svc.cluster.local.', 'A'), note: "with this cluster's TTL (the test's plugin runs with 30)" },

  // handler_case_test.go: the zone keeps the query's letter case, the rest is the zone's own.
  nxdomain(
    'handler_case_test.go',
    'not-a-service.testns.svc.ClUsTeR.lOcAl.',
    'A',
    'ClUsTeR.lOcAl. 5 IN SOA ns.dns.ClUsTeR.lOcAl. hostmaster.ClUsTeR.lOcAl. 1499347823 7200 1800 86400 5',
  ),
  { from: 'handler_case_test.go', q: 'SvC1.TeStNs.SvC.cLuStEr.LoCaL.', type: 'A', rcode: 'NOERROR', answer: [`SvC1.TeStNs.SvC.cLuStEr.LoCaL. 5 IN A ${SVC1_IP}`] },
  {
    from: 'handler_case_test.go',
    q: '_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL.',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL. 5 IN SRV 0 100 80 svc1.testns.svc.cLuStEr.LoCaL.'],
    additional: [`svc1.testns.svc.cLuStEr.LoCaL. 5 IN A ${SVC1_IP}`],
  },
  {
    from: 'handler_case_test.go',
    q: 'Cluster.local.',
    type: 'SOA',
    rcode: 'NOERROR',
    answer: ['Cluster.local. 5 IN SOA ns.dns.Cluster.local. hostmaster.Cluster.local. 1499347823 7200 1800 86400 5'],
  },

  // kubernetes_apex_test.go: the apex owns its SOA and NS, and nothing else.
  { from: 'kubernetes_apex_test.go', q: 'cluster.local.', type: 'SOA', rcode: 'NOERROR', answer: [SOA], note: "the SOA's TTL is min(ttl, 300), 5 here (the test's fake reports 303)" },
  nodata('kubernetes_apex_test.go', 'cluster.local.', 'HINFO'),
  {
    from: 'kubernetes_apex_test.go',
    q: 'cluster.local.',
    type: 'NS',
    rcode: 'NOERROR',
    answer: ['cluster.local. 5 IN NS kube-dns.kube-system.svc.cluster.local.'],
    additional: ['kube-dns.kube-system.svc.cluster.local. 5 IN A 10.0.0.10'],
    note: "as in a cluster, where CoreDNS finds its own address behind kube-dns (ns.go); the test's fake has no such endpoint and falls back to ns.dns.cluster.local at 127.0.0.1",
  },
  nodata('kubernetes_apex_test.go', 'cluster.local.', 'A'),
  nodata('kubernetes_apex_test.go', 'cluster.local.', 'AAAA'),
  nodata('kubernetes_apex_test.go', 'cluster.local.', 'SRV'),
];

/**
 * reverse_test.go's fixture: svc1 at 192.168.1.100, and endpoints 10.0.0.100 (ep1a) and
 * 10.0.0.99 (double-ep, in svc1 and svc2). The plugin there serves the reverse zones
 * 0.10.in-addr.arpa and 168.192.in-addr.arpa; a cluster serves in-addr.arpa (kubeadm's
 * Corefile: `kubernetes cluster.local in-addr.arpa ip6.arpa`), so negative answers carry the
 * SOA of in-addr.arpa. The pod and service CIDRs hold those addresses, as a cluster's would.
 * The fixture's duplicate EndpointSlice of ep1a is one Endpoints address here.
 */
export const REVERSE_YAML = `
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec: {nodes: 1, podCIDR: 10.0.0.0/16, serviceCIDR: 192.168.0.0/16, dnsTTLSeconds: 5}
---
apiVersion: v1
kind: Namespace
metadata: {name: testns}
---
apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: testns}
spec: {clusterIP: 192.168.1.100, ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc1, namespace: testns}
subsets: [{addresses: [{ip: 10.0.0.100, hostname: ep1a}, {ip: 10.0.0.99, hostname: double-ep}], ports: [{name: http, protocol: TCP, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc2, namespace: testns}
spec: {clusterIP: 192.168.1.101, ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc2, namespace: testns}
subsets: [{addresses: [{ip: 10.0.0.99, hostname: double-ep}], ports: [{name: http, protocol: TCP, port: 80}]}]
`;

const R = 'reverse_test.go';
const REVERSE_SOA = 'in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1502782828 7200 1800 86400 5';
const IN_REVERSE_ZONE = 'the SOA of in-addr.arpa, the zone of a cluster (the test serves 0.10.in-addr.arpa)';

export const REVERSE_CASES: readonly CoreDnsCase[] = [
  { from: R, q: '100.0.0.10.in-addr.arpa.', type: 'PTR', rcode: 'NOERROR', answer: ['100.0.0.10.in-addr.arpa. 5 IN PTR ep1a.svc1.testns.svc.cluster.local.'] },
  { from: R, q: '100.1.168.192.in-addr.arpa.', type: 'PTR', rcode: 'NOERROR', answer: ['100.1.168.192.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local.'] },
  { ...nxdomain(R, '101.0.0.10.in-addr.arpa.', 'PTR', REVERSE_SOA), note: IN_REVERSE_ZONE },
  nxdomain(R, 'example.org.cluster.local.', 'PTR'),
  nodata(R, 'svc1.testns.svc.cluster.local.', 'PTR'),
  { ...nxdomain(R, 'svc1.testns.svc.0.10.in-addr.arpa.', 'A', REVERSE_SOA), note: IN_REVERSE_ZONE },
  nxdomain(R, '100.0.0.10.cluster.local.', 'PTR'),
  {
    from: R,
    q: '99.0.0.10.in-addr.arpa.',
    type: 'PTR',
    rcode: 'NOERROR',
    answer: ['99.0.0.10.in-addr.arpa. 5 IN PTR double-ep.svc1.testns.svc.cluster.local.', '99.0.0.10.in-addr.arpa. 5 IN PTR double-ep.svc2.testns.svc.cluster.local.'],
  },
];

/** CoreDNS's cases not carried, and why. */
export const NOT_CARRIED: readonly string[] = [
  'handler_test.go: every AAAA answer, svc6, svc-dual-stack and the IPv6 endpoints of hdls1: podwire is IPv4 (AAAA gets NODATA)',
  'handler_test.go: "CNAME External Truncated Lookup": its upstream is a stub that answers truncated; forwarder.test.ts covers the chase with a real upstream message',
  'reverse_test.go: the ip6.arpa PTR cases: IPv4 only',
];

/** Zone-file lines sorted, SOA serials replaced by a placeholder: how the tables are compared. */
export function comparable(lines: readonly string[] | undefined): string[] {
  return (lines ?? []).map((l) => l.replace(/^(\S+ \d+ IN SOA \S+ \S+ )\d+ /, '$1<serial> ')).sort();
}
