// The module-level helpers' producer, created from the environment on first use.
import { MetricProducer, type ProducerStats, type SendOptions } from "./producer.js";

let defaultProducer: MetricProducer | undefined;

/** The shared producer, configured from METRICBATCH_QUEUE_URL and METRICBATCH_NAMESPACE at first use. */
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
 * Buffer one metric for CloudWatch on the default producer; returns in microseconds, never touches the network.
 * @throws InvalidMetricError the metric breaks a CloudWatch rule (the message names it).
 * @throws ConfigurationError no METRICBATCH_QUEUE_URL for the default producer.
 */
export function sendMetric(name: string, value: number, options?: SendOptions): void {
  (defaultProducer ?? getDefaultProducer()).sendMetric(name, value, options);
}

/** Resolves true once everything the default producer buffered so far is accepted by SQS (or published). */
export function flush(timeoutMs?: number): Promise<boolean> {
  return defaultProducer === undefined ? Promise.resolve(true) : defaultProducer.flush(timeoutMs);
}

/** The default producer's counters. */
export function stats(): ProducerStats {
  if (defaultProducer !== undefined) return defaultProducer.stats();
  return {
    buffered: 0,
    accepted: 0,
    sent: 0,
    dropped: 0,
    fallbackPublished: 0,
    sendErrors: 0,
    invalid: 0,
    sqsRequests: 0,
    messagesSent: 0,
    wireMetricsSent: 0,
    putMetricDataCalls: 0,
  };
}
