/**
 * Several machines, for real: three network namespaces stand for three Linux VMs, each with
 * one veth into a shared 1500-byte underlay bridge; etcd (Debian's etcd-server) runs on
 * that underlay; each machine runs `podwire join` for its node. Pods on different machines
 * talk through podwire's VXLAN over the veths, the controller runs in one agent, and the
 * faults are the ones a cluster on VMs meets: an agent SIGKILLed, the controller's machine
 * lost, etcd gone for 30 s.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeUnderlay, runCommand, type Underlay } from '../helpers/machines.js';
import { etcdAvailable } from '../helpers/etcd.js';
import { startPodwire, until, WEB_DEPLOYMENT, type PodwireCluster, type StatusJson } from '../helpers/joined-cluster.js';

const GRACE = 6;
const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun') && etcdAvailable();

const WORKLOADS_YAML = `${WEB_DEPLOYMENT}---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c, image: busybox, command: [sleep, "3600"]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.77.77, selector: {app: web}, ports: [{port: 80, targetPort: 80}]}
`;
const LATE_SERVICE_YAML = `apiVersion: v1
kind: Service
metadata: {name: late}
spec: {clusterIP: 10.96.78.78, selector: {app: web}, ports: [{port: 8080, targetPort: 80}]}
`;

let underlay: Underlay | undefined;
let cluster: PodwireCluster | undefined;

/** The cluster, once before() made it (the tests run only then). */
function c(): PodwireCluster {
  if (cluster === undefined) throw new Error('the cluster was not started');
  return cluster;
}

const webPods = (s: StatusJson) => s.pods.filter((p) => p.name.startsWith('web-'));
const curl = (pod: string, url: string) => c().inPod(pod, ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', url]);
const getEndpoints = () => c().podwire(['get', 'endpoints', '--name', c().name, '--store', c().store]);

test.before(async () => {
  if (!canRun) return;
  underlay = await makeUnderlay({ machines: 3 });
  cluster = await startPodwire(underlay, underlay.machines, `{nodeGracePeriodSeconds: ${GRACE}, subnetLeaseTTLSeconds: ${GRACE}}`, 'mm');
  await cluster.apply(WORKLOADS_YAML);
  await cluster.podsReady(4, 60_000);
});

test.after.always(async () => {
  await cluster?.close();
  await underlay?.destroy();
});

const e2e = canRun ? test.serial : test.serial.skip;
if (!canRun) test('several machines need root, /dev/net/tun and etcd-server (skipped)', (t) => t.pass());

e2e('the three nodes hold three subnets, one replica each, and their pods reach each other across machines', async (t) => {
  const s = await c().status();
  t.deepEqual(s.nodes.map((n) => [n.name, n.subnet, n.ready, n.lease]), [
    ['node-1', '10.244.1.0/24', true, 'held'],
    ['node-2', '10.244.2.0/24', true, 'held'],
    ['node-3', '10.244.3.0/24', true, 'held'],
  ]);
  t.deepEqual(webPods(s).map((p) => p.node).sort(), ['node-1', 'node-2', 'node-3']);
  for (const pod of webPods(s).filter((p) => p.node !== 'node-1')) {
    t.regex(await c().inPod('client', ['ping', '-c', '2', '-W', '2', pod.ip]), / 0% packet loss/, `ping ${pod.name} on ${pod.node}`);
    t.regex(await curl('client', `http://${pod.ip}/`), /^200$/);
  }
  // What crossed the underlay is VXLAN that tshark decodes.
  const m2 = underlay!.machines[1];
  const capture = m2.spawn(['tcpdump', '-i', m2.iface, '-c', '4', '-w', join(c().dir, 'underlay.pcap'), 'udp', 'port', '4789']);
  await new Promise((r) => setTimeout(r, 1000));
  await c().inPod('client', ['ping', '-c', '3', '-i', '0.2', webPods(s).find((p) => p.node === 'node-2')!.ip]);
  await new Promise<void>((resolve) => (capture.exitCode !== null ? resolve() : capture.on('exit', () => resolve())));
  const decoded = await runCommand(['tshark', '-r', join(c().dir, 'underlay.pcap'), '-d', 'udp.port==4789,vxlan', '-T', 'fields', '-e', 'vxlan.vni', '-e', 'icmp.type']);
  t.regex(decoded, /^1\t(0|8)$/m);
});

e2e("status from one machine names where every node serves /metrics, and each answers on its own machine's loopback", async (t) => {
  const s = await c().status();
  for (const node of s.nodes) {
    t.regex(node.metrics ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, node.name);
    // Each node runs in its own machine (namespace): its loopback is that machine's.
    const machine = underlay!.machines[Number(node.name.replace('node-', '')) - 1];
    const text = await machine.exec(['curl', '-s', '-m', '5', node.metrics!]);
    t.regex(text, new RegExp(`^node_network_receive_packets_total\\{device="[^"]+"\\} \\d+`, 'm'), node.name);
  }
  const table = await c().podwire(['status', '--name', c().name, '--store', c().store]);
  t.regex(table, /METRICS \(ON ITS MACHINE\)/);
  for (const node of s.nodes) t.true(table.includes(new URL(node.metrics!).host), `${node.name} in the table`);
});

e2e('the ClusterIP answers from a pod on every machine, and DNS names pods on other machines', async (t) => {
  const s = await c().status();
  for (const pod of webPods(s)) {
    for (let i = 0; i < 3; i++) t.is(await curl(pod.name, 'http://10.96.77.77/'), '200', `from ${pod.node}`);
  }
  t.is((await c().inPod('client', ['dig', '+short', '+time=2', 'web.default.svc.cluster.local'])).trim(), '10.96.77.77');
  const far = webPods(s).find((p) => p.node === 'node-3')!;
  t.is((await c().inPod('client', ['dig', '+short', '+time=2', `${far.ip.replaceAll('.', '-')}.default.pod.cluster.local`])).trim(), far.ip);
});

e2e('a 1400-byte DF ping crosses the 1500-byte underlay; a larger one is answered with fragmentation needed', async (t) => {
  const far = webPods(await c().status()).find((p) => p.node === 'node-2')!;
  t.regex(await c().inPod('client', ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1372', far.ip]), /1380 bytes from/);
  // The pod's own kernel refuses more than its 1450 MTU; raised to 1500, the packet reaches
  // podwire, which cannot carry it over the underlay and says so as a router does.
  await c().inPod('client', ['ip', 'link', 'set', 'eth0', 'mtu', '1500']);
  try {
    const out = await c().inPod('client', ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1472', far.ip]).catch((err: { stdout?: string }) => err.stdout ?? '');
    t.regex(out, /Frag needed and DF set \(mtu = 1450\)/);
  } finally {
    await c().inPod('client', ['ip', 'link', 'set', 'eth0', 'mtu', '1450']);
  }
});

e2e('iperf3 TCP crosses machines, the pods\' super-frames segmented before encapsulation', async (t) => {
  const far = webPods(await c().status()).find((p) => p.node === 'node-3')!;
  const server = c().inPod(far.name, ['iperf3', '-s', '-1', '-p', '5201'], 30_000);
  await new Promise((r) => setTimeout(r, 500));
  const report = JSON.parse(await c().inPod('client', ['iperf3', '-c', far.ip, '-p', '5201', '-t', '2', '-J'], 30_000)) as { end: { sum_received: { bits_per_second: number } } };
  await server;
  t.true(report.end.sum_received.bits_per_second > 10e6, `${(report.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`);
});

e2e('an agent SIGKILLed: NotReady within the grace, out of the Service, its peers gone with its lease; joined again it takes back its subnet and pod IPs', async (t) => {
  const before = await c().status();
  const victim = webPods(before).find((p) => p.node === 'node-3')!;
  const pid = c().agentPid('node-3')!;
  process.kill(pid, 'SIGKILL');
  const killedAt = Date.now();
  await until('node-3 NotReady', (GRACE + 4) * 1000, async () => ((await c().status()).nodes.find((n) => n.name === 'node-3')?.ready === false ? true : undefined));
  t.true(Date.now() - killedAt < (GRACE + 4) * 1000);
  await until('endpoints without node-3', 10_000, async () => ((await getEndpoints()).includes(victim.ip) ? undefined : true));
  let ok = 0;
  for (let i = 0; i < 40; i++) if ((await curl('client', 'http://10.96.77.77/').catch(() => '')) === '200') ok++;
  t.is(ok, 40);
  await until('node-1 drops node-3 as a peer', (GRACE + 6) * 1000, async () => ((await c().overlayPeers('node-1')).includes('node-3') ? undefined : true));
  await c().join('node-3');
  const after = await c().podsReady(4, 60_000);
  t.is(after.nodes.find((n) => n.name === 'node-3')?.subnet, '10.244.3.0/24');
  t.deepEqual(webPods(after).find((p) => p.name === victim.name)?.ip, victim.ip);
  await until('endpoints with node-3 again', 15_000, async () => ((await getEndpoints()).includes(victim.ip) ? true : undefined));
});

e2e('the controller\'s machine lost: another agent takes over within a lease TTL and a scale still works', async (t) => {
  const leader = (await c().status()).controller!;
  t.truthy(leader);
  process.kill(c().agentPid(leader)!, 'SIGKILL');
  const next = await until('a new controller', (GRACE + 6) * 1000, async () => {
    const s = await c().status();
    return s.controller !== undefined && s.controller !== leader ? s.controller : undefined;
  });
  t.not(next, leader);
  await c().podwire(['scale', '--name', c().name, '--store', c().store, 'deployment/web', '--replicas', '4']);
  const scaled = await until('4 web pods', 30_000, async () => {
    const s = await c().status();
    const pods = webPods(s).filter((p) => p.node !== leader);
    return pods.length >= 3 && webPods(s).length === 4 ? s : undefined;
  });
  t.is(webPods(scaled).length, 4);
  await c().join(leader);
  await c().podsReady(5, 60_000);
});

e2e('etcd stopped for 30 s: a long-lived TCP connection across machines survives, and an apply after it returns reaches every node', async (t) => {
  const s = await c().status();
  const far = webPods(s).find((p) => p.node === 'node-2')!;
  const server = c().inPod(far.name, ['iperf3', '-s', '-1', '-p', '5202'], 90_000);
  await new Promise((r) => setTimeout(r, 500));
  const client = c().inPod('client', ['iperf3', '-c', far.ip, '-p', '5202', '-t', '40', '-b', '2M', '-J'], 90_000);
  await new Promise((r) => setTimeout(r, 2000));
  await c().etcd.members[0].stop();
  await new Promise((r) => setTimeout(r, 30_000));
  const log = c().nodeLog('node-2');
  t.regex(log, /store unreachable/);
  await c().etcd.members[0].start();
  const report = JSON.parse(await client) as { end: { sum_received: { bytes: number } }; error?: string };
  await server;
  t.is(report.error, undefined);
  t.true(report.end.sum_received.bytes > 5e6);
  await until('apply after etcd returns', 30_000, async () => c().apply(LATE_SERVICE_YAML));
  const now = await c().status();
  for (const pod of webPods(now)) {
    const code = await until(`late service from ${pod.node}`, 15_000, async () => {
      const out = await curl(pod.name, 'http://10.96.78.78:8080/').catch(() => '');
      return out === '200' ? out : undefined;
    });
    t.is(code, '200');
  }
});
