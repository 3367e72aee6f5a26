// In-process fakes of the two AWS clients (no network): they record what the services would have received and fail
// the way the real ones do when told to.
import type { PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import type { SendMessageBatchCommand, SendMessageBatchCommandOutput } from "@aws-sdk/client-sqs";
import { mock } from "node:test";

export const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/metricbatch";

export interface WireMetric {
  namespace: string;
  name: string;
  unit?: string;
  dimensions?: Record<string, string>;
  resolution?: number;
  timestamp: number;
  value?: number;
  values?: number[];
  counts?: number[];
}

/** The lines console.error receives from here on (the ERROR lines), not printed (mock.restoreAll() ends it). */
export function errorLines(): string[] {
  const lines: string[] = [];
  mock.method(console, "error", (...args: unknown[]) => lines.push(args.map(String).join(" ")));
  return lines;
}

/** An AWS SDK error as the v3 clients throw it. */
export function awsError(name: string, status: number): Error {
  return Object.assign(new Error(`${name} (fake)`), { name, $metadata: { httpStatusCode: status } });
}

export class FakeSqs {
  bodies: string[] = [];
  calls = 0;
  entriesPerCall: number[] = [];
  bytesPerCall: number[] = [];
  /** Called per entry as (call number, entry id): true reports the entry as Failed (not the sender's fault). */
  failEntry?: (call: number, id: string) => boolean;
  /** Called per call: an error it returns is thrown. */
  throwFor?: (call: number) => Error | undefined;

  async send(command: SendMessageBatchCommand): Promise<SendMessageBatchCommandOutput> {
    await Promise.resolve();
    this.calls += 1;
    const call = this.calls;
    const error = this.throwFor?.(call);
    if (error) throw error;
    const entries = command.input.Entries ?? [];
    if (entries.length < 1 || entries.length > 10) throw awsError("TooManyEntriesInBatchRequest", 400);
    const bytes = entries.reduce((n, e) => n + Buffer.byteLength(e.MessageBody ?? ""), 0);
    if (bytes > 1024 * 1024) throw awsError("BatchRequestTooLong", 400);
    this.entriesPerCall.push(entries.length);
    this.bytesPerCall.push(bytes);
    const Successful = [];
    const Failed = [];
    for (const entry of entries) {
      if (this.failEntry?.(call, entry.Id!)) {
        Failed.push({ Id: entry.Id!, SenderFault: false, Code: "InternalError", Message: "fake" });
        continue;
      }
      this.bodies.push(entry.MessageBody!);
      Successful.push({ Id: entry.Id!, MessageId: `m-${this.bodies.length}`, MD5OfMessageBody: "" });
    }
    return { Successful, Failed, $metadata: { httpStatusCode: 200 } };
  }

  metrics(): WireMetric[] {
    return this.bodies.flatMap((body) => (JSON.parse(body) as { v: number; metrics: WireMetric[] }).metrics);
  }
}

export class FakeCloudWatch {
  requests: Array<{ Namespace?: string; MetricData?: NonNullable<PutMetricDataCommand["input"]["MetricData"]> }> = [];
  calls = 0;
  throwFor?: (call: number) => Error | undefined;

  async send(command: PutMetricDataCommand): Promise<unknown> {
    await Promise.resolve();
    this.calls += 1;
    const error = this.throwFor?.(this.calls);
    if (error) throw error;
    const data = command.input.MetricData ?? [];
    if (data.length > 1000) throw awsError("InvalidParameterValue", 400);
    this.requests.push({ Namespace: command.input.Namespace, MetricData: data });
    return { $metadata: { httpStatusCode: 200 } };
  }

  /** (sum, sample count) over every accepted datum, optionally of one metric name. */
  totals(name?: string): [number, number] {
    const datums = this.requests
      .flatMap((r) => r.MetricData ?? [])
      .filter((d) => name === undefined || d.MetricName === name);
    return totalsOf(datums.map((d) => [d.Values ?? [d.Value!], d.Counts]));
  }
}

/** (sum, sample count) of (values, counts) pairs; counts default to 1 each. */
function totalsOf(entries: Array<[number[], number[] | undefined]>): [number, number] {
  let sum = 0;
  let count = 0;
  for (const [values, counts] of entries) {
    values.forEach((v, i) => {
      const n = counts?.[i] ?? 1;
      sum += v * n;
      count += n;
    });
  }
  return [sum, count];
}

/** (sum, sample count) of wire metrics, optionally of one metric name. */
export function wireTotals(metrics: WireMetric[], name?: string): [number, number] {
  return totalsOf(
    metrics.filter((m) => name === undefined || m.name === name).map((m) => [m.values ?? [m.value!], m.counts]),
  );
}

/** The intervals set from here on that are still live (not cleared); mock.restoreAll() ends the tracking. */
export function liveIntervals(): Set<NodeJS.Timeout> {
  const live = new Set<NodeJS.Timeout>();
  const set = globalThis.setInterval;
  const clear = globalThis.clearInterval;
  mock.method(globalThis, "setInterval", (...args: Parameters<typeof setInterval>) => {
    const interval = set(...args);
    live.add(interval);
    return interval;
  });
  mock.method(globalThis, "clearInterval", (interval: NodeJS.Timeout | undefined) => {
    if (interval !== undefined) live.delete(interval);
    clear(interval);
  });
  return live;
}

/** Resolves true once `condition()` holds, false if it still does not after `timeoutMs`. */
export async function eventually(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}
