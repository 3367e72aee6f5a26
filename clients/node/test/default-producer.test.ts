// The module-level helpers' default producer: replacing it closes the one it replaces.
import assert from "node:assert/strict";
import { afterEach, describe, mock, test } from "node:test";
import { MetricProducer, sendMetric, setDefaultProducer } from "../src/index.js";
import { eventually, FakeSqs, liveIntervals, QUEUE_URL, wireTotals } from "./fakes.js";

// Rounds an hour apart (less a second: not a whole number of minutes, so a plain interval, not minute-aligned).
const ROUND_MS = 3_599_000;

afterEach(async () => {
  await setDefaultProducer(undefined)?.close(2000);
  mock.restoreAll();
});

describe("setDefaultProducer", () => {
  test("the replaced producer is closed: what it buffered reaches SQS and its round timer stops", async () => {
    // GIVEN a default producer whose next round is an hour away, holding 10 metrics, its round timer running
    const live = liveIntervals();
    const sqs = new FakeSqs();
    const old = new MetricProducer({
      queueUrl: QUEUE_URL,
      sqsClient: sqs,
      flushIntervalMs: ROUND_MS,
      handleSignals: false,
    });
    setDefaultProducer(old);
    for (let i = 0; i < 10; i++) sendMetric("Replaced", i, { namespace: "Unit/Default" });
    assert.equal(live.size, 1);
    assert.equal(sqs.calls, 0);
    // WHEN another producer replaces it
    const next = new MetricProducer({ mode: "off", namespace: "Unit/Default" });
    assert.equal(setDefaultProducer(next), old);
    // THEN the replaced producer's metrics reach the queue without anyone flushing it, and no timer of it is left
    assert.ok(await eventually(() => sqs.metrics().length > 0, 2000), "the replaced producer's metrics were not sent");
    assert.deepEqual(wireTotals(sqs.metrics(), "Replaced"), [45, 10]);
    assert.ok(await eventually(() => live.size === 0, 2000), "the replaced producer's round timer still runs");
    assert.equal(old.stats().buffered, 0);
  });

  test("a metric sent while close() is in flight is still delivered (a replaced producer put back at once)", async () => {
    // GIVEN a producer with rounds every 50 ms that has sent all it had
    const sqs = new FakeSqs();
    const p = new MetricProducer({ queueUrl: QUEUE_URL, sqsClient: sqs, flushIntervalMs: 50, handleSignals: false });
    p.sendMetric("Before", 1, { namespace: "Unit/Default" });
    assert.equal(await p.flush(2000), true);
    // WHEN it is sent a metric while it closes (as setDefaultProducer closes the producer it replaces)
    const closing = p.close(2000);
    p.sendMetric("Meanwhile", 2, { namespace: "Unit/Default" });
    await closing;
    // THEN its rounds deliver it (nobody flushes it), as they do for a metric sent after close()
    assert.ok(await eventually(() => wireTotals(sqs.metrics(), "Meanwhile")[1] === 1, 2000), "stranded by close()");
    await p.close(2000);
  });
});
