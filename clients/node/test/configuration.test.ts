// Configuration problems never throw in the caller and never quietly cancel the savings (issues 12 and 15, as the
// Python producer does them): no queue URL or no region -> mode off, one line, counted discards; an SQS answer no retry
// can fix -> one ERROR, metrics held within the bound and offered again, never published directly.
import assert from "node:assert/strict";
import { afterEach, describe, mock, test } from "node:test";
import { InvalidMetricError, MetricProducer, type ProducerOptions } from "../src/index.js";
import { flush, sendMetric, setDefaultProducer, stats } from "../src/index.js";
import { awsError, FakeCloudWatch, FakeSqs, QUEUE_URL, wireTotals, errorLines } from "./fakes.js";

const made: MetricProducer[] = [];

function producer(options: ProducerOptions = {}): MetricProducer {
  const p = new MetricProducer({ queueUrl: QUEUE_URL, namespace: "Unit/Config", handleSignals: false, ...options });
  made.push(p);
  return p;
}

/** The MetricBatchWarning messages emitted from here on. */
function warnings(): string[] {
  const messages: string[] = [];
  process.on("warning", (warning) => {
    if (warning.name === "MetricBatchWarning") messages.push(warning.message);
  });
  return messages;
}

/** Run `body` with the given environment variables set (undefined: unset), restoring them afterwards. */
async function withEnv(values: Record<string, string | undefined>, body: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>): void => {
    for (const [k, value] of Object.entries(v)) {
      if (value === undefined) delete process.env[k];
      else process.env[k] = value;
    }
  };
  apply(values);
  try {
    await body();
  } finally {
    apply(saved);
  }
}

// process.emitWarning delivers on a later tick.
const ticks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterEach(async () => {
  await Promise.all(made.splice(0).map((p) => p.close(2000)));
  setDefaultProducer(undefined);
  mock.restoreAll();
});

describe("no queue URL", () => {
  test("the default producer does not throw: it warns once, validates, discards and counts, and says why", async () => {
    const seen = warnings();
    await withEnv({ METRICBATCH_QUEUE_URL: undefined }, async () => {
      setDefaultProducer(undefined);
      for (let i = 0; i < 3; i++) sendMetric("Orders", 1, { namespace: "Shop", unit: "Count" });
      assert.throws(() => sendMetric("Orders", NaN, { namespace: "Shop" }), InvalidMetricError);
      const explicit = producer({ queueUrl: undefined });
      explicit.sendMetric("Orders", 2);
      await ticks();
      const s = stats();
      assert.equal(s.mode, "off");
      assert.match(s.modeReason, /METRICBATCH_QUEUE_URL/);
      assert.match(s.modeReason, /queueUrl/);
      assert.match(s.modeReason, /discarded/);
      assert.equal(s.configError, "");
      assert.deepEqual([s.discarded, s.invalid, s.accepted, s.sent, s.dropped, s.buffered], [3, 1, 3, 0, 0, 0]);
      assert.equal(explicit.stats().discarded, 1);
      assert.equal(explicit.mode, "off");
      // flush reports them as not delivered, once: nothing new was discarded since
      assert.equal(await flush(1000), false);
      assert.equal(await flush(1000), true);
      assert.equal(await explicit.flush(1000), false);
    });
    assert.equal(seen.length, 1, `one warning per process, got ${JSON.stringify(seen)}`);
    assert.match(seen[0]!, /METRICBATCH_QUEUE_URL/);
    assert.match(seen[0]!, /discarded/);
  });

  test("no AWS region anywhere: mode off with one ERROR naming AWS_REGION, sendMetric never throws", async () => {
    const lines = errorLines();
    const regionless = {
      AWS_REGION: undefined,
      AWS_DEFAULT_REGION: undefined,
      AWS_PROFILE: undefined,
      AWS_CONFIG_FILE: "/nonexistent/metricbatch-test/config",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/metricbatch-test/credentials",
    };
    await withEnv(regionless, async () => {
      const cloudwatch = new FakeCloudWatch();
      const p = producer({ cloudwatchClient: cloudwatch });
      for (let i = 0; i < 5; i++) p.sendMetric("NoRegion", i);
      assert.equal(await p.flush(5000), false);
      p.sendMetric("NoRegion", 9);
      assert.equal(await p.flush(5000), false);
      const s = p.stats();
      assert.equal(s.mode, "off");
      assert.match(s.modeReason, /AWS_REGION/);
      assert.match(s.modeReason, /AWS_DEFAULT_REGION/);
      assert.deepEqual([s.discarded, s.dropped, s.fallbackPublished, s.buffered], [6, 0, 0, 0]);
      // each metric accepted once: the five buffered before the region was found missing are not counted again
      assert.equal(s.accepted, 6);
      assert.equal(cloudwatch.calls, 0);
    });
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /AWS_REGION/);
  });
});

describe("a host without a namespace (host configuration, like the queue URL)", () => {
  for (const mode of ["sqs", "off", "memory"] as const) {
    test(`mode ${mode}: no METRICBATCH_NAMESPACE and no namespace option never throws; the default namespace, said once`, async () => {
      const lines = errorLines();
      const seen = warnings();
      await withEnv({ METRICBATCH_NAMESPACE: undefined }, async () => {
        const sqs = new FakeSqs();
        const p = producer({ namespace: undefined, mode, sqsClient: sqs });
        for (let i = 0; i < 3; i++) p.sendMetric("Orders", 1, { unit: "Count" });
        assert.equal(await p.flush(5000), true);
        const s = p.stats();
        assert.deepEqual([s.namespace, s.invalid, s.accepted], ["metricbatch/default", 0, 3]);
        assert.match(s.namespaceReason, /METRICBATCH_NAMESPACE/);
        if (mode === "sqs") {
          assert.deepEqual([...new Set(sqs.metrics().map((m) => m.namespace))], ["metricbatch/default"]);
        }
      });
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(lines.length, 0, lines.join("\n"));
      assert.ok(seen.filter((m) => m.includes("metricbatch/default")).length <= 1, seen.join("\n"));
    });
  }

  test("an invalid METRICBATCH_NAMESPACE falls back to the default with one ERROR naming the rule", async () => {
    const lines = errorLines();
    await withEnv({ METRICBATCH_NAMESPACE: "AWS/Mine" }, async () => {
      const sqs = new FakeSqs();
      const p = producer({ namespace: undefined, sqsClient: sqs });
      p.sendMetric("Orders", 1);
      p.sendMetric("Orders", 2);
      assert.equal(await p.flush(5000), true);
      assert.deepEqual([...new Set(sqs.metrics().map((m) => m.namespace))], ["metricbatch/default"]);
      assert.match(p.stats().namespaceReason, /namespace\.reserved/);
    });
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /METRICBATCH_NAMESPACE='AWS\/Mine'/);
  });

  test("an empty or invalid namespace passed in code still throws", () => {
    for (const namespace of ["", "AWS/Mine"]) {
      assert.throws(() => producer({ namespace }).sendMetric("Orders", 1), InvalidMetricError);
      assert.throws(() => producer().sendMetric("Orders", 1, { namespace }), InvalidMetricError);
    }
  });
});

// What the SQS client throws for a setting no retry can fix: (error, words the ERROR line must contain).
const REFUSALS: Record<string, [() => Error, string]> = {
  NonExistentQueue: [
    () =>
      Object.assign(awsError("QueueDoesNotExist", 400), {
        Code: "AWS.SimpleQueueService.NonExistentQueue",
      }),
    "METRICBATCH_QUEUE_URL",
  ],
  AccessDenied: [() => awsError("AccessDenied", 403), "sqs:SendMessage"],
  KmsAccessDenied: [() => awsError("KmsAccessDenied", 400), "kms:GenerateDataKey"],
  KmsDisabled: [() => awsError("KmsDisabled", 400), "KMS key"],
  InvalidClientTokenId: [() => awsError("InvalidClientTokenId", 403), "credentials"],
  CredentialsProviderError: [
    () =>
      Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError" }),
    "credentials",
  ],
};

describe("an SQS answer no retry can fix", () => {
  for (const [code, [error, words]] of Object.entries(REFUSALS)) {
    test(`${code}: one ERROR, no PutMetricData fallback, metrics held, stats() says why`, async () => {
      const lines = errorLines();
      const sqs = new FakeSqs();
      sqs.throwFor = () => error();
      const cloudwatch = new FakeCloudWatch();
      const p = producer({ sqsClient: sqs, cloudwatchClient: cloudwatch });
      for (let i = 0; i < 20; i++) p.sendMetric("Latency", i % 4);
      assert.equal(await p.flush(5000), false);
      p.sendMetric("Latency", 9);
      assert.equal(await p.flush(5000), false);
      // SQS was asked once (no retries, the next offer is 30 s away) and CloudWatch never
      assert.equal(sqs.calls, 1);
      assert.equal(cloudwatch.calls, 0);
      const s = p.stats();
      assert.deepEqual([s.sent, s.fallbackPublished, s.dropped, s.buffered], [0, 0, 0, 21]);
      assert.equal(s.mode, "sqs");
      assert.ok(s.configError.includes(QUEUE_URL) && s.configError.includes(words), s.configError);
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.ok(lines[0]!.includes(words) && lines[0]!.includes(QUEUE_URL), lines[0]);
      assert.match(lines[0]!, /held in memory/);
      assert.match(lines[0]!, /not published directly/);
      assert.match(lines[0]!, /tried again every 30 s/);
      // closing while held: counted as never sent
      await p.close(2000);
      const closed = p.stats();
      assert.deepEqual([closed.dropped, closed.droppedMisconfigured, closed.buffered], [21, 21, 0]);
    });
  }

  test("an outage still falls back: 503 from SQS -> PutMetricData, no ERROR line", async () => {
    const lines = errorLines();
    const sqs = new FakeSqs();
    sqs.throwFor = () => awsError("ServiceUnavailable", 503);
    const cloudwatch = new FakeCloudWatch();
    const p = producer({ sqsClient: sqs, cloudwatchClient: cloudwatch });
    for (let i = 0; i < 10; i++) p.sendMetric("Outage", i);
    assert.equal(await p.flush(10_000), true);
    assert.deepEqual(cloudwatch.totals(), [45, 10]);
    assert.equal(p.stats().configError, "");
    assert.deepEqual(lines, []);
  });

  test("the held metrics are sent once the queue accepts them, with one recovery line", async () => {
    const lines = errorLines();
    const seen = warnings();
    const sqs = new FakeSqs();
    let refusing = true;
    sqs.throwFor = () => (refusing ? awsError("AccessDenied", 403) : undefined);
    const cloudwatch = new FakeCloudWatch();
    const p = producer({ sqsClient: sqs, cloudwatchClient: cloudwatch, queueRetryIntervalMs: 0 });
    for (let i = 0; i < 100; i++) p.sendMetric("Held", i % 10);
    assert.equal(await p.flush(5000), false);
    for (let i = 0; i < 50; i++) p.sendMetric("Held", 100 + (i % 5));
    assert.equal(await p.flush(5000), false); // offered again (the retry is due at once here), refused again
    assert.equal(sqs.calls, 2);
    refusing = false;
    assert.equal(await p.flush(5000), true);
    await ticks();
    assert.deepEqual(wireTotals(sqs.metrics()), [4.5 * 100 + 102 * 50, 150]);
    assert.equal(cloudwatch.calls, 0);
    const s = p.stats();
    assert.deepEqual([s.sent, s.buffered, s.configError, s.queueRetries, s.dropped], [150, 0, "", 2, 0]);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.deepEqual(seen, ["metricbatch: SQS no longer refuses the queue; delivery resumed"]);
  });

  test("while held the bound holds: new values beyond maxBuffered are dropped and counted, repeats still fit", async () => {
    errorLines();
    const sqs = new FakeSqs();
    sqs.throwFor = () => awsError("KmsAccessDenied", 400);
    const p = producer({ sqsClient: sqs, maxBuffered: 10 });
    const minute = Math.floor(Date.now() / 60_000) * 60 - 120;
    for (let i = 0; i < 10; i++) p.sendMetric("Bound", i, { timestamp: minute });
    assert.equal(await p.flush(5000), false);
    for (let i = 0; i < 10; i++) p.sendMetric("Bound", i, { timestamp: minute }); // held already: only counts rise
    assert.equal(await p.flush(5000), false);
    for (let i = 10; i < 15; i++) p.sendMetric("Bound", i, { timestamp: minute }); // new values: no room
    assert.equal(await p.flush(5000), false);
    const s = p.stats();
    assert.deepEqual([s.buffered, s.dropped, s.sent], [20, 5, 0]);
  });
});
