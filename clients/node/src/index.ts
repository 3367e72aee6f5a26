// metricbatch for Node: the same producer contract, rules and wire format as the Python package.
export {
  DEFAULT_DIMENSIONS_VARIABLE,
  MetricProducer,
  QUEUE_RETRY_INTERVAL_MS,
  type Mode,
  type ProducerOptions,
  type ProducerStats,
  type SendOptions,
} from "./producer.js";
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
