/**
 * podwire's DNS responder on the benchmark's zone, outside a node: for the in-process loop
 * (what answering costs without any socket) and for the prototype servers
 * (proto-server.ts). Built as the node builds it (src/node/dns-server.ts): the cluster
 * loaded from the same YAML, the zone from the cluster and its endpoints, the client
 * policy of the pod CIDR (loopback is always allowed), the answer cache at its default
 * size unless asked otherwise. No forwarder: every name asked is in the cluster domain,
 * so the node's forwarder is never reached either.
 *
 * The queries are encoded as dnsperf sends them: RD set, no EDNS (dnsperf adds OPT only
 * with -e), a fresh ID each.
 */
import { readFileSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import { formatDiagnostic } from '../../src/cluster/diagnostics.js';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { loadCluster } from '../../src/cluster/load.js';
import { seededRandom } from '../../src/cluster/random.js';
import { buildZone, clientPolicy, Responder, type QueryContext } from '../../src/dns/index.js';

export interface ResponderSetup {
  /** Answer cache slots; the node's default (4096) when undefined. */
  readonly cacheSlots?: number;
}

/** The responder a node of the cluster in `yamlFile` would answer with. */
export function responderFor(yamlFile: string, setup: ResponderSetup = {}): Responder {
  const loaded = loadCluster([{ path: yamlFile, text: readFileSync(yamlFile, 'utf8') }], { random: seededRandom(1) });
  if (!loaded.ok) throw new Error(`${yamlFile}: ${loaded.errors.slice(0, 5).map(formatDiagnostic).join('; ')}`);
  const { cluster } = loaded;
  const endpoints = computeEndpoints(cluster, new Map());
  const zone = buildZone(cluster, endpoints, { ttl: 30 });
  return new Responder({
    zone,
    policy: clientPolicy([cluster.settings.podCIDR]),
    ...(setup.cacheSlots !== undefined && { answerCache: { slots: setup.cacheSlots } }),
  });
}

/** A query as dnsperf sends it. */
export function encodeQuery(name: string, id: number): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] });
}

export const LOOPBACK_CLIENT: QueryContext = { clientAddr: 0x7f000001, clientPort: 40000, transport: 'udp', now: 0 };
