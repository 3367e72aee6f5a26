"""Service limits and list prices, in one place, each with its source.

Limits: CloudWatch API Reference, PutMetricData and MetricDatum (checked 2026-11); SQS Developer Guide quotas;
Lambda Developer Guide, "Using Lambda with Amazon SQS". Prices: us-east-1 list prices.
"""

from __future__ import annotations

from typing import Final

# --- CloudWatch PutMetricData -------------------------------------------------------------------------------------
# "Each request is also limited to no more than 1000 different metrics" (raised from 20 in 2022-08).
MAX_DATUMS_PER_REQUEST: Final = 1000
# "Each PutMetricData request is limited to 1 MB in size for HTTP POST requests"; we bound the serialized JSON
# body before gzip to a decimal megabyte so the request stays under the limit whatever the service means by "MB".
MAX_REQUEST_BYTES: Final = 1_000_000
# MetricDatum.Values: "can include as many as 150 unique values".
MAX_VALUES_PER_DATUM: Final = 150
# MetricDatum.Dimensions: "You can assign up to 30 dimensions to a metric."
MAX_DIMENSIONS: Final = 30
# Dimension.Name 1-255, Dimension.Value 1-1024 (ASCII); MetricName and Namespace 1-255.
MAX_DIMENSION_NAME_LENGTH: Final = 255
MAX_DIMENSION_VALUE_LENGTH: Final = 1024
MAX_METRIC_NAME_LENGTH: Final = 255
MAX_NAMESPACE_LENGTH: Final = 255
# MetricDatum.Value (and Values, Counts, StatisticValues): "CloudWatch rejects values that are either too small or
# too large. Values must be in the range of -2^360 to 2^360. In addition, special values (for example, NaN,
# +Infinity, -Infinity) are not supported."
MAX_ABS_VALUE: Final = 2.0**360
# "Too small" is the other end of that magnitude range: older revisions of the same text read "2e-360 to 2e360
# (Base 2)", and the service answers InvalidParameterValue for a non-zero |v| below 2^-360. metricbatch rounds such
# a value to 0.0 (the same for every statistic) instead of letting one sample cost its whole merged datum.
MIN_ABS_VALUE: Final = 2.0**-360
# "You can specify time stamps that are as much as two weeks before the current date, and as much as 2 hours after".
MAX_TIMESTAMP_AGE_SECONDS: Final = 14 * 24 * 3600
MAX_TIMESTAMP_FUTURE_SECONDS: Final = 2 * 3600
# MetricDatum.StorageResolution: 1 (high resolution) or 60 (standard).
STORAGE_RESOLUTIONS: Final = frozenset({1, 60})
# Namespaces reserved for AWS services; a leading colon is invalid.
RESERVED_NAMESPACE_PREFIX: Final = "AWS/"
# MetricDatum.Unit, the 27 StandardUnit values.
UNITS: Final = frozenset(
    {
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
    }
)
# Account-level PutMetricData quota (Service Quotas, adjustable): transactions per second per region.
PUT_METRIC_DATA_TPS_QUOTA: Final = 500

# --- CloudWatch Embedded Metric Format (User Guide, "Specification: Embedded metric format") ----------------------
# MetricDirective.Metrics: "MUST NOT contain more than 100 MetricDefinition objects".
MAX_EMF_METRICS_PER_DIRECTIVE: Final = 100
# Target members: "Numeric array metric targets MUST NOT have more than 100 members" (EMF has no Counts).
MAX_EMF_VALUES_PER_METRIC: Final = 100
# DimensionSet: at most 30 dimension keys (9 before 2022-08, as for PutMetricData).
MAX_EMF_DIMENSIONS: Final = 30
# "subject to the same limits as standard CloudWatch Logs events": 256 KB in the spec's older text, 1 MB since the
# log event limit was raised; the stricter figure keeps every document one event wherever it lands.
MAX_EMF_DOCUMENT_BYTES: Final = 256 * 1024
# The specification's JSON schema: DimensionReference (a key in a DimensionSet) is a string of 1 to 250 characters,
# 5 fewer than PutMetricData's Dimension.Name allows (aws-embedded-metrics 3.x: MAX_DIMENSION_NAME_LENGTH = 250).
MAX_EMF_DIMENSION_KEY_LENGTH: Final = 250

# --- CloudWatch Logs (API Reference, PutLogEvents; pricing page, "Logs") -------------------------------------------
# PutLogEvents: "the sum of all event messages in UTF-8, plus 26 bytes for each log event" counts toward a batch;
# ingestion is metered the same way, so every EMF document costs its bytes plus 26.
LOG_EVENT_OVERHEAD_BYTES: Final = 26

# --- SQS ----------------------------------------------------------------------------------------------------------
# Maximum message size 1 MiB (raised from 256 KiB in 2025-08); SendMessageBatch: 10 entries, 1 MiB in total.
MAX_SQS_MESSAGE_BYTES: Final = 1024 * 1024
MAX_SQS_BATCH_ENTRIES: Final = 10
MAX_SQS_BATCH_BYTES: Final = 1024 * 1024
# Message attributes count toward the size; leave room for ours and the JSON envelope.
SQS_MESSAGE_HEADROOM_BYTES: Final = 4 * 1024
# Billing: "each 64 KB chunk of a payload is billed as 1 request".
SQS_BILLING_CHUNK_BYTES: Final = 64 * 1024
# ReceiveMessage returns at most 10 messages per call; long polling waits at most 20 s.
MAX_SQS_RECEIVE_MESSAGES: Final = 10
MAX_SQS_WAIT_SECONDS: Final = 20

# --- Lambda SQS event source --------------------------------------------------------------------------------------
# Synchronous invocation payload limit; the event source mapping stops adding records before it.
MAX_LAMBDA_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
MAX_BATCHING_WINDOW_SECONDS: Final = 300
MAX_SQS_BATCH_SIZE: Final = 10_000
# CreateEventSourceMapping: "When you set BatchSize to a value greater than 10, you must set
# MaximumBatchingWindowInSeconds to at least 1."
MAX_BATCH_SIZE_WITHOUT_WINDOW: Final = 10
MIN_WINDOW_SECONDS_FOR_LARGE_BATCH: Final = 1
# Lambda function configuration: memory 128 MB to 10,240 MB; timeout at most 900 s (15 minutes).
MIN_LAMBDA_MEMORY_MB: Final = 128
MAX_LAMBDA_MEMORY_MB: Final = 10_240
MAX_LAMBDA_TIMEOUT_SECONDS: Final = 900
# Lambda execution environment lifecycle: "The Init phase is limited to 10 seconds"; past it, Lambda retries the
# init within the first invocation, under the function's timeout.
LAMBDA_INIT_TIMEOUT_SECONDS: Final = 10
# AWS guidance: queue visibility timeout at least six times the function timeout.
VISIBILITY_TIMEOUT_FACTOR: Final = 6


def event_source_problems(batch_size: int, window_seconds: float) -> list[str]:
    """What an SQS event source mapping refuses in this batch size and batching window (empty: nothing).

    The one statement of these rules: the deployment settings raise on them, ``plan`` warns and the command line
    refuses its arguments with the same words.
    """
    problems = []
    if not 1 <= batch_size <= MAX_SQS_BATCH_SIZE:
        problems.append(f"batch size {batch_size} is outside the event source's 1..{MAX_SQS_BATCH_SIZE}")
    if not 0 <= window_seconds <= MAX_BATCHING_WINDOW_SECONDS:
        problems.append(f"batching window {window_seconds:g} s is outside 0..{MAX_BATCHING_WINDOW_SECONDS} s")
    if batch_size > MAX_BATCH_SIZE_WITHOUT_WINDOW and window_seconds < MIN_WINDOW_SECONDS_FOR_LARGE_BATCH:
        problems.append(
            f"a batch size above {MAX_BATCH_SIZE_WITHOUT_WINDOW} ({batch_size}) needs a batching window of at least "
            f"{MIN_WINDOW_SECONDS_FOR_LARGE_BATCH} s, got {window_seconds:g} s"
        )
    return problems


# --- Prices, us-east-1 list ---------------------------------------------------------------------------------------
PRICE_PUT_METRIC_DATA_PER_REQUEST: Final = 0.01 / 1000  # $0.01 per 1,000 requests
PRICE_SQS_PER_REQUEST: Final = 0.40 / 1_000_000  # standard queue, $0.40 per million (64 KiB chunks)
PRICE_LAMBDA_PER_REQUEST: Final = 0.20 / 1_000_000  # $0.20 per million requests
PRICE_LAMBDA_PER_GB_SECOND_ARM64: Final = 0.0000133334
PRICE_LAMBDA_PER_GB_SECOND_X86: Final = 0.0000166667
PRICE_CUSTOM_METRIC_MONTH: Final = 0.30  # first 10k metrics; batching does not change it
PRICE_LOGS_INGESTION_PER_GB: Final = 0.50  # CloudWatch Logs standard class, data ingestion (EMF is billed as logs)
# A GB of ingested log data, taken as 2^30 bytes: of the two readings the one that makes EMF cheaper (10^9 adds 7%),
# so no comparison here flatters metricbatch.
LOGS_BYTES_PER_GB: Final = 1024**3
