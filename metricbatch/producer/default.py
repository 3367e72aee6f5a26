"""The module-level helpers' producer, created lazily from the environment on first use.

Its mode comes from ``METRICBATCH_MODE`` (else ``sqs`` with ``METRICBATCH_QUEUE_URL``); a host with neither gets
mode ``off`` with one warning, never an exception in the caller (see ``config``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from metricbatch.producer.producer import MetricProducer
from metricbatch.producer.series import SeriesHandle

_default: MetricProducer | None = None
_default_lock = threading.Lock()


def default_producer() -> MetricProducer:
    """The shared producer, configured from METRICBATCH_MODE, METRICBATCH_QUEUE_URL and METRICBATCH_NAMESPACE at
    first use."""
    global _default
    producer = _default
    if producer is None:
        with _default_lock:
            if _default is None:
                _default = MetricProducer()
            producer = _default
    return producer


def set_default_producer(producer: MetricProducer | None) -> MetricProducer | None:
    """Replace the shared producer (None: create it again from the environment at next use); returns the old one,
    which the caller may ``close()`` (tests switching modes do; the ``metricbatch_metrics`` fixture does)."""
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
    rollups: Sequence[Sequence[str]] | None = None,
) -> None:
    """Validate one metric and hand it to the default producer's mode; returns in microseconds, never touches the
    network, never raises for configuration (a host without a queue URL or mode: see ``stats()["mode_reason"]``).

    ``timestamp``: a ``datetime`` (naive = UTC, unlike ``datetime.timestamp()``) or epoch seconds; default now.
    ``rollups``: also record under each listed subset of the dimension keys, e.g. ``[["Service"], []]``.

    Raises:
        InvalidMetricError: the metric breaks a CloudWatch rule (the message names it), in every mode.
    """
    (_default or default_producer()).send_metric(
        name,
        value,
        unit=unit,
        namespace=namespace,
        dimensions=dimensions,
        timestamp=timestamp,
        storage_resolution=storage_resolution,
        rollups=rollups,
    )


def series(
    name: str,
    *,
    unit: str = "None",
    namespace: str | None = None,
    dimensions: Mapping[str, str] | None = None,
    storage_resolution: int = 60,
    rollups: Sequence[Sequence[str]] | None = None,
) -> SeriesHandle:
    """A handle for one series of the default producer, validated once: ``handle.send(value, timestamp=None)``.

    Raises:
        InvalidMetricError: the series breaks a CloudWatch rule.
    """
    return (_default or default_producer()).series(
        name,
        unit=unit,
        namespace=namespace,
        dimensions=dimensions,
        storage_resolution=storage_resolution,
        rollups=rollups,
    )


def flush(timeout: float | None = None) -> bool:
    """Block until everything sent so far is delivered: accepted by SQS (or published by the fallback), written as
    EMF, captured.

    Returns False if ``timeout`` ran out, metrics were dropped since the previous flush, a wrong setting holds them
    back, or they were discarded for a missing setting (see ``stats()``).
    """
    return _default.flush(timeout) if _default is not None else True


def stats() -> dict[str, Any]:
    """The default producer's counters (buffered, sent, dropped, fallback_published, send_errors, ...), its
    ``mode``, ``mode_reason`` and ``config_error`` (creates the default producer if need be)."""
    return (_default or default_producer()).stats()
