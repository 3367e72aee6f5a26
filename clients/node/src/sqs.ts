// SendMessageBatch within its limits (10 entries, 1 MiB) and retries of just the entries that failed
// (metricbatch/aws/sqs.py).
import { SendMessageBatchCommand, type SendMessageBatchCommandOutput } from "@aws-sdk/client-sqs";
import { MAX_SQS_BATCH_BYTES, MAX_SQS_BATCH_ENTRIES } from "./limits.js";
import {
  backoffDelayMs,
  configurationProblem,
  errorCode,
  isRetryable,
  sleep,
  type ConfigurationProblem,
  type RetryPolicy,
} from "./retry.js";
import type { Datum } from "./wire.js";

/** What the producer needs of an SQS client: `SQSClient` from @aws-sdk/client-sqs, or a fake in tests. */
export interface SqsSender {
  send(
    command: SendMessageBatchCommand,
    options?: { abortSignal?: AbortSignal },
  ): Promise<SendMessageBatchCommandOutput>;
}

/** One SQS message: its body (ASCII JSON, so length = bytes), the datums it carries and their sample count. */
export interface OutgoingMessage {
  readonly body: string;
  readonly datums: Datum[];
  readonly samples: number;
}

export interface SendOutcome {
  sent: OutgoingMessage[];
  failed: OutgoingMessage[];
  requests: number; // SendMessageBatch calls made, failed ones included
  errors: number; // calls that threw plus entries SQS reported as Failed
  lastError: string;
  /** The last error meant a wrong setting (no retry fixes it): its code and what to check. */
  configuration?: ConfigurationProblem;
}

/** Group messages into SendMessageBatch calls: at most 10 entries and 1 MiB of bodies each. */
export function batchesOf(messages: readonly OutgoingMessage[]): OutgoingMessage[][] {
  const batches: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let size = 0;
  for (const message of messages) {
    const bytes = message.body.length;
    if (current.length > 0 && (current.length >= MAX_SQS_BATCH_ENTRIES || size + bytes > MAX_SQS_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      size = 0;
    }
    current.push(message);
    size += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

export async function sendMessages(
  client: SqsSender,
  queueUrl: string,
  messages: readonly OutgoingMessage[],
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<SendOutcome> {
  const outcome: SendOutcome = { sent: [], failed: [], requests: 0, errors: 0, lastError: "" };
  const batches = batchesOf(messages);
  for (const [i, batch] of batches.entries()) {
    if (outcome.configuration !== undefined) {
      outcome.failed.push(...batches.slice(i).flat()); // the next batch would be refused alike
      break;
    }
    await sendBatch(client, queueUrl, batch, policy, outcome, signal);
  }
  return outcome;
}

async function sendBatch(
  client: SqsSender,
  queueUrl: string,
  batch: OutgoingMessage[],
  policy: RetryPolicy,
  outcome: SendOutcome,
  signal?: AbortSignal,
): Promise<void> {
  const pending = new Map(batch.map((message, i) => [String(i), message]));
  for (let attempt = 0; attempt < policy.attempts && pending.size > 0 && !signal?.aborted; attempt++) {
    if (attempt > 0) await sleep(backoffDelayMs(attempt, policy.baseDelayMs, policy.maxDelayMs), signal);
    const entries = [...pending].map(([Id, m]) => ({ Id, MessageBody: m.body }));
    outcome.requests += 1;
    outcome.configuration = undefined;
    let response: SendMessageBatchCommandOutput;
    try {
      response = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }), {
        abortSignal: signal,
      });
    } catch (error) {
      outcome.errors += 1;
      outcome.lastError = `${errorCode(error)}: ${(error as Error)?.message ?? error}`;
      outcome.configuration = configurationProblem(error);
      if (!isRetryable(error)) break;
      continue;
    }
    for (const ok of response.Successful ?? []) {
      const message = ok.Id === undefined ? undefined : pending.get(ok.Id);
      if (message !== undefined) {
        pending.delete(ok.Id!);
        outcome.sent.push(message);
      }
    }
    let permanent = false;
    for (const failed of response.Failed ?? []) {
      outcome.errors += 1;
      outcome.lastError = `${failed.Code}: ${failed.Message ?? ""}`;
      outcome.configuration = configurationProblem({ Code: failed.Code });
      if (failed.SenderFault) permanent = true;
    }
    if (permanent) break;
  }
  outcome.failed.push(...pending.values());
}
