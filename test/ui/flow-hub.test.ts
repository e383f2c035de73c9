import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ObserveChunk, ObserveQuery } from '../../src/node/control-protocol.js';
import type { Flow } from '../../src/observe/flow.js';
import { FlowHub, type HubFlow, type ObserveStream } from '../../src/ui/flow-hub.js';

function flow(src: string, dst: string): Flow {
  return { time: '2026-12-06T21:02:31.871470648Z', verdict: 'FORWARDED', IP: { source: src, destination: dst }, Type: 'L3_L4', event_type: { type: 4 }, is_reply: false };
}

/** A node's stream that sends `batches` (each at its time, µs), then fails or holds open until the hub lets go. */
function node(batches: { at: number; flow: Flow }[][], thenFail: boolean, asked: ObserveQuery[]): (query: ObserveQuery, onChunk: (c: ObserveChunk) => void | Promise<void>) => Promise<never> {
  return async (query, onChunk) => {
    asked.push(query);
    for (const flows of batches) {
      const after = query.since ?? 0;
      const fresh = flows.filter((f) => f.at >= after);
      await onChunk({ flows: fresh, watermark: Math.max(0, ...flows.map((f) => f.at)) });
    }
    if (thenFail) throw new Error('node went away');
    for (;;) {
      await sleep(20);
      await onChunk({ flows: [], watermark: 1e18 });
    }
  };
}

test('two nodes merged in time order into the ring and to listeners; a failed stream is taken up again after its last flow', async (t) => {
  const asked: Record<string, ObserveQuery[]> = { a: [], b: [] };
  const streams: Record<string, ReturnType<typeof node>> = {
    a: node([[{ at: 10, flow: flow('10.244.1.2', '10.244.2.2') }, { at: 30, flow: flow('10.244.1.2', '10.244.2.3') }]], true, asked.a),
    b: node([[{ at: 20, flow: flow('10.244.2.2', '10.244.1.2') }]], false, asked.b),
  };
  const stream: ObserveStream = (n, q, onChunk) => streams[n](q, onChunk);
  const hub = new FlowHub(stream, 10);
  const heard: HubFlow[] = [];
  hub.subscribe((flows) => heard.push(...flows));
  hub.follow(['b', 'a']);
  await sleep(1300);
  hub.close();
  t.deepEqual(heard.slice(0, 3).map((f) => [f.at, f.node]), [
    [10, 'a'],
    [20, 'b'],
    [30, 'a'],
  ]);
  t.deepEqual(heard.slice(0, 3).map((f) => f.edges[0].key), ['ip:10.244.1.2>ip:10.244.2.2', 'ip:10.244.2.2>ip:10.244.1.2', 'ip:10.244.1.2>ip:10.244.2.3']);
  t.is(heard.length, 3, 'the retry sends nothing again');
  t.like(asked.a[0], { follow: true, last: 500 });
  t.like(asked.a[1], { follow: true, since: 31 });
  t.is(asked.b.length, 1);
  t.is(hub.unavailable.get('a'), 'node went away');
  t.deepEqual(hub.recent(2).map((f) => f.at), [20, 30]);
  t.deepEqual(hub.recent(10, 'ip:10.244.2.2>ip:10.244.1.2').map((f) => f.at), [20]);
});

test('the ring keeps the newest flows only, and a new set of nodes ends the old streams', async (t) => {
  let opened = 0;
  let ended = 0;
  const stream: ObserveStream = async (_n, _q, onChunk) => {
    opened++;
    try {
      const flows = Array.from({ length: 8 }, (_, i) => ({ at: i + 1, flow: flow('192.0.2.100', `10.244.1.${i + 2}`) }));
      await onChunk({ flows, watermark: 100 });
      for (;;) {
        await sleep(20);
        await onChunk({ flows: [], watermark: 100 });
      }
    } finally {
      ended++;
    }
  };
  const hub = new FlowHub(stream, 5);
  hub.follow(['a']);
  await sleep(100);
  t.deepEqual(hub.recent(100).map((f) => f.at), [4, 5, 6, 7, 8]);
  hub.follow(['a']);
  t.is(opened, 1, 'the same nodes: nothing starts again');
  hub.follow(['a', 'b']);
  await sleep(100);
  t.is(opened, 3);
  t.is(ended, 1, 'the old stream ended at its next chunk');
  hub.close();
  await sleep(100);
  t.is(ended, 3);
});
