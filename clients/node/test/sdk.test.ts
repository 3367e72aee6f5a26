// The real AWS SDK v3 clients with the network replaced by a recording request handler: what the pinned
// @aws-sdk/client-cloudwatch puts on the wire (AWS JSON 1.0) is what packRequests sizes, and the real SQSClient's
// responses drive the sender.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { describe, mock, test } from "node:test";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { SQSClient } from "@aws-sdk/client-sqs";
import { MetricProducer } from "../src/index.js";
import { packRequests, publish } from "../src/cloudwatch.js";
import { MAX_REQUEST_BYTES } from "../src/limits.js";
import { seriesHead, type Datum, type Series } from "../src/wire.js";
import { errorLines, QUEUE_URL, wireTotals, type WireMetric } from "./fakes.js";

interface Captured {
  headers: Record<string, string>;
  body: string;
}

function recordingHandler(captured: Captured[], respond: (body: string) => unknown) {
  return {
    async handle(request: { headers: Record<string, string>; body?: unknown }) {
      const body = typeof request.body === "string" ? request.body : Buffer.from(request.body as Uint8Array).toString();
      captured.push({ headers: request.headers, body });
      const payload = Buffer.from(JSON.stringify(respond(body)));
      return {
        response: {
          statusCode: 200,
          headers: { "content-type": "application/x-amz-json-1.0", "content-length": String(payload.length) },
          body: Readable.from([payload]),
        },
      };
    },
  };
}

const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };

function series(namespace: string, i: number): Series {
  const dimensions = [
    ["Host", `host-${String(i).padStart(5, "0")}`],
    ["Service", "checkout"],
  ] as const;
  return {
    namespace,
    name: "Latency",
    unit: "Milliseconds",
    resolution: 60,
    dimensions,
    head: seriesHead(namespace, "Latency", "Milliseconds", 60, dimensions),
  };
}

describe("@aws-sdk/client-cloudwatch as pinned", () => {
  test("speaks AWS JSON 1.0, and every packed request's body is within 1,000,000 bytes and 1,000 datums", async () => {
    const minute = Math.floor(Date.now() / 60_000) * 60 - 300;
    const datums: Datum[] = [];
    for (let i = 0; i < 2500; i++) {
      const values = Array.from({ length: 150 }, (_, k) => 1000 * Math.random() + k);
      datums.push({
        series: series(i % 3 ? "Shop/A" : "Shop/B", i),
        timestamp: minute,
        values,
        counts: values.map((_, k) => k + 1),
      });
    }
    for (let i = 0; i < 1500; i++)
      datums.push({ series: series("Shop/A", 10_000 + i), timestamp: minute, values: [i], counts: [1] });
    const requests = packRequests(datums);
    const captured: Captured[] = [];
    const client = new CloudWatchClient({
      region: "us-east-1",
      credentials,
      disableRequestCompression: true,
      maxAttempts: 1,
      requestHandler: recordingHandler(captured, () => ({})),
    });
    const outcome = await publish(client, requests, { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 });
    assert.equal(outcome.calls, requests.length);
    assert.equal(outcome.lost, 0);
    assert.equal(captured.length, requests.length);
    let samples = 0;
    captured.forEach((request, i) => {
      assert.equal(request.headers["content-type"], "application/x-amz-json-1.0");
      assert.equal(request.headers["x-amz-target"], "GraniteServiceVersion20100801.PutMetricData");
      const bytes = Buffer.byteLength(request.body);
      assert.ok(bytes <= MAX_REQUEST_BYTES, `request ${i}: ${bytes} bytes`);
      assert.equal(bytes, requests[i]!.bytes, `request ${i}: the size packRequests computed is the size sent`);
      const body = JSON.parse(request.body) as { Namespace: string; MetricData: Array<Record<string, unknown>> };
      assert.ok(body.MetricData.length <= 1000);
      for (const d of body.MetricData) {
        assert.equal(d.Timestamp, minute); // epoch seconds, the bucket start
        const counts = (d.Counts as number[] | undefined) ?? [1];
        assert.ok(((d.Values as number[] | undefined) ?? [d.Value]).length <= 150);
        samples += counts.reduce((a, b) => a + b, 0);
      }
    });
    assert.equal(samples, 2500 * ((150 * 151) / 2) + 1500);
    assert.ok(
      captured.some((r) => Buffer.byteLength(r.body) > 900_000),
      "the byte limit, not the count, closed requests",
    );
  });
});

describe("@aws-sdk/client-sqs as pinned", () => {
  test("the producer's SendMessageBatch goes through the real client and its response", async () => {
    const captured: Captured[] = [];
    const sqs = new SQSClient({
      region: "us-east-1",
      credentials,
      maxAttempts: 1,
      requestHandler: recordingHandler(captured, (body) => {
        const entries = (JSON.parse(body) as { Entries: Array<{ Id: string; MessageBody: string }> }).Entries;
        return {
          Successful: entries.map((e) => ({
            Id: e.Id,
            MessageId: `m-${e.Id}`,
            MD5OfMessageBody: createHash("md5").update(e.MessageBody).digest("hex"),
          })),
        };
      }),
    });
    const producer = new MetricProducer({
      queueUrl: QUEUE_URL,
      namespace: "Sdk/Test",
      sqsClient: sqs,
      handleSignals: false,
    });
    for (let i = 0; i < 1000; i++)
      producer.sendMetric("Requests", 1, { unit: "Count", dimensions: { Route: `/r${i % 10}` } });
    assert.equal(await producer.flush(5000), true);
    await producer.close();
    assert.equal(captured[0]!.headers["x-amz-target"], "AmazonSQS.SendMessageBatch");
    const metrics = captured.flatMap((r) =>
      (JSON.parse(r.body) as { Entries: Array<{ MessageBody: string }> }).Entries.flatMap(
        (e) => (JSON.parse(e.MessageBody) as { metrics: WireMetric[] }).metrics,
      ),
    );
    assert.deepEqual(wireTotals(metrics), [1000, 1000]);
    assert.equal(producer.stats().sent, 1000);
    assert.equal(producer.stats().sendErrors, 0);
  });

  test("a queue that does not exist: the ERROR line and configError name the region the client resolved", async () => {
    // GIVEN the real SQSClient for eu-west-3, whose endpoint answers that the queue does not exist
    const lines = errorLines();
    const missing = {
      __type: "com.amazonaws.sqs#QueueDoesNotExist",
      message: "The specified queue does not exist.",
    };
    const sqs = new SQSClient({
      region: "eu-west-3",
      credentials,
      maxAttempts: 1,
      requestHandler: {
        async handle() {
          const payload = Buffer.from(JSON.stringify(missing));
          return {
            response: {
              statusCode: 400,
              headers: {
                "content-type": "application/x-amz-json-1.0",
                "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender",
                "content-length": String(payload.length),
              },
              body: Readable.from([payload]),
            },
          };
        },
      },
    });
    const producer = new MetricProducer({
      queueUrl: QUEUE_URL,
      namespace: "Sdk/Test",
      sqsClient: sqs,
      handleSignals: false,
    });
    // WHEN a metric is sent and flushed
    producer.sendMetric("Requests", 1);
    assert.equal(await producer.flush(5000), false);
    await producer.close(1000);
    mock.restoreAll();
    // THEN the one ERROR line, and stats().configError, name the queue and the region it was looked for in
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.ok(lines[0]!.includes(`SQS refused the queue ${QUEUE_URL} (region eu-west-3): `), lines[0]);
    assert.ok(producer.stats().configError.includes("(region eu-west-3)"), producer.stats().configError);
  });
});
