// The exit hook's helper process: reads {queueUrl, bodies} (wire-v1 message bodies) on stdin and sends them with
// SendMessageBatch; what SQS will not take in an outage is published directly with PutMetricData (never when SQS
// refused for a wrong setting: one ERROR line says so). Clients come from the SDK's standard settings, which the
// parent's environment carries.
import { readFileSync } from "node:fs";
import { makeCloudWatchClient, makeSqsClient, regionOf } from "./clients.js";
import { packRequests, publish } from "./cloudwatch.js";
import { error } from "./log.js";
import { queueRefusal } from "./retry.js";
import { sendMessages, type OutgoingMessage } from "./sqs.js";
import { datumsOf } from "./wire.js";

async function main(): Promise<void> {
  const { queueUrl, bodies } = JSON.parse(readFileSync(0, "utf8")) as { queueUrl: string; bodies: string[] };
  const messages: OutgoingMessage[] = bodies.map((body) => {
    const datums = datumsOf(body);
    return { body, datums, samples: datums.reduce((n, d) => n + d.counts.reduce((a, b) => a + b, 0), 0) };
  });
  const policy = { attempts: 3, baseDelayMs: 50, maxDelayMs: 500 };
  const timeouts = { connectionTimeout: 1000, requestTimeout: 3000 };
  const sqs = makeSqsClient(timeouts);
  const outcome = await sendMessages(sqs, queueUrl, messages, policy);
  if (outcome.failed.length === 0) return;
  const lost = outcome.failed.reduce((n, m) => n + m.samples, 0);
  if (outcome.configuration !== undefined) {
    error(`dropped ${lost} metric(s) at exit: ${queueRefusal(queueUrl, await regionOf(sqs), outcome.configuration)}`);
    process.exitCode = 1;
    return;
  }
  const cloudwatch = makeCloudWatchClient(timeouts);
  const published = await publish(cloudwatch, packRequests(outcome.failed.flatMap((m) => m.datums)), policy);
  if (published.lost > 0) {
    process.emitWarning(`metricbatch dropped ${published.lost} metric(s) at exit: ${published.lastError}`);
    process.exitCode = 1;
  }
}

// No top-level await: this file is compiled to CommonJS too (dist/cjs).
main().catch((reason: unknown) => {
  error(`exit sender failed: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
  process.exitCode = 1;
});
