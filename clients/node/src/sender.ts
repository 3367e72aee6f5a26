// The sender: takes what is buffered, merges it per series and bucket, and hands it to the queue (queue-delivery.ts);
// what SQS will not take goes to CloudWatch directly (fallback.ts), what it refuses for a wrong setting is held
// (held.ts). All of it runs on the event loop in slices, so a large round never holds the loop for long.
import { debuglog } from "node:util";
import { BucketAggregator } from "./aggregation.js";
import type { MetricBuffer, TakenMetrics } from "./buffer.js";
import type { Counters } from "./counters.js";
import { Fallback } from "./fallback.js";
import { HeldMetrics } from "./held.js";
import { bodiesOf, SLICE, yieldToLoop } from "./message-encoding.js";
import { QueueDelivery } from "./queue-delivery.js";
import { ShardRouter } from "./shards.js";
import type { SenderClients, SenderEvents, SenderSettings } from "./sender-types.js";
import type { OutgoingMessage } from "./sqs.js";

const debug = debuglog("metricbatch");

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
  /** Merged metrics SQS refused for a wrong setting, already marked handled in the buffer. */
  private readonly held: HeldMetrics;
  private readonly queues: QueueDelivery;
  private readonly fallback: Fallback;

  constructor(
    private readonly buffer: MetricBuffer,
    private readonly counters: Counters,
    private readonly settings: SenderSettings,
    private readonly clients: SenderClients,
    private readonly events: SenderEvents,
  ) {
    this.held = new HeldMetrics(settings.queueRetryIntervalMs);
    const queues = settings.queueUrls && settings.queueUrls.length > 0 ? settings.queueUrls : [settings.queueUrl];
    this.queues = new QueueDelivery(new ShardRouter(queues), settings, clients, counters);
    this.fallback = new Fallback(settings.fallback, clients, counters, events);
  }

  /** Why the queue refuses what is held ("" when it does not): the ERROR line and stats().configError. */
  get blocked(): string {
    return this.held.reason;
  }

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
    return this.held.retryDue;
  }

  /** Samples held for a wrong setting (marked handled in the buffer, not yet delivered). */
  get heldSamples(): number {
    return this.held.samples + (this.current?.held ?? 0);
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
    const samples = this.held.abandon();
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
    if (this.held.reason) {
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
    const aggregator = this.held.take() ?? new BucketAggregator();
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
      } else if (this.held.waiting) {
        this.held.keep(aggregator); // not due yet: merged, no request
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
    const retrying = this.held.reason !== "";
    if (retrying) this.counters.queueRetries += 1;
    const perQueue = await this.queues.encode(aggregator.datums());
    current.unacknowledged = perQueue.flat();
    const { failed, refused } = await this.queues.send(perQueue, () => this.controller.signal);
    current.unacknowledged = failed;
    if (failed.length > 0 && refused !== undefined) {
      this.held.hold(failed, refused);
      return samples;
    }
    if (retrying) this.held.resume();
    const delivered = samples - failed.reduce((sum, m) => sum + m.samples, 0);
    const fallen =
      failed.length > 0
        ? await this.fallback.publish(
            failed.flatMap((m) => m.datums),
            this.controller.signal,
          )
        : 0;
    return delivered + fallen;
  }

  private dropMisconfigured(samples: number): void {
    this.counters.droppedMisconfigured += samples;
    this.events.drop(samples, "held for a wrong setting until exit (see stats().configError)");
  }
}
