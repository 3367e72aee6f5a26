// Metrics held while SQS refuses the queue for a wrong setting (issue 15): merged (bounded by distinct values, not by
// calls), never published directly, offered to the queue again every queueRetryIntervalMs; one ERROR line per reason.
import { BucketAggregator } from "./aggregation.js";
import * as log from "./log.js";
import type { OutgoingMessage } from "./sqs.js";

export class HeldMetrics {
  /** Merged metrics SQS refused, already marked handled in the buffer. */
  private merged: BucketAggregator | undefined;
  private nextRetryAt = 0;
  /** Why the queue refuses what is held ("" when it does not): the ERROR line and stats().configError. */
  reason = "";

  constructor(private readonly retryIntervalMs: number) {}

  /** Metrics are held and due to be offered to the queue again (false when none are held). */
  get retryDue(): boolean {
    return this.merged !== undefined && performance.now() >= this.nextRetryAt;
  }

  /** The queue refuses and the next offer is not due yet. */
  get waiting(): boolean {
    return this.reason !== "" && performance.now() < this.nextRetryAt;
  }

  get samples(): number {
    return this.merged?.samples ?? 0;
  }

  /** What is held, to ride along with a round's new metrics; nothing is held afterwards. */
  take(): BucketAggregator | undefined {
    const merged = this.merged;
    this.merged = undefined;
    return merged;
  }

  /** Keep a round's merged metrics without a request (the next offer is not due yet). */
  keep(merged: BucketAggregator): void {
    this.merged = merged;
  }

  /** Keep what SQS refused for a wrong setting until the next offer; say so once per reason. */
  hold(failed: OutgoingMessage[], reason: string): void {
    const held = new BucketAggregator();
    for (const message of failed) for (const datum of message.datums) held.addDatum(datum);
    this.merged = held;
    this.nextRetryAt = performance.now() + this.retryIntervalMs;
    if (reason === this.reason) return;
    this.reason = reason;
    log.error(
      `cannot deliver to SQS: ${reason}. Metrics are held in memory (up to maxBuffered distinct values; beyond it ` +
        "new values are dropped and counted) and not published directly with PutMetricData; the queue is tried " +
        `again every ${this.retryIntervalMs / 1000} s and sending resumes once it accepts them`,
    );
  }

  /** The queue took an offer: no reason any more, said once. */
  resume(): void {
    this.reason = "";
    log.warn("metricbatch: SQS no longer refuses the queue; delivery resumed");
  }

  /** Forget what is held (at exit); returns its samples for the caller to count as dropped. */
  abandon(): number {
    const samples = this.samples;
    this.merged = undefined;
    return samples;
  }
}
