import test from 'ava';
import fc from 'fast-check';
import { Fdb } from '../../src/l2/fdb.js';
import { parseMac } from '../../src/packet/addr.js';

const A = parseMac('0a:58:0a:f4:01:02')!;
const B = parseMac('0a:58:0a:f4:01:03')!;

test('learns, re-points a moved station, and ages out', (t) => {
  const fdb = new Fdb(16, 1000);
  t.is(fdb.lookup(A, 0), -1);
  fdb.learn(A, 3, 0);
  t.is(fdb.lookup(A, 10), 3);
  fdb.learn(A, 5, 500);
  t.is(fdb.lookup(A, 1400), 5, 'refreshed at 500, alive until 1500');
  t.is(fdb.lookup(A, 1501), -1, 'aged out');
  t.is(fdb.size, 0);
});

test('a full table refuses new addresses and counts them, keeps the old ones', (t) => {
  const fdb = new Fdb(2, 1e12);
  fdb.learn(A, 1, 0);
  fdb.learn(B, 2, 0);
  fdb.learn(A + 7, 3, 0);
  t.is(fdb.learnFailures, 1);
  t.is(fdb.lookup(A + 7, 0), -1);
  t.is(fdb.lookup(A, 0), 1);
  t.is(fdb.lookup(B, 0), 2);
});

test('flushPort and sweep remove the right entries', (t) => {
  const fdb = new Fdb(64, 100);
  for (let i = 0; i < 40; i++) fdb.learn(A + i, i % 4, i < 20 ? 0 : 50);
  fdb.flushPort(0);
  t.is(fdb.size, 30);
  t.is(fdb.sweep(120), 15, 'entries seen at 0 are past 100 ns old at 120');
  for (let i = 0; i < 40; i++) t.is(fdb.lookup(A + i, 120), i % 4 === 0 || i < 20 ? -1 : i % 4);
});

test('property: agrees with a Map model under learn, lookup, flush and sweep', (t) => {
  const mac = fc.integer({ min: 0, max: 40 }).map((i) => A + i * 0x10000000001);
  const op = fc.oneof(
    fc.record({ kind: fc.constant('learn' as const), mac, port: fc.nat({ max: 3 }), dt: fc.nat({ max: 30 }) }),
    fc.record({ kind: fc.constant('lookup' as const), mac, dt: fc.nat({ max: 30 }) }),
    fc.record({ kind: fc.constant('flush' as const), port: fc.nat({ max: 3 }) }),
    fc.record({ kind: fc.constant('sweep' as const), dt: fc.nat({ max: 30 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const aging = 100;
      const fdb = new Fdb(32, aging);
      const model = new Map<number, { port: number; seen: number }>();
      let now = 0;
      for (const o of ops) {
        if (o.kind === 'learn') {
          now += o.dt;
          if (model.has(o.mac) || model.size < 32) model.set(o.mac, { port: o.port, seen: now });
          fdb.learn(o.mac, o.port, now);
        } else if (o.kind === 'lookup') {
          now += o.dt;
          const e = model.get(o.mac);
          let want = -1;
          if (e !== undefined && now - e.seen > aging) model.delete(o.mac);
          else if (e !== undefined) want = e.port;
          if (fdb.lookup(o.mac, now) !== want) return false;
        } else if (o.kind === 'flush') {
          for (const [k, e] of model) if (e.port === o.port) model.delete(k);
          fdb.flushPort(o.port);
        } else {
          now += o.dt;
          for (const [k, e] of model) if (now - e.seen > aging) model.delete(k);
          fdb.sweep(now);
        }
        if (fdb.size !== model.size) return false;
      }
      return true;
    }),
  );
  t.pass();
});
