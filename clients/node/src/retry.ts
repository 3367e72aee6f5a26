// Error classification, jittered backoff and bounded waits (metricbatch/aws/retry.py): one policy for SQS and CloudWatch.

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

// Answers no retry can fix: a setting is wrong (the queue, its region, the role's permissions, the credentials). The
// same codes as CONFIGURATION_CODES in metricbatch/aws/retry.py (keep the two in step: a Python unit test checks
// that every Python code is listed here). The v3 SQS client speaks JSON: the new code is the error's `name`
// (QueueDoesNotExist, KmsAccessDenied) and the old one its `Code` (AWS.SimpleQueueService.NonExistentQueue); both
// are listed. The SDK's own errors with no code from AWS (no credentials, no region) are named as errorCode names them.
const QUEUE_URL_SETTING = "METRICBATCH_QUEUE_URL (or queueUrl)";
const REGION_SETTINGS = "AWS_REGION / AWS_DEFAULT_REGION";
const QUEUE_MISSING_CODES = ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"];
const ACCESS_DENIED_CODES = ["AccessDenied", "AccessDeniedException"];
// prettier-ignore
const KMS_CODES = [
  "KmsAccessDenied", "KmsDisabled", "KmsInvalidKeyUsage", "KmsInvalidState", "KmsNotFound", "KmsOptInRequired",
  "KMS.AccessDeniedException", "KMS.DisabledException", "KMS.InvalidKeyUsageException",
  "KMS.InvalidStateException", "KMS.KMSInvalidStateException", "KMS.NotFoundException", "KMS.OptInRequired",
];
// prettier-ignore
const CREDENTIALS_CODES = [
  "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidSignatureException",
  "IncompleteSignature", "MissingAuthenticationToken", "MissingAuthenticationTokenException", "ExpiredToken",
  "ExpiredTokenException", "InvalidAccessKeyId", "AuthFailure", "NoCredentialsError", "PartialCredentialsError",
  "ProfileNotFound",
  "CredentialsProviderError", // the JS SDK: no credentials from any provider
];
// prettier-ignore
const REGION_CODES = [
  "InvalidAddress", "AWS.SimpleQueueService.InvalidAddress", "OptInRequired", "InvalidRegionError",
  "UnknownEndpointError",
];
// The JS SDK's "Region is missing" is a plain Error: it is given botocore's name for the same problem.
const NO_REGION_CODE = "NoRegionError";

const CONFIGURATION_CODES: ReadonlyMap<string, string> = new Map([
  ...QUEUE_MISSING_CODES.map(
    (code) =>
      [
        code,
        `the queue does not exist in this region: check ${QUEUE_URL_SETTING} and the region (${REGION_SETTINGS})`,
      ] as const,
  ),
  ...ACCESS_DENIED_CODES.map(
    (code) => [code, `access denied: the role needs sqs:SendMessage on the queue in ${QUEUE_URL_SETTING}`] as const,
  ),
  ...KMS_CODES.map(
    (code) => [code, "the queue's KMS key refused: the role needs kms:GenerateDataKey and kms:Decrypt on it"] as const,
  ),
  ...CREDENTIALS_CODES.map(
    (code) =>
      [code, "the AWS credentials are missing, invalid or expired (the access keys, AWS_PROFILE, the role)"] as const,
  ),
  ...REGION_CODES.map(
    (code) =>
      [
        code,
        `the region or endpoint does not match the queue: check ${REGION_SETTINGS} and AWS_ENDPOINT_URL against ${QUEUE_URL_SETTING}`,
      ] as const,
  ),
  [NO_REGION_CODE, `no AWS region: set ${REGION_SETTINGS} (or region in the profile's ~/.aws/config)`],
]);

export interface ConfigurationProblem {
  code: string;
  problem: string; // what to check, naming the setting
}

/** The sentence for a queue SQS refused for a wrong setting: the queue, the region it was looked for in (when
 * known), the code and what to check (the ERROR line, stats().configError, the exit sender's line). */
export function queueRefusal(queueUrl: string, region: string, { code, problem }: ConfigurationProblem): string {
  const where = region ? ` (region ${region})` : "";
  return `SQS refused the queue ${queueUrl}${where}: ${code}: ${problem}`;
}

/** The error's code when it means a wrong setting (see CONFIGURATION_CODES) and what to check; else undefined. */
export function configurationProblem(error: unknown): ConfigurationProblem | undefined {
  const e = error as AwsErrorShape | undefined;
  const candidates = [e?.Code, e?.code, e?.name];
  if (e?.message === "Region is missing") candidates.push(NO_REGION_CODE);
  for (const code of candidates) {
    const problem = typeof code === "string" ? CONFIGURATION_CODES.get(code) : undefined;
    if (problem !== undefined) return { code: code as string, problem };
  }
  return undefined;
}

interface AwsErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export function errorCode(error: unknown): string {
  const e = error as AwsErrorShape | undefined;
  return String(e?.Code ?? e?.code ?? e?.name ?? "Error");
}

/** Throttling, 5xx, 429 and connection-level failures; an aborted request or a wrong setting is not retried. */
export function isRetryable(error: unknown): boolean {
  const e = error as AwsErrorShape | undefined;
  if (e?.name === "AbortError" || configurationProblem(error) !== undefined) return false;
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

/** Resolves true when `promise` settles within `timeoutMs` (always, without a timeout), false otherwise. */
export function within(promise: Promise<unknown>, timeoutMs?: number): Promise<boolean> {
  if (timeoutMs === undefined || !Number.isFinite(timeoutMs)) return promise.then(() => true);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs))));
  return Promise.race([promise.then(() => true), late]).finally(() => clearTimeout(timer));
}
