// Service limits, each with its source; the same numbers as metricbatch/limits.py (the Python producer's).
// CloudWatch API Reference (PutMetricData, MetricDatum), SQS Developer Guide quotas.

// --- CloudWatch PutMetricData ----------------------------------------------------------------------------------------
/** "Each request is also limited to no more than 1000 different metrics" (raised from 20 in 2022-08). */
export const MAX_DATUMS_PER_REQUEST = 1000;
/** "Each PutMetricData request is limited to 1 MB"; we bound the JSON body before gzip to a decimal megabyte. */
export const MAX_REQUEST_BYTES = 1_000_000;
/** MetricDatum.Values: "can include as many as 150 unique values". */
export const MAX_VALUES_PER_DATUM = 150;
/** MetricDatum.Dimensions: "You can assign up to 30 dimensions to a metric." */
export const MAX_DIMENSIONS = 30;
/** Dimension.Name 1-255, Dimension.Value 1-1024 (ASCII); MetricName and Namespace 1-255. */
export const MAX_DIMENSION_NAME_LENGTH = 255;
export const MAX_DIMENSION_VALUE_LENGTH = 1024;
export const MAX_METRIC_NAME_LENGTH = 255;
export const MAX_NAMESPACE_LENGTH = 255;
/** "Values must be in the range of -2^360 to 2^360. ... NaN, +Infinity, -Infinity are not supported." */
export const MAX_ABS_VALUE = 2 ** 360;
/** CloudWatch rejects a non-zero |v| below 2^-360 as too small; metricbatch rounds such a value to 0. */
export const MIN_ABS_VALUE = 2 ** -360;
/** "time stamps that are as much as two weeks before the current date, and as much as 2 hours after". */
export const MAX_TIMESTAMP_AGE_SECONDS = 14 * 24 * 3600;
export const MAX_TIMESTAMP_FUTURE_SECONDS = 2 * 3600;
/** MetricDatum.StorageResolution: 1 (high resolution) or 60 (standard). */
export const STORAGE_RESOLUTIONS: ReadonlySet<number> = new Set([1, 60]);
/** Namespaces reserved for AWS services; a leading colon is invalid too. */
export const RESERVED_NAMESPACE_PREFIX = "AWS/";
/** MetricDatum.Unit: the 27 StandardUnit values. */
export const UNITS: ReadonlySet<string> = new Set([
  "Seconds",
  "Microseconds",
  "Milliseconds",
  "Bytes",
  "Kilobytes",
  "Megabytes",
  "Gigabytes",
  "Terabytes",
  "Bits",
  "Kilobits",
  "Megabits",
  "Gigabits",
  "Terabits",
  "Percent",
  "Count",
  "Bytes/Second",
  "Kilobytes/Second",
  "Megabytes/Second",
  "Gigabytes/Second",
  "Terabytes/Second",
  "Bits/Second",
  "Kilobits/Second",
  "Megabits/Second",
  "Gigabits/Second",
  "Terabits/Second",
  "Count/Second",
  "None",
]);

// --- SQS -------------------------------------------------------------------------------------------------------------
/** Maximum message size 1 MiB (raised from 256 KiB in 2025-08); SendMessageBatch: 10 entries, 1 MiB in total. */
export const MAX_SQS_MESSAGE_BYTES = 1024 * 1024;
export const MAX_SQS_BATCH_ENTRIES = 10;
export const MAX_SQS_BATCH_BYTES = 1024 * 1024;
/** Message attributes and the request's own framing count toward the size; leave room. */
export const SQS_MESSAGE_HEADROOM_BYTES = 4 * 1024;
