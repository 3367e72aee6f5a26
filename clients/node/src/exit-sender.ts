// The exit hook's helper process: reads {queueUrl, bodies} (wire-v1 message bodies) on stdin and sends them with
// SendMessageBatch; what SQS will not take is published directly with PutMetricData. Clients come from the SDK's
// standard settings, which the parent's environment carries.
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { SQSClient } from "@aws-sdk/client-sqs";
import { readFileSync } from "node:fs";
import { packRequests, publish } from "./cloudwatch.js";
import { sendMessages, type OutgoingMessage } from "./sqs.js";
import { datumsOf } from "./wire.js";

async function main(): Promise<void> {
  const { queueUrl, bodies } = JSON.parse(readFileSync(0, "utf8")) as { queueUrl: string; bodies: string[] };
  const messages: OutgoingMessage[] = bodies.map((body) => {
    const datums = datumsOf(body);
    return { body, datums, samples: datums.reduce((n, d) => n + d.counts.reduce((a, b) => a + b, 0), 0) };
  });
  const policy = { attempts: 3, baseDelayMs: 50, maxDelayMs: 500 };
  const sqs = new SQSClient({ maxAttempts: 1, requestHandler: { connectionTimeout: 1000, requestTimeout: 3000 } });
  const outcome = await sendMessages(sqs, queueUrl, messages, policy);
  if (outcome.failed.length === 0) return;
  const cloudwatch = new CloudWatchClient({
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 3000 },
  });
  const published = await publish(cloudwatch, packRequests(outcome.failed.flatMap((m) => m.datums)), policy);
  if (published.lost > 0) {
    process.emitWarning(`metricbatch dropped ${published.lost} metric(s) at exit: ${published.lastError}`);
    process.exitCode = 1;
  }
}

await main();
