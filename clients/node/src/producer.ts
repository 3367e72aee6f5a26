// MetricProducer: sendMetric validates and buffers in microseconds; the sender ships to SQS from the event loop.
// The mode says where metrics go (modes.ts): "sqs" to the queue; "memory" kept in the process for tests
// (metricbatch/testing); "off" validated and discarded, also chosen for you when a setting sqs needs is missing (no
// queue URL, no region), which is said once and never throws (metricbatch/producer/modes.py).
import { MetricBuffer } from "./buffer.js";
import { makeCloudWatchClient, makeSqsClient, unreachable } from "./clients.js";
import type { CloudWatchSender } from "./cloudwatch.js";
import { ConfigurationError, InvalidMetricError } from "./errors.js";
import { registerProducer, unregisterProducer, type ExitParticipant } from "./lifecycle.js";
import { MAX_ABS_VALUE, MAX_SQS_MESSAGE_BYTES, MIN_ABS_VALUE, SQS_MESSAGE_HEADROOM_BYTES } from "./limits.js";
import { announce } from "./log.js";
import { STORE } from "./capture.js";
import {
  chooseMode,
  chooseNamespace,
  DEFAULT_NAMESPACE,
  DISCARDED,
  MODE_VARIABLE,
  NAMESPACE_VARIABLE,
  QUEUE_URL_VARIABLE,
  type Mode,
} from "./modes.js";
import { Sender, type Counters } from "./sender.js";
import { SeriesCache } from "./series.js";
import { QUEUE_URLS_VARIABLE, ROUND_SECONDS_VARIABLE, urlList } from "./shards.js";
import type { SqsSender } from "./sqs.js";
import type { Series } from "./wire.js";
import {
  checkDimensions,
  checkTimestamp,
  checkValue,
  parseDimensionList,
  type DimensionPairs,
  type Dimensions,
  type TimestampInput,
} from "./validation.js";

/** Dimensions on every metric of a producer: "Service=cart,Stage=prod" (metricbatch/env.py DEFAULT_DIMENSIONS). */
export const DEFAULT_DIMENSIONS_VARIABLE = "METRICBATCH_DEFAULT_DIMENSIONS";
const reportedDefaults = new Set<string>();

/** METRICBATCH_DEFAULT_DIMENSIONS parsed once; a malformed value is one error line (once per value and process) and
 * no default dimensions, never an exception in the caller. */
export function defaultDimensionsFromEnv(text: string | undefined): DimensionPairs {
  if (!text) return [];
  try {
    return parseDimensionList(text);
  } catch (error) {
    if (!reportedDefaults.has(text)) {
      reportedDefaults.add(text);
      announce(
        `${DEFAULT_DIMENSIONS_VARIABLE}=${JSON.stringify(text)} is ignored (expected Name=value,Name2=value2): ${(error as Error).message}`,
        "error",
      );
    }
    return [];
  }
}

export { DEFAULT_NAMESPACE, MODE_VARIABLE, NAMESPACE_VARIABLE, QUEUE_URL_VARIABLE, type Mode };
// While SQS refuses the queue for a reason no retry fixes, the held metrics are offered to it again this often: one
// SendMessageBatch per producer every 30 s, and recovery within 30 s of a fix (QUEUE_RETRY_INTERVAL_SECONDS in
// metricbatch/producer/config.py).
export const QUEUE_RETRY_INTERVAL_MS = 30_000;
const CLIENT_TIMEOUTS = { connectionTimeout: 2000, requestTimeout: 10_000 };

/** Mirrors metricbatch/producer/config.py DEFAULT_FLUSH_INTERVAL_SECONDS: same rounds, same SQS requests. */
export const DEFAULT_FLUSH_INTERVAL_MS = 5000;
/** A minute-aligned round starts this long after the boundary: a metric stamped just before it is buffered. */
const ALIGNED_ROUND_DELAY_MS = 250;

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

const NO_OPTIONS: SendOptions = Object.freeze({});

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new ConfigurationError(`${name} must be a positive number, got ${value}`);
  return value;
}

/** Resolves true when `promise` settles within `timeoutMs` (always, without a timeout), false otherwise. */
function within(promise: Promise<unknown>, timeoutMs?: number): Promise<boolean> {
  if (timeoutMs === undefined || !Number.isFinite(timeoutMs)) return promise.then(() => true);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs))));
  return Promise.race([promise.then(() => true), late]).finally(() => clearTimeout(timer));
}

/** Buffers metrics in memory and ships them to the metricbatch queue in the background. */
export class MetricProducer implements ExitParticipant {
  readonly queueUrl: string | undefined;
  /** The queues series are routed to (one unless the deployment is sharded). */
  readonly queueUrls: readonly string[];
  readonly namespace: string | undefined;
  readonly flushIntervalMs: number;
  readonly exitFlushTimeoutMs: number;
  readonly handleSignals: boolean;
  /** The dimensions on every metric of this producer (validated). */
  readonly defaultDimensions: Readonly<Record<string, string>>;
  private readonly buffer: MetricBuffer;
  private readonly sender: Sender;
  private readonly series: SeriesCache;
  private readonly wakeAt: number;
  private sqsClient: SqsSender | undefined;
  private cloudwatchClient: CloudWatchSender | undefined;
  private reachable: Promise<string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current: Mode;
  private reason = "";
  private captures = 0;
  private discardedAtCall = 0; // discarded by sendMetric itself (mode off), not after being buffered
  /** Why the default namespace is "metricbatch/default" (no or an invalid METRICBATCH_NAMESPACE), else "". */
  readonly namespaceReason: string = "";
  private namespaceNote = ""; // said once, when the default namespace is first used
  private lostAtFlush = 0;
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
    discarded: 0,
    droppedMisconfigured: 0,
    queueRetries: 0,
  };
  private lastDropWarning = 0;
  private dropsSinceWarning = 0;

  constructor(options: ProducerOptions = {}) {
    const queueUrls =
      options.queueUrls ?? (options.queueUrl === undefined ? urlList(process.env[QUEUE_URLS_VARIABLE]) : []);
    const queueUrl = queueUrls[0] ?? options.queueUrl ?? (process.env[QUEUE_URL_VARIABLE] || undefined);
    this.queueUrl = queueUrl;
    this.queueUrls = queueUrls.length > 0 ? [...queueUrls] : queueUrl === undefined ? [] : [queueUrl];
    this.namespace = options.namespace ?? (process.env[NAMESPACE_VARIABLE] || undefined);
    this.flushIntervalMs = positive(
      "flushIntervalMs",
      options.flushIntervalMs ?? roundFromEnv(process.env[ROUND_SECONDS_VARIABLE]) ?? DEFAULT_FLUSH_INTERVAL_MS,
    );
    this.exitFlushTimeoutMs = positive("exitFlushTimeoutMs", options.exitFlushTimeoutMs ?? 5000);
    this.handleSignals = options.handleSignals ?? true;
    let defaults: DimensionPairs;
    if (options.defaultDimensions !== undefined) {
      try {
        defaults = checkDimensions(options.defaultDimensions);
      } catch (error) {
        throw new ConfigurationError(`defaultDimensions: ${(error as Error).message}`);
      }
    } else defaults = defaultDimensionsFromEnv(process.env[DEFAULT_DIMENSIONS_VARIABLE]);
    this.defaultDimensions = Object.freeze(Object.fromEntries(defaults));
    this.series = new SeriesCache(defaults);
    const maxBuffered = Math.floor(positive("maxBuffered", options.maxBuffered ?? 100_000));
    this.buffer = new MetricBuffer(maxBuffered);
    // A quarter of the bound wakes the sender before its interval, so a burst does not fill the buffer.
    this.wakeAt = Math.max(1, Math.floor(maxBuffered / 4));
    this.sqsClient = options.sqsClient;
    this.cloudwatchClient = options.cloudwatchClient;
    const settings = {
      queueUrl: queueUrl ?? "",
      queueUrls: this.queueUrls,
      maxMessageBytes: options.maxMessageBytes ?? MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES,
      sendAttempts: Math.max(1, options.sendAttempts ?? 4),
      fallback: options.fallback ?? true,
      queueRetryIntervalMs: Math.max(0, options.queueRetryIntervalMs ?? QUEUE_RETRY_INTERVAL_MS),
      maxHeldValues: maxBuffered,
    };
    const clients = {
      sqs: () => this.sqs(),
      cloudwatch: () => this.cloudwatch(),
      unreachable: () => (this.sqs(), this.reachable ?? Promise.resolve("")),
    };
    const events = { drop: (n: number, why: string) => this.drop(n, why), turnOff: (why: string) => this.turnOff(why) };
    this.sender = new Sender(this.buffer, this.counters, settings, clients, events);
    const choice = chooseMode(options.mode, process.env[MODE_VARIABLE], queueUrl);
    this.current = choice.mode;
    if (choice.reason) this.turnOff(choice.reason, choice.level);
    if (choice.notice) announce(choice.notice, choice.level);
    // Host configuration, like the queue URL: unset or invalid never throws; "metricbatch/default", said once.
    // A namespace given in code is kept as it is (a bad one throws at each call).
    const namespace = chooseNamespace(options.namespace, process.env[NAMESPACE_VARIABLE]);
    this.namespace = namespace.namespace;
    this.namespaceReason = this.namespaceNote = namespace.reason;
  }

  /** Where metrics go: "sqs" (the queue), "memory" (metricbatch/testing) or "off" (validated and discarded: see
   * stats().modeReason). */
  get mode(): Mode {
    return this.current;
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
      if (this.namespaceNote && namespace === this.namespace) this.sayNamespace();
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
    this.record(series, value, timestamp);
    const fanout = series.fanout;
    if (fanout !== undefined) for (const rollup of fanout) this.record(rollup, value, timestamp);
  }

  private record(series: Series, value: number, timestamp: number): void {
    if (this.current !== "sqs") {
      if (this.current === "off") {
        this.counters.discarded += 1;
        this.discardedAtCall += 1;
      } else if (STORE.add(series, value, timestamp)) this.captures += 1;
      else this.drop(1, "memory mode holds its maximum of captured metrics");
      return;
    }
    if (!this.buffer.push(series, value, timestamp)) {
      this.drop(1, "buffer full");
      return;
    }
    if (this.timer === undefined) this.start();
    else if (this.buffer.length === this.wakeAt) setImmediate(() => this.sender.kick());
  }

  /**
   * Resolves once everything buffered before the call is accepted by SQS, published by the fallback or dropped:
   * true only when all of it was delivered. False if `timeoutMs` ran out first, if metrics were dropped or
   * discarded (mode off) since the previous flush, or while a wrong setting holds them back (stats().configError).
   */
  async flush(timeoutMs?: number): Promise<boolean> {
    const done = await this.settle(timeoutMs);
    // Discards count as not delivered only when off was chosen for you (a setting is missing), as in Python.
    const lost = this.counters.dropped + (this.reason ? this.counters.discarded : 0);
    const fresh = lost - this.lostAtFlush;
    this.lostAtFlush = lost;
    return done && fresh === 0 && this.sender.blocked === "";
  }

  /** Counters (buffered, accepted, sent, dropped, fallbackPublished, sendErrors, invalid, discarded, ...), plus
   * mode, modeReason (why the mode was chosen for you) and configError (a wrong setting holding metrics back). */
  stats(): ProducerStats {
    return {
      ...this.counters,
      buffered: this.pending,
      captured: this.captures,
      // Buffered metrics discarded later (no region found) are in buffer.accepted already: counted once.
      accepted: this.buffer.accepted + this.discardedAtCall + this.captures,
      mode: this.mode,
      modeReason: this.reason,
      configError: this.sender.blocked,
      namespace: this.namespace ?? DEFAULT_NAMESPACE,
      namespaceReason: this.namespaceReason,
    };
  }

  /** Flush (bounded by `timeoutMs`, default exitFlushTimeoutMs) and stop the timer; idempotent. */
  async close(timeoutMs: number = this.exitFlushTimeoutMs): Promise<void> {
    await this.flushForExit(timeoutMs);
    this.stop();
  }

  // -- ExitParticipant: what the exit hooks need ---------------------------------------------------------------------
  get pending(): number {
    return this.buffer.accepted - this.buffer.handled + this.sender.heldSamples;
  }

  async flushForExit(timeoutMs: number = this.exitFlushTimeoutMs): Promise<void> {
    if (this.pending === 0) return;
    if (!(await this.settle(timeoutMs))) this.sender.abort(`not sent within ${timeoutMs} ms at exit`);
    this.sender.abandonHeld();
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
  /** Resolves true once everything accepted so far is handled (and a due retry of held metrics has been made). */
  private settle(timeoutMs?: number): Promise<boolean> {
    const retry = this.sender.retryDue;
    const handled = this.buffer.waitHandled(timeoutMs);
    const rounds = this.sender.kick();
    return retry ? Promise.all([handled, within(rounds, timeoutMs)]).then(([a, b]) => a && b) : handled;
  }

  private sayNamespace(): void {
    const note = this.namespaceNote;
    this.namespaceNote = "";
    announce(note, note.startsWith("no ") ? "warning" : "error");
  }

  private turnOff(reason: string, level: "warning" | "error" = "error"): void {
    this.current = "off";
    this.reason = reason;
    announce(reason, level);
  }

  private start(): void {
    this.sender.reset();
    // unref: the timer alone never keeps the process alive; beforeExit flushes what it leaves behind.
    if (this.flushIntervalMs % 60_000 === 0) this.scheduleAlignedRound();
    else this.timer = setInterval(() => this.sender.kick(), this.flushIntervalMs).unref();
    registerProducer(this);
  }

  /** A round of a multiple of 60 s is minute-aligned (as in the Python producer): just after each boundary it sends
   * the finished minutes only, one part per series-minute; flush, exit and the wake threshold still send all. */
  private scheduleAlignedRound(): void {
    const interval = this.flushIntervalMs;
    const wait = interval - (Date.now() % interval) + ALIGNED_ROUND_DELAY_MS;
    this.timer = setTimeout(() => {
      const now = Date.now();
      void this.sender.kick((now - (now % interval)) / 1000);
      if (this.timer !== undefined) this.scheduleAlignedRound();
    }, wait).unref();
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
    if (this.sqsClient === undefined) {
      const client = makeSqsClient(CLIENT_TIMEOUTS);
      this.reachable = unreachable(client).then((why) => why && `mode sqs cannot reach AWS, ${why}; ${DISCARDED}`);
      this.sqsClient = client;
    }
    return this.sqsClient;
  }

  private cloudwatch(): CloudWatchSender {
    this.cloudwatchClient ??= makeCloudWatchClient(CLIENT_TIMEOUTS);
    return this.cloudwatchClient;
  }
}

/** METRICBATCH_ROUND_SECONDS in ms; a wrong value is ignored (configuration never throws in the caller). */
function roundFromEnv(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}
