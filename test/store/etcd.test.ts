/**
 * EtcdKv against real etcd: each test starts its own etcd (so stopping one disturbs no other)
 * and stops it in teardown. A TCP relay stands between a client and etcd where a test must cut
 * one client off while the rest of the cluster carries on.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { EtcdKv, eventsAfter, nextBackoff, parseEtcdUrl, StoreUnreachable, type EtcdConnection, type KeyValue, type WatchEvent } from '../../src/store/etcd.js';
import { etcdAvailable, startEtcd, type EtcdCluster } from '../helpers/etcd.js';

const skip = etcdAvailable() ? undefined : 'etcd-server is not installed (/usr/bin/etcd, /usr/bin/etcdctl)';
const etcdTest = skip ? test.skip : test;
if (skip) test('etcd tests are skipped', (t) => t.log(skip));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean | Promise<boolean>, withinMs = 10_000): Promise<void> {
  const end = Date.now() + withinMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`not within ${withinMs} ms: ${what}`);
    await sleep(50);
  }
}

async function etcd(t: ExecutionContext, opts: Parameters<typeof startEtcd>[0] = {}): Promise<EtcdCluster> {
  const cluster = await startEtcd({ name: 'pwt-ekv', ...opts });
  t.teardown(() => cluster.stop());
  return cluster;
}

function client(t: ExecutionContext, conn: EtcdConnection, opts: Parameters<typeof EtcdKv.connect>[1] = {}): EtcdKv {
  const kv = EtcdKv.connect(conn, opts);
  t.teardown(() => kv.close());
  return kv;
}

/** A TCP relay to etcd that can be cut (every connection dropped, new ones refused) and restored. */
async function relay(t: ExecutionContext, target: string): Promise<{ endpoint: string; cut(): void; restore(): void }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((inbound) => {
    if (!open) {
      inbound.destroy();
      return;
    }
    const outbound = connect(port, host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
  });
  const address = server.address();
  const endpoint = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    endpoint,
    cut: () => {
      open = false;
      sockets.forEach((s) => s.destroy());
    },
    restore: () => {
      open = true;
    },
  };
}

/** Records what a watch delivers, as one flat list. */
function recorder() {
  const seen: WatchEvent[] = [];
  const snapshots: { kvs: readonly KeyValue[]; revision: number }[] = [];
  return {
    seen,
    snapshots,
    handlers: {
      onEvents: (events: readonly WatchEvent[]) => seen.push(...events),
      onSnapshot: (kvs: readonly KeyValue[], revision: number) => snapshots.push({ kvs, revision }),
    },
  };
}

const describe = (e: WatchEvent) => (e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}` : `delete ${e.key}`);
const revisionOf = (e: WatchEvent) => (e.type === 'put' ? e.kv.modRevision : e.modRevision);

// ---- pure parts ----

test('parseEtcdUrl: endpoints from etcd://h:p[,h:p]', (t) => {
  t.deepEqual(parseEtcdUrl('etcd://127.0.0.1:2379'), ['127.0.0.1:2379']);
  t.deepEqual(parseEtcdUrl('etcd://10.0.0.1:2379,10.0.0.2:2379,etcd-3.example:32379'), ['10.0.0.1:2379', '10.0.0.2:2379', 'etcd-3.example:32379']);
  t.deepEqual(parseEtcdUrl('etcd://[::1]:2379'), ['[::1]:2379']);
});

test('parseEtcdUrl: anything else is refused, saying what is wrong', (t) => {
  const cases: [string, RegExp][] = [
    ['', /must start with etcd:\/\//],
    ['http://127.0.0.1:2379', /must start with etcd:\/\//],
    ['etcd://', /no endpoints/],
    ['etcd://127.0.0.1', /endpoint 1 "127.0.0.1" has no port/],
    ['etcd://127.0.0.1:2379,', /endpoint 2 "" is empty/],
    ['etcd://127.0.0.1:0', /bad port "0"/],
    ['etcd://127.0.0.1:65536', /bad port "65536"/],
    ['etcd://127.0.0.1:23x9', /bad port "23x9"/],
    ['etcd://:2379', /has no host/],
    ['etcd://300.1.1.1:2379', /bad IPv4 host "300.1.1.1"/],
    ['etcd://1.2.3:2379', /bad IPv4 host/],
    ['etcd://bad_host:2379', /bad host name "bad_host"/],
    ['etcd://-x.example:2379', /bad host name/],
    ['etcd://h:1/path', /bad port "1\/path"/],
    ['etcd://[zz]:2379', /bad IPv6 host/],
    ['etcd://a:1,a:1', /endpoint a:1 is given twice/],
  ];
  for (const [url, message] of cases) t.throws(() => parseEtcdUrl(url), { message }, url);
});

test('parseEtcdUrl reads back any list of distinct IPv4 endpoints it is given', (t) => {
  const endpoint = fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([ip, port]) => `${ip}:${port}`);
  fc.assert(
    fc.property(fc.uniqueArray(endpoint, { minLength: 1, maxLength: 5 }), (endpoints) => {
      t.deepEqual(parseEtcdUrl(`etcd://${endpoints.join(',')}`), endpoints);
    }),
  );
});

test('backoff doubles from 250 ms and stays at 5 s', (t) => {
  const steps = [250];
  while (steps.length < 8) steps.push(nextBackoff(steps[steps.length - 1]));
  t.deepEqual(steps, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
});

test('a watch response resumed from an older revision yields only the events after the last delivered', (t) => {
  const kv = (key: string, value: string, rev: number) => ({ key: Buffer.from(key), value: Buffer.from(value), mod_revision: String(rev), create_revision: '2', version: '1', lease: '0' });
  const response = {
    events: [
      { type: 'Put' as const, kv: kv('/a', '1', 4), prev_kv: kv('', '', 0) },
      { type: 'Put' as const, kv: kv('/b', '1', 5), prev_kv: kv('', '', 0) },
      { type: 'Delete' as const, kv: kv('/a', '', 6), prev_kv: kv('', '', 0) },
    ],
  };
  t.deepEqual(eventsAfter(response, 4), [
    { type: 'put', kv: { key: '/b', value: '1', modRevision: 5, createRevision: 2, lease: '0' } },
    { type: 'delete', key: '/a', modRevision: 6 },
  ]);
  t.deepEqual(eventsAfter(response, 6), []);
  t.is(eventsAfter(response, 0).length, 3);
});

// ---- against etcd ----

etcdTest('get, put, list, delete and deletePrefix', async (t) => {
  const cluster = await etcd(t);
  const kv = client(t, { endpoints: cluster.endpoints });
  t.is(await kv.get('/k/a'), undefined);
  const r1 = await kv.put('/k/a', '{"n":1}');
  const r2 = await kv.put('/k/b', 'two');
  await kv.put('/k/b', 'two again');
  await kv.put('/kx', 'outside the prefix');
  t.true(r2 > r1);
  t.like(await kv.get('/k/a'), { key: '/k/a', value: '{"n":1}', modRevision: r1, createRevision: r1, lease: '0' });
  const b = await kv.get('/k/b');
  t.is(b?.value, 'two again');
  t.is(b?.createRevision, r2);
  const listed = await kv.list('/k/');
  t.deepEqual(listed.kvs.map((x) => [x.key, x.value]), [['/k/a', '{"n":1}'], ['/k/b', 'two again']]);
  t.is(listed.revision, r2 + 2);
  t.true(await kv.delete('/k/a'));
  t.false(await kv.delete('/k/a'));
  t.is(await kv.deletePrefix('/k/'), 1);
  t.deepEqual((await kv.list('/k')).kvs.map((x) => x.key), ['/kx'], 'the prefix /k/ is gone, /kx is not under it');
  t.is((await cluster.etcdctl(['get', '/kx', '--print-value-only'])).trim(), 'outside the prefix');
});

etcdTest('transact commits all or nothing: a second create of the same key fails and changes nothing', async (t) => {
  const cluster = await etcd(t);
  const kv = client(t, { endpoints: cluster.endpoints });
  const create = (value: string) => kv.transact({ absent: ['/t/pod'], puts: [{ key: '/t/pod', value }, { key: '/t/ip', value }] });
  t.true(await create('first'));
  const before = await kv.list('/t/');
  t.false(await create('second'));
  t.deepEqual(await kv.list('/t/'), before, 'nothing written, not even the revision moved');

  const pod = (await kv.get('/t/pod'))!;
  const stale = { key: '/t/pod', modRevision: pod.modRevision };
  t.true(await kv.transact({ unchanged: [stale], puts: [{ key: '/t/pod', value: 'updated' }], deletes: ['/t/ip'] }));
  t.false(await kv.transact({ unchanged: [stale], puts: [{ key: '/t/pod', value: 'lost update' }] }), 'the modRevision moved on');
  t.deepEqual((await kv.list('/t/')).kvs.map((x) => [x.key, x.value]), [['/t/pod', 'updated']]);
  t.false(await kv.transact({ unchanged: [{ key: '/t/pod', modRevision: 0 }], puts: [{ key: '/t/other', value: 'x' }] }), '0 means must not exist');
  t.true(await kv.transact({ unchanged: [{ key: '/t/new', modRevision: 0 }], absent: ['/t/ip'], puts: [{ key: '/t/new', value: 'x' }] }));
});

etcdTest('lease: keys vanish on revoke, on expiry once keepalives stop, and onLost says when etcd dropped it', async (t) => {
  const cluster = await etcd(t);
  const kv = client(t, { endpoints: cluster.endpoints });
  const lost: string[] = [];
  const revoked = await kv.grantLease(10, (why) => lost.push(why));
  await kv.put('/l/revoked', 'x', revoked);
  t.is((await kv.get('/l/revoked'))?.lease, revoked.id);
  await revoked.revoke();
  t.is(await kv.get('/l/revoked'), undefined);

  // Expiry: the owner's client closes, so nobody keeps its lease alive.
  const owner = client(t, { endpoints: cluster.endpoints });
  const expiring = await owner.grantLease(2, (why) => lost.push(why));
  await owner.transact({ puts: [{ key: '/l/expiring', value: 'x', lease: expiring }] });
  await sleep(2500);
  t.truthy(await kv.get('/l/expiring'), 'kept alive past its TTL while the client is open');
  await owner.close();
  await until('the key expires with its lease', async () => (await kv.get('/l/expiring')) === undefined, 6000);

  // Gone behind our back: etcd answers the next keepalive with TTL 0.
  const dropped = await kv.grantLease(3, (why) => lost.push(why));
  await cluster.etcdctl(['lease', 'revoke', BigInt(dropped.id).toString(16)]);
  await until('onLost', () => lost.length === 1, 3000);
  t.regex(lost[0], /etcd says lease \d+ is gone/);
  await sleep(1500);
  t.is(lost.length, 1, 'onLost once, and not for the leases revoked or released by us');
});

etcdTest('a watch and a lease ride out an etcd stop and restart: no event lost or repeated, the lease kept', async (t) => {
  const cluster = await etcd(t);
  const reachability: boolean[] = [];
  const kv = client(t, { endpoints: cluster.endpoints }, { callTimeoutMs: 1000, onReachability: (up) => reachability.push(up) });
  const writer = client(t, { endpoints: cluster.endpoints });
  const lost: string[] = [];
  const lease = await kv.grantLease(6, (why) => lost.push(why));
  await kv.put('/w/leased', 'held', lease);
  await writer.put('/w/before', '0');
  const rec = recorder();
  const stop = await kv.watchPrefix('/w/', rec.handlers);
  t.teardown(stop);
  t.deepEqual(rec.snapshots.map((s) => s.kvs.map((x) => x.key)), [['/w/before', '/w/leased']]);

  await writer.put('/w/a', '1');
  await writer.put('/w/b', '1');
  await writer.delete('/w/a');
  await until('three events', () => rec.seen.length === 3);

  await cluster.members[0].stop();
  const asked = Date.now();
  const failure = await t.throwsAsync(kv.get('/w/b'), { instanceOf: StoreUnreachable });
  t.true(Date.now() - asked <= 1200, `failed within the 1000 ms deadline (${Date.now() - asked} ms)`);
  t.regex(failure!.message, new RegExp(`^store unreachable: ${cluster.endpoints[0]}`));
  t.deepEqual(reachability, [false]);
  await sleep(1500);
  await cluster.members[0].start();
  const restarted = Date.now();
  // Written at once, most likely before the watcher is back: it must catch up from its revision.
  await writer.put('/w/c', '1');
  await writer.put('/w/b', '2');
  await writer.transact({ puts: [{ key: '/w/d', value: '1' }, { key: '/w/e', value: '1' }], deletes: ['/w/c'] });

  await until('every event', () => rec.seen.length >= 8, 15_000);
  await sleep(500);
  t.deepEqual(rec.seen.map(describe), ['put /w/a=1', 'put /w/b=1', 'delete /w/a', 'put /w/c=1', 'put /w/b=2', 'put /w/d=1', 'put /w/e=1', 'delete /w/c']);
  const revisions = rec.seen.map(revisionOf);
  t.deepEqual(revisions, [...revisions].sort((x, y) => x - y), 'in revision order');
  t.is(rec.snapshots.length, 1, 'resumed, not re-listed');
  await until('the probe or a call sees etcd again', () => reachability.length === 2);
  t.deepEqual(reachability, [false, true]);

  // Past the lease's TTL after the restart: only resumed keepalives keep the key.
  await sleep(Math.max(0, restarted + 7000 - Date.now()));
  t.is((await writer.get('/w/leased'))?.value, 'held');
  t.deepEqual(lost, []);
});

etcdTest('a watch cut off while etcd compacts past its revision lists again: onSnapshot with the store as it is', async (t) => {
  const cluster = await etcd(t);
  const line = await relay(t, cluster.endpoints[0]);
  const kv = client(t, { endpoints: [line.endpoint] }, { callTimeoutMs: 1000 });
  const writer = client(t, { endpoints: cluster.endpoints });
  await writer.put('/c/kept', '1');
  await writer.put('/c/removed', '1');
  const rec = recorder();
  t.teardown(await kv.watchPrefix('/c/', rec.handlers));
  await writer.put('/c/seen', '1');
  await until('the event before the cut', () => rec.seen.length === 1);

  line.cut();
  await writer.delete('/c/removed');
  await writer.put('/c/kept', '2');
  const last = await writer.put('/c/new', '1');
  await writer.put('/elsewhere', 'moves the revision on');
  await cluster.etcdctl(['compact', String(last)]);
  line.restore();

  await until('a second snapshot', () => rec.snapshots.length === 2, 15_000);
  const snapshot = rec.snapshots[1];
  t.deepEqual(snapshot.kvs.map((x) => [x.key, x.value]), [['/c/kept', '2'], ['/c/new', '1'], ['/c/seen', '1']]);
  t.is(snapshot.revision, last + 1);
  t.is(rec.seen.length, 1, 'the compacted-away changes come as the snapshot, not as events');
  await writer.put('/c/after', '1');
  await until('the watch goes on after the snapshot', () => rec.seen.length === 2);
  t.like(rec.seen[1], { type: 'put', kv: { key: '/c/after', value: '1' } });
});

etcdTest('calls against a stopped etcd throw StoreUnreachable within callTimeoutMs; the probe reports it back', async (t) => {
  const cluster = await etcd(t);
  const line = await relay(t, cluster.endpoints[0]);
  const events: [boolean, string][] = [];
  const kv = client(t, { endpoints: [line.endpoint] }, { callTimeoutMs: 500, onReachability: (up, why) => events.push([up, why]) });
  await kv.put('/u/a', '1');
  line.cut();
  for (const call of [() => kv.get('/u/a'), () => kv.put('/u/b', '1'), () => kv.list('/u/'), () => kv.transact({ absent: ['/u/c'] }), () => kv.grantLease(5, () => undefined)]) {
    const asked = Date.now();
    await t.throwsAsync(call(), { instanceOf: StoreUnreachable, message: /^store unreachable: 127\.0\.0\.1:\d+: / });
    t.true(Date.now() - asked <= 700, `${Date.now() - asked} ms`);
  }
  t.is(events.length, 1, 'one transition, however many calls fail');
  t.false(events[0][0]);
  line.restore();
  await until('the background probe notices', () => events.length === 2, 8000);
  t.deepEqual(events[1], [true, 'a call succeeded']);
});

etcdTest('campaign: one candidate leads; when its lease is lost the other leads within the TTL, and it campaigns again', async (t) => {
  const cluster = await etcd(t);
  const line = await relay(t, cluster.endpoints[0]);
  const a = client(t, { endpoints: [line.endpoint] }, { callTimeoutMs: 500 });
  const b = client(t, { endpoints: cluster.endpoints });
  const aLeads: boolean[] = [];
  const bLeads: boolean[] = [];
  t.teardown(await a.campaign('/e/leader', 'node-a', 2, (l) => aLeads.push(l)));
  await until('a leads', () => aLeads.length === 1);
  const stopB = await b.campaign('/e/leader', 'node-b', 2, (l) => bLeads.push(l));
  await sleep(300);
  t.deepEqual(bLeads, [], 'b waits');
  t.is(await b.leader('/e/leader'), 'node-a');

  line.cut();
  const cut = Date.now();
  await until('b leads', () => bLeads.length === 1, 4000);
  t.true(Date.now() - cut < 3500, `b led ${Date.now() - cut} ms after a was cut off (TTL 2 s)`);
  t.is(await b.leader('/e/leader'), 'node-b');
  await until('a knows it lost', () => aLeads.length === 2, 3000);
  t.deepEqual(aLeads, [true, false]);
  line.restore();
  await sleep(1500);
  t.deepEqual(aLeads, [true, false], 'a campaigns again but b holds the key');

  await stopB();
  t.deepEqual(bLeads, [true, false], 'resigning ends the leadership');
  await until('a leads again after b resigned', () => aLeads.length === 3, 4000);
  t.is(await b.leader('/e/leader'), 'node-a');
});

etcdTest('campaign: when the leader closes its client the other leads at once', async (t) => {
  const cluster = await etcd(t);
  const a = client(t, { endpoints: cluster.endpoints });
  const b = client(t, { endpoints: cluster.endpoints });
  const leads: string[] = [];
  await a.campaign('/e/x', 'a', 5, (l) => leads.push(`a ${l}`));
  await until('a leads', () => leads.length === 1);
  t.teardown(await b.campaign('/e/x', 'b', 5, (l) => leads.push(`b ${l}`)));
  const closed = Date.now();
  await a.close();
  await until('b leads', () => leads.includes('b true'), 5000);
  t.true(Date.now() - closed < 2000);
  t.deepEqual(leads, ['a true', 'a false', 'b true']);
  t.is(await b.leader('/e/x'), 'b');
});

etcdTest('TLS: a client with the client certificate works; without it, it is refused', async (t) => {
  const cluster = await etcd(t, { tls: true });
  t.truthy(cluster.tls);
  const kv = client(t, { endpoints: cluster.endpoints, tls: cluster.tls });
  await kv.put('/s/a', 'secret');
  t.is((await kv.get('/s/a'))?.value, 'secret');
  t.is((await cluster.etcdctl(['get', '/s/a', '--print-value-only'])).trim(), 'secret');
  const anonymous = client(t, { endpoints: cluster.endpoints, tls: { cacert: cluster.tls!.cacert } }, { callTimeoutMs: 1500 });
  await t.throwsAsync(anonymous.get('/s/a'), { instanceOf: StoreUnreachable });
  const plain = client(t, { endpoints: cluster.endpoints }, { callTimeoutMs: 1500 });
  await t.throwsAsync(plain.get('/s/a'), { instanceOf: StoreUnreachable });
});

etcdTest('three members: with one killed, reads, writes and an open watch carry on', async (t) => {
  const cluster = await etcd(t, { members: 3 });
  t.is(cluster.endpoints.length, 3);
  const conn = { endpoints: cluster.endpoints };
  const writer = client(t, conn, { callTimeoutMs: 2000 });
  // Each watcher is on a member picked at random: with four, one is most likely on the member killed.
  const watchers = Array.from({ length: 4 }, () => recorder());
  for (const w of watchers) t.teardown(await client(t, conn, { callTimeoutMs: 2000 }).watchPrefix('/m/', w.handlers));
  await writer.put('/m/0', 'before');
  await until('every watcher saw the first write', () => watchers.every((w) => w.seen.length === 1));

  await cluster.members[0].kill();
  // The killed member may have been raft's leader: the first write waits out the election. A write
  // that timed out may still have been committed, hence absent: a retry does not write it twice.
  const first = () => writer.transact({ absent: ['/m/1'], puts: [{ key: '/m/1', value: 'after' }] });
  await until('a write goes through', () => first().then(() => true, () => false), 10_000);
  for (let i = 2; i < 12; i++) {
    await writer.put(`/m/${i}`, 'after');
    t.is((await writer.get(`/m/${i}`))?.value, 'after');
  }
  t.is((await writer.list('/m/')).kvs.length, 12);
  await until('every watcher saw every write', () => watchers.every((w) => w.seen.length === 12), 15_000);
  for (const w of watchers) {
    t.deepEqual(w.seen.map((e) => (e.type === 'put' ? e.kv.key : '')), Array.from({ length: 12 }, (_, i) => `/m/${i}`));
  }
});

const netnsSkip = skip ?? (process.getuid?.() !== 0 ? 'needs root to create a network namespace' : undefined);
(netnsSkip ? test.skip : test)('the helper runs etcd inside a network namespace on the fixed ports, and etcdctl there', async (t) => {
  const netns = `pwt-ekv-${process.pid.toString(36)}`;
  const ip = (...args: string[]) => new Promise<void>((resolve, reject) => execFile('ip', args, (e) => (e ? reject(e) : resolve())));
  await ip('netns', 'add', netns);
  t.teardown(() => ip('netns', 'del', netns));
  await ip('-n', netns, 'link', 'set', 'lo', 'up');
  const cluster = await etcd(t, { netns });
  t.deepEqual(cluster.endpoints, ['127.0.0.1:2379']);
  await cluster.etcdctl(['put', '/n/a', 'inside']);
  t.is((await cluster.etcdctl(['get', '/n/a', '--print-value-only'])).trim(), 'inside');
});

etcdTest('campaign: the leader whose lease etcd drops stops leading, the other takes over, and the first one stays a candidate', async (t) => {
  const cluster = await etcd(t);
  const a = client(t, { endpoints: cluster.endpoints });
  const b = client(t, { endpoints: cluster.endpoints });
  const leads: string[] = [];
  t.teardown(await a.campaign('/e/y', 'a', 3, (l) => leads.push(`a ${l}`)));
  await until('a leads', () => leads.length === 1);
  t.teardown(await b.campaign('/e/y', 'b', 3, (l) => leads.push(`b ${l}`)));
  const held = (await b.get('/e/y'))!;
  await cluster.etcdctl(['lease', 'revoke', BigInt(held.lease).toString(16)]);
  await until('b leads and a knows it lost', () => leads.includes('b true') && leads.includes('a false'), 4000);
  await sleep(1500);
  t.deepEqual([...leads].sort(), ['a false', 'a true', 'b true']);
  t.is(await a.leader('/e/y'), 'b');
});
