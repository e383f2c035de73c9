/**
 * The kernel references: a node whose service translation is kube-proxy's, in iptables or
 * in nftables layout, carrying the same flows as podwire's node.
 *
 *   <p>-c (the clients)               <p>-r (the node, kube-proxy's rules)           <p>-b (the backend)
 *   pwnfc0 10.244.1.3-18/24  ══ veth ══ pwnfrc ┐                            ┌ pwnfrb ══ veth ══ pwnfb0 10.244.1.2/24
 *   default via 10.244.1.1                      └─ pwnfbr0 10.244.1.1/24 ──┘ (cni0)
 *
 * <p> is `pwnf-<pid>-<ipt|nft>-<services>`. The router is a node as flannel builds one: the
 * pods' veths on a bridge holding the gateway address, ip_forward on, bridge-nf-call-iptables
 * on as kubeadm requires. A SYN to a cluster IP reaches the node's IP layer (its destination
 * MAC is the bridge's), is DNATed by the rules to the backend and leaves by the bridge. The
 * addresses are the model's, so they are podwire's. Neighbour and bridge FDB entries are
 * static, so that no ARP or flooding happens while measuring; ICMP redirects are off.
 *
 * The backend answers nothing: blackhole routes to the clients' addresses stop the RSTs its
 * kernel would send for SYNs to a closed port (podwire's backend pod gets the same routes),
 * so the dataplane carries exactly one packet per new flow. What arrives is counted on
 * pwnfb0; the node's connection count (its table is flushed after every trial) cross-checks
 * it: an entry per SYN the rules saw, where nft would need tens of seconds to list one
 * counter of a 10K-service kube-proxy table (it fetches every one of the services'
 * anonymous verdict maps first).
 *
 * Everything lives in namespaces made here; links are created inside them (`ip -n NS link
 * add ... peer name X netns OTHER`), so none ever exists in the root namespace.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { inNetns, run } from '../dataplane/proc.js';
import { iptablesRestoreText, nftablesText, type SyntheticCluster } from './services.js';
import { requireSystemTool } from './system.js';
import type { SynSource } from './tool.js';

export type Layout = 'iptables' | 'nftables';

/** Every namespace of this benchmark starts with this; then the pid of the run that made it. */
export const NETNS_PREFIX = 'pwnf-';

const BRIDGE = 'pwnfbr0';
const ROUTER_TO_CLIENT = 'pwnfrc';
const ROUTER_TO_BACKEND = 'pwnfrb';
const CLIENT_IF = 'pwnfc0';
export const BACKEND_IF = 'pwnfb0';
const BRIDGE_MAC = '02:6e:66:00:00:01';
const BACKEND_MAC = '02:6e:66:00:00:02';
const CLIENT_MAC = '02:6e:66:00:00:03';

const ipn = (netns: string, ...args: string[]) => run(['ip', '-n', netns, ...args]);
/** -e: a key this kernel lacks (no br_netfilter) is not an error. */
const sysctl = (netns: string, setting: string) => run(inNetns(netns, ['sysctl', '-q', '-e', '-w', setting]));

async function addNamespace(name: string): Promise<void> {
  await run(['ip', 'netns', 'add', name]);
  await ipn(name, 'link', 'set', 'lo', 'up');
  await sysctl(name, 'net.ipv6.conf.all.disable_ipv6=1');
  await sysctl(name, 'net.ipv6.conf.default.disable_ipv6=1');
}

export class KernelNode {
  readonly client: string;
  readonly router: string;
  readonly backend: string;
  /** Milliseconds iptables-restore or nft -f took to load the rules. */
  loadMs = NaN;
  /** nf_conntrack_max in the node's namespace (a namespace may not raise it above the host's). */
  conntrackLimit = NaN;

  private constructor(
    readonly layout: Layout,
    readonly cluster: SyntheticCluster,
    private readonly tool: string,
  ) {
    const p = `${NETNS_PREFIX}${process.pid}-${layout === 'iptables' ? 'ipt' : 'nft'}-${cluster.services}`;
    this.client = `${p}-c`;
    this.router = `${p}-r`;
    this.backend = `${p}-b`;
  }

  get namespaces(): string[] {
    return [this.client, this.router, this.backend];
  }

  /** The SYNs' sources: every client address, in the client namespace. */
  get sources(): SynSource[] {
    return this.cluster.clientIps.map((ip) => ({ netns: this.client, ip }));
  }

  /**
   * Builds the three namespaces and loads the rules, writing the rule text into `dir`.
   * On failure the caller's teardown removes the namespaces (their names are known before).
   */
  static async create(layout: Layout, cluster: SyntheticCluster, tool: string, dir: string): Promise<KernelNode> {
    const node = new KernelNode(layout, cluster, tool);
    await node.build();
    await node.loadRules(dir);
    node.conntrackLimit = Number((await run(inNetns(node.router, ['sysctl', '-n', 'net.netfilter.nf_conntrack_max']))).trim());
    return node;
  }

  private async build(): Promise<void> {
    const { client, router, backend, cluster } = this;
    for (const ns of this.namespaces) await addNamespace(ns);
    await sysctl(router, 'net.ipv4.ip_forward=1');
    for (const conf of ['all', 'default']) await sysctl(router, `net.ipv4.conf.${conf}.send_redirects=0`);
    await sysctl(router, 'net.bridge.bridge-nf-call-iptables=1');

    await ipn(router, 'link', 'add', BRIDGE, 'address', BRIDGE_MAC, 'type', 'bridge');
    await ipn(router, 'addr', 'add', `${cluster.gateway}/24`, 'dev', BRIDGE);
    await ipn(router, 'link', 'set', BRIDGE, 'up');
    await ipn(router, 'link', 'add', ROUTER_TO_CLIENT, 'type', 'veth', 'peer', 'name', CLIENT_IF, 'netns', client);
    await ipn(router, 'link', 'add', ROUTER_TO_BACKEND, 'type', 'veth', 'peer', 'name', BACKEND_IF, 'netns', backend);
    for (const port of [ROUTER_TO_CLIENT, ROUTER_TO_BACKEND]) await ipn(router, 'link', 'set', port, 'master', BRIDGE, 'up');

    await ipn(client, 'link', 'set', CLIENT_IF, 'address', CLIENT_MAC, 'up');
    for (const ip of cluster.clientIps) await ipn(client, 'addr', 'add', `${ip}/24`, 'dev', CLIENT_IF);
    await ipn(client, 'route', 'add', 'default', 'via', cluster.gateway);
    await ipn(client, 'neigh', 'replace', cluster.gateway, 'lladdr', BRIDGE_MAC, 'dev', CLIENT_IF, 'nud', 'permanent');

    await ipn(backend, 'link', 'set', BACKEND_IF, 'address', BACKEND_MAC, 'up');
    await ipn(backend, 'addr', 'add', `${cluster.backendIp}/24`, 'dev', BACKEND_IF);
    await ipn(backend, 'route', 'add', 'default', 'via', cluster.gateway);
    await silenceBackend(backend, cluster.clientIps);

    await ipn(router, 'neigh', 'replace', cluster.backendIp, 'lladdr', BACKEND_MAC, 'dev', BRIDGE, 'nud', 'permanent');
    await run(['bridge', '-n', router, 'fdb', 'replace', BACKEND_MAC, 'dev', ROUTER_TO_BACKEND, 'master', 'static']);
    await run(['bridge', '-n', router, 'fdb', 'replace', CLIENT_MAC, 'dev', ROUTER_TO_CLIENT, 'master', 'static']);
  }

  private async loadRules(dir: string): Promise<void> {
    const file = path.join(dir, `${this.router}.${this.layout === 'iptables' ? 'iptables' : 'nft'}`);
    writeFileSync(file, this.layout === 'iptables' ? iptablesRestoreText(this.cluster) : nftablesText(this.cluster));
    const started = performance.now();
    // Into a fresh namespace: without --noflush, which iptables-nft takes minutes over at 10K services.
    const argv = this.layout === 'iptables' ? [requireSystemTool('iptables-restore'), file] : [requireSystemTool('nft'), '-f', file];
    await run(inNetns(this.router, argv), { timeoutMs: 600_000 });
    this.loadMs = performance.now() - started;
  }

  /** Connections the node's conntrack holds: since the last flush, one per new flow. */
  async conntrackCount(): Promise<number> {
    return Number((await run(inNetns(this.router, ['sysctl', '-n', 'net.netfilter.nf_conntrack_count']))).trim());
  }

  /** Empties the node's connection table, so that every trial starts from the same state. */
  async flushConntrack(): Promise<void> {
    await run(inNetns(this.router, [this.tool, 'ctflush']));
  }
}

/**
 * Blackhole routes to the clients in the backend's namespace: the backend's kernel then
 * cannot send the RST it owes a SYN to a closed port, and the SYN is the flow's only packet.
 */
export async function silenceBackend(netns: string, clientIps: readonly string[]): Promise<void> {
  for (const ip of clientIps) await ipn(netns, 'route', 'replace', 'blackhole', `${ip}/32`);
}

/** The namespaces present whose names start with `prefix`. */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const out = await run(['ip', 'netns', 'list'], { teardown: true }).catch(() => '');
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(prefix));
}

/** Deletes the namespaces (with their links); never throws, returns what went wrong. */
export async function deleteNamespaces(names: readonly string[]): Promise<string[]> {
  const present = new Set(await namespacesWithPrefix(''));
  const problems: string[] = [];
  for (const ns of names) {
    if (!present.has(ns)) continue;
    await run(['ip', 'netns', 'del', ns], { teardown: true }).catch((err: Error) => problems.push(err.message));
  }
  return problems;
}
