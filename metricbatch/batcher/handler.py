"""The batcher Lambda function (entry point: lambdas/batcher/handler.py re-exports ``handler``).

Environment: METRICBATCH_DLQ_URL, METRICBATCH_ALLOWED_NAMESPACES (comma-separated prefixes), optional
METRICBATCH_QUEUE_URL (re-queue target, default: the source queue), POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_SERVICE_NAME. Self-metrics go out as EMF log lines: no PutMetricData calls.

Importing this module has no side effects: the sandbox's state (clients, the Powertools logger and metrics, the
message ids it settled) is built by the first invocation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from metricbatch.batcher.config import BatcherConfig
from metricbatch.batcher.dedup import RecentMessageIds
from metricbatch.batcher.processor import process_sqs_event
from metricbatch.batcher.self_metrics import BatchReport
from metricbatch.cloudwatch.protocol import require_packed_protocol
from metricbatch.env import POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME, SELF_METRICS_NAMESPACE, SERVICE_NAME

# The package's top logger: every metricbatch.* logger propagates to it.
LIBRARY_LOGGER: Final = "metricbatch"

# The SDK's own retries stay short: the batcher retries with backoff within the invocation's remaining time.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
# None for PutMetricData: the SDK's backoff (up to 1 s, then 2 s) ignores the deadline and overran a 3 s function;
# CloudWatchPublisher retries with jittered backoff only while the invocation's remaining time allows. (botocore's
# "max_attempts" counts retries after the first call; "total_max_attempts": 1 is the one that means a single call.)
# No gzip and no client-side parameter validation either: every request was validated and size-checked by the
# batcher already, and both cost Lambda time on every call (make bench: ~5 us per metric of ~9).
_CLIENT_CONFIGS = {
    "cloudwatch": _CLIENT_CONFIG.merge(
        Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            disable_request_compression=True,
            parameter_validation=False,
        )
    )
}


def create_client(service: str) -> Any:
    """A boto3 client with the batcher's production settings (endpoint and region from boto3's own settings)."""
    config = _CLIENT_CONFIGS.get(service, _CLIENT_CONFIG)
    client = boto3.client(service, config=config)  # type: ignore[call-overload]
    if service == "cloudwatch":
        require_packed_protocol(client)  # refuse to run rather than send requests sized for another protocol
    return client


class _Stdout:
    """sys.stdout as it is at each write (Lambda's, or a worker's capture), not as it was when the logger was built."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@contextlib.contextmanager
def structured_library_logs(source: Logger) -> Iterator[None]:
    """While inside: every metricbatch.* log line goes out through ``source`` (Powertools JSON with the invocation's
    keys), not as plain text to the root logger. Restored afterwards, so a process that also hosts producers (a
    local pipeline, tests) keeps its own logging outside invocations."""
    library = logging.getLogger(LIBRARY_LOGGER)  # registered, so Powertools finds it
    saved = (list(library.handlers), library.propagate, library.level)
    # Powertools matches top-level names only ("metricbatch", not "metricbatch.batcher").
    copy_config_to_registered_loggers(source_logger=source, include={LIBRARY_LOGGER})
    try:
        yield
    finally:
        library.handlers, library.propagate = saved[0], saved[1]
        library.setLevel(saved[2])


class BatcherFunction:
    """The Lambda function and its per-sandbox state.

    Args:
        client_factory: builds the boto3 clients (default: ``create_client``, the production settings); clients are
            kept per service and ``AWS_ENDPOINT_URL``.
        settled_ids: message ids this sandbox settled lately (a redelivery landing here is not published twice).
    """

    def __init__(
        self,
        *,
        client_factory: Callable[[str], Any] = create_client,
        settled_ids: RecentMessageIds | None = None,
    ) -> None:
        self.settled_ids = settled_ids if settled_ids is not None else RecentMessageIds()
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}
        self._queue_urls: dict[str, str] = {}
        self._powertools: tuple[Logger, Metrics, Callable[[dict[str, Any], Any], dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The sandbox's client for ``service`` (created on first use)."""
        # Keyed by endpoint too, so a process that points AWS_ENDPOINT_URL elsewhere (local runs, tests) gets new ones.
        key = f"{service}@{os.environ.get('AWS_ENDPOINT_URL', '')}"
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._client_factory(service)
            return self._clients[key]

    @property
    def logger(self) -> Logger:
        """The Powertools logger of the invocations (created by the first one)."""
        return self._setup()[0]

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self._setup()[2](event, context)

    def _setup(self) -> tuple[Logger, Metrics, Callable[[dict[str, Any], Any], dict[str, Any]]]:
        with self._lock:
            if self._powertools is None:
                logger = Logger(stream=_Stdout())  # type: ignore[arg-type]
                metrics = Metrics()
                invoke = metrics.log_metrics(logger.inject_lambda_context(self._handle(logger, metrics)))
                self._powertools = (logger, metrics, invoke)
            return self._powertools

    def _handle(self, logger: Logger, metrics: Metrics) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            with structured_library_logs(logger):
                response, report = process_sqs_event(
                    event,
                    context,
                    cloudwatch=self.client("cloudwatch"),
                    sqs=self.client("sqs"),
                    config=BatcherConfig.from_env(),
                    queue_url_cache=self._queue_urls,
                    on_report=lambda report: record_self_metrics(metrics, report),
                    settled_ids=self.settled_ids,
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
            return dict(response)

        return handle


def record_self_metrics(metrics: Metrics, report: BatchReport) -> None:
    """Add the invocation's self-metrics; Powertools flushes them as one EMF line when the invocation ends."""
    # Read at call time: without a namespace, flushing would raise after the batch was published and Lambda would
    # redeliver (and re-publish) the whole batch.
    metrics.namespace = os.environ.get(POWERTOOLS_METRICS_NAMESPACE) or SELF_METRICS_NAMESPACE
    metrics.service = os.environ.get(POWERTOOLS_SERVICE_NAME) or SERVICE_NAME
    for name, value in report.values().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


_sandbox: BatcherFunction | None = None
_sandbox_lock = threading.Lock()


def sandbox() -> BatcherFunction:
    """The function this process runs as (one Lambda sandbox), created on first use."""
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            _sandbox = BatcherFunction()
        return _sandbox


def new_sandbox(function: BatcherFunction | None = None) -> BatcherFunction:
    """Start over as a fresh sandbox (a cold start): new clients, no memory of settled messages. Returns it."""
    global _sandbox
    with _sandbox_lock:
        _sandbox = function if function is not None else BatcherFunction()
        return _sandbox


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: one SQS batch in, ``{"batchItemFailures": [...]}`` out."""
    return sandbox()(event, context)
