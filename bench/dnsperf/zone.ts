/**
 * The benchmark's zone, written three ways from one list of names so that both servers
 * answer exactly the same questions:
 *
 * - a podwire cluster YAML: a Cluster document (one node, no pods) and N ClusterIP services
 *   `svc-<i>` in `default`, each with an explicit clusterIP spread over the service CIDR;
 * - a dnsmasq hosts file (`--addn-hosts`): `<clusterIP> svc-<i>.default.svc.cluster.local`;
 * - a dnsperf query file: `svc-<i>.default.svc.cluster.local A` for existing names and
 *   `nx-<j>.default.svc.cluster.local A` (no such service: NXDOMAIN from both servers),
 *   in a seeded shuffle so the order is the same on every run.
 *
 * Pure: text in, text out; the caller writes the files.
 */
import { formatIpv4, parseCidr } from '../../src/packet/addr.js';
import { seededRandom } from '../../src/cluster/random.js';

export const CLUSTER_DOMAIN = 'cluster.local';
export const NAMESPACE = 'default';
export const SERVICE_CIDR = '10.96.0.0/12';

export interface ZoneSpec {
  /** Services in the zone. */
  readonly services: number;
  /** Lines of the query file. */
  readonly queries: number;
  /** Share of queries for names that do not exist (0.1: 10%). */
  readonly nxShare: number;
  /** Seed of the shuffle. */
  readonly seed: number;
}

export const DEFAULT_ZONE: ZoneSpec = { services: 10_000, queries: 100_000, nxShare: 0.1, seed: 1 };

export interface ServiceEntry {
  readonly name: string;
  /** The fully qualified name, without the trailing dot. */
  readonly fqdn: string;
  readonly ip: string;
}

export function fqdnOf(service: string): string {
  return `${service}.${NAMESPACE}.svc.${CLUSTER_DOMAIN}`;
}

/**
 * The services with their addresses: spread evenly over the /12 (one every ~104
 * addresses), starting past the addresses podwire reserves (.1 kubernetes, .10 DNS).
 */
export function serviceEntries(count: number): ServiceEntry[] {
  const cidr = parseCidr(SERVICE_CIDR)!;
  const size = 2 ** (32 - cidr.prefix);
  const first = 32;
  const step = Math.floor((size - 2 * first) / count);
  if (step < 1) throw new Error(`${count} services do not fit ${SERVICE_CIDR}`);
  return Array.from({ length: count }, (_, i) => {
    const name = `svc-${i}`;
    return { name, fqdn: fqdnOf(name), ip: formatIpv4((cidr.base + first + i * step) >>> 0) };
  });
}

/** The cluster for `podwire up -f`: the Cluster document's name is the one teardown uses. */
export function clusterYaml(clusterName: string, services: readonly ServiceEntry[]): string {
  const parts = [
    `# podwire dnsperf benchmark: ${services.length} ClusterIP services, one node, no pods.
apiVersion: podwire.dev/v1alpha1
kind: Cluster
metadata:
  name: ${clusterName}
spec:
  nodes: 1
  serviceCIDR: ${SERVICE_CIDR}
  clusterDomain: ${CLUSTER_DOMAIN}
`,
  ];
  for (const s of services) {
    parts.push(`---
apiVersion: v1
kind: Service
metadata:
  name: ${s.name}
  namespace: ${NAMESPACE}
spec:
  clusterIP: ${s.ip}
  ports:
    - port: 80
`);
  }
  return parts.join('');
}

/** dnsmasq's `--addn-hosts` file: the same names and addresses. */
export function hostsFile(services: readonly ServiceEntry[]): string {
  return services.map((s) => `${s.ip} ${s.fqdn}\n`).join('');
}

export interface QuerySet {
  /** The dnsperf data file's text: `NAME TYPE` per line. */
  readonly text: string;
  /** The same queries as names, in file order. */
  readonly names: readonly string[];
  /** Which of them exist. */
  readonly existing: number;
  readonly nonexistent: number;
}

/**
 * `queries` lines: every existing name equally often (round robin over the services),
 * `nxShare` of them for distinct names that are not in the zone, shuffled.
 */
export function querySet(spec: ZoneSpec, services: readonly ServiceEntry[]): QuerySet {
  const nonexistent = Math.round(spec.queries * spec.nxShare);
  const existing = spec.queries - nonexistent;
  const names: string[] = [];
  for (let i = 0; i < existing; i++) names.push(services[i % services.length].fqdn);
  for (let j = 0; j < nonexistent; j++) names.push(fqdnOf(`nx-${j}`));
  const random = seededRandom(spec.seed);
  for (let i = names.length - 1; i > 0; i--) {
    const k = Math.floor(random() * (i + 1));
    [names[i], names[k]] = [names[k], names[i]];
  }
  return { text: names.map((n) => `${n} A\n`).join(''), names, existing, nonexistent };
}
