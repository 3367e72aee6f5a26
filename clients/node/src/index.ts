// metricbatch for Node: the same producer contract, rules and wire format as the Python package.
export {
  MetricProducer,
  QUEUE_RETRY_INTERVAL_MS,
  type Mode,
  type ProducerOptions,
  type ProducerStats,
  type SendOptions,
} from "./producer.js";
export { flush, getDefaultProducer, sendMetric, setDefaultProducer, stats } from "./default.js";
export { flushAfter, timer, type FlushAfterOptions, type TimerOptions } from "./timing.js";
export { ConfigurationError, InvalidMetricError, MetricBatchError } from "./errors.js";
export type { Dimensions, TimestampInput } from "./validation.js";
export { WIRE_VERSION } from "./wire.js";
