// MetricProducer: sendMetric validates and buffers in microseconds; the sender ships to SQS from the event loop.
// The mode says where metrics go (modes.ts): "sqs" to the queue; "memory" kept in the process for tests
// (metricbatch/testing); "off" validated and discarded, also chosen for you when a setting sqs needs is missing (no
// queue URL, no region), which is said once and never throws (metricbatch/producer/modes.py).
import { MetricBuffer } from "./buffer.js";
import { STORE } from "./capture.js";
import { ProducerClients } from "./clients.js";
import { resolveConfig } from "./config.js";
import { DropReporter, zeroCounters, type Counters, type ProducerStats } from "./counters.js";
import { InvalidMetricError } from "./errors.js";
import { registerProducer, unregisterProducer, type ExitParticipant } from "./lifecycle.js";
import { MAX_ABS_VALUE, MIN_ABS_VALUE } from "./limits.js";
import { announce } from "./log.js";
import {
  chooseMode,
  chooseNamespace,
  DEFAULT_NAMESPACE,
  MODE_VARIABLE,
  NAMESPACE_VARIABLE,
  type Mode,
} from "./modes.js";
import type { ProducerOptions, SendOptions } from "./options.js";
import { RoundTimer } from "./round-timer.js";
import { within } from "./retry.js";
import { Sender } from "./sender.js";
import { SeriesCache } from "./series.js";
import { checkTimestamp, checkValue } from "./validation.js";
import type { Series } from "./wire.js";

const NO_OPTIONS: SendOptions = Object.freeze({});

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
  private readonly rounds: RoundTimer;
  private current: Mode;
  private reason = "";
  private captures = 0;
  private discardedAtCall = 0; // discarded by sendMetric itself (mode off), not after being buffered
  /** Why the default namespace is "metricbatch/default" (no or an invalid METRICBATCH_NAMESPACE), else "". */
  readonly namespaceReason: string = "";
  private namespaceNote = ""; // said once, when the default namespace is first used
  private lostAtFlush = 0;
  private readonly counters: Counters = zeroCounters();
  private readonly drops: DropReporter;

  constructor(options: ProducerOptions = {}) {
    const config = resolveConfig(options);
    const queueUrl = config.queueUrl;
    this.queueUrl = queueUrl;
    this.queueUrls = config.queueUrls;
    this.flushIntervalMs = config.flushIntervalMs;
    this.exitFlushTimeoutMs = config.exitFlushTimeoutMs;
    this.handleSignals = config.handleSignals;
    this.drops = new DropReporter(this.counters, this.flushIntervalMs);
    this.defaultDimensions = Object.freeze(Object.fromEntries(config.defaultDimensions));
    this.series = new SeriesCache(config.defaultDimensions);
    this.buffer = new MetricBuffer(config.maxBuffered);
    // A quarter of the bound wakes the sender before its interval, so a burst does not fill the buffer.
    this.wakeAt = Math.max(1, Math.floor(config.maxBuffered / 4));
    const clients = new ProducerClients(options.sqsClient, options.cloudwatchClient);
    const events = {
      drop: (n: number, why: string) => this.drops.drop(n, why),
      turnOff: (why: string) => this.turnOff(why),
    };
    this.sender = new Sender(this.buffer, this.counters, config.sender, clients, events);
    this.rounds = new RoundTimer(this.flushIntervalMs, (before) => this.sender.kick(before));
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

  /**
   * @internal The validated series for these arguments (as sendMetric would record under), for a caller that
   * records many samples of it: instrumentClient. Throws InvalidMetricError.
   */
  seriesOf(name: string, options: SendOptions): Series {
    return this.series.lookup(name, options.namespace ?? this.namespace, options);
  }

  /**
   * @internal Record samples of series from seriesOf (values known to be valid: no checks), all now, each also
   * under its roll-ups: instrumentClient's hot path, one call per API call.
   */
  recordSamples(series: readonly Series[], values: readonly number[]): void {
    const timestamp = Date.now() / 1000;
    for (let i = 0; i < series.length; i++) {
      const one = series[i]!;
      const value = values[i]!;
      this.record(one, value, timestamp);
      const fanout = one.fanout;
      if (fanout !== undefined) for (const rollup of fanout) this.record(rollup, value, timestamp);
    }
  }

  private record(series: Series, value: number, timestamp: number): void {
    if (this.current !== "sqs") {
      if (this.current === "off") {
        this.counters.discarded += 1;
        this.discardedAtCall += 1;
      } else if (STORE.add(series, value, timestamp)) this.captures += 1;
      else this.drops.drop(1, "memory mode holds its maximum of captured metrics");
      return;
    }
    if (!this.buffer.push(series, value, timestamp)) {
      this.drops.drop(1, "buffer full");
      return;
    }
    if (!this.rounds.running) this.start();
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

  /** Flush (bounded by `timeoutMs`, default exitFlushTimeoutMs) and stop the timer; idempotent. A metric sent during
   * or after it starts the rounds again. */
  async close(timeoutMs: number = this.exitFlushTimeoutMs): Promise<void> {
    await this.flushForExit(timeoutMs);
    this.stop();
    // Sent while it flushed (a replaced default producer put back): delivered as a metric sent after close() is.
    if (this.buffer.length > 0) this.start();
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
    this.rounds.stop();
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
    this.rounds.start();
    registerProducer(this);
  }
}
