// The shared validation vectors (tests/vectors/validation.json) through the Node producer; the Python producer runs
// the same file (tests/unit/test_validation_vectors.py), so the two cannot drift apart.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { InvalidMetricError, MetricBatchError, MetricProducer, type SendOptions } from "../src/index.js";
import { FakeSqs, QUEUE_URL } from "./fakes.js";

interface Vector {
  id: string;
  call: Record<string, unknown>;
  rule?: string;
  accepted?: Record<string, unknown>;
}

const VECTORS = JSON.parse(
  readFileSync(new URL("../../../../tests/vectors/validation.json", import.meta.url), "utf8"),
) as { cases: Vector[] };

function isoAt(epochSeconds: number, zone: string): string {
  const offsetMinutes = zone === "+05:30" ? 330 : 0;
  const local = new Date(epochSeconds * 1000 + offsetMinutes * 60_000).toISOString().slice(0, 23); // no "Z"
  return zone === "" ? local : `${local}${zone}`;
}

/** A vector's value as JavaScript takes it (see the file's "encoding" section). */
function decode(value: unknown, now: number): unknown {
  if (Array.isArray(value)) return value.map((v) => decode(v, now));
  if (typeof value !== "object" || value === null) return value;
  const v = value as Record<string, unknown>;
  if ("$number" in v) return Number(v.$number);
  if ("$int" in v) return BigInt(v.$int as string);
  if ("$repeat" in v) return (v.$repeat as string).repeat(v.times as number);
  if ("$count" in v) return Object.fromEntries(Array.from({ length: v.$count as number }, (_, i) => [`D${i}`, "v"]));
  if ("$pairs" in v)
    return Object.fromEntries((v.$pairs as unknown[][]).map(([k, x]) => [decode(k, now), decode(x, now)]));
  if ("$now_plus" in v) return now + (v.$now_plus as number);
  if ("$date_now_plus" in v) return new Date((now + (v.$date_now_plus as number)) * 1000);
  if ("$iso_now_plus" in v) return isoAt(now + (v.$iso_now_plus as number), v.zone as string);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x, now)]));
}

function callOf(producer: MetricProducer, vector: Vector, now: number): void {
  const raw = vector.call;
  const options: Record<string, unknown> = {};
  const names = {
    namespace: "namespace",
    unit: "unit",
    dimensions: "dimensions",
    timestamp: "timestamp",
    resolution: "storageResolution",
  } as const;
  for (const [key, option] of Object.entries(names)) if (key in raw) options[option] = decode(raw[key], now);
  producer.sendMetric(decode(raw.name, now) as string, decode(raw.value, now) as number, options as SendOptions);
}

function producerOver(sqs: FakeSqs): MetricProducer {
  delete process.env.METRICBATCH_NAMESPACE;
  return new MetricProducer({ queueUrl: QUEUE_URL, sqsClient: sqs, handleSignals: false, flushIntervalMs: 50 });
}

describe("shared validation vectors", () => {
  test("cover every rule", () => {
    const rules = new Set(VECTORS.cases.flatMap((c) => (c.rule ? [c.rule] : [])));
    for (const kind of ["name", "namespace", "dimension_name", "dimension_value"]) {
      for (const rule of ["empty", "length", "ascii"]) assert.ok(rules.has(`${kind}.${rule}`), `${kind}.${rule}`);
    }
    for (const rule of [
      "namespace.reserved",
      "namespace.colon",
      "dimensions.count",
      "value.finite",
      "value.range",
      "value.type",
      "unit.unknown",
      "resolution.value",
      "timestamp.too_old",
      "timestamp.too_new",
      "timestamp.type",
      "timestamp.format",
    ]) {
      assert.ok(rules.has(rule), rule);
    }
  });

  for (const vector of VECTORS.cases.filter((c) => c.rule !== undefined)) {
    test(`rejects: ${vector.id}`, async () => {
      const sqs = new FakeSqs();
      const producer = producerOver(sqs);
      let thrown: unknown;
      try {
        callOf(producer, vector, Date.now() / 1000);
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof InvalidMetricError, `expected InvalidMetricError, got ${String(thrown)}`);
      assert.ok(thrown instanceof MetricBatchError);
      assert.equal(thrown.rule, vector.rule, thrown.message);
      assert.ok(thrown.message.includes(`[rule: ${vector.rule}]`));
      await producer.close();
      assert.deepEqual(sqs.bodies, []);
      assert.equal(producer.stats().invalid, 1);
    });
  }

  for (const vector of VECTORS.cases.filter((c) => c.accepted !== undefined)) {
    test(`accepts: ${vector.id}`, async () => {
      const sqs = new FakeSqs();
      const producer = producerOver(sqs);
      const now = Date.now() / 1000;
      callOf(producer, vector, now);
      assert.equal(await producer.flush(5000), true);
      await producer.close();
      const metrics = sqs.metrics();
      assert.equal(metrics.length, 1);
      const [metric] = metrics;
      const expected = decode(vector.accepted, now) as Record<string, unknown>;
      assert.equal(metric!.namespace, expected.namespace);
      assert.equal(metric!.name, expected.name);
      assert.equal(metric!.unit ?? "None", expected.unit);
      assert.equal(metric!.resolution ?? 60, expected.resolution);
      assert.deepEqual(metric!.dimensions ?? {}, expected.dimensions);
      assert.deepEqual(metric!.values ?? [metric!.value], [expected.value]);
      assert.deepEqual(metric!.counts ?? [1], [1]);
      if (expected.timestamp !== undefined) {
        const resolution = expected.resolution as number;
        const ts = expected.timestamp as number;
        assert.ok(metric!.timestamp >= Math.floor(ts / resolution) * resolution - 1 && metric!.timestamp <= ts + 1);
      }
    });
  }
});
