/**
 * Token buckets, one per index (a drop reason, say), read against the dataplane's clock
 * cell: each holds up to `burst` tokens and refills at `rate` a second; taking one from an
 * empty bucket is refused and counted as suppressed. The flow recorder rate-limits drop
 * events with them, so that a flood of one kind of drop cannot push every other event out
 * of the ring.
 *
 * Typed arrays and the clock cell only: `take` allocates nothing, and no time crosses a
 * call as an argument (a double above 2^31 handed to a function that is not inlined is a
 * heap number).
 */

export class TokenBuckets {
  private readonly tokens: Float64Array;
  private readonly refilledAt: Float64Array;
  /** Takes refused, by index: the events a flood would have written. */
  readonly suppressed: Float64Array;
  private readonly perNs: number;

  /** Throws RangeError on a bad rate or burst: a configuration error. */
  constructor(
    count: number,
    readonly rate: number,
    readonly burst: number,
    /** The batch's time (ns) in element 0, as PathTables.clock holds it. */
    private readonly clock: Float64Array,
  ) {
    if (!(Number.isFinite(rate) && rate > 0)) throw new RangeError(`token bucket rate must be a positive number of events a second, got ${rate}`);
    if (!(Number.isInteger(burst) && burst >= 1)) throw new RangeError(`token bucket burst must be a positive integer, got ${burst}`);
    this.tokens = new Float64Array(count).fill(burst);
    this.refilledAt = new Float64Array(count).fill(clock[0]);
    this.suppressed = new Float64Array(count);
    this.perNs = rate / 1e9;
  }

  /** Takes a token from bucket `index` at the clock's time: true when there was one. */
  take(index: number): boolean {
    const now = this.clock[0];
    const last = this.refilledAt[index];
    // A clock set back (tests drive it) refills nothing rather than draining the bucket.
    let tokens = this.tokens[index] + (now > last ? now - last : 0) * this.perNs;
    if (tokens > this.burst) tokens = this.burst;
    if (now > last) this.refilledAt[index] = now;
    if (tokens < 1) {
      this.tokens[index] = tokens;
      this.suppressed[index]++;
      return false;
    }
    this.tokens[index] = tokens - 1;
    return true;
  }
}
