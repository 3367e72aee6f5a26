// Asserting on metrics in tests: what memory mode captured (metricbatch.testing in Python).
//
//   METRICBATCH_MODE=memory (or new MetricProducer({ mode: "memory" })), then:
//   import { captured, values, clear } from "metricbatch/testing";
//   assert.deepEqual(values("Orders", { dimensions: { Service: "cart" } }), [1]);
//
// Validation in memory mode is exactly production's: a bad metric throws InvalidMetricError at the call.
import { STORE, type CaptureFilter, type CapturedMetric } from "./capture.js";

export type { CaptureFilter, CapturedMetric } from "./capture.js";

/** Every metric memory mode captured in this process, in the order sent (one per call), optionally only those with
 * this name, namespace or exact dimensions. */
export function captured(name?: string, filter: CaptureFilter = {}): CapturedMetric[] {
  return STORE.select(name, filter);
}

/** The values of the captured metrics with this name (and namespace or dimensions), in the order sent. */
export function values(name: string, filter: CaptureFilter = {}): number[] {
  return STORE.select(name, filter).map((m) => m.value);
}

/** Forget everything captured so far. */
export function clear(): void {
  STORE.clear();
}
