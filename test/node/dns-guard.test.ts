import test from 'ava';
import { ConnectionLimits, TcpOwnerGate } from '../../src/node/dns-guard.js';
import type { TcpPeer } from '../../src/io/socket-owner.js';

test('connection limits: per client and in all, counted; a release makes room again', (t) => {
  const limits = new ConnectionLimits(3, 2);
  t.true(limits.admit(1));
  t.true(limits.admit(1));
  t.false(limits.admit(1), 'client 1 holds its share');
  t.true(limits.admit(2));
  t.false(limits.admit(3), 'the pool is full');
  t.deepEqual([limits.open, limits.refusedPerClient, limits.refusedTotal], [3, 1, 1]);
  limits.release(1);
  t.true(limits.admit(3));
  limits.release(9); // never admitted: no effect
  t.is(limits.open, 3);
  t.throws(() => new ConnectionLimits(0, 1), { instanceOf: RangeError });
});

test('the owner gate asks once for everyone waiting, bounds the waiting, and answers -1 when the read fails', async (t) => {
  const reads: number[] = [];
  let fail = false;
  const gate = new TcpOwnerGate({
    maxPending: 3,
    minIntervalMs: 5,
    attempts: 1,
    read: async (peers: readonly TcpPeer[]) => {
      reads.push(peers.length);
      if (fail) throw new Error('EIO');
      return Int32Array.from(peers, (p) => (p.clientPort === 1000 ? 0 : 1000));
    },
  });
  const first = [gate.ownerOf({ clientAddr: 1, clientPort: 1000 }), gate.ownerOf({ clientAddr: 1, clientPort: 2000 }), gate.ownerOf({ clientAddr: 1, clientPort: 1000 })];
  t.is(gate.ownerOf({ clientAddr: 1, clientPort: 3000 }), undefined, 'a fourth waiting is turned away');
  t.is(gate.turnedAway, 1);
  t.deepEqual(await Promise.all(first), [0, 1000, 0]);
  t.deepEqual(reads, [3], 'one read for all three');
  fail = true;
  t.is(await gate.ownerOf({ clientAddr: 1, clientPort: 1000 }), -1);
  const late = gate.ownerOf({ clientAddr: 1, clientPort: 1000 });
  gate.close();
  t.is(await late, -1, 'closing answers whoever still waits');
});

test('a connection not found in one read is asked again, up to the attempts; a match is final', async (t) => {
  let reads = 0;
  const gate = new TcpOwnerGate({
    maxPending: 4,
    minIntervalMs: 1,
    attempts: 3,
    // Port 1 shows up in the second read only (a line skipped while the table changed); port 2 never; port 3 is a user's at once.
    read: async (peers: readonly TcpPeer[]) => {
      reads++;
      return Int32Array.from(peers, (p) => (p.clientPort === 1 && reads >= 2 ? 0 : p.clientPort === 3 ? 1000 : -1));
    },
  });
  const answers = await Promise.all([1, 2, 3].map((clientPort) => gate.ownerOf({ clientAddr: 1, clientPort })));
  t.deepEqual(answers, [0, -1, 1000]);
  t.is(reads, 3, 'port 2 was asked three times in all');
});
