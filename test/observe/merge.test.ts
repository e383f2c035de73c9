/**
 * Several nodes' streams merged in time order: nothing goes out before every streaming node
 * has passed its time; an ended stream holds nobody back; the merged order is the order of
 * the flows' times whatever order the nodes' chunks arrive in.
 */
import test from 'ava';
import fc from 'fast-check';
import { FlowMerger, type TimedItem } from '../../src/observe/merge.js';

const item = (node: string, at: number): TimedItem => ({ node, at });

test('a flow waits until every node has passed its time; an idle node\'s watermark lets it go', (t) => {
  const m = new FlowMerger(['a', 'b']);
  m.add('a', [item('a', 10), item('a', 30)], 30);
  t.deepEqual(m.drain(), [], 'b has said nothing yet');
  m.add('b', [item('b', 20)], 25);
  t.deepEqual(m.drain().map((i) => `${i.node}${i.at}`), ['a10', 'b20']);
  m.add('b', [], 40);
  t.deepEqual(m.drain().map((i) => `${i.node}${i.at}`), ['a30']);
  m.end('a');
  m.add('b', [item('b', 50)], 50);
  t.deepEqual(m.drain().map((i) => i.at), [50], 'a ended: it holds b back no more');
  t.deepEqual(m.flush(), []);
});

test('property: whatever the chunking, every flow comes out once and in time order', (t) => {
  const stream = fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 30 }).map((xs) => [...xs].sort((a, b) => a - b));
  fc.assert(
    fc.property(fc.array(stream, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (streams, cuts) => {
      const nodes = streams.map((_, i) => `n${i}`);
      const m = new FlowMerger(nodes);
      const out: TimedItem[] = [];
      const pos = streams.map(() => 0);
      let c = 0;
      while (pos.some((p, i) => p < streams[i].length)) {
        const open = streams.map((_, k) => k).filter((k) => pos[k] < streams[k].length);
        const i = open[cuts[c % cuts.length] % open.length];
        const n = 1 + (cuts[(c + 1) % cuts.length] % 3);
        c += 2;
        const chunk = streams[i].slice(pos[i], pos[i] + n).map((at) => item(nodes[i], at));
        pos[i] += chunk.length;
        const done = pos[i] >= streams[i].length;
        m.add(nodes[i], chunk, done ? Infinity : (chunk.at(-1)?.at ?? 0));
        out.push(...m.drain());
      }
      out.push(...m.flush());
      const all = streams.flat().sort((a, b) => a - b);
      return out.length === all.length && out.every((x, k) => x.at === all[k]);
    }),
  );
  t.pass();
});
