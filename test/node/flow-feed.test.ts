/**
 * A node's observe op over a real ring: what is held, the newest N, since a time, the
 * node's own filtering; following new flows, the watermark when quiet; and a reader that
 * falls more than a ring behind is told how many it lost while the path went on writing.
 */
import test from 'ava';
import { flowUuid, type BuildContext } from '../../src/observe/build.js';
import { FlowDirectory } from '../../src/observe/directory.js';
import { FilterBuilder } from '../../src/observe/filter.js';
import { wallTime } from '../../src/observe/flow.js';
import { FlowFeed } from '../../src/node/flow-feed.js';
import type { ObserveChunk } from '../../src/node/control-protocol.js';
import { cluster as loadYaml, yaml } from '../cluster/helpers.js';
import { nextMac, tcpSyn, wireCluster } from '../helpers/datapath.js';

const YAML = yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: feed}
  spec: {nodes: 1}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client}
  spec: {containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: web}
  spec: {containers: [{name: c, image: nginx}]}
`;

const LIMITS = { eventsPerTurn: 4, flowsPerChunk: 3, pollMs: 5, heartbeatMs: 20 };

function setup(capacity = 64) {
  const cluster = loadYaml(YAML);
  const tc = wireCluster(cluster, { flows: { capacity } });
  const p = tc.nodes[0].pipeline;
  const client = tc.pod('client');
  const web = tc.pod('web');
  let now = 1e9;
  tc.setTime(now);
  const ctx: BuildContext = {
    nodeName: 'node-1',
    directory: new FlowDirectory(cluster, 'node-1'),
    policy: p.policy,
    time: wallTime(Date.UTC(2024, 0, 1)),
    uuid: (seq) => flowUuid('0', seq),
  };
  const feed = new FlowFeed(p.flows!, () => ctx, () => now, LIMITS, () => Promise.resolve());
  let port = 40000;
  const connect = (n = 1) => {
    for (let i = 0; i < n; i++) {
      now += 1e6;
      tc.setTime(now);
      tc.port(client).inject(tcpSyn({ srcMac: client.mac, dstMac: nextMac(cluster, client, web.ip), src: client.ip, dst: web.ip }, port++, 80));
    }
  };
  return { feed, connect, ring: p.flows!.ring, setNow: (ns: number) => (now = ns) };
}

function collector() {
  const chunks: ObserveChunk[] = [];
  return { chunks, sink: { send: async (c: ObserveChunk) => void chunks.push(c) }, ports: () => chunks.flatMap((c) => c.flows.map((f) => f.flow.l4!.TCP!.source_port)) };
}

const none = new FilterBuilder().build();

test('what the ring holds, in chunks; the newest N; since a time; filtered at the node', async (t) => {
  const { feed, connect } = setup();
  connect(10);
  const all = collector();
  t.like(await feed.stream({ filters: none, follow: false }, all.sink), { shown: 10, lost: 0, recorded: 10, capacity: 64 });
  t.deepEqual(all.ports(), [40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008, 40009]);
  t.true(all.chunks.every((c) => c.flows.length <= 3));
  t.true(all.chunks.every((c, i) => i === 0 || c.flows[0].at >= all.chunks[i - 1].flows.at(-1)!.at), 'in time order');

  const last = collector();
  await feed.stream({ filters: none, follow: false, last: 4 }, last.sink);
  t.deepEqual(last.ports(), [40006, 40007, 40008, 40009]);

  const since = collector();
  await feed.stream({ filters: none, follow: false, since: all.chunks.flatMap((c) => c.flows)[7].at }, since.sink);
  t.deepEqual(since.ports(), [40007, 40008, 40009]);

  const b = new FilterBuilder();
  b.set('not');
  b.set('from-port', '40003');
  const filtered = collector();
  t.like(await feed.stream({ filters: b.build(), follow: false }, filtered.sink), { shown: 9 });
  t.false(filtered.ports().includes(40003));
});

test('following: new flows as they come, the watermark alone when quiet, ended by close', async (t) => {
  const { feed, connect } = setup();
  connect(3);
  const c = collector();
  const done = feed.stream({ filters: none, follow: true }, c.sink);
  await new Promise((r) => setTimeout(r, 30));
  t.deepEqual(c.ports(), [], 'following without --last starts from now');
  t.true(c.chunks.length > 0 && c.chunks.every((x) => x.flows.length === 0), 'heartbeats');
  connect(2);
  await new Promise((r) => setTimeout(r, 30));
  t.deepEqual(c.ports(), [40003, 40004]);
  const marks = c.chunks.map((x) => x.watermark);
  t.deepEqual(marks, [...marks].sort((a, b) => a - b), 'watermarks only grow');
  feed.close();
  t.like(await done, { shown: 2 });
});

test('a reader that falls more than a ring behind is told how many events it lost, and goes on', async (t) => {
  const { feed, connect, ring } = setup(16);
  let release: () => void = () => undefined;
  const blocked = new Promise<void>((r) => (release = r));
  const chunks: ObserveChunk[] = [];
  let first = true;
  const sink = {
    send: async (c: ObserveChunk) => {
      chunks.push(c);
      if (first && c.flows.length > 0) {
        first = false;
        await blocked; // a client that stopped reading
      }
    },
  };
  const done = feed.stream({ filters: none, follow: true, last: 0 }, sink);
  connect(1);
  await new Promise((r) => setTimeout(r, 20));
  t.is(chunks.filter((c) => c.flows.length > 0).length, 1);
  connect(40); // the path does not wait: the ring wraps over what the reader has not read
  t.is(ring.written, 41);
  release();
  await new Promise((r) => setTimeout(r, 40));
  feed.close();
  const summary = await done;
  const lost = chunks.reduce((n, c) => n + (c.lost ?? 0), 0);
  const shown = chunks.reduce((n, c) => n + c.flows.length, 0);
  t.true(lost > 0);
  t.is(lost + shown, 41, 'every event was either shown or counted lost');
  t.like(summary, { lost, shown });
});
