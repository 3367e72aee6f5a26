// Lossless merging before encoding (issue 11, the same merge the batcher does): samples that share a series and a
// timestamp bucket (the minute for resolution 60, the second for resolution 1) become one value -> count histogram.
// CloudWatch stores at that granularity, so sum, count, min, max and percentiles are unchanged.
import { MAX_VALUES_PER_DATUM } from "./limits.js";
import type { Datum, Series } from "./wire.js";

interface SeriesBuckets {
  series: Series;
  buckets: Map<number, Map<number, number>>; // bucket start -> value -> count
}

/** Histograms per series (keyed by its canonical head) and bucket start, in first-seen order. */
export class BucketAggregator {
  private readonly bySeries = new Map<string, SeriesBuckets>();
  samples = 0;

  /** Merge samples [start, end) of the parallel arrays. */
  addRange(series: Series[], values: number[], timestamps: number[], start: number, end: number): void {
    let lastSeries: Series | undefined;
    let buckets: Map<number, Map<number, number>> | undefined;
    for (let i = start; i < end; i++) {
      const s = series[i]!;
      if (s !== lastSeries) {
        lastSeries = s;
        buckets = this.bucketsOf(s);
      }
      const bucket = Math.floor(timestamps[i]! / s.resolution) * s.resolution;
      let histogram = buckets!.get(bucket);
      if (histogram === undefined) buckets!.set(bucket, (histogram = new Map()));
      const value = values[i]!;
      histogram.set(value, (histogram.get(value) ?? 0) + 1);
    }
    this.samples += end - start;
  }

  /** Merge an already merged datum back in (a retry of unsent data). */
  addDatum(datum: Datum): void {
    const buckets = this.bucketsOf(datum.series);
    let histogram = buckets.get(datum.timestamp);
    if (histogram === undefined) buckets.set(datum.timestamp, (histogram = new Map()));
    datum.values.forEach((value, i) => {
      const count = datum.counts[i]!;
      histogram!.set(value, (histogram!.get(value) ?? 0) + count);
      this.samples += count;
    });
  }

  private bucketsOf(series: Series): Map<number, Map<number, number>> {
    let entry = this.bySeries.get(series.head);
    if (entry === undefined) this.bySeries.set(series.head, (entry = { series, buckets: new Map() }));
    return entry.buckets;
  }

  /** The merged datums, at most MAX_VALUES_PER_DATUM distinct values each; empties the aggregator. */
  *datums(): Generator<Datum> {
    for (const { series, buckets } of this.bySeries.values()) {
      for (const [timestamp, histogram] of buckets) {
        let values: number[] = [];
        let counts: number[] = [];
        for (const [value, count] of histogram) {
          values.push(value);
          counts.push(count);
          if (values.length === MAX_VALUES_PER_DATUM) {
            yield { series, timestamp, values, counts };
            values = [];
            counts = [];
          }
        }
        if (values.length > 0) yield { series, timestamp, values, counts };
      }
    }
    this.bySeries.clear();
    this.samples = 0;
  }
}

export function sampleCount(datum: Datum): number {
  let total = 0;
  for (const c of datum.counts) total += c;
  return total;
}
