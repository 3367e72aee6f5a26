// The fallback: direct PutMetricData while SQS is unavailable (metricbatch/cloudwatch/packing.py, publisher.py).
// @aws-sdk/client-cloudwatch (as pinned in package-lock.json) speaks AWS JSON 1.0 to CloudWatch: the request body is
// {"Namespace":...,"MetricData":[...]} with Timestamp as epoch seconds, so requests are sized as that JSON.
import { PutMetricDataCommand, type MetricDatum, type StandardUnit } from "@aws-sdk/client-cloudwatch";
import { MAX_DATUMS_PER_REQUEST, MAX_REQUEST_BYTES } from "./limits.js";
import { sampleCount } from "./aggregation.js";
import { backoffDelayMs, errorCode, isRetryable, sleep, type RetryPolicy } from "./retry.js";
import type { Datum } from "./wire.js";

/** What the fallback needs of a CloudWatch client: `CloudWatchClient`, or a fake in tests. */
export interface CloudWatchSender {
  send(command: PutMetricDataCommand, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

export interface PutMetricDataRequest {
  namespace: string;
  datums: Datum[];
  /** The JSON-protocol body's size in bytes (before gzip), as the SDK serializes it. */
  bytes: number;
}

export interface PublishOutcome {
  calls: number;
  published: number; // samples CloudWatch accepted
  lost: number; // samples given up on
  lastError: string;
}

/** A MetricDatum as the API takes it; a lone sample uses Value, the rest Values (Counts only when not all 1). */
export function datumToApi(datum: Datum): MetricDatum {
  const { series } = datum;
  const api: MetricDatum = { MetricName: series.name };
  if (series.dimensions.length > 0) api.Dimensions = series.dimensions.map(([Name, Value]) => ({ Name, Value }));
  api.Timestamp = new Date(datum.timestamp * 1000);
  if (datum.values.length === 1 && datum.counts[0] === 1) api.Value = datum.values[0]!;
  else {
    api.Values = datum.values;
    if (datum.counts.some((c) => c !== 1)) api.Counts = datum.counts;
  }
  if (series.unit !== "None") api.Unit = series.unit as StandardUnit;
  if (series.resolution !== 60) api.StorageResolution = series.resolution;
  return api;
}

function jsonBytes(api: MetricDatum): number {
  // The JSON protocol writes Timestamp as epoch seconds; bucket starts are whole seconds.
  return Buffer.byteLength(JSON.stringify({ ...api, Timestamp: Math.floor((api.Timestamp as Date).getTime() / 1000) }));
}

/** Pack datums into requests: one namespace each, at most 1,000 datums and 1,000,000 bytes of JSON. */
export function packRequests(
  datums: Iterable<Datum>,
  maxDatums = MAX_DATUMS_PER_REQUEST,
  maxBytes = MAX_REQUEST_BYTES,
): PutMetricDataRequest[] {
  const byNamespace = new Map<string, Datum[]>();
  for (const datum of datums) {
    const group = byNamespace.get(datum.series.namespace);
    if (group === undefined) byNamespace.set(datum.series.namespace, [datum]);
    else group.push(datum);
  }
  const requests: PutMetricDataRequest[] = [];
  for (const [namespace, group] of byNamespace) {
    const envelope = Buffer.byteLength(JSON.stringify({ Namespace: namespace, MetricData: [] }));
    let current: PutMetricDataRequest = { namespace, datums: [], bytes: envelope };
    for (const datum of group) {
      const size = jsonBytes(datumToApi(datum));
      const added = size + (current.datums.length > 0 ? 1 : 0); // the comma between datums
      if (current.datums.length > 0 && (current.datums.length >= maxDatums || current.bytes + added > maxBytes)) {
        requests.push(current);
        current = { namespace, datums: [], bytes: envelope };
      }
      current.bytes += current.datums.length > 0 ? added : size;
      current.datums.push(datum);
    }
    if (current.datums.length > 0) requests.push(current);
  }
  return requests;
}

export async function publish(
  client: CloudWatchSender,
  requests: readonly PutMetricDataRequest[],
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<PublishOutcome> {
  const outcome: PublishOutcome = { calls: 0, published: 0, lost: 0, lastError: "" };
  for (const request of requests) {
    const samples = request.datums.reduce((sum, d) => sum + sampleCount(d), 0);
    let done = false;
    for (let attempt = 0; attempt < policy.attempts && !done && !signal?.aborted; attempt++) {
      if (attempt > 0) await sleep(backoffDelayMs(attempt, policy.baseDelayMs, policy.maxDelayMs), signal);
      outcome.calls += 1;
      try {
        const command = new PutMetricDataCommand({
          Namespace: request.namespace,
          MetricData: request.datums.map(datumToApi),
        });
        await client.send(command, { abortSignal: signal });
        done = true;
      } catch (error) {
        outcome.lastError = `${errorCode(error)}: ${(error as Error)?.message ?? error}`;
        if (!isRetryable(error)) break;
      }
    }
    if (done) outcome.published += samples;
    else outcome.lost += samples;
  }
  return outcome;
}
