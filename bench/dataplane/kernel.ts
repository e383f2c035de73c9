/**
 * The kernel reference: the same cluster as podwire's, built from the kernel's own devices
 * the way flannel's vxlan backend builds a node.
 *
 *   pwkbn1 (node-1)                                         pwkbn2 (node-2)
 *   pwkbbr0 10.245.1.1/24 (cni0)                            pwkbbr0 10.245.2.1/24
 *     ├ pwkbh-srv1 ══ pwkbeth0 in pwkbp-srv1 10.245.1.2       └ pwkbh-srv2 ══ pwkbeth0 in pwkbp-srv2 10.245.2.2
 *     └ pwkbh-cli1 ══ pwkbeth0 in pwkbp-cli1 10.245.1.3
 *   pwkbvx (flannel.1) vni 1, dstport 4789, MTU 1450        pwkbvx
 *   pwkbu1 192.168.250.1/24  ════════ veth, MTU 1500 ═══════ pwkbu2 192.168.250.2/24
 *
 * Each node routes the other's pod /24 via the other's VTEP address, onlink on the vxlan
 * device, with a permanent neighbour entry for it and an FDB entry sending its MAC to the
 * other node's underlay address: exactly flannel's three entries per peer. Pods' veths have
 * MTU 1450, like podwire's pods. Offloads are the kernel's defaults (TSO/GSO/GRO on), as
 * on a real node.
 *
 * Everything lives in namespaces made here, all named pwkb*; nothing touches the root
 * namespace. Links are created directly inside their namespaces (`ip -n NS link add ...
 * peer name X netns OTHER`), so none ever exists in the root namespace, even briefly.
 */
import { inNetns, run } from './proc.js';
import type { PodRef, PodRole, Topology } from './topology.js';

export const KERNEL_NODE_NAMESPACES = ['pwkbn1', 'pwkbn2'] as const;
const UNDERLAY_NET = '192.168.250';
const POD_NET = '10.245';
const POD_MTU = 1450;
const UNDERLAY_MTU = 1500;
const VNI = 1;
const VXLAN_PORT = 4789;
const POD_IF = 'pwkbeth0';

interface KernelPodSpec {
  readonly role: PodRole;
  readonly node: 1 | 2;
  readonly host: number;
}

const PODS: readonly KernelPodSpec[] = [
  { role: 'srv1', node: 1, host: 2 },
  { role: 'cli1', node: 1, host: 3 },
  { role: 'srv2', node: 2, host: 2 },
];

const podNetns = (role: PodRole) => `pwkbp-${role}`;
const nodeNetns = (node: 1 | 2) => KERNEL_NODE_NAMESPACES[node - 1];
/** Locally administered, fixed, so the peers' neighbour and FDB entries can be written up front. */
const vtepMac = (node: 1 | 2) => `0e:77:00:00:fa:0${node}`;

/** Every namespace this topology may create: what teardown (and stale cleanup) removes. */
export const KERNEL_NAMESPACES: readonly string[] = [...KERNEL_NODE_NAMESPACES, ...PODS.map((p) => podNetns(p.role))];

const ipn = (netns: string, ...args: string[]) => run(['ip', '-n', netns, ...args]);
/** -e: a key this kernel lacks (no br_netfilter) is not an error. */
const sysctl = (netns: string, setting: string) => run(inNetns(netns, ['sysctl', '-q', '-e', '-w', setting]));

async function addNamespace(name: string): Promise<void> {
  await run(['ip', 'netns', 'add', name]);
  await ipn(name, 'link', 'set', 'lo', 'up');
  // No IPv6 chatter (router solicitations, MLD) in the measurements; podwire drops IPv6 anyway.
  await sysctl(name, 'net.ipv6.conf.all.disable_ipv6=1');
  await sysctl(name, 'net.ipv6.conf.default.disable_ipv6=1');
}

async function buildNode(node: 1 | 2): Promise<void> {
  const ns = nodeNetns(node);
  const other: 1 | 2 = node === 1 ? 2 : 1;
  await sysctl(ns, 'net.ipv4.ip_forward=1');
  // With br_netfilter loaded, bridged frames would also cross (empty) iptables chains:
  // measured here at half the UDP packet rate. podwire has no netfilter stage yet, so the
  // reference leaves it out too; turn it on when podwire's conntrack and NAT are compared.
  for (const family of ['iptables', 'ip6tables', 'arptables']) await sysctl(ns, `net.bridge.bridge-nf-call-${family}=0`);
  await ipn(ns, 'addr', 'add', `${UNDERLAY_NET}.${node}/24`, 'dev', `pwkbu${node}`);
  await ipn(ns, 'link', 'set', `pwkbu${node}`, 'mtu', String(UNDERLAY_MTU), 'up');

  await ipn(ns, 'link', 'add', 'pwkbbr0', 'type', 'bridge');
  await ipn(ns, 'addr', 'add', `${POD_NET}.${node}.1/24`, 'dev', 'pwkbbr0');
  await ipn(ns, 'link', 'set', 'pwkbbr0', 'up');

  await ipn(ns, 'link', 'add', 'pwkbvx', 'address', vtepMac(node), 'mtu', String(POD_MTU), 'type', 'vxlan', 'id', String(VNI),
    'dstport', String(VXLAN_PORT), 'local', `${UNDERLAY_NET}.${node}`, 'dev', `pwkbu${node}`, 'nolearning');
  await ipn(ns, 'addr', 'add', `${POD_NET}.${node}.0/32`, 'dev', 'pwkbvx');
  await ipn(ns, 'link', 'set', 'pwkbvx', 'up');
  // flannel's three entries for the peer: route, neighbour, FDB.
  const peerVtep = `${POD_NET}.${other}.0`;
  await ipn(ns, 'route', 'add', `${POD_NET}.${other}.0/24`, 'via', peerVtep, 'dev', 'pwkbvx', 'onlink');
  await ipn(ns, 'neigh', 'add', peerVtep, 'lladdr', vtepMac(other), 'dev', 'pwkbvx', 'nud', 'permanent');
  await run(['bridge', '-n', ns, 'fdb', 'append', vtepMac(other), 'dev', 'pwkbvx', 'dst', `${UNDERLAY_NET}.${other}`]);
}

async function buildPod(spec: KernelPodSpec): Promise<PodRef> {
  const ns = podNetns(spec.role);
  const node = nodeNetns(spec.node);
  const hostIf = `pwkbh-${spec.role}`;
  const ip = `${POD_NET}.${spec.node}.${spec.host}`;
  await addNamespace(ns);
  await ipn(node, 'link', 'add', hostIf, 'mtu', String(POD_MTU), 'type', 'veth', 'peer', 'name', POD_IF, 'mtu', String(POD_MTU), 'netns', ns);
  await ipn(node, 'link', 'set', hostIf, 'master', 'pwkbbr0', 'up');
  await ipn(ns, 'addr', 'add', `${ip}/24`, 'dev', POD_IF);
  await ipn(ns, 'link', 'set', POD_IF, 'up');
  await ipn(ns, 'route', 'add', 'default', 'via', `${POD_NET}.${spec.node}.1`);
  return { role: spec.role, netns: ns, ip, ifName: POD_IF };
}

export class KernelTopology implements Topology {
  readonly label = 'kernel';

  private constructor(readonly pods: Readonly<Record<PodRole, PodRef>>) {}

  /** Builds the whole topology; on any failure removes what it made and rethrows. */
  static async create(): Promise<KernelTopology> {
    try {
      for (const node of [1, 2] as const) await addNamespace(nodeNetns(node));
      await ipn(nodeNetns(1), 'link', 'add', 'pwkbu1', 'type', 'veth', 'peer', 'name', 'pwkbu2', 'netns', nodeNetns(2));
      for (const node of [1, 2] as const) await buildNode(node);
      const pods = {} as Record<PodRole, PodRef>;
      for (const spec of PODS) pods[spec.role] = await buildPod(spec);
      return new KernelTopology(pods);
    } catch (err) {
      await destroyKernelTopology();
      throw err;
    }
  }

  async snapshot(): Promise<undefined> {
    return undefined;
  }
}

/**
 * Deletes every namespace of the topology that exists (the links inside go with them).
 * Never throws: it runs in teardown, where the first error must not hide the rest.
 */
export async function destroyKernelTopology(): Promise<string[]> {
  const present = new Set((await run(['ip', 'netns', 'list'], { teardown: true }).catch(() => '')).split('\n').map((l) => l.split(' ')[0]));
  const problems: string[] = [];
  for (const ns of KERNEL_NAMESPACES) {
    if (!present.has(ns)) continue;
    await run(['ip', 'netns', 'del', ns], { teardown: true }).catch((err: Error) => problems.push(err.message));
  }
  return problems;
}
