// The bounded in-memory buffer between sendMetric (the caller) and the sender. Three parallel arrays instead of an
// object per metric: a push is three array stores, and a full buffer of 100,000 metrics holds ~2.4 MB.
import type { Series } from "./wire.js";

export interface TakenMetrics {
  series: Series[];
  values: number[];
  timestamps: number[];
  count: number;
}

interface Waiter {
  target: number;
  resolve: (done: boolean) => void;
  timer?: NodeJS.Timeout;
}

export class MetricBuffer {
  private series: Series[] = [];
  private values: number[] = [];
  private timestamps: number[] = [];
  private waiters: Waiter[] = [];
  /** Metrics accepted so far (a sequence number: flush waits for everything accepted before it). */
  accepted = 0;
  /** Metrics the sender is done with: sent, published by the fallback, or dropped. */
  handled = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.series.length;
  }

  /** Append one validated metric; false when the buffer is full (the caller counts the drop). */
  push(series: Series, value: number, timestamp: number): boolean {
    const series_ = this.series;
    if (series_.length >= this.capacity) return false;
    series_.push(series);
    this.values.push(value);
    this.timestamps.push(timestamp);
    this.accepted += 1;
    return true;
  }

  /** Everything buffered now, for one send round; the buffer starts empty again. With `before` (epoch seconds),
   * only the metrics whose bucket starts before it: a minute-aligned round leaves the current minute to fill. */
  take(before?: number): TakenMetrics {
    if (before === undefined) {
      const taken = {
        series: this.series,
        values: this.values,
        timestamps: this.timestamps,
        count: this.series.length,
      };
      this.series = [];
      this.values = [];
      this.timestamps = [];
      return taken;
    }
    const taken: TakenMetrics = { series: [], values: [], timestamps: [], count: 0 };
    const kept: TakenMetrics = { series: [], values: [], timestamps: [], count: 0 };
    for (let i = 0; i < this.series.length; i++) {
      const series = this.series[i]!;
      const timestamp = this.timestamps[i]!;
      const into = timestamp - (timestamp % series.resolution) < before ? taken : kept;
      into.series.push(series);
      into.values.push(this.values[i]!);
      into.timestamps.push(timestamp);
      into.count += 1;
    }
    this.series = kept.series;
    this.values = kept.values;
    this.timestamps = kept.timestamps;
    return taken;
  }

  /** Record that `count` taken metrics are done with, and wake the flushes that were waiting for them. */
  markHandled(count: number): void {
    this.handled += count;
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => {
      if (this.handled < waiter.target) return true;
      clearTimeout(waiter.timer);
      waiter.resolve(true);
      return false;
    });
  }

  /** Resolves true once everything accepted before the call is handled, false after `timeoutMs`. */
  waitHandled(timeoutMs?: number): Promise<boolean> {
    const target = this.accepted;
    if (this.handled >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = { target, resolve };
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(
          () => {
            this.waiters = this.waiters.filter((w) => w !== waiter);
            resolve(false);
          },
          Math.max(0, timeoutMs),
        );
      }
      this.waiters.push(waiter);
    });
  }
}
