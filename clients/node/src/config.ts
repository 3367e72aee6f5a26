// A producer's configuration, resolved once in its constructor (mode and namespace: modes.ts): explicit options win
// over METRICBATCH_* variables, then the defaults (as metricbatch/producer/config.py). A wrong option throws
// ConfigurationError; a wrong variable never throws (it is ignored, or said once).
import { resolveDefaultDimensions } from "./default-dimensions.js";
import { ConfigurationError } from "./errors.js";
import { MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES } from "./limits.js";
import { QUEUE_URL_VARIABLE } from "./modes.js";
import type { ProducerOptions } from "./options.js";
import type { SenderSettings } from "./sender-types.js";
import { QUEUE_URLS_VARIABLE, ROUND_SECONDS_VARIABLE, urlList } from "./shards.js";
import type { DimensionPairs } from "./validation.js";

// While SQS refuses the queue for a reason no retry fixes, the held metrics are offered to it again this often: one
// SendMessageBatch per producer every 30 s, and recovery within 30 s of a fix (QUEUE_RETRY_INTERVAL_SECONDS in
// metricbatch/producer/config.py).
export const QUEUE_RETRY_INTERVAL_MS = 30_000;

/** Mirrors metricbatch/producer/config.py DEFAULT_FLUSH_INTERVAL_SECONDS: same rounds, same SQS requests. */
export const DEFAULT_FLUSH_INTERVAL_MS = 5000;

export interface ProducerConfig {
  readonly queueUrl: string | undefined;
  /** The queues series are routed to (one unless the deployment is sharded). */
  readonly queueUrls: readonly string[];
  readonly flushIntervalMs: number;
  readonly exitFlushTimeoutMs: number;
  readonly handleSignals: boolean;
  readonly defaultDimensions: DimensionPairs;
  readonly maxBuffered: number;
  readonly sender: SenderSettings;
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new ConfigurationError(`${name} must be a positive number, got ${value}`);
  return value;
}

/** METRICBATCH_ROUND_SECONDS in ms; a wrong value is ignored (configuration never throws in the caller). */
function roundFromEnv(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** The options resolved against the environment and the defaults. */
export function resolveConfig(options: ProducerOptions): ProducerConfig {
  const queueUrlList =
    options.queueUrls ?? (options.queueUrl === undefined ? urlList(process.env[QUEUE_URLS_VARIABLE]) : []);
  const queueUrl = queueUrlList[0] ?? options.queueUrl ?? (process.env[QUEUE_URL_VARIABLE] || undefined);
  const queueUrls = queueUrlList.length > 0 ? [...queueUrlList] : queueUrl === undefined ? [] : [queueUrl];
  const flushIntervalMs = positive(
    "flushIntervalMs",
    options.flushIntervalMs ?? roundFromEnv(process.env[ROUND_SECONDS_VARIABLE]) ?? DEFAULT_FLUSH_INTERVAL_MS,
  );
  const exitFlushTimeoutMs = positive("exitFlushTimeoutMs", options.exitFlushTimeoutMs ?? 5000);
  const defaultDimensions = resolveDefaultDimensions(options.defaultDimensions);
  const maxBuffered = Math.floor(positive("maxBuffered", options.maxBuffered ?? 100_000));
  return Object.freeze({
    queueUrl,
    queueUrls,
    flushIntervalMs,
    exitFlushTimeoutMs,
    handleSignals: options.handleSignals ?? true,
    defaultDimensions,
    maxBuffered,
    sender: {
      queueUrl: queueUrl ?? "",
      queueUrls,
      maxMessageBytes: options.maxMessageBytes ?? MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES,
      sendAttempts: Math.max(1, options.sendAttempts ?? 4),
      fallback: options.fallback ?? true,
      queueRetryIntervalMs: Math.max(0, options.queueRetryIntervalMs ?? QUEUE_RETRY_INTERVAL_MS),
      maxHeldValues: maxBuffered,
    },
  });
}
