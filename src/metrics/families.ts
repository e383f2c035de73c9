/**
 * Metric families that are read at scrape time, on prom-client: counters and gauges are
 * prom-client's own, whose `collect()` (called by the registry on every scrape) sets each
 * series from the counter the dataplane keeps; histograms, whose buckets the dataplane
 * keeps itself (histogram.ts), are a Histogram whose export reads those buckets.
 *
 * Nothing here runs on the forwarding path: a scrape reads numbers, never a per-packet
 * table, and the forwarding path never calls into prom-client.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BucketCounts } from './histogram.js';

export type Labels = Readonly<Record<string, string>>;
/** Called once per scrape: `emit` one value per series. */
export type Reader = (emit: (labels: Labels, value: number) => void) => void;

/** `labels` with its keys in the family's order, so every series prints its labels alike. */
function ordered(labelNames: readonly string[], labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of labelNames) out[name] = labels[name] ?? '';
  return out;
}

export function counterFamily(registry: Registry, name: string, help: string, labelNames: readonly string[], read: Reader): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      // Counters the dataplane keeps only grow; prom-client refuses a negative increment.
      read((labels, value) => this.inc(ordered(labelNames, labels), Math.max(0, value)));
    },
  });
}

export function gaugeFamily(registry: Registry, name: string, help: string, labelNames: readonly string[], read: Reader): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      read((labels, value) => this.set(ordered(labelNames, labels), value));
    },
  });
}

/** One series of a histogram family: its labels and the buckets the dataplane keeps for it. */
export interface HistogramSeries {
  readonly labels: Labels;
  readonly buckets: BucketCounts;
}

type ExportedValue = { value: number; labels: Record<string, string | number>; sharedLabels?: Labels; metricName: string };

/**
 * A prom-client Histogram whose series come from `read()` at each scrape instead of its
 * own observations: the exported shape (`_bucket{le}` cumulative, `+Inf`, `_sum`,
 * `_count`) is prom-client's, the numbers are the dataplane's.
 */
class ReadHistogram extends Histogram {
  constructor(
    registry: Registry,
    private readonly familyName: string,
    private readonly familyHelp: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    private readonly read: () => Iterable<HistogramSeries>,
  ) {
    super({ name: familyName, help: familyHelp, labelNames, buckets: [...bounds], registers: [registry] });
  }

  private exported(): ExportedValue[] {
    const values: ExportedValue[] = [];
    for (const { labels, buckets } of this.read()) {
      if (buckets.bounds.length !== this.bounds.length || buckets.bounds.some((b, i) => b !== this.bounds[i])) {
        throw new Error(`${this.familyName}: a series kept other buckets than the family's`);
      }
      const cumulative = buckets.cumulative();
      for (let i = 0; i < this.bounds.length; i++) values.push({ labels: { le: this.bounds[i] }, sharedLabels: labels, value: cumulative[i], metricName: `${this.familyName}_bucket` });
      values.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: buckets.count, metricName: `${this.familyName}_bucket` });
      values.push({ labels: {}, sharedLabels: labels, value: buckets.sum, metricName: `${this.familyName}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: buckets.count, metricName: `${this.familyName}_count` });
    }
    return values;
  }

  // The registry asks for this form when it writes the text format; prom-client's own
  // get() (JSON) reads it too and merges the shared labels into each value's.
  async getForPromString() {
    return { name: this.familyName, help: this.familyHelp, type: 'histogram', values: this.exported(), aggregator: 'sum' };
  }
}

export function histogramFamily(registry: Registry, name: string, help: string, labelNames: readonly string[], bounds: readonly number[], read: () => Iterable<HistogramSeries>): void {
  new ReadHistogram(registry, name, help, labelNames, bounds, read);
}
