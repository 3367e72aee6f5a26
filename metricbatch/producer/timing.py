"""Helpers around the producer: ``timer`` for service calls and ``flush_after`` for producers in Lambda."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import ContextDecorator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from metricbatch.env import DEFAULT_NAMESPACE
from metricbatch.producer.producer import MetricProducer
from metricbatch.producer.series import SeriesHandle
from metricbatch.validation import check_series

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def _producer(producer: MetricProducer | None) -> MetricProducer:
    if producer is not None:
        return producer
    from metricbatch.producer.default import default_producer

    return default_producer()


class timer(ContextDecorator):
    """Record a call's duration in Milliseconds plus a success or error count.

    Emits ``<name>`` (Milliseconds) and ``<name>.Success`` / ``<name>.Error`` (Count, 1 or 0 each), so Sum is a
    count and Average a rate. Works as ``with timer("DynamoDB.GetItem", dimensions={"Table": "orders"}):`` or as
    a decorator ``@timer("S3.PutObject")``. An exception is recorded as an error and re-raised.

    Name, namespace, dimensions and resolution are validated here, before the timed code runs (InvalidMetricError).
    Afterwards the timer never changes the timed code's result or exception: a metric that cannot be recorded then
    (e.g. the producer's own namespace is invalid) is counted in ``stats()["invalid"]`` and logged.
    """

    def __init__(
        self,
        name: str,
        *,
        namespace: str | None = None,
        dimensions: Mapping[str, str] | None = None,
        storage_resolution: int = 60,
        producer: MetricProducer | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.dimensions = dimensions
        self.storage_resolution = storage_resolution
        self.producer = producer
        self._starts: list[float] = []
        self._warned = False
        # (producer, duration, success, error) series handles, made on first use for the producer in use
        self._handles: tuple[MetricProducer, SeriesHandle, SeriesHandle, SeriesHandle] | None = None
        if producer is not None:
            self._series_for(producer)  # the producer's namespace too
        else:  # the default producer is made at first use, not here (decorators run at import)
            for metric in _metric_names(name):
                check_series(
                    DEFAULT_NAMESPACE if namespace is None else namespace,
                    metric, dimensions, "Milliseconds", storage_resolution,
                )  # fmt: skip

    def __enter__(self) -> timer:
        self._starts.append(time.perf_counter())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        elapsed_ms = (time.perf_counter() - self._starts.pop()) * 1000.0
        failed = exc_type is not None
        try:
            _, duration, success, error = self._series_for(_producer(self.producer))
            duration.send(elapsed_ms)
            success.send(0.0 if failed else 1.0)
            error.send(1.0 if failed else 0.0)
        except Exception:  # never replace the block's own outcome; invalid series are counted by the producer
            logger.log(
                logging.DEBUG if self._warned else logging.WARNING,
                "metricbatch: timer %r could not record its metrics", self.name, exc_info=True,
            )  # fmt: skip
            self._warned = True

    def _series_for(self, producer: MetricProducer) -> tuple[MetricProducer, SeriesHandle, SeriesHandle, SeriesHandle]:
        handles = self._handles
        if handles is None or handles[0] is not producer:
            common: dict[str, Any] = {
                "namespace": self.namespace,
                "dimensions": self.dimensions,
                "storage_resolution": self.storage_resolution,
            }
            duration_name, success_name, error_name = _metric_names(self.name)
            handles = self._handles = (
                producer,
                producer.series(duration_name, unit="Milliseconds", **common),
                producer.series(success_name, unit="Count", **common),
                producer.series(error_name, unit="Count", **common),
            )
        return handles


def _metric_names(name: object) -> tuple[Any, Any, Any]:
    """The three metrics' names; a name that is not a string is passed on for validation to name the rule."""
    return (name, f"{name}.Success", f"{name}.Error") if isinstance(name, str) else (name, name, name)


@overload
def flush_after(
    func: Callable[P, R], *, timeout: float | None = ..., producer: MetricProducer | None = ...
) -> Callable[P, R]: ...
@overload
def flush_after(
    func: None = ..., *, timeout: float | None = ..., producer: MetricProducer | None = ...
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def flush_after(
    func: Callable[P, R] | None = None, *, timeout: float | None = 5.0, producer: MetricProducer | None = None
) -> Any:
    """Flush before a Lambda invocation returns (the sandbox freezes background threads between invocations).

    Use as ``@flush_after`` or ``@flush_after(timeout=2)`` on the handler.
    """

    def decorate(inner: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(inner)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return inner(*args, **kwargs)
            finally:
                _producer(producer).flush(timeout)

        return wrapper

    return decorate(func) if func is not None else decorate


class flushing(ContextDecorator):
    """Context-manager form of ``flush_after``: ``with flushing(): ...`` flushes on leaving the block."""

    def __init__(self, *, timeout: float | None = 5.0, producer: MetricProducer | None = None) -> None:
        self.timeout = timeout
        self.producer = producer

    def __enter__(self) -> flushing:
        return self

    def __exit__(self, *exc: object) -> None:
        _producer(self.producer).flush(self.timeout)
