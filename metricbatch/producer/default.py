"""The module-level helpers' producer, created lazily from the environment on first use."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime

from metricbatch.producer.producer import MetricProducer
from metricbatch.producer.series import SeriesHandle

_default: MetricProducer | None = None
_default_lock = threading.Lock()


def default_producer() -> MetricProducer:
    """The shared producer, configured from METRICBATCH_QUEUE_URL and METRICBATCH_NAMESPACE at first use."""
    global _default
    producer = _default
    if producer is None:
        with _default_lock:
            if _default is None:
                _default = MetricProducer()
            producer = _default
    return producer


def set_default_producer(producer: MetricProducer | None) -> MetricProducer | None:
    """Replace the shared producer (None: create it again from the environment); returns the old one."""
    global _default
    with _default_lock:
        old, _default = _default, producer
    return old


def send_metric(
    name: str,
    value: float,
    *,
    unit: str = "None",
    namespace: str | None = None,
    dimensions: Mapping[str, str] | None = None,
    timestamp: datetime | float | None = None,
    storage_resolution: int = 60,
) -> None:
    """Buffer one metric for CloudWatch; returns in microseconds, never touches the network.

    ``timestamp``: a ``datetime`` (naive = UTC, unlike ``datetime.timestamp()``) or epoch seconds; default now.

    Raises:
        InvalidMetricError: the metric breaks a CloudWatch rule (the message names it).
        ConfigurationError: no METRICBATCH_QUEUE_URL for the default producer.
    """
    (_default or default_producer()).send_metric(
        name,
        value,
        unit=unit,
        namespace=namespace,
        dimensions=dimensions,
        timestamp=timestamp,
        storage_resolution=storage_resolution,
    )


def series(
    name: str,
    *,
    unit: str = "None",
    namespace: str | None = None,
    dimensions: Mapping[str, str] | None = None,
    storage_resolution: int = 60,
) -> SeriesHandle:
    """A handle for one series of the default producer, validated once: ``handle.send(value, timestamp=None)``.

    Raises:
        InvalidMetricError: the series breaks a CloudWatch rule.
        ConfigurationError: no METRICBATCH_QUEUE_URL for the default producer.
    """
    return (_default or default_producer()).series(
        name, unit=unit, namespace=namespace, dimensions=dimensions, storage_resolution=storage_resolution
    )


def flush(timeout: float | None = None) -> bool:
    """Block until everything buffered so far is accepted by SQS (or published by the fallback).

    Returns False if ``timeout`` ran out or metrics were dropped since the previous flush (see ``stats()``).
    """
    return _default.flush(timeout) if _default is not None else True


def stats() -> dict[str, int]:
    """The default producer's counters: buffered, sent, dropped, fallback_published, send_errors, ..."""
    if _default is None:
        return {"buffered": 0, "sent": 0, "dropped": 0, "fallback_published": 0, "send_errors": 0}
    return _default.stats()
