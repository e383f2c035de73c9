import test from 'ava';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
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
