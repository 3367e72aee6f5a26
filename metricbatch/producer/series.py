"""Validated series: what the encoder writes for every metric of a series, checked once.

A series is namespace, name, dimensions, unit and storage resolution. ``SeriesHandle`` is the public hot-path
form (``metricbatch.series(...)``): its ``send`` only checks the value and the timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from metricbatch.exceptions import InvalidMetricError
from metricbatch.validation import Rollups, Series, check_rollups, check_series, check_timestamp, check_value
from metricbatch.wire import metric_head


class BufferedSeries:
    """A validated series (``key``) with its wire head, and the buffer's note of its open bucket (read and written
    under the buffer's lock)."""

    __slots__ = ("bucket", "dimension_sets", "fanout", "generation", "head", "histogram", "key", "resolution")

    def __init__(self, key: Series) -> None:
        self.key = key
        # Roll-ups: the series each sample is also recorded under (sqs, memory, off modes), or, in emf mode, the
        # dimension sets of the one EMF directive that carries them all (the full set first); empty without roll-ups.
        self.fanout: tuple[BufferedSeries, ...] = ()
        self.dimension_sets: Rollups = ()
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
    namespace: str | None,
    name: object,
    unit: object,
    resolution: object,
    dimensions: object,
    rollups: object = None,
    *,
    dimension_sets: bool = False,
) -> BufferedSeries:
    """A BufferedSeries from user input; raises InvalidMetricError naming the broken rule.

    ``rollups``: the subsets of the dimension keys the samples are also recorded under; as series of their own
    (``fanout``), or, with ``dimension_sets`` (emf mode), as further dimension sets of the same series.
    """
    if namespace is None:
        raise InvalidMetricError("namespace.missing", "no namespace: pass namespace= or set METRICBATCH_NAMESPACE")
    key = check_series(namespace, name, dimensions, unit, resolution)
    series = BufferedSeries(key)
    sets = check_rollups(rollups, key.dimensions)
    if sets:
        if dimension_sets:
            series.dimension_sets = (tuple(name for name, _ in key.dimensions), *sets)
        else:
            values = dict(key.dimensions)
            series.fanout = tuple(
                BufferedSeries(key._replace(dimensions=tuple((name, values[name]) for name in keys))) for keys in sets
            )
    return series


def record_fanout(
    record: Record, clock: Callable[[], float], series: BufferedSeries, value: float, timestamp: datetime | float | None
) -> bool:
    """Record one sample under its series and each roll-up, at one timestamp (so every set gets the same bucket);
    a sample the series rejects is recorded nowhere. True when the sender should be woken."""
    if timestamp is None:
        timestamp = clock()
    wake = record(series, value, timestamp)
    for rollup in series.fanout:
        wake = record(rollup, value, timestamp) or wake
    return wake


class SeriesHandle:
    """A series validated once; ``send`` buffers one value of it (the hot path: only value and timestamp checked).

    Get one from ``metricbatch.series(...)`` or ``MetricProducer.series(...)``. It stays bound to that producer.
    """

    __slots__ = ("_clock", "_record", "_series", "_wake")

    def __init__(
        self,
        series: BufferedSeries,
        record: Record,
        wake: Callable[[], None],
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._series = series
        self._record = record
        self._wake = wake
        self._clock = clock

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
        series = self._series
        if series.fanout and self._clock is not None:
            if record_fanout(self._record, self._clock, series, value, timestamp):
                self._wake()
        elif self._record(series, value, timestamp):
            self._wake()
