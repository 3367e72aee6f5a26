// Error classification and jittered backoff (metricbatch/aws/retry.py): one policy for SQS and CloudWatch.

// Codes CloudWatch and SQS use for throttling or a temporary fault; retrying later can succeed.
const THROTTLING_CODES = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "TooManyRequestsException",
  "SlowDown",
  "RequestThrottledException",
]);
const TRANSIENT_CODES = new Set([
  "InternalServiceFault",
  "InternalFailure",
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
]);
// Connection-level failures from Node's sockets.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
]);

interface AwsErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

export function errorCode(error: unknown): string {
  const e = error as AwsErrorShape | undefined;
  return String(e?.Code ?? e?.code ?? e?.name ?? "Error");
}

/** Throttling, 5xx, 429 and connection-level failures; an aborted request is not retried. */
export function isRetryable(error: unknown): boolean {
  const e = error as AwsErrorShape | undefined;
  if (e?.name === "AbortError") return false;
  const status = e?.$metadata?.httpStatusCode ?? 0;
  if (status >= 500 || status === 429) return true;
  const codes = [e?.name, e?.code, e?.Code].filter((c): c is string => typeof c === "string");
  if (codes.some((c) => THROTTLING_CODES.has(c) || TRANSIENT_CODES.has(c) || NETWORK_CODES.has(c))) return true;
  // An error without an HTTP response never reached the service: a connection problem.
  return status === 0;
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Full-jitter exponential backoff in ms: uniform(0, min(cap, base * 2^attempt)). */
export function backoffDelayMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  return random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/** A timer that keeps the process alive while it runs (an exiting process still finishes its retries). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
