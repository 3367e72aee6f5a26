"""The batcher Lambda function (entry point: lambdas/batcher/handler.py re-exports ``handler``).

Environment: METRICBATCH_DLQ_URL, METRICBATCH_ALLOWED_NAMESPACES (comma-separated prefixes), optional
METRICBATCH_QUEUE_URL (re-queue target, default: the source queue), POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_SERVICE_NAME. Self-metrics go out as EMF log lines: no PutMetricData calls.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from metricbatch.batcher.batcher import BatcherConfig, BatchReport, RecentMessageIds
from metricbatch.batcher.processor import process_sqs_event
from metricbatch.cloudwatch.protocol import require_packed_protocol
from metricbatch.env import SELF_METRICS_NAMESPACE, SERVICE_NAME

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(
    source_logger=logger,
    include={
        "metricbatch.batcher.batcher",
        "metricbatch.cloudwatch.publisher",
        "metricbatch.aws.sqs",
        "metricbatch.batcher.processor",
    },
)

# The SDK's own retries stay short: the batcher retries with backoff within the invocation's remaining time.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
# None for PutMetricData: the SDK's backoff (up to 1 s, then 2 s) ignores the deadline and overran a 3 s function;
# CloudWatchPublisher retries with jittered backoff only while the invocation's remaining time allows.
# No gzip and no client-side parameter validation either: every request was validated and size-checked by the
# batcher already, and both cost Lambda time on every call (make bench: ~5 us per metric of ~9).
_CLIENT_CONFIGS = {
    "cloudwatch": _CLIENT_CONFIG.merge(
        Config(
            retries={"mode": "standard", "max_attempts": 1},
            disable_request_compression=True,
            parameter_validation=False,
        )
    )
}
_clients: dict[str, Any] = {}
_queue_urls: dict[str, str] = {}
# Messages this sandbox settled lately: a redelivery that lands here again is not published twice.
_settled_ids = RecentMessageIds()


def _client(service: str) -> Any:
    # Keyed by endpoint too, so a process that points AWS_ENDPOINT_URL elsewhere (local runs, tests) gets new clients.
    key = f"{service}@{os.environ.get('AWS_ENDPOINT_URL', '')}"
    if key not in _clients:
        config = _CLIENT_CONFIGS.get(service, _CLIENT_CONFIG)
        client = boto3.client(service, config=config)  # type: ignore[call-overload]
        if service == "cloudwatch":
            require_packed_protocol(client)  # refuse to run rather than send requests sized for another protocol
        _clients[key] = client
    return _clients[key]


def record_self_metrics(report: BatchReport) -> None:
    # Read at call time, not when Powertools read it at import: without a namespace, flushing would raise after the
    # batch was published and Lambda would redeliver (and re-publish) the whole batch.
    metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or SELF_METRICS_NAMESPACE
    metrics.service = os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE_NAME
    for name, value in (
        ("MetricsReceived", report.metrics_received),
        ("MetricsRejected", report.metrics_rejected),
        ("MetricsPublished", report.metrics_published),
        ("PutMetricDataCalls", report.put_metric_data_calls),
        ("ApiCallsSaved", report.api_calls_saved),
        ("PutMetricDataRetries", report.put_metric_data_retries),
        ("MessagesRequeued", report.messages_requeued),
        ("MessagesSetAside", report.messages_set_aside),
        ("DuplicateMessagesSkipped", report.duplicate_messages),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response, report = process_sqs_event(
        event,
        context,
        cloudwatch=_client("cloudwatch"),
        sqs=_client("sqs"),
        config=BatcherConfig.from_env(),
        queue_url_cache=_queue_urls,
        on_report=record_self_metrics,
        settled_ids=_settled_ids,
    )
    logger.info(
        "batch done",
        extra={
            "records": report.records,
            "metrics_received": report.metrics_received,
            "put_metric_data_calls": report.put_metric_data_calls,
            "failed_records": report.failed_records,
        },
    )
    return response
