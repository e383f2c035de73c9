import test from 'ava';
import fc from 'fast-check';
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, nextRestart, restartWanted, signalNumber, type Backoff } from '../../src/node/pod-runtime.js';

test("the kubelet's back-off: at once, then 10 s, 20 s, 40 s ... capped at 5 min", (t) => {
  let backoff: Backoff | undefined;
  const waits: number[] = [];
  let now = 0;
  for (let i = 0; i < 8; i++) {
    const r = nextRestart(backoff, now);
    waits.push(r.waitMs);
    backoff = r.next;
    now += r.waitMs + 1000; // each start crashes a second later
  }
  t.deepEqual(waits, [0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
});

test('a container that ran for more than twice the maximum starts over at once', (t) => {
  const first = nextRestart(undefined, 0).next;
  const second = nextRestart(first, 1000).next;
  t.is(nextRestart(second, 1000 + 2 * BACKOFF_MAX_MS).waitMs, 20_000, 'exactly twice the maximum is not yet over');
  const fresh = nextRestart(second, 1001 + 2 * BACKOFF_MAX_MS);
  t.is(fresh.waitMs, 0);
  t.is(fresh.next.delayMs, BACKOFF_INITIAL_MS);
});

test('the wait never exceeds the maximum and never shrinks while crashes come quickly', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: BACKOFF_MAX_MS }), { minLength: 1, maxLength: 30 }), (gaps) => {
        let backoff: Backoff | undefined;
        let now = 0;
        let last = -1;
        for (const gap of gaps) {
          const r = nextRestart(backoff, now);
          if (r.waitMs > BACKOFF_MAX_MS) return false;
          if (backoff !== undefined && r.waitMs < last) return false;
          last = r.waitMs;
          backoff = r.next;
          now += r.waitMs + gap;
        }
        return true;
      }),
    ),
  );
});

test('restartPolicy: Always restarts any exit, OnFailure a failure, Never none', (t) => {
  t.true(restartWanted('Always', 0));
  t.true(restartWanted('Always', 137));
  t.false(restartWanted('OnFailure', 0));
  t.true(restartWanted('OnFailure', 1));
  t.false(restartWanted('Never', 1));
  t.false(restartWanted('Never', 0));
});

test('signal numbers as a shell counts 128+N', (t) => {
  t.is(signalNumber('SIGKILL'), 9);
  t.is(signalNumber('SIGTERM'), 15);
});
