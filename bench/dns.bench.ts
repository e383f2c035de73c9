/**
 * Cluster DNS: answers built from query frames on the hot path (precompiled and plain), the
 * zone build for 10,000 services, and podwire's view-based codec against dns-packet.
 *
 * The zone is synthetic but shaped like a real cluster: 100 namespaces, 10,000 services
 * (5% ExternalName, 15% headless, the rest cluster IPs with two named ports), three ready
 * endpoints each, and a pod per endpoint. The queries rotate through 16 letter-case and ID
 * variants, so the precompiled path really patches case and ID on every answer.
 */
import { DEFAULT_CONNTRACK } from '../src/cluster/decode-conntrack.js';
import dnsPacket, { type Packet } from 'dns-packet';
import type { ServicePortEndpoints } from '../src/cluster/endpoints.js';
import type { Cluster, Namespace, Pod, Service, ServicePort } from '../src/cluster/model.js';
import { parseCidr, parseIpv4 } from '../src/packet/addr.js';
import { clientPolicy } from '../src/dns/policy.js';
import { parseQuery, Query, QueryProblem } from '../src/dns/query.js';
import { readRecords, RecordScratch } from '../src/dns/records.js';
import { Responder } from '../src/dns/responder.js';
import type { QueryContext } from '../src/dns/result.js';
import { MessageWriter, Section } from '../src/dns/writer.js';
import { writeA } from '../src/dns/builders.js';
import { buildZone, type Zone } from '../src/dns/zone.js';
import { atLeast, atMost, runMicroSuite, sink, type BenchModule, type Figure } from './harness.js';

const SERVICES = 10_000;
const NAMESPACES = 100;
const BATCH = 1024;
const VARIANTS = 16;

const ORIGIN = { file: 'dns.bench.ts', document: 1, line: 1 };

/** The synthetic cluster and the endpoints the controller would compute for it. */
export function syntheticCluster(services: number): { cluster: Cluster; endpoints: ServicePortEndpoints[] } {
  const podCIDR = parseCidr('10.244.0.0/16')!;
  const serviceCIDR = parseCidr('10.96.0.0/12')!;
  const namespaces: Namespace[] = Array.from({ length: NAMESPACES }, (_, i) => ({ name: i === 0 ? 'default' : `ns-${i}`, labels: {} }));
  const pods: Pod[] = [];
  const list: Service[] = [];
  const endpoints: ServicePortEndpoints[] = [];
  let podIndex = 0;
  for (let i = 0; i < services; i++) {
    const namespace = namespaces[i % NAMESPACES].name;
    const name = `svc-${i}`;
    const kind = i % 20 === 0 ? 'ExternalName' : i % 20 <= 3 ? 'Headless' : 'ClusterIP';
    const ports: ServicePort[] =
      kind === 'ExternalName'
        ? []
        : [
            { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 },
            { name: 'metrics', protocol: 'TCP', port: 9090, targetPort: 9090 },
          ];
    const service: Service = {
      namespace,
      name,
      labels: {},
      type: kind === 'ExternalName' ? 'ExternalName' : 'ClusterIP',
      headless: kind === 'Headless',
      ...(kind === 'ClusterIP' && { clusterIP: (serviceCIDR.base + 100 + i) >>> 0 }),
      ports,
      ...(kind !== 'ExternalName' && { selector: { app: name } }),
      sessionAffinity: 'None',
      ...(kind === 'ExternalName' && { externalName: `svc-${i}.example.com` }),
      origin: ORIGIN,
    };
    list.push(service);
    if (kind === 'ExternalName') continue;
    const ips: number[] = [];
    for (let e = 0; e < 3; e++, podIndex++) {
      const ip = (podCIDR.base + 256 + podIndex + 2 * Math.floor(podIndex / 250)) >>> 0;
      ips.push(ip);
      pods.push({
        namespace,
        name: `${name}-${e}`,
        uid: `${i}-${e}`,
        labels: { app: name },
        node: 'node-1',
        ip,
        mac: 0,
        nodeSelector: {},
        dnsPolicy: 'ClusterFirst',
        containers: [],
        hostAliases: [],
        enableServiceLinks: true,
        restartPolicy: 'Always',
        serviceAccountName: 'default',
        volumes: [],
        securityContext: { supplementalGroups: [] },
        ...(kind === 'Headless' && { hostname: `${name}-${e}`, subdomain: name }),
        origin: ORIGIN,
      });
    }
    for (const servicePort of ports) {
      endpoints.push({
        service,
        servicePort,
        protocol: 'TCP',
        endpoints: ips.map((ip, e) => ({ ip, port: servicePort.targetPort as number, ready: true, node: 'node-1', pod: `${namespace}/${name}-${e}`, ...(kind === 'Headless' && { hostname: `${name}-${e}` }) })),
      });
    }
  }
  const cluster: Cluster = {
    settings: {
      name: 'bench',
      clusterIndex: 1,
      podCIDR,
      serviceCIDR,
      clusterDomain: 'cluster.local',
      vni: 1,
      mtu: 1450,
      kubernetesIP: parseIpv4('10.96.0.1')!,
      dnsIP: parseIpv4('10.96.0.10')!,
      externalCIDR: parseCidr('192.0.2.0/24')!,
      externalGateway: parseIpv4('192.0.2.1')!,
      loadBalancerCIDR: parseCidr('198.51.100.0/24')!,
      conntrackMax: 262_144,
      conntrack: DEFAULT_CONNTRACK,
      dnsUpstreams: [],
      dnsTTLSeconds: 30,
      overlayOffload: true,
      nodeGracePeriodSeconds: 20,
      subnetLeaseTTLSeconds: 20,
      flowBufferCapacity: 4096,
    },
    nodes: [],
    namespaces,
    pods,
    deployments: [],
    services: list,
    endpoints: [],
    networkPolicies: [],
    configMaps: [],
    secrets: [],
    ingresses: [],
    ingressClasses: [],
  };
  return { cluster, endpoints };
}

function query(name: string, type: string, id: number, edns: boolean): Buffer {
  const packet: Packet = {
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as 'A', class: 'IN' }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [] } as never] : [],
  };
  return dnsPacket.encode(packet);
}

/** The name in 16 letter-case variants, each with its own ID: what 0x20 resolvers send. */
function variants(name: string, type: string, edns: boolean): Buffer[] {
  return Array.from({ length: VARIANTS }, (_, v) => {
    let i = 0;
    const cased = name.replace(/[a-z]/g, (ch) => ((v >> i++ % 4) & 1 ? ch.toUpperCase() : ch));
    return query(cased, type, 0x1000 + v, edns);
  });
}

const CTX: QueryContext = { clientAddr: parseIpv4('10.244.1.2')!, clientPort: 40000, transport: 'udp', now: 0 };

function timeZoneBuild(cluster: Cluster, endpoints: readonly ServicePortEndpoints[]): { median: number; min: number; zone: Zone } {
  const samples: number[] = [];
  let zone = buildZone(cluster, endpoints);
  for (let i = 0; i < 15; i++) {
    const started = process.hrtime.bigint();
    zone = buildZone(cluster, endpoints);
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], min: samples[0], zone };
}

const WORKLOADS = ['service A', 'search-path NXDOMAIN', 'headless SRV, 3 endpoints'] as const;
type Workload = (typeof WORKLOADS)[number];

const NAMES = {
  build: `dns: zone build, ${SERVICES.toLocaleString('en')} services`,
  pre: (what: Workload) => `dns: respond, precompiled, ${what}`,
  plain: (what: Workload) => `dns: respond, plain path, ${what}`,
  rate: (how: string, what: Workload) => `dns: answers per second, ${how}, ${what}`,
  ratio: (what: Workload) => `dns: plain / precompiled, ${what}`,
};

const CODEC = {
  readQuery: (who: string) => `dns codec: read a query, ${who}`,
  writeAnswer: (who: string) => `dns codec: write an A answer, ${who}`,
  readUpstream: (who: string) => `dns codec: read an upstream answer, ${who}`,
  ratio: (what: string) => `dns codec: dns-packet / podwire, ${what}`,
  size: 'dns codec: answer size, podwire / dns-packet (compression)',
};

const bench: BenchModule = {
  name: 'dns',
  async run(ctx) {
    const figures: Figure[] = [];
    const respondNames = WORKLOADS.flatMap((w) => [NAMES.pre(w), NAMES.plain(w), NAMES.rate('precompiled', w), NAMES.rate('plain', w), NAMES.ratio(w)]);
    const wantBuild = ctx.selects(NAMES.build);
    const wantRespond = respondNames.some((n) => ctx.selects(n));
    if (wantBuild || wantRespond) figures.push(...(await zoneFigures(ctx, wantBuild, wantRespond)));
    figures.push(...(await codecFigures(ctx)));
    return figures;
  },
};

async function zoneFigures(ctx: Parameters<BenchModule['run']>[0], wantBuild: boolean, wantRespond: boolean): Promise<Figure[]> {
  const figures: Figure[] = [];
  const { cluster, endpoints } = syntheticCluster(SERVICES);
  const build = timeZoneBuild(cluster, endpoints);
  if (build.zone.serviceList.length < SERVICES) throw new Error('dns bench: zone is missing services');
  if (wantBuild) {
    ctx.log(`  ${NAMES.build}: ${build.median.toFixed(1)} ms (best ${build.min.toFixed(1)})`);
    figures.push({ name: NAMES.build, value: build.median, unit: 'ms', target: atMost(100) });
  }
  if (!wantRespond) return figures;

  const policy = clientPolicy([cluster.settings.podCIDR]);
  const pre = new Responder({ zone: build.zone, policy });
  const plain = new Responder({ zone: build.zone, policy, answerCache: false });
  const workloads: Record<Workload, Buffer[]> = {
    'service A': variants('svc-4.ns-4.svc.cluster.local', 'A', true),
    'search-path NXDOMAIN': variants('example.com.ns-4.svc.cluster.local', 'A', false),
    'headless SRV, 3 endpoints': variants('_http._tcp.svc-1.ns-1.svc.cluster.local', 'SRV', true),
  };
  const out = Buffer.alloc(4096);
  const ref = Buffer.alloc(4096);
  for (const what of WORKLOADS) {
    for (const q of workloads[what]) {
      // Correctness first: both paths answer, with the same bytes (the second precompiled call is a hit).
      const a = plain.respond(q, 0, q.length, CTX, ref);
      pre.respond(q, 0, q.length, CTX, out);
      const c = pre.respond(q, 0, q.length, CTX, out);
      if (a.action !== 'answer' || c.length !== a.length || !out.subarray(0, c.length).equals(ref.subarray(0, a.length))) {
        throw new Error(`dns bench: ${what}: the precompiled answer differs from the plain one`);
      }
    }
  }
  const batch = (r: Responder, queries: Buffer[]) => () => {
    let acc = 0;
    for (let i = 0; i < BATCH; i++) {
      const q = queries[i & (VARIANTS - 1)];
      acc += r.respond(q, 0, q.length, CTX, out).length;
    }
    sink.value = acc;
  };
  const timed = await runMicroSuite(ctx, {
    name: 'dns-respond',
    opsPerCall: BATCH,
    cases: WORKLOADS.flatMap((what) => [
      { name: NAMES.pre(what), run: batch(pre, workloads[what]), target: atMost(1000) },
      { name: NAMES.plain(what), run: batch(plain, workloads[what]) },
    ]),
  });
  figures.push(...timed);
  for (const what of WORKLOADS) {
    const p = timed.find((f) => f.name === NAMES.pre(what));
    const s = timed.find((f) => f.name === NAMES.plain(what));
    if (p !== undefined && ctx.selects(NAMES.rate('precompiled', what))) {
      figures.push({ name: NAMES.rate('precompiled', what), value: Math.round(1e9 / p.value), unit: 'answers/s', target: atLeast(1_000_000) });
    }
    if (s !== undefined && ctx.selects(NAMES.rate('plain', what))) figures.push({ name: NAMES.rate('plain', what), value: Math.round(1e9 / s.value), unit: 'answers/s' });
    if (p !== undefined && s !== undefined && ctx.selects(NAMES.ratio(what))) figures.push({ name: NAMES.ratio(what), value: Number((s.value / p.value).toFixed(2)), unit: '×' });
  }
  return figures;
}

/**
 * podwire's codec against dns-packet on the three jobs of the hot path and the forwarder:
 * read a query, write an answer, read an upstream answer.
 */
async function codecFigures(ctx: Parameters<BenchModule['run']>[0]): Promise<Figure[]> {
  const q = query('web.default.svc.cluster.local', 'A', 0x1234, true);
  const parsed = new Query();
  if (parseQuery(q, 0, q.length, parsed) !== QueryProblem.Ok) throw new Error('dns bench: query does not parse');
  const answerPacket: Packet = {
    type: 'response',
    id: 0x1234,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ name: 'web.default.svc.cluster.local', type: 'A', class: 'IN' }],
    answers: [{ name: 'web.default.svc.cluster.local', type: 'A', ttl: 30, data: '10.96.0.20' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [] } as never],
  };
  const encodeBuf = Buffer.alloc(dnsPacket.encodingLength(answerPacket));
  const w = new MessageWriter();
  const out = Buffer.alloc(512);
  const ours = () => {
    w.begin(out, 0, 512);
    w.header(parsed.id, 0x8580, 1);
    w.question(q, parsed.nameOffset, parsed.name.length, parsed.qtype, parsed.qclass);
    w.startSection(Section.Answer);
    writeA(w, null, 30, 0x0a600014);
    w.startSection(Section.Additional);
    return w.complete(true, false, 0);
  };
  // Both produce a message of the same meaning; ours compresses the owner (2 bytes, not 31).
  const mine = Buffer.from(out.subarray(0, ours()));
  const theirs = dnsPacket.encode(answerPacket, encodeBuf, 0);
  const back = dnsPacket.decode(mine);
  if (back.answers?.[0]?.type !== 'A' || (back.answers[0] as { data: string }).data !== '10.96.0.20') throw new Error('dns bench: our answer does not decode');
  void theirs;

  // dnsmasq's answer to `dig alias.example.net A` (test/dns/corpus.ts): a CNAME and an A, compressed, with an OPT.
  const cnameAnswer = Buffer.from(
    'd6f98080000100020000000105616c696173076578616d706c65036e65740000010001c00c0005000100000258001103777777' +
      '076578616d706c65036e657400c02f00010001000002580004c000021e00002904d0000000000000',
    'hex',
  );
  const cnameQuestionEnd = 12 + 19 + 4;
  const counts: [number, number, number] = [cnameAnswer.readUInt16BE(6), cnameAnswer.readUInt16BE(8), cnameAnswer.readUInt16BE(10)];
  const scratch = new RecordScratch();
  if (typeof readRecords(cnameAnswer, 0, cnameAnswer.length, cnameQuestionEnd, counts, scratch) === 'number') throw new Error('dns bench: upstream answer does not read');

  const OPS = 256;
  const loop = (f: () => number) => () => {
    let acc = 0;
    for (let i = 0; i < OPS; i++) acc += f();
    sink.value = acc;
  };
  const timed = await runMicroSuite(ctx, {
    name: 'dns-codec',
    opsPerCall: OPS,
    cases: [
      { name: CODEC.readQuery('podwire'), run: loop(() => (parseQuery(q, 0, q.length, parsed), parsed.qtype)) },
      { name: CODEC.readQuery('dns-packet'), run: loop(() => dnsPacket.decode(q).id ?? 0) },
      { name: CODEC.writeAnswer('podwire'), run: loop(ours) },
      { name: CODEC.writeAnswer('dns-packet'), run: loop(() => (dnsPacket.encode(answerPacket, encodeBuf, 0), dnsPacket.encode.bytes)) },
      { name: CODEC.readUpstream('podwire'), run: loop(() => (readRecords(cnameAnswer, 0, cnameAnswer.length, cnameQuestionEnd, counts, scratch) as { bytes: Uint8Array }).bytes.length) },
      { name: CODEC.readUpstream('dns-packet'), run: loop(() => dnsPacket.decode(cnameAnswer).answers?.length ?? 0) },
    ],
  });
  const ratio = (what: string, ours: string, theirs: string): Figure[] => {
    const x = timed.find((f) => f.name === ours);
    const y = timed.find((f) => f.name === theirs);
    return x === undefined || y === undefined || !ctx.selects(CODEC.ratio(what)) ? [] : [{ name: CODEC.ratio(what), value: Number((y.value / x.value).toFixed(1)), unit: '×' }];
  };
  return [
    ...timed,
    ...ratio('read a query', CODEC.readQuery('podwire'), CODEC.readQuery('dns-packet')),
    ...ratio('write an answer', CODEC.writeAnswer('podwire'), CODEC.writeAnswer('dns-packet')),
    ...ratio('read an upstream answer', CODEC.readUpstream('podwire'), CODEC.readUpstream('dns-packet')),
    ...(ctx.selects(CODEC.size) ? [{ name: CODEC.size, value: Number((mine.length / theirs.length).toFixed(2)), unit: '×' }] : []),
  ];
}

export default bench;
