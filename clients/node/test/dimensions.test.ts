// Issue 24 in Node: default dimensions and roll-ups through the shared vectors (tests/vectors/dimensions.json, which
// the Python producer runs too: tests/unit/producer/test_dimensions.py), and instrumentClient on a real SQSClient
// whose network is a scripted request handler (throttled once, then failing on every attempt).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, test } from "node:test";
import { SQSClient, ListQueuesCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { ConfigurationError, InvalidMetricError, MetricProducer, instrumentClient } from "../src/index.js";
import { captured, clear } from "../src/testing.js";

interface CallVector {
  id: string;
  defaults?: Record<string, unknown>;
  dimensions?: Record<string, unknown>;
  rollups?: unknown;
  rule?: string;
  recorded?: Array<Record<string, string>>;
  recorded_count?: number;
}

const VECTORS = JSON.parse(
  readFileSync(new URL("../../../../tests/vectors/dimensions.json", import.meta.url), "utf8"),
) as {
  default_dimensions_variable: Array<{ value: string; dimensions?: Record<string, string>; ignored?: string }>;
  calls: CallVector[];
};
const NAMESPACE = "Unit/Dimensions";

function decode(dimensions: Record<string, unknown> | undefined): Record<string, string> | undefined {
  if (dimensions === undefined) return undefined;
  const range = (from: number, n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`D${from + i}`, "v"]));
  if ("$count" in dimensions) return range(0, dimensions.$count as number);
  if ("$count_from" in dimensions) return range(dimensions.$count_from as number, dimensions.n as number);
  return dimensions as Record<string, string>;
}

let saved: string | undefined;
beforeEach(() => {
  saved = process.env.METRICBATCH_DEFAULT_DIMENSIONS;
  delete process.env.METRICBATCH_DEFAULT_DIMENSIONS;
  clear();
});
afterEach(() => {
  if (saved === undefined) delete process.env.METRICBATCH_DEFAULT_DIMENSIONS;
  else process.env.METRICBATCH_DEFAULT_DIMENSIONS = saved;
  clear();
});

describe("METRICBATCH_DEFAULT_DIMENSIONS (shared vectors)", () => {
  for (const vector of VECTORS.default_dimensions_variable) {
    test(JSON.stringify(vector.value), () => {
      process.env.METRICBATCH_DEFAULT_DIMENSIONS = vector.value;
      const producer = new MetricProducer({ mode: "memory", namespace: NAMESPACE });
      producer.sendMetric("M", 1);
      producer.sendMetric("M", 2);
      const dims = captured().map((m) => ({ ...m.dimensions }));
      assert.deepEqual(dims, vector.ignored ? [{}, {}] : [vector.dimensions, vector.dimensions]);
    });
  }

  test("an explicit value beats the variable, and a wrong one throws ConfigurationError at construction", () => {
    process.env.METRICBATCH_DEFAULT_DIMENSIONS = "Service=env";
    const producer = new MetricProducer({
      mode: "memory",
      namespace: NAMESPACE,
      defaultDimensions: { Service: "arg" },
    });
    producer.sendMetric("M", 1);
    assert.deepEqual(captured()[0]?.dimensions, { Service: "arg" });
    assert.throws(
      () => new MetricProducer({ mode: "memory", namespace: NAMESPACE, defaultDimensions: { Service: "" } }),
      (error: unknown) => error instanceof ConfigurationError && /dimension_value\.empty/.test(error.message),
    );
  });
});

describe("default dimensions and roll-ups (shared vectors)", () => {
  for (const vector of VECTORS.calls) {
    test(vector.id, () => {
      const producer = new MetricProducer({
        mode: "memory",
        namespace: NAMESPACE,
        defaultDimensions: decode(vector.defaults),
      });
      const call = () =>
        producer.sendMetric("Latency", 2.5, {
          unit: "Milliseconds",
          dimensions: decode(vector.dimensions),
          rollups: vector.rollups as string[][] | undefined,
        });
      if (vector.rule !== undefined) {
        assert.throws(call, (error: unknown) => error instanceof InvalidMetricError && error.rule === vector.rule);
        assert.deepEqual(captured(), []);
        assert.equal(producer.stats().invalid, 1);
        return;
      }
      call();
      call();
      const got = captured();
      if (vector.recorded_count !== undefined) {
        assert.equal(got.length, 2 * vector.recorded_count);
        return;
      }
      const sets = vector.recorded ?? [];
      assert.deepEqual(
        got.map((m) => ({ ...m.dimensions })),
        [...sets, ...sets],
      );
      assert.equal(new Set(got.slice(0, sets.length).map((m) => m.timestamp)).size, 1);
      assert.ok(got.every((m) => m.value === 2.5 && m.unit === "Milliseconds"));
    });
  }
});

// -- instrumentClient -------------------------------------------------------------------------------------------------
type Reply = { status: number; body: unknown };

function scriptedSqs(replies: Reply[], extra: { cacheMiddleware?: boolean } = {}): SQSClient {
  const handler = {
    async handle() {
      const reply = replies.shift() ?? { status: 200, body: { QueueUrls: [] } };
      const payload = Buffer.from(JSON.stringify(reply.body));
      return {
        response: {
          statusCode: reply.status,
          headers: { "content-type": "application/x-amz-json-1.0", "content-length": String(payload.length) },
          body: Readable.from([payload]),
        },
      };
    },
  };
  return new SQSClient({
    region: "us-east-1",
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    requestHandler: handler,
    maxAttempts: 3,
    retryStrategy: undefined,
    ...extra,
  });
}

const THROTTLED: Reply = { status: 400, body: { __type: "com.amazonaws.sqs#RequestThrottled", message: "slow down" } };
const UNAVAILABLE: Reply = { status: 503, body: { __type: "ServiceUnavailable", message: "try again" } };

describe("instrumentClient", () => {
  test("records each call once (twice instrumented), with retries and an ErrorType roll-up on failure", async () => {
    const producer = new MetricProducer({ mode: "memory", namespace: NAMESPACE });
    const client = scriptedSqs([
      THROTTLED,
      { status: 200, body: { QueueUrls: [] } },
      UNAVAILABLE,
      UNAVAILABLE,
      UNAVAILABLE,
    ]);
    const instrumentation = instrumentClient(client, { producer, namespace: "Unit/Sdk" });
    assert.equal(instrumentClient(client, { producer, namespace: "Unit/Sdk" }), instrumentation);
    await client.send(new ListQueuesCommand({})); // throttled once, then OK
    await assert.rejects(client.send(new ListQueuesCommand({}))); // 503 on every attempt
    instrumentation.undo();
    await client.send(new ListQueuesCommand({})); // not recorded
    const base = { ServiceId: "SQS", OperationName: "ListQueues" };
    const of = (name: string) => captured(name).map((m) => [m.value, { ...m.dimensions }]);
    assert.deepEqual(of("ApiCallSuccessful"), [
      [1, base],
      [0, { ...base, ErrorType: "ServerError" }],
      [0, base],
    ]);
    assert.deepEqual(of("RetryCount"), [
      [1, base],
      [2, { ...base, ErrorType: "ServerError" }],
      [2, base],
    ]);
    assert.equal(captured("ApiCallDuration").length, 3);
    assert.ok(captured("ApiCallDuration").every((m) => m.unit === "Milliseconds" && m.value >= 0));
  });

  test("a client with cacheMiddleware, used before: its calls are recorded from then on, and undo stops it", async () => {
    const producer = new MetricProducer({ mode: "memory", namespace: NAMESPACE });
    const client = scriptedSqs([], { cacheMiddleware: true });
    await client.send(new ListQueuesCommand({})); // the SDK caches this command's resolved stack
    const instrumentation = instrumentClient(client, { producer, namespace: "Unit/Sdk" });
    await client.send(new ListQueuesCommand({}));
    await client.send(new ListQueuesCommand({}));
    instrumentation.undo();
    await client.send(new ListQueuesCommand({}));
    assert.deepEqual(
      captured("ApiCallSuccessful").map((m) => m.value),
      [1, 1],
    );
  });

  test("never records the pipeline's own SendMessageBatch, and never throws into the call", async () => {
    const broken = new MetricProducer({ mode: "memory", namespace: NAMESPACE });
    broken.recordSamples = () => {
      throw new Error("broken on purpose");
    };
    const client = scriptedSqs([
      { status: 200, body: { Successful: [], Failed: [] } },
      { status: 200, body: { QueueUrls: ["u"] } },
    ]);
    const producer = new MetricProducer({ mode: "memory", namespace: NAMESPACE });
    instrumentClient(client, { producer });
    await client.send(new SendMessageBatchCommand({ QueueUrl: "https://q", Entries: [{ Id: "1", MessageBody: "b" }] }));
    assert.deepEqual(captured(), []);
    const other = scriptedSqs([{ status: 200, body: { QueueUrls: ["u"] } }]);
    instrumentClient(other, { producer: broken });
    const result = await other.send(new ListQueuesCommand({}));
    assert.deepEqual(result.QueueUrls, ["u"]);
  });
});
