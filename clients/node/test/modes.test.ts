// Producer modes (issue 12, as the Python producer has them): METRICBATCH_MODE or the mode option chooses sqs, memory
// or off; memory keeps validated metrics for tests to assert on (metricbatch/testing); a wrong value never throws in
// the caller. Each test goes through the public API: the module-level helpers and MetricProducer.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import { ConfigurationError, InvalidMetricError, MetricProducer, type ProducerOptions } from "../src/index.js";
import { flush, sendMetric, setDefaultProducer, stats } from "../src/index.js";
import { captured, clear, values } from "../src/testing.js";
import { FakeCloudWatch, FakeSqs, QUEUE_URL, errorLines } from "./fakes.js";

const made: MetricProducer[] = [];
const VARIABLES = ["METRICBATCH_MODE", "METRICBATCH_QUEUE_URL", "METRICBATCH_NAMESPACE"] as const;
const saved = Object.fromEntries(VARIABLES.map((k) => [k, process.env[k]]));

function setEnv(values: Partial<Record<(typeof VARIABLES)[number], string | undefined>>): void {
  for (const [k, value] of Object.entries(values)) {
    if (value === undefined) delete process.env[k];
    else process.env[k] = value;
  }
  setDefaultProducer(undefined); // the module-level helpers read the environment again
}

function producer(options: ProducerOptions = {}): MetricProducer {
  const p = new MetricProducer({ namespace: "Unit/Modes", handleSignals: false, ...options });
  made.push(p);
  return p;
}

beforeEach(() => {
  setEnv({ METRICBATCH_MODE: undefined, METRICBATCH_QUEUE_URL: QUEUE_URL, METRICBATCH_NAMESPACE: "Unit/Modes" });
  clear();
});

afterEach(async () => {
  await Promise.all(made.splice(0).map((p) => p.close(2000)));
  setEnv(saved);
  clear();
  mock.restoreAll();
});

const MINUTE = Math.floor(Date.now() / 1000 / 60) * 60 - 600;

describe("memory mode", () => {
  test("METRICBATCH_MODE=memory: the module helpers capture every call in order, exactly as sent", async () => {
    setEnv({ METRICBATCH_MODE: "memory" }); // a queue URL is set too: the mode decides
    sendMetric("Orders", 1, { unit: "Count", namespace: "Shop", dimensions: { Service: "cart" }, timestamp: MINUTE });
    sendMetric("Orders", 2, { unit: "Count", namespace: "Shop", dimensions: { Service: "cart" }, timestamp: MINUTE });
    sendMetric("Latency", 12.5, { unit: "Milliseconds", storageResolution: 1, timestamp: MINUTE + 7 });
    sendMetric("Orders", 3, { unit: "Count", namespace: "Shop", dimensions: { Service: "web" }, timestamp: MINUTE });
    assert.deepEqual(captured(), [
      {
        namespace: "Shop",
        name: "Orders",
        value: 1,
        unit: "Count",
        dimensions: { Service: "cart" },
        timestamp: MINUTE,
        storageResolution: 60,
      },
      {
        namespace: "Shop",
        name: "Orders",
        value: 2,
        unit: "Count",
        dimensions: { Service: "cart" },
        timestamp: MINUTE,
        storageResolution: 60,
      },
      {
        namespace: "Unit/Modes",
        name: "Latency",
        value: 12.5,
        unit: "Milliseconds",
        dimensions: {},
        timestamp: MINUTE + 7,
        storageResolution: 1,
      },
      {
        namespace: "Shop",
        name: "Orders",
        value: 3,
        unit: "Count",
        dimensions: { Service: "web" },
        timestamp: MINUTE,
        storageResolution: 60,
      },
    ]);
    assert.deepEqual(values("Orders"), [1, 2, 3]);
    assert.deepEqual(values("Orders", { dimensions: { Service: "cart" } }), [1, 2]);
    assert.deepEqual(values("Latency", { namespace: "Shop" }), []);
    assert.deepEqual(
      captured(undefined, { namespace: "Unit/Modes" }).map((m) => m.name),
      ["Latency"],
    );
    const s = stats();
    assert.deepEqual([s.mode, s.modeReason, s.captured, s.accepted, s.buffered, s.sent], ["memory", "", 4, 4, 0, 0]);
    assert.equal(await flush(1000), true);
  });

  test("validation is production's: a bad metric throws InvalidMetricError and nothing is captured", () => {
    setEnv({ METRICBATCH_MODE: "memory" });
    assert.throws(() => sendMetric("Orders", NaN), { name: "InvalidMetricError", rule: "value.finite" });
    assert.throws(() => sendMetric("Orders", 1, { unit: "Parsecs" }), InvalidMetricError);
    assert.throws(() => sendMetric("Orders", 1, { timestamp: "yesterday" }), InvalidMetricError);
    const dims = Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`D${i}`, "v"]));
    assert.throws(() => sendMetric("Orders", 1, { dimensions: dims }), InvalidMetricError);
    assert.deepEqual(captured(), []);
    assert.deepEqual([stats().mode, stats().invalid, stats().captured], ["memory", 4, 0]);
    sendMetric("Orders", 1, { dimensions: { D0: "v" } }); // the same call made valid is captured
    assert.deepEqual(values("Orders"), [1]);
  });

  test("MetricProducer({ mode: 'memory' }) never calls AWS and starts no timer; explicit beats the variable", async () => {
    setEnv({ METRICBATCH_MODE: "off" });
    const sqs = new FakeSqs();
    const cloudwatch = new FakeCloudWatch();
    const p = producer({ mode: "memory", queueUrl: QUEUE_URL, sqsClient: sqs, cloudwatchClient: cloudwatch });
    for (let i = 0; i < 100; i++) p.sendMetric("Loop", i % 10, { dimensions: { Shard: `${i % 2}` } });
    assert.equal(await p.flush(1000), true);
    assert.equal(p.mode, "memory");
    assert.equal(values("Loop").length, 100);
    assert.equal(
      values("Loop", { dimensions: { Shard: "1" } }).reduce((a, b) => a + b),
      250,
    );
    assert.deepEqual([sqs.calls, cloudwatch.calls, p.pending, p.stats().captured], [0, 0, 0, 100]);
    // clear() forgets what was captured, the producer keeps capturing
    clear();
    p.sendMetric("Loop", 7);
    assert.deepEqual(values("Loop"), [7]);
  });

  test("captured records are copies: changing one does not change the store", () => {
    const p = producer({ mode: "memory" });
    const dimensions = { Service: "cart" };
    p.sendMetric("Orders", 1, { dimensions });
    dimensions.Service = "changed";
    const [first] = captured("Orders");
    assert.throws(() => ((first as { value: number }).value = 5), TypeError);
    assert.deepEqual(captured("Orders")[0]!.dimensions, { Service: "cart" });
  });
});

describe("off mode", () => {
  test("METRICBATCH_MODE=off with a queue URL: validated, discarded, counted; flush is true (off was chosen)", async () => {
    setEnv({ METRICBATCH_MODE: "off" });
    for (let i = 0; i < 5; i++) sendMetric("Orders", i);
    assert.throws(() => sendMetric("Orders", Infinity), InvalidMetricError);
    const s = stats();
    assert.deepEqual([s.mode, s.modeReason, s.discarded, s.invalid, s.accepted, s.captured], ["off", "", 5, 1, 5, 0]);
    assert.deepEqual(captured(), []);
    assert.equal(await flush(1000), true);
  });

  test("MetricProducer({ mode: 'off' }) beats METRICBATCH_MODE=memory and never calls AWS", async () => {
    setEnv({ METRICBATCH_MODE: "memory" });
    const sqs = new FakeSqs();
    const p = producer({ mode: "off", queueUrl: QUEUE_URL, sqsClient: sqs });
    p.sendMetric("Orders", 1);
    assert.equal(await p.flush(1000), true);
    assert.deepEqual([p.mode, p.stats().discarded, sqs.calls, captured().length], ["off", 1, 0, 0]);
  });
});

describe("switching modes", () => {
  test("each reset of the default producer reads METRICBATCH_MODE again; nothing leaks between them", async () => {
    setEnv({ METRICBATCH_MODE: "memory" });
    sendMetric("First", 1);
    assert.deepEqual(values("First"), [1]);
    clear();
    setEnv({ METRICBATCH_MODE: "off" });
    sendMetric("Second", 2);
    assert.deepEqual([stats().mode, stats().discarded, stats().captured, captured().length], ["off", 1, 0, 0]);
    setEnv({ METRICBATCH_MODE: "MEMORY " }); // as Python: case and surrounding blanks do not matter
    sendMetric("Third", 3);
    assert.deepEqual([stats().mode, stats().discarded, values("Second"), values("Third")], ["memory", 0, [], [3]]);
    setEnv({ METRICBATCH_MODE: undefined }); // the default again: sqs with the queue URL
    assert.equal(stats().mode, "sqs");
  });
});

describe("a wrong mode never throws in the caller", () => {
  test("an unknown METRICBATCH_MODE: mode off, one ERROR naming the variable and the allowed values", async () => {
    const lines = errorLines();
    setEnv({ METRICBATCH_MODE: "memroy" });
    for (let i = 0; i < 3; i++) sendMetric("Orders", i);
    const other = producer({ queueUrl: QUEUE_URL });
    other.sendMetric("Orders", 1);
    const s = stats();
    assert.deepEqual([s.mode, s.discarded, other.mode], ["off", 3, "off"]);
    assert.match(s.modeReason, /METRICBATCH_MODE='memroy' is not one of sqs, memory, off/);
    assert.equal(await flush(1000), false); // chosen for you: not delivered
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /^metricbatch ERROR: METRICBATCH_MODE='memroy' is not one of sqs, memory, off/);
    assert.deepEqual(captured(), []);
  });

  test("METRICBATCH_MODE=sqs without a queue URL: mode off, one ERROR naming METRICBATCH_QUEUE_URL", () => {
    const lines = errorLines();
    setEnv({ METRICBATCH_MODE: "sqs", METRICBATCH_QUEUE_URL: undefined });
    sendMetric("Orders", 1);
    assert.deepEqual([stats().mode, stats().discarded], ["off", 1]);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /METRICBATCH_MODE='sqs' but no queue URL.*METRICBATCH_QUEUE_URL/);
  });

  test("METRICBATCH_MODE=emf (set for a host's Python services): to the queue if there is one, with one ERROR", async () => {
    const lines = errorLines();
    const sqs = new FakeSqs();
    setEnv({ METRICBATCH_MODE: "emf" });
    const p = producer({ queueUrl: QUEUE_URL, sqsClient: sqs, cloudwatchClient: new FakeCloudWatch() });
    p.sendMetric("Orders", 2);
    assert.equal(p.mode, "sqs");
    assert.equal(await p.flush(2000), true);
    assert.equal(sqs.calls, 1);
    setEnv({ METRICBATCH_MODE: "emf", METRICBATCH_QUEUE_URL: undefined });
    sendMetric("Orders", 1);
    assert.deepEqual([stats().mode, stats().discarded], ["off", 1]);
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[0]!, /METRICBATCH_MODE='emf': the Node producer does not write EMF; it sends to .* instead/);
    assert.match(lines[1]!, /METRICBATCH_MODE='emf': the Node producer does not write EMF and has no queue URL/);
  });

  test("an explicit mode option that is not a mode is a ConfigurationError at construction, as in Python", () => {
    assert.throws(() => producer({ mode: "emf2" as "off" }), ConfigurationError);
    assert.throws(() => producer({ mode: "emf2" as "off" }), /mode must be one of sqs, memory, off; got "emf2"/);
  });
});
