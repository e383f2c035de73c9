/** Token buckets against the clock cell: the burst at once, then the rate; a clock set back refills nothing. */
import test from 'ava';
import { TokenBuckets } from '../../src/datapath/token-buckets.js';

test('a bucket gives its burst, then its rate a second, and counts what it refused', (t) => {
  const clock = new Float64Array([5e9]);
  const b = new TokenBuckets(2, 10, 5, clock);
  const takes = (n: number) => Array.from({ length: n }, () => b.take(0)).filter(Boolean).length;
  t.is(takes(8), 5);
  t.is(b.suppressed[0], 3);
  t.true(b.take(1), 'buckets are independent');
  clock[0] += 0.5e9;
  t.is(takes(10), 5, 'half a second at 10/s');
  clock[0] += 100e9;
  t.is(takes(10), 5, 'never more than the burst');
  clock[0] -= 50e9;
  t.is(takes(3), 0, 'a clock set back refills nothing');
  t.throws(() => new TokenBuckets(1, 0, 1, clock), { instanceOf: RangeError });
  t.throws(() => new TokenBuckets(1, 1, 0.5, clock), { instanceOf: RangeError });
});
