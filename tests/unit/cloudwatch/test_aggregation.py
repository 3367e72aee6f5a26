"""Lossless merging: same series and bucket merge; anything CloudWatch keeps apart stays apart."""

from __future__ import annotations

import random

from metricbatch.cloudwatch.aggregation import Datum, DatumAggregator, aggregate

MINUTE = 1_795_694_400.0  # a whole minute
DIMS = (("Service", "cart"),)


def stats_of(datums: list[Datum]) -> tuple[float, float, float, float]:
    """(sum, sample count, min, max) computed from Values/Counts, as CloudWatch would."""
    values = [v for d in datums for v, c in zip(d.values, d.counts, strict=True) if c > 0]
    return (
        sum(d.total for d in datums),
        sum(d.sample_count for d in datums),
        min(values),
        max(values),
    )


def test_same_series_and_minute_merge_into_one_datum_with_the_same_statistics() -> None:
    # GIVEN 1,000 samples of one series within one minute, with repeats
    rng = random.Random(7)
    samples = [(MINUTE + rng.uniform(0, 59.9), float(rng.randint(1, 40))) for _ in range(1000)]
    aggregator = DatumAggregator()
    for ts, value in samples:
        aggregator.add("Shop", "Latency", DIMS, "Milliseconds", 60, ts, [value])
    # WHEN merged
    datums = aggregator.datums()
    # THEN one datum carries them, with sum, count, min and max unchanged
    assert len(datums) == 1
    values = [v for _, v in samples]
    assert stats_of(datums) == (sum(values), 1000, min(values), max(values))
    assert len(datums[0].values) == len(set(values))  # a histogram: each distinct value once
    # AND the datum's timestamp is the earliest real one, inside the minute
    assert datums[0].timestamp == min(ts for ts, _ in samples)


def test_counts_are_added_for_repeated_values() -> None:
    aggregator = DatumAggregator()
    aggregator.add("Shop", "L", (), "None", 60, MINUTE, [1.0, 2.0], [3.0, 1.0])
    aggregator.add("Shop", "L", (), "None", 60, MINUTE + 5, [2.0, 5.0])
    (datum,) = aggregator.datums()
    assert dict(zip(datum.values, datum.counts, strict=True)) == {1.0: 3.0, 2.0: 2.0, 5.0: 1.0}
    assert datum.total == 3 + 4 + 5
    assert datum.sample_count == 6


def test_different_minutes_stay_apart_at_resolution_60() -> None:
    aggregator = DatumAggregator()
    aggregator.add("Shop", "L", (), "None", 60, MINUTE + 59.999, [1.0])
    aggregator.add("Shop", "L", (), "None", 60, MINUTE + 60.0, [2.0])
    aggregator.add("Shop", "L", (), "None", 60, MINUTE + 0.0, [3.0])
    datums = sorted(aggregator.datums(), key=lambda d: d.timestamp)
    assert [(d.timestamp, d.values) for d in datums] == [(MINUTE, [1.0, 3.0]), (MINUTE + 60, [2.0])]


def test_resolution_1_buckets_by_second() -> None:
    aggregator = DatumAggregator()
    for offset, value in [(0.1, 1.0), (0.9, 2.0), (1.0, 3.0), (1.5, 4.0), (30.0, 5.0)]:
        aggregator.add("Shop", "L", (), "None", 1, MINUTE + offset, [value])
    datums = sorted(aggregator.datums(), key=lambda d: d.timestamp)
    assert [sorted(d.values) for d in datums] == [[1.0, 2.0], [3.0, 4.0], [5.0]]
    assert all(d.resolution == 1 for d in datums)


def test_different_dimensions_units_names_namespaces_and_resolutions_stay_apart() -> None:
    aggregator = DatumAggregator()
    variants = [
        ("Shop", "L", DIMS, "Milliseconds", 60),
        ("Shop", "L", (("Service", "pay"),), "Milliseconds", 60),
        ("Shop", "L", (), "Milliseconds", 60),
        ("Shop", "L", DIMS, "Seconds", 60),
        ("Shop", "L", DIMS, "Milliseconds", 1),
        ("Shop", "Other", DIMS, "Milliseconds", 60),
        ("Shop/B", "L", DIMS, "Milliseconds", 60),
    ]
    for i, (ns, name, dims, unit, resolution) in enumerate(variants):
        aggregator.add(ns, name, dims, unit, resolution, MINUTE, [float(i)])
        aggregator.add(ns, name, dims, unit, resolution, MINUTE + 0.5, [float(i)])
    datums = aggregator.datums()
    assert len(datums) == len(variants)
    assert {(d.namespace, d.name, d.dimensions, d.unit, d.resolution) for d in datums} == set(variants)
    assert all(d.values == [d.values[0]] and d.counts == [2.0] for d in datums)


def test_more_than_150_distinct_values_split_into_chunks_preserving_the_histogram() -> None:
    # GIVEN 400 distinct values (some repeated) in one series and minute
    aggregator = DatumAggregator()
    expected: dict[float, float] = {}
    for i in range(1000):
        value = float(i % 400)
        aggregator.add("Shop", "L", (), "None", 60, MINUTE + i * 0.01, [value], source=i % 3)
        expected[value] = expected.get(value, 0.0) + 1.0
    datums = aggregator.datums()
    # THEN it becomes ceil(400/150) = 3 datums of at most 150 distinct values
    assert [len(d.values) for d in datums] == [150, 150, 100]
    assert all(len(set(d.values)) == len(d.values) for d in datums)
    # AND together they hold exactly the same histogram
    merged: dict[float, float] = {}
    for d in datums:
        for v, c in zip(d.values, d.counts, strict=True):
            merged[v] = merged.get(v, 0.0) + c
    assert merged == expected
    assert all(d.sources == frozenset({0, 1, 2}) for d in datums)


def test_sources_are_tracked_per_datum() -> None:
    aggregator = DatumAggregator()
    aggregator.add("Shop", "A", (), "None", 60, MINUTE, [1.0], source=0)
    aggregator.add("Shop", "A", (), "None", 60, MINUTE, [2.0], source=2)
    aggregator.add("Shop", "B", (), "None", 60, MINUTE, [1.0], source=[1, 3])
    aggregator.add("Shop", "C", (), "None", 60, MINUTE, [1.0])
    by_name = {d.name: d.sources for d in aggregator.datums()}
    assert by_name == {"A": frozenset({0, 2}), "B": frozenset({1, 3}), "C": frozenset()}


def test_aggregate_merges_datums_keeping_sources() -> None:
    first = Datum("Shop", "L", (), "None", 60, MINUTE + 1, [1.0, 2.0], [1.0, 2.0], sources=frozenset({0}))
    second = Datum("Shop", "L", (), "None", 60, MINUTE + 2, [2.0], [1.0], sources=frozenset({4}))
    (merged,) = aggregate([first, second])
    assert dict(zip(merged.values, merged.counts, strict=True)) == {1.0: 1.0, 2.0: 3.0}
    assert merged.sources == frozenset({0, 4})
    assert merged.timestamp == MINUTE + 1
    assert len(DatumAggregator()) == 0


def test_zero_counts_are_dropped_at_merge() -> None:
    # A zero count changes no statistic; it must not reach CloudWatch as a Values entry.
    aggregator = DatumAggregator()
    aggregator.add("Shop", "L", (), "None", 60, MINUTE, [1.0, 2.0, 3.0], [0.0, 2.0, 0.0])
    aggregator.add("Shop", "L", (), "None", 60, MINUTE + 1, [3.0], [0.0])
    (datum,) = aggregator.datums()
    assert (datum.values, datum.counts) == ([2.0], [2.0])


def test_a_merged_count_never_passes_2_to_the_360_it_spills_into_a_datum_of_its_own() -> None:
    # GIVEN three entries of one value whose counts are each at CloudWatch's 2^360 bound, next to other values
    bound = 2.0**360
    aggregator = DatumAggregator()
    for i in range(3):
        aggregator.add("Shop", "L", (), "None", 60, MINUTE + i, [7.0, float(i)], [bound, 1.0])
    # WHEN merged
    datums = aggregator.datums()
    # THEN no count passes the bound, every datum lists each value once, and the statistics are unchanged
    assert all(0 < c <= bound for d in datums for c in d.counts)
    assert all(len(set(d.values)) == len(d.values) for d in datums)
    assert sum(d.sample_count for d in datums) == 3 * bound + 3
    assert sum(d.total for d in datums) == 3 * 7.0 * bound + 0.0 + 1.0 + 2.0
    assert len(datums) == 3


def test_split_values_halves_a_datum_keeping_its_samples() -> None:
    aggregator = DatumAggregator()
    aggregator.add("Shop", "L", (), "None", 60, MINUTE, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], source=4)
    (datum,) = aggregator.datums()
    first, second = datum.split_values()
    assert (first.values, second.values) == ([1.0], [2.0, 3.0])
    assert first.total + second.total == datum.total
    assert first.sources == second.sources == frozenset({4})
    assert first.sample_count + second.sample_count == datum.sample_count
