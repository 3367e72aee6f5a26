"""What one invocation did, and the self-metrics (EMF, no API calls) it becomes: the names live here, once.

The dashboard (``infra/``), ``metricbatch savings`` and the tests import the names from this module.

"Metrics" here are samples: a wire metric with ``values``/``counts`` counts the sum of its counts, so the figures do
not change when producers aggregate before sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Namespace: POWERTOOLS_METRICS_NAMESPACE, default env.SELF_METRICS_NAMESPACE. One dimension:
SERVICE_DIMENSION: Final = "service"  # Powertools' dimension; its value is POWERTOOLS_SERVICE_NAME

METRICS_RECEIVED: Final = "MetricsReceived"  # samples in new messages (re-queued ones are not counted again)
METRICS_REJECTED: Final = "MetricsRejected"  # samples set aside as invalid, or refused by CloudWatch
METRICS_PUBLISHED: Final = "MetricsPublished"  # samples in successful PutMetricData calls
PUT_METRIC_DATA_CALLS: Final = "PutMetricDataCalls"  # successful PutMetricData calls
API_CALLS_SAVED: Final = "ApiCallsSaved"  # MetricsPublished - PutMetricDataCalls: calls one-per-metric would make
PUT_METRIC_DATA_RETRIES: Final = "PutMetricDataRetries"
MESSAGES_REQUEUED: Final = "MessagesRequeued"
MESSAGES_SET_ASIDE: Final = "MessagesSetAside"
DUPLICATE_MESSAGES_SKIPPED: Final = "DuplicateMessagesSkipped"

SELF_METRIC_NAMES: Final = (
    METRICS_RECEIVED,
    METRICS_REJECTED,
    METRICS_PUBLISHED,
    PUT_METRIC_DATA_CALLS,
    API_CALLS_SAVED,
    PUT_METRIC_DATA_RETRIES,
    MESSAGES_REQUEUED,
    MESSAGES_SET_ASIDE,
    DUPLICATE_MESSAGES_SKIPPED,
)


def api_calls_saved(metrics_published: float, put_metric_data_calls: float) -> float:
    """PutMetricData calls saved against one call per metric: samples published less the calls that published
    them. The one definition behind the self-metric, the dashboard, ``metricbatch savings``, the demo and the bench.

    Only what was published counts: data received but re-queued, set aside or redelivered saves nothing until (and
    unless) it is published, and then once. Sums of it over invocations equal it over the sums.
    """
    return metrics_published - put_metric_data_calls


@dataclass(slots=True)
class BatchReport:
    """What one invocation did (samples, not wire entries); ``values()`` turns it into self-metrics."""

    records: int = 0
    metrics_received: float = 0.0
    metrics_rejected: float = 0.0
    metrics_published: float = 0.0
    datums_published: int = 0
    put_metric_data_calls: int = 0
    put_metric_data_retries: int = 0
    messages_requeued: int = 0
    duplicate_messages: int = 0  # deliveries of a message already handled (SQS is at-least-once)
    messages_set_aside: int = 0
    failed_records: int = 0

    @property
    def api_calls_saved(self) -> float:
        return api_calls_saved(self.metrics_published, self.put_metric_data_calls)

    def values(self) -> dict[str, float]:
        """Self-metric name -> value, for every name in SELF_METRIC_NAMES."""
        return {
            METRICS_RECEIVED: self.metrics_received,
            METRICS_REJECTED: self.metrics_rejected,
            METRICS_PUBLISHED: self.metrics_published,
            PUT_METRIC_DATA_CALLS: self.put_metric_data_calls,
            API_CALLS_SAVED: self.api_calls_saved,
            PUT_METRIC_DATA_RETRIES: self.put_metric_data_retries,
            MESSAGES_REQUEUED: self.messages_requeued,
            MESSAGES_SET_ASIDE: self.messages_set_aside,
            DUPLICATE_MESSAGES_SKIPPED: self.duplicate_messages,
        }
