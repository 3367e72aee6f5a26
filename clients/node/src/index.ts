// metricbatch for Node: the same producer contract, rules and wire format as the Python package.
export { MetricProducer } from "./producer.js";
export { DEFAULT_DIMENSIONS_VARIABLE } from "./default-dimensions.js";
export { QUEUE_RETRY_INTERVAL_MS } from "./config.js";
export type { Mode } from "./modes.js";
export type { ProducerOptions, SendOptions } from "./options.js";
export type { ProducerStats } from "./counters.js";
export { flush, getDefaultProducer, sendMetric, setDefaultProducer, stats } from "./default.js";
export { flushAfter, timer, type FlushAfterOptions, type TimerOptions } from "./timing.js";
export {
  DEFAULT_SDK_NAMESPACE,
  ERROR_TYPES,
  instrumentClient,
  type ErrorType,
  type InstrumentableClient,
  type Instrumentation,
  type InstrumentOptions,
} from "./instrument.js";
export { ConfigurationError, InvalidMetricError, MetricBatchError } from "./errors.js";
export type { Dimensions, TimestampInput } from "./validation.js";
export { WIRE_VERSION } from "./wire.js";
