/**
 * A histogram kept as the dataplane keeps its counters: a typed array of bucket counts, a
 * sum and a count, updated by `observe` with no allocation, and read at scrape time. The
 * buckets are the ones the real components export, so that dashboards' histogram_quantile
 * queries mean the same thing on podwire.
 *
 * This module imports nothing: the DNS counters and the node's kube-proxy timings both
 * keep their histograms here, and the metrics registry reads them.
 */

/** `count` bounds from `start`, each `factor` times the previous (Prometheus's ExponentialBuckets). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  if (!(start > 0) || !(factor > 1) || !Number.isInteger(count) || count < 1) throw new RangeError(`exponentialBuckets(${start}, ${factor}, ${count}): needs start > 0, factor > 1, count >= 1`);
  const out: number[] = [];
  for (let i = 0, b = start; i < count; i++, b *= factor) out.push(b);
  return out;
}

/** `count` bounds from `start`, `width` apart (Prometheus's LinearBuckets). */
export function linearBuckets(start: number, width: number, count: number): number[] {
  if (!(width > 0) || !Number.isInteger(count) || count < 1) throw new RangeError(`linearBuckets(${start}, ${width}, ${count}): needs width > 0, count >= 1`);
  return Array.from({ length: count }, (_, i) => start + i * width);
}

/** CoreDNS's plugin.TimeBuckets: 0.25 ms to 8 s, for coredns_dns_request_duration_seconds. */
export const COREDNS_TIME_BUCKETS: readonly number[] = exponentialBuckets(0.00025, 2, 16);
/** kube-proxy's sync_proxy_rules_duration_seconds: 1 ms to 16 s. */
export const KUBE_PROXY_SYNC_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 15);
/** kube-proxy's network_programming_duration_seconds: 0.25 s to 5 min. */
export const KUBE_PROXY_PROGRAMMING_BUCKETS: readonly number[] = [
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
];

export class BucketCounts {
  /** counts[i]: observations <= bounds[i] and above bounds[i - 1]; counts[bounds.length]: above the last. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new RangeError(`histogram bounds must increase: ${bounds[i - 1]} then ${bounds[i]}`);
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts one observation (seconds, say); NaN is ignored, as it belongs to no bucket. */
  observe(value: number): void {
    if (value !== value) return;
    const bounds = this.bounds;
    let lo = 0;
    let hi = bounds.length;
    // The first bound >= value, by bisection: 16 to 80 bounds take 4 to 7 steps.
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bounds[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    this.counts[lo]++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts per bound, as Prometheus's `_bucket{le}` series carry them; the last is +Inf. */
  cumulative(): number[] {
    const out: number[] = [];
    let running = 0;
    for (let i = 0; i < this.counts.length; i++) {
      running += this.counts[i];
      out.push(running);
    }
    return out;
  }
}
