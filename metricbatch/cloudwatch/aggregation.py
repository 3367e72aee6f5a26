"""Lossless merging of datums that CloudWatch would store in the same slot anyway.

Datums that share namespace, name, dimensions, unit, storage resolution and timestamp bucket (the minute for
resolution 60, the second for resolution 1) merge into one datum with Values/Counts. Sums, sample counts, min, max
and percentiles are unchanged because CloudWatch aggregates at that granularity itself.

No accepted input can make CloudWatch refuse a merged datum: values are merged as they are (no arithmetic on them),
a zero count is dropped (it changes no statistic), and a value's merged count never exceeds 2^360 (the rest spills
into a datum of its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from metricbatch.limits import MAX_ABS_VALUE, MAX_VALUES_PER_DATUM
from metricbatch.validation import Dimensions, Series

# A series and its timestamp bucket (the minute for resolution 60, the second for resolution 1).
_BucketKey = tuple[Series, int]


@dataclass(slots=True)
class Datum:
    """One CloudWatch MetricDatum with its values as a value -> count histogram in list form."""

    namespace: str
    name: str
    dimensions: Dimensions
    unit: str
    resolution: int
    timestamp: float
    values: list[float]
    counts: list[float]
    # Indices of the SQS records the datum's samples came from (the batcher uses them for partial failures).
    sources: frozenset[int] = frozenset()

    @property
    def series(self) -> Series:
        return Series(self.namespace, self.name, self.dimensions, self.unit, self.resolution)

    @property
    def sample_count(self) -> float:
        return sum(self.counts)

    @property
    def total(self) -> float:
        return sum(v * c for v, c in zip(self.values, self.counts, strict=True))

    def split_values(self) -> tuple[Datum, Datum]:
        """Two datums of half the values each (to isolate a value CloudWatch refuses from its neighbours)."""
        half = len(self.values) // 2
        return (
            replace(self, values=self.values[:half], counts=self.counts[:half]),
            replace(self, values=self.values[half:], counts=self.counts[half:]),
        )


@dataclass(slots=True)
class _Bucket:
    timestamp: float
    histogram: dict[float, float] = field(default_factory=dict)
    # (value, count) pairs closed when a value's merged count would pass 2^360; each becomes a datum of its own.
    spilled: list[tuple[float, float]] = field(default_factory=list)
    sources: set[int] = field(default_factory=set)


class DatumAggregator:
    """Collects datums and merges those that share a series and a timestamp bucket."""

    def __init__(self) -> None:
        self._buckets: dict[_BucketKey, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def add(
        self,
        namespace: str,
        name: str,
        dimensions: Dimensions,
        unit: str,
        resolution: int,
        timestamp: float,
        values: Iterable[float],
        counts: Iterable[float] | None = None,
        *,
        source: int | Iterable[int] | None = None,
    ) -> None:
        bucket = self._merge(Series(namespace, name, dimensions, unit, resolution), timestamp, values, counts)
        if source is not None:
            if isinstance(source, int):
                bucket.sources.add(source)
            else:
                bucket.sources.update(source)

    def add_all(self, samples: Iterable[tuple[Series, float, list[float], list[float] | None]], source: int) -> None:
        """Add many (series, timestamp, values, counts) of one source (counts None: one per value): the batcher's
        hot loop, so the common case (one value) is merged right here."""
        buckets = self._buckets
        merge = self._merge
        for series, timestamp, values, counts in samples:
            if counts is None and len(values) == 1:
                key = (series, int(timestamp // series[4]))  # series[4]: the resolution
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = _Bucket(timestamp)
                elif timestamp < bucket.timestamp:
                    bucket.timestamp = timestamp
                histogram = bucket.histogram
                value = values[0]
                histogram[value] = histogram.get(value, 0.0) + 1.0
            else:
                bucket = merge(series, timestamp, values, counts)
            bucket.sources.add(source)

    def _merge(
        self,
        series: Series,
        timestamp: float,
        values: Iterable[float],
        counts: Iterable[float] | None,
    ) -> _Bucket:
        key = (series, int(timestamp // series[4]))  # series[4]: the resolution
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(timestamp)
        elif timestamp < bucket.timestamp:
            # Keep the earliest real timestamp: still inside the bucket, and never older than a validated input.
            bucket.timestamp = timestamp
        histogram = bucket.histogram
        if counts is None:
            for value in values:
                histogram[value] = histogram.get(value, 0.0) + 1.0
        else:
            get = histogram.get
            for value, count in zip(values, counts, strict=True):
                if not count:
                    continue  # a zero count changes no statistic
                total = get(value, 0.0) + count
                if total > MAX_ABS_VALUE:
                    # CloudWatch refuses a count beyond 2^360: what this value has so far becomes its own datum.
                    bucket.spilled.append((value, histogram[value]))
                    total = count
                histogram[value] = total
        return bucket

    def add_datum(self, datum: Datum) -> None:
        bucket = self._merge(datum.series, datum.timestamp, datum.values, datum.counts)
        bucket.sources.update(datum.sources)

    def datums(self) -> list[Datum]:
        """The merged datums, each with at most MAX_VALUES_PER_DATUM distinct values."""
        merged: list[Datum] = []
        for ((namespace, name, dimensions, unit, resolution), _), bucket in self._buckets.items():
            # Values are unique within a datum: spilled pairs (rare) go one per datum.
            items = list(bucket.histogram.items())
            chunks = [
                items[start : start + MAX_VALUES_PER_DATUM] for start in range(0, len(items), MAX_VALUES_PER_DATUM)
            ]
            chunks.extend([pair] for pair in bucket.spilled)
            sources = frozenset(bucket.sources)
            for chunk in chunks:
                merged.append(
                    Datum(
                        namespace=namespace,
                        name=name,
                        dimensions=dimensions,
                        unit=unit,
                        resolution=resolution,
                        timestamp=bucket.timestamp,
                        values=[v for v, _ in chunk],
                        counts=[c for _, c in chunk],
                        sources=sources,
                    )
                )
        return merged


def aggregate(datums: Iterable[Datum]) -> list[Datum]:
    """Merge datums losslessly; convenience wrapper around DatumAggregator."""
    aggregator = DatumAggregator()
    for datum in datums:
        aggregator.add_datum(datum)
    return aggregator.datums()
