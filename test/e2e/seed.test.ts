/**
 * `podwire up --seed N` reaches the dataplane: two runs of the same seeded cluster send the
 * same sequence of new connections to the same backends, as a seeded simulation should.
 */
import anyTest, { type TestFn } from 'ava';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';

const skip = kernelSkipReason();
const test = anyTest as TestFn;
const serial = skip === undefined ? test.serial : test.serial.skip;

const YAML = `
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.33.33, selector: {app: web}, ports: [{port: 80}]}
`;

const cluster = new TestCluster(`seed${process.pid % 10000}`);

test.after.always(async (t) => {
  if (skip !== undefined) return;
  await cluster.teardown();
  t.deepEqual(cluster.leftovers(), []);
});

if (skip !== undefined) test(`seeded dataplane skipped: ${skip}`, (t) => t.pass());

async function backendsOfOneRun(): Promise<string[]> {
  await cluster.up(YAML, ['--seed', '7']);
  const seen: string[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await cluster.exec('client', ['curl', '-s', '-m', '3', 'http://10.96.33.33/']);
    seen.push(/^Hostname: (\S+)/m.exec(r.stdout)?.[1] ?? `failed: ${r.stderr}`);
  }
  await cluster.podwire(['down']);
  return seen;
}

serial('two runs of one seed pick the same backends for the same connections', async (t) => {
  const first = await backendsOfOneRun();
  const second = await backendsOfOneRun();
  t.true(first.every((b) => b.startsWith('web-')), first.join(' '));
  t.true(new Set(first).size >= 2, `the draws still spread: ${first.join(' ')}`);
  t.deepEqual(second, first);
});
