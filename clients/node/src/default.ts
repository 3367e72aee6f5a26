// The module-level helpers' producer, created from the environment on first use.
import { MetricProducer, type ProducerStats, type SendOptions } from "./producer.js";

let defaultProducer: MetricProducer | undefined;

/** The shared producer, configured from METRICBATCH_QUEUE_URL and METRICBATCH_NAMESPACE at first use (without a
 * queue URL: mode off, one warning, metrics validated and discarded). */
export function getDefaultProducer(): MetricProducer {
  defaultProducer ??= new MetricProducer();
  return defaultProducer;
}

/** Replace the shared producer (undefined: create it again from the environment); returns the old one. */
export function setDefaultProducer(producer: MetricProducer | undefined): MetricProducer | undefined {
  const old = defaultProducer;
  defaultProducer = producer;
  return old;
}

/**
 * Buffer one metric for CloudWatch on the default producer; returns in microseconds, never touches the network, and
 * never throws for configuration (see stats().mode and modeReason).
 * @throws InvalidMetricError the metric breaks a CloudWatch rule (the message names it).
 */
export function sendMetric(name: string, value: number, options?: SendOptions): void {
  (defaultProducer ?? getDefaultProducer()).sendMetric(name, value, options);
}

/** Resolves true once everything the default producer buffered so far is delivered (see MetricProducer.flush). */
export function flush(timeoutMs?: number): Promise<boolean> {
  return defaultProducer === undefined ? Promise.resolve(true) : defaultProducer.flush(timeoutMs);
}

/** The default producer's counters, mode, modeReason and configError (creates the default producer if need be). */
export function stats(): ProducerStats {
  return (defaultProducer ?? getDefaultProducer()).stats();
}
