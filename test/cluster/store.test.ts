import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoFiles } from '../../src/cluster/demo.js';
import { loadCluster } from '../../src/cluster/load.js';
import { seededRandom } from '../../src/cluster/random.js';
import { FileStore } from '../../src/cluster/store.js';

test('desired state and merged readiness round-trip; a watcher hears each change once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-store-'));
  const store = new FileStore(dir);
  try {
    const r = loadCluster(demoFiles(), { random: seededRandom(1) });
    if (!r.ok) return t.fail();
    let changes = 0;
    const heard = () => new Promise<void>((resolve) => {
      const start = changes;
      const check = setInterval(() => {
        if (changes > start) {
          clearInterval(check);
          resolve();
        }
      }, 10);
    });
    const stop = store.watch(() => changes++);
    try {
      let next = heard();
      store.writeDesired(r.cluster);
      await next;
      t.deepEqual(store.readDesired(), JSON.parse(JSON.stringify(r.cluster)));
      next = heard();
      store.publishReadiness('node-1', new Map([['default/a', true]]));
      store.publishReadiness('node-2', new Map([['default/b', false]]));
      await next;
      t.deepEqual([...store.readReadiness()].sort(), [['default/a', true], ['default/b', false]]);
      t.deepEqual(readdirSync(join(dir, 'ready')).sort(), ['node-1.json', 'node-2.json'], 'no temporary files left');
    } finally {
      stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leases round-trip; a bad lease record is left out and named; renewals do not wake the watcher', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-store-'));
  const store = new FileStore(dir);
  try {
    t.deepEqual(store.readLeases(), { leases: [], problems: [] }, 'no lease directory yet');
    let changes = 0;
    const stop = store.watch(() => changes++);
    try {
      store.renewLease({ node: 'node-1', renewTime: 1000, leaseDurationSeconds: 20 });
      store.renewLease({ node: 'node-2', renewTime: 2000, leaseDurationSeconds: 20 });
      store.renewLease({ node: 'node-1', renewTime: 3000, leaseDurationSeconds: 20 });
      writeFileSync(join(dir, 'leases', 'node-3.json'), '{"node": "node-3", "renewTime": ');
      const { leases, problems } = store.readLeases();
      t.deepEqual(
        leases.sort((a, b) => a.node.localeCompare(b.node)),
        [
          { node: 'node-1', renewTime: 3000, leaseDurationSeconds: 20 },
          { node: 'node-2', renewTime: 2000, leaseDurationSeconds: 20 },
        ],
      );
      t.is(problems.length, 1);
      t.regex(problems[0]!, /^lease of node-3 is not JSON/);
      t.deepEqual(readdirSync(join(dir, 'leases')).sort(), ['node-1.json', 'node-2.json', 'node-3.json'], 'no temporary files left');
      await new Promise((r) => setTimeout(r, 1300)); // past the debounce and one safety-net poll
      t.is(changes, 0, 'a renewal is not a change to reconcile');
    } finally {
      stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("readiness by node keeps each node's records apart", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-store-'));
  const store = new FileStore(dir);
  try {
    store.publishReadiness('node-1', new Map([['default/a', true]]));
    store.publishReadiness('node-2', new Map([['default/b', true], ['default/c', false]]));
    const byNode = store.readReadinessByNode();
    t.deepEqual([...byNode.keys()].sort(), ['node-1', 'node-2']);
    t.deepEqual([...byNode.get('node-1')!], [['default/a', true]]);
    t.deepEqual([...byNode.get('node-2')!].sort(), [['default/b', true], ['default/c', false]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
