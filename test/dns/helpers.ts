/**
 * DNS test helpers: a cluster from YAML turned into a zone and a responder, queries built
 * and answers read back with dns-packet (an independent codec: it checks our encoder as well
 * as our answers), records printed as zone-file lines.
 */
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import type { Cluster } from '../../src/cluster/model.js';
import { parseIpv4 } from '../../src/packet/addr.js';
import { buildZone, type ZoneOptions } from '../../src/dns/zone.js';
import { Responder, type ResponderOptions } from '../../src/dns/responder.js';
import { clientPolicy } from '../../src/dns/policy.js';
import type { DnsResult, QueryContext } from '../../src/dns/result.js';
import { cluster } from '../cluster/helpers.js';

/**
 * The cluster every table test asks about. Pods are pinned to node-1 so their addresses are
 * 10.244.1.2, .3, ... in declaration order; services ask for their cluster IPs.
 */
export const CLUSTER_YAML = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec: {nodeName: node-1, hostname: db-0, subdomain: db, containers: [{name: c, image: postgres, ports: [{name: pg, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, labels: {app: db}}
spec: {nodeName: node-1, containers: [{name: c, image: postgres, ports: [{name: pg, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-2, labels: {app: db}}
spec: {nodeName: node-1, hostname: db-2, subdomain: db, containers: [{name: c, image: postgres, ports: [{name: pg, containerPort: 5433}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: lonely}
spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: shop, labels: {app: cart}}
spec: {nodeName: node-1, containers: [{name: c, image: cart}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: 5353}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{name: pg, port: 5432, targetPort: pg}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec: {clusterIP: None, selector: {app: nothing}, ports: [{port: 1}]}
---
apiVersion: v1
kind: Service
metadata: {name: peers}
spec: {clusterIP: None, selector: {app: db}}
---
apiVersion: v1
kind: Service
metadata: {name: quiet}
spec: {clusterIP: 10.96.0.30, selector: {app: nothing}, ports: [{port: 7000}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.com}
---
apiVersion: v1
kind: Service
metadata: {name: alias}
spec: {type: ExternalName, externalName: web.default.svc.cluster.local.}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec: {type: NodePort, clusterIP: 10.96.0.40, selector: {app: cart}, ports: [{port: 80, nodePort: 30080}]}
`;

/** web-1, web-2 (10.244.1.2, .3), db-0 (.4), db-2 (.6), cart (.8) are ready; db-1 (.5) is not. */
export const READY = ['default/web-1', 'default/web-2', 'default/db-0', 'default/db-2', 'shop/cart'];

export function testCluster(): Cluster {
  return cluster(CLUSTER_YAML);
}

export function readiness(ready: readonly string[] = READY): Map<string, boolean> {
  return new Map(ready.map((k) => [k, true]));
}

export function testZone(options: ZoneOptions = {}, ready: readonly string[] = READY, c = testCluster()) {
  const r = readiness(ready);
  return buildZone(c, computeEndpoints(c, r), { serial: 1700000000, readiness: r, ...options });
}

export function testResponder(options: Partial<ResponderOptions> = {}, zoneOptions: ZoneOptions = {}): Responder {
  const c = testCluster();
  return new Responder({ zone: testZone(zoneOptions, READY, c), policy: clientPolicy([c.settings.podCIDR]), ...options });
}

export const POD_CLIENT = parseIpv4('10.244.1.2')!;

export interface QueryOptions {
  id?: number;
  /** EDNS0 with this UDP size; undefined: no OPT record. */
  edns?: number;
  ednsVersion?: number;
  dnssecOk?: boolean;
  rd?: boolean;
  cd?: boolean;
  qclass?: string;
}

/** A query as a stub resolver writes it, encoded by dns-packet. */
export function makeQuery(name: string, type: string, o: QueryOptions = {}): Buffer {
  const flags = (o.rd === false ? 0 : dnsPacket.RECURSION_DESIRED) | (o.cd === true ? dnsPacket.CHECKING_DISABLED : 0);
  const packet: Packet = {
    type: 'query',
    id: o.id ?? 0x1234,
    flags,
    questions: [{ name, type, class: o.qclass ?? 'IN' } as Question],
    additionals:
      o.edns === undefined
        ? []
        : [{ type: 'OPT', name: '.', udpPayloadSize: o.edns, ednsVersion: o.ednsVersion ?? 0, flags: o.dnssecOk === true ? dnsPacket.DNSSEC_OK : 0, options: [] } as unknown as Answer],
  };
  return dnsPacket.encode(packet);
}

export function ctx(o: Partial<QueryContext> = {}): QueryContext {
  return { clientAddr: POD_CLIENT, clientPort: 40000, transport: 'udp', now: 1_000_000, ...o };
}

/** A decoded response, with its sections as zone-file lines. */
export interface Reply {
  readonly result: DnsResult;
  readonly bytes: Buffer;
  readonly packet: Packet & { rcode?: string; flag_aa?: boolean; flag_tc?: boolean; flag_rd?: boolean; flag_ra?: boolean; flag_cd?: boolean };
  readonly rcode: string;
  readonly answer: string[];
  readonly authority: string[];
  readonly additional: string[];
  /** The OPT record, when there is one. */
  readonly opt?: { udpPayloadSize: number; extendedRcode: number; ednsVersion: number; flags: number };
}

/** Sends a query through `respond` and reads the answer back. */
export function ask(responder: Responder, name: string, type: string, o: QueryOptions & { ctx?: Partial<QueryContext>; out?: number } = {}): Reply {
  const query = makeQuery(name, type, o);
  const out = Buffer.alloc(o.out ?? 65535);
  const result = responder.respond(query, 0, query.length, ctx(o.ctx), out);
  return readReply(result, out);
}

/** Decodes `out[0, result.length)` (throws when the answer is not a well-formed message: a test failure). */
export function readReply(result: DnsResult, out: Uint8Array, offset = 0): Reply {
  const bytes = Buffer.from(out.subarray(offset, offset + result.length));
  if (result.action !== 'answer') {
    const copy = Object.assign(Object.create(Object.getPrototypeOf(result)) as DnsResult, result);
    return { result: copy, bytes, packet: { type: 'query' } as Reply['packet'], rcode: '', answer: [], authority: [], additional: [] };
  }
  const packet = dnsPacket.decode(bytes) as Reply['packet'];
  const section = (list: readonly Answer[] | undefined) => (list ?? []).filter((a) => a.type !== 'OPT').map(zoneLine);
  const opt = (packet.additionals ?? []).find((a) => a.type === 'OPT') as Reply['opt'] | undefined;
  const extended = opt === undefined ? 0 : opt.extendedRcode << 4;
  const rcodeValue = extended | (((packet.flags ?? 0) & 0xf) >>> 0);
  return {
    result: Object.assign(Object.create(Object.getPrototypeOf(result)) as DnsResult, result),
    bytes,
    packet,
    rcode: rcodeText(rcodeValue),
    answer: section(packet.answers),
    authority: section(packet.authorities),
    additional: section(packet.additionals),
    ...(opt !== undefined && { opt }),
  };
}

const RCODES: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 16: 'BADVERS' };

export function rcodeText(rcode: number): string {
  return RCODES[rcode] ?? `RCODE${rcode}`;
}

/** `web.default.svc.cluster.local. 30 IN A 10.96.0.20` */
export function zoneLine(a: Answer): string {
  const rr = a as Answer & { ttl?: number; data?: unknown; class?: string };
  const owner = rr.name === '.' ? '.' : `${rr.name}.`;
  return `${owner} ${rr.ttl ?? 0} ${rr.class ?? 'IN'} ${rr.type} ${rdataText(rr.type, rr.data)}`;
}

function fqdn(name: string): string {
  return name === '.' || name.endsWith('.') ? name : `${name}.`;
}

function rdataText(type: string, data: unknown): string {
  switch (type) {
    case 'A':
    case 'AAAA':
      return String(data);
    case 'CNAME':
    case 'PTR':
    case 'NS':
      return fqdn(String(data));
    case 'SRV': {
      const d = data as { priority: number; weight: number; port: number; target: string };
      return `${d.priority} ${d.weight} ${d.port} ${fqdn(d.target)}`;
    }
    case 'SOA': {
      const d = data as { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };
      return `${fqdn(d.mname)} ${fqdn(d.rname)} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    }
    case 'MX': {
      const d = data as { preference: number; exchange: string };
      return `${d.preference} ${fqdn(d.exchange)}`;
    }
    case 'TXT':
      return (data as Buffer[]).map((b) => `"${b.toString()}"`).join(' ');
    default:
      return Buffer.isBuffer(data) ? `\\# ${data.length} ${data.toString('hex')}` : JSON.stringify(data);
  }
}

