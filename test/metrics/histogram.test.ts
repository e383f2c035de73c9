import test from 'ava';
import fc from 'fast-check';
import { BucketCounts, COREDNS_TIME_BUCKETS, exponentialBuckets, KUBE_PROXY_PROGRAMMING_BUCKETS, KUBE_PROXY_SYNC_BUCKETS, linearBuckets } from '../../src/metrics/histogram.js';

test('the buckets are the real components\' own', (t) => {
  // CoreDNS plugin.TimeBuckets = ExponentialBuckets(0.00025, 2, 16): 0.25 ms .. 8.192 s.
  t.is(COREDNS_TIME_BUCKETS.length, 16);
  t.is(COREDNS_TIME_BUCKETS[0], 0.00025);
  t.is(COREDNS_TIME_BUCKETS[15], 8.192);
  // kube-proxy SyncProxyRulesLatency: ExponentialBuckets(0.001, 2, 15): 1 ms .. 16.384 s.
  t.deepEqual([KUBE_PROXY_SYNC_BUCKETS.length, KUBE_PROXY_SYNC_BUCKETS[0], KUBE_PROXY_SYNC_BUCKETS[14]], [15, 0.001, 16.384]);
  // NetworkProgrammingLatency: 0.25, 0.5, 1..59, 60..115 by 5, 120..300 by 30.
  t.is(KUBE_PROXY_PROGRAMMING_BUCKETS.length, 2 + 59 + 12 + 7);
  t.deepEqual(KUBE_PROXY_PROGRAMMING_BUCKETS.slice(0, 4), [0.25, 0.5, 1, 2]);
  t.deepEqual(KUBE_PROXY_PROGRAMMING_BUCKETS.slice(-3), [240, 270, 300]);
  t.deepEqual(linearBuckets(60, 5, 3), [60, 65, 70]);
  t.deepEqual(exponentialBuckets(1, 10, 3), [1, 10, 100]);
});

test('bad bounds are refused with the reason', (t) => {
  t.throws(() => new BucketCounts([1, 1]), { message: /must increase/ });
  t.throws(() => exponentialBuckets(0, 2, 3), { instanceOf: RangeError });
  t.throws(() => linearBuckets(0, 1, 0), { instanceOf: RangeError });
});

test('an observation lands in the first bucket whose bound is at least it, as Prometheus\'s le says', (t) => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: -1, max: 400, noNaN: true }), { maxLength: 50 }), (values) => {
      const h = new BucketCounts(KUBE_PROXY_PROGRAMMING_BUCKETS);
      for (const v of values) h.observe(v);
      const cumulative = h.cumulative();
      KUBE_PROXY_PROGRAMMING_BUCKETS.forEach((le, i) => t.is(cumulative[i], values.filter((v) => v <= le).length));
      t.is(cumulative[cumulative.length - 1], values.length);
      t.is(h.count, values.length);
    }),
  );
});

test('NaN is no observation', (t) => {
  const h = new BucketCounts([1]);
  h.observe(NaN);
  t.is(h.count, 0);
});
