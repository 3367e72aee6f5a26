// The Node producer's side of `make bench` (driven by benchmarks/node.py against the embedded AWS).
//   node node_producer.mjs latency CALLS RATE NAMESPACE   -> sendMetric latency with the sender live
//   node node_producer.mjs workload FILE NAMESPACE        -> a recorded workload at its rate, for request counts
// Prints one JSON line. The package is imported from METRICBATCH_NODE_ENTRY (a file URL of dist/esm/index.js).
const { MetricProducer } = await import(process.env.METRICBATCH_NODE_ENTRY);
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const [mode, ...args] = process.argv.slice(2);

function percentile(sorted, q) {
  return (
    Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]) /
    1000
  );
}

/** Pace at `rate` metrics/s: every 100 calls, wait until the schedule catches up (this also lets the sender run). */
async function pace(i, started, rate) {
  if (i % 100 !== 99) return;
  const aheadMs =
    ((i + 1) / rate) * 1000 - Number(process.hrtime.bigint() - started) / 1e6;
  if (aheadMs > 0) await sleep(aheadMs);
  else await new Promise((resolve) => setImmediate(resolve));
}

async function latency(calls, rate, namespace) {
  const producer = new MetricProducer({ namespace, handleSignals: false });
  const dims = Array.from({ length: 100 }, (_, i) => ({
    Table: `t${i}`,
    Service: "cart",
  }));
  const values = Array.from(
    { length: 1000 },
    (_, i) => Math.round(Math.exp(2 + 0.6 * Math.sin(i)) * 10) / 10,
  );
  const samples = new BigInt64Array(calls);
  let expectedSum = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    const value = values[i % 1000];
    const t = process.hrtime.bigint();
    producer.sendMetric("Latency", value, {
      unit: "Milliseconds",
      dimensions: dims[i % 100],
    });
    samples[i] = process.hrtime.bigint() - t;
    expectedSum += value;
    await pace(i, started, rate);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const flushed = await producer.flush(60_000);
  await producer.close();
  const sorted = samples.sort();
  return {
    calls,
    rate_per_second: Math.round(calls / seconds),
    flushed,
    expected_sum: expectedSum,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    "p99.9": percentile(sorted, 0.999),
    max: Number(sorted[sorted.length - 1]) / 1000,
    ...producer.stats(),
  };
}

async function workload(file, namespace) {
  const { metrics, rate } = JSON.parse(readFileSync(file, "utf8"));
  const producer = new MetricProducer({ handleSignals: false });
  const started = process.hrtime.bigint();
  for (let i = 0; i < metrics.length; i++) {
    const [ns, name, unit, dimensions, value] = metrics[i];
    producer.sendMetric(name, value, {
      unit,
      namespace: `${namespace}/${ns}`,
      dimensions,
    });
    if (rate) await pace(i, started, rate);
  }
  const flushed = await producer.flush(60_000);
  await producer.close();
  return {
    flushed,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    ...producer.stats(),
  };
}

const result =
  mode === "latency"
    ? await latency(Number(args[0]), Number(args[1]), args[2])
    : await workload(args[0], args[1]);
console.log(JSON.stringify(result));
