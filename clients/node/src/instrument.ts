// AWS SDK v3 calls measured without code (metricbatch/producer/instrument.py): instrumentClient(client) adds one
// middleware at the "initialize" step, outside the retry loop, so per API call (all attempts together) it records
//   ApiCallDuration (Milliseconds), ApiCallSuccessful (1 or 0), RetryCount (Count)
// by ServiceId and OperationName; a failed call is also recorded with ErrorType (one of ERROR_TYPES), through a
// roll-up, so the ServiceId, OperationName series still count every call. The pipeline's own SQS SendMessageBatch
// and CloudWatch PutMetricData are never recorded (no feedback loop), and recording never throws into the call.
import { getDefaultProducer } from "./default.js";
import { checkNamespace } from "./validation.js";
import type { MetricProducer } from "./producer.js";
import type { Series } from "./wire.js";

/** Where the SDK metrics go unless `namespace` says otherwise ("AWS/" is CloudWatch's own). */
export const DEFAULT_SDK_NAMESPACE = "MetricBatch/AwsSdk";
export const MIDDLEWARE_NAME = "metricbatchApiCallMetrics";
/** The ErrorType values (the AWS SDK for Java 2.x's, plus ClientError for a 4xx that is not throttling). */
export const ERROR_TYPES = ["Throttling", "ServerError", "ClientError", "ConfiguredTimeout", "IO", "Other"] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];
// Error codes AWS services throttle with (botocore's standard retry list, as in instrument.py), and HTTP 429.
const THROTTLING_ERROR_CODES = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottledException",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "TransactionInProgressException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "LimitExceededException",
  "RequestThrottled",
  "SlowDown",
  "PriorRequestNotComplete",
  "EC2ThrottledException",
]);
const PIPELINE_OPERATIONS = new Set(["SQS SendMessageBatch", "CloudWatch PutMetricData"]);
// (operation, ErrorType) series kept per producer at most; past that the cache starts over.
const MAX_CACHED_KEYS = 10_000;

interface Metadata {
  attempts?: number;
  httpStatusCode?: number;
}
type Handler = (args: unknown) => Promise<{ output?: { $metadata?: Metadata } }>;
type Middleware = (next: Handler, context: { commandName?: string }) => Handler;
/** What instrumentClient needs of an SDK v3 client (any @aws-sdk/client-*). */
export interface InstrumentableClient {
  config: { serviceId?: string };
  middlewareStack: {
    // `never`: any client's own (generic) middleware signature is assignable to it.
    add(middleware: never, options: { step: "initialize"; name: string; priority?: "high"; override?: boolean }): void;
    remove(name: string): boolean;
  };
}

export interface InstrumentOptions {
  /** Where the metrics go; default the module-level producer, looked up at each call. */
  producer?: MetricProducer;
  /** The metrics' namespace; default "MetricBatch/AwsSdk". */
  namespace?: string;
}

export interface Instrumentation {
  readonly namespace: string;
  /** Stop recording this client's calls (idempotent). */
  undo(): void;
}

/** The ErrorType of a failed call (bounded: one of ERROR_TYPES). */
export function classifyError(error: unknown): ErrorType {
  const e = (error ?? {}) as {
    name?: string;
    code?: string;
    Code?: string;
    $metadata?: Metadata;
    $retryable?: { throttling?: boolean };
  };
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? e.name;
  if (status === 429 || e.$retryable?.throttling === true || (code !== undefined && THROTTLING_ERROR_CODES.has(code)))
    return "Throttling";
  if (status !== undefined) {
    if (status >= 500) return "ServerError";
    if (status >= 400) return "ClientError";
    return "Other";
  }
  if (e.name === "TimeoutError" || e.code === "ETIMEDOUT" || e.name === "RequestTimeout") return "ConfiguredTimeout";
  if (typeof e.code === "string" && /^E[A-Z]+$/.test(e.code)) return "IO";
  return "Other";
}

const instrumented = new WeakMap<object, Instrumentation>();

// A client made with `cacheMiddleware: true` keeps each command's resolved stack (`handlers`, from its first send):
// drop them so the next send of every command resolves the stack again, with (or, after undo, without) ours.
function forgetResolvedStacks(client: InstrumentableClient): void {
  const cached = client as { handlers?: unknown };
  if (cached.handlers !== undefined) delete cached.handlers;
}

/**
 * Record every API call of an AWS SDK v3 client as metrics (see the module comment). Instrumenting a client again
 * returns the same instrumentation: nothing is counted twice.
 * @throws InvalidMetricError the namespace breaks a CloudWatch rule.
 */
export function instrumentClient(client: InstrumentableClient, options: InstrumentOptions = {}): Instrumentation {
  const existing = instrumented.get(client);
  if (existing !== undefined) return existing;
  const namespace = checkNamespace(options.namespace ?? DEFAULT_SDK_NAMESPACE);
  const serviceId = client.config.serviceId ?? "Unknown";
  let active = true;
  let reported = false;

  // The validated series of each (producer, operation, ErrorType), made once: a call then costs one Map lookup and
  // one recordSamples (three array pushes each), not three sendMetric calls with fresh option objects.
  const seriesByProducer = new WeakMap<MetricProducer, Map<string, Series[]>>();
  const seriesFor = (producer: MetricProducer, operation: string, errorType: ErrorType | undefined): Series[] => {
    let byKey = seriesByProducer.get(producer);
    if (byKey === undefined) seriesByProducer.set(producer, (byKey = new Map()));
    const key = errorType === undefined ? operation : `${operation}\u0000${errorType}`;
    let series = byKey.get(key);
    if (series === undefined) {
      const dimensions: Record<string, string> = { ServiceId: serviceId, OperationName: operation };
      let rollups: string[][] | undefined;
      if (errorType !== undefined) {
        dimensions.ErrorType = errorType;
        // also without ErrorType (default dimensions kept): those series count every call
        const defaults = Object.keys(producer.defaultDimensions).filter((k) => k !== "ErrorType");
        rollups = [["ServiceId", "OperationName", ...defaults]];
      }
      const common = { namespace, dimensions, rollups };
      series = [
        producer.seriesOf("ApiCallDuration", { ...common, unit: "Milliseconds" }),
        producer.seriesOf("ApiCallSuccessful", common),
        producer.seriesOf("RetryCount", { ...common, unit: "Count" }),
      ];
      if (byKey.size >= MAX_CACHED_KEYS) byKey.clear();
      byKey.set(key, series);
    }
    return series;
  };

  const record = (operation: string, started: number, attempts: number | undefined, errorType?: ErrorType): void => {
    try {
      // To 0.1 ms, as in Python: a busy client's durations merge into few distinct values per minute.
      const elapsedMs = Math.round((performance.now() - started) * 10) / 10;
      const producer = options.producer ?? getDefaultProducer();
      const retries = attempts === undefined || attempts < 1 ? 0 : attempts - 1;
      producer.recordSamples(seriesFor(producer, operation, errorType), [
        elapsedMs,
        errorType === undefined ? 1 : 0,
        retries,
      ]);
    } catch (error) {
      if (!reported) {
        reported = true; // once: a wrong setting would otherwise print on every API call
        process.emitWarning(
          `metricbatch: AWS SDK call not recorded: ${(error as Error).message}`,
          "MetricBatchWarning",
        );
      }
    }
  };

  // Command name -> operation name, or undefined for the pipeline's own operations (never recorded): the stack
  // builds this middleware anew on every call, so that work is done once per command.
  const operations = new Map<string, string | undefined>();
  const middleware: Middleware = (next, context) => {
    const command = context.commandName ?? "Unknown";
    let operation = operations.get(command);
    if (operation === undefined && !operations.has(command)) {
      operation = command.endsWith("Command") ? command.slice(0, -"Command".length) : command;
      if (PIPELINE_OPERATIONS.has(`${serviceId} ${operation}`)) operation = undefined;
      if (operations.size < MAX_CACHED_KEYS) operations.set(command, operation);
    }
    if (operation === undefined) return next;
    const name = operation;
    return async (args) => {
      if (!active) return next(args);
      const started = performance.now();
      let result;
      try {
        result = await next(args);
      } catch (error) {
        record(name, started, (error as { $metadata?: Metadata })?.$metadata?.attempts, classifyError(error));
        throw error;
      }
      record(name, started, result?.output?.$metadata?.attempts);
      return result;
    };
  };
  client.middlewareStack.add(middleware as never, {
    step: "initialize",
    name: MIDDLEWARE_NAME,
    priority: "high",
    override: true,
  });
  forgetResolvedStacks(client);
  const instrumentation: Instrumentation = {
    namespace,
    undo(): void {
      if (!active) return;
      active = false;
      client.middlewareStack.remove(MIDDLEWARE_NAME);
      forgetResolvedStacks(client);
      instrumented.delete(client);
    },
  };
  instrumented.set(client, instrumentation);
  return instrumentation;
}
