/**
 * CoreDNS's kubernetes plugin tests asked of a running node from a pod, with dig through the
 * pod's own resolv.conf: the fixtures and expected answers of test/dns/coredns-cases.ts (the
 * same table the unit test holds the responder to), each question asked the way a user on a
 * real node would, and every answer's header read too: status, `aa`, and dig's warning that
 * recursion was requested but is not available.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { kernelSkipReason, TestCluster } from '../helpers/cluster.js';
import { comparable, HANDLER_CASES, HANDLER_YAML, REVERSE_CASES, REVERSE_YAML, type CoreDnsCase } from '../dns/coredns-cases.js';

const reason = kernelSkipReason();
const test = anyTest as TestFn;
const serial = reason === undefined ? test.serial : test.serial.skip;

const CLIENT = `
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
`;

const handler = new TestCluster(`cdh${process.pid % 10000}`);
const reverse = new TestCluster(`cdr${process.pid % 10000}`);

test.before(async () => {
  if (reason !== undefined) return;
  await handler.up(HANDLER_YAML + CLIENT);
  await reverse.up(REVERSE_YAML + CLIENT);
});

test.after.always(async (t) => {
  if (reason !== undefined) return;
  await handler.teardown();
  await reverse.teardown();
  t.deepEqual([...handler.leftovers(), ...reverse.leftovers()], []);
});

if (reason !== undefined) test(`CoreDNS's cases end-to-end skipped: ${reason}`, (t) => t.pass());

/** What dig printed for one question: the header's status and flags, its warnings, the sections as zone-file lines. */
interface DigAnswer {
  readonly status: string;
  readonly flags: readonly string[];
  readonly warnings: readonly string[];
  readonly answer: string[];
  readonly authority: string[];
  readonly additional: string[];
}

const MARK = '=== podwire case';

/** Every case's dig in one shell in the pod (one exec, not one per question), each block behind a mark. */
async function digAll(cluster: TestCluster, cases: readonly CoreDnsCase[]): Promise<DigAnswer[]> {
  const script = cases.map((c, i) => `echo '${MARK} ${i}'; dig +noall +comments +answer +authority +additional '${c.q}' ${c.type}`).join('; ');
  const r = await cluster.exec('client', ['sh', '-c', script], 60_000);
  if (r.code !== 0) throw new Error(`dig in the pod failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  const blocks = r.stdout.split(`${MARK} `).slice(1);
  if (blocks.length !== cases.length) throw new Error(`expected ${cases.length} dig outputs, got ${blocks.length}:\n${r.stdout}`);
  return blocks.map(parseDig);
}

function parseDig(block: string): DigAnswer {
  const lines = block.split('\n');
  const status = /status: (\w+)/.exec(block)?.[1] ?? '';
  const flags = (/;; flags: ([^;]*);/.exec(block)?.[1] ?? '').trim().split(/\s+/);
  const warnings = lines.filter((l) => l.startsWith(';; WARNING:')).map((l) => l.slice(';; WARNING: '.length));
  const sections: Record<string, string[]> = { ANSWER: [], AUTHORITY: [], ADDITIONAL: [] };
  let current: string[] | undefined;
  for (const line of lines) {
    const header = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:$/.exec(line);
    if (header !== null) current = sections[header[1]];
    else if (line.trim() === '') current = undefined;
    else if (!line.startsWith(';')) current?.push(line.trim().split(/\s+/).join(' '));
  }
  return { status, flags, warnings, answer: sections.ANSWER, authority: sections.AUTHORITY, additional: sections.ADDITIONAL };
}

/** Waits (bounded) until the node serves the table's first name: its zone is built from the store a moment after up. */
async function untilServing(cluster: TestCluster, c: CoreDnsCase): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const [got] = await digAll(cluster, [c]);
    if (got.status === c.rcode && got.answer.length === (c.answer ?? []).length) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function checkTable(t: ExecutionContext, cluster: TestCluster, cases: readonly CoreDnsCase[]): Promise<void> {
  await untilServing(cluster, cases[0]);
  const answers = await digAll(cluster, cases);
  cases.forEach((c, i) => {
    const got = answers[i];
    const what = `${c.q} ${c.type} (${c.from})`;
    t.is(got.status, c.rcode, what);
    t.true(got.flags.includes('aa'), `${what}: aa`);
    t.false(got.flags.includes('ra'), `${what}: no ra`);
    t.true(got.flags.includes('rd'), `${what}: rd echoed`);
    // dig also warns that .local is mDNS's, as it does on a real node.
    t.true(got.warnings.includes('recursion requested but not available'), `${what}: ${got.warnings.join('; ')}`);
    t.deepEqual(comparable(got.answer), comparable(c.answer), `${what}: answer`);
    t.deepEqual(comparable(got.authority), comparable(c.authority), `${what}: authority`);
    t.deepEqual(comparable(got.additional), comparable(c.additional), `${what}: additional`);
  });
}

serial('handler_test.go, handler_case_test.go and kubernetes_apex_test.go, asked with dig from a pod', async (t) => {
  await checkTable(t, handler, HANDLER_CASES);
});

serial('reverse_test.go, asked with dig from a pod', async (t) => {
  await checkTable(t, reverse, REVERSE_CASES);
});
