// The producer's counters, the stats() it reports them in, and the rate-limited warning that says metrics were dropped.
import type { Mode } from "./modes.js";
import type { SendOutcome } from "./sqs.js";

export interface Counters {
  sent: number;
  dropped: number;
  fallbackPublished: number;
  sendErrors: number;
  invalid: number;
  sqsRequests: number;
  messagesSent: number;
  wireMetricsSent: number;
  putMetricDataCalls: number;
  discarded: number; // validated, then discarded: mode off (no queue URL, no region)
  droppedMisconfigured: number; // held for a wrong setting and still held at exit (also in dropped)
  queueRetries: number; // rounds that offered held metrics to the queue again
}

export interface ProducerStats extends Counters {
  buffered: number;
  /** Metrics memory mode kept (metricbatch/testing). */
  captured: number;
  accepted: number;
  mode: Mode;
  /** Why the mode was chosen for you (a setting is missing), else "". */
  modeReason: string;
  /** A wrong setting holding metrics back right now (SQS refuses the queue), else "". */
  configError: string;
  /** The default namespace of sendMetric. */
  namespace: string;
  /** Why the default namespace is "metricbatch/default" (no or an invalid METRICBATCH_NAMESPACE), else "". */
  namespaceReason: string;
}

export function zeroCounters(): Counters {
  return {
    sent: 0,
    dropped: 0,
    fallbackPublished: 0,
    sendErrors: 0,
    invalid: 0,
    sqsRequests: 0,
    messagesSent: 0,
    wireMetricsSent: 0,
    putMetricDataCalls: 0,
    discarded: 0,
    droppedMisconfigured: 0,
    queueRetries: 0,
  };
}

export function countSent(counters: Counters, outcome: SendOutcome): void {
  counters.sqsRequests += outcome.requests;
  counters.sendErrors += outcome.errors;
  counters.messagesSent += outcome.sent.length;
  for (const message of outcome.sent) {
    counters.sent += message.samples;
    counters.wireMetricsSent += message.datums.length;
  }
}

// Drop warnings come at most once per flush interval, and never more often than this.
const MIN_DROP_WARNING_INTERVAL_MS = 10_000;

/** Counts drops and says so as a MetricBatchWarning, at most once per interval (with the count since the last). */
export class DropReporter {
  private lastDropWarning = 0;
  private dropsSinceWarning = 0;

  constructor(
    private readonly counters: Counters,
    private readonly flushIntervalMs: number,
  ) {}

  drop(count: number, why: string): void {
    this.counters.dropped += count;
    this.dropsSinceWarning += count;
    const now = Date.now();
    if (now - this.lastDropWarning >= Math.max(this.flushIntervalMs, MIN_DROP_WARNING_INTERVAL_MS)) {
      process.emitWarning(`metricbatch dropped ${this.dropsSinceWarning} metric(s): ${why}`, "MetricBatchWarning");
      this.lastDropWarning = now;
      this.dropsSinceWarning = 0;
    }
  }
}
