// Helpers around the producer: `timer` for service calls, `flushAfter` for producers inside Lambda.
import { flush, getDefaultProducer } from "./default.js";
import { announce } from "./log.js";
import type { MetricProducer } from "./producer.js";
import { checkDimensions, checkName, checkNamespace, checkResolution, type Dimensions } from "./validation.js";

export interface TimerOptions {
  namespace?: string;
  dimensions?: Dimensions;
  storageResolution?: number;
  producer?: MetricProducer;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

/** Validate everything a timer's three metrics share, before the timed code runs (throws InvalidMetricError). */
function validate(name: string, producer: MetricProducer, options: TimerOptions): void {
  checkNamespace(options.namespace ?? producer.namespace);
  for (const metric of typeof name === "string" ? [name, `${name}.Success`, `${name}.Error`] : [name])
    checkName(metric);
  checkDimensions(options.dimensions);
  checkResolution(options.storageResolution ?? 60);
}

function record(name: string, started: bigint, failed: boolean, producer: MetricProducer, options: TimerOptions): void {
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const common = {
    namespace: options.namespace,
    dimensions: options.dimensions,
    storageResolution: options.storageResolution,
  };
  try {
    producer.sendMetric(name, elapsedMs, { ...common, unit: "Milliseconds" });
    producer.sendMetric(`${name}.Success`, failed ? 0 : 1, { ...common, unit: "Count" });
    producer.sendMetric(`${name}.Error`, failed ? 1 : 0, { ...common, unit: "Count" });
  } catch (error) {
    // Never replace the timed code's own result or error; an invalid metric is counted by sendMetric (stats().invalid).
    announce(`timer '${name}' could not record its metrics: ${(error as Error)?.message ?? String(error)}`, "error");
  }
}

/**
 * Run `fn` and record its duration as `<name>` (Milliseconds) plus `<name>.Success` / `<name>.Error` (Count, 1 or 0),
 * as the Python `timer` does. Works for sync and async functions: for a promise, the time until it settles. A throw
 * or rejection is recorded as an error and passed on unchanged.
 *
 * Name, namespace, dimensions and resolution are validated first, before `fn` runs (InvalidMetricError). Afterwards
 * the timer never changes what `fn` returned or threw: a metric that cannot be recorded then is counted and logged.
 */
export function timer<T>(name: string, fn: () => T, options: TimerOptions = {}): T {
  const producer = options.producer ?? getDefaultProducer();
  validate(name, producer, options);
  const started = process.hrtime.bigint();
  let result: T;
  try {
    result = fn();
  } catch (error) {
    record(name, started, true, producer, options);
    throw error;
  }
  if (!isPromiseLike(result)) {
    record(name, started, false, producer, options);
    return result;
  }
  return Promise.resolve(result).then(
    (value) => {
      record(name, started, false, producer, options);
      return value;
    },
    (error: unknown) => {
      record(name, started, true, producer, options);
      throw error;
    },
  ) as T;
}

export interface FlushAfterOptions {
  timeoutMs?: number;
  producer?: MetricProducer;
}

/**
 * Wrap a Lambda handler so every invocation flushes before it returns (Lambda freezes the sandbox afterwards,
 * timers included): `export const handler = flushAfter(async (event) => { ... })`.
 */
export function flushAfter<A extends unknown[], R>(
  handler: (...args: A) => R | Promise<R>,
  options: FlushAfterOptions = {},
): (...args: A) => Promise<Awaited<R>> {
  return async (...args: A): Promise<Awaited<R>> => {
    try {
      return await handler(...args);
    } finally {
      const timeoutMs = options.timeoutMs ?? 5000;
      await (options.producer ? options.producer.flush(timeoutMs) : flush(timeoutMs));
    }
  };
}
