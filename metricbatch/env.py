"""Every environment variable metricbatch reads, named once, with the defaults that go with them.

Configuration is read in functions (``ProducerConfig.from_env``, ``BatcherConfig.from_env``), never at import.
"""

from __future__ import annotations

from typing import Final

# -- producer side ---------------------------------------------------------------------------------------------------
QUEUE_URL: Final = "METRICBATCH_QUEUE_URL"  # the pipeline's queue; for the batcher, where unsent datums are re-queued
NAMESPACE: Final = "METRICBATCH_NAMESPACE"  # default namespace of send_metric
# The namespace of a metric sent without namespace= when METRICBATCH_NAMESPACE is unset or invalid: host
# configuration missing never raises in the caller (said once in the log), as in aws-embedded-metrics.
DEFAULT_NAMESPACE: Final = "metricbatch/default"
MODE: Final = "METRICBATCH_MODE"  # where send_metric delivers: sqs | emf | memory | off (default: sqs with a queue URL)
DEFAULT_DIMENSIONS: Final = "METRICBATCH_DEFAULT_DIMENSIONS"  # "Service=cart,Stage=prod": on every metric of a producer
# A sharded deployment's queues, comma-separated in shard order (the stack's QueueUrls output); beats QUEUE_URL.
QUEUE_URLS: Final = "METRICBATCH_QUEUE_URLS"
# Seconds between the sender's rounds (default 5); a multiple of 60 makes rounds minute-aligned (the stack's
# ProducerRoundSeconds output when shards are on).
ROUND_SECONDS: Final = "METRICBATCH_ROUND_SECONDS"

# -- AWS's own, as metricbatch reads them (aws/session.py) -----------------------------------------------------------
AWS_REGION: Final = "AWS_REGION"  # read by the AWS CLI v2, the other SDKs and Lambda; not by botocore (1.44)
AWS_DEFAULT_REGION: Final = "AWS_DEFAULT_REGION"  # read by botocore

# -- batcher side ----------------------------------------------------------------------------------------------------
DLQ_URL: Final = "METRICBATCH_DLQ_URL"  # where the batcher sets aside invalid or unpublishable data
ALLOWED_NAMESPACES: Final = "METRICBATCH_ALLOWED_NAMESPACES"  # comma-separated namespace prefixes

# -- Powertools, as the batcher uses them ----------------------------------------------------------------------------
POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_LOG_LEVEL: Final = "POWERTOOLS_LOG_LEVEL"
SELF_METRICS_NAMESPACE: Final = "MetricBatch"  # the batcher's EMF self-metrics, when the variable is unset
SERVICE_NAME: Final = "metricbatch"  # the self-metrics' ``service`` dimension, when the variable is unset

# -- local tooling ---------------------------------------------------------------------------------------------------
# The cloud assembly whose batcher `metricbatch demo` and `metricbatch local` run (default: ./cdk.out/dev if present).
LOCAL_ASSEMBLY: Final = "METRICBATCH_LOCAL_ASSEMBLY"
