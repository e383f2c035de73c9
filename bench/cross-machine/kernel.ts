/**
 * The kernel baseline of "podwire vs the kernel across machines": on two machines of an
 * Underlay (test/helpers/machines.ts), what flannel's vxlan backend builds in a node's
 * kernel, so that the same iperf3 and ping runs can be compared with podwire's overlay
 * over the same underlay.
 *
 *   machine mN (netns <prefix>-mN), eth0 = its underlay address
 *     flannel.1  vxlan VNI 1, dstport 4789, local <underlay address>, nolearning,
 *                MTU underlay-50, address 10.244.N.0/32
 *     cni0       bridge, 10.244.N.1/24
 *       └ vethpod ══ eth0 in <prefix>-kpN, 10.244.N.2/24, default via 10.244.N.1
 *
 * Per peer, flannel's three entries: a route to its /24 via its VTEP address onlink on
 * flannel.1, a permanent neighbour entry giving that address the peer's VTEP MAC, and an
 * FDB entry sending that MAC to the peer's underlay address. ip_forward=1 is set in the
 * machines only, and put back on destroy().
 */
import type { Machine, Underlay } from '../../test/helpers/machines.js';
import { runCommand } from '../../test/helpers/machines.js';

export const VNI = 1;
export const VXLAN_PORT = 4789;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;
const VTEP = 'flannel.1';
const BRIDGE = 'cni0';
const HOST_VETH = 'vethpod';
const POD_IF = 'eth0';

export interface KernelPod {
  readonly netns: string;
  readonly ip: string;
}

export interface KernelOverlay {
  readonly pods: KernelPod[];
  /** Removes the pods, flannel.1 and cni0, and puts ip_forward back. Idempotent. */
  destroy(): Promise<void>;
}

/** What one machine of the overlay is: its pod subnet 10.244.N.0/24 and the names built there. */
export interface KernelNodePlan {
  readonly subnet: number;
  readonly podCidr: string;
  /** flannel.1's address: the subnet's network address, as flannel gives it. */
  readonly vtepAddress: string;
  readonly gateway: string;
  readonly podIp: string;
  readonly podNetns: string;
}

/** Machine mK of the underlay gets the pod subnet 10.244.K.0/24 (K = its place in `machines`, from 1). */
export function kernelNodePlan(prefix: string, subnet: number): KernelNodePlan {
  if (!Number.isInteger(subnet) || subnet < 1 || subnet > 254) throw new RangeError(`pod subnet ${subnet}: 1 to 254`);
  const net = `10.244.${subnet}`;
  return { subnet, podCidr: `${net}.0/24`, vtepAddress: `${net}.0`, gateway: `${net}.1`, podIp: `${net}.2`, podNetns: `${prefix}-kp${subnet}` };
}

/** The commands, run in the machine, of flannel's three entries towards one peer. */
export function peerEntries(peer: KernelNodePlan, peerVtepMac: string, peerUnderlay: string): string[][] {
  return [
    ['ip', 'route', 'add', peer.podCidr, 'via', peer.vtepAddress, 'dev', VTEP, 'onlink'],
    ['ip', 'neigh', 'add', peer.vtepAddress, 'lladdr', peerVtepMac, 'dev', VTEP, 'nud', 'permanent'],
    ['bridge', 'fdb', 'append', peerVtepMac, 'dev', VTEP, 'dst', peerUnderlay, 'self', 'permanent'],
  ];
}

const missing = (err: unknown) => /Cannot find device|does not exist|No such file or directory|Cannot open network namespace/.test(String((err as Error).message));

export async function buildKernelOverlay(underlay: Underlay, machines: [Machine, Machine]): Promise<KernelOverlay> {
  const podMtu = String(underlay.mtu - VXLAN_OVERHEAD);
  const nodes = machines.map((m) => {
    const index = underlay.machines.indexOf(m);
    if (index < 0) throw new Error(`${m.name} is not a machine of underlay ${underlay.prefix}`);
    return { m, plan: kernelNodePlan(underlay.prefix, index + 1) };
  });
  if (nodes[0].m === nodes[1].m) throw new Error(`the kernel overlay needs two different machines, got ${nodes[0].m.name} twice`);
  /** ip_forward as it was before, per machine, for destroy() to put back. */
  const forwardWas = new Map<Machine, string>();
  const podNamespaces: string[] = [];
  let destroying: Promise<void> | undefined;

  const destroy = () =>
    (destroying ??= (async () => {
      const errors: unknown[] = [];
      const attempt = (p: Promise<unknown>) => p.catch((err) => (missing(err) ? undefined : errors.push(err)));
      // Deleting a pod namespace deletes its veth, and with it the host side on cni0.
      for (const ns of podNamespaces) await attempt(runCommand(['ip', 'netns', 'delete', ns]));
      for (const { m } of nodes) {
        await attempt(m.exec(['ip', 'link', 'delete', VTEP]));
        await attempt(m.exec(['ip', 'link', 'delete', BRIDGE]));
        const was = forwardWas.get(m);
        if (was !== undefined) await attempt(m.exec(['sysctl', '-q', '-w', `net.ipv4.ip_forward=${was}`]));
      }
      if (errors.length > 0) throw new AggregateError(errors, `kernel overlay on ${underlay.prefix}: teardown incomplete`);
    })());

  try {
    const macs: string[] = [];
    for (const { m, plan } of nodes) {
      forwardWas.set(m, (await m.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).trim());
      await m.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);

      await m.exec(['ip', 'link', 'add', VTEP, 'mtu', podMtu, 'type', 'vxlan', 'id', String(VNI), 'local', m.address, 'dev', m.iface, 'dstport', String(VXLAN_PORT), 'nolearning']);
      await m.exec(['ip', 'addr', 'add', `${plan.vtepAddress}/32`, 'dev', VTEP]);
      await m.exec(['ip', 'link', 'set', VTEP, 'up']);
      const [vtep] = JSON.parse(await m.exec(['ip', '-j', 'link', 'show', 'dev', VTEP])) as { address: string }[];
      macs.push(vtep.address);

      await m.exec(['ip', 'link', 'add', BRIDGE, 'mtu', podMtu, 'type', 'bridge']);
      await m.exec(['ip', 'addr', 'add', `${plan.gateway}/24`, 'dev', BRIDGE]);
      await m.exec(['ip', 'link', 'set', BRIDGE, 'up']);

      await runCommand(['ip', 'netns', 'add', plan.podNetns]);
      podNamespaces.push(plan.podNetns);
      const pod = (...args: string[]) => runCommand(['ip', '-n', plan.podNetns, ...args]);
      await pod('link', 'set', 'lo', 'up');
      // Made in the machine with its peer put straight into the pod: never in the root namespace.
      await m.exec(['ip', 'link', 'add', HOST_VETH, 'mtu', podMtu, 'type', 'veth', 'peer', 'name', POD_IF, 'mtu', podMtu, 'netns', plan.podNetns]);
      await m.exec(['ip', 'link', 'set', HOST_VETH, 'master', BRIDGE, 'up']);
      await pod('addr', 'add', `${plan.podIp}/24`, 'dev', POD_IF);
      await pod('link', 'set', POD_IF, 'up');
      await pod('route', 'add', 'default', 'via', plan.gateway, 'dev', POD_IF);
    }
    for (const [self, peer] of [
      [0, 1],
      [1, 0],
    ]) {
      for (const argv of peerEntries(nodes[peer].plan, macs[peer], nodes[peer].m.address)) await nodes[self].m.exec(argv);
    }
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }
  return { pods: nodes.map(({ plan }) => ({ netns: plan.podNetns, ip: plan.podIp })), destroy };
}
