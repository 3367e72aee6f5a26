// What a producer and a sendMetric call accept (the public option types).
import type { CloudWatchSender } from "./cloudwatch.js";
import type { Mode } from "./modes.js";
import type { SqsSender } from "./sqs.js";
import type { Dimensions, TimestampInput } from "./validation.js";

export interface ProducerOptions {
  /** Where metrics go: "sqs", "memory" or "off"; default `METRICBATCH_MODE`, else "sqs" with a queue URL. */
  mode?: Mode;
  /** The pipeline's SQS queue; default `METRICBATCH_QUEUE_URL`. */
  queueUrl?: string;
  /** A sharded deployment's queues in shard order (each series goes to one); default `METRICBATCH_QUEUE_URLS`,
   * unless `queueUrl` is given. The first is `queueUrl`. */
  queueUrls?: string[];
  /** Default namespace of sendMetric; default `METRICBATCH_NAMESPACE`. */
  namespace?: string;
  /** How often the sender ships what is buffered (ms); default `METRICBATCH_ROUND_SECONDS` x 1000, else 5000, as the
   * Python producer's `flush_interval`; a multiple of 60 s is minute-aligned (only finished minutes each round). */
  flushIntervalMs?: number;
  /** Metrics buffered at most; beyond that new ones are dropped and counted. Default 100,000. */
  maxBuffered?: number;
  /** `SQSClient` to use; default one from the SDK's standard settings (AWS_REGION, AWS_ENDPOINT_URL, ...). */
  sqsClient?: SqsSender;
  /** `CloudWatchClient` for the fallback; default one from the SDK's standard settings. */
  cloudwatchClient?: CloudWatchSender;
  /** Publish directly with PutMetricData when SQS does not accept a message; default true. */
  fallback?: boolean;
  /** SendMessageBatch attempts per batch (failed entries only are retried, with jittered backoff); default 4. */
  sendAttempts?: number;
  /** How long beforeExit, SIGTERM, SIGINT and process.exit() may spend flushing (ms); default 5000. */
  exitFlushTimeoutMs?: number;
  /** Flush on SIGTERM and SIGINT, then end as the signal would have; default true. */
  handleSignals?: boolean;
  /** Largest message body (bytes); default 1 MiB less 4 KiB of headroom. */
  maxMessageBytes?: number;
  /** While SQS refuses the queue for a wrong setting, how often held metrics are offered again (ms); default 30,000. */
  queueRetryIntervalMs?: number;
  /** Dimensions on every metric of this producer (a call's own win on a clash; they count toward the limit of 30);
   * default `METRICBATCH_DEFAULT_DIMENSIONS` ("Service=cart,Stage=prod"; a malformed value is one error line and
   * ignored). A wrong explicit value throws ConfigurationError here. */
  defaultDimensions?: Dimensions;
}

export interface SendOptions {
  unit?: string;
  namespace?: string;
  dimensions?: Dimensions;
  /** A Date, epoch seconds, or an ISO 8601 string (no offset: UTC); default now. */
  timestamp?: TimestampInput;
  /** 60 (standard, the default) or 1 (high resolution). */
  storageResolution?: number;
  /** Also record the sample under each of these subsets of the dimension keys ([] = none), e.g. [["Service"], []];
   * a key not among the metric's dimensions (defaults included) throws InvalidMetricError (rule rollup.key). */
  rollups?: ReadonlyArray<ReadonlyArray<string>>;
}
