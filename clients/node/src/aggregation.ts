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
  /** Distinct values held, over every series and bucket: what memory grows with. */
  distinct = 0;

  /**
   * Merge samples [start, end) of the parallel arrays. A sample whose value is new to its bucket while `maxDistinct`
   * values are held already is left out; returns how many were (0 without a bound).
   */
  addRange(
    series: Series[],
    values: number[],
    timestamps: number[],
    start: number,
    end: number,
    maxDistinct = Infinity,
  ): number {
    let overflow = 0;
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
      const count = histogram.get(value);
      if (count === undefined) {
        if (this.distinct >= maxDistinct) {
          overflow += 1;
          continue;
        }
        this.distinct += 1;
      }
      histogram.set(value, (count ?? 0) + 1);
    }
    this.samples += end - start - overflow;
    return overflow;
  }

  /** Merge an already merged datum back in (a retry of unsent data). */
  addDatum(datum: Datum): void {
    const buckets = this.bucketsOf(datum.series);
    let histogram = buckets.get(datum.timestamp);
    if (histogram === undefined) buckets.set(datum.timestamp, (histogram = new Map()));
    datum.values.forEach((value, i) => {
      const count = datum.counts[i]!;
      const before = histogram!.get(value);
      if (before === undefined) this.distinct += 1;
      histogram!.set(value, (before ?? 0) + count);
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
    this.clear();
  }

  clear(): void {
    this.bySeries.clear();
    this.samples = 0;
    this.distinct = 0;
  }
}

export function sampleCount(datum: Datum): number {
  let total = 0;
  for (const c of datum.counts) total += c;
  return total;
}
