"""Validated series: what the encoder writes for every metric of a series, checked once.

A series is namespace, name, dimensions, unit and storage resolution. ``SeriesHandle`` is the public hot-path
form (``metricbatch.series(...)``): its ``send`` only checks the value and the timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from metricbatch.exceptions import InvalidMetricError
from metricbatch.validation import Series, check_series, check_timestamp, check_value
from metricbatch.wire import metric_head


class BufferedSeries:
    """A validated series (``key``) with its wire head, and the buffer's note of its open bucket (read and written
    under the buffer's lock)."""

    __slots__ = ("bucket", "generation", "head", "histogram", "key", "resolution")

    def __init__(self, key: Series) -> None:
        self.key = key
        self.resolution = key.resolution  # read on every metric: a slot, not a tuple field
        self.head = metric_head(*key)
        # The buffer's fast path: the histogram of this series' last bucket, valid while ``generation`` matches.
        self.bucket = -1.0
        self.histogram: dict[float, int] = {}
        self.generation = -1


# The producer's recorder: validate and take one value of a series; True when its sender should be woken.
Record = Callable[[BufferedSeries, float, datetime | float | None], bool]


def checked_sample(value: object, timestamp: object, clock: Callable[[], float]) -> tuple[float, float]:
    """(value, timestamp) of one sample, validated as CloudWatch would (the same in every mode); timestamp default
    now. Raises InvalidMetricError naming the rule."""
    checked = check_value(value)
    return checked, (clock() if timestamp is None else check_timestamp(timestamp, clock()))


def validate_series(
    namespace: str | None, name: object, unit: object, resolution: object, dimensions: object
) -> BufferedSeries:
    """A BufferedSeries from user input; raises InvalidMetricError naming the broken rule."""
    if namespace is None:
        raise InvalidMetricError("namespace.missing", "no namespace: pass namespace= or set METRICBATCH_NAMESPACE")
    return BufferedSeries(check_series(namespace, name, dimensions, unit, resolution))


class SeriesHandle:
    """A series validated once; ``send`` buffers one value of it (the hot path: only value and timestamp checked).

    Get one from ``metricbatch.series(...)`` or ``MetricProducer.series(...)``. It stays bound to that producer.
    """

    __slots__ = ("_record", "_series", "_wake")

    def __init__(self, series: BufferedSeries, record: Record, wake: Callable[[], None]) -> None:
        self._series = series
        self._record = record
        self._wake = wake

    @property
    def name(self) -> str:
        return self._series.key.name

    @property
    def namespace(self) -> str:
        return self._series.key.namespace

    @property
    def dimensions(self) -> Mapping[str, str]:
        return dict(self._series.key.dimensions)

    def send(self, value: float, timestamp: datetime | float | None = None) -> None:
        """Buffer one value; ``timestamp`` as in ``send_metric`` (datetime, naive = UTC, or epoch seconds).

        Raises:
            InvalidMetricError: the value or timestamp breaks a CloudWatch rule.
        """
        if self._record(self._series, value, timestamp):
            self._wake()
