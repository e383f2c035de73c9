/**
 * The Kubernetes DNS specification as CoreDNS's kubernetes plugin serves it, table-driven:
 * each case is a question and the sections of the answer as zone-file lines, read back with
 * dns-packet. The cluster is test/dns/helpers.ts `CLUSTER_YAML`.
 */
import test from 'ava';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { buildZone, zoneLines } from '../../src/dns/zone.js';
import { ask, readiness, testCluster, testResponder, testZone } from './helpers.js';

const SOA = 'cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30';
const REVERSE_SOA = 'in-addr.arpa. 30 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1700000000 7200 1800 86400 30';

interface Case {
  readonly q: string;
  readonly type: string;
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  readonly answer?: readonly string[];
  readonly authority?: readonly string[];
  readonly additional?: readonly string[];
}

/** NODATA: the name exists, the type does not. */
function nodata(q: string, type: string, soa = SOA): Case {
  return { q, type, rcode: 'NOERROR', answer: [], authority: [soa] };
}

function nxdomain(q: string, type = 'A', soa = SOA): Case {
  return { q, type, rcode: 'NXDOMAIN', answer: [], authority: [soa] };
}

const CASES: readonly Case[] = [
  // A for a cluster-IP service; NodePort services are cluster-IP services too.
  { q: 'web.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['web.default.svc.cluster.local. 30 IN A 10.96.0.20'] },
  { q: 'cart.shop.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['cart.shop.svc.cluster.local. 30 IN A 10.96.0.40'] },
  // A cluster IP is published whether or not anything is behind it.
  { q: 'quiet.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['quiet.default.svc.cluster.local. 30 IN A 10.96.0.30'] },
  // The DNS service itself, which every cluster has.
  { q: 'kube-dns.kube-system.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10'] },

  // Headless: one A per ready endpoint (db-1 is not ready).
  {
    q: 'db.default.svc.cluster.local',
    type: 'A',
    rcode: 'NOERROR',
    answer: ['db.default.svc.cluster.local. 30 IN A 10.244.1.4', 'db.default.svc.cluster.local. 30 IN A 10.244.1.6'],
  },
  // A headless service without ports still publishes its ready pods.
  {
    q: 'peers.default.svc.cluster.local',
    type: 'A',
    rcode: 'NOERROR',
    answer: ['peers.default.svc.cluster.local. 30 IN A 10.244.1.4', 'peers.default.svc.cluster.local. 30 IN A 10.244.1.6'],
  },
  // hostname.subdomain for pods that set both, behind the headless service named by subdomain.
  { q: 'db-0.db.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['db-0.db.default.svc.cluster.local. 30 IN A 10.244.1.4'] },
  { q: 'db-2.db.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['db-2.db.default.svc.cluster.local. 30 IN A 10.244.1.6'] },
  // Endpoints without a hostname are named by their dashed address, as CoreDNS names them.
  { q: '10-244-1-4.peers.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['10-244-1-4.peers.default.svc.cluster.local. 30 IN A 10.244.1.4'] },
  { q: '10-244-1-2.web.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['10-244-1-2.web.default.svc.cluster.local. 30 IN A 10.244.1.2'] },
  // A not-ready endpoint has no name, and a hostname is no dashed address.
  nxdomain('10-244-1-5.db.default.svc.cluster.local'),
  nxdomain('10-244-1-4.db.default.svc.cluster.local'),
  // A headless service with no ready endpoint owns nothing.
  nxdomain('empty.default.svc.cluster.local'),

  // SRV for named ports: the cluster IP's name as target, its address as additional.
  {
    q: '_http._tcp.web.default.svc.cluster.local',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.'],
    additional: ['web.default.svc.cluster.local. 30 IN A 10.96.0.20'],
  },
  {
    q: '_dns._udp.web.default.svc.cluster.local',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['_dns._udp.web.default.svc.cluster.local. 30 IN SRV 0 100 53 web.default.svc.cluster.local.'],
    additional: ['web.default.svc.cluster.local. 30 IN A 10.96.0.20'],
  },
  // Headless: one SRV per endpoint, its own port, its hostname as target, weight shared.
  {
    q: '_pg._tcp.db.default.svc.cluster.local',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: [
      '_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.',
      '_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5433 db-2.db.default.svc.cluster.local.',
    ],
    additional: ['db-0.db.default.svc.cluster.local. 30 IN A 10.244.1.4', 'db-2.db.default.svc.cluster.local. 30 IN A 10.244.1.6'],
  },
  // SRV for the bare service name: every port (CoreDNS's live answer).
  {
    q: 'web.default.svc.cluster.local',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['web.default.svc.cluster.local. 30 IN SRV 0 50 80 web.default.svc.cluster.local.', 'web.default.svc.cluster.local. 30 IN SRV 0 50 53 web.default.svc.cluster.local.'],
    additional: ['web.default.svc.cluster.local. 30 IN A 10.96.0.20'],
  },
  // The port names answer A too, with the service's address.
  { q: '_http._tcp.web.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['_http._tcp.web.default.svc.cluster.local. 30 IN A 10.96.0.20'] },
  // Wrong protocol, unknown port: no such name.
  nxdomain('_http._udp.web.default.svc.cluster.local', 'SRV'),
  nxdomain('_nope._tcp.web.default.svc.cluster.local', 'SRV'),
  nxdomain('_._tcp.web.default.svc.cluster.local', 'SRV'),
  // Without the underscores, the same port, as CoreDNS strips them.
  {
    q: 'http.tcp.web.default.svc.cluster.local',
    type: 'SRV',
    rcode: 'NOERROR',
    answer: ['http.tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.'],
    additional: ['web.default.svc.cluster.local. 30 IN A 10.96.0.20'],
  },
  // A port-less service has addresses but no SRV.
  nodata('peers.default.svc.cluster.local', 'SRV'),

  // PTR for service and pod addresses.
  { q: '20.0.96.10.in-addr.arpa', type: 'PTR', rcode: 'NOERROR', answer: ['20.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local.'] },
  { q: '10.0.96.10.in-addr.arpa', type: 'PTR', rcode: 'NOERROR', answer: ['10.0.96.10.in-addr.arpa. 30 IN PTR kube-dns.kube-system.svc.cluster.local.'] },
  { q: '2.1.244.10.in-addr.arpa', type: 'PTR', rcode: 'NOERROR', answer: ['2.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-2.web.default.svc.cluster.local.'] },
  // An endpoint of two services has two names, as CoreDNS gives them.
  {
    q: '4.1.244.10.in-addr.arpa',
    type: 'PTR',
    rcode: 'NOERROR',
    answer: ['4.1.244.10.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local.', '4.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-4.peers.default.svc.cluster.local.'],
  },
  // A pod no service selects (and a not-ready one) is named by its pod record.
  { q: '7.1.244.10.in-addr.arpa', type: 'PTR', rcode: 'NOERROR', answer: ['7.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-7.default.pod.cluster.local.'] },
  { q: '5.1.244.10.in-addr.arpa', type: 'PTR', rcode: 'NOERROR', answer: ['5.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-5.default.pod.cluster.local.'] },
  // Unassigned addresses inside the cluster's CIDRs: NXDOMAIN here, not a leak upstream.
  nxdomain('99.1.244.10.in-addr.arpa', 'PTR', REVERSE_SOA),
  nxdomain('99.0.96.10.in-addr.arpa', 'PTR', REVERSE_SOA),
  nxdomain('x.2.1.244.10.in-addr.arpa', 'PTR', REVERSE_SOA),
  // Above known addresses: empty non-terminals.
  nodata('1.244.10.in-addr.arpa', 'PTR', REVERSE_SOA),
  nodata('10.in-addr.arpa', 'PTR', REVERSE_SOA),
  nodata('20.0.96.10.in-addr.arpa', 'A', REVERSE_SOA),

  // Pod records, `pods insecure`: any well-formed address in an existing namespace.
  { q: '10-244-1-7.default.pod.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['10-244-1-7.default.pod.cluster.local. 30 IN A 10.244.1.7'] },
  { q: '192-0-2-1.shop.pod.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['192-0-2-1.shop.pod.cluster.local. 30 IN A 192.0.2.1'] },
  nodata('10-244-1-7.default.pod.cluster.local', 'AAAA'),
  nxdomain('10-244-1-7.nowhere.pod.cluster.local'),
  nxdomain('10-244-01-7.default.pod.cluster.local'),
  nxdomain('10-244-1-256.default.pod.cluster.local'),
  nxdomain('10-244-1.default.pod.cluster.local'),
  nxdomain('x.10-244-1-7.default.pod.cluster.local'),

  // ExternalName: a CNAME; inside the zone the chase continues (RFC 1034 §3.6.2).
  { q: 'ext.default.svc.cluster.local', type: 'CNAME', rcode: 'NOERROR', answer: ['ext.default.svc.cluster.local. 30 IN CNAME example.com.'] },
  {
    q: 'alias.default.svc.cluster.local',
    type: 'A',
    rcode: 'NOERROR',
    answer: ['alias.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.', 'web.default.svc.cluster.local. 30 IN A 10.96.0.20'],
  },
  // No upstream to finish the chase: the CNAME alone.
  { q: 'ext.default.svc.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['ext.default.svc.cluster.local. 30 IN CNAME example.com.'] },
  nxdomain('_http._tcp.ext.default.svc.cluster.local', 'SRV'),

  // NODATA: names that exist, types they lack. AAAA in an IPv4 cluster, above all.
  nodata('web.default.svc.cluster.local', 'AAAA'),
  nodata('db.default.svc.cluster.local', 'AAAA'),
  nodata('web.default.svc.cluster.local', 'TXT'),
  nodata('web.default.svc.cluster.local', 'MX'),
  nodata('db-0.db.default.svc.cluster.local', 'AAAA'),
  // Empty non-terminals are NODATA, never NXDOMAIN (RFC 8020).
  nodata('default.svc.cluster.local', 'A'),
  nodata('svc.cluster.local', 'A'),
  nodata('pod.cluster.local', 'A'),
  nodata('default.pod.cluster.local', 'A'),
  nodata('cluster.local', 'A'),
  nodata('dns.cluster.local', 'A'),

  // NXDOMAIN: names that do not exist, nor anything below them.
  nxdomain('nope.default.svc.cluster.local'),
  nxdomain('web.nowhere.svc.cluster.local'),
  nxdomain('nowhere.svc.cluster.local'),
  nxdomain('web.default.cluster.local'),
  nxdomain('foo.cluster.local'),
  // A protocol alone is read as an endpoint, and none is called `_tcp`: CoreDNS's NXDOMAIN.
  nxdomain('_tcp.web.default.svc.cluster.local', 'SRV'),
  nxdomain('_tcp.quiet.default.svc.cluster.local', 'SRV'),
  nxdomain('a.b.c.web.default.svc.cluster.local'),
  // The ndots:5 search path's misses.
  nxdomain('example.com.default.svc.cluster.local'),
  nxdomain('example.com.svc.cluster.local'),
  nxdomain('example.com.cluster.local'),

  // The zone apex and the plugin's own names.
  { q: 'cluster.local', type: 'SOA', rcode: 'NOERROR', answer: [SOA] },
  // The NS target is the DNS Service, as a real cluster's CoreDNS finds itself behind kube-dns.
  {
    q: 'cluster.local',
    type: 'NS',
    rcode: 'NOERROR',
    answer: ['cluster.local. 30 IN NS kube-dns.kube-system.svc.cluster.local.'],
    additional: ['kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10'],
  },
  { q: 'ns.dns.cluster.local', type: 'A', rcode: 'NOERROR', answer: ['ns.dns.cluster.local. 30 IN A 10.96.0.10'] },
  // CoreDNS's own TTL for the schema version, whatever the zone's.
  { q: 'dns-version.cluster.local', type: 'TXT', rcode: 'NOERROR', answer: ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'] },
];

// One responder for the whole table: its precompiled cache is shared, as in a node.
const shared = testResponder();

for (const c of CASES) {
  test(`${c.q} ${c.type} → ${c.rcode}`, (t) => {
    const reply = ask(shared, c.q, c.type);
    t.is(reply.result.action, 'answer');
    t.is(reply.rcode, c.rcode);
    t.true(reply.packet.flag_aa, 'authoritative');
    t.false(reply.packet.flag_ra, 'no recursion available, as CoreDNS answers its zone');
    t.deepEqual(reply.packet.questions, [{ name: c.q, type: c.type, class: 'IN' }]);
    t.deepEqual(reply.answer, c.answer ?? []);
    t.deepEqual(reply.authority, c.authority ?? []);
    t.deepEqual(reply.additional, c.additional ?? []);
  });
}

test('names are case-insensitive and the answer echoes the query case (0x20)', (t) => {
  const responder = testResponder();
  for (const name of ['WeB.DeFaUlT.SvC.ClUsTeR.LoCaL', 'WEB.DEFAULT.SVC.CLUSTER.LOCAL', 'web.default.svc.cluster.local']) {
    // Twice: the first answer is built, the second comes from the precompiled cache.
    for (let i = 0; i < 2; i++) {
      const reply = ask(responder, name, 'A');
      t.is(reply.packet.questions?.[0].name, name);
      t.deepEqual(reply.answer, [`${name}. 30 IN A 10.96.0.20`]);
    }
  }
  // SRV targets and their addresses end in the zone as the question spelled it, as CoreDNS
  // builds them (handler_case_test.go); the rest of the target is the zone's own.
  for (let i = 0; i < 3; i++) {
    for (const zone of ['cLuStEr.LoCaL', 'CLUSTER.local', 'cluster.local']) {
      const cased = ask(responder, `_PG._TCP.DB.default.svc.${zone}`, 'SRV');
      t.deepEqual(cased.answer, [
        `_PG._TCP.DB.default.svc.${zone}. 30 IN SRV 0 50 5432 db-0.db.default.svc.${zone}.`,
        `_PG._TCP.DB.default.svc.${zone}. 30 IN SRV 0 50 5433 db-2.db.default.svc.${zone}.`,
      ]);
      t.deepEqual(cased.additional, [`db-0.db.default.svc.${zone}. 30 IN A 10.244.1.4`, `db-2.db.default.svc.${zone}. 30 IN A 10.244.1.6`]);
      t.deepEqual(ask(responder, `_HtTp._TcP.wEb.DeFaUlT.sVc.${zone}`, 'SRV').additional, [`web.default.svc.${zone}. 30 IN A 10.96.0.20`]);
    }
  }
  const ns = ask(responder, 'Cluster.Local', 'NS');
  t.deepEqual(ns.answer, ['Cluster.Local. 30 IN NS kube-dns.kube-system.svc.Cluster.Local.']);
  t.deepEqual(ns.additional, ['kube-dns.kube-system.svc.Cluster.Local. 30 IN A 10.96.0.10']);
  const neg = ask(responder, 'NoPe.default.svc.cluster.local', 'A');
  t.is(neg.rcode, 'NXDOMAIN');
  t.is(neg.packet.questions?.[0].name, 'NoPe.default.svc.cluster.local');
});

test('the TTL is configurable and reaches every record and the SOA', (t) => {
  const responder = testResponder({}, { ttl: 5 });
  t.deepEqual(ask(responder, 'web.default.svc.cluster.local', 'A').answer, ['web.default.svc.cluster.local. 5 IN A 10.96.0.20']);
  t.deepEqual(ask(responder, 'web.default.svc.cluster.local', 'AAAA').authority, [
    'cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5',
  ]);
  // CoreDNS caps the SOA's own TTL at 300; the minimum field stays the record TTL.
  const long = testResponder({}, { ttl: 3600 });
  t.deepEqual(ask(long, 'nope.default.svc.cluster.local', 'A').authority, [
    'cluster.local. 300 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 3600',
  ]);
});

test('another cluster domain', (t) => {
  const responder = testResponder({}, { domain: 'Corp.Example.' });
  t.deepEqual(ask(responder, 'web.default.svc.corp.example', 'A').answer, ['web.default.svc.corp.example. 30 IN A 10.96.0.20']);
  t.deepEqual(ask(responder, '20.0.96.10.in-addr.arpa', 'PTR').answer, ['20.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.corp.example.']);
  t.is(ask(responder, 'web.default.svc.cluster.local', 'A').result.action, 'answer'); // REFUSED: nothing upstream
  t.is(ask(responder, 'web.default.svc.cluster.local', 'A').rcode, 'REFUSED');
});

test('precompiled answers are byte for byte what the plain path builds, whatever the ID, flags and case', (t) => {
  const plain = testResponder({ answerCache: false });
  const cached = testResponder();
  const variants = (name: string) => [name, name.toUpperCase(), name.replace(/[a-z]/g, (ch, i: number) => (i % 2 === 0 ? ch.toUpperCase() : ch))];
  let hits = 0;
  for (const c of CASES) {
    for (const [i, name] of variants(c.q).entries()) {
      for (const o of [{ id: 1 + i }, { id: 0xfff0 + i, edns: 1232 }, { id: 77, rd: false, cd: true, edns: 4096, dnssecOk: true }]) {
        const a = ask(plain, name, c.type, o);
        const b = ask(cached, name, c.type, o);
        t.deepEqual(b.bytes, a.bytes, `${name} ${c.type} ${JSON.stringify(o)}`);
      }
    }
  }
  hits = cached.status().answerCache.hits;
  t.true(hits > CASES.length * 5, `only ${hits} hits`);
  t.is(plain.status().answerCache.hits, 0);
});

test('setZone forgets precompiled answers', (t) => {
  const responder = testResponder();
  t.deepEqual(ask(responder, 'web.default.svc.cluster.local', 'A').answer, ['web.default.svc.cluster.local. 30 IN A 10.96.0.20']);
  responder.setZone(testZone({ ttl: 7 }));
  t.deepEqual(ask(responder, 'web.default.svc.cluster.local', 'A').answer, ['web.default.svc.cluster.local. 7 IN A 10.96.0.20']);
  // Readiness changes move endpoints in and out of the zone.
  responder.setZone(testZone({}, ['default/db-0']));
  t.deepEqual(ask(responder, 'db.default.svc.cluster.local', 'A').answer, ['db.default.svc.cluster.local. 30 IN A 10.244.1.4']);
  responder.setZone(testZone({}, []));
  t.is(ask(responder, 'db.default.svc.cluster.local', 'A').rcode, 'NXDOMAIN');
});

test('the zone is the same whatever order the endpoints come in', (t) => {
  const c = testCluster();
  const ready = readiness();
  const eps = computeEndpoints(c, ready);
  const inOrder = zoneLines(buildZone(c, eps, { readiness: ready }));
  const shuffled = [...eps].reverse();
  t.deepEqual(zoneLines(buildZone(c, shuffled, { readiness: ready })), inOrder);
  t.true(inOrder.includes('_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5433 db-2.db.default.svc.cluster.local.'));
});
