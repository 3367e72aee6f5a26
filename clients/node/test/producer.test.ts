// MetricProducer over in-process fakes: aggregation on the wire, SendMessageBatch limits and retries, the fallback,
// the bounded buffer, and that the caller never waits on the network.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { MetricProducer, type ProducerOptions } from "../src/index.js";
import { awsError, FakeCloudWatch, FakeSqs, QUEUE_URL, wireTotals } from "./fakes.js";

const made: MetricProducer[] = [];

function producer(options: ProducerOptions = {}): MetricProducer {
  const p = new MetricProducer({
    queueUrl: QUEUE_URL,
    namespace: "Unit/Node",
    handleSignals: false,
    flushIntervalMs: 50,
    ...options,
  });
  made.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((p) => p.close(2000)));
});

// A fixed minute well inside CloudWatch's window, so every sample of a test shares one bucket.
const MINUTE = Math.floor(Date.now() / 1000 / 60) * 60 - 600;

describe("aggregation on the wire", () => {
  test("samples of a series and minute travel as one values/counts entry with exact sums and counts", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs });
    let expected = 0;
    for (let i = 0; i < 1000; i++) {
      const value = i % 7;
      expected += value;
      p.sendMetric("Latency", value, {
        unit: "Milliseconds",
        dimensions: { Host: `h${i % 5}` },
        timestamp: MINUTE + (i % 60),
      });
    }
    assert.equal(await p.flush(5000), true);
    const metrics = sqs.metrics();
    assert.equal(metrics.length, 5); // one per series: same minute, 7 distinct values each
    assert.deepEqual(wireTotals(metrics), [expected, 1000]);
    for (const m of metrics) {
      assert.equal(m.timestamp, MINUTE); // the bucket start
      assert.equal(m.values!.length, 7);
      assert.equal(
        m.counts!.reduce((a, b) => a + b),
        200,
      );
      assert.equal(m.unit, "Milliseconds");
    }
    assert.equal(p.stats().sent, 1000);
    assert.equal(p.stats().wireMetricsSent, 5);
    assert.equal(p.stats().buffered, 0);
  });

  test("more than 150 distinct values spill into more entries", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs });
    for (let i = 0; i < 400; i++) p.sendMetric("Spread", i + 0.5, { timestamp: MINUTE });
    await p.flush(5000);
    const lengths = sqs.metrics().map((m) => m.values!.length);
    assert.deepEqual(lengths, [150, 150, 100]);
    assert.ok(sqs.metrics().every((m) => m.counts === undefined)); // all counts 1: omitted
    assert.deepEqual(wireTotals(sqs.metrics()), [400 * 200, 400]);
  });

  test("a lone sample is sent as value; high resolution buckets by the second", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs });
    p.sendMetric("Once", 3, { timestamp: MINUTE + 12.75 });
    p.sendMetric("Fast", 1, { storageResolution: 1, timestamp: MINUTE + 5.25 });
    p.sendMetric("Fast", 1, { storageResolution: 1, timestamp: MINUTE + 5.75 });
    p.sendMetric("Fast", 1, { storageResolution: 1, timestamp: MINUTE + 6.1 });
    await p.flush(5000);
    const once = sqs.metrics().filter((m) => m.name === "Once");
    assert.deepEqual(
      once.map((m) => [m.value, m.values, m.timestamp]),
      [[3, undefined, MINUTE]],
    );
    const fast = sqs.metrics().filter((m) => m.name === "Fast");
    assert.deepEqual(
      fast.map((m) => [m.timestamp, m.resolution, m.values ?? [m.value], m.counts]),
      [
        [MINUTE + 5, 1, [1], [2]],
        [MINUTE + 6, 1, [1], undefined],
      ],
    );
  });

  test("dimension order does not split a series", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs });
    p.sendMetric("M", 1, { dimensions: { A: "1", B: "2" }, timestamp: MINUTE });
    p.sendMetric("M", 2, { dimensions: { B: "2", A: "1" }, timestamp: MINUTE });
    await p.flush(5000);
    assert.equal(sqs.metrics().length, 1);
    assert.deepEqual(sqs.metrics()[0]!.dimensions, { A: "1", B: "2" });
  });
});

describe("SendMessageBatch", () => {
  test("at most 10 entries and 1 MiB per call, messages within maxMessageBytes", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs, maxMessageBytes: 4000 });
    for (let i = 0; i < 3000; i++) p.sendMetric("Wide", 1, { dimensions: { Host: `host-${i}` }, timestamp: MINUTE });
    await p.flush(5000);
    assert.ok(sqs.calls > 1);
    assert.ok(Math.max(...sqs.entriesPerCall) <= 10);
    assert.ok(sqs.bodies.every((b) => Buffer.byteLength(b) <= 4000));
    assert.deepEqual(wireTotals(sqs.metrics()), [3000, 3000]);
    assert.equal(p.stats().messagesSent, sqs.bodies.length);
  });

  test("full-size messages: one per call, each under 1 MiB", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs });
    for (let i = 0; i < 30_000; i++) {
      p.sendMetric("Wide", i, { dimensions: { Host: `host-${i % 9000}`, Zone: "eu-west-1a" }, timestamp: MINUTE });
    }
    await p.flush(10_000);
    assert.ok(sqs.bytesPerCall.every((b) => b <= 1024 * 1024));
    assert.ok(sqs.bodies.length >= 2);
    assert.deepEqual(wireTotals(sqs.metrics()), [(30_000 * 29_999) / 2, 30_000]);
  });

  test("entries SQS reports as Failed are retried alone and arrive exactly once", async () => {
    const sqs = new FakeSqs();
    sqs.failEntry = (call, id) => call === 1 && (id === "0" || id === "2");
    const p = producer({ sqsClient: sqs, maxMessageBytes: 2000 });
    for (let i = 0; i < 500; i++) p.sendMetric("Retry", 1, { dimensions: { Host: `h${i}` }, timestamp: MINUTE });
    await p.flush(5000);
    assert.equal(sqs.entriesPerCall[1], 2); // the second call carries just the two failed entries
    assert.deepEqual(wireTotals(sqs.metrics()), [500, 500]);
    const stats = p.stats();
    assert.equal(stats.sent, 500);
    assert.equal(stats.sendErrors, 2);
    assert.equal(stats.fallbackPublished, 0);
  });

  test("a throttled call is retried with backoff", async () => {
    const sqs = new FakeSqs();
    sqs.throwFor = (call) => (call <= 2 ? awsError("ThrottlingException", 400) : undefined);
    const p = producer({ sqsClient: sqs });
    p.sendMetric("Throttled", 2, { timestamp: MINUTE });
    await p.flush(5000);
    assert.equal(sqs.calls, 3);
    assert.deepEqual(wireTotals(sqs.metrics()), [2, 1]);
    assert.equal(p.stats().sqsRequests, 3);
  });
});

describe("fallback and drops", () => {
  test("SQS down: direct PutMetricData, within 1,000 datums and 150 values per datum", async () => {
    const sqs = new FakeSqs();
    sqs.throwFor = () => awsError("ServiceUnavailable", 503);
    const cloudwatch = new FakeCloudWatch();
    const p = producer({ sqsClient: sqs, cloudwatchClient: cloudwatch });
    for (let i = 0; i < 5000; i++) {
      p.sendMetric("Fallback", i % 200, {
        namespace: i % 2 ? "Unit/A" : "Unit/B",
        dimensions: { Host: `h${i % 1500}` },
        timestamp: MINUTE,
      });
    }
    await p.flush(10_000);
    assert.equal(sqs.calls, 4); // sendAttempts, then the fallback
    assert.deepEqual(cloudwatch.totals(), [wireTotalsOf(5000), 5000]);
    assert.ok(cloudwatch.requests.every((r) => r.MetricData!.length <= 1000));
    assert.ok(cloudwatch.requests.every((r) => r.MetricData!.every((d) => (d.Values?.length ?? 1) <= 150)));
    assert.deepEqual(new Set(cloudwatch.requests.map((r) => r.Namespace)), new Set(["Unit/A", "Unit/B"]));
    const stats = p.stats();
    assert.equal(stats.fallbackPublished, 5000);
    assert.equal(stats.dropped, 0);
    assert.equal(stats.putMetricDataCalls, cloudwatch.calls);
  });

  test("SQS and CloudWatch both down: every metric is dropped and counted, flush says so, nothing throws", async () => {
    const sqs = new FakeSqs();
    sqs.throwFor = () => awsError("ServiceUnavailable", 503);
    const cloudwatch = new FakeCloudWatch();
    cloudwatch.throwFor = () => awsError("AccessDenied", 403);
    const p = producer({ sqsClient: sqs, cloudwatchClient: cloudwatch });
    for (let i = 0; i < 100; i++) p.sendMetric("Lost", 1, { timestamp: MINUTE });
    assert.equal(await p.flush(5000), false); // not delivered
    assert.equal(await p.flush(5000), true); // nothing new since
    assert.equal(p.stats().dropped, 100);
    assert.equal(p.stats().buffered, 0);
  });

  test("the buffer is bounded: metrics past maxBuffered are dropped and counted", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs, maxBuffered: 100 });
    for (let i = 0; i < 150; i++) p.sendMetric("Bounded", 1, { timestamp: MINUTE });
    assert.equal(p.stats().dropped, 50);
    assert.equal(p.stats().buffered, 100);
    await p.flush(5000);
    assert.deepEqual(wireTotals(sqs.metrics()), [100, 100]);
  });
});

describe("the caller never waits", () => {
  test("sendMetric returns before any request is made", () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs, maxBuffered: 8 });
    for (let i = 0; i < 100; i++) p.sendMetric("Sync", 1);
    assert.equal(sqs.calls, 0);
  });

  test("a large round yields to the event loop while it merges and encodes", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs, maxBuffered: 200_000 });
    for (let i = 0; i < 100_000; i++)
      p.sendMetric("Big", i % 1000, { dimensions: { Host: `h${i % 3000}` }, timestamp: MINUTE });
    let turns = 0;
    let requestsAtFirstTurn = -1;
    const ticker = (): void => {
      turns += 1;
      if (requestsAtFirstTurn < 0) requestsAtFirstTurn = sqs.calls;
      if (turns < 1000) setImmediate(ticker);
    };
    const flushed = p.flush(10_000);
    setImmediate(ticker);
    await flushed;
    assert.equal(requestsAtFirstTurn, 0); // other callbacks ran before the round had anything to send
    assert.ok(turns >= 5, `the loop turned ${turns} times during the round`);
    assert.deepEqual(wireTotals(sqs.metrics()), [wireTotalsOf(100_000, 1000), 100_000]);
  });
});

describe("the series cache", () => {
  test("only an identical call hits it: a mutated dimensions object or a wrong type is judged again", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs });
    const dims: Record<string, unknown> = { Port: "443" };
    p.sendMetric("Conn", 1, { dimensions: dims as Record<string, string>, timestamp: MINUTE });
    dims.Port = "8443";
    p.sendMetric("Conn", 1, { dimensions: dims as Record<string, string>, timestamp: MINUTE });
    dims.Port = 443;
    assert.throws(() => p.sendMetric("Conn", 1, { dimensions: dims as Record<string, string> }), {
      rule: "dimension_value.type",
    });
    assert.throws(() => p.sendMetric("Conn", 1, { unit: "Count/Second ", timestamp: MINUTE }), {
      rule: "unit.unknown",
    });
    await p.flush(5000);
    assert.deepEqual(
      sqs
        .metrics()
        .map((m) => m.dimensions!.Port)
        .sort(),
      ["443", "8443"],
    );
  });

  test("more series than it holds: every metric still arrives in its own series", async () => {
    const sqs = new FakeSqs();
    const p = producer({ sqsClient: sqs });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 12_000; i++) p.sendMetric("Many", 1, { dimensions: { Id: `i${i}` }, timestamp: MINUTE });
    }
    await p.flush(10_000);
    const ids = new Map<string, number>();
    for (const m of sqs.metrics())
      ids.set(m.dimensions!.Id!, (ids.get(m.dimensions!.Id!) ?? 0) + (m.counts?.[0] ?? m.values?.length ?? 1));
    assert.equal(ids.size, 12_000);
    assert.ok([...ids.values()].every((n) => n === 2));
  });
});

describe("configuration", () => {
  test("the queue URL and namespace come from the environment; explicit options win", () => {
    process.env.METRICBATCH_QUEUE_URL = "https://example/env-queue";
    process.env.METRICBATCH_NAMESPACE = "Env/Namespace";
    try {
      const fromEnv = new MetricProducer({ handleSignals: false });
      assert.equal(fromEnv.queueUrl, "https://example/env-queue");
      assert.equal(fromEnv.namespace, "Env/Namespace");
      const explicit = new MetricProducer({ queueUrl: "https://example/q", namespace: "Mine", handleSignals: false });
      assert.equal(explicit.queueUrl, "https://example/q");
      assert.equal(explicit.namespace, "Mine");
    } finally {
      delete process.env.METRICBATCH_QUEUE_URL;
      delete process.env.METRICBATCH_NAMESPACE;
    }
    const unset = new MetricProducer({ handleSignals: false }); // no queue URL: mode off, never a throw
    assert.equal(unset.queueUrl, undefined);
    assert.equal(unset.mode, "off");
  });
});

/** The sum of i % modulo for i < n (the values the tests send). */
function wireTotalsOf(n: number, modulo = 200): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += i % modulo;
  return sum;
}
