// MetricProducer: sendMetric validates and buffers in microseconds; the sender ships to SQS from the event loop.
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { SQSClient } from "@aws-sdk/client-sqs";
import { MetricBuffer } from "./buffer.js";
import type { CloudWatchSender } from "./cloudwatch.js";
import { ConfigurationError, InvalidMetricError } from "./errors.js";
import { registerProducer, unregisterProducer, type ExitParticipant } from "./lifecycle.js";
import { MAX_ABS_VALUE, MAX_SQS_MESSAGE_BYTES, MIN_ABS_VALUE, SQS_MESSAGE_HEADROOM_BYTES } from "./limits.js";
import { Sender, type Counters } from "./sender.js";
import { SeriesCache } from "./series.js";
import type { SqsSender } from "./sqs.js";
import { checkTimestamp, checkValue, type Dimensions, type TimestampInput } from "./validation.js";

export const QUEUE_URL_VARIABLE = "METRICBATCH_QUEUE_URL";
export const NAMESPACE_VARIABLE = "METRICBATCH_NAMESPACE";

export interface ProducerOptions {
  /** The pipeline's SQS queue; default `METRICBATCH_QUEUE_URL`. */
  queueUrl?: string;
  /** Default namespace of sendMetric; default `METRICBATCH_NAMESPACE`. */
  namespace?: string;
  /** How often the sender ships what is buffered (ms); default 1000. */
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
}

export interface SendOptions {
  unit?: string;
  namespace?: string;
  dimensions?: Dimensions;
  /** A Date, epoch seconds, or an ISO 8601 string (no offset: UTC); default now. */
  timestamp?: TimestampInput;
  /** 60 (standard, the default) or 1 (high resolution). */
  storageResolution?: number;
}

export interface ProducerStats extends Counters {
  buffered: number;
  accepted: number;
}

const NO_OPTIONS: SendOptions = Object.freeze({});

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new ConfigurationError(`${name} must be a positive number, got ${value}`);
  return value;
}

/** Buffers metrics in memory and ships them to the metricbatch queue in the background. */
export class MetricProducer implements ExitParticipant {
  readonly queueUrl: string;
  readonly namespace: string | undefined;
  readonly flushIntervalMs: number;
  readonly exitFlushTimeoutMs: number;
  readonly handleSignals: boolean;
  private readonly buffer: MetricBuffer;
  private readonly sender: Sender;
  private readonly series = new SeriesCache();
  private readonly wakeAt: number;
  private sqsClient: SqsSender | undefined;
  private cloudwatchClient: CloudWatchSender | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly counters: Counters = {
    sent: 0,
    dropped: 0,
    fallbackPublished: 0,
    sendErrors: 0,
    invalid: 0,
    sqsRequests: 0,
    messagesSent: 0,
    wireMetricsSent: 0,
    putMetricDataCalls: 0,
  };
  private lastDropWarning = 0;
  private dropsSinceWarning = 0;

  constructor(options: ProducerOptions = {}) {
    const queueUrl = options.queueUrl ?? process.env[QUEUE_URL_VARIABLE];
    if (!queueUrl) throw new ConfigurationError(`no queue URL: pass queueUrl or set ${QUEUE_URL_VARIABLE}`);
    this.queueUrl = queueUrl;
    this.namespace = options.namespace ?? (process.env[NAMESPACE_VARIABLE] || undefined);
    this.flushIntervalMs = positive("flushIntervalMs", options.flushIntervalMs ?? 1000);
    this.exitFlushTimeoutMs = positive("exitFlushTimeoutMs", options.exitFlushTimeoutMs ?? 5000);
    this.handleSignals = options.handleSignals ?? true;
    const maxBuffered = Math.floor(positive("maxBuffered", options.maxBuffered ?? 100_000));
    this.buffer = new MetricBuffer(maxBuffered);
    // A quarter of the bound wakes the sender before its interval, so a burst does not fill the buffer.
    this.wakeAt = Math.max(1, Math.floor(maxBuffered / 4));
    this.sqsClient = options.sqsClient;
    this.cloudwatchClient = options.cloudwatchClient;
    const settings = {
      queueUrl,
      maxMessageBytes: options.maxMessageBytes ?? MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES,
      sendAttempts: Math.max(1, options.sendAttempts ?? 4),
      fallback: options.fallback ?? true,
    };
    const clients = { sqs: () => this.sqs(), cloudwatch: () => this.cloudwatch() };
    this.sender = new Sender(this.buffer, this.counters, settings, clients, (n, why) => this.drop(n, why));
  }

  /**
   * Validate one metric and buffer it; never touches the network.
   * @throws InvalidMetricError for anything CloudWatch would reject (the message names the rule).
   */
  sendMetric(name: string, value: number, options: SendOptions = NO_OPTIONS): void {
    const namespace = options.namespace ?? this.namespace;
    let series;
    try {
      series = this.series.lookup(name, namespace, options);
      if (
        typeof value !== "number" ||
        !(value <= MAX_ABS_VALUE && value >= -MAX_ABS_VALUE) ||
        (value !== 0 && value < MIN_ABS_VALUE && value > -MIN_ABS_VALUE)
      ) {
        value = checkValue(value);
      }
    } catch (error) {
      if (error instanceof InvalidMetricError) this.counters.invalid += 1;
      throw error;
    }
    let timestamp: number;
    if (options.timestamp === undefined || options.timestamp === null) timestamp = Date.now() / 1000;
    else {
      try {
        timestamp = checkTimestamp(options.timestamp);
      } catch (error) {
        this.counters.invalid += 1;
        throw error;
      }
    }
    if (!this.buffer.push(series, value, timestamp)) {
      this.drop(1, "buffer full");
      return;
    }
    if (this.timer === undefined) this.start();
    else if (this.buffer.length === this.wakeAt) setImmediate(() => this.sender.kick());
  }

  /** Resolves true once everything buffered before the call is accepted by SQS, published by the fallback or
   * dropped; false if `timeoutMs` ran out first. */
  flush(timeoutMs?: number): Promise<boolean> {
    const done = this.buffer.waitHandled(timeoutMs);
    this.sender.kick();
    return done;
  }

  /** Counters: buffered, accepted, sent, dropped, fallbackPublished, sendErrors, invalid, sqsRequests, ... */
  stats(): ProducerStats {
    return { ...this.counters, buffered: this.buffer.accepted - this.buffer.handled, accepted: this.buffer.accepted };
  }

  /** Flush (bounded by `timeoutMs`, default exitFlushTimeoutMs) and stop the timer; idempotent. */
  async close(timeoutMs: number = this.exitFlushTimeoutMs): Promise<void> {
    await this.flushForExit(timeoutMs);
    this.stop();
  }

  // -- ExitParticipant: what the exit hooks need ---------------------------------------------------------------------
  get pending(): number {
    return this.buffer.accepted - this.buffer.handled;
  }

  async flushForExit(timeoutMs: number = this.exitFlushTimeoutMs): Promise<void> {
    if (this.pending === 0) return;
    if (!(await this.flush(timeoutMs))) this.sender.abort(`not sent within ${timeoutMs} ms at exit`);
  }

  drainForExit(): string[] {
    this.stop();
    return this.sender.drainForExit();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    unregisterProducer(this);
  }

  // -- internals ------------------------------------------------------------------------------------------------------
  private start(): void {
    this.sender.reset();
    // unref: the timer alone never keeps the process alive; beforeExit flushes what it leaves behind.
    this.timer = setInterval(() => this.sender.kick(), this.flushIntervalMs).unref();
    registerProducer(this);
  }

  private drop(count: number, why: string): void {
    this.counters.dropped += count;
    this.dropsSinceWarning += count;
    const now = Date.now();
    if (now - this.lastDropWarning >= Math.max(this.flushIntervalMs, 10_000)) {
      process.emitWarning(`metricbatch dropped ${this.dropsSinceWarning} metric(s): ${why}`, "MetricBatchWarning");
      this.lastDropWarning = now;
      this.dropsSinceWarning = 0;
    }
  }

  private sqs(): SqsSender {
    // maxAttempts 1: the sender's own jittered retries decide, and a dead endpoint fails over to the fallback fast.
    this.sqsClient ??= new SQSClient({
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 2000, requestTimeout: 10_000 },
    });
    return this.sqsClient;
  }

  private cloudwatch(): CloudWatchSender {
    this.cloudwatchClient ??= new CloudWatchClient({
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 2000, requestTimeout: 10_000 },
    });
    return this.cloudwatchClient;
  }
}
