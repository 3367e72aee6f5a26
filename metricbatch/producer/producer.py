"""The producer: ``send_metric`` validates and buffers in microseconds; a daemon thread ships to SQS.

The pieces: ``buffer`` (histograms per series and bucket, counters, the bound), ``sender`` (the thread and its
rounds), ``destinations`` (SQS, then direct PutMetricData while SQS is down), ``encoding`` (wire format),
``lifecycle`` (exit, SIGTERM, fork, multiprocessing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from metricbatch.producer import lifecycle
from metricbatch.producer.buffer import MetricBuffer
from metricbatch.producer.clients import ClientFactory, ProcessClients, default_client
from metricbatch.producer.config import ProducerConfig
from metricbatch.producer.destinations import sqs_with_fallback
from metricbatch.producer.sender import DropLog, Sender
from metricbatch.producer.series import BufferedSeries, SeriesHandle, validate_series

__all__ = ["MetricProducer", "ProducerConfig"]

_MAX_SERIES_CACHE = 10_000
_SeriesKey = tuple[Any, ...]


class MetricProducer:
    """Buffers metrics in memory and ships them to the metricbatch queue from a background thread.

    Args:
        queue_url: the pipeline's SQS queue; default ``METRICBATCH_QUEUE_URL``.
        namespace: default namespace for ``send_metric``; default ``METRICBATCH_NAMESPACE``.
        sqs_client, cloudwatch_client: boto3 clients to use in every process (a forked child shares their
            connections with the parent: prefer ``client_factory``).
        client_factory: makes a client for "sqs" or "cloudwatch", once per process (default: boto3's standard
            settings with bounded timeouts).
        sleep, clock, monotonic: injectable for tests (retry backoff; wall clock for timestamps; drop-log pacing).
        **options: any ``ProducerConfig`` field, e.g. ``flush_interval=0.5`` or ``max_buffered=10_000``.
    """

    def __init__(
        self,
        queue_url: str | None = None,
        *,
        namespace: str | None = None,
        sqs_client: Any = None,
        cloudwatch_client: Any = None,
        client_factory: ClientFactory = default_client,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        self.config = config = ProducerConfig.from_env(queue_url=queue_url, namespace=namespace, **options)
        self._namespace = config.namespace
        self._series: dict[_SeriesKey, BufferedSeries] = {}
        self._buffer = MetricBuffer(config.max_buffered, config.wake_threshold, clock)
        self._clients = ProcessClients({"sqs": sqs_client, "cloudwatch": cloudwatch_client}, client_factory)
        chain = sqs_with_fallback(
            self._clients,
            config.queue_url,
            max_message_bytes=config.max_message_bytes,
            attempts=config.send_attempts,
            fallback=config.fallback,
            sleep=sleep,
        )
        self._drop_log = DropLog(self._buffer, config.drop_log_interval, monotonic)
        self._sender = Sender(
            self._buffer, chain, interval=config.flush_interval, drop_log=self._drop_log, on_start=self._on_start
        )
        self._closed = False

    # -- the caller's side: no network, no blocking -------------------------------------------------------------
    def send_metric(
        self,
        name: str,
        value: float,
        *,
        unit: str = "None",
        namespace: str | None = None,
        dimensions: Mapping[str, str] | None = None,
        timestamp: datetime | float | None = None,
        storage_resolution: int = 60,
    ) -> None:
        """Validate one metric and buffer it; raises InvalidMetricError for anything CloudWatch would reject.

        ``timestamp``: a ``datetime`` (a naive one is read as UTC, unlike ``datetime.timestamp()``, which reads
        it as local time) or epoch seconds; default: now.
        """
        ns = self._namespace if namespace is None else namespace
        try:
            # The resolution's type is part of the key: True == 1 must not reuse a validated resolution-1 series.
            key: _SeriesKey | None = (
                ns, name, unit, storage_resolution, storage_resolution.__class__,
                tuple(dimensions.items()) if dimensions else (),
            )  # fmt: skip
            series = self._series.get(key)  # type: ignore[arg-type]
        except (TypeError, AttributeError):  # unhashable or not a mapping: validation below says why
            key, series = None, None
        if series is None:
            series = self._new_series(key, ns, name, unit, storage_resolution, dimensions)
        if self._buffer.record(series, value, timestamp):
            self._sender.wake()

    def series(
        self,
        name: str,
        *,
        unit: str = "None",
        namespace: str | None = None,
        dimensions: Mapping[str, str] | None = None,
        storage_resolution: int = 60,
    ) -> SeriesHandle:
        """A handle for one series, validated now; its ``send(value, timestamp=None)`` checks only the value."""
        ns = self._namespace if namespace is None else namespace
        series = self._new_series(None, ns, name, unit, storage_resolution, dimensions)
        return SeriesHandle(series, self._buffer, self._sender.wake)

    def _new_series(
        self,
        key: _SeriesKey | None,
        namespace: str | None,
        name: str,
        unit: str,
        resolution: int,
        dimensions: Mapping[str, str] | None,
    ) -> BufferedSeries:
        try:
            series = validate_series(namespace, name, unit, resolution, dimensions)
        except ValueError:
            self._buffer.count({"invalid": 1})
            raise
        if key is not None:
            if len(self._series) >= _MAX_SERIES_CACHE:
                self._series.clear()
            self._series[key] = series
        return series

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything buffered so far is accepted by SQS, published by the fallback, or dropped.

        Returns True when all of it was delivered; False if ``timeout`` (seconds) ran out first, or if any metric
        was dropped since the previous ``flush()`` (buffer full, or SQS and CloudWatch both unavailable: see
        ``stats()["dropped"]`` and the log).
        """
        target = self._buffer.flush_target()
        if self._buffer.pending:
            self._sender.round_now()
        done = self._buffer.wait_handled(target, timeout)
        return self._buffer.drops_since_last_flush() == 0 and done

    def stats(self) -> dict[str, int]:
        """Counters: buffered, sent, dropped, fallback_published, send_errors, invalid, accepted, and more."""
        return self._buffer.stats()

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the sender thread; logs the total dropped, if any. Idempotent."""
        if self._closed:
            return
        self.flush(self.config.exit_flush_timeout if timeout is None else timeout)
        self._closed = True
        self._sender.stop()
        self._buffer.want_sender()  # a metric sent after close() starts a sender again
        self._drop_log.report(final=True)

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def _on_start(self) -> None:
        self._closed = False
        lifecycle.register(self, handle_sigterm=self.config.handle_sigterm)

    def prepare_fork(self) -> None:
        """Called before fork() (by ``lifecycle``): a client being made (imports!) finishes first."""
        self._clients.hold_for_fork()

    def parent_after_fork(self) -> None:
        """Called after fork() in the parent (by ``lifecycle``)."""
        self._clients.release_after_fork()

    def reset_after_fork(self) -> None:
        """Called in a forked child (by ``lifecycle``): the inherited buffer and counters stay the parent's."""
        self._buffer.reset_after_fork()
        self._sender.reset_after_fork()
        self._drop_log.reset_after_fork()
        self._clients.forget_after_fork()
        self._closed = False
