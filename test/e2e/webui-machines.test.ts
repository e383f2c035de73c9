/**
 * The web view of a cluster in etcd: two machines (network namespaces on a veth underlay)
 * each running `podwire join` for its node, and `podwire ui --store` on the first machine.
 * The map shows both nodes with the machine (underlay address) each runs on and every pod;
 * a trace from the client on machine 1 to the Service is drawn through its own node, and
 * when the backend is on machine 2 the path ends at that node saying the rest is traced
 * there; the flows of machine 1's node reach the page.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { makeUnderlay, type Underlay } from '../helpers/machines.js';
import { etcdAvailable } from '../helpers/etcd.js';
import { startPodwire, until, type PodwireCluster } from '../helpers/joined-cluster.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun') && etcdAvailable();
const CLI = join(import.meta.dirname, '../../src/cli/main.js');

const WORKLOADS = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]}
---
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

let underlay: Underlay | undefined;
let cluster: PodwireCluster | undefined;
let ui: ChildProcess | undefined;
let url = '';

test.before(async () => {
  if (!canRun) return;
  underlay = await makeUnderlay({ machines: 2 });
  cluster = await startPodwire(underlay, underlay.machines, '{nodeGracePeriodSeconds: 6, subnetLeaseTTLSeconds: 6}', 'wu');
  await cluster.apply(WORKLOADS);
  await cluster.podsReady(3, 60_000);
  const child = underlay.machines[0].spawn([process.execPath, CLI, 'ui', '--name', cluster.name, '--store', cluster.store, '--state-dir', join(cluster.dir, 'node-1'), '--port', '0']);
  ui = child;
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m !== null) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`podwire ui exited (${code}): ${out}`)));
  });
});

test.after.always(async () => {
  if (ui?.pid !== undefined && ui.exitCode === null) process.kill(-ui.pid, 'SIGTERM');
  await cluster?.close();
  await underlay?.destroy();
});

const e2e = canRun ? test.serial : test.serial.skip;
if (!canRun) test('the web view of several machines needs root, /dev/net/tun and etcd-server (skipped)', (t) => t.pass());

/** The page's API, asked from the first machine (where the page listens on its loopback). */
async function api(path: string): Promise<any> {
  return JSON.parse(await underlay!.machines[0].exec(['curl', '-s', '-m', '10', `${url}${path.slice(1)}`]));
}

e2e('the map shows both nodes with the machine each runs on, and every pod', async (t) => {
  const map = await api('/api/cluster');
  t.deepEqual(map.nodes.map((n: { name: string }) => n.name), ['node-1', 'node-2']);
  const [m1, m2] = underlay!.machines;
  t.regex(map.nodes[0].machine, new RegExp(`\\(${m1.address.replace(/\./g, '\\.')}\\)$`));
  t.regex(map.nodes[1].machine, new RegExp(`\\(${m2.address.replace(/\./g, '\\.')}\\)$`));
  t.is(map.nodes[0].vtep.address, `${m1.address}:4789`);
  t.deepEqual(map.nodes.flatMap((n: { pods: { name: string }[] }) => n.pods.map((p) => p.name)).filter((p: string) => p === 'client'), ['client']);
  t.is(map.nodes.flatMap((n: { pods: unknown[] }) => n.pods).length, 3);
  t.is(map.services.find((s: { name: string }) => s.name === 'web').ports[0].endpoints.filter((e: { ready: boolean }) => e.ready).length, 2);
});

e2e('a trace from the client is drawn through its node; a backend on the other machine ends the path at that node', async (t) => {
  const trace = await api('/api/trace?from=client&to=10.96.77.77:80');
  t.is(trace.hops[0].node, 'node-1');
  const nat = trace.hops[0].result.stages.find((s: { stage: string }) => s.stage === 'service-nat').detail.join('\n');
  const m = /DNAT to \S+ \(pod default\/(web-\S+) on (node-\d)\):80/.exec(nat);
  t.truthy(m, nat);
  if (m![2] === 'node-2') {
    t.is(trace.continuesOn, 'node-2');
    t.deepEqual(trace.path.slice(-1), ['node:node-2']);
    t.is(trace.hops[0].overlay.outer.dst, `${underlay!.machines[1].address}:4789`);
  } else {
    t.is(trace.path.at(-1), `pod:default/${m![1]}`);
  }
});

e2e("machine 1's node's flows reach the page", async (t) => {
  await cluster!.inPod('client', ['curl', '-s', '-m', '5', '-o', '/dev/null', 'http://10.96.77.77/']);
  const flows = await until('the curl in the page\'s flows', 10_000, async () => {
    const got = (await api('/api/flows?last=200')).flows.filter((f: { edges: { key: string }[] }) => f.edges.some((e) => e.key === 'pod:default/client>svc:default/web'));
    return got.length > 0 ? got : undefined;
  });
  t.is(flows[0].node, 'node-1');
});
