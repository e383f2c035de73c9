/**
 * The web view end to end in a real browser: headless Chromium (Debian's, driven by
 * playwright-core) on `podwire ui` against the demo cluster, with a locked namespace
 * whose pod a default-deny policy isolates. The map shows the demo's two nodes, four pods
 * and the Service; scaling the Deployment to 5 adds two pods on the page (and a deleted pod
 * leaves it, last, see there); a curl from the
 * client lights its edge to the Service and on to a backend; a trace of client ->
 * 10.100.100.100:80 draws the stages with the DNAT to a real backend; a connection the
 * policy drops turns its edge red with the policy's name. Screenshots of the map and of a
 * trace go to test-results/webui/ (not committed). Another local user gets no page.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DEMO_YAML } from '../../src/cluster/demo.js';
import { CLI, kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'test-results', 'webui');

const YAML = `${DEMO_YAML}
---
apiVersion: v1
kind: Namespace
metadata: {name: locked}
---
apiVersion: v1
kind: Pod
metadata: {name: vault, namespace: locked, labels: {app: vault}}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: locked}
spec: {podSelector: {}, policyTypes: [Ingress]}
`;

const cluster = new TestCluster(`webui${process.pid % 10000}`);
/** A local user who is not root: the page is not theirs to see. */
const USER = `pwwebui${process.pid % 10000}`;
let ui: ChildProcess | undefined;
let pageUrl = '';
/** What the page threw or logged as an error while the tests drove it. */
const pageErrors: string[] = [];
let browser: Browser | undefined;
let page: Page;

test.before(async () => {
  if (skip !== undefined) return;
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium`);
  await cluster.up(YAML, ['--seed', '3']);
  const child = spawn(process.execPath, [CLI, 'ui', '--name', cluster.name, '--state-dir', cluster.stateRoot, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  ui = child;
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m !== null) resolveUrl(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`podwire ui exited (${code}): ${out}`)));
  });
  pageUrl = url;
  spawnSync('/usr/sbin/userdel', [USER], { stdio: 'ignore' });
  execFileSync('/usr/sbin/useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 860 }, acceptDownloads: true });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.goto(url);
  mkdirSync(SHOTS, { recursive: true });
});

test.after.always(async (t) => {
  if (skip !== undefined) return;
  await browser?.close();
  if (ui?.pid !== undefined && ui.exitCode === null) ui.kill('SIGTERM');
  spawnSync('/usr/sbin/userdel', [USER], { stdio: 'ignore' });
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`web view end-to-end skipped: ${skip}`, (t) => t.pass());

const curl = (url: string) => cluster.exec('client', ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', url]);
const defaultPods = () => page.locator('g.pod[data-id^="pod:default/"]').count();

/** Waits until `selector` matches `count` elements (the page's CSP allows no script from the test, so no waitForFunction). */
async function countIs(selector: string, count: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while ((await page.locator(selector).count()) !== count) {
    if (Date.now() > end) throw new Error(`${selector}: not ${count} within ${timeoutMs} ms (${await page.locator(selector).count()})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

serial("the map shows the demo's two nodes, its four pods in their nodes and the Service with its ClusterIP", async (t) => {
  await page.waitForSelector('g.node[data-id="node:node-1"]');
  t.is(await page.locator('g.node').count(), 2);
  await countIs('g.pod.ready[data-id^="pod:default/"]', 4, 10_000);
  t.is(await defaultPods(), 4);
  t.is(await page.locator('g.node[data-id="node:node-1"] g.pod, g.node[data-id="node:node-2"] g.pod').count(), 5, 'and locked/vault');
  const svc = page.locator('g.service[data-id="svc:default/clusterip-service"]');
  t.regex((await svc.textContent()) ?? '', /ClusterIP 10\.100\.100\.100.*80\/TCP · 3 ready endpoints/);
  t.regex((await page.locator('g.node[data-id="node:node-1"]').textContent()) ?? '', /bridge cni0 10\.244\.1\.1\/24.*VTEP flannel\.1 127\.77\.\d+\.1:4789/);
  await page.screenshot({ path: join(SHOTS, 'map.png') });
});

serial('scaling the Deployment to 5 adds two pods on the page within a second', async (t) => {
  const r = await cluster.podwire(['scale', 'deployment/deploy-nginx', '--replicas', '5']);
  t.is(r.code, 0, r.stderr);
  const scaled = Date.now();
  await countIs('g.pod[data-id^="pod:default/deploy-nginx-"]', 5, 5000);
  const scaleMs = Date.now() - scaled;
  t.log(`on the page ${scaleMs} ms after scale returned`);
  t.true(scaleMs < 1000, `${scaleMs} ms`);
  t.is(await defaultPods(), 6);
  await countIs('g.pod.ready[data-id^="pod:default/deploy-nginx-"]', 5, 15_000);
});

serial('a curl from the client lights its edge to the Service and on to a backend', async (t) => {
  t.is((await curl('http://10.100.100.100/')).stdout, '200');
  const toService = page.locator('g.edge.lit[data-edge="pod:default/client>svc:default/clusterip-service"]');
  await toService.waitFor({ timeout: 5000 });
  t.true(Number(await toService.getAttribute('data-count')) >= 1);
  const toBackend = page.locator('g.edge.lit[data-from="svc:default/clusterip-service"][data-to^="pod:default/deploy-nginx-"]');
  await toBackend.first().waitFor({ timeout: 5000 });
  // By name, the client first asks the cluster DNS: its edge to kube-dns lights too.
  const byName = await cluster.exec('client', ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code} %{remote_ip} dns=%{time_namelookup} connect=%{time_connect}', 'http://clusterip-service/']);
  t.regex(byName.stdout, /^200 /, byName.stdout);
  await page.locator('g.edge.lit[data-edge="pod:default/client>svc:kube-system/kube-dns"]').waitFor({ timeout: 5000 });
  // Clicking the edge lists its flows as observe prints them.
  await toService.locator('text.edge-label').dispatchEvent('click');
  await page.waitForSelector('#flow-lines .flow-line');
  t.regex((await page.locator('#flow-lines').textContent()) ?? '', /default\/client:\d+ \(ID:\d+\) -> default\/deploy-nginx-\S+:80 \(ID:\d+\) post-xlate-fwd TRANSLATED/);
});

serial('a trace of client -> 10.100.100.100:80 draws the stages across the map, with the DNAT to a real backend', async (t) => {
  await page.fill('#trace-from', 'default/client');
  await page.fill('#trace-to', '10.100.100.100:80');
  await page.click('#trace-run');
  await page.waitForSelector('#trace-verdict');
  const nat = (await page.locator('li.stage[data-stage="service-nat"]').first().textContent()) ?? '';
  const m = /DNAT to (\d+\.\d+\.\d+\.\d+) \(pod default\/(deploy-nginx-\S+) on (node-\d)\):80/.exec(nat);
  t.truthy(m, nat);
  t.is(await page.locator(`g.pod[data-id="pod:default/${m![2]}"]`).getAttribute('data-ip'), m![1], 'the backend is a pod on the map, at that address');
  const rules = (await page.locator('li.stage[data-stage="PREROUTING (kube-proxy rules)"]').first().textContent()) ?? '';
  t.regex(rules, /-A KUBE-SERVICES -d 10\.100\.100\.100\/32 -p tcp .* -j KUBE-SVC-/);
  t.regex(rules, /-m statistic --mode random --probability 0\.\d+|-A KUBE-SVC-\S+ .*-j KUBE-SEP-/);
  t.regex(rules, /-j DNAT --to-destination \d+\.\d+\.\d+\.\d+:80/);
  t.regex((await page.locator('#trace-verdict').textContent()) ?? '', /^delivered: /);
  // The path on the map: the client, its node, the Service, and on to the backend's pod.
  const steps = await page.locator('#trace g.trace-step').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-id')));
  t.is(steps[0], 'pod:default/client');
  t.true(steps.includes('svc:default/clusterip-service'), steps.join(' '));
  t.is(steps.at(-1), `pod:default/${m![2]}`);
  const client = await page.locator('g.pod[data-id="pod:default/client"]').evaluate((g) => g.closest('g.node')?.getAttribute('data-id'));
  if (client !== `node:${m![3]}`) {
    t.true(await page.locator('li.stage[data-stage="vxlan"]').count() >= 1, 'crossing nodes shows the VXLAN hop');
    t.regex((await page.locator('li.stage[data-stage="vxlan"]').first().textContent()) ?? '', /outer: UDP 127\.77\.\d+\.\d+ -> 127\.77\.\d+\.\d+:4789, VNI 1/);
    t.true(steps.includes(`vtep:${m![3]}`), steps.join(' '));
  }
  await page.screenshot({ path: join(SHOTS, 'trace.png') });
  // By the Service's DNS name, resolved by the cluster DNS as the client's resolver would.
  await page.fill('#trace-to', 'clusterip-service:80');
  await page.click('#trace-run');
  await page.locator('#trace-result').filter({ hasText: /clusterip-service \(10\.100\.100\.100\):80/ }).waitFor({ timeout: 10_000 });
  t.regex((await page.locator('#trace-verdict').textContent()) ?? '', /^delivered: /);
});

serial("a connection the default-deny policy drops turns its edge red with the policy's name", async (t) => {
  const vault = await page.locator('g.pod[data-id="pod:locked/vault"]').getAttribute('data-ip');
  t.not((await curl(`http://${vault}/`)).code, 0);
  const edge = page.locator('g.edge.verdict-dropped[data-edge="pod:default/client>pod:locked/vault"]');
  await edge.waitFor({ timeout: 5000 });
  await edge.filter({ hasText: /locked\/default-deny/ }).waitFor({ timeout: 5000 });
  t.regex((await edge.textContent()) ?? '', /✕ \d+ dropped: POLICY_DENIED \(policy locked\/default-deny\)/);
  await page.screenshot({ path: join(SHOTS, 'drop.png') });
});

serial("a pod's pcap button downloads a pcapng of the next seconds, which tshark reads with the pod's traffic", async (t) => {
  await page.fill('#capture-seconds', '2');
  const download = page.waitForEvent('download', { timeout: 10_000 });
  await page.locator('g.pod[data-id="pod:default/client"] g.button[data-action="capture"]').dispatchEvent('click');
  await new Promise((r) => setTimeout(r, 500));
  const ping = cluster.exec('client', ['ping', '-c', '3', '-i', '0.2', '10.244.1.1']);
  const file = join(SHOTS, 'client.pcapng');
  const got = await download;
  t.is(got.suggestedFilename(), 'default_client.pcapng');
  await got.saveAs(file);
  await ping;
  const lines = execFileSync('tshark', ['-r', file, '-Y', 'icmp.type == 8', '-T', 'fields', '-e', 'ip.dst'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
  t.true(lines.length >= 1 && lines.every((l) => l === '10.244.1.1'), lines.join(','));
});

serial('another local user gets no page: the connection is closed unanswered, while root is served', async (t) => {
  const theirs = spawnSync('/usr/sbin/runuser', ['-u', USER, '--', 'curl', '-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `${pageUrl}api/cluster`], { encoding: 'utf8' });
  t.not(theirs.status, 0, theirs.stdout);
  t.is(theirs.stdout, '000');
  const roots = spawnSync('curl', ['-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `${pageUrl}api/cluster`], { encoding: 'utf8' });
  t.is(roots.stdout, '200');
});

serial("a VTEP's pcap button downloads the node's VXLAN datagrams with their outer headers", async (t) => {
  await page.fill('#capture-seconds', '2');
  const clientNode = await page.locator('g.pod[data-id="pod:default/client"]').evaluate((g) => g.closest('g.node')?.getAttribute('data-id'));
  const node = String(clientNode).slice('node:'.length);
  const download = page.waitForEvent('download', { timeout: 10_000 });
  await page.locator(`g.vtep[data-id="vtep:${node}"] g.button[data-action="capture"]`).dispatchEvent('click');
  await new Promise((r) => setTimeout(r, 500));
  // A backend on the other node: the connection crosses the overlay.
  const remote = await page.locator(`g.node:not([data-id="${clientNode}"]) g.pod[data-id^="pod:default/deploy-nginx-"]`).first().getAttribute('data-ip');
  t.is((await curl(`http://${remote}/`)).stdout, '200');
  const file = join(SHOTS, 'vtep.pcapng');
  const got = await download;
  t.is(got.suggestedFilename(), `${node}.pcapng`);
  await got.saveAs(file);
  const lines = execFileSync('tshark', ['-r', file, '-Y', 'vxlan && tcp.dstport == 80', '-T', 'fields', '-e', 'udp.dstport', '-e', 'vxlan.vni'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
  t.true(lines.length >= 1 && lines.every((l) => l === '4789\t1'), lines.join(','));
});

// The replacement replica may take the deleted one's address: the page's trace showed the
// other node's overlay path dropping it ('no pod holds the address') until removePod left a
// newer pod's address alone; every backend answering the client holds that fixed.
serial('a deleted pod leaves the page within a second, and its replacement appears and answers', async (t) => {
  const victim = (await page.locator('g.pod[data-id^="pod:default/deploy-nginx-"]').first().getAttribute('data-id'))!;
  const victimIp = await page.locator(`g.pod[data-id="${victim}"]`).getAttribute('data-ip');
  const d = await cluster.podwire(['delete', 'pod', victim.slice('pod:default/'.length)]);
  t.is(d.code, 0, d.stderr);
  const deleted = Date.now();
  await countIs(`g.pod[data-id="${victim}"]`, 0, 5000);
  const deleteMs = Date.now() - deleted;
  t.log(`gone from the page ${deleteMs} ms after delete returned`);
  t.true(deleteMs < 1000, `${deleteMs} ms`);
  await countIs('g.pod.ready[data-id^="pod:default/deploy-nginx-"]', 5, 15_000);
  const ips = await page.locator('g.pod[data-id^="pod:default/deploy-nginx-"]').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-ip')));
  t.log(ips.includes(victimIp) ? `the replacement took ${victimIp} again` : `the replacement has a new address (${victimIp} is free)`);
  for (const ip of ips) t.is((await curl(`http://${ip}/`)).stdout, '200', `backend ${ip}`);
});

serial('the page raised no error and logged none while all of this happened', (t) => {
  t.deepEqual(pageErrors, []);
});
