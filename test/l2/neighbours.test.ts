import test from 'ava';
import { NeighbourTable } from '../../src/l2/neighbours.js';

const frame = Buffer.from('a frame for 192.0.2.1');

test('a frame is held until its neighbour resolves, then released once', (t) => {
  const n = new NeighbourTable();
  t.is(n.lookup(1, 0), -1);
  t.true(n.hold(1, frame, 0, frame.length, 0), 'first frame: send an ARP request');
  t.false(n.hold(1, frame, 0, frame.length, 10), 'second frame while pending: dropped, no new request');
  const held = n.learn(1, 0xaabbccddeeff, 20);
  t.deepEqual(held?.frame.subarray(0, held.length), frame);
  t.is(n.lookup(1, 30), 0xaabbccddeeff);
  t.is(n.learn(1, 0xaabbccddeeff, 40), undefined, 'nothing held any more');
  t.like(n.stats, { learned: 1, held: 1, released: 1, holdDropped: 1 });
});

test('entries go stale without confirmation; held frames expire', (t) => {
  const n = new NeighbourTable(8, 8, 1000, 100);
  n.learn(1, 5, 0);
  t.is(n.lookup(1, 1000), 5);
  t.is(n.lookup(1, 1001), -1);
  t.true(n.hold(2, frame, 0, 4, 0));
  t.true(n.hold(2, frame, 0, 4, 200), 'the earlier hold expired: ask again');
  t.is(n.learn(2, 9, 400), undefined, 'the frame held at 200 waited too long');
});

test('bounded: a full table learns nothing new, a full hold queue holds nothing new', (t) => {
  const n = new NeighbourTable(2, 1);
  n.learn(1, 1, 0);
  n.learn(2, 2, 0);
  n.learn(3, 3, 0);
  t.is(n.lookup(3, 0), -1);
  t.is(n.stats.tableFull, 1);
  t.true(n.hold(10, frame, 0, 4, 0));
  t.false(n.hold(11, frame, 0, 4, 0));
});
