// The module-level helpers' producer, created from the environment on first use.
// One default producer per process even when both builds (ESM and CommonJS) are loaded: it lives on globalThis
// (process-wide.ts), so one buffer, one timer and one set of exit hooks serve both.
import { debuglog } from "node:util";
import { processWide } from "./process-wide.js";
import type { ProducerStats } from "./counters.js";
import type { SendOptions } from "./options.js";
import { MetricProducer } from "./producer.js";

interface DefaultSlot {
  producer: MetricProducer | undefined;
}
const debug = debuglog("metricbatch");
const slot = processWide<DefaultSlot>("defaultProducer", () => ({ producer: undefined }));

/** The shared producer, configured from METRICBATCH_QUEUE_URL and METRICBATCH_NAMESPACE at first use (without a
 * queue URL: mode off, one warning, metrics validated and discarded). */
export function getDefaultProducer(): MetricProducer {
  slot.producer ??= new MetricProducer();
  return slot.producer;
}

/** Replace the shared producer (undefined: create it again from the environment); returns the old one, which is
 * closed in the background (what it buffered is sent within its exitFlushTimeoutMs, its timer stops; await its
 * close() to wait for that). */
export function setDefaultProducer(producer: MetricProducer | undefined): MetricProducer | undefined {
  const old = slot.producer;
  slot.producer = producer;
  // Else its metrics wait for its next round (or the exit hook) and its timer runs on for nobody.
  if (old !== undefined && old !== producer)
    old.close().catch((reason: unknown) => debug("closing the replaced default producer failed: %s", reason));
  return old;
}

/**
 * Buffer one metric for CloudWatch on the default producer; returns in microseconds, never touches the network, and
 * never throws for configuration (see stats().mode and modeReason).
 * @throws InvalidMetricError the metric breaks a CloudWatch rule (the message names it).
 */
export function sendMetric(name: string, value: number, options?: SendOptions): void {
  (slot.producer ?? getDefaultProducer()).sendMetric(name, value, options);
}

/** Resolves true once everything the default producer buffered so far is delivered (see MetricProducer.flush). */
export function flush(timeoutMs?: number): Promise<boolean> {
  const producer = slot.producer;
  return producer === undefined ? Promise.resolve(true) : producer.flush(timeoutMs);
}

/** The default producer's counters, mode, modeReason and configError (creates the default producer if need be). */
export function stats(): ProducerStats {
  return (slot.producer ?? getDefaultProducer()).stats();
}
