// The sender: takes what is buffered, merges it per series and bucket, encodes wire-v1 messages and ships them with
// SendMessageBatch; what SQS will not take goes to CloudWatch directly (the fallback). All of it runs on the event loop
// in slices, so a large round never holds the loop for long.
import { debuglog } from "node:util";
import { BucketAggregator, sampleCount } from "./aggregation.js";
import type { MetricBuffer, TakenMetrics } from "./buffer.js";
import { packRequests, publish, type CloudWatchSender } from "./cloudwatch.js";
import { sendMessages, type OutgoingMessage, type SendOutcome, type SqsSender } from "./sqs.js";
import * as log from "./log.js";
import { configurationProblem } from "./retry.js";
import { seriesIdentity, shardOf } from "./shards.js";
import { ENVELOPE_BYTES, envelopeOf, fragmentOf, type Datum } from "./wire.js";

const debug = debuglog("metricbatch");

// Metrics merged, or datums encoded, between two yields to the event loop (about a millisecond of work).
const SLICE = 8192;

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

export interface SenderSettings {
  queueUrl: string;
  /** A sharded deployment's queues in shard order: each series goes to one of them (shards.ts). */
  queueUrls?: readonly string[];
  maxMessageBytes: number;
  sendAttempts: number;
  fallback: boolean;
  /** While SQS refuses the queue for a wrong setting, how often the held metrics are offered again (ms). */
  queueRetryIntervalMs: number;
  /** Distinct values held at most for a wrong setting (the producer's maxBuffered). */
  maxHeldValues: number;
}

export interface SenderClients {
  sqs(): SqsSender;
  cloudwatch(): CloudWatchSender;
  /** Why SQS cannot be reached at all ("" when it can): the producer then turns to mode off. */
  unreachable(): Promise<string>;
}

export interface SenderEvents {
  drop(count: number, why: string): void;
  /** A setting mode sqs needs is missing: the producer turns off; the sender counts what it had as discarded. */
  turnOff(reason: string): void;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Pack datums into messages of at most `maxBytes` (bodies are ASCII JSON: characters = bytes). */
export async function encodeMessages(datums: Iterable<Datum>, maxBytes: number): Promise<OutgoingMessage[]> {
  const limit = maxBytes - ENVELOPE_BYTES;
  const messages: OutgoingMessage[] = [];
  let fragments: string[] = [];
  let carried: Datum[] = [];
  let size = 0;
  let samples = 0;
  let sinceYield = 0;
  for (const datum of datums) {
    const fragment = fragmentOf(datum);
    const added = fragment.length + 1;
    if (fragments.length > 0 && size + added > limit) {
      messages.push({ body: envelopeOf(fragments), datums: carried, samples });
      fragments = [];
      carried = [];
      size = 0;
      samples = 0;
    }
    fragments.push(fragment);
    carried.push(datum);
    size += added;
    samples += sampleCount(datum);
    if (++sinceYield === SLICE) {
      sinceYield = 0;
      await yieldToLoop();
    }
  }
  if (fragments.length > 0) messages.push({ body: envelopeOf(fragments), datums: carried, samples });
  return messages;
}

/** Message bodies of at most `maxBytes` for the exit hook's synchronous sender (no yielding: the loop is gone). */
function bodiesOf(datums: Iterable<Datum>, maxBytes: number): string[] {
  const bodies: string[] = [];
  let fragments: string[] = [];
  let size = 0;
  for (const datum of datums) {
    const fragment = fragmentOf(datum);
    if (fragments.length > 0 && size + fragment.length + 1 > maxBytes - ENVELOPE_BYTES) {
      bodies.push(envelopeOf(fragments));
      fragments = [];
      size = 0;
    }
    fragments.push(fragment);
    size += fragment.length + 1;
  }
  if (fragments.length > 0) bodies.push(envelopeOf(fragments));
  return bodies;
}

function countSent(counters: Counters, outcome: SendOutcome): void {
  counters.sqsRequests += outcome.requests;
  counters.sendErrors += outcome.errors;
  counters.messagesSent += outcome.sent.length;
  for (const message of outcome.sent) {
    counters.sent += message.samples;
    counters.wireMetricsSent += message.datums.length;
  }
}

/** The round in progress: what it took, the held samples it carries, the messages nobody has acknowledged yet. */
interface Round {
  taken: TakenMetrics;
  held: number;
  unacknowledged?: OutgoingMessage[];
}

export class Sender {
  private pumping: Promise<void> | undefined;
  private controller = new AbortController();
  private current: Round | undefined;
  /** Merged metrics SQS refused for a wrong setting (`blocked` says which), already marked handled in the buffer. */
  private held: BucketAggregator | undefined;
  private nextRetryAt = 0;
  /** Why the queue refuses what is held ("" when it does not): the ERROR line and stats().configError. */
  blocked = "";
  /** Shard of each series (by its canonical head), for a sharded deployment. */
  private readonly shards = new Map<string, number>();

  constructor(
    private readonly buffer: MetricBuffer,
    private readonly counters: Counters,
    private readonly settings: SenderSettings,
    private readonly clients: SenderClients,
    private readonly events: SenderEvents,
  ) {}

  /** Start a round now unless one is running (it goes on until the buffer is empty); resolves when they end.
   * With `before` (a minute-aligned round): one round of the metrics whose bucket starts before it. */
  kick(before?: number): Promise<void> {
    if (this.pumping === undefined && (this.buffer.length > 0 || this.retryDue)) {
      this.pumping = this.pump(before).finally(() => (this.pumping = undefined));
    }
    return this.pumping ?? Promise.resolve();
  }

  /** Metrics held for a wrong setting are due to be offered to the queue again (false when none are held). */
  get retryDue(): boolean {
    return this.held !== undefined && performance.now() >= this.nextRetryAt;
  }

  /** Samples held for a wrong setting (marked handled in the buffer, not yet delivered). */
  get heldSamples(): number {
    return (this.held?.samples ?? 0) + (this.current?.held ?? 0);
  }

  /** Stop for good: abort requests in flight and drop (and count) everything still buffered. */
  abort(why: string): void {
    this.controller.abort();
    const left = this.buffer.take().count;
    if (left > 0) {
      this.events.drop(left, why);
      this.buffer.markHandled(left);
    }
  }

  /** At exit: what is held for a wrong setting is dropped and counted (the process keeps nothing past its end). */
  abandonHeld(): void {
    const samples = this.held?.samples ?? 0;
    this.held = undefined;
    if (samples > 0) this.dropMisconfigured(samples);
  }

  /** Allow rounds again after abort() (a producer used after close). */
  reset(): void {
    if (this.controller.signal.aborted) this.controller = new AbortController();
  }

  /**
   * Everything buffered plus what the round in progress has not had acknowledged, encoded, for a last synchronous
   * send at process.exit(). A message SQS accepted whose answer had not arrived yet is sent twice (at-least-once).
   * While the queue refuses for a wrong setting nothing is sent: it would be refused again.
   */
  drainForExit(): string[] {
    const current = this.current;
    this.current = undefined;
    const taken = this.buffer.take();
    this.buffer.markHandled(taken.count + (current?.taken.count ?? 0));
    if (this.blocked) {
      this.abandonHeld();
      this.dropMisconfigured(taken.count + (current === undefined ? 0 : current.taken.count + current.held));
      return [];
    }
    const aggregator = new BucketAggregator();
    if (current?.unacknowledged === undefined && current !== undefined) {
      aggregator.addRange(current.taken.series, current.taken.values, current.taken.timestamps, 0, current.taken.count);
    }
    for (const message of current?.unacknowledged ?? []) for (const datum of message.datums) aggregator.addDatum(datum);
    aggregator.addRange(taken.series, taken.values, taken.timestamps, 0, taken.count);
    return bodiesOf(aggregator.datums(), this.settings.maxMessageBytes);
  }

  private async pump(before?: number): Promise<void> {
    if (this.controller.signal.aborted) return;
    do await this.round(before);
    while (before === undefined && this.buffer.length > 0 && !this.controller.signal.aborted);
  }

  private async round(before?: number): Promise<void> {
    const taken = this.buffer.take(before);
    // Held metrics ride along with the new ones: merged, they are bounded by distinct values, not by calls.
    const aggregator = this.held ?? new BucketAggregator();
    this.held = undefined;
    const current: Round = { taken, held: aggregator.samples };
    this.current = current;
    const owned = taken.count + current.held;
    let accounted = 0;
    try {
      for (let start = 0; start < taken.count; start += SLICE) {
        if (start > 0) await yieldToLoop();
        const end = Math.min(taken.count, start + SLICE);
        const overflow = aggregator.addRange(
          taken.series,
          taken.values,
          taken.timestamps,
          start,
          end,
          this.settings.maxHeldValues,
        );
        if (overflow > 0) {
          accounted += overflow;
          this.events.drop(overflow, "buffer full while a wrong setting holds delivery");
        }
      }
      const unreachable = await this.clients.unreachable();
      if (unreachable) {
        aggregator.clear(); // mode off: discarded
        this.counters.discarded += owned - accounted;
        accounted = owned;
        this.events.turnOff(unreachable);
      } else if (this.blocked && performance.now() < this.nextRetryAt) {
        this.held = aggregator; // not due yet: merged, no request
        accounted = owned;
      } else {
        accounted = (await this.deliver(aggregator, current, owned - accounted)) + accounted;
      }
    } catch (error) {
      debug("send round failed: %s", error);
    } finally {
      // Unless drained at exit (the exit hook owns these metrics now): account for the round.
      if (this.current === current) {
        this.current = undefined;
        if (accounted < owned) this.events.drop(owned - accounted, "the send round failed");
        this.buffer.markHandled(taken.count);
      }
    }
  }

  /** SQS, then the fallback for what it did not take (or hold it, for a wrong setting); returns samples accounted. */
  private async deliver(aggregator: BucketAggregator, current: Round, samples: number): Promise<number> {
    const retrying = this.blocked !== "";
    if (retrying) this.counters.queueRetries += 1;
    const queues =
      this.settings.queueUrls && this.settings.queueUrls.length > 0
        ? this.settings.queueUrls
        : [this.settings.queueUrl];
    const routed: Datum[][] = queues.map(() => []);
    for (const datum of aggregator.datums()) routed[this.shard(datum, queues.length)]!.push(datum);
    const perQueue = await Promise.all(routed.map((datums) => encodeMessages(datums, this.settings.maxMessageBytes)));
    current.unacknowledged = perQueue.flat();
    const failed: OutgoingMessage[] = [];
    let refused: string | undefined;
    for (const [index, messages] of perQueue.entries()) {
      if (messages.length === 0) continue;
      const outcome = await this.sendToSqs(messages, queues[index]!);
      failed.push(...outcome.failed);
      if (outcome.failed.length > 0 && outcome.configuration !== undefined && refused === undefined) {
        const { code, problem } = outcome.configuration;
        refused = `SQS refused the queue ${queues[index]}: ${code}: ${problem}`;
      }
    }
    current.unacknowledged = failed;
    if (failed.length > 0 && refused !== undefined) {
      this.hold(failed, refused);
      return samples;
    }
    if (retrying) {
      this.blocked = "";
      log.warn("metricbatch: SQS no longer refuses the queue; delivery resumed");
    }
    const delivered = samples - failed.reduce((sum, m) => sum + m.samples, 0);
    return delivered + (failed.length > 0 ? await this.fallback(failed.flatMap((m) => m.datums)) : 0);
  }

  /** Keep what SQS refused for a wrong setting until the next offer; say so once per reason. */
  private hold(failed: OutgoingMessage[], reason: string): void {
    const held = new BucketAggregator();
    for (const message of failed) for (const datum of message.datums) held.addDatum(datum);
    this.held = held;
    this.nextRetryAt = performance.now() + this.settings.queueRetryIntervalMs;
    if (reason === this.blocked) return;
    this.blocked = reason;
    log.error(
      `cannot deliver to SQS: ${reason}. Metrics are held in memory (up to maxBuffered distinct values; beyond it ` +
        "new values are dropped and counted) and not published directly with PutMetricData; the queue is tried " +
        `again every ${this.settings.queueRetryIntervalMs / 1000} s and sending resumes once it accepts them`,
    );
  }

  private dropMisconfigured(samples: number): void {
    this.counters.droppedMisconfigured += samples;
    this.events.drop(samples, "held for a wrong setting until exit (see stats().configError)");
  }

  /** Send to SQS; returns the messages it did not accept, and the wrong setting that refused them if one did. */
  private shard(datum: Datum, shards: number): number {
    if (shards <= 1) return 0;
    let index = this.shards.get(datum.series.head);
    if (index === undefined) {
      if (this.shards.size >= 100_000) this.shards.clear();
      index = shardOf(seriesIdentity(datum.series), shards);
      this.shards.set(datum.series.head, index);
    }
    return index;
  }

  private async sendToSqs(
    messages: OutgoingMessage[],
    queueUrl: string = this.settings.queueUrl,
  ): Promise<Pick<SendOutcome, "failed" | "configuration">> {
    const signal = this.controller.signal;
    const { counters } = this;
    try {
      const policy = { attempts: this.settings.sendAttempts, baseDelayMs: 50, maxDelayMs: 2000 };
      const outcome = await sendMessages(this.clients.sqs(), queueUrl, messages, policy, signal);
      countSent(counters, outcome);
      if (outcome.failed.length > 0)
        debug("SQS did not accept %d message(s): %s", outcome.failed.length, outcome.lastError);
      return outcome;
    } catch (error) {
      debug("cannot send to SQS: %s", error);
      counters.sendErrors += 1;
      return { failed: messages, configuration: configurationProblem(error) };
    }
  }

  /** Publish directly with PutMetricData; returns how many samples it accounted for (published or dropped). */
  private async fallback(datums: Datum[]): Promise<number> {
    const samples = datums.reduce((sum, d) => sum + sampleCount(d), 0);
    if (!this.settings.fallback || this.controller.signal.aborted) {
      this.events.drop(samples, this.settings.fallback ? "aborted at exit" : "SQS unavailable and the fallback is off");
      return samples;
    }
    try {
      const policy = { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 };
      const outcome = await publish(this.clients.cloudwatch(), packRequests(datums), policy, this.controller.signal);
      this.counters.putMetricDataCalls += outcome.calls;
      this.counters.fallbackPublished += outcome.published;
      if (outcome.lost > 0) this.events.drop(outcome.lost, `SQS and CloudWatch unavailable (${outcome.lastError})`);
    } catch (error) {
      this.events.drop(samples, `SQS and CloudWatch unavailable: ${error}`);
    }
    return samples;
  }
}
