// The sender: takes what is buffered, merges it per series and bucket, encodes wire-v1 messages and ships them with
// SendMessageBatch; what SQS will not take goes to CloudWatch directly (the fallback). All of it runs on the event loop
// in slices, so a large round never holds the loop for long.
import { debuglog } from "node:util";
import { BucketAggregator, sampleCount } from "./aggregation.js";
import type { MetricBuffer, TakenMetrics } from "./buffer.js";
import { packRequests, publish, type CloudWatchSender } from "./cloudwatch.js";
import { sendMessages, type OutgoingMessage, type SqsSender } from "./sqs.js";
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
}

export interface SenderSettings {
  queueUrl: string;
  maxMessageBytes: number;
  sendAttempts: number;
  fallback: boolean;
}

export interface SenderClients {
  sqs(): SqsSender;
  cloudwatch(): CloudWatchSender;
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

export class Sender {
  private running = false;
  private controller = new AbortController();
  /** The round in progress: what it took and, once encoded, the messages nobody has acknowledged yet. */
  private current: { taken: TakenMetrics; unacknowledged?: OutgoingMessage[] } | undefined;

  constructor(
    private readonly buffer: MetricBuffer,
    private readonly counters: Counters,
    private readonly settings: SenderSettings,
    private readonly clients: SenderClients,
    private readonly drop: (count: number, why: string) => void,
  ) {}

  /** Start a round now unless one is running (it goes on until the buffer is empty). */
  kick(): void {
    if (this.running || this.buffer.length === 0) return;
    this.running = true;
    void this.pump();
  }

  get busy(): boolean {
    return this.running;
  }

  /** Stop for good: abort requests in flight and drop (and count) everything still buffered. */
  abort(why: string): void {
    this.controller.abort();
    const left = this.buffer.take().count;
    if (left > 0) {
      this.drop(left, why);
      this.buffer.markHandled(left);
    }
  }

  /** Allow rounds again after abort() (a producer used after close). */
  reset(): void {
    if (this.controller.signal.aborted) this.controller = new AbortController();
  }

  /**
   * Everything buffered plus what the round in progress has not had acknowledged, encoded, for a last synchronous
   * send at process.exit(). A message SQS accepted whose answer had not arrived yet is sent twice (at-least-once).
   */
  drainForExit(): string[] {
    const aggregator = new BucketAggregator();
    const current = this.current;
    this.current = undefined;
    if (current?.unacknowledged === undefined && current !== undefined) {
      aggregator.addRange(current.taken.series, current.taken.values, current.taken.timestamps, 0, current.taken.count);
    }
    for (const message of current?.unacknowledged ?? []) for (const datum of message.datums) aggregator.addDatum(datum);
    const taken = this.buffer.take();
    aggregator.addRange(taken.series, taken.values, taken.timestamps, 0, taken.count);
    this.buffer.markHandled(taken.count + (current?.taken.count ?? 0));
    const bodies: string[] = [];
    let fragments: string[] = [];
    let size = 0;
    for (const datum of aggregator.datums()) {
      const fragment = fragmentOf(datum);
      if (fragments.length > 0 && size + fragment.length + 1 > this.settings.maxMessageBytes - ENVELOPE_BYTES) {
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

  private async pump(): Promise<void> {
    try {
      while (this.buffer.length > 0 && !this.controller.signal.aborted) await this.round();
    } finally {
      this.running = false;
    }
  }

  private async round(): Promise<void> {
    const taken = this.buffer.take();
    const current: { taken: TakenMetrics; unacknowledged?: OutgoingMessage[] } = { taken };
    this.current = current;
    let accounted = 0;
    try {
      const aggregator = new BucketAggregator();
      for (let start = 0; start < taken.count; start += SLICE) {
        if (start > 0) await yieldToLoop();
        aggregator.addRange(taken.series, taken.values, taken.timestamps, start, Math.min(taken.count, start + SLICE));
      }
      const messages = await encodeMessages(aggregator.datums(), this.settings.maxMessageBytes);
      current.unacknowledged = messages;
      const failed = await this.sendToSqs(messages);
      current.unacknowledged = failed;
      accounted = taken.count - failed.reduce((sum, m) => sum + m.samples, 0);
      if (failed.length > 0) accounted += await this.fallback(failed.flatMap((m) => m.datums));
    } catch (error) {
      debug("send round failed: %s", error);
    } finally {
      // Unless drained at exit (the exit hook owns these metrics now): account for the round.
      if (this.current === current) {
        this.current = undefined;
        if (accounted < taken.count) this.drop(taken.count - accounted, "the send round failed");
        this.buffer.markHandled(taken.count);
      }
    }
  }

  /** Send to SQS; returns the messages it did not accept. */
  private async sendToSqs(messages: OutgoingMessage[]): Promise<OutgoingMessage[]> {
    const signal = this.controller.signal;
    const { counters } = this;
    try {
      const policy = { attempts: this.settings.sendAttempts, baseDelayMs: 50, maxDelayMs: 2000 };
      const outcome = await sendMessages(this.clients.sqs(), this.settings.queueUrl, messages, policy, signal);
      counters.sqsRequests += outcome.requests;
      counters.sendErrors += outcome.errors;
      counters.messagesSent += outcome.sent.length;
      for (const message of outcome.sent) {
        counters.sent += message.samples;
        counters.wireMetricsSent += message.datums.length;
      }
      if (outcome.failed.length > 0)
        debug("SQS did not accept %d message(s): %s", outcome.failed.length, outcome.lastError);
      return outcome.failed;
    } catch (error) {
      debug("cannot send to SQS: %s", error);
      counters.sendErrors += 1;
      return messages;
    }
  }

  /** Publish directly with PutMetricData; returns how many samples it accounted for (published or dropped). */
  private async fallback(datums: Datum[]): Promise<number> {
    const samples = datums.reduce((sum, d) => sum + sampleCount(d), 0);
    if (!this.settings.fallback || this.controller.signal.aborted) {
      this.drop(samples, this.settings.fallback ? "aborted at exit" : "SQS unavailable and the fallback is off");
      return samples;
    }
    try {
      const policy = { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 };
      const outcome = await publish(this.clients.cloudwatch(), packRequests(datums), policy, this.controller.signal);
      this.counters.putMetricDataCalls += outcome.calls;
      this.counters.fallbackPublished += outcome.published;
      if (outcome.lost > 0) this.drop(outcome.lost, `SQS and CloudWatch unavailable (${outcome.lastError})`);
    } catch (error) {
      this.drop(samples, `SQS and CloudWatch unavailable: ${error}`);
    }
    return samples;
  }
}
