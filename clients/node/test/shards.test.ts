// Issue 27: a sharded deployment. The routing vectors (tests/vectors/shards.json) are shared with the Python
// producer (tests/unit/producer/test_shards_and_rounds.py), so both send a series to the same queue.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { afterEach, describe, mock, test } from "node:test";
import type { SendMessageBatchCommand, SendMessageBatchCommandOutput } from "@aws-sdk/client-sqs";
import { MetricProducer } from "../src/index.js";
import { fnv1a32, seriesIdentity, shardOf } from "../src/shards.js";
import { FakeSqs } from "./fakes.js";

interface Case {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
  unit: string;
  resolution: 1 | 60;
  identity: string;
  fnv1a_32: number;
  shard: Record<string, number>;
}

const VECTORS = JSON.parse(readFileSync(new URL("../../../../tests/vectors/shards.json", import.meta.url), "utf8")) as {
  fnv1a_32_reference: { input: string; hash: number }[];
  cases: Case[];
};

class RecordingSqs extends FakeSqs {
  readonly byQueue = new Map<string, string[]>();

  override async send(command: SendMessageBatchCommand): Promise<SendMessageBatchCommandOutput> {
    const before = this.bodies.length;
    const output = await super.send(command);
    const url = command.input.QueueUrl!;
    this.byQueue.set(url, [...(this.byQueue.get(url) ?? []), ...this.bodies.slice(before)]);
    return output;
  }
}

const made: MetricProducer[] = [];
afterEach(async () => {
  for (const p of made.splice(0)) await p.close();
});

describe("shard routing", () => {
  test("FNV-1a matches the reference values", () => {
    for (const { input, hash } of VECTORS.fnv1a_32_reference) assert.equal(fnv1a32(input), hash);
  });

  for (const c of VECTORS.cases) {
    test(`vector ${c.identity}`, () => {
      const identity = seriesIdentity({
        namespace: c.namespace,
        name: c.name,
        unit: c.unit,
        resolution: c.resolution,
        dimensions: Object.entries(c.dimensions),
      });
      assert.equal(identity, c.identity);
      assert.equal(fnv1a32(identity), c.fnv1a_32);
      for (const [n, shard] of Object.entries(c.shard)) assert.equal(shardOf(identity, Number(n)), shard);
    });
  }

  test("METRICBATCH_QUEUE_URLS routes each series to its shard's queue, nothing lost", async () => {
    const urls = ["https://example/q0", "https://example/q1", "https://example/q2"];
    const saved = process.env.METRICBATCH_QUEUE_URLS;
    process.env.METRICBATCH_QUEUE_URLS = urls.join(",");
    const sqs = new RecordingSqs();
    try {
      const p = new MetricProducer({ namespace: "Unit/Shards", sqsClient: sqs, handleSignals: false });
      made.push(p);
      assert.deepEqual(p.queueUrls, urls);
      for (let host = 0; host < 30; host++)
        for (const v of [1, 2]) p.sendMetric("Latency", v, { dimensions: { Host: `h${host}` } });
      assert.equal(await p.flush(5000), true);
    } finally {
      if (saved === undefined) delete process.env.METRICBATCH_QUEUE_URLS;
      else process.env.METRICBATCH_QUEUE_URLS = saved;
    }
    let samples = 0;
    for (const [index, url] of urls.entries()) {
      const bodies = sqs.byQueue.get(url) ?? [];
      assert.ok(bodies.length > 0, `no message for shard ${index}`);
      for (const body of bodies) {
        for (const m of (JSON.parse(body) as { metrics: Record<string, unknown>[] }).metrics) {
          const dims = Object.entries(m.dimensions as Record<string, string>);
          const identity = seriesIdentity({
            namespace: "Unit/Shards",
            name: "Latency",
            unit: "None",
            resolution: 60,
            dimensions: dims,
          });
          assert.equal(shardOf(identity, urls.length), index);
          samples +=
            "value" in m
              ? 1
              : ((m.counts as number[] | undefined) ?? (m.values as number[]).map(() => 1)).reduce((a, b) => a + b, 0);
        }
      }
    }
    assert.equal(samples, 60);
  });

  test("METRICBATCH_ROUND_SECONDS sets the round; an explicit option wins", () => {
    const saved = process.env.METRICBATCH_ROUND_SECONDS;
    process.env.METRICBATCH_ROUND_SECONDS = "60";
    try {
      const fromEnv = new MetricProducer({ queueUrl: "https://example/q", handleSignals: false });
      const explicit = new MetricProducer({
        queueUrl: "https://example/q",
        flushIntervalMs: 1000,
        handleSignals: false,
      });
      made.push(fromEnv, explicit);
      assert.equal(fromEnv.flushIntervalMs, 60_000);
      assert.equal(explicit.flushIntervalMs, 1000);
      assert.deepEqual(explicit.queueUrls, ["https://example/q"]);
    } finally {
      if (saved === undefined) delete process.env.METRICBATCH_ROUND_SECONDS;
      else process.env.METRICBATCH_ROUND_SECONDS = saved;
    }
  });

  test("a 60 s round is minute-aligned: the finished minute once, the current one kept", async () => {
    const boundary = (Math.floor(Date.now() / 60_000) + 1) * 60_000;
    mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: boundary - 300 });
    const sqs = new RecordingSqs();
    try {
      const p = new MetricProducer({
        queueUrl: "https://example/q",
        namespace: "Unit/Round",
        flushIntervalMs: 60_000,
        sqsClient: sqs,
        handleSignals: false,
      });
      made.push(p);
      for (let v = 0; v < 10; v++) p.sendMetric("Requests", v);
      mock.timers.tick(400); // past the boundary
      for (let v = 0; v < 5; v++) p.sendMetric("Requests", v);
      mock.timers.tick(200); // the aligned round: boundary + 250 ms
      for (let i = 0; i < 20 && sqs.bodies.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
      const sent = sqs.bodies.flatMap(
        (b) => (JSON.parse(b) as { metrics: { timestamp: number; values: number[] }[] }).metrics,
      );
      assert.deepEqual(
        sent.map((m) => [m.timestamp, m.values.length]),
        [[boundary / 1000 - 60, 10]],
      );
      assert.equal(p.stats().buffered, 5);
    } finally {
      mock.timers.reset();
    }
  });
});
