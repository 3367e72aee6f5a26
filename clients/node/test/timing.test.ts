// timer (sync and async), flushAfter, and the module-level helpers on the default producer.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { flush, flushAfter, MetricProducer, sendMetric, setDefaultProducer, stats, timer } from "../src/index.js";
import { FakeSqs, QUEUE_URL, type WireMetric } from "./fakes.js";

let producers: MetricProducer[] = [];

function producerOver(sqs: FakeSqs): MetricProducer {
  const p = new MetricProducer({ queueUrl: QUEUE_URL, namespace: "Unit/Timer", sqsClient: sqs, handleSignals: false });
  producers.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(producers.map((p) => p.close(2000)));
  producers = [];
  setDefaultProducer(undefined);
});

function byName(metrics: WireMetric[]): Record<string, WireMetric> {
  return Object.fromEntries(metrics.map((m) => [m.name, m]));
}

describe("timer", () => {
  test("a sync function: its result, its duration in Milliseconds, Success 1 and Error 0", async () => {
    const sqs = new FakeSqs();
    const producer = producerOver(sqs);
    const result = timer("DynamoDB.GetItem", () => 42, { producer, dimensions: { Table: "orders" } });
    assert.equal(result, 42);
    await producer.flush(5000);
    const m = byName(sqs.metrics());
    assert.equal(m["DynamoDB.GetItem"]!.unit, "Milliseconds");
    assert.ok(m["DynamoDB.GetItem"]!.value! >= 0);
    assert.deepEqual(m["DynamoDB.GetItem"]!.dimensions, { Table: "orders" });
    assert.deepEqual([m["DynamoDB.GetItem.Success"]!.value, m["DynamoDB.GetItem.Success"]!.unit], [1, "Count"]);
    assert.deepEqual([m["DynamoDB.GetItem.Error"]!.value, m["DynamoDB.GetItem.Error"]!.unit], [0, "Count"]);
  });

  test("a sync function that throws: the error passes through, recorded as Error 1", async () => {
    const sqs = new FakeSqs();
    const producer = producerOver(sqs);
    assert.throws(
      () =>
        timer(
          "S3.PutObject",
          () => {
            throw new RangeError("boom");
          },
          { producer },
        ),
      RangeError,
    );
    await producer.flush(5000);
    const m = byName(sqs.metrics());
    assert.equal(m["S3.PutObject.Success"]!.value, 0);
    assert.equal(m["S3.PutObject.Error"]!.value, 1);
  });

  test("an async function: timed until it settles; a rejection is recorded and passed on", async () => {
    const sqs = new FakeSqs();
    const producer = producerOver(sqs);
    assert.equal(
      await timer(
        "Slow",
        async () => {
          await delay(30);
          return "ok";
        },
        { producer },
      ),
      "ok",
    );
    await assert.rejects(
      timer(
        "Failing",
        async () => {
          throw new TypeError("nope");
        },
        { producer },
      ),
      TypeError,
    );
    await producer.flush(5000);
    const m = byName(sqs.metrics());
    assert.ok(m["Slow"]!.value! >= 25, `timed ${m["Slow"]!.value} ms for a 30 ms wait`);
    assert.deepEqual([m["Slow.Success"]!.value, m["Slow.Error"]!.value], [1, 0]);
    assert.deepEqual([m["Failing.Success"]!.value, m["Failing.Error"]!.value], [0, 1]);
  });
});

describe("flushAfter", () => {
  test("everything the handler sent is on the queue when the wrapped handler resolves", async () => {
    const sqs = new FakeSqs();
    const producer = producerOver(sqs);
    const handler = flushAfter(
      async (event: { n: number }) => {
        for (let i = 0; i < event.n; i++) producer.sendMetric("Handled", 1);
        return { statusCode: 200 };
      },
      { producer },
    );
    assert.deepEqual(await handler({ n: 25 }), { statusCode: 200 });
    assert.equal(
      sqs.metrics().reduce((n, m) => n + (m.counts?.[0] ?? 1), 0),
      25,
    );
  });

  test("a handler that throws still flushes, and the error passes through", async () => {
    const sqs = new FakeSqs();
    const producer = producerOver(sqs);
    const handler = flushAfter(
      async () => {
        producer.sendMetric("BeforeError", 1);
        throw new Error("handler failed");
      },
      { producer },
    );
    await assert.rejects(handler(), /handler failed/);
    assert.equal(sqs.metrics().length, 1);
  });
});

describe("module-level helpers", () => {
  test("they use the default producer", async () => {
    const sqs = new FakeSqs();
    setDefaultProducer(producerOver(sqs));
    sendMetric("Helper", 7, { unit: "Count" });
    assert.equal(stats().buffered, 1);
    assert.equal(await flush(5000), true);
    assert.deepEqual([stats().sent, stats().buffered], [1, 0]);
    assert.deepEqual(
      sqs.metrics().map((m) => [m.namespace, m.name, m.value]),
      [["Unit/Timer", "Helper", 7]],
    );
  });
});
