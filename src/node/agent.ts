/**
 * The node agent: one simulated Kubernetes node, in one process. It plays kubelet and CNI
 * (creates each pod's namespace, plumbs its TAP in as eth0, writes resolv.conf, runs the
 * containers' processes and watches their readiness) and hands the frames to the pipeline,
 * which plays cni0, the node's router and flannel.1.
 */
import { type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:net';
import { formatIpv4, formatMac, parseIpv4 } from '../packet/addr.js';
import { VXLAN_PORT } from '../packet/vxlan.js';
import type { Cluster, Container, Node, Pod } from '../cluster/model.js';
import { renderResolvConf } from '../cluster/resolv.js';
import { dnsRelayAddress, podMac } from '../cluster/ipam.js';
import { compile as compilePolicy } from '../kube/policy.js';
import { LiveServiceTable } from '../kube/service-table.js';
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import { FileAgentState, type AgentState } from './agent-state.js';
import { announcedAddresses, serviceFingerprints } from './services.js';
import { healthChecks } from '../kube/health-check.js';
import { DnsServer, nameserversOf } from './dns-server.js';
import { tracePacket, type TraceResult, type TraceSource } from './trace.js';
import { kubeProxyRules, type ServiceRuleInputs } from '../kube/kube-proxy.js';
import { renderIptablesSave, type IptablesBackend } from '../kube/iptables-save.js';
import { ruleSetToJson, type RuleSetJson } from '../kube/rules-json.js';
import { openOverlaySocket, openTapPort } from '../io/open.js';
import type { DatagramPort, Port } from '../port/port.js';
import { VtepSocket } from '../overlay/vtep.js';
import { NodeCapture } from './capture.js';
import { serveControl } from './control.js';
import { NODE_OP_ARGS, type ChunkSink, type ExecArgs, type ExecCommand, type ObserveChunk, type ObserveQuery, type ObserveSummary, type TraceArgs } from './control-protocol.js';
import { ConntrackListing } from './conntrack-listing.js';
import { FlowContexts } from './flow-context.js';
import { FlowFeed } from './flow-feed.js';
import {
  createNamespace,
  destroyNamespace,
  listeningTcpPorts,
  plumbPodInterface,
  spawnInNamespace,
  writeResolvConf,
} from './netns.js';
import { dnsRelayNamespaceName, podNamespaceName, StatePaths, tapName } from './names.js';
import { outsideNamespaceName, plugUplink } from './outside.js';
import { Pipeline, type PipelineOptions } from '../datapath/pipeline.js';
import { seededRandom } from '../cluster/random.js';
import { KubeProxySyncs } from '../metrics/kube-proxy.js';
import { nodeRegistry, type PortMetrics } from '../metrics/node-metrics.js';
import { ringFlowsProcessed, type FlowsProcessedSource } from '../metrics/hubble.js';
import { serveMetrics, type MetricsServer } from './metrics-server.js';
import { LiveCaptures } from './live-captures.js';
import { containersSummary, PodRuntime, type ContainerPlan, type ContainerState } from './pod-runtime.js';
import { planContainer, podFiles, type ExecOverride } from './pod-sandbox.js';
import { IngressConfigWriter, isIngressControllerPod, podIngressConfig } from './ingress-configs.js';
import { preparePodDirectory, sandboxUnavailable, SANDBOX_BINARY } from '../sandbox/launcher.js';

/** The source port of a traced packet when none is given: one from Linux's ephemeral range. */
const DEFAULT_TRACE_SPORT = 40000;

/**
 * The dataplane's random source and hash seeds: from `up --seed` when it was given (each
 * node its own stream, the same every run), else unpredictable as the kernel's.
 */
function dataplaneOptions(cluster: Cluster, node: Node): PipelineOptions {
  const seed = cluster.settings.dataplaneSeed;
  const flows = { capacity: cluster.settings.flowBufferCapacity };
  const ct = cluster.settings.conntrack;
  const conntrack = {
    conntrackMax: cluster.settings.conntrackMax,
    conntrackAccounting: ct.accounting,
    conntrackTimeouts: { tcpEstablished: ct.tcpEstablishedTimeoutSeconds, tcpCloseWait: ct.tcpCloseWaitTimeoutSeconds, udp: ct.udpTimeoutSeconds, udpStream: ct.udpStreamTimeoutSeconds },
  };
  if (seed === undefined) return { ...conntrack, seed: randomInt(2 ** 31), flows };
  const mixed = (seed ^ Math.imul(node.index, 0x9e3779b1)) >>> 0;
  return { ...conntrack, seed: mixed & 0x7fffffff, random: seededRandom(mixed), flows };
}

/** The uplink's TAP takes the last sequence number of the node's TAP names. */
const UPLINK_SEQ = 0xffff;
/** And the DNS relay's the one before. */
const RELAY_SEQ = 0xfffe;

/** The underlay path MTU podwire simulates: a 1500-byte network between nodes. */
export const UNDERLAY_MTU = 1500;

export interface AgentOptions {
  paths: StatePaths;
  /** Write a pcapng of every pod interface and the overlay into this directory. */
  pcapDir?: string;
  /** The host's resolv.conf, for dnsPolicy Default and the DNS upstreams. */
  hostResolvConf?: string;
  /** Upstream resolvers for names outside the cluster domain; default: the host's. */
  dnsUpstreams?: string[];
  log?: (line: string) => void;
  /** The wall clock (ms since the epoch) that lease renewals are stamped and judged with. */
  wallClock?: () => number;
  /** The store this node follows; default the one-machine directory store of `paths`. */
  state?: AgentState;
  /** The VTEP's UDP port on the underlay address (default 4789). */
  underlayPort?: number;
  /** The network namespace of this node's outside world (default the cluster's). */
  outsideNamespace?: string;
  /** The underlay's MTU (default 1500): inner packets up to 50 bytes less cross whole. */
  underlayMtu?: number;
  /** The loopback port /metrics is served on (default 0: one the kernel picks). */
  metricsPort?: number;
}

interface RunningPod {
  pod: Pod;
  netns: string;
  slot: number;
  backend: string;
  /** Its pause and containers; undefined until the pod's network is plumbed. */
  runtime: PodRuntime | undefined;
  /** Volumes that could not be made when the pod started, by name. */
  volumeProblems: ReadonlyMap<string, string>;
  ready: boolean;
  /** Being deleted: out of the endpoints, its processes asked to stop. */
  terminating: boolean;
  /** When its declared ports were last seen listening (ms, monotonic); 0: not yet. */
  portsSeenAt: number;
}

/**
 * A ready pod's ports are looked at again this often, as the kubelet's default probe
 * period; until it is ready, every readiness tick (250 ms) looks. Reading a namespace's
 * socket table costs a walk of the kernel's whole TCP hash, so not more often than that;
 * a container that exits makes its pod unready at the next tick regardless.
 */
const READY_PORTS_RECHECK_MS = 10_000;

/** How long a deleted pod's processes get between SIGTERM and SIGKILL (Kubernetes gives 30 s). */
const TERMINATION_GRACE_MS = 5000;

export interface PodStatus {
  namespace: string;
  name: string;
  ip: string;
  mac: string;
  node: string;
  netns: string;
  ready: boolean;
  /** Whether the pod has its own UTS, IPC, PID and mount namespaces and its containers' users (podwire-sandbox). */
  sandboxed: boolean;
  containers: {
    name: string;
    running: boolean;
    state: ContainerState;
    /** Why it is waiting or terminated, as the kubelet says it (CrashLoopBackOff, Error, ...). */
    reason?: string;
    exitCode: number | null;
    restartCount: number;
    builtin?: string;
  }[];
}

export interface NodeStatus {
  name: string;
  pid: number;
  underlay: string;
  podCIDR: string;
  pods: PodStatus[];
  counters: Record<string, number>;
  drops: Record<string, number>;
  overlay: {
    backend: string;
    /** UDP segmentation offload on the overlay socket, and its counts when on. */
    udpOffload: boolean;
    glued?: { sent: number; received: number };
    peers: string[];
    routes: string[];
    neighbours: string[];
    fdb: string[];
  };
  tapBackend: string;
  capture?: { path: string; records: number; dropped: number };
  dns?: ReturnType<DnsServer['status']>;
  conntrack: { entries: number; max: number; stats: Record<string, number> };
  /** The flow ring `podwire observe` reads: events recorded, held, and held back by the rate limits. */
  flows?: { recorded: number; capacity: number; suppressed: Readonly<Record<string, number>> };
  /** This node's judgement of the others: which nodes' pods it counts in its Services. */
  lifecycle: { gracePeriodSeconds: number; readyNodes: string[] };
  /** Which store this node follows and how it stands with it. */
  store: Record<string, unknown>;
  /** Where Prometheus scrapes this node. */
  metrics?: { url: string; port: number };
}

export class NodeAgent {
  readonly pipeline: Pipeline;
  private readonly pods: RunningPod[] = [];
  private overlaySocket: DatagramPort | undefined;
  private uplinkPort: Port | undefined;
  private overlayBackend = 'none';
  private capture: NodeCapture | undefined;
  private capturePath: string | undefined;
  private control: Server | undefined;
  private readinessTimer: NodeJS.Timeout | undefined;
  private reaperTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly log: (line: string) => void;
  private readonly state: AgentState;
  /** The VTEP's UDP port on the underlay address. */
  private readonly underlayPort: number;
  private stopWatching: (() => void) | undefined;
  /** Serialises reconciliations: one change is applied completely before the next. */
  private reconciling: Promise<void> = Promise.resolve();
  private nextTapSeq = 0;
  private publishedReadiness = '';
  private publishedContainers = '';
  private services: LiveServiceTable | undefined;
  private serviceFingerprints = new Map<string, string>();
  endpoints: ServicePortEndpoints[] = [];
  private dns: DnsServer | undefined;
  private dnsRelay: { netns: string; slot: number; process: ChildProcess } | undefined;
  private healthServer: ChildProcess | undefined;
  private metrics: MetricsServer | undefined;
  private liveCaptures: LiveCaptures | undefined;
  /** kube-proxy's timings of this node's service syncs, for /metrics. */
  readonly kubeProxySyncs = new KubeProxySyncs();
  /** The flow ring's counts, for hubble_flows_processed_total. */
  flows: FlowsProcessedSource | undefined;
  /** Why pods cannot have podwire-sandbox here (then they get their network namespace only), or undefined. */
  private readonly noSandbox = sandboxUnavailable();
  private readonly sandboxBinary = this.noSandbox === undefined ? SANDBOX_BINARY : undefined;
  private readonly flowContexts: FlowContexts;
  /** Where the pipeline's clock reads 0, in ms since the epoch (flow times and capture records). */
  private readonly clockZeroEpochMs: number;
  private flowFeed: FlowFeed | undefined;
  private ingressConfigs: IngressConfigWriter | undefined;

  private constructor(
    public cluster: Cluster,
    readonly node: Node,
    private readonly options: AgentOptions,
  ) {
    const t0 = performance.now();
    this.pipeline = new Pipeline(
      {
        name: node.name,
        subnet: node.podCIDR,
        clusterCidr: cluster.settings.podCIDR,
        gatewayIp: node.gateway,
        gatewayMac: node.gatewayMac,
        vtepMac: node.vtepMac,
        vni: cluster.settings.vni,
        underlayMtu: options.underlayMtu ?? UNDERLAY_MTU,
        dnsIp: cluster.settings.dnsIP,
      },
      // performance.now() is a double in ms with sub-µs digits: no BigInt per reading.
      () => Math.round((performance.now() - t0) * 1e6),
      dataplaneOptions(cluster, node),
    );
    // The clock's zero on the wall clock, for the times of flow events.
    this.clockZeroEpochMs = performance.timeOrigin + t0;
    this.flowContexts = new FlowContexts(node.name, this.clockZeroEpochMs);
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.underlayPort = options.underlayPort ?? VXLAN_PORT;
    this.state = options.state ?? new FileAgentState(options.paths.dir, node.name, () => this.cluster, this.log, options.wallClock);
    this.pipeline.onInternalError = (err) => this.log(`pipeline error (frames are dropped and counted as internal-error): ${(err as Error).stack ?? String(err)}`);
  }

  static async start(cluster: Cluster, nodeName: string, options: AgentOptions): Promise<NodeAgent> {
    const node = cluster.nodes.find((n) => n.name === nodeName);
    if (node === undefined) throw new Error(`node ${nodeName} is not in the cluster`);
    const agent = new NodeAgent(cluster, node, options);
    try {
      await agent.bringUp();
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  private async bringUp(): Promise<void> {
    const { cluster, node } = this;
    if (this.noSandbox !== undefined) this.log(`pods get their network namespace only, not their own hostname, processes, mounts or users: ${this.noSandbox}`);
    // The store first: the rest of the bring-up (many pods) may take longer than the grace.
    this.state.begin();
    this.publishedReadiness = JSON.stringify([]);
    this.pipeline.peers.applySnapshot(this.state.peers(cluster, node));
    const socket = await openOverlaySocket(node.underlay, this.underlayPort, { udpOffload: cluster.settings.overlayOffload });
    this.overlaySocket = socket;
    this.overlayBackend = socket.backend;
    // On loopback (64 KiB MTU) super-frames cross whole; a real underlay (1500) gets them
    // segmented before encapsulation.
    this.pipeline.attachOverlay(new VtepSocket(socket, isLoopback(node.underlay)));

    await this.plugUplink();
    await this.startDns();
    this.applyClusterState();

    const mine = cluster.pods.filter((p) => p.node === node.name);
    for (const pod of mine) await this.addPod(pod);

    const captureNode = { name: node.name, underlayAddr: node.underlay, underlayPort: this.underlayPort, vni: cluster.settings.vni, uplink: node.externalIP };
    if (this.options.pcapDir !== undefined) {
      await fs.mkdir(this.options.pcapDir, { recursive: true });
      this.capturePath = `${this.options.pcapDir}/${node.name}.pcapng`;
      this.capture = new NodeCapture(
        this.capturePath,
        captureNode,
        this.pods.map((p) => ({ slot: p.slot, name: `${p.pod.namespace}/${p.pod.name}`, ip: p.pod.ip })),
        this.pipeline.peers.all(),
      );
      this.pipeline.tap = this.capture;
    }
    const liveCaptures = new LiveCaptures(this.pipeline, captureNode, this.capture, this.clockZeroEpochMs);
    this.liveCaptures = liveCaptures;

    const conntrackListing = new ConntrackListing(this.pipeline.conntrack, () => this.pipeline.clock());
    const flows = this.pipeline.flows;
    if (flows !== undefined) {
      this.flowFeed = new FlowFeed(flows, () => this.flowContext(), () => this.pipeline.clock());
      this.flows = ringFlowsProcessed(flows.ring);
    }
    this.control = await serveControl(this.options.paths.nodeSocket(node.name), NODE_OP_ARGS, {
      status: () => this.status(),
      rules: ({ format, backend }) => this.rules(format, backend),
      conntrack: (query, out) => conntrackListing.stream(query, out),
      trace: (args) => this.trace(args),
      capture: (args, out) => liveCaptures.stream(args, out),
      exec: (args) => this.execCommand(args),
      observe: (query, out) => this.observe(query, out),
    });
    this.metrics = await serveMetrics(nodeRegistry(this.metricSources()), this.options.metricsPort ?? 0, this.log);
    this.state.publishMetricsPort(this.metrics.port);
    this.readinessTimer = setInterval(() => void this.checkReadiness(), 250);
    // The conntrack reaper walks a slice of the table each tick: all 262,144 slots in ~6 s.
    this.reaperTimer = setInterval(() => this.pipeline.reap(4096), 100);
    await this.checkReadiness();
    this.stopWatching = this.state.watch(() => {
      this.kubeProxySyncs.changed(performance.now());
      this.reconciling = this.reconciling.then(() => this.reconcile()).catch((err: Error) => this.log(`reconcile: ${err.message}`));
    });
  }

  /**
   * Brings this node's pods in line with the desired state: starts pods scheduled here that
   * are not running, terminates running pods that are no longer wanted.
   */
  private async reconcile(): Promise<void> {
    if (this.stopping) return;
    const desired = this.state.desired();
    if (desired === undefined) return;
    this.cluster = desired;
    this.pipeline.peers.applySnapshot(this.state.peers(desired, this.node));
    const wanted = new Map(desired.pods.filter((p) => p.node === this.node.name).map((p) => [p.uid, p]));
    for (const running of this.pods) {
      if (!wanted.has(running.pod.uid) && !running.terminating) void this.terminatePod(running);
    }
    const have = new Set(this.pods.map((r) => r.pod.uid));
    for (const [uid, pod] of wanted) {
      if (have.has(uid)) continue;
      this.log(`adding pod ${pod.namespace}/${pod.name}`);
      await this.addPod(pod).catch((err: Error) => this.log(`adding ${pod.namespace}/${pod.name}: ${err.message}`));
    }
    this.capture?.addPods(this.pods.map((p) => ({ slot: p.slot, name: `${p.pod.namespace}/${p.pod.name}`, ip: p.pod.ip })));
    this.applyClusterState();
  }

  /**
   * Recompiles what follows from the cluster's objects and every node's pod readiness:
   * NetworkPolicy, the service table (only the services that changed), the LoadBalancer
   * addresses this node announces. A failed compile keeps the previous tables: packets
   * never see a half-built one.
   */
  private applyClusterState(): void {
    const syncStarted = performance.now();
    const cluster = this.cluster;
    try {
      this.pipeline.policy = compilePolicy(cluster, { node: this.node.name });
    } catch (err) {
      this.log(`NetworkPolicy compile failed, keeping the previous tables: ${(err as Error).message}`);
    }
    const readiness = this.state.readiness();
    // This node knows its own pods' readiness first-hand, before the store echoes it.
    for (const r of this.pods) readiness.set(`${r.pod.namespace}/${r.pod.name}`, r.ready && !r.terminating);
    const endpoints = this.state.endpoints(cluster, readiness);
    this.endpoints = endpoints;
    const inputs = { cluster, endpoints, nodeName: this.node.name, nodeAddress: this.node.externalIP };
    try {
      const fingerprints = serviceFingerprints(cluster, endpoints);
      if (this.services === undefined) {
        this.services = new LiveServiceTable(inputs);
      } else {
        const changed = [...new Set([...fingerprints.keys(), ...this.serviceFingerprints.keys()])].filter(
          (key) => fingerprints.get(key) !== this.serviceFingerprints.get(key),
        );
        if (changed.length > 0) {
          const result = this.services.update(inputs, changed);
          this.log(`services: ${result.kind} update of ${changed.length}${result.reason !== undefined ? ` (${result.reason})` : ''}`);
        }
      }
      this.serviceFingerprints = fingerprints;
      this.pipeline.services = this.services;
    } catch (err) {
      this.log(`service table build failed, keeping the previous table: ${(err as Error).message}`);
    }
    this.pipeline.announce(announcedAddresses(cluster, endpoints, this.node.name));
    this.refreshIngressConfigs();
    try {
      this.publishHealthChecks(endpoints);
    } catch (err) {
      this.log(`health checks not updated: ${(err as Error).message}`);
    }
    try {
      this.dns?.setCluster(cluster, endpoints, readiness);
    } catch (err) {
      this.log(`DNS zone build failed, keeping the previous zone: ${(err as Error).message}`);
    }
    this.kubeProxySyncs.synced(syncStarted, performance.now(), Date.now());
  }

  /** Ingress controller pods learn Ingresses, Services, Endpoints and Secrets from a file the node rewrites. */
  private refreshIngressConfigs(): void {
    for (const r of this.pods) {
      if (r.terminating || r.runtime === undefined || !isIngressControllerPod(r.pod)) continue;
      try {
        const text = podIngressConfig(r.pod, this.cluster, this.endpoints);
        if (text !== undefined) (this.ingressConfigs ??= new IngressConfigWriter(this.log)).update(this.ingressConfigDir(r.pod), text);
      } catch (err) {
        this.log(`ingress configuration of ${r.pod.namespace}/${r.pod.name} failed, keeping the previous one: ${(err as Error).message}`);
      }
    }
  }

  private ingressConfigDir(pod: Pod): string {
    return `${this.options.paths.podDir(pod.namespace, pod.name)}/ingress`;
  }

  /** What /metrics reads: the dataplane's counters and the ports' statistics, at scrape time. */
  private metricSources(): Parameters<typeof nodeRegistry>[0] {
    const pipeline = this.pipeline;
    return {
      counters: pipeline.counters,
      dropCounts: () => pipeline.dropCounts(),
      dropTransports: pipeline.dropTransports,
      conntrack: pipeline.conntrack,
      conntrackMax: this.cluster.settings.conntrackMax,
      ports: () => this.metricPorts(),
      dns: () => (this.dns === undefined ? undefined : { counters: this.dns.responder.counters, forwarder: this.dns.responder.forwarder, upstreams: this.dns.upstreamAddresses.map((a) => `${a}:53`) }),
      kubeProxy: this.kubeProxySyncs,
      flows: () => this.flows,
    };
  }

  private metricPorts(): PortMetrics[] {
    const ports: PortMetrics[] = this.pipeline.pods().map((p) => ({ device: p.port.name, kind: 'pod', pod: p.name, stats: p.port.stats }));
    if (this.uplinkPort !== undefined) ports.push({ device: this.uplinkPort.name, kind: 'uplink', stats: this.uplinkPort.stats });
    if (this.overlaySocket !== undefined) ports.push({ device: this.overlaySocket.name, kind: 'vtep', stats: this.overlaySocket.stats });
    return ports;
  }

  /** Takes the pod out of service, stops its processes (gracefully), then removes it. */
  private async terminatePod(running: RunningPod): Promise<void> {
    const { pod } = running;
    this.log(`terminating pod ${pod.namespace}/${pod.name}`);
    running.terminating = true;
    running.ready = false;
    this.publishReadiness();
    this.signalContainers(running, 'SIGTERM');
    const deadline = Date.now() + TERMINATION_GRACE_MS;
    while (Date.now() < deadline && running.runtime?.anyRunning() === true) {
      await new Promise((r) => setTimeout(r, 100));
    }
    running.runtime?.end();
    if (running.slot >= 0) this.pipeline.removePod(running.slot);
    await destroyNamespace(running.netns).catch((err: Error) => this.log(`removing ${running.netns}: ${err.message}`));
    this.ingressConfigs?.forget(this.ingressConfigDir(pod));
    await this.removePodDirectory(pod);
    const at = this.pods.indexOf(running);
    if (at >= 0) this.pods.splice(at, 1);
    this.publishReadiness();
  }

  private async removePodDirectory(pod: Pod): Promise<void> {
    const dir = this.options.paths.podDir(pod.namespace, pod.name);
    await fs.rm(dir, { recursive: true, force: true }).catch((err: Error) => this.log(`removing ${dir}: ${err.message}`));
  }

  private signalContainers(running: RunningPod, signal: NodeJS.Signals): void {
    running.runtime?.beginStopping();
    running.runtime?.signal(signal);
  }

  /** Writes this node's pod readiness to the store when it changed. */
  private publishReadiness(): void {
    const map = new Map(this.pods.map((r) => [`${r.pod.namespace}/${r.pod.name}`, r.ready && !r.terminating]));
    const containers = new Map(this.pods.map((r) => [`${r.pod.namespace}/${r.pod.name}`, containersSummary(r.runtime?.containers ?? [])]));
    const readiness = JSON.stringify([...map]);
    const restarts = JSON.stringify([...containers]);
    if (readiness === this.publishedReadiness && restarts === this.publishedContainers) return;
    const readinessChanged = readiness !== this.publishedReadiness;
    this.publishedReadiness = readiness;
    this.publishedContainers = restarts;
    this.state.publishReadiness(map, containers);
    // Restarts alone change no Service, policy or DNS record.
    if (readinessChanged) this.applyClusterState();
  }

  /** The embedded cluster DNS: answers pods in the dataplane, tools on a loopback port. */
  private async startDns(): Promise<void> {
    const host = this.options.hostResolvConf ?? readHostResolvConf();
    const dns = new DnsServer(this.cluster, {
      upstreams: this.options.dnsUpstreams ?? (this.cluster.settings.dnsUpstreams.length > 0 ? [...this.cluster.settings.dnsUpstreams] : nameserversOf(host)),
      clients: [this.cluster.settings.podCIDR],
      toPod: (addr, port, message, length) => this.pipeline.deliverDnsAnswer(addr, port, message, length),
      log: this.log,
    });
    await dns.start();
    this.dns = dns;
    this.pipeline.dns = dns;
    await this.startDnsRelay(dns);
    this.startHealthServer();
  }

  /**
   * kube-proxy's service health server, in the DNS relay's namespace (the node's own place on
   * the pod network): the pipeline sends TCP for the node's addresses on each health check
   * node port there, and applyClusterState tells it the checks.
   */
  private startHealthServer(): void {
    if (this.dnsRelay === undefined) return;
    const script = fileURLToPath(new URL('./workloads/health-server.js', import.meta.url));
    const child = spawnInNamespace(this.dnsRelay.netns, [process.execPath, script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: true });
    child.on('error', (err) => this.log(`health server: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (!this.stopping) this.log(`health server exited (${signal ?? `code ${code}`}): health check node ports go unanswered`);
    });
    this.healthServer = child;
    this.publishHealthChecks(this.endpoints);
  }

  private publishHealthChecks(endpoints: readonly ServicePortEndpoints[]): void {
    const server = this.healthServer;
    if (server === undefined || this.dnsRelay === undefined) return;
    const checks = healthChecks(endpoints, this.node.name);
    this.pipeline.serveHealthChecks(checks.map((c) => c.port));
    if (server.connected) server.send(checks);
  }

  /**
   * DNS over TCP for pods: a namespace on the pod network at the node's relay address,
   * where a small relay accepts TCP on port 53 and splices it to the node's responder. The
   * pipeline DNATs pods' TCP connections to the cluster DNS address there, as kube-proxy
   * sends them to a kube-dns pod.
   */
  private async startDnsRelay(dns: DnsServer): Promise<void> {
    const { cluster, node } = this;
    const socketPath = this.options.paths.nodeDnsSocket(node.name);
    await dns.serveUnix(socketPath);
    const netns = dnsRelayNamespaceName(cluster.settings.name, node.name);
    await destroyNamespace(netns);
    await createNamespace(netns);
    const ip = dnsRelayAddress(node.podCIDR);
    const mac = podMac(ip);
    const tap = await openTapPort(tapName(cluster.settings.clusterIndex, node.index, RELAY_SEQ));
    try {
      await plumbPodInterface({ tapName: tap.name, namespace: netns, mac: formatMac(mac), address: formatIpv4(ip), prefix: node.podCIDR.prefix, gateway: formatIpv4(node.gateway), mtu: cluster.settings.mtu });
    } catch (err) {
      tap.close();
      throw err;
    }
    const slot = this.pipeline.addPod(`kube-system/dns-${node.name}`, ip, mac, tap);
    const script = fileURLToPath(new URL('./workloads/dns-relay.js', import.meta.url));
    const child = spawnInNamespace(netns, [process.execPath, script, socketPath], { stdio: 'ignore', detached: true });
    this.dnsRelay = { netns, slot, process: child };
    this.pipeline.relayAddress = ip;
  }

  /** The node's NIC on the outside network: a TAP plugged into the ext namespace's bridge. */
  private async plugUplink(): Promise<void> {
    const { cluster, node } = this;
    const tap = await openTapPort(tapName(cluster.settings.clusterIndex, node.index, UPLINK_SEQ));
    try {
      await plugUplink(this.options.outsideNamespace ?? outsideNamespaceName(cluster.settings.name), tap.name, node.index);
    } catch (err) {
      tap.close();
      throw err;
    }
    this.uplinkPort = tap;
    this.pipeline.attachUplink(tap, {
      addr: node.externalIP,
      mac: node.externalMac,
      network: cluster.settings.externalCIDR,
      gateway: cluster.settings.externalGateway,
    });
  }

  private async addPod(pod: Pod): Promise<void> {
    const { cluster, node } = this;
    const seq = this.nextTapSeq++;
    const netns = podNamespaceName(cluster.settings.name, pod.namespace, pod.name);
    await destroyNamespace(netns); // a leftover of a crashed run must not block this one
    await createNamespace(netns);
    const running: RunningPod = { pod, netns, slot: -1, backend: '', runtime: undefined, volumeProblems: new Map(), ready: false, terminating: false, portsSeenAt: 0 };
    this.pods.push(running);
    // Offload: the pod's kernel hands over TSO super-frames and partial checksums, which
    // cross podwire whole (one pipeline pass per 64 KiB instead of per 1450 bytes).
    const tap = await openTapPort(tapName(cluster.settings.clusterIndex, node.index, seq), { offload: true });
    running.backend = tap.backend;
    try {
      await plumbPodInterface({
        tapName: tap.name,
        namespace: netns,
        mac: formatMac(pod.mac),
        address: formatIpv4(pod.ip),
        prefix: node.podCIDR.prefix,
        gateway: formatIpv4(node.gateway),
        mtu: cluster.settings.mtu,
      });
    } catch (err) {
      tap.close();
      throw err;
    }
    running.slot = this.pipeline.addPod(`${pod.namespace}/${pod.name}`, pod.ip, pod.mac, tap);
    const resolvConf = renderResolvConf(pod, { dnsIP: cluster.settings.dnsIP, clusterDomain: cluster.settings.clusterDomain }, this.options.hostResolvConf ?? readHostResolvConf());
    // For `ip netns exec` (what tools outside podwire use); the sandbox binds the pod's own copy.
    await writeResolvConf(netns, resolvConf);
    await fs.mkdir(this.options.paths.logDir, { recursive: true });
    const podDir = this.options.paths.podDir(pod.namespace, pod.name);
    const files = podFiles(pod, cluster, resolvConf);
    await preparePodDirectory(podDir, files.files);
    running.volumeProblems = files.volumeProblems;
    const ingressConfig = podIngressConfig(pod, cluster, this.endpoints);
    if (ingressConfig !== undefined) await (this.ingressConfigs ??= new IngressConfigWriter(this.log)).writeNow(this.ingressConfigDir(pod), ingressConfig);
    const runtime = new PodRuntime(pod, {
      netnsPath: `/run/netns/${netns}`,
      hostname: files.files.hostname,
      sandboxBinary: this.sandboxBinary,
      plan: (container, initPid) => this.planContainer(running, container, initPid),
      logPath: (container) => this.options.paths.containerLog(pod.namespace, pod.name, container),
      log: this.log,
    });
    running.runtime = runtime;
    await runtime.start();
  }

  /** What a container of a pod on this node runs, in what environment and as whom (also for `podwire exec`). */
  private planContainer(running: RunningPod, container: Container, initPid: number, override?: ExecOverride): ContainerPlan {
    const { pod } = running;
    return planContainer({
      pod,
      container,
      cluster: this.cluster,
      node: this.node,
      netns: running.netns,
      volumeProblems: running.volumeProblems,
      ...(isIngressControllerPod(pod) ? { ingressConfigDir: this.ingressConfigDir(pod) } : {}),
      sandbox:
        this.sandboxBinary === undefined
          ? undefined
          : { binary: this.sandboxBinary, initPid, podDir: this.options.paths.podDir(pod.namespace, pod.name), hide: [dirname(this.options.paths.dir)] },
      ...(override !== undefined ? { override } : {}),
    });
  }

  /** The command line that runs `argv` inside a running pod as `podwire exec` does. */
  execCommand(args: ExecArgs): ExecCommand {
    const running = this.pods.find((r) => r.pod.namespace === args.namespace && r.pod.name === args.pod);
    if (running === undefined || running.runtime === undefined) throw new Error(`pod ${args.namespace}/${args.pod} is not running on ${this.node.name}`);
    const containers = running.pod.containers;
    const container = args.container === undefined ? containers[0] : containers.find((c) => c.name === args.container);
    if (container === undefined) throw new Error(`container ${args.container} is not in pod ${args.namespace}/${args.pod} (containers: ${containers.map((c) => c.name).join(', ')})`);
    if (running.runtime.sandboxed && running.runtime.initPid === 0) throw new Error(`pod ${args.namespace}/${args.pod} has no running sandbox yet`);
    const plan = this.planContainer(running, container, running.runtime.initPid, { argv: args.argv, ...(args.user !== undefined ? { user: args.user } : {}) });
    if ('problem' in plan) throw new Error(plan.problem);
    return { argv: [...plan.argv], env: { ...plan.env } };
  }

  private async checkReadiness(): Promise<void> {
    for (const running of this.pods) {
      if (running.slot < 0) continue;
      const runtime = running.runtime;
      if (runtime === undefined) continue;
      const alive = runtime.containers.every((c) => c.running);
      const wanted = runtime.containers.flatMap((c) => c.workload?.readyPorts ?? []);
      let listening = true;
      const recent = running.ready && performance.now() - running.portsSeenAt < READY_PORTS_RECHECK_MS;
      if (alive && wanted.length > 0 && !recent) {
        try {
          const open = await listeningTcpPorts(running.netns, runtime.pids());
          listening = wanted.every((p) => open.has(p));
          if (listening) running.portsSeenAt = performance.now();
        } catch {
          listening = false;
        }
      }
      running.ready = alive && listening && !running.terminating;
    }
    this.publishReadiness();
  }

  status(): NodeStatus {
    const peers = this.pipeline.peers;
    const counters: Record<string, number> = { ...this.pipeline.counters };
    const glued = this.overlaySocket?.glued;
    return {
      name: this.node.name,
      pid: process.pid,
      underlay: `${formatIpv4(this.node.underlay)}:${this.underlayPort}`,
      podCIDR: `${formatIpv4(this.node.podCIDR.base)}/${this.node.podCIDR.prefix}`,
      pods: this.pods.map((r) => ({
        namespace: r.pod.namespace,
        name: r.pod.name,
        ip: formatIpv4(r.pod.ip),
        mac: formatMac(r.pod.mac),
        node: this.node.name,
        netns: r.netns,
        ready: r.ready,
        sandboxed: r.runtime?.sandboxed ?? false,
        containers: (r.runtime?.containers ?? []).map((c) => ({
          name: c.name,
          running: c.running,
          state: c.state,
          ...(c.reason !== undefined ? { reason: c.reason } : {}),
          exitCode: c.exitCode,
          restartCount: c.restartCount,
          ...(c.workload?.builtin !== undefined ? { builtin: c.workload.builtin } : {}),
        })),
      })),
      counters,
      drops: this.pipeline.dropCounts(),
      overlay: {
        backend: this.overlayBackend,
        udpOffload: glued !== undefined,
        ...(glued !== undefined ? { glued } : {}),
        peers: peers.all().map((p) => p.node),
        routes: peers.routes(),
        neighbours: peers.neighbours(),
        fdb: peers.fdb(),
      },
      tapBackend: this.pods[0]?.backend ?? 'none',
      ...(this.dns !== undefined ? { dns: this.dns.status() } : {}),
      conntrack: { entries: this.pipeline.conntrack.size, max: this.cluster.settings.conntrackMax, stats: { ...this.pipeline.conntrack.stats } },
      ...(this.flowFeed !== undefined ? { flows: this.flowFeed.stats() } : {}),
      lifecycle: { gracePeriodSeconds: this.cluster.settings.nodeGracePeriodSeconds, readyNodes: this.state.readyNodes() },
      store: this.state.describe(),
      ...(this.metrics !== undefined ? { metrics: { url: this.metrics.url, port: this.metrics.port } } : {}),
      ...(this.capture !== undefined && this.capturePath !== undefined
        ? { capture: { path: this.capturePath, records: this.capture.stats.records, dropped: this.capture.stats.dropped } }
        : {}),
    };
  }

  /** `podwire observe`: the node's flows, filtered, and as they happen when following. */
  observe(query: ObserveQuery, out: ChunkSink<ObserveChunk>): Promise<ObserveSummary> {
    if (this.flowFeed === undefined) throw new Error(`node ${this.node.name} records no flow events`);
    return this.flowFeed.stream(query, out);
  }

  /** Names and times for flows: the view and the pods on their slots now. */
  private flowContext() {
    const slots = new Map(this.pods.filter((r) => r.slot >= 0).map((r) => [`${r.pod.namespace}/${r.pod.name}`, r.slot]));
    return this.flowContexts.get(this.cluster, slots, this.pipeline.policy);
  }

  private ruleInputs(): ServiceRuleInputs {
    return { cluster: this.cluster, endpoints: this.endpoints, nodeName: this.node.name, nodeAddress: this.node.externalIP };
  }

  /** The node's rules as kube-proxy would write them: iptables-save text (of either backend) or JSON. */
  rules(format: 'iptables' | 'json', backend: IptablesBackend = 'nft'): string | RuleSetJson {
    const ruleSet = kubeProxyRules(this.ruleInputs());
    return format === 'json' ? ruleSetToJson(ruleSet) : renderIptablesSave(ruleSet, { backend });
  }

  trace(args: TraceArgs): TraceResult {
    return tracePacket(
      { cluster: this.cluster, node: this.node, inputs: this.ruleInputs(), pipeline: this.pipeline },
      { from: this.traceSource(args), dst: args.dst, dport: args.dport, sport: args.sport ?? DEFAULT_TRACE_SPORT, proto: args.proto },
    );
  }

  /** `--from POD`, `--from outside:IP` or `--from node:NAME` (with `--src IP`, default that node's overlay address). */
  private traceSource(args: TraceArgs): TraceSource {
    const from = args.from;
    if (from.startsWith('outside:')) {
      const addr = parseIpv4(from.slice('outside:'.length));
      if (addr === undefined) throw new Error(`trace --from ${from}: not an IPv4 address`);
      return { kind: 'outside', addr };
    }
    if (from.startsWith('node:')) {
      const name = from.slice('node:'.length);
      const node = this.cluster.nodes.find((n) => n.name === name);
      if (node === undefined) throw new Error(`trace --from ${from}: no node ${name} (nodes: ${this.cluster.nodes.map((n) => n.name).join(', ')})`);
      if (node.name === this.node.name) throw new Error(`trace --from ${from}: that is this node; trace from one of its pods instead`);
      return { kind: 'node', node, addr: args.src ?? node.podCIDR.base };
    }
    const namespace = args.namespace;
    const pod = this.cluster.pods.find((p) => p.namespace === namespace && p.name === from);
    if (pod === undefined) throw new Error(`pod ${namespace}/${from} not found`);
    if (pod.node !== this.node.name) throw new Error(`pod ${namespace}/${pod.name} runs on ${pod.node}, not ${this.node.name}: trace it there`);
    return { kind: 'pod', pod };
  }

  /** Ends every container, removes every pod namespace and closes every port; idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.readinessTimer !== undefined) clearInterval(this.readinessTimer);
    if (this.reaperTimer !== undefined) clearInterval(this.reaperTimer);
    this.stopWatching?.();
    this.liveCaptures?.stop();
    this.flowFeed?.close();
    this.control?.close();
    await this.metrics?.close();
    await this.state.end();
    for (const running of this.pods) this.signalContainers(running, 'SIGTERM');
    for (const running of this.pods) {
      running.runtime?.end();
      if (running.slot >= 0) this.pipeline.removePod(running.slot);
      await destroyNamespace(running.netns).catch((err: Error) => this.log(`removing ${running.netns}: ${err.message}`));
      await this.removePodDirectory(running.pod);
    }
    const healthPid = this.healthServer?.pid;
    if (healthPid !== undefined) {
      try {
        process.kill(-healthPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    if (this.dnsRelay !== undefined) {
      const pid = this.dnsRelay.process.pid;
      if (pid !== undefined) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      this.pipeline.removePod(this.dnsRelay.slot);
      await destroyNamespace(this.dnsRelay.netns).catch(() => undefined);
    }
    this.overlaySocket?.close();
    this.uplinkPort?.close();
    this.dns?.close();
    this.capture?.close();
    await fs.rm(this.options.paths.nodeSocket(this.node.name), { force: true });
  }

}

function readHostResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

function isLoopback(addr: number): boolean {
  return addr >>> 24 === 127;
}
