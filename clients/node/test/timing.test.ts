// timer (sync and async), flushAfter, and the module-level helpers on the default producer.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  flush,
  flushAfter,
  InvalidMetricError,
  MetricProducer,
  sendMetric,
  setDefaultProducer,
  stats,
  timer,
} from "../src/index.js";
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

describe("a timer validates when created and never changes the timed code's outcome", () => {
  const BAD: [string, Record<string, unknown>, string][] = [
    ["", {}, "name.empty"],
    ["N".repeat(250), {}, "name.length"], // "<name>.Success" would be too long
    ["Op", { namespace: "AWS/Mine" }, "namespace.reserved"],
    ["Op", { dimensions: { "": "x" } }, "dimension_name.empty"],
    ["Op", { storageResolution: 5 }, "resolution.value"],
  ];
  for (const [name, options, rule] of BAD) {
    test(`${rule}: thrown before fn runs, so fn's own error is never replaced`, async () => {
      const producer = producerOver(new FakeSqs());
      let calls = 0;
      const dbError = new Error("db down");
      const fn = (): never => {
        calls += 1;
        throw dbError;
      };
      assert.throws(
        () => timer(name, fn, { producer, ...options }),
        (e: unknown) => {
          return e instanceof InvalidMetricError && e.rule === rule;
        },
      );
      await assert.rejects(
        (async () => timer(name, async () => fn(), { producer, ...options }))(),
        (e: unknown) => e instanceof InvalidMetricError && e.rule === rule,
      );
      assert.equal(calls, 0);
    });
  }

  test("no namespace configured anywhere: an async fn that succeeded still resolves to its value", async () => {
    const saved = process.env.METRICBATCH_NAMESPACE;
    delete process.env.METRICBATCH_NAMESPACE;
    try {
      const sqs = new FakeSqs();
      const producer = new MetricProducer({ queueUrl: QUEUE_URL, sqsClient: sqs, handleSignals: false });
      producers.push(producer);
      setDefaultProducer(producer);
      assert.equal(await timer("Db.Write", async () => "committed"), "committed");
      await producer.flush(5000);
      const m = byName(sqs.metrics());
      assert.equal(m["Db.Write.Success"]!.namespace, "metricbatch/default");
      assert.equal(m["Db.Write.Success"]!.value, 1);
    } finally {
      if (saved === undefined) delete process.env.METRICBATCH_NAMESPACE;
      else process.env.METRICBATCH_NAMESPACE = saved;
    }
  });

  test("a metric that cannot be recorded afterwards: fn's result and error pass through unchanged", async () => {
    const producer = producerOver(new FakeSqs());
    // a producer that fails at recording time (after the timer validated)
    producer.sendMetric = () => {
      throw new InvalidMetricError("value.finite", "cannot record");
    };
    const dbError = new Error("db down");
    assert.equal(
      timer("Op", () => 7, { producer }),
      7,
    );
    assert.equal(await timer("Op", async () => 8, { producer }), 8);
    assert.throws(
      () =>
        timer(
          "Op",
          () => {
            throw dbError;
          },
          { producer },
        ),
      (e: unknown) => e === dbError,
    );
    await assert.rejects(
      timer("Op", () => Promise.reject(dbError), { producer }),
      (e: unknown) => e === dbError,
    );
  });
});
